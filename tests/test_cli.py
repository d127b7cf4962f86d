"""The command line: results on disk, resumable runs, and one clear line (exit 2) for each user mistake."""

from __future__ import annotations

import json

import pytest

from clearsight.cli import main
from clearsight.io import bundled_sample

from .conftest import DEIT_CLI, SAMPLES

DEIT = DEIT_CLI


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_explain_writes_results_and_resumes(tmp_path, capsys):
    photo = SAMPLES / "n01440764_tench.JPEG"
    code, out, _ = run(capsys, "explain", photo, "--method", "rollout", "--out", tmp_path, *DEIT)
    assert code == 0 and "tench" in out
    meta = json.loads((tmp_path / "n01440764_tench_rollout_deit_tiny_patch16_224.json").read_text())
    assert meta["method"] == "rollout" and meta["target"] == 0
    assert (tmp_path / "n01440764_tench_rollout_deit_tiny_patch16_224.png").stat().st_size > 1000
    code, out, _ = run(capsys, "explain", photo, "--method", "rollout", "--out", tmp_path, *DEIT)
    assert code == 0 and "result exists" in out


@pytest.mark.slow
def test_explain_never_reuses_a_result_made_differently(tmp_path, capsys):
    """Another setting, or another photo under the same file name, is reported, and the result is kept."""
    photo = SAMPLES / "n01440764_tench.JPEG"
    code, out, _ = run(capsys, "explain", photo, "--method", "rollout", "--out", tmp_path, *DEIT)
    stored = (tmp_path / "n01440764_tench_rollout_deit_tiny_patch16_224.npz").read_bytes()
    code, out, _ = run(capsys, "explain", photo, "--method", "rollout", "--size", 224, "--out", tmp_path, *DEIT)
    assert "result exists" in out  # the model's own size, spelled out, is the same request
    code, out, _ = run(capsys, "explain", photo, "--method", "rollout", "--precision", "bf16", "--out", tmp_path,
                       *DEIT)
    assert "precision 'fp32' -> 'bf16'" in out
    code, out, _ = run(capsys, "explain", photo, "--method", "rollout", "--discard-ratio", "0.5",
                       "--out", tmp_path, *DEIT)
    assert code == 0 and "made differently" in out and "discard_ratio 0.9 -> 0.5" in out
    impostor = tmp_path / "other" / photo.name  # same name, another photo
    impostor.parent.mkdir()
    impostor.write_bytes((SAMPLES / "n01496331_electric_ray.JPEG").read_bytes())
    code, out, _ = run(capsys, "explain", impostor, "--method", "rollout", "--out", tmp_path, *DEIT)
    assert "made differently" in out and "another photo with this file name" in out
    assert (tmp_path / "n01440764_tench_rollout_deit_tiny_patch16_224.npz").read_bytes() == stored
    code, out, _ = run(capsys, "explain", photo, "--method", "rollout", "--discard-ratio", "0.5", "--overwrite",
                       "--out", tmp_path, *DEIT)
    meta = json.loads((tmp_path / "n01440764_tench_rollout_deit_tiny_patch16_224.json").read_text())
    assert meta["settings"]["request"]["method"]["discard_ratio"] == 0.5


@pytest.mark.slow
def test_demo(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--out", tmp_path)
    assert code == 0 and "figure:" in out and (tmp_path / "demo" / "chelsea_gradcam_efficientnet_lite0.png").exists()


@pytest.mark.parametrize("argv,needle", [
    (["explain", "no/such/photo.jpg"], "not found"),
    (["explain", bundled_sample(), "--model", "keras:resnet"], "unknown model spec"),
    (["explain", bundled_sample(), "--method", "magic"], "unknown method"),
    (["explain", bundled_sample(), "--method", "gradcam", "--discard-ratio", "0.5"], "does not apply"),
    (["explain", bundled_sample(), "--model", "torchvision:mobilenet_v2", "--weights", "missing.pth"], "not found"),
])
def test_user_mistakes_exit_2_with_one_line(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("clearsight: error:") and needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("argv,needle", [
    (["--method", "rollout"], "Vision Transformer"),
    (["--target", "1000"], "out of range"),
    (["--target", "not a class"], "unknown class"),
])
def test_model_dependent_mistakes(capsys, tmp_path, argv, needle):
    code, _, err = run(capsys, "explain", bundled_sample(), "--out", tmp_path, *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_not_an_image(tmp_path, capsys):
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    code, _, err = run(capsys, "explain", bad, "--out", tmp_path)
    assert code == 2 and "not an image" in err


def test_models_lists_specs(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "efficientnet_lite0" in out and "timm:" in out


def test_every_help_page_prints_its_percent_signs_once():
    """argparse formats ``help=`` strings with %, not descriptions: a "%%" written into a description reached
    the user as "x%%" in ``clearsight evaluate --help``."""
    import argparse

    from clearsight.cli.parser import build_parser

    parser = build_parser()
    pages = {"clearsight": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            pages.update({name: sub.format_help() for name, sub in action.choices.items()})
    assert len(pages) > 5
    for name, page in pages.items():
        assert "%%" not in page and "%(" not in page, name
    assert "keep the top x% while" in " ".join(pages["evaluate"].split())
