"""Quantus scores clearsight's methods through :func:`clearsight.interop.quantus_explain_func`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import clearsight
from clearsight.interop import quantus_explain_func

from .conftest import MODELS, SAMPLES

quantus = pytest.importorskip("quantus")

PHOTOS = [SAMPLES / "n01440764_tench.JPEG", SAMPLES / "n01558993_robin.JPEG"]
MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


@pytest.fixture(scope="module")
def setup():
    """A user's MobileNetV2 with real weights and Quantus' usual inputs: a normalised numpy batch, labels."""
    import torchvision

    model = torchvision.models.mobilenet_v2(weights=None)
    model.load_state_dict(torch.load(MODELS / "mobilenet_v2.pth", map_location="cpu", weights_only=True))
    model.eval()
    clf = clearsight.load_model("torchvision:mobilenet_v2", weights=MODELS / "mobilenet_v2.pth")
    images = torch.stack([clf.prepare(p) for p in PHOTOS])
    x_batch = ((images - MEAN) / STD).numpy()
    return model, images, x_batch, np.array([0, 15])


@pytest.mark.slow
def test_explain_func_follows_quantus_contract_and_matches_clearsight(setup, one_thread):
    model, images, x_batch, y_batch = setup
    explain_func = quantus_explain_func("gradcam")
    maps = explain_func(model=model, inputs=x_batch, targets=y_batch, device="cpu")
    assert maps.shape == (2, 224, 224) and maps.dtype == np.float32
    direct = clearsight.explain(model, images, "gradcam", target=[0, 15])
    for got, want in zip(maps, direct):
        np.testing.assert_allclose(got, want.saliency, atol=1e-6)
    as_tensor = explain_func(model=model, inputs=torch.from_numpy(x_batch), targets=torch.tensor(y_batch))
    np.testing.assert_allclose(as_tensor, maps, atol=1e-6)
    assert model.training is False and all(p.requires_grad for p in model.parameters())


@pytest.mark.slow
def test_quantus_metrics_score_a_clearsight_method(setup, one_thread):
    """Sparseness (a Gini index, in [0,1]) and MaxSensitivity (>= 0) on 2 real photos, computed by Quantus
    itself calling clearsight's Grad-CAM++."""
    model, _, x_batch, y_batch = setup
    explain_func = quantus_explain_func(clearsight.GradCAMPlusPlus)
    sparseness = quantus.Sparseness(disable_warnings=True)(
        model=model, x_batch=x_batch, y_batch=y_batch, a_batch=None, explain_func=explain_func, device="cpu")
    assert len(sparseness) == 2 and all(np.isfinite(s) and 0 <= s <= 1 for s in sparseness)
    sensitivity = quantus.MaxSensitivity(nr_samples=2, lower_bound=0.05, disable_warnings=True)(
        model=model, x_batch=x_batch, y_batch=y_batch, a_batch=None, explain_func=explain_func, device="cpu")
    assert len(sensitivity) == 2 and all(np.isfinite(s) and s >= 0 for s in sensitivity)
