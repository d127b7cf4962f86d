"""`PatchGrid`: which pixels (and which ViT tokens) each player of the patch game covers.

MoXI, Shapley sampling and the insertion/deletion curves all treat an image as N non-overlapping square
patches indexed row-major (index = row * cols + col), the same order as a ViT's patch tokens. A coalition
is a ``(B,N)`` boolean tensor of *kept* patches: one meaning of "mask" everywhere (the MoXI reference used
kept-index lists in one place and binary maps in another).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import InputShapeError, MethodError

#: Patch size used for models without a patch grid of their own (14x14 patches at 224 pixels).
DEFAULT_PATCH = 16


@dataclass(frozen=True)
class PatchGrid:
    """N = rows x cols patches of ``patch`` x ``patch`` pixels over a ``height`` x ``width`` image."""

    height: int
    width: int
    patch: int

    def __post_init__(self) -> None:
        if self.patch <= 0 or self.height % self.patch or self.width % self.patch:
            raise InputShapeError(
                f"a {self.height}x{self.width} image does not split into {self.patch}x{self.patch} patches; "
                "choose a patch size that divides the image size"
            )

    @classmethod
    def for_classifier(cls, clf, patch: int | None = None) -> PatchGrid:
        """The grid for ``clf``'s input: a ViT's own patches by default, 16-pixel patches otherwise."""
        size = clf.input_size
        if patch is None:
            patch = clf.patch_size if getattr(clf, "is_token_model", False) else _default_patch(size)
        return cls(size, size, int(patch))

    @property
    def rows(self) -> int:
        return self.height // self.patch

    @property
    def cols(self) -> int:
        return self.width // self.patch

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def size(self) -> int:
        """Number of players N."""
        return self.rows * self.cols

    def check_coalitions(self, keep: torch.Tensor) -> torch.Tensor:
        """A ``(B,N)`` (or ``(N,)``) boolean keep-mask, checked; returns it as 2-D bool."""
        keep = torch.as_tensor(keep)
        if keep.ndim == 1:
            keep = keep[None]
        if keep.ndim != 2 or keep.shape[1] != self.size:
            raise InputShapeError(f"coalitions must be a (B,{self.size}) keep-mask; got {tuple(keep.shape)}")
        return keep.bool()

    def pixel_mask(self, keep: torch.Tensor) -> torch.Tensor:
        """``(B,N)`` keep-mask to a ``(B,1,H,W)`` float mask (1 = kept pixel), nearest upsampling."""
        keep = self.check_coalitions(keep)
        grid = keep.float().reshape(-1, 1, self.rows, self.cols)
        return grid.repeat_interleave(self.patch, 2).repeat_interleave(self.patch, 3)

    def to_grid(self, values: torch.Tensor) -> torch.Tensor:
        """Per-patch values ``(N,)`` or ``(B,N)`` reshaped to ``(rows,cols)`` / ``(B,rows,cols)``."""
        values = torch.as_tensor(values)
        return values.reshape(*values.shape[:-1], self.rows, self.cols)

    def to_pixels(self, values: torch.Tensor) -> torch.Tensor:
        """Per-patch values ``(N,)`` as an ``(H,W)`` map, each patch filled with its value."""
        grid = self.to_grid(torch.as_tensor(values).float())
        return grid.repeat_interleave(self.patch, -2).repeat_interleave(self.patch, -1)

    def pool(self, saliency: torch.Tensor) -> torch.Tensor:
        """Mean of an ``(H,W)`` map (or ``(h,w)`` at any resolution) over each patch: ``(N,)``.

        Maps at another resolution (a CNN's 7x7 Grad-CAM) are resized bilinearly to the image first.
        """
        sal = torch.as_tensor(saliency).float()
        if sal.ndim != 2:
            raise InputShapeError(f"a saliency map must be 2-D; got shape {tuple(sal.shape)}")
        if tuple(sal.shape) == self.shape:
            return sal.reshape(-1)
        if tuple(sal.shape) != (self.height, self.width):
            sal = F.interpolate(sal[None, None], size=(self.height, self.width), mode="bilinear",
                                align_corners=False)[0, 0]
        return F.avg_pool2d(sal[None, None], self.patch)[0, 0].reshape(-1)

    def token_groups(self, token_patch: int, token_grid: tuple[int, int]) -> torch.Tensor:
        """For a ViT whose tokens are ``token_patch`` pixels: the token indices each player covers, ``(N,t)``.

        Players may be coarser than tokens (e.g. 7x7 players of 2x2 tokens each), never finer.
        """
        if self.patch % token_patch or (self.rows * self.patch) != token_grid[0] * token_patch:
            raise MethodError(
                f"token dropping needs patches that are multiples of the model's {token_patch}-pixel tokens; "
                f"got {self.patch}-pixel patches (use Fill for other patch sizes)"
            )
        f = self.patch // token_patch
        rows = torch.arange(self.rows)[:, None, None, None] * f + torch.arange(f)[None, None, :, None]
        cols = torch.arange(self.cols)[None, :, None, None] * f + torch.arange(f)[None, None, None, :]
        index = rows * token_grid[1] + cols  # (rows, cols, f, f)
        return index.reshape(self.size, f * f)


def _default_patch(size: int) -> int:
    """16 pixels when it divides the input (224 -> 14x14), else the size over 14 when that divides."""
    if size % DEFAULT_PATCH == 0:
        return DEFAULT_PATCH
    if size % 14 == 0:
        return size // 14
    raise InputShapeError(f"no default patch size for {size}-pixel inputs; pass patch_size explicitly")
