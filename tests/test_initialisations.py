"""The mask-initialisation comparison (SPEC B.5/B.6): one RDE run per initialisation, loss curves and
final objectives per initialisation."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from clearsight.errors import MethodError
from clearsight.experiments.initialisations import InitResults, evaluate_initialisations, init_options


def tiny_image(seed: int) -> torch.Tensor:
    return torch.rand((3, 32, 32), generator=torch.Generator().manual_seed(seed))


def test_initialisation_names():
    assert init_options("ones") == {"init": "ones"}
    assert init_options("preoptimize") == {"init": "preoptimize"}  # the explainer's shorthand: ones, then pre-opt
    assert init_options("foreground+preoptimize") == {"init": "foreground", "preoptimize": True}
    for bad in ("random+preoptimize", "ones+twice", "bogus"):
        with pytest.raises(MethodError, match="unknown initialisation"):
            init_options(bad)


def test_each_run_starts_from_its_initialisation(tiny_cnn, tmp_path, monkeypatch):
    """The first recorded loss is the starting mask's: all ones keeps the image whatever the noise, so its loss
    is exactly lambda_k x 1; a random mask starts near lambda_k / 2; pre-optimisation starts at its level."""
    import clearsight.experiments.initialisations as inits_module

    pics, names = [tiny_image(0), tiny_image(1)], ["a.png", "b.png"]
    options = {"steps": 3, "samples": 2}
    foreground = np.zeros((32, 32), dtype=np.float32)
    foreground[8:24, 8:24] = 1
    variants = ["ones", "random", "preoptimize", "foreground"]
    results = evaluate_initialisations(tiny_cnn, pics, [None, None], "cartoonx", variants, names=names,
                                       options={**options, "foreground_mask": foreground}, store=tmp_path / "runs")
    lam = 20.0  # CartoonX on a CNN
    for loss in results.loss["ones"]:
        assert len(loss) == 3 and loss[0] == pytest.approx(lam, rel=1e-6)
    for loss in results.loss["random"]:
        assert 0.4 * lam < loss[0] < 0.6 * lam + 1
    for loss, level in zip(results.loss["preoptimize"], results.preopt_level["preoptimize"]):
        assert 0 < level <= 1 and loss[0] >= lam * level - 1e-4
    assert all(np.isnan(results.preopt_level["ones"]))
    assert results.images == names and all(len(results.objective[v]) == 2 for v in variants)

    calls = []
    real = inits_module.init_run
    monkeypatch.setattr(inits_module, "init_run", lambda *a, **k: calls.append(a[4]) or real(*a, **k))
    again = evaluate_initialisations(tiny_cnn, pics, [None, None], "cartoonx", ["ones", "zeros"], names=names,
                                     options={**options, "foreground_mask": foreground}, store=tmp_path / "runs")
    assert calls == ["zeros", "zeros"]  # finished runs are reused, only the new initialisation is computed
    np.testing.assert_array_equal(again.mean_loss("ones"), results.mean_loss("ones"))
    paths = again.save(tmp_path / "out")
    with open(paths["csv"]) as f:
        assert [r["init"] for r in csv.DictReader(f)] == ["ones", "zeros"]
    assert paths["png"].exists() and paths["loss"].exists()


def test_mean_loss_averages_the_runs_still_going():
    results = InitResults(method="cartoonx", inits=["ones"], loss={"ones": [np.array([4.0, 2.0, 1.0]),
                                                                            np.array([2.0, 1.0])]})
    np.testing.assert_allclose(results.mean_loss("ones"), [3.0, 1.5, 1.0])


def test_bad_comparisons_are_refused(tiny_cnn, tmp_path):
    from clearsight.cli import main

    with pytest.raises(MethodError, match="cartoonx and pixel-rde"):
        evaluate_initialisations(tiny_cnn, [tiny_image(2)], [None], "gradcam")
    with pytest.raises(MethodError, match="at least one"):
        evaluate_initialisations(tiny_cnn, [tiny_image(2)], [None], "cartoonx", [])
    assert main(["evaluate", "--curve", "inits", "--inits", "ones,random+preoptimize", "--images", str(tmp_path)]) == 2
    assert main(["evaluate", "--curve", "inits", "--methods", "cartoonx,pixel-rde", "--images", str(tmp_path)]) == 2
