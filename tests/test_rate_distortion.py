"""Rate-distortion curves (SPEC B.1): the grid, the ranking, a hand-built computation, and on a real photo
the reproduction's finding that CartoonX's ranking beats a random one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clearsight.errors import MethodError
from clearsight.evaluation import DistortionResults, distortion_curve, evaluate_rate_distortion, relevance_order
from clearsight.evaluation.rate_distortion import explanation_relevance, point_counts, random_order
from clearsight.explanation import Explanation
from clearsight.methods.rde import PixelRepresentation, WaveletRepresentation


def tiny_image(seed: int = 0) -> torch.Tensor:
    return torch.rand((3, 32, 32), generator=torch.Generator().manual_seed(seed))


def test_the_grid_has_101_points_of_the_reproductions_step():
    """SPEC B.1: 656 pixels or 699 wavelet components per step at 256 px, 101 points from 0 to all."""
    for total, step in ((65_536, 656), (69_831, 699)):
        counts = point_counts(total)
        assert len(counts) == 101 and counts[:3] == [0, step, 2 * step] and counts[-1] == total
        assert all(b >= a for a, b in zip(counts, counts[1:]))


def test_ranking_is_by_relevance_with_seeded_random_ties():
    relevance = np.array([1.0, 0.0, 0.0, 0.0, 2.0, 0.0])
    order = relevance_order(relevance, seed=0).tolist()
    assert order[:2] == [4, 0] and sorted(order[2:]) == [1, 2, 3, 5]
    assert relevance_order(relevance, seed=0).tolist() == order
    tails = {tuple(relevance_order(relevance, seed=s).tolist()[2:]) for s in range(8)}
    assert len(tails) > 1  # ties are not broken by index


def test_a_pixel_curve_matches_a_hand_built_computation(tiny_cnn):
    """Every point: the first j ranked pixels kept (or randomised), the others one fixed draw of
    N(mean, std) of the image, never clamped; the l2 distance of the softmax vectors."""
    image = tiny_image(1)
    order = random_order(32 * 32, seed=5)
    noise = image.mean() + image.std() * torch.randn((1, 3, 32, 32), generator=torch.Generator().manual_seed(3))
    clean = tiny_cnn.logits(image[None]).softmax(1)
    for figure in ("keep", "randomize"):
        curve = distortion_curve(tiny_cnn, image, PixelRepresentation(), order, figure, points=11, seed=3)
        step = math.ceil(1024 / 10)
        for i, value in enumerate(curve):
            leading = torch.zeros(1024)
            leading[order[: min(i * step, 1024)]] = 1
            keep = (leading if figure == "keep" else 1 - leading).reshape(32, 32)
            mixed = image * keep + (1 - keep) * noise[0]
            expected = (tiny_cnn.logits(mixed[None]).softmax(1) - clean).norm()
            assert value == pytest.approx(float(expected), abs=1e-5)


def test_wavelet_curves_meet_at_the_fully_randomised_input(tiny_cnn):
    """``keep`` at 0 % and ``randomize`` at 100 % are the same input (one noise realisation per curve); all
    components kept is the clean image (the DWT reconstructs it), none randomised too."""
    image = tiny_image(2)
    rep = WaveletRepresentation()
    total = sum(math.prod(b.shape[1:]) for b in rep.analyze(image))
    order = random_order(total, seed=0)
    keep = distortion_curve(tiny_cnn, image, rep, order, "keep", points=21, seed=7)
    randomize = distortion_curve(tiny_cnn, image, rep, order, "randomize", points=21, seed=7)
    assert keep[0] == pytest.approx(randomize[-1], abs=1e-6) and keep[0] > 1e-3
    assert keep[-1] == pytest.approx(0.0, abs=1e-4) and randomize[0] == pytest.approx(0.0, abs=1e-4)
    averaged = distortion_curve(tiny_cnn, image, rep, order, "keep", points=21, seed=7, draws=2)
    second = distortion_curve(tiny_cnn, image, rep, order, "keep", points=21, seed=8)
    np.testing.assert_allclose(averaged, (keep + second) / 2, atol=1e-6)


def test_bad_orders_and_maps_are_refused(tiny_cnn):
    image = tiny_image(3)
    with pytest.raises(MethodError, match="each of the 1024"):
        distortion_curve(tiny_cnn, image, PixelRepresentation(), torch.arange(1000))
    with pytest.raises(MethodError, match="'keep' or 'randomize'"):
        distortion_curve(tiny_cnn, image, PixelRepresentation(), torch.arange(1024), "insertion")
    gradcam = Explanation(method="gradcam", target=0, saliency=np.zeros((16, 16)))
    with pytest.raises(MethodError, match="16x16"):
        explanation_relevance(gradcam, PixelRepresentation(), (32, 32))
    with pytest.raises(MethodError, match="no mask over the wavelet"):
        explanation_relevance(gradcam, WaveletRepresentation(), (16, 16))


def test_normalisation_divides_by_the_fully_randomised_end():
    """The reproduction's ViT figure: by the last value when it is within 0.1 of the maximum, else the first."""
    results = DistortionResults(figure="randomize", curves={"rising": [np.array([0.0, 0.5, 0.8, 0.8])],
                                                            "falling": [np.array([0.8, 0.2, 0.1, 0.0])]})
    np.testing.assert_allclose(results.normalized("rising"), [0, 62.5, 100, 100])
    np.testing.assert_allclose(results.normalized("falling"), [100, 25, 12.5, 0])


def test_an_interrupted_evaluation_resumes_and_other_settings_recompute(tiny_cnn, tmp_path, monkeypatch):
    import clearsight.evaluation.rate_distortion as rd

    pics, names = [tiny_image(4), tiny_image(5)], ["a.png", "b.png"]
    methods = ["random-pixel", "gradcam"]
    fresh = evaluate_rate_distortion(tiny_cnn, pics, [None, None], methods, "keep", names=names, points=11,
                                     store=tmp_path)
    computed = []
    real = rd.method_curves
    monkeypatch.setattr(rd, "method_curves", lambda m, *a, **k: computed.append(m) or real(m, *a, **k))
    again = evaluate_rate_distortion(tiny_cnn, pics, [None, None], methods, "keep", names=names, points=11,
                                     store=tmp_path)
    # the other figure comes from the same stored units (one explanation per image and method)
    other = evaluate_rate_distortion(tiny_cnn, pics, [None, None], methods, "randomize", names=names, points=11,
                                     store=tmp_path)
    assert computed == []
    direct = evaluate_rate_distortion(tiny_cnn, pics, [None, None], methods, "randomize", names=names, points=11)
    for m in methods:
        np.testing.assert_array_equal(other.mean(m), direct.mean(m))
    computed.clear()
    for m in methods:
        np.testing.assert_array_equal(again.mean(m), fresh.mean(m))
    evaluate_rate_distortion(tiny_cnn, pics, [None, None], ["random-pixel"], "keep", names=names, points=11,
                             draws=2, store=tmp_path)
    assert computed == ["random-pixel", "random-pixel"]
    paths = fresh.save(tmp_path / "out")
    assert paths["png"].exists() and paths["mean"].read_text().startswith("fraction,random-pixel,gradcam")


@pytest.mark.slow
def test_cartoonx_ranking_beats_a_random_one_on_a_real_photo(deit, photo_paths):
    """The reproduction's Fig. 3: keeping CartoonX's top coefficients preserves the prediction far better than
    keeping random ones, and randomising them destroys it sooner. The mask is the stored paper-preset run."""
    from clearsight.explanation import read_npz_groups

    from .test_rde_fixtures import FIXTURES

    stem = "n01440764_tench"
    stored = read_npz_groups(FIXTURES / f"paper-deit-{stem}.npz")["mask"]
    image = deit.prepare(next(p for p in photo_paths if p.stem == stem), size=224, resize="squash")
    rep = WaveletRepresentation()
    relevance = np.concatenate([stored[n].astype(np.float32).reshape(-1) for n in rep.band_names()])
    area = {}
    for figure in ("keep", "randomize"):
        for name, order in (("cartoonx", relevance_order(relevance)), ("random", random_order(relevance.size))):
            area[figure, name] = float(distortion_curve(deit, image, rep, order, figure).mean())
    assert area["keep", "cartoonx"] < 0.5 * area["keep", "random"]
    assert area["randomize", "cartoonx"] > area["randomize", "random"]


@pytest.mark.slow
def test_cli_rate_distortion(tmp_path, one_photo_folder):
    from clearsight.cli import main

    from .conftest import DEIT_CLI as model

    folder = one_photo_folder
    out = tmp_path / "rd"
    assert main(["evaluate", "--curve", "rd-randomize", "--methods", "random-pixel,rollout", "--images", str(folder),
                 "--out", str(out), *model]) == 0
    header = (out / "rd-randomize_mean.csv").read_text().splitlines()
    assert header[0] == "fraction,random-pixel,rollout" and len(header) == 102
    assert (out / "rd-randomize.png").exists() and len(list((out / "runs").rglob("*.npz"))) == 2
    assert main(["evaluate", "--curve", "insertion", "--methods", "random-pixel", "--images", str(folder),
                 *model]) == 2  # a rate-distortion baseline has no patch order
    assert main(["evaluate", "--curve", "rd-keep", "--draws", "0", "--images", str(folder), *model]) == 2


def test_compare_overlays_the_curves_of_several_runs(tmp_path):
    from clearsight.cli import main

    curve = np.linspace(0.8, 0.0, 101)
    for model, figure, images in (("cnn", "keep", ["a", "b"]), ("vit", "keep", ["b"]), ("vit", "randomize", ["a"])):
        results = DistortionResults(figure=figure, images=images, targets=[0] * len(images), settings={"model": model},
                                    curves={"cartoonx": [curve * (i + 1) for i in range(len(images))],
                                            "random-wavelet": [np.full(101, 0.8)] * len(images)})
        results.save(tmp_path / f"{model}-{figure}")
    loaded = DistortionResults.load(tmp_path / "cnn-keep" / "rd-keep.json")
    np.testing.assert_allclose(loaded.mean("cartoonx"), curve * 1.5, rtol=1e-6)
    np.testing.assert_allclose(loaded.restricted(["b"]).mean("cartoonx"), curve * 2, rtol=1e-6)
    saved = DistortionResults(figure="keep", curves={"cartoonx": [curve, 2 * curve]}).normalized("cartoonx")
    import json

    meta = json.loads((tmp_path / "cnn-keep" / "rd-keep.json").read_text())
    np.testing.assert_allclose(meta["normalized"]["cartoonx"], saved)
    out = tmp_path / "both.png"
    assert main(["compare", str(tmp_path / "cnn-keep" / "rd-keep.json"), str(tmp_path / "vit-keep" / "rd-keep.json"),
                 "--normalized", "--common-images", "--out", str(out)]) == 0 and out.exists()
    assert main(["compare", str(tmp_path / "cnn-keep" / "rd-keep.json"),
                 str(tmp_path / "vit-randomize" / "rd-randomize.json"), "--out", str(out)]) == 2  # two figures
    DistortionResults(figure="keep", images=["c"], targets=[0], curves={"cartoonx": [curve]}).save(tmp_path / "c")
    assert main(["compare", str(tmp_path / "vit-keep" / "rd-keep.json"), str(tmp_path / "c" / "rd-keep.json"),
                 "--common-images", "--out", str(out)]) == 2  # no image in common
    (tmp_path / "other.json").write_text("{}")
    assert main(["compare", str(tmp_path / "other.json"), "--out", str(out)]) == 2


def test_curves_use_the_optimisers_obfuscation_bit_for_bit(tiny_cnn):
    """The curves randomise and score with the RDE optimiser's own code (parts.obfuscation): every point
    equals ``h * s + (1 - s) * v`` and the softmax l2 written out here, in the module's batches, exactly; and
    one point equals the RDE problem's ``l2`` distortion for the same mask and noise."""
    from clearsight.evaluation import rate_distortion as rd
    from clearsight.methods.rde import NoiseModel, Problem

    image = tiny_image(4)
    rep = WaveletRepresentation()
    bands = rep.analyze(image)
    shapes = [tuple(b.shape[1:]) for b in bands]
    total = sum(math.prod(s) for s in shapes)
    order = random_order(total, seed=1)
    curve = distortion_curve(tiny_cnn, image, rep, order, "keep", points=21, seed=6)
    noise = NoiseModel.from_bands(bands).sample(bands, 1, torch.Generator().manual_seed(6))
    ranks = torch.empty(total, dtype=torch.long)
    ranks[order] = torch.arange(total)
    counts = torch.tensor(point_counts(total, 21))
    with torch.no_grad():
        clean = tiny_cnn.logits(image[None]).float().softmax(1)
        expected, point_masks = [], []
        for start in range(0, len(counts), rd.BATCH):
            kept = (ranks[None, :] < counts[start:start + rd.BATCH, None]).float()
            masks = [m.reshape(-1, 1, *s) for m, s in zip(kept.split([math.prod(s) for s in shapes], 1), shapes)]
            point_masks += [[m[i, 0] for m in masks] for i in range(kept.shape[0])]
            mixed = [h * s + (1 - s) * v for h, s, v in zip(bands, masks, noise)]
            probs = tiny_cnn.logits(rep.synthesize(mixed, (32, 32))).float().softmax(1)
            expected.append((probs - clean).norm(dim=1).double())
    expected = torch.cat(expected).numpy().astype(np.float32)
    np.testing.assert_array_equal(curve, expected)
    problem = Problem.build(tiny_cnn, image, 0, rep, 1.0, "l2")
    with torch.no_grad():
        assert float(problem.distortion_of(point_masks[7], noise)) == pytest.approx(float(curve[7]), abs=1e-6)
