"""Models: a `Classifier` wraps any `nn.Module` with its preprocessing; ViTs get a `TokenClassifier`."""

from .classifier import IMAGENET_MEAN, IMAGENET_STD, Classifier, Preprocessing, imagenet_class_names, resize_map
from .registry import BUILTIN, DEFAULT_MODEL, EXAMPLES, load_model, wrap_model
from .token import TokenClassifier

__all__ = [
    "BUILTIN", "DEFAULT_MODEL", "EXAMPLES", "IMAGENET_MEAN", "IMAGENET_STD", "Classifier", "Preprocessing",
    "TokenClassifier", "imagenet_class_names", "load_model", "resize_map", "wrap_model",
]
