"""What it means for a patch to be *absent*: the one place that decides it (the role of shap's masker).

- :class:`TokenDrop` (ViTs, MoXI's default): patch tokens are computed once from the full image with their
  position embeddings; absent patches' tokens are simply left out of the sequence, so the encoder runs on
  the prefix tokens plus the kept tokens only. A coalition of k patches costs k tokens, not N.
- :class:`Fill` (any model): absent patches are painted over in pixel space with the model's mean colour
  (zero after normalisation, the MoXI reference's CNN masking), black, a blurred copy of the image, or a
  value.
- :class:`Replace` (any model): absent patches show a corrupted or adversarial copy of the photo (the MoXI
  paper's corruption and adversarial deletion curves).
- :class:`AttentionMask` (ViTs): every token stays, but absent patches are hidden as attention keys from
  block ``layer`` on (MoXI appendix D).

An absence strategy is *bound* to one classifier and one image (``bind``), which precomputes what every
coalition shares (the patch tokens, the fill image). The bound object turns a chunk of ``(B,N)`` keep-masks
into logits and says how many rows fit in a chunk; :class:`~clearsight.parts.game.PatchGame` does the
chunking, scoring and pass counting.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torchvision.transforms import functional as TF

from ..errors import MethodError
from ..models.token import TOKEN_PRECISIONS, supports_cls_only
from .grid import PatchGrid

#: Default memory bound of one chunk, in tokens (rows x sequence length). About 16 full DeiT-Tiny
#: sequences: large enough for efficient matrix products, small enough to stay in the CPU caches.
DEFAULT_MAX_TOKENS = 4096


class BoundAbsence(ABC):
    """An absence strategy applied to one image of one classifier."""

    def __init__(self, clf, image: torch.Tensor, grid: PatchGrid) -> None:
        self.clf = clf
        self.image = image
        self.grid = grid

    @abstractmethod
    def logits(self, keep: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,C)`` for a chunk of keep-masks ``(B,N)`` that all keep the same number of patches."""

    @abstractmethod
    def chunk_rows(self, kept: int) -> int:
        """How many coalitions of ``kept`` patches one chunk may hold."""

    @classmethod
    def logits_across(cls, bounds: list[BoundAbsence], keep: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        """Logits ``(B,C)`` for keep-masks ``(B,N)`` of several images: row i belongs to ``bounds[owner[i]]``
        (all bound to one classifier and grid by the same strategy). This default runs each image's rows on
        their own; strategies whose rows can share one model pass across images override it."""
        return logits_per_image(bounds, keep, owner)


def logits_per_image(bounds: list[BoundAbsence], keep: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """:meth:`BoundAbsence.logits_across` without sharing: each image's rows in their own pass."""
    out: torch.Tensor | None = None
    for g in torch.unique(owner).tolist():
        rows = torch.nonzero(owner == g).squeeze(1)
        logits = bounds[g].logits(keep[rows])
        if out is None:
            out = logits.new_empty(keep.shape[0], logits.shape[1])
        out[rows] = logits
    assert out is not None, "no coalitions given"
    return out


class Absence(ABC):
    """How absent patches are realised. Subclasses implement :meth:`bind`."""

    name: ClassVar[str]

    @abstractmethod
    def bind(self, clf, image: torch.Tensor, grid: PatchGrid) -> BoundAbsence:
        """Precompute what every coalition of ``image`` shares."""

    def describe(self) -> str:
        return self.name


# ------------------------------------------------------------------------------------------ token drop
PRECISIONS = TOKEN_PRECISIONS


class TimmTokenEncoder:
    """The token encoder of a standard timm ViT at one precision: a bound
    :meth:`~clearsight.models.token.TokenClassifier.forward_tokens` (the one token-dropping path; its last
    block runs for the CLS row only). ``precision="bf16"`` runs a bfloat16 copy of the model: an option
    (``absence="token-drop:bf16"``), never the default, since greedy orders are not guaranteed to stay the same.
    """

    def __init__(self, clf, precision: str = "fp32") -> None:
        if precision not in PRECISIONS:
            raise MethodError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        self.clf = clf
        self.precision = precision

    @staticmethod
    def supports(clf) -> bool:
        """Standard timm ``VisionTransformer`` blocks and a CLS-token head."""
        return supports_cls_only(clf.model)

    def __call__(self, tokens: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        """Logits ``(B,C)`` (float32) for the patch ``tokens`` ``(1,N,D)`` kept at ``index`` ``(B,k)`` (None:
        ``tokens`` is ``(B,k,D)``, every one kept)."""
        return self.clf.forward_tokens(tokens, index, precision=self.precision)


def _require_token_model(clf, what: str) -> None:
    if not getattr(clf, "is_token_model", False):
        raise MethodError(
            f"{what} needs a Vision Transformer; {clf.name} is not one (use Fill, absence='fill', for CNNs)"
        )


class TokenDrop(Absence):
    """Leave absent patches' tokens out of the ViT's sequence (after position embeddings; CLS kept).

    Args:
        max_tokens: memory bound of one chunk, in tokens (rows x sequence length).
    """

    name = "token-drop"

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS, precision: str = "fp32") -> None:
        if precision not in PRECISIONS:
            raise MethodError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        self.max_tokens = int(max_tokens)
        self.precision = precision

    def describe(self) -> str:
        return self.name if self.precision == "fp32" else f"{self.name}[{self.precision}]"

    def bind(self, clf, image: torch.Tensor, grid: PatchGrid) -> BoundAbsence:
        _require_token_model(clf, "token dropping")
        if TimmTokenEncoder.supports(clf):
            encoder = TimmTokenEncoder(clf, self.precision)
        elif self.precision == "fp32":
            encoder = clf.forward_tokens
        else:
            raise MethodError(f"bf16 token dropping supports standard timm ViTs only, not {clf.name}")
        return _BoundTokenDrop(clf, image, grid, self.max_tokens, encoder)


class _BoundTokenDrop(BoundAbsence):
    def __init__(self, clf, image: torch.Tensor, grid: PatchGrid, max_tokens: int, encoder=None) -> None:
        super().__init__(clf, image, grid)
        self.max_tokens = max_tokens
        self.encoder = encoder or clf.forward_tokens
        self.groups = grid.token_groups(clf.patch_size, clf.grid).to(clf.device)  # (N, t)
        self.tokens_per_player = self.groups.shape[1]
        with torch.inference_mode():
            self.tokens = clf.embed(image[None])  # (1, N_tokens, D), computed once

    def token_mask(self, keep: torch.Tensor) -> torch.Tensor:
        """Player keep-mask ``(B,N)`` to the model's token keep-mask ``(B,N_tokens)``."""
        if self.tokens_per_player == 1 and self.groups.shape[0] == self.tokens.shape[1]:
            out = torch.empty_like(keep)
            out[:, self.groups[:, 0]] = keep
            return out
        out = keep.new_zeros(keep.shape[0], self.tokens.shape[1])
        out[:, self.groups.reshape(-1)] = keep.repeat_interleave(self.tokens_per_player, 1)
        return out

    def kept_index(self, keep: torch.Tensor) -> torch.Tensor:
        """The kept token indices ``(B,k)`` of equal-size keep-masks ``(B,N)``, ascending: a canonical
        sequence, so a set always gives the same numbers."""
        tokens = self.token_mask(keep.to(self.clf.device))
        k = int(tokens[0].sum())
        return torch.argsort((~tokens).to(torch.uint8), dim=1, stable=True)[:, :k]

    def logits(self, keep: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.tokens, self.kept_index(keep))

    def chunk_rows(self, kept: int) -> int:
        length = kept * self.tokens_per_player + self.clf.num_prefix_tokens
        return max(1, self.max_tokens // length)

    @classmethod
    def logits_across(cls, bounds: list[BoundAbsence], keep: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        """One encoder pass over rows of several images: each row gathers its own image's tokens."""
        first = bounds[0]
        assert isinstance(first, _BoundTokenDrop)
        stacked = torch.cat([b.tokens for b in bounds])  # type: ignore[attr-defined]  (G, N_tokens, D)
        index = first.kept_index(keep) + owner.to(stacked.device)[:, None] * stacked.shape[1]
        return first.encoder(stacked.flatten(0, 1)[index], None)  # rows gathered here: (B, k, D), all kept


# ---------------------------------------------------------------------------------------------- fill
FILL_KINDS = ("mean", "black", "blur")


class Fill(Absence):
    """Paint absent patches over in pixel space; works for every model.

    Args:
        value: ``"mean"`` (the model's mean colour, i.e. zero in normalised space; MoXI's CNN masking),
            ``"black"``, ``"blur"`` (a Gaussian-blurred copy of the image), a grey level in [0,1], or an
            RGB triple.
        blur_sigma: standard deviation of the blur in pixels.
        batch_size: images per chunk (default: the classifier's).
    """

    name = "fill"

    def __init__(self, value: str | float | tuple[float, float, float] = "mean", blur_sigma: float = 8.0,
                 batch_size: int | None = None) -> None:
        if isinstance(value, str) and value not in FILL_KINDS:
            raise MethodError(f"unknown fill {value!r}; use {', '.join(FILL_KINDS)}, a number or an RGB triple")
        self.value = value
        self.blur_sigma = float(blur_sigma)
        self.batch_size = batch_size

    def describe(self) -> str:
        return f"fill:{self.value}"

    def baseline(self, clf, image: torch.Tensor) -> torch.Tensor:
        """The ``(3,H,W)`` image that absent patches show."""
        if self.value == "mean":
            colour = torch.tensor(clf.preprocessing.mean, dtype=image.dtype, device=image.device)
            return colour.view(3, 1, 1).expand_as(image).clone()
        if self.value == "black":
            return torch.zeros_like(image)
        if self.value == "blur":
            radius = max(1, int(round(3 * self.blur_sigma)))
            return TF.gaussian_blur(image[None], [2 * radius + 1] * 2, [self.blur_sigma] * 2)[0]
        colour = torch.as_tensor(self.value, dtype=image.dtype, device=image.device).reshape(-1)
        if colour.numel() not in (1, 3):
            raise MethodError(f"a fill value is one grey level or an RGB triple; got {self.value!r}")
        return colour.view(-1, 1, 1).expand_as(image).clone()

    def bind(self, clf, image: torch.Tensor, grid: PatchGrid) -> BoundAbsence:
        if tuple(image.shape[-2:]) != (grid.height, grid.width):
            raise MethodError(f"the patch grid is {grid.height}x{grid.width}; the image is "
                              f"{image.shape[-2]}x{image.shape[-1]}")
        return _BoundFill(clf, image, grid, self.baseline(clf, image), self.batch_size or clf.batch_size)


class _BoundFill(BoundAbsence):
    def __init__(self, clf, image: torch.Tensor, grid: PatchGrid, base: torch.Tensor, batch_size: int) -> None:
        super().__init__(clf, image, grid)
        self.base = base
        self.batch_size = batch_size

    def logits(self, keep: torch.Tensor) -> torch.Tensor:
        m = self.grid.pixel_mask(keep).to(self.image.device, self.image.dtype)
        return self.clf(self.base + m * (self.image - self.base))

    def chunk_rows(self, kept: int) -> int:
        return max(1, self.batch_size)

    @classmethod
    def logits_across(cls, bounds: list[BoundAbsence], keep: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        """One batch of painted images of several photos."""
        first = bounds[0]
        assert isinstance(first, _BoundFill)
        owner = owner.to(first.image.device)
        base = torch.stack([b.base for b in bounds])[owner]  # type: ignore[attr-defined]
        image = torch.stack([b.image for b in bounds])[owner]
        m = first.grid.pixel_mask(keep).to(image.device, image.dtype)
        return first.clf(base + m * (image - base))


# ------------------------------------------------------------------------------------------- replace
class Replace(Absence):
    """Absent patches show another version of the same photo: a corrupted or an adversarial copy.

    The MoXI paper's corruption and adversarial deletion curves (SPEC C.11, C.12) "delete" a patch by pasting
    in that patch of the corrupted (or attacked) photo, so the model always sees a whole image. ``make(clf,
    image, target)`` returns the ``(3,H,W)`` replacement; ``target`` is the class the model predicts for the
    clean photo (the curves only use photos it classifies correctly, so this is the label). The last
    replacement is kept, so that :meth:`replacement` after a curve costs nothing (e.g. an attack's
    per-patch perturbation norms).

    Args:
        make: builds the replacement image.
        description: what the replacement is, e.g. ``corruption:fog:5`` (it keys stored results).
        batch_size: images per chunk (default: the classifier's).
    """

    name = "replace"

    def __init__(self, make: Callable[[object, torch.Tensor, int], torch.Tensor], description: str,
                 batch_size: int | None = None) -> None:
        self.make = make
        self.description = description
        self.batch_size = batch_size
        self._last: tuple[tuple, torch.Tensor] | None = None

    def describe(self) -> str:
        return f"replace:{self.description}"

    def replacement(self, clf, image: torch.Tensor) -> torch.Tensor:
        """The ``(3,H,W)`` image whose patches stand in for absent ones (made once per photo and model)."""
        from ..checkpoints import pixel_digest

        key = (id(clf), pixel_digest(image))
        if self._last is None or self._last[0] != key:
            with torch.no_grad():
                target = int(clf.logits(image[None])[0].argmax())
            made = self.make(clf, image, target).to(image.device, image.dtype)
            if made.shape != image.shape:
                raise MethodError(f"a replacement image must have the photo's shape {tuple(image.shape)}; got "
                                  f"{tuple(made.shape)}")
            self._last = (key, made)
        return self._last[1]

    def bind(self, clf, image: torch.Tensor, grid: PatchGrid) -> BoundAbsence:
        if tuple(image.shape[-2:]) != (grid.height, grid.width):
            raise MethodError(f"the patch grid is {grid.height}x{grid.width}; the image is "
                              f"{image.shape[-2]}x{image.shape[-1]}")
        return _BoundFill(clf, image, grid, self.replacement(clf, image), self.batch_size or clf.batch_size)


# ------------------------------------------------------------------------------------ attention mask
class AttentionMask(Absence):
    """Keep every token, but hide absent patches as attention keys from block ``layer`` on (ViTs).

    ``layer=0`` hides them everywhere; later layers let the first blocks see the whole image. The cost of a
    coalition is that of the full image, whatever its size.
    """

    name = "attention-mask"

    def __init__(self, layer: int = 0, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        if layer < 0:
            raise MethodError(f"attention masking starts at a block index >= 0; got {layer}")
        self.layer = int(layer)
        self.max_tokens = int(max_tokens)

    def describe(self) -> str:
        return f"attention-mask:{self.layer}"

    def bind(self, clf, image: torch.Tensor, grid: PatchGrid) -> BoundAbsence:
        _require_token_model(clf, "attention masking")
        depth = len(clf.adapter.blocks())
        if self.layer >= depth:
            raise MethodError(f"{clf.name} has blocks 0..{depth - 1}; attention masking from block {self.layer} "
                              "would mask nothing")
        return _BoundAttentionMask(clf, image, grid, self.layer, self.max_tokens)


class _BoundAttentionMask(_BoundTokenDrop):
    def __init__(self, clf, image: torch.Tensor, grid: PatchGrid, layer: int, max_tokens: int) -> None:
        super().__init__(clf, image, grid, max_tokens)
        self.layer = layer

    def logits(self, keep: torch.Tensor) -> torch.Tensor:
        return self.clf.forward_masked(self.image[None], self.token_mask(keep.to(self.clf.device)), self.layer)

    @classmethod
    def logits_across(cls, bounds: list[BoundAbsence], keep: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        return logits_per_image(bounds, keep, owner)  # every row is a full sequence: nothing to gain

    def chunk_rows(self, kept: int) -> int:
        return max(1, self.max_tokens // (self.tokens.shape[1] + self.clf.num_prefix_tokens))


# ------------------------------------------------------------------------------------------- helpers
def default_absence(clf) -> Absence:
    """Token dropping for ViTs, mean-colour fill for every other model (SPEC section 0)."""
    return TokenDrop() if getattr(clf, "is_token_model", False) else Fill("mean")


def make_absence(spec: str | Absence | None, clf=None) -> Absence:
    """An absence strategy from a short name.

    ``auto`` (or None): :func:`default_absence`; ``token-drop``; ``fill`` / ``fill:mean`` / ``fill:black`` /
    ``fill:blur`` / ``fill:0.5``; ``attention-mask`` / ``attention-mask:K`` (from block K).
    """
    if isinstance(spec, Absence):
        return spec
    if spec is None or spec == "auto":
        if clf is None:
            raise MethodError("absence 'auto' needs the classifier to choose")
        return default_absence(clf)
    kind, _, arg = str(spec).partition(":")
    if kind == "token-drop" and arg in ("", "fp32", "bf16"):
        return TokenDrop(precision=arg or "fp32")
    if kind == "fill":
        return Fill(_fill_value(arg or "mean"))
    if kind == "attention-mask":
        try:
            return AttentionMask(int(arg or 0))
        except ValueError:
            raise MethodError(f"attention-mask:K takes a block index; got {arg!r}") from None
    raise MethodError(f"unknown absence {spec!r}; use auto, token-drop, fill[:mean|black|blur|VALUE] or "
                      "attention-mask[:K]")


def _fill_value(arg: str) -> str | float | tuple[float, ...]:
    if arg in FILL_KINDS:
        return arg
    try:
        values = tuple(float(v) for v in arg.split(","))
    except ValueError:
        raise MethodError(f"fill takes mean, black, blur, a grey level or R,G,B; got {arg!r}") from None
    if len(values) not in (1, 3) or not all(math.isfinite(v) and 0 <= v <= 1 for v in values):
        raise MethodError(f"a fill value is one grey level or R,G,B, each between 0 and 1 (pixels are in [0,1]); "
                          f"got {arg!r}")
    return values[0] if len(values) == 1 else values
