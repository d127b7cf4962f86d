"""What a part is for the rate-distortion explanations (CartoonX, Pixel RDE) and their evaluation curves.

A :class:`Representation` turns an image into named coefficient bands and back: DWT coefficients for
CartoonX and WaveletX (:class:`WaveletRepresentation`), shearlet coefficients for ShearletX
(:class:`ShearletRepresentation`), the pixels themselves for Pixel RDE (:class:`PixelRepresentation`).
The mask of an explanation has one entry per band entry, shared across the colour channels (the colour axis is
the first axis of every band). The RDE optimiser (:mod:`clearsight.methods.rde`) and the rate-distortion
curves (:mod:`clearsight.evaluation.rate_distortion`) both rank and randomise these entries, so they live here,
in one place, rather than with either of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch

from ..errors import MethodError
from ..shearlets import DEFAULT_SCALES, ShearletTransform
from ..wavelets import WaveletTransform

#: one tensor per band; batched bands carry a leading sample axis
Bands = list[torch.Tensor]


class Representation(ABC):
    """How an image becomes maskable coefficient bands and back.

    Every band has the colour channels on its first axis; the mask of a band has the band's shape
    without that axis, so one mask value covers the three colour channels of a coefficient.
    """

    name: str
    #: whether obfuscated images are clamped to [0,1] (CartoonX: yes; Pixel RDE: no, as the reference)
    clamp: bool

    @abstractmethod
    def analyze(self, image: torch.Tensor) -> Bands:
        """Coefficient bands of a ``(C,H,W)`` image."""

    @abstractmethod
    def synthesize(self, bands: Bands, size: tuple[int, int]) -> torch.Tensor:
        """Images ``(L,C,H,W)`` from batched bands ``(L,C,...)`` (clamped when :attr:`clamp`)."""

    @abstractmethod
    def band_names(self) -> list[str]:
        """Names of the bands, used as keys of ``Explanation.mask``."""

    def settings(self) -> dict[str, Any]:
        return {"representation": self.name, "clamp": self.clamp}


class PixelRepresentation(Representation):
    """The image itself: one band, one mask value per pixel (Pixel RDE, SPEC A.9)."""

    name = "pixel"

    def __init__(self, clamp: bool = False) -> None:
        self.clamp = clamp

    def analyze(self, image: torch.Tensor) -> Bands:
        return [image]

    def synthesize(self, bands: Bands, size: tuple[int, int]) -> torch.Tensor:
        out = bands[0]
        return out.clamp(0, 1) if self.clamp else out

    def band_names(self) -> list[str]:
        return ["pixels"]


class WaveletRepresentation(Representation):
    """DWT coefficients: the low-pass band ``yl`` and detail bands ``yh0`` (finest) to ``yh{J-1}``.

    Masks have shapes ``(h_J, w_J)`` for ``yl`` and ``(3, h_j, w_j)`` (orientations) for ``yh{j}``, the
    layout of the CartoonX reference.
    """

    name = "wavelet"

    def __init__(self, wave: str = "db3", level: int = 5, mode: str = "zero", clamp: bool = True) -> None:
        self.transform = WaveletTransform(wave, level, mode)
        self.clamp = clamp

    def analyze(self, image: torch.Tensor) -> Bands:
        yl, yh = self.transform.forward(image)
        return [yl, *yh]

    def synthesize(self, bands: Bands, size: tuple[int, int]) -> torch.Tensor:
        out = self.transform.inverse(bands[0], list(bands[1:]), size=size)
        return out.clamp(0, 1) if self.clamp else out

    def band_names(self) -> list[str]:
        return ["yl", *(f"yh{j}" for j in range(self.transform.level))]

    def settings(self) -> dict[str, Any]:
        t = self.transform
        return {**super().settings(), "wave": t.wave, "level": t.level, "mode": t.mode}


class ShearletRepresentation(Representation):
    """Shearlet coefficients (:mod:`clearsight.shearlets`): one band per shearlet, ``s0`` the low-pass, then
    the scales coarsest first; every band is ``(C, H, W)`` and its mask ``(H, W)`` (ShearletX).

    One band per shearlet, not one per scale, so that the adaptive noise
    (:class:`~clearsight.parts.obfuscation.NoiseModel`) keeps each shearlet's own mean and spread: the
    low-pass carries the image's brightness and the fine shearlets near-zero detail, and one pooled
    statistic would flood the fine ones with noise of the low-pass's size. The obfuscated *coefficients* are
    never clamped (the reference clamps them to [0,1], which throws away every negative detail
    coefficient); only the synthesised image is, when :attr:`clamp`.
    """

    name = "shearlet"

    def __init__(self, scales: int = DEFAULT_SCALES, clamp: bool = True) -> None:
        self.transform = ShearletTransform(scales)
        self.clamp = clamp

    def analyze(self, image: torch.Tensor) -> Bands:
        coeffs = self.transform.forward(image)  # (C, K, H, W)
        return list(coeffs.unbind(dim=-3))

    def synthesize(self, bands: Bands, size: tuple[int, int]) -> torch.Tensor:
        out = self.transform.inverse(torch.stack(list(bands), dim=-3))
        return out.clamp(0, 1) if self.clamp else out

    def band_names(self) -> list[str]:
        return [f"s{k}" for k in range(self.transform.count)]

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "scales": self.transform.scales}


def representation_from_settings(settings: dict[str, Any]) -> Representation:
    """Rebuild the representation recorded in ``Explanation.settings``."""
    kind = settings.get("representation")
    if kind == "pixel":
        return PixelRepresentation(clamp=bool(settings.get("clamp", False)))
    if kind == "wavelet":
        return WaveletRepresentation(settings.get("wave", "db3"), int(settings.get("level", 5)),
                                     settings.get("mode", "zero"), clamp=bool(settings.get("clamp", True)))
    if kind == "shearlet":
        return ShearletRepresentation(int(settings.get("scales", DEFAULT_SCALES)),
                                      clamp=bool(settings.get("clamp", True)))
    raise MethodError(f"these settings describe no RDE representation (representation={kind!r})")
