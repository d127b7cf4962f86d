"""The CLI runs CartoonX and Pixel RDE with their flags and writes figure, result and loss plot."""

from __future__ import annotations

import json

import pytest

from clearsight.cli import main
from clearsight.explanation import Explanation


@pytest.mark.slow
def test_cli_cartoonx_and_pixel_rde(tmp_path, photo_paths, capsys):
    photo = str(photo_paths[3])
    weights = str(photo_paths[0].parents[2] / "models" / "mobilenet_v2.pth")
    common = ["--model", "torchvision:mobilenet_v2", "--weights", weights, "--out", str(tmp_path)]
    assert main(["explain", photo, "--method", "cartoonx", "--steps", "2", "--samples", "2", "--lambda", "5",
                 "--plot-loss", "--size", "64", "--resize", "squash", *common]) == 0
    stem = tmp_path / f"{photo_paths[3].stem}_cartoonx_mobilenet_v2"
    for suffix in (".png", ".npz", ".json"):
        assert stem.with_suffix(suffix).exists()
    assert (tmp_path / f"{photo_paths[3].stem}_cartoonx_mobilenet_v2_loss.png").exists()
    exp = Explanation.load(stem)
    assert exp.settings["lambda_k"] == 5.0 and len(exp.history["loss"]) == 2 and exp.cartoon.shape == (64, 64)
    assert json.loads(stem.with_suffix(".json").read_text())["settings"]["steps_run"] == 2

    assert main(["explain", photo, "--method", "pixel-rde", "--preset", "paper", "--steps", "1", "--samples", "2",
                 "--init", "random", "--size", "64", "--resize", "squash", *common]) == 0
    px = Explanation.load(tmp_path / f"{photo_paths[3].stem}_pixel-rde-paper_mobilenet_v2")
    assert px.settings["preset"] == "paper" and px.mask["pixels"].shape == (64, 64)

    assert main(["explain", photo, "--method", "cartoonx", "--init", "bogus", *common]) == 2  # unknown choice
    assert main(["explain", photo, "--method", "gradcam", "--steps", "3", *common]) == 2
    assert "does not apply" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_resumes_an_interrupted_optimisation(tmp_path, photo_paths, monkeypatch):
    """Ctrl-C during CartoonX keeps the last checkpoint; the same command then finishes from it."""
    import clearsight.methods.rde.optimizer as rde

    weights = str(photo_paths[0].parents[2] / "models" / "mobilenet_v2.pth")
    argv = ["explain", str(photo_paths[3]), "--method", "cartoonx", "--steps", "30", "--samples", "2",
            "--size", "64", "--resize", "squash", "--model", "torchvision:mobilenet_v2", "--weights", weights,
            "--out", str(tmp_path)]
    real, calls = rde.accumulate_gradients_together, []

    def interrupted_at_step_28(*args, **kwargs):
        calls.append(1)
        if len(calls) == 28:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(rde, "accumulate_gradients_together", interrupted_at_step_28)
    assert main(argv) == 130
    assert len(list((tmp_path / ".checkpoints").glob("cartoonx-*.pt"))) == 1
    monkeypatch.setattr(rde, "accumulate_gradients_together", real)
    assert main(argv) == 0
    exp = Explanation.load(tmp_path / f"{photo_paths[3].stem}_cartoonx_mobilenet_v2")
    assert exp.settings["resumed_at_step"] == 25 and len(exp.history["loss"]) == 30
    assert not list((tmp_path / ".checkpoints").glob("*.pt"))


def test_cli_precision_reaches_the_rde_methods_only():
    """``--precision`` overrides the RDE presets' own choice; methods without the option never see it."""
    from clearsight.cli import _method_options, build_parser

    def options(*argv):
        return _method_options(build_parser().parse_args(["explain", "photo.jpg", *argv]))

    assert options("--method", "cartoonx", "--precision", "bf16")["precision"] == "bf16"
    assert options("--method", "pixel-rde", "--precision", "fp32", "--seed", "3") == {"precision": "fp32", "seed": 3}
    assert "precision" not in options("--method", "cartoonx")
    assert "precision" not in options("--method", "gradcam", "--precision", "bf16")


def test_help_states_the_schedules_the_presets_use(capsys):
    """``--help`` quotes the presets' steps, samples and learning rates; they must not drift from the code."""
    from clearsight.cli import build_parser
    from clearsight.methods.rde import FAST, FAST_CNN, FAST_VIT, PAPER

    with pytest.raises(SystemExit):
        build_parser().parse_args(["explain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for schedule in (FAST, FAST_CNN, FAST_VIT, PAPER):
        assert str(schedule.steps) in text and f"{schedule.lr:g}" in text
    assert f"fast {FAST.samples}, paper {PAPER.samples}" in text
    assert FAST_CNN.samples == FAST_VIT.samples == FAST.samples
