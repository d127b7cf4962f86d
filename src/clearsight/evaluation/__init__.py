"""Faithfulness measures: insertion/deletion curves (per-image score, dataset accuracy, AUC)."""

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

__all__ = [
    "CurveResults", "CurveStore", "auc", "evaluate_curves", "image_curve", "method_order", "order_coalitions",
    "patch_scores", "read_labels", "saliency_order",
]
