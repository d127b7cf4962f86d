"""Explanation files round-trip exactly, contain no pickles, and are written atomically."""

from __future__ import annotations

import json

import numpy as np

from clearsight.explanation import Explanation


def make() -> Explanation:
    rng = np.random.default_rng(1)
    return Explanation(
        method="moxi", target=285, target_name="Egyptian cat", model="timm:deit", score=0.42,
        saliency=rng.random((224, 224), dtype=np.float32), order=np.arange(196)[::-1].copy(),
        order_scores=rng.random(196), mask={"yl": rng.random((11, 11)), "yh0": rng.random((3, 114, 114))},
        cartoon=rng.random((224, 224)), history={"loss": rng.random(50)}, arrays={"grid": rng.random((14, 14))},
        cost={"seconds": 1.5, "passes": 300}, settings={"mode": "insertion", "tau": None, "sizes": (1, 2)},
    )


def test_round_trip(tmp_path):
    e = make()
    e.save(tmp_path / "result")
    back = Explanation.load(tmp_path / "result.npz")
    assert back.method == e.method and back.target == e.target and back.target_name == e.target_name
    assert back.score == e.score and back.cost == e.cost
    assert back.settings == {"mode": "insertion", "tau": None, "sizes": [1, 2]}
    np.testing.assert_array_equal(back.saliency, e.saliency)
    np.testing.assert_array_equal(back.order, e.order)
    np.testing.assert_array_equal(back.cartoon, e.cartoon)
    for group in ("mask", "history", "arrays"):
        assert getattr(back, group).keys() == getattr(e, group).keys()
        for k in getattr(e, group):
            np.testing.assert_array_equal(getattr(back, group)[k], getattr(e, group)[k])


def test_optional_fields_stay_none(tmp_path):
    e = Explanation(method="gradcam", target=1, saliency=np.zeros((4, 4), np.float32))
    e.save(tmp_path / "g")
    back = Explanation.load(tmp_path / "g")
    assert back.order is None and back.cartoon is None and back.mask == {}


def test_files_are_plain_json_and_npz_without_pickle(tmp_path):
    make().save(tmp_path / "r")
    meta = json.loads((tmp_path / "r.json").read_text())
    assert meta["format"] == "clearsight.explanation/1"
    with np.load(tmp_path / "r.npz", allow_pickle=False) as data:  # would raise on object arrays
        assert "saliency" in data.files
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind
