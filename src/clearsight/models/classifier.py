"""`Classifier`: a model plus everything needed to feed it images in [0,1].

Every explainer in clearsight works in pixel space ([0,1] RGB), so that noise, fills and corruptions mean
the same thing for every model. The classifier owns the rest: resizing and cropping a photo to the input
size, the model's own mean/std normalisation, batching under a memory bound, optional bf16 autocast and a
count of the images it has pushed through the model (the cost unit every method reports).
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ..errors import InputShapeError, ModelError, TargetError
from ..io import PathLike, load_image, to_tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ResizeMode = Literal["crop", "squash"]
Precision = Literal["fp32", "bf16"]


@dataclass(frozen=True)
class Preprocessing:
    """How a photo becomes the model's input.

    ``resize="crop"`` (default) resizes the short side to ``input_size / crop_pct`` and centre-crops
    ``input_size``, as timm and torchvision evaluate ImageNet models. ``resize="squash"`` resizes straight to
    ``input_size`` x ``input_size`` without keeping the aspect ratio, as the CartoonX reproduction did.
    """

    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    resize: ResizeMode = "crop"
    normalize: bool = True


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names (first lemma of each synset), from timm's bundled tables."""
    return list(_imagenet_class_names())


@functools.lru_cache(maxsize=1)
def _imagenet_class_names() -> tuple[str, ...]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(info.index_to_description(i).split(",")[0].strip() for i in range(1000))


def module_device(model: nn.Module) -> torch.device:
    """Where a module's parameters (or buffers) live; the CPU for a module without any."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


class ModuleState:
    """What :meth:`Classifier.inference_state` changes on a module, recorded so that it can be put back.

    Each submodule's ``training`` flag, each parameter's ``requires_grad``, and the original tensor of every
    parameter converted to channels_last (restored as the very same tensor, so values, strides and storage
    are exactly as before).
    """

    def __init__(self, model: nn.Module) -> None:
        self.training = [(m, m.training) for m in model.modules()]
        self.requires_grad = [(p, p.requires_grad) for p in model.parameters()]
        self.converted: list[tuple[nn.Parameter, torch.Tensor]] = []

    @staticmethod
    @torch.no_grad()
    def enter(model: nn.Module, channels_last: bool) -> ModuleState:
        state = ModuleState(model)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        if channels_last:
            with torch.inference_mode(False):
                for p in model.parameters():
                    if p.ndim == 4 and not p.is_contiguous(memory_format=torch.channels_last):
                        state.converted.append((p, p.data))
                        p.data = p.data.contiguous(memory_format=torch.channels_last)
        return state

    @torch.no_grad()
    def restore(self) -> None:
        with torch.inference_mode(False):
            for p, original in self.converted:
                p.data = original
        for p, flag in self.requires_grad:
            p.requires_grad_(flag)
        for m, flag in self.training:
            m.training = flag


class Classifier:
    """An image classifier that takes ``(B,3,H,W)`` images in [0,1] and returns logits.

    Normalisation happens inside, so callers never deal with model-specific statistics. Gradients flow
    through ``__call__`` (needed by Grad-CAM and the RDE optimisers); :meth:`logits` is the batched,
    no-grad path for everything else. ``passes`` counts images sent through the model.

    The module is used in eval mode with frozen parameters (and channels_last for fp32 CNNs on the CPU,
    about 2x faster). A module of your own (``owned=False``, what :func:`~clearsight.models.wrap_model`
    makes) is put in that state only inside :meth:`inference_state`, entered by every forward pass and
    by every ``explain`` call, and restored on exit, even on error: your training mode, ``requires_grad``
    flags and weight layout are never changed for good, so you can keep training it or hand it to another
    library. A module clearsight built (``owned=True``, :func:`~clearsight.models.load_model`) is put in
    that state once.
    """

    is_token_model = False

    def __init__(
        self,
        model: nn.Module,
        preprocessing: Preprocessing | None = None,
        class_names: Sequence[str] | None = None,
        name: str = "model",
        device: str | torch.device | None = None,
        precision: Precision = "fp32",
        batch_size: int = 64,
        owned: bool = False,
    ) -> None:
        here = module_device(model)
        if device is None:
            device = here
        elif owned:
            model = model.to(device)
        elif here != torch.device(device):
            raise ModelError(f"the model is on {here} but device={str(device)!r}; move it there first "
                             f"(model.to({str(device)!r})) or leave device out")
        self.model = model
        self.owned = owned
        self.preprocessing = preprocessing or Preprocessing()
        self.name = name
        self.device = torch.device(device)
        self.precision: Precision = precision
        self.batch_size = batch_size
        self.passes = 0
        self._depth = 0
        self._num_classes: int | None = None
        self._class_names = list(class_names) if class_names is not None else None
        self._weights_digest: str | None = None
        mean = torch.tensor(self.preprocessing.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocessing.std, device=self.device).view(1, 3, 1, 1)
        self._mean, self._std = mean, std
        if owned:
            ModuleState.enter(self.model, self._wants_channels_last())

    def _wants_channels_last(self) -> bool:
        """channels_last pays for fp32 CNNs on the CPU (about 2x); ViTs and bf16 gain nothing from it."""
        return not self.is_token_model and self.device.type == "cpu" and self.precision == "fp32"

    @contextlib.contextmanager
    def inference_state(self) -> Iterator[Classifier]:
        """A block in which the module is in eval mode with frozen parameters (and channels_last where that
        pays); on exit the module is as it was before, even on error. Re-entrant: only the outermost block
        changes and restores anything, so wrapping a long run in one block costs one switch, not one per
        pass. Free for models clearsight owns (they stay in that state)."""
        if self.owned or self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        state = ModuleState.enter(self.model, self._wants_channels_last())
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1
            state.restore()

    # ----------------------------------------------------------------------------------------- basics
    @property
    def input_size(self) -> int:
        return self.preprocessing.input_size

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            with torch.inference_mode():
                probe = torch.zeros(1, 3, self.input_size, self.input_size, device=self.device)
                self._num_classes = int(self._forward(probe).shape[1])
        return self._num_classes

    @property
    def class_names(self) -> list[str]:
        if self._class_names is None:
            if self.num_classes == 1000:
                self._class_names = imagenet_class_names()
            else:
                self._class_names = [f"class {i}" for i in range(self.num_classes)]
        return self._class_names

    def class_name(self, index: int) -> str:
        return self.class_names[index]

    def weights_digest(self) -> str:
        """A short fingerprint of the model's parameters and buffers.

        Stored results and checkpoints are keyed by it as well as by the model's name: two checkpoints of
        one architecture share a name (``timm:resnet50``) but must never share results. Cached for models
        clearsight owns; recomputed for a module of your own, which you may have trained since.
        """
        if self._weights_digest is None or not self.owned:
            import hashlib

            h = hashlib.sha256()
            for key, tensor in sorted(self.model.state_dict().items()):
                h.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
                h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
            self._weights_digest = h.hexdigest()[:16]
        return self._weights_digest

    def check_target(self, target: int | str) -> int:
        """Turn a class index or name into a valid index, or raise :class:`TargetError`."""
        if isinstance(target, str):
            if re.fullmatch(r"-?[0-9]+", target.strip()):  # ASCII digits: "²".isdigit() holds, int("²") fails
                target = int(target)
            else:
                lowered = target.strip().lower().replace("_", " ")
                for i, n in enumerate(self.class_names):
                    if n.lower() == lowered:
                        return i
                raise TargetError(f"unknown class name {target!r} for model {self.name}")
        if not 0 <= int(target) < self.num_classes:
            raise TargetError(
                f"class {target} is out of range: model {self.name} has classes 0..{self.num_classes - 1}"
            )
        return int(target)

    # ------------------------------------------------------------------------------------ preprocessing
    def prepare(self, source: PathLike | Image.Image, size: int | None = None,
                resize: ResizeMode | None = None) -> torch.Tensor:
        """Load a photo and return the ``(3,S,S)`` tensor in [0,1] the model expects.

        ``size`` and ``resize`` override the model's defaults (e.g. ``size=256, resize="squash"`` for the
        CartoonX reproduction preset).
        """
        img = load_image(source)
        size = size or self.input_size
        mode = resize or self.preprocessing.resize
        interp = InterpolationMode(self.preprocessing.interpolation)
        if mode == "squash":
            img = TF.resize(img, [size, size], interpolation=interp)
        elif mode == "crop":
            short = int(math.floor(size / self.preprocessing.crop_pct))
            img = TF.resize(img, short, interpolation=interp)
            img = TF.center_crop(img, [size, size])
        else:
            raise InputShapeError(f"unknown resize mode {mode!r}; use 'crop' or 'squash'")
        return to_tensor(img).to(self.device)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """[0,1] pixels to the model's input statistics (identity when ``normalize=False``)."""
        if not self.preprocessing.normalize:
            return images
        return (images - self._mean.to(images.dtype)) / self._std.to(images.dtype)

    @staticmethod
    def check_images(images: torch.Tensor) -> torch.Tensor:
        """Accept ``(3,H,W)`` or ``(B,3,H,W)`` float images; return a 4-D batch or raise clearly."""
        if not isinstance(images, torch.Tensor):
            raise InputShapeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputShapeError(f"images must have shape (3,H,W) or (B,3,H,W); got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise InputShapeError(f"images must be float in [0,1]; got dtype {images.dtype}")
        return images

    # -------------------------------------------------------------------------------------- forwarding
    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The context of every forward pass: the module in :meth:`inference_state`, and bf16 autocast when
        ``precision='bf16'``. (Every pass, the ViT token paths included, runs inside it, so a module of
        your own is never run in training mode.)"""
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.inference_state())
            if self.precision == "bf16":
                stack.enter_context(torch.autocast(device_type=self.device.type, dtype=torch.bfloat16))
            yield

    @contextlib.contextmanager
    def using_precision(self, precision: Precision) -> Iterator[Classifier]:
        """Temporarily run at another precision (restored on exit, even on error)."""
        before = self.precision
        self.precision = precision
        try:
            yield self
        finally:
            self.precision = before

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            out = self.model(self.normalize(images))
        if hasattr(out, "logits"):  # Hugging Face outputs
            out = out.logits
        return out.float()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of [0,1] images; differentiable w.r.t. the images."""
        images = self.check_images(images).to(self.device)
        self.passes += images.shape[0]
        return self._forward(images)

    def batches(self, n: int, batch_size: int | None = None) -> Iterator[slice]:
        """Slices covering ``range(n)`` in chunks of at most ``batch_size`` (memory stays flat)."""
        bs = max(1, batch_size or self.batch_size)
        for start in range(0, n, bs):
            yield slice(start, min(n, start + bs))

    @torch.inference_mode()
    def logits(self, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Logits without gradients, in bounded chunks."""
        images = self.check_images(images)
        return torch.cat([self(images[s]) for s in self.batches(images.shape[0], batch_size)])

    def predict(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted class and its probability for each image."""
        probs = self.logits(images).softmax(1)
        p, c = probs.max(1)
        return c, p

    def target_or_prediction(self, image: torch.Tensor, target: int | str | None) -> int:
        """The checked target class, or the model's prediction on ``image`` when ``target`` is None."""
        if target is None:
            return int(self.predict(image)[0][0])
        return self.check_target(target)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, input_size={self.input_size}, device={self.device})"


def resize_map(saliency: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize a ``(h,w)`` or ``(B,h,w)`` map to ``size``."""
    squeeze = saliency.ndim == 2
    x = saliency[None, None] if squeeze else saliency[:, None]
    out = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False)
    return out[0, 0] if squeeze else out[:, 0]
