"""A differentiable, cone-adapted digital shearlet transform on ``torch.fft`` (a Parseval frame).

ShearletX (Kolek et al., CVPR 2023) masks the shearlet coefficients of an image. No maintained shearlet
package exists for PyTorch (the reference calls ShearLab's ``SLgetShearletSystem2D`` through ``pyshearlab``
and moves the filters to torch), so this module builds a band-limited system directly in the frequency
domain. The filters depend only on the image size and the number of scales and are computed once per
``(H, W, scales, device, dtype)``.

What is built (frequencies ``xi = (xi1, xi2)`` in cycles per pixel, ``xi1`` along the width, ``xi2`` along
the height, both in ``[-1/2, 1/2)``):

* **Radial (scale) windows** on the max-norm ``r = max(|xi1|, |xi2|)``, whose level sets are the squares
  that fit the two cones. With ``P_a(r) = cos(pi/2 * nu(r/a - 1))`` (1 below ``a``, 0 above ``2a``, Meyer's
  polynomial ``nu(t) = t^4 (35 - 84t + 70t^2 - 20t^3)`` in between) the low-pass is ``phi = P_c`` with
  ``c = 2^-(J+1)``, and scale ``j = 0..J-1`` (coarsest first) is ``W_j = sqrt(P_{2^j 2c}^2 - P_{2^j c}^2)``;
  the finest uses 1 in place of ``P_{1/2}``. The squares telescope: ``phi^2 + sum_j W_j^2 = 1``.
* **Directional (shear) windows**: two cones, horizontal ``|xi2| <= |xi1|`` (slope ``u = xi2/xi1``) and
  vertical (slope ``v = xi1/xi2``), glued into one periodic pseudo-angle ``t = u`` (horizontal cone) or
  ``t = 2 - v`` (vertical cone), ``t`` modulo 4. Scale ``j`` has shear level ``l_j = ceil((j+1)/2)`` (as
  ShearLab's default ``ceil((1:J)/2)``) and ``2^(l_j+2)`` directions centred at ``t_k = k / 2^l_j``:
  in each cone the shears ``k = -2^l..2^l`` of ShearLab, the two diagonal ones (``k = +-2^l``) shared by the
  cones, as in ShearLab. Window ``k`` is ``g((t - t_k) 2^l)`` with ``g(x) = cos(pi/2 * nu(|x|))`` on
  ``[-1, 1]``, so ``sum_k g^2 = 1`` at every ``t``.
* The filter of shearlet ``(j, k)`` is ``W_j(r) * g_k(t)``; with the low-pass, ``sum |psi|^2 = 1`` at every
  frequency: a Parseval frame. Analysis multiplies the image spectrum by each filter, synthesis multiplies
  each coefficient spectrum by the same (real) filter and sums, so synthesis is the adjoint of analysis
  and inverts it exactly.
* **Real coefficients**: ``r`` and the slopes are even in ``xi``, so the filters are real and symmetric,
  except on the Nyquist row/column of even sizes, where the grid's ``-xi`` is not the computed one. There
  each filter is replaced by ``sqrt((psi(xi)^2 + psi(-xi)^2) / 2)`` (grid negation), which keeps the sum
  of squares at 1 and makes every filter exactly symmetric; the spectra of real images times such filters
  are Hermitian, so ``rfft2``/``irfft2`` give real coefficients with no imaginary part to drop.

Four scales (the reference's choice) give ``1 + 8 + 8 + 16 + 16 = 49`` shearlets, as many as ShearLab's
default system. Differences from ``SLgetShearletSystem2D``: ShearLab's shearlets are compactly supported in
space (built from a 2-D fan filter and a 1-D quadrature mirror filter) and form a frame that is not tight, so
the reference divides by ``dualFrameWeights`` (``sum |psi|^2``) when it reconstructs; ours are band-limited
(compact support in frequency, fast decay in space), Parseval, and need no dual weights. Scale and direction
bands therefore match ShearLab's in number, layout and dyadic/parabolic scaling, not filter by filter.

Layout: ``forward`` maps ``(..., H, W)`` to ``(..., K, H, W)``, index 0 the low-pass, then the scales
coarsest first, and within a scale the directions in increasing pseudo-angle from ``t = 0`` (vertical edges)
through the diagonal ``t = 1`` to horizontal edges (``t = 2``) and on. :meth:`ShearletTransform.info` names
each index and its edge orientation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from .errors import InputShapeError

#: default number of scales (the ShearletX reference's ``SLgetShearletSystem2D(0, H, W, 4)``)
DEFAULT_SCALES = 4


def _meyer(t: torch.Tensor) -> torch.Tensor:
    """Meyer's smooth step: 0 below 0, 1 above 1, ``nu(t) + nu(1-t) = 1`` in between."""
    t = t.clamp(0, 1)
    return t**4 * (35 - 84 * t + 70 * t**2 - 20 * t**3)


def _low(r: torch.Tensor, a: float) -> torch.Tensor:
    """1 for ``r <= a``, 0 for ``r >= 2a``, a smooth cosine fall in between."""
    return torch.cos(math.pi / 2 * _meyer(r / a - 1))


def shear_level(scale: int) -> int:
    """ShearLab's default shear level of 0-based scale ``j``: ``ceil((j+1)/2)``."""
    return (scale + 2) // 2


def directions(scale: int) -> int:
    """Number of shearlets at 0-based scale ``j``: ``2^(l_j + 2)`` (both cones, diagonals shared)."""
    return 2 ** (shear_level(scale) + 2)


def _pseudo_angle(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """``xi2/xi1`` in the horizontal cone, ``2 - xi1/xi2`` in the vertical one (0 at the origin)."""
    horizontal = x2.abs() <= x1.abs()
    safe1 = torch.where(x1 == 0, torch.ones_like(x1), x1)
    safe2 = torch.where(x2 == 0, torch.ones_like(x2), x2)
    t = torch.where(horizontal, x2 / safe1, 2 - x1 / safe2)
    return torch.where((x1 == 0) & (x2 == 0), torch.zeros_like(t), t)


def _filters_at(x1: torch.Tensor, x2: torch.Tensor, scales: int) -> torch.Tensor:
    """All ``K`` filters at the frequencies ``(x1, x2)`` (cycles per pixel), before symmetrisation."""
    r = torch.maximum(x1.abs(), x2.abs())
    t = _pseudo_angle(x1, x2)
    c = 2.0 ** -(scales + 1)
    out = [_low(r, c)]
    for j in range(scales):
        inner = _low(r, c * 2**j) ** 2
        outer = torch.ones_like(r) if j == scales - 1 else _low(r, c * 2 ** (j + 1)) ** 2
        radial = (outer - inner).clamp_min(0).sqrt()
        level = 2 ** shear_level(j)
        for k in range(directions(j)):
            d = torch.remainder(t - k / level + 2, 4) - 2  # distance in pseudo-angle, periodic (period 4)
            out.append(radial * torch.cos(math.pi / 2 * _meyer((d * level).abs())))
    return torch.stack(out)


def _filters_full(height: int, width: int, scales: int) -> torch.Tensor:
    """All ``K`` filters on the full ``(H, W)`` frequency grid, float64, before symmetrisation."""
    x2 = torch.fft.fftfreq(height, dtype=torch.float64)[:, None].expand(height, width)
    x1 = torch.fft.fftfreq(width, dtype=torch.float64)[None, :].expand(height, width)
    return _filters_at(x1, x2, scales)


@lru_cache(maxsize=16)
def _filters_cpu64(height: int, width: int, scales: int) -> torch.Tensor:
    """The symmetrised filters in ``rfft2`` layout ``(K, H, W//2 + 1)``, float64 on the CPU: each filter at
    the half-plane's frequencies and at the grid's negatives of them (which differ on Nyquist lines only)."""
    half = width // 2 + 1
    f2, f1 = torch.fft.fftfreq(height, dtype=torch.float64), torch.fft.fftfreq(width, dtype=torch.float64)
    x2, x1 = f2[:, None].expand(height, half), f1[None, :half].expand(height, half)
    n2 = f2[(-torch.arange(height)) % height][:, None].expand(height, half)
    n1 = f1[(-torch.arange(half)) % width][None, :].expand(height, half)
    return ((_filters_at(x1, x2, scales) ** 2 + _filters_at(n1, n2, scales) ** 2) / 2).sqrt().contiguous()


@lru_cache(maxsize=32)
def _filters_on(height: int, width: int, scales: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    return _filters_cpu64(height, width, scales).to(device=device, dtype=dtype)


@dataclass(frozen=True)
class ShearletTransform:
    """A band-limited cone-adapted shearlet Parseval frame with ``scales`` scales (see the module doc).

    Both directions work on the last two axes of tensors of any leading shape and keep the autograd graph.
    The transform is redundant (``K`` coefficients per pixel, 49 for four scales) and shift-invariant
    (no subsampling), with periodic boundaries.
    """

    scales: int = DEFAULT_SCALES

    def __post_init__(self) -> None:
        if not isinstance(self.scales, int) or self.scales < 1:
            raise InputShapeError(f"the number of shearlet scales must be a positive integer, got {self.scales!r}")

    @property
    def count(self) -> int:
        """Number of shearlets ``K``, the low-pass included."""
        return 1 + sum(directions(j) for j in range(self.scales))

    def scale_slices(self) -> list[slice]:
        """Index range of each scale in the coefficient axis, coarsest first (the low-pass is index 0)."""
        out, start = [], 1
        for j in range(self.scales):
            out.append(slice(start, start + directions(j)))
            start += directions(j)
        return out

    def info(self) -> list[dict]:
        """One entry per index: ``scale`` (-1 for the low-pass), ``direction`` and ``edge_angle``, the
        orientation in degrees in [0, 180) of the edges it responds to most, measured from the image's
        x-axis (to the right) towards its y-axis (down the rows); None for the low-pass."""
        out: list[dict] = [{"index": 0, "scale": -1, "direction": None, "edge_angle": None}]
        for j in range(self.scales):
            level = 2 ** shear_level(j)
            for k in range(directions(j)):
                t = k / level
                if t <= 1 or t > 3:  # horizontal cone: frequency slope xi2/xi1 = t (t in (-1, 1])
                    tt = t - 4 if t > 3 else t
                    freq = math.degrees(math.atan(tt))
                else:  # vertical cone: xi1/xi2 = 2 - t
                    freq = 90.0 - math.degrees(math.atan(2 - t))
                out.append({"index": len(out), "scale": j, "direction": k, "edge_angle": (freq + 90.0) % 180.0})
        return out

    def _check(self, height: int, width: int) -> None:
        smallest = 2 ** (self.scales + 1)
        if min(height, width) < smallest:
            raise InputShapeError(f"{self.scales} shearlet scales need images of at least {smallest}x{smallest} "
                                  f"pixels, got {height}x{width}; use fewer scales")

    def filters(self, height: int, width: int, device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The real filters ``(K, H, W//2 + 1)`` in ``rfft2`` layout (cached; do not modify in place)."""
        self._check(height, width)
        return _filters_on(height, width, self.scales, str(torch.device(device)), dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Coefficients ``(..., K, H, W)`` of ``x`` (shape ``(..., H, W)``, real floating point)."""
        if x.ndim < 2 or not x.is_floating_point():
            raise InputShapeError(f"the shearlet transform needs a real float tensor of at least 2-D, "
                                  f"got shape {tuple(x.shape)} and dtype {x.dtype}")
        height, width = x.shape[-2:]
        psi = self.filters(height, width, x.device, x.dtype)
        spectrum = torch.fft.rfft2(x)
        return torch.fft.irfft2(spectrum.unsqueeze(-3) * psi, s=(height, width))

    def inverse(self, coeffs: torch.Tensor) -> torch.Tensor:
        """The image ``(..., H, W)`` of coefficients ``(..., K, H, W)``: exact for ``forward``'s output, and
        the adjoint of ``forward`` for any coefficients (masked ones included)."""
        if coeffs.ndim < 3 or coeffs.shape[-3] != self.count:
            raise InputShapeError(f"expected coefficients of shape (..., {self.count}, H, W) for {self.scales} "
                                  f"scales, got {tuple(coeffs.shape)}")
        height, width = coeffs.shape[-2:]
        psi = self.filters(height, width, coeffs.device, coeffs.dtype)
        spectrum = (torch.fft.rfft2(coeffs) * psi).sum(dim=-3)
        return torch.fft.irfft2(spectrum, s=(height, width))


def sheardec(x: torch.Tensor, scales: int = DEFAULT_SCALES) -> torch.Tensor:
    """Shorthand for ``ShearletTransform(scales).forward(x)``."""
    return ShearletTransform(scales).forward(x)


def shearrec(coeffs: torch.Tensor, scales: int = DEFAULT_SCALES) -> torch.Tensor:
    """Shorthand for ``ShearletTransform(scales).inverse(coeffs)``."""
    return ShearletTransform(scales).inverse(coeffs)


__all__ = ["DEFAULT_SCALES", "ShearletTransform", "directions", "shear_level", "sheardec", "shearrec"]
