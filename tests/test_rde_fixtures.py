"""The stored paper-preset masks (``tests/fixtures/rde/``: CartoonX; ``rde/pixel-rde/``: Pixel RDE; made by
``benchmarks/rde.py``).

They let the benchmark compare the fast default with the paper preset without recomputing 128,000 passes.
These tests check that every stored fixture is loadable, has the reference's mask layout (SPEC A.3) and
still scores the objective it scored when it was made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "rde"
#: CartoonX mask entries k (colour channels not counted) at the reproduction's sizes, SPEC A.3
ENTRIES = {224: 53_959, 256: 69_831}
#: method -> the folder of its fixtures (CartoonX's predate the others and sit at the top)
FOLDERS = {"cartoonx": FIXTURES, "pixel-rde": FIXTURES / "pixel-rde"}


def fixture_files() -> list[Path]:
    return sorted(p for folder in FOLDERS.values() for p in folder.glob("paper-*.npz"))


def method_of(path: Path) -> str:
    """The method of a fixture (``FOLDER/paper-*.npz``) or of a snapshot (``FOLDER/partial/paper-*.pt``)."""
    folder = path.parent.parent if path.parent.name == "partial" else path.parent
    return next(m for m, f in FOLDERS.items() if f == folder)


def read_fixture(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(masks by band name in fp32, the run's scalars, its per-step history) of a stored fixture."""
    from clearsight.explanation import read_npz_groups

    groups = read_npz_groups(path)
    return {k: v.astype(np.float32) for k, v in groups["mask"].items()}, groups[""], groups["history"]


def test_fixtures_stay_small():
    """Finished masks (fp16) and the snapshots of unfinished runs stay small enough for git."""
    assert sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file()) < 8_000_000


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.stem)
def test_fixture_has_the_reference_mask_layout(path):
    masks, data, history = read_fixture(path)
    size, steps, loss = int(data["size"]), int(data["steps"]), history["loss"]
    if method_of(path) == "cartoonx":
        assert set(masks) == {"yl", "yh0", "yh1", "yh2", "yh3", "yh4"}
        assert sum(m.size for m in masks.values()) == ENTRIES[size]
    else:  # one entry per pixel, shared by the colour channels
        assert set(masks) == {"pixels"} and masks["pixels"].shape == (size, size)
    assert all(m.min() >= 0 and m.max() <= 1 for m in masks.values())
    assert steps == 2000 and len(loss) == 2000
    assert loss[-1] < loss[0]


@pytest.mark.slow
@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.stem)
def test_fixture_reproduces_its_objective(path, request, photo_paths):
    """Recomputing a stored mask's objective gives what the benchmark recorded when the fixture was made:
    the objective, the noise model, the wavelets and the model the comparison relies on are unchanged."""
    from clearsight.methods import build_explainer
    from clearsight.methods.rde import Problem, arrays_to_masks, rde_objective

    _, key, stem = path.stem.split("-", 2)  # paper-<model>-<photo>; <model> names a conftest model fixture
    clf = request.getfixturevalue(key)
    masks, data, _ = read_fixture(path)
    target, lam, size = int(data["target"]), float(data["lambda_k"]), int(data["size"])
    image = clf.prepare(next(p for p in photo_paths if p.stem == stem), size=size, resize="squash")
    rep = build_explainer(method_of(path)).make_representation()
    problem = Problem.build(clf, image, None, rep, lam)  # target=None: the prediction, from the clean pass
    # the layout of today's representation (tests/test_wavelets.py ties the wavelets' to SPEC A.2)
    assert [masks[k].shape for k in rep.band_names()] == problem.mask_shapes()
    assert problem.target == target  # the benchmark photos are correctly classified ones
    recomputed = rde_objective(problem, arrays_to_masks(rep, masks))
    assert recomputed["objective"] == pytest.approx(float(data["objective"]), rel=1e-3)
    # a sparse explanation: most coefficients dropped, far below the all-ones mask's objective lambda_k
    if method_of(path) == "cartoonx":
        assert recomputed["sparsity"] < 0.02 and recomputed["objective"] < 0.1 * lam
    else:  # Pixel RDE's lambda_k (4) is lower: a sparse mask, still far below the all-ones mask's lambda_k
        assert recomputed["objective"] < 0.5 * lam


def partial_files() -> list[Path]:
    return sorted(p for folder in FOLDERS.values() for p in (folder / "partial").glob("paper-*.pt"))


def partial_cases() -> list:
    """The committed snapshots, or one skipped case saying why there are none (pytest's own reason for an empty
    parametrisation, "got empty parameter set", names no cause)."""
    return partial_files() or [pytest.param(None, marks=pytest.mark.skip(
        reason="no partial snapshots committed (make them with benchmarks/rde.py --snapshot)"))]


@pytest.mark.parametrize("path", partial_cases(), ids=lambda p: p.stem if p is not None else "none")
def test_partial_snapshot_resumes_the_reference_run(path):
    """A committed snapshot of an unfinished paper run (``benchmarks/rde.py --snapshot``) is a state that
    ``optimize_mask(resume=...)`` continues: it loads without unpickling code, and its masks, Adam state and
    history agree with each other and with the reference's mask layout."""
    import torch

    state = torch.load(path, weights_only=True)
    step = int(state["step"])
    assert 0 < step < 2000
    masks = state["masks"]
    if method_of(path) == "cartoonx":
        assert len(masks) == 6 and sum(m.numel() for m in masks) in ENTRIES.values()
    else:
        assert len(masks) == 1 and masks[0].shape[-1] in (224, 256)  # the reproduction's image sizes
    assert all(float(m.min()) >= 0 and float(m.max()) <= 1 for m in masks)
    assert all(len(v) == step for v in state["history"].values())
    adam = state["adam"]["state"]
    assert len(adam) == len(masks) and all(int(adam[i]["step"]) == step for i in adam)
    assert state["adam"]["param_groups"][0]["lr"] == pytest.approx(1e-3)
    assert state["history"]["loss"][-1] < state["history"]["loss"][0]
