"""The DWT reproduces the reference's coefficient layout and PyWavelets' values, and inverts exactly."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch

from clearsight.errors import InputShapeError
from clearsight.wavelets import WaveletTransform, dwt, idwt


@pytest.mark.parametrize(
    ("size", "low", "details"),
    [(256, 12, [130, 67, 36, 20, 12]), (224, 11, [114, 59, 32, 18, 11])],
)
def test_coefficient_shapes_match_the_reference(size, low, details):
    yl, yh = dwt(torch.rand(2, 3, size, size))
    assert yl.shape == (2, 3, low, low)
    assert [tuple(b.shape) for b in yh] == [(2, 3, 3, d, d) for d in details]
    assert WaveletTransform().band_sizes(size, size) == [(d, d) for d in details]


@pytest.mark.parametrize("size", [(256, 256), (224, 224), (61, 90)])
def test_reconstruction_within_1e5(size):
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    yl, yh = dwt(x)
    back = idwt(yl, yh, size=size)
    assert back.shape == x.shape
    assert (back - x).abs().max() < 1e-5


def test_coefficients_equal_pywavelets():
    x = torch.rand(3, 160, 176, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    yl, yh = dwt(x)
    ref = pywt.wavedec2(x.numpy(), "db3", mode="zero", level=5)
    np.testing.assert_allclose(yl.numpy(), ref[0], atol=1e-10)
    for j, band in enumerate(yh):  # ours finest first, PyWavelets coarsest first
        for o in range(3):
            np.testing.assert_allclose(band[:, o].numpy(), ref[5 - j][o], atol=1e-10)


def test_gradients_flow_through_the_inverse():
    yl, yh = dwt(torch.rand(1, 3, 32, 32))
    yl.requires_grad_(True)
    idwt(yl, yh).sum().backward()
    assert yl.grad is not None and yl.grad.abs().sum() > 0


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(InputShapeError):
        WaveletTransform(wave="nope")
    with pytest.raises(InputShapeError):
        WaveletTransform(level=0)
