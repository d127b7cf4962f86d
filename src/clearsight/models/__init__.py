"""Models: a `Classifier` wraps any `nn.Module` with its preprocessing; ViTs get a `TokenClassifier`."""

from .classifier import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Classifier,
    ModuleState,
    Preprocessing,
    imagenet_class_names,
    module_device,
    resize_map,
)
from .cpu_memory import keep_freed_memory
from .registry import BUILTIN, DEFAULT_MODEL, EXAMPLES, load_model, wrap_model
from .token import TokenClassifier

__all__ = [
    "BUILTIN", "DEFAULT_MODEL", "EXAMPLES", "IMAGENET_MEAN", "IMAGENET_STD", "Classifier", "ModuleState",
    "Preprocessing", "TokenClassifier", "imagenet_class_names", "keep_freed_memory", "load_model", "module_device",
    "resize_map", "wrap_model",
]
