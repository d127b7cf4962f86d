"""Result file names of ``clearsight explain``: they tell results apart, stay readable, fit every file system,
and the report and ``evaluate --explanations`` still find the results under them."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.cli.names import MAX_NAME_BYTES, model_slug, result_stem, with_suffix
from clearsight.explanation import Explanation

#: every suffix explain writes (figure formats, the loss figure, arrays, record) plus the atomic write's temp name
SUFFIXES = (".png", ".svg", ".pdf", "_loss.png", "_loss.svg", "_loss.pdf", ".npz", ".json")
MODELS = ("efficientnet_lite0", "timm:deit_tiny_patch16_224", "torchvision:mobilenet_v2",
          "hf:google/vit-base-patch16-224")
#: file names as users make them: dots, spaces, non-ASCII letters, undecodable bytes (surrogates), very long
photo_names = st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1,
                      max_size=300).filter(lambda s: s not in (".", ".."))


def test_readable_names_of_the_issue():
    assert result_stem("tench.JPEG", "gradcam", "torchvision:mobilenet_v2") == "tench_gradcam_mobilenet_v2"
    assert (result_stem("tench.jpg", "moxi", "timm:deit_tiny_patch16_224", ["deletion"])
            == "tench_moxi-deletion_deit_tiny_patch16_224")
    assert result_stem("shot.1.jpg", "gradcam", "efficientnet_lite0") == "shot.1_gradcam_efficientnet_lite0"
    assert model_slug("hf:google/vit-base-patch16-224") == "google-vit-base-patch16-224"


def test_suffixes_are_appended_never_substituted(tmp_path):
    stem = tmp_path / result_stem("shot.1.jpg", "gradcam", "efficientnet_lite0")
    assert with_suffix(stem, ".png").name == "shot.1_gradcam_efficientnet_lite0.png"
    one, two = (result_stem(f"shot.{i}.jpg", "gradcam", "efficientnet_lite0") for i in (1, 2))
    assert one != two


@given(photo=photo_names, model=st.sampled_from(MODELS),
       variant=st.lists(st.sampled_from(["deletion", "moxi", "paper"]), max_size=2))
@settings(max_examples=300, deadline=None)
def test_every_name_fits_a_file_system(photo, model, variant):
    stem = result_stem(photo, "pixel-rde", model, variant)
    for suffix in SUFFIXES:
        name = stem + suffix
        assert len(os.fsencode(name)) <= MAX_NAME_BYTES
        assert "/" not in name and "\0" not in name
    assert stem.endswith(f"_{model_slug(model)}")


@given(a=photo_names, b=photo_names)
@settings(max_examples=300, deadline=None)
def test_different_photo_names_get_different_results(a, b):
    from pathlib import Path

    if Path(a).stem != Path(b).stem:
        assert result_stem(a, "gradcam", "efficientnet_lite0") != result_stem(b, "gradcam", "efficientnet_lite0")


@given(model=st.sampled_from(MODELS), other=st.sampled_from(MODELS),
       mode=st.sampled_from([(), ("deletion",)]), other_mode=st.sampled_from([(), ("deletion",)]))
def test_model_and_mode_tell_results_apart(model, other, mode, other_mode):
    if (model, mode) != (other, other_mode):
        assert result_stem("tench.jpg", "moxi", model, mode) != result_stem("tench.jpg", "moxi", other, other_mode)


@given(photo=photo_names)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_names_can_be_created_on_disk(tmp_path, photo):
    """The real test of "fits": create the file (and the atomic write's temporary sibling) in a real folder."""
    from clearsight.explanation import atomic_write

    path = with_suffix(tmp_path / result_stem(photo, "moxi-minus", "timm:deit_tiny_patch16_224"), "_loss.png")
    atomic_write(path, lambda f: f.write(b"x"))
    assert path.read_bytes() == b"x"
    path.unlink()


def _save_result(folder, photo, method, model, variants=()):
    base = folder / result_stem(photo, method, model, variants)
    Explanation(method=method, target=0, saliency=np.zeros((4, 4), np.float32), model=model,
                settings={"image": f"/photos/{photo}"}).save(base)
    return base


def test_report_finds_results_under_their_names(tmp_path):
    """viz.report reads the records: two models' results of one photo are two cards, each with its figure."""
    from PIL import Image

    from clearsight.viz.report import build_report

    for model in ("efficientnet_lite0", "torchvision:mobilenet_v2"):
        base = _save_result(tmp_path, "shot.1.jpg", "gradcam", model)
        Image.new("RGB", (8, 8)).save(with_suffix(base, ".png"))
    page = build_report(tmp_path).read_text()
    assert "shot.1_gradcam_efficientnet_lite0.png" in page and "shot.1_gradcam_mobilenet_v2.png" in page


def test_saved_explanations_are_found_by_their_records(tmp_path):
    from clearsight.errors import MethodError
    from clearsight.evaluation import SavedExplanations

    _save_result(tmp_path, "shot.1.jpg", "gradcam", "efficientnet_lite0")
    _save_result(tmp_path, "shot.2.jpg", "gradcam", "efficientnet_lite0")
    os.mkfifo(tmp_path / "pipe.json")  # skipped, never opened (opening it would wait forever)
    saved = SavedExplanations(tmp_path)
    assert saved.get("shot.1.jpg").settings["image"].endswith("shot.1.jpg")
    assert saved.get("shot.2.jpg").settings["image"].endswith("shot.2.jpg")
    _save_result(tmp_path, "shot.1.jpg", "gradcam", "torchvision:mobilenet_v2")
    with pytest.raises(MethodError, match="2 saved gradcam explanations"):
        SavedExplanations(tmp_path).get("shot.1.jpg")
    meta = json.loads((tmp_path / "shot.2_gradcam_efficientnet_lite0.json").read_text())
    assert meta["method"] == "gradcam"
