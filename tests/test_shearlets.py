"""The shearlet transform is a Parseval frame (exact inversion, energy kept), real, directional, differentiable."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from clearsight.errors import InputShapeError
from clearsight.shearlets import ShearletTransform, _filters_full, directions, sheardec, shearrec
from clearsight.wavelets import dwt

from .conftest import SAMPLES


def photos(size: tuple[int, int], n: int = 2, dtype=torch.float64) -> torch.Tensor:
    """``n`` real sample photos squashed to ``size`` (H, W), as a (n, 3, H, W) batch in [0, 1]."""
    files = sorted(SAMPLES.glob("*.JPEG"))[:n]
    arrays = [np.asarray(Image.open(f).convert("RGB").resize((size[1], size[0])), dtype=np.float64) / 255
              for f in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(dtype)


def test_49_shearlets_like_shearlabs_default_system():
    t = ShearletTransform()
    assert [directions(j) for j in range(4)] == [8, 8, 16, 16]
    assert t.count == 49 and len(t.info()) == 49
    assert [s.stop - s.start for s in t.scale_slices()] == [8, 8, 16, 16]


@pytest.mark.parametrize("size", [(224, 224), (256, 256), (201, 233)])
def test_filters_tile_the_frequency_plane(size):
    """sum_k |psi_k|^2 = 1 at every frequency: the condition for a Parseval frame."""
    psi = ShearletTransform().filters(*size, dtype=torch.float64)
    assert psi.shape == (49, size[0], size[1] // 2 + 1)
    assert (psi.pow(2).sum(0) - 1).abs().max() < 1e-12
    assert psi.min() >= 0


@pytest.mark.parametrize("size", [(224, 224), (256, 256), (201, 233), (97, 64)])
def test_perfect_reconstruction_of_real_photos(size, one_thread):
    x = photos(size)
    t = ShearletTransform()
    coeffs = t.forward(x)
    assert coeffs.shape == (2, 3, 49, *size) and coeffs.dtype == torch.float64
    assert (t.inverse(coeffs) - x).abs().max() < 1e-12
    # Parseval: the coefficients carry exactly the image's energy
    assert torch.allclose(coeffs.pow(2).sum(), x.pow(2).sum(), rtol=1e-12)
    # float32: measured max error 5.4e-7 on 224x224 photos
    x32 = x.float()
    assert (shearrec(sheardec(x32)) - x32).abs().max() < 1e-5


def test_coefficients_are_real_and_equal_a_full_complex_fft_computation(one_thread):
    """The rfft path equals filtering with the full (symmetrised) filters by complex FFTs, whose imaginary part
    vanishes: the filters are exactly symmetric also on the Nyquist row and column of even sizes."""
    x = photos((64, 81), n=1)[0, 0]
    full = _filters_full(64, 81, 4)
    rows, cols = (-torch.arange(64)) % 64, (-torch.arange(81)) % 81
    sym = ((full**2 + full[:, rows][:, :, cols] ** 2) / 2).sqrt()
    reference = torch.fft.ifft2(torch.fft.fft2(x) * sym)
    assert reference.imag.abs().max() < 1e-14
    assert (sheardec(x) - reference.real).abs().max() < 1e-13


def test_filters_are_cached_per_size_device_and_dtype():
    t = ShearletTransform()
    assert t.filters(64, 64) is ShearletTransform(4).filters(64, 64)
    assert t.filters(64, 64, dtype=torch.float64) is not t.filters(64, 64)
    assert t.filters(64, 64).dtype == torch.float32


def test_gradients_flow_both_ways():
    t = ShearletTransform(scales=2)
    x = torch.rand(1, 2, 8, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                   requires_grad=True)
    assert torch.autograd.gradcheck(t.forward, (x,), fast_mode=True)
    c = torch.rand(1, t.count, 8, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(1),
                   requires_grad=True)
    assert torch.autograd.gradcheck(t.inverse, (c,), fast_mode=True)


def test_synthesis_is_the_adjoint_of_analysis():
    """<T x, c> = <x, T* c> for any coefficients c: masking coefficients and synthesising is well defined."""
    g = torch.Generator().manual_seed(2)
    t = ShearletTransform(scales=3)
    x = torch.rand(40, 37, dtype=torch.float64, generator=g)
    c = torch.randn(t.count, 40, 37, dtype=torch.float64, generator=g)
    assert torch.allclose((t.forward(x) * c).sum(), (x * t.inverse(c)).sum(), rtol=1e-12)


def _edge_image(theta_deg: float, n: int = 128) -> torch.Tensor:
    """A soft straight edge through the centre, its line at ``theta`` degrees from the x-axis towards the
    rows (y down), faded out by a smooth disc so that the periodic borders add no edges."""
    coords = torch.arange(n, dtype=torch.float64) - n / 2 + 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    rr = (xx**2 + yy**2).sqrt()
    fade = torch.cos(((rr - 0.3 * n) / (0.15 * n)).clamp(0, 1) * math.pi / 2) ** 2
    th = math.radians(theta_deg)
    return torch.sigmoid(4.0 * (yy * math.cos(th) - xx * math.sin(th))) * fade


@pytest.mark.parametrize("theta", [0, 10, 30, 45, 60, 90, 120, 135, 170])
def test_an_edge_excites_the_shearlet_of_its_orientation(theta, one_thread):
    """Shearlets are directional: the finest scale's energy sits in the shearlet whose orientation matches the
    edge (within half the angular spacing, at most 7.1 degrees) and its two neighbours (at least 75%, measured
    0.79 to 1.00). A wavelet level splits a 30-degree edge's energy over two of its three orientations."""
    t = ShearletTransform()
    fine = t.scale_slices()[-1]
    energy = t.forward(_edge_image(theta))[fine].pow(2).sum((-2, -1))
    k = int(energy.argmax())
    angle = t.info()[fine.start + k]["edge_angle"]
    assert abs((angle - theta + 90) % 180 - 90) <= 7.2
    neighbours = energy[[k - 1, k, (k + 1) % len(energy)]].sum() / energy.sum()
    assert neighbours > 0.75


def test_shearlets_tell_apart_edges_that_one_wavelet_band_lumps_together(one_thread):
    """The user-relevant contrast: db3's finest level puts most energy of 0-, 10- and 30-degree edges in the
    same (horizontal-detail) band (measured 100%, 99.8%, 81%), while the finest shearlets pick three
    different shearlets for them."""
    t = ShearletTransform()
    fine = t.scale_slices()[-1]
    wavelet_bands, shearlets = set(), set()
    for theta in (0, 10, 30):
        image = _edge_image(theta)
        _, yh = dwt(image, level=1)
        wavelet_bands.add(int(yh[0].pow(2).sum((-2, -1)).argmax()))
        shearlets.add(int(t.forward(image)[fine].pow(2).sum((-2, -1)).argmax()))
    assert len(wavelet_bands) == 1
    assert len(shearlets) == 3


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(InputShapeError):
        ShearletTransform(scales=0)
    with pytest.raises(InputShapeError, match="at least 32x32"):
        ShearletTransform().forward(torch.rand(3, 20, 40))
    with pytest.raises(InputShapeError, match="49"):
        ShearletTransform().inverse(torch.rand(3, 48, 64, 64))
    with pytest.raises(InputShapeError):
        ShearletTransform().forward(torch.ones(64, 64, dtype=torch.int64))
