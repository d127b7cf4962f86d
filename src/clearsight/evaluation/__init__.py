"""Faithfulness measures: insertion/deletion curves (per-image score, dataset accuracy, AUC), rate-distortion
curves of RDE masks and saliency maps (mean distortion over images), and the RDE experiments of the CartoonX
reproduction: the lambda sweep and the comparison of mask initialisations."""

from .curves import (
    CurveResults,
    auc,
    evaluate_curves,
    image_curve,
    method_order,
    order_coalitions,
    patch_scores,
    read_labels,
    saliency_order,
)
from .hallucination import CPScores, cp_scores, edge_map, hallucination_score, saliency_explanation_image
from .initialisations import InitResults, evaluate_initialisations
from .lambda_sweep import LambdaSweepResults, evaluate_lambda_sweep
from .rate_distortion import (
    DistortionResults,
    distortion_curve,
    evaluate_rate_distortion,
    explanation_ranking,
    explanation_relevance,
    method_curve,
    relevance_order,
)
from .runs import CurveStore, StoredRuns

__all__ = [
    "CPScores", "cp_scores", "edge_map", "hallucination_score", "saliency_explanation_image",
    "CurveResults", "CurveStore", "DistortionResults", "InitResults", "LambdaSweepResults", "StoredRuns", "auc",
    "distortion_curve", "evaluate_curves", "evaluate_initialisations", "evaluate_lambda_sweep",
    "evaluate_rate_distortion", "explanation_ranking", "explanation_relevance", "image_curve", "method_curve",
    "method_order", "order_coalitions", "patch_scores", "read_labels", "relevance_order", "saliency_order",
]
