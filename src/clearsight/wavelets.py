"""A small, differentiable 2-D discrete wavelet transform on top of ``ptwt``.

CartoonX masks wavelet coefficients, so it needs a DWT that is batched, differentiable and reproduces the
coefficient layout of the reference implementation (``pytorch_wavelets``), so that masks can be exchanged
with it. ``ptwt`` computes the same coefficients as PyWavelets; this module only fixes the conventions:

* ``yl``: the low-pass (approximation) band, shape ``(..., h_J, w_J)``;
* ``yh``: a list of ``J`` detail bands, **finest first**, each ``(..., 3, h_j, w_j)`` where the axis of
  length 3 holds the orientations (horizontal, vertical, diagonal detail = PyWavelets' cH, cV, cD).

PyWavelets and ptwt list levels coarsest first; pytorch_wavelets (and therefore the CartoonX reference and
its saved masks) list them finest first, which is what we follow. Defaults are those of the reference:
Daubechies-3, five levels, zero padding. Per level a side of length ``n`` becomes ``floor((n + 5) / 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import ptwt
import pywt
import torch

from .errors import InputShapeError

Coefficients = tuple[torch.Tensor, list[torch.Tensor]]


@dataclass(frozen=True)
class WaveletTransform:
    """A separable 2-D DWT with a fixed wavelet, number of levels and boundary mode.

    Both directions work on the last two axes of tensors of any leading shape and keep the autograd graph,
    so a loss on the reconstruction can be differentiated with respect to the coefficients.
    """

    wave: str = "db3"
    level: int = 5
    mode: str = "zero"

    def __post_init__(self) -> None:
        if self.wave not in pywt.wavelist(kind="discrete"):
            raise InputShapeError(f"unknown discrete wavelet {self.wave!r}; see pywt.wavelist(kind='discrete')")
        if self.level < 1:
            raise InputShapeError(f"the number of wavelet levels must be at least 1, got {self.level}")

    @property
    def filter_length(self) -> int:
        return pywt.Wavelet(self.wave).dec_len

    def band_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Spatial size of each level's bands, finest first (the last one is also the low-pass size)."""
        sizes, h, w = [], height, width
        for _ in range(self.level):
            h, w = (h + self.filter_length - 1) // 2, (w + self.filter_length - 1) // 2
            sizes.append((h, w))
        return sizes

    def forward(self, x: torch.Tensor) -> Coefficients:
        """``(yl, yh)`` of ``x`` (shape ``(..., H, W)``, at least 2-D); ``yh`` finest first."""
        if x.ndim < 2:
            raise InputShapeError(f"the wavelet transform needs at least a 2-D tensor, got shape {tuple(x.shape)}")
        lead = x.shape[:-2]
        flat = x.reshape(-1, *x.shape[-2:])
        coeffs = ptwt.wavedec2(flat, self.wave, mode=self.mode, level=self.level)
        yl = coeffs[0].reshape(*lead, *coeffs[0].shape[-2:])
        yh = [torch.stack(tuple(detail), dim=-3).reshape(*lead, 3, *detail[0].shape[-2:])
              for detail in reversed(coeffs[1:])]
        return yl, yh

    def inverse(self, yl: torch.Tensor, yh: list[torch.Tensor], size: tuple[int, int] | None = None) -> torch.Tensor:
        """Rebuild the signal from ``(yl, yh)``; ``size`` crops odd-sized inputs back to ``(H, W)``."""
        if len(yh) != self.level:
            raise InputShapeError(f"expected {self.level} detail levels, got {len(yh)}")
        lead = yl.shape[:-2]
        low = yl.reshape(-1, *yl.shape[-2:])
        details = []
        for band in reversed(yh):  # ptwt wants coarsest first
            band = band.reshape(-1, 3, *band.shape[-2:])
            details.append(ptwt.constants.WaveletDetailTuple2d(band[:, 0], band[:, 1], band[:, 2]))
        out = ptwt.waverec2((low, *details), self.wave)
        if size is not None:
            out = out[..., : size[0], : size[1]]
        return out.reshape(*lead, *out.shape[-2:])


def dwt(x: torch.Tensor, wave: str = "db3", level: int = 5, mode: str = "zero") -> Coefficients:
    """Shorthand for ``WaveletTransform(wave, level, mode).forward(x)``."""
    return WaveletTransform(wave, level, mode).forward(x)


def idwt(yl: torch.Tensor, yh: list[torch.Tensor], wave: str = "db3", mode: str = "zero",
         size: tuple[int, int] | None = None) -> torch.Tensor:
    """Shorthand for ``WaveletTransform(wave, len(yh), mode).inverse(yl, yh, size)``."""
    return WaveletTransform(wave, len(yh), mode).inverse(yl, yh, size)


__all__ = ["Coefficients", "WaveletTransform", "dwt", "idwt"]
