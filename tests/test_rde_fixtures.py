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
    """Finished masks (fp16) and the snapshots of unfinished runs stay small enough for git."""
    assert sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file()) < 8_000_000


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


def partial_files() -> list[Path]:
    return sorted((FIXTURES / "partial").glob("paper-*.pt"))


@pytest.mark.parametrize("path", partial_files(), ids=lambda p: p.stem)
def test_partial_snapshot_resumes_the_reference_run(path):
    """A committed snapshot of an unfinished paper run (``benchmarks/rde.py --snapshot``) is a state that
    ``optimize_mask(resume=...)`` continues: it loads without unpickling code, and its masks, Adam state and
    history agree with each other and with the reference's mask layout."""
    import torch

    state = torch.load(path, weights_only=True)
    step = int(state["step"])
    assert 0 < step < 2000
    masks = state["masks"]
    assert len(masks) == 6 and sum(m.numel() for m in masks) in ENTRIES.values()
    assert all(float(m.min()) >= 0 and float(m.max()) <= 1 for m in masks)
    assert all(len(v) == step for v in state["history"].values())
    adam = state["adam"]["state"]
    assert len(adam) == 6 and all(int(adam[i]["step"]) == step for i in adam)
    assert state["adam"]["param_groups"][0]["lr"] == pytest.approx(1e-3)
    assert state["history"]["loss"][-1] < state["history"]["loss"][0]
