"""The stored paper-preset CartoonX masks (``tests/fixtures/rde/``, made by ``benchmarks/rde.py``).

They let the benchmark compare the fast default with the paper preset without recomputing 128,000 passes.
These tests check that every stored fixture is loadable and has the reference's mask layout (SPEC A.3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "rde"
#: mask entries k (colour channels not counted) at the reproduction's sizes, SPEC A.3
ENTRIES = {224: 53_959, 256: 69_831}


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("paper-*.npz"))


def test_fixtures_stay_small():
    assert sum(p.stat().st_size for p in FIXTURES.glob("*")) < 2_000_000 if FIXTURES.exists() else True


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.stem)
def test_fixture_has_the_reference_mask_layout(path):
    with np.load(path, allow_pickle=False) as data:
        masks = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("mask/")}
        size, steps = int(data["size"]), int(data["steps"])
        loss = data["history/loss"]
    assert set(masks) == {"yl", "yh0", "yh1", "yh2", "yh3", "yh4"}
    assert sum(m.size for m in masks.values()) == ENTRIES[size]
    assert all(m.min() >= 0 and m.max() <= 1 for m in masks.values())
    assert steps == 2000 and len(loss) == 2000
    assert loss[-1] < loss[0]
