"""What absence means for a representation's coefficients: replaced by adaptive Gaussian noise.

The RDE optimiser (CartoonX, Pixel RDE) and the rate-distortion curves that evaluate it must randomise
coefficients the same way and measure the same distortion, or the curves would score the explanations on
another problem than the one they solved; both therefore call this module:

* :class:`NoiseModel`: one mean and one std per band, from the clean image (SPEC A.4, A.9), Gaussian
  (CartoonX) or uniform on ``[mean - std, mean + std]`` (the WaveletX/ShearletX reference's choice);
* :func:`obfuscate`: ``h * s + (1 - s) * v`` band by band;
* :func:`l2_distortion`: the Euclidean (not squared) distance of softmax vectors (SPEC A.5, B.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import MethodError
from .representations import Bands


@dataclass
class NoiseModel:
    """Adaptive Gaussian noise: one mean and one (unbiased) std per band, from the clean image (SPEC A.4).

    For wavelets this pools each level over colour channels, orientations and positions; for pixels it is
    the whole image. ``zero=True`` gives the "zero" obfuscation strategy (noise identically 0).
    ``kind="uniform"`` draws uniformly from ``[mean - std, mean + std]`` instead of a Gaussian (the
    WaveletX/ShearletX reference's default, whose bounded draws never stray far from the band's values).
    """

    means: list[float]
    stds: list[float]
    kind: str = "gaussian"

    @classmethod
    def from_bands(cls, bands: Bands, zero: bool = False, kind: str = "gaussian") -> NoiseModel:
        if kind not in ("gaussian", "uniform"):
            raise MethodError(f"unknown noise kind {kind!r}; use 'gaussian' or 'uniform'")
        if zero:
            return cls([0.0] * len(bands), [0.0] * len(bands), kind)
        return cls([float(b.mean()) for b in bands], [float(b.std()) for b in bands], kind)

    def sample(self, bands: Bands, n: int, generator: torch.Generator) -> Bands:
        """``n`` noise draws per band, shape ``(n, *band.shape)``; bands drawn in order from ``generator``."""
        out = []
        for band, mean, std in zip(bands, self.means, self.stds):
            if self.kind == "uniform":
                z = 2 * torch.rand((n, *band.shape), generator=generator, dtype=band.dtype) - 1
            else:
                z = torch.randn((n, *band.shape), generator=generator, dtype=band.dtype)
            out.append((mean + std * z).to(band.device))
        return out


def obfuscate(bands: Bands, masks: Bands, noise: Bands) -> Bands:
    """``h * s + (1 - s) * v`` band by band; masks broadcast over the sample and colour axes."""
    return [h * s + (1 - s) * v for h, s, v in zip(bands, masks, noise)]


def l2_distortion(probs: torch.Tensor, clean_probs: torch.Tensor) -> torch.Tensor:
    """Per row of ``probs`` ``(L,K)``, the Euclidean norm (not squared) of its difference from the clean
    softmax vector ``clean_probs`` (``(K,)`` or ``(1,K)``): ``(L,)``."""
    return (probs - clean_probs.reshape(1, -1)).norm(dim=1)
