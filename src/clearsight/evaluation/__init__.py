"""Faithfulness measures: insertion/deletion curves (per-image score, dataset accuracy, AUC) and
rate-distortion curves of RDE masks and saliency maps (mean distortion over images)."""

from .curves import (
    CurveResults,
    CurveStore,
    auc,
    evaluate_curves,
    image_curve,
    method_order,
    order_coalitions,
    patch_scores,
    read_labels,
    saliency_order,
)
from .rate_distortion import (
    DistortionResults,
    distortion_curve,
    evaluate_rate_distortion,
    explanation_relevance,
    method_curve,
    relevance_order,
)

__all__ = [
    "CurveResults", "CurveStore", "DistortionResults", "auc", "distortion_curve", "evaluate_curves",
    "evaluate_rate_distortion", "explanation_relevance", "image_curve", "method_curve", "method_order",
    "order_coalitions", "patch_scores", "read_labels", "relevance_order", "saliency_order",
]
