"""The stored paper-preset CartoonX masks (``tests/fixtures/rde/``, made by ``benchmarks/rde.py``).

They let the benchmark compare the fast default with the paper preset without recomputing 128,000 passes.
These tests check that every stored fixture is loadable, has the reference's mask layout (SPEC A.3) and
still scores the objective it scored when it was made.
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


def read_fixture(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(masks by band name, every other array) of a stored fixture."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    masks = {k.split("/", 1)[1]: v.astype(np.float32) for k, v in arrays.items() if k.startswith("mask/")}
    return masks, arrays


def test_fixtures_stay_small():
    """Finished masks (fp16) and the snapshots of unfinished runs stay small enough for git."""
    assert sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file()) < 8_000_000


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.stem)
def test_fixture_has_the_reference_mask_layout(path):
    masks, data = read_fixture(path)
    size, steps, loss = int(data["size"]), int(data["steps"]), data["history/loss"]
    assert set(masks) == {"yl", "yh0", "yh1", "yh2", "yh3", "yh4"}
    assert sum(m.size for m in masks.values()) == ENTRIES[size]
    assert all(m.min() >= 0 and m.max() <= 1 for m in masks.values())
    assert steps == 2000 and len(loss) == 2000
    assert loss[-1] < loss[0]


@pytest.mark.slow
@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.stem)
def test_fixture_reproduces_its_objective(path, request, photo_paths):
    """Recomputing a stored mask's objective gives what the benchmark recorded when the fixture was made:
    the objective, the noise model, the wavelets and the model the comparison relies on are unchanged."""
    from clearsight.methods.rde import Problem, WaveletRepresentation, arrays_to_masks, rde_objective

    _, key, stem = path.stem.split("-", 2)  # paper-<model>-<photo>; <model> names a conftest model fixture
    clf = request.getfixturevalue(key)
    masks, data = read_fixture(path)
    target, lam, size = int(data["target"]), float(data["lambda_k"]), int(data["size"])
    image = clf.prepare(next(p for p in photo_paths if p.stem == stem), size=size, resize="squash")
    rep = WaveletRepresentation()
    problem = Problem.build(clf, image, None, rep, lam)  # target=None: the prediction, from the clean pass
    # the layout of today's wavelets (tests/test_wavelets.py ties it to SPEC A.2)
    assert [masks[k].shape for k in rep.band_names()] == problem.mask_shapes()
    assert problem.target == target  # the benchmark photos are correctly classified ones
    recomputed = rde_objective(problem, arrays_to_masks(rep, masks))
    assert recomputed["objective"] == pytest.approx(float(data["objective"]), rel=1e-3)
    # a sparse explanation: most coefficients dropped, far below the all-ones mask's objective lambda_k
    assert recomputed["sparsity"] < 0.02 and recomputed["objective"] < 0.1 * lam


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
