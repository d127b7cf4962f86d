"""The lambda sweep (SPEC B.2): each final mask's l2 distortion and sparsity, per method and lambda_k."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from clearsight.errors import MethodError
from clearsight.experiments.lambda_sweep import evaluate_lambda_sweep
from clearsight.methods import build_explainer
from clearsight.methods.rde import Problem, arrays_to_masks, sparsity


def tiny_image(seed: int) -> torch.Tensor:
    return torch.rand((3, 32, 32), generator=torch.Generator().manual_seed(seed))


def test_each_value_is_the_masks_l2_distortion_and_sparsity(tiny_cnn, tmp_path):
    """A sweep entry equals an independent evaluation of the same explanation: one seeded noise draw, the
    Euclidean norm of the softmax difference, and the mean mask value."""
    image = tiny_image(0)
    options = {"steps": 3, "samples": 2}
    results = evaluate_lambda_sweep(tiny_cnn, [image], [None], ["cartoonx"], [4, 64], method_options={
        "cartoonx": options}, seed=11)
    target = int(tiny_cnn.logits(image[None])[0].argmax())
    for lam in (4.0, 64.0):
        exp = build_explainer("cartoonx", {**options, "lambda_k": lam}).explain(tiny_cnn, image, target)
        problem = Problem.build(tiny_cnn, image, target, build_explainer("cartoonx").make_representation(), lam)
        masks = arrays_to_masks(problem.representation, exp.mask)
        noise = problem.noise.sample(problem.bands, 1, torch.Generator().manual_seed(11))
        with torch.no_grad():
            probs = tiny_cnn.logits(problem.obfuscations(masks, noise)).softmax(1)
        expected = float((probs - problem.clean_probs[None]).norm(dim=1).mean())
        assert results.distortion["cartoonx"][lam] == [pytest.approx(expected, rel=1e-5)]
        assert results.sparsity["cartoonx"][lam] == [pytest.approx(float(sparsity(masks)), rel=1e-6)]
    # a larger sparsity weight ends with a sparser mask
    assert results.sparsity["cartoonx"][64.0][0] < results.sparsity["cartoonx"][4.0][0]


def test_a_resumed_sweep_reuses_finished_runs_and_writes_its_table(tiny_cnn, tmp_path, monkeypatch):
    import clearsight.experiments.lambda_sweep as sweep

    pics, names = [tiny_image(1), tiny_image(2)], ["a.png", "b.png"]
    options = {m: {"steps": 2, "samples": 2} for m in ("cartoonx", "pixel-rde")}
    first = evaluate_lambda_sweep(tiny_cnn, pics, [None, None], lambdas=[4, 16], names=names,
                                  method_options=options, store=tmp_path / "runs")
    calls = []
    real = sweep.mask_quality
    monkeypatch.setattr(sweep, "mask_quality", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    again = evaluate_lambda_sweep(tiny_cnn, pics, [None, None], lambdas=[4, 16, 32], names=names,
                                  method_options=options, store=tmp_path / "runs")
    assert sorted(calls) == ["cartoonx", "cartoonx", "pixel-rde", "pixel-rde"]  # only lambda 32 is new
    for m in ("cartoonx", "pixel-rde"):
        np.testing.assert_array_equal(again.summary(m, "distortion")[0][:2], first.summary(m, "distortion")[0])
    paths = again.save(tmp_path / "out")
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["lambda_k"], r["images"]) for r in rows][:3] == [
        ("cartoonx", "4", "2"), ("cartoonx", "16", "2"), ("cartoonx", "32", "2")]
    assert paths["png"].exists()


def test_bad_sweeps_are_refused(tiny_cnn):
    image = [tiny_image(3)]
    with pytest.raises(MethodError, match="takes cartoonx and pixel-rde"):
        evaluate_lambda_sweep(tiny_cnn, image, [None], ["gradcam"])
    with pytest.raises(MethodError, match="non-negative"):
        evaluate_lambda_sweep(tiny_cnn, image, [None], lambdas=[-1])
    with pytest.raises(MethodError, match="at least 1"):
        evaluate_lambda_sweep(tiny_cnn, image, [None], samples=0)


def test_cli_refuses_a_bad_sweep_before_loading_anything(tmp_path, capsys):
    from clearsight.cli import main

    assert main(["evaluate", "--curve", "lambda-sweep", "--lambdas", "4,x", "--images", str(tmp_path)]) == 2
    assert "--lambdas takes comma-separated numbers" in capsys.readouterr().err
    assert main(["evaluate", "--curve", "lambda-sweep", "--methods", "gradcam", "--images", str(tmp_path)]) == 2
    assert "takes cartoonx and pixel-rde" in capsys.readouterr().err


def test_evaluate_keeps_rde_state_beside_its_runs_without_changing_their_key(tiny_cnn, tmp_path, monkeypatch):
    """An RDE explanation cut off half-way resumes (its state is in --out/runs/.checkpoints), and where the
    state lives never decides which finished results are reused."""
    import clearsight.experiments.lambda_sweep as sweep
    from clearsight.cli import build_parser
    from clearsight.cli.evaluate import evaluate_options

    args = build_parser().parse_args(["evaluate", "--curve", "lambda-sweep", "--images", "x", "--out", str(tmp_path)])
    options = evaluate_options(args, ["cartoonx", "pixel-rde"])
    checkpoints = tmp_path / "runs" / ".checkpoints"
    assert options["cartoonx"]["checkpoint_dir"] == str(checkpoints)
    pics, store = [tiny_image(5)], tmp_path / "runs"
    kept = {"cartoonx": {**options["cartoonx"], "steps": 2, "samples": 2}}
    first = evaluate_lambda_sweep(tiny_cnn, pics, [None], ["cartoonx"], [4], names=["a"], method_options=kept,
                                  store=store)
    calls = []
    real = sweep.mask_quality
    monkeypatch.setattr(sweep, "mask_quality", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    plain = {"cartoonx": {"seed": 0, "steps": 2, "samples": 2}}
    again = evaluate_lambda_sweep(tiny_cnn, pics, [None], ["cartoonx"], [4], names=["a"], method_options=plain,
                                  store=store)
    assert calls == [] and again.distortion == first.distortion  # the stored unit, found without the state folder
