"""WaveletX and ShearletX (CartoonX plus a spatial l1 term) and the ``scores`` evaluation: mechanics on a tiny
model, one real-model CLI run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from clearsight.cli import main
from clearsight.errors import MethodError
from clearsight.evaluation.scores_curve import SCORES, evaluate_scores, score_explanation
from clearsight.methods import build_explainer
from clearsight.methods.capabilities import can
from clearsight.methods.cartoonx import CartoonX
from clearsight.methods.rde import NoiseModel, Problem, WaveletRepresentation, initial_masks
from clearsight.methods.waveletx import SPATIAL_PAPER, ShearletX, WaveletX
from clearsight.parts.representations import ShearletRepresentation, representation_from_settings
from clearsight.shearlets import ShearletTransform
from clearsight.wavelets import WaveletTransform


def tiny_image(seed: int = 0, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, 4, 4, generator=g)
    smooth = torch.nn.functional.interpolate(base[None], size=(size, size), mode="bilinear")[0]
    return (smooth + 0.1 * torch.rand(3, size, size, generator=g)).clamp(0, 1)


def small_photo(path, size: int = 32) -> torch.Tensor:
    """A real photo shrunk to the tiny model's input size (it keeps real edges)."""
    from PIL import Image

    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.float32) / 255
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


@pytest.mark.parametrize("kind", ["wavelet", "shearlet"])
def test_spatial_term_is_the_explanation_images_l1_and_its_gradient_reaches_only_the_mask(tiny_cnn, kind):
    image = tiny_image().requires_grad_(True)
    rep = WaveletRepresentation() if kind == "wavelet" else ShearletRepresentation()
    problem = Problem.build(tiny_cnn, image, 3, rep, lambda_k=1.0, spatial_lambda=10.0)
    masks = [m.requires_grad_(True) for m in initial_masks(problem, "random", seed=0)]
    spatial = problem.spatial_of(masks)
    spatial.backward()
    assert all(m.grad is not None for m in masks) and sum(float(m.grad.abs().sum()) for m in masks) > 0
    assert image.grad is None
    assert all(not b.requires_grad for b in problem.gray_bands) and all(not b.requires_grad for b in problem.bands)
    assert all(p.grad is None for p in tiny_cnn.model.parameters())
    # an independent computation, straight from the transforms: mean |clamp(T^-1(s * T(gray)), 0, 1)|
    gray = image.detach().mean(0, keepdim=True)
    with torch.no_grad():
        if kind == "wavelet":
            t = WaveletTransform()
            yl, yh = t.forward(gray)
            rebuilt = t.inverse((yl * masks[0])[None], [(y * m)[None] for y, m in zip(yh, masks[1:])], size=(32, 32))
        else:
            t = ShearletTransform()
            rebuilt = t.inverse(t.forward(gray) * torch.stack([m.detach() for m in masks])[None])
    assert float(spatial.detach()) == pytest.approx(float(rebuilt.clamp(0, 1).abs().mean()), rel=1e-5)


def test_waveletx_without_the_spatial_term_is_cartoonx_step_for_step(tiny_cnn, one_thread):
    """Same seed, same schedule, CartoonX's distortion and noise: the same masks and loss history, bit for bit."""
    image = tiny_image(2)
    shared = {"steps": 6, "lr": 0.1, "samples": 4, "lambda_k": 10.0, "precision": "fp32", "seed": 3}
    cx = CartoonX(**shared).explain(tiny_cnn, image, 1)
    wx = WaveletX(**shared, spatial_lambda=0.0, distortion="label", noise="adaptive").explain(tiny_cnn, image, 1)
    assert list(cx.mask) == list(wx.mask)
    for name in cx.mask:
        np.testing.assert_array_equal(cx.mask[name], wx.mask[name])
    np.testing.assert_array_equal(cx.history["loss"], wx.history["loss"])
    assert np.all(wx.history["spatial"] == 0)
    # with the term, the optimiser darkens the explanation image: its spatial l1 ends lower than CartoonX's
    wx10 = WaveletX(**shared, spatial_lambda=10.0, distortion="label", noise="adaptive").explain(tiny_cnn, image, 1)
    problem = Problem.build(tiny_cnn, image, 1, WaveletRepresentation(), 10.0, spatial_lambda=10.0)
    masks_cx = [torch.as_tensor(cx.mask[n]) for n in cx.mask]
    masks_wx = [torch.as_tensor(wx10.mask[n]) for n in wx10.mask]
    assert float(problem.spatial_of(masks_wx)) < float(problem.spatial_of(masks_cx))
    assert wx10.history["loss"][0] == pytest.approx(
        wx10.history["distortion"][0] + 10 * wx10.history["sparsity"][0] + 10 * wx10.history["spatial"][0], rel=1e-5)


def test_shearletx_has_one_mask_band_per_shearlet(tiny_cnn, one_thread):
    image = tiny_image(4)
    e = ShearletX(steps=3, samples=2, seed=0).explain(tiny_cnn, image)
    count = ShearletTransform().count
    assert count == 49 and list(e.mask) == [f"s{k}" for k in range(count)]
    assert all(m.shape == (32, 32) and m.min() >= 0 and m.max() <= 1 for m in e.mask.values())
    assert len(e.arrays["noise_std"]) == count  # adaptive noise: one spread per shearlet
    assert e.arrays["noise_std"][0] > 10 * np.median(e.arrays["noise_std"][1:])  # the low-pass carries the image
    assert e.settings["representation"] == "shearlet" and e.settings["spatial_lambda"] == 2.0
    assert e.settings["lambda_k"] == 1.0 and e.settings["distortion"] == "maximize-target"
    assert e.cartoon.shape == (32, 32) and len(e.history["loss"]) == 3
    rep = representation_from_settings(e.settings)
    assert isinstance(rep, ShearletRepresentation)
    bands = rep.analyze(image)
    assert min(float(b.min()) for b in bands) < 0  # detail coefficients are signed: never clamp them to [0,1]
    unclamped = ShearletRepresentation(clamp=False).synthesize([b[None] for b in bands], (32, 32))[0]
    assert torch.allclose(unclamped, image, atol=1e-5)


def test_uniform_noise_stays_within_one_std_of_the_mean():
    bands = [torch.randn(3, 40, 40) * 2 + 1]
    model = NoiseModel.from_bands(bands, kind="uniform")
    draw = model.sample(bands, 50, torch.Generator().manual_seed(0))[0]
    mean, std = model.means[0], model.stds[0]
    assert float(draw.min()) >= mean - std and float(draw.max()) <= mean + std
    assert float(draw.std()) == pytest.approx(std / 3**0.5, rel=0.02)  # the std of U(-a, a) is a / sqrt(3)
    with pytest.raises(MethodError):
        NoiseModel.from_bands(bands, kind="laplace")


def test_registry_presets_and_options():
    assert can("waveletx", "rde") and can("shearletx", "rde")
    wx = build_explainer("waveletx", {"spatial_lambda": 4.0, "preset": "paper"})
    assert wx.spatial_lambda == 4.0 and wx.schedule(None) == SPATIAL_PAPER
    assert (SPATIAL_PAPER.steps, SPATIAL_PAPER.samples, SPATIAL_PAPER.lr) == (300, 16, 0.1)
    fast = build_explainer("waveletx").schedule(None)
    assert fast.steps * fast.samples < SPATIAL_PAPER.steps * SPATIAL_PAPER.samples
    with pytest.raises(MethodError, match="does not apply"):
        build_explainer("cartoonx", {"spatial_lambda": 1.0})
    with pytest.raises(MethodError, match="spatial-lambda"):
        build_explainer("shearletx", {"spatial_lambda": -1.0})
    with pytest.raises(MethodError, match="does not apply"):
        build_explainer("shearletx", {"wave": "db2"})


def test_scores_curve_writes_table_json_and_scatter_plot(tiny_cnn, photo_paths, tmp_path, one_thread):
    images = [small_photo(p) for p in photo_paths[:2]]
    methods = ["waveletx", "pixel-rde"]
    options = {m: {"steps": 2, "samples": 2} for m in methods}
    results = evaluate_scores(tiny_cnn, images, [None, None], methods, names=["a", "b"], method_options=options,
                              store=tmp_path / "runs")
    paths = results.save(tmp_path)
    rows = list(csv.DictReader(open(paths["csv"])))
    assert [(r["image"], r["method"]) for r in rows] == [("a", "waveletx"), ("b", "waveletx"), ("a", "pixel-rde"),
                                                         ("b", "pixel-rde")]
    meta = json.loads(paths["json"].read_text())
    for r in rows:
        i = meta["images"].index(r["image"])
        for k in SCORES:
            assert float(r[k]) == pytest.approx(meta["scores"][r["method"]][k][i], rel=1e-5)
    assert all(0 <= v for r in rows for v in (float(r["hallucination"]), float(r["retained_probability"])))
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # stored units are reused: a second run computes nothing and gives the same numbers
    again = evaluate_scores(tiny_cnn, images, [None, None], methods, names=["a", "b"], method_options=options,
                            store=tmp_path / "runs")
    assert again.scores == results.scores


def test_an_all_ones_mask_explains_with_the_photo_itself(tiny_cnn, photo_paths, one_thread):
    """The rendering the scores use: a mask of ones keeps every coefficient, so the explanation is the photo
    (hallucination 0, CP 1, as test_hallucination shows for the photo itself)."""
    photo = small_photo(photo_paths[0])
    e = WaveletX(steps=1, samples=1).explain(tiny_cnn, photo)
    e.mask = {k: np.ones_like(v) for k, v in e.mask.items()}
    values = score_explanation(tiny_cnn, photo, e, e.target)
    assert values["hallucination"] == 0
    assert values["cp_l1"] == pytest.approx(1, abs=1e-4) and values["cp_entropy"] == pytest.approx(1, abs=1e-4)


@pytest.mark.slow
def test_cli_explain_waveletx_and_evaluate_scores(tmp_path, photo_paths, one_photo_folder):
    weights = str(photo_paths[0].parents[2] / "models" / "mobilenet_v2.pth")
    common = ["--model", "torchvision:mobilenet_v2", "--weights", weights, "--size", "64", "--resize", "squash"]
    assert main(["explain", str(photo_paths[3]), "--method", "waveletx", "--spatial-lambda", "5", "--steps", "2",
                 "--samples", "2", "--out", str(tmp_path / "x"), *common]) == 0
    from clearsight.explanation import Explanation

    e = Explanation.load(tmp_path / "x" / f"{photo_paths[3].stem}_waveletx_mobilenet_v2")  # PHOTO_METHOD_MODEL
    assert e.settings["spatial_lambda"] == 5.0 and e.settings["lambda_k"] == 2.0 and len(e.history["spatial"]) == 2
    out = tmp_path / "scores"
    assert main(["evaluate", "--images", str(one_photo_folder), "--curve", "scores",
                 "--methods", "waveletx,shearletx,gradcam", "--steps", "2", "--out", str(out), *common]) == 0
    rows = list(csv.DictReader(open(out / "scores.csv")))
    assert {r["method"] for r in rows} <= {"waveletx", "shearletx", "gradcam"} and (out / "scores.png").exists()
