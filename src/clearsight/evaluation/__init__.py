"""Faithfulness measures: insertion/deletion curves (per-image score, dataset accuracy, AUC) and
rate-distortion curves of RDE masks and saliency maps (mean distortion over images), all run as units on an
engine by one driver (:mod:`clearsight.evaluation.driver`). Methods are given by name, as explainer objects
or as saved explanations (:mod:`clearsight.evaluation.sources`).

The RDE experiments of the CartoonX reproduction (the lambda sweep, the comparison of mask
initialisations) live in :mod:`clearsight.experiments`; their names are still found here, imported on first
use so that this package never imports the experiments at import time.
"""

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
from .driver import ModelSpec
from .hallucination import CPScores, cp_scores, edge_map, hallucination_score, saliency_explanation_image
from .rate_distortion import (
    DistortionResults,
    distortion_curve,
    evaluate_rate_distortion,
    explanation_ranking,
    explanation_relevance,
    method_curve,
    relevance_order,
)
from .sources import SavedExplanations

#: names that moved to clearsight.experiments, by the module that has them now
_MOVED = {"InitResults": "initialisations", "evaluate_initialisations": "initialisations",
          "LambdaSweepResults": "lambda_sweep", "evaluate_lambda_sweep": "lambda_sweep"}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"clearsight.experiments.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CPScores", "CurveResults", "DistortionResults", "InitResults", "LambdaSweepResults", "ModelSpec",
    "SavedExplanations", "auc", "cp_scores", "edge_map", "hallucination_score", "saliency_explanation_image",
    "distortion_curve", "evaluate_curves", "evaluate_initialisations", "evaluate_lambda_sweep",
    "evaluate_rate_distortion", "explanation_ranking", "explanation_relevance", "image_curve", "method_curve",
    "method_order", "order_coalitions", "patch_scores", "read_labels", "relevance_order", "saliency_order",
]
