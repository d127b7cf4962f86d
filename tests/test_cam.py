"""Grad-CAM and Grad-CAM++ against independent computations, and their behaviour on real models."""

from __future__ import annotations

import pytest
import torch

from clearsight.methods import build_explainer
from clearsight.methods.cam import find_last_conv_stage, first_principal_projection


def manual_cam(clf, image: torch.Tensor, target: int, plus_plus: bool = False) -> torch.Tensor:
    """Grad-CAM written out by hand on the tiny CNN: split the Sequential at its last conv stage."""
    features, head = clf.model[:4], clf.model[4:]
    x = clf.normalize(image[None])
    act = features(x).detach().requires_grad_(True)
    score = head(act)[0, target]
    (grad,) = torch.autograd.grad(score, act)
    if plus_plus:
        weights = []
        for k in range(act.shape[1]):
            g, a = grad[0, k], act[0, k]
            alpha = torch.zeros_like(g)
            nz = g != 0
            alpha[nz] = g[nz] ** 2 / (2 * g[nz] ** 2 + a.sum() * g[nz] ** 3)
            weights.append((alpha * torch.relu(g)).sum())
        w = torch.stack(weights)
    else:
        w = grad[0].mean(dim=(1, 2))
    return torch.relu((w[:, None, None] * act[0]).sum(0)).detach()


@pytest.mark.parametrize("method,plus", [("gradcam", False), ("gradcampp", True)])
def test_cam_matches_hand_computation(tiny_cnn, method, plus):
    assert find_last_conv_stage(tiny_cnn) == "3"
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(3))
    for target in (0, 7):
        e = build_explainer(method).explain(tiny_cnn, image, target)
        expected = manual_cam(tiny_cnn, image, target, plus)
        assert torch.allclose(torch.from_numpy(e.arrays["raw"]), expected, atol=1e-5)
        assert e.saliency.shape == (32, 32) and e.target == target


def test_batched_maps_equal_single_maps(tiny_cnn):
    images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 1, 2, 3, 4])
    cam = build_explainer("gradcam", {"batch_size": 2})
    raw, norm = cam.maps(tiny_cnn, images, targets)
    for i in range(5):
        single, _ = cam.maps(tiny_cnn, images[i:i + 1], targets[i:i + 1])
        assert torch.allclose(raw[i], single[0], atol=1e-5)
    assert float(norm.amin()) >= 0 and float(norm.amax()) <= 1


def test_eigen_projection_is_first_principal_component():
    torch.manual_seed(0)
    u = torch.rand(1, 1, 5, 5)
    weighted = torch.cat([u * 3, u * -2 + 0.01 * torch.rand(1, 1, 5, 5)], 1)  # rank ~1 across channels
    proj = first_principal_projection(weighted, u[:, 0])
    corr = torch.corrcoef(torch.stack([proj.flatten(), u.flatten()]))[0, 1]
    assert corr > 0.99  # oriented like the reference, follows the dominant pattern


def test_aug_smooth_is_flip_equivariant(tiny_cnn):
    """Averaging over flips both ways: the map of a mirrored image is the mirrored map."""
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(2))
    cam = build_explainer("gradcam", {"aug_smooth": True})
    _, a = cam.maps(tiny_cnn, image[None], torch.tensor([1]))
    _, b = cam.maps(tiny_cnn, image.flip(-1)[None], torch.tensor([1]))
    assert torch.allclose(a, b.flip(-1), atol=1e-5)


@pytest.mark.slow
def test_vit_gradcam_is_on_the_patch_grid(deit, photo_paths):
    image = deit.prepare(photo_paths[0])
    for method in ("gradcam", "gradcampp"):
        e = build_explainer(method, {"eigen_smooth": True}).explain(deit, image)
        assert e.arrays["grid"].shape == (14, 14) and e.saliency.shape == (224, 224)
        assert e.cost["passes"] == 1


@pytest.mark.slow
def test_gradcam_points_at_what_matters(mobilenet, photo_paths):
    """Faithfulness sanity: greying out the top Grad-CAM quarter hurts the class more than the bottom one."""
    hurt_top, hurt_bottom = 0.0, 0.0
    for path in photo_paths[:6]:
        image = mobilenet.prepare(path)
        e = build_explainer("gradcam").explain(mobilenet, image)
        sal = torch.from_numpy(e.saliency)
        cut_hi, cut_lo = sal.quantile(0.75), sal.quantile(0.25)
        grey = torch.full_like(image, 0.5)
        top = torch.where(sal >= cut_hi, grey, image)
        bottom = torch.where(sal <= cut_lo, grey, image)
        probs = mobilenet.logits(torch.stack([image, top, bottom])).softmax(1)[:, e.target]
        hurt_top += float(probs[0] - probs[1])
        hurt_bottom += float(probs[0] - probs[2])
    assert hurt_top > hurt_bottom + 0.5


def test_cams_run_in_fp32_even_on_a_bf16_classifier(tiny_vit):
    from clearsight.models import wrap_model

    bf16 = wrap_model(tiny_vit.model, tiny_vit.preprocessing, precision="bf16")
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(4))
    a = build_explainer("gradcampp").explain(tiny_vit, image, 2)
    b = build_explainer("gradcampp").explain(bf16, image, 2)
    assert torch.allclose(torch.from_numpy(a.arrays["raw"]), torch.from_numpy(b.arrays["raw"]), atol=1e-6)
    assert bf16.precision == "bf16"  # restored after the call
