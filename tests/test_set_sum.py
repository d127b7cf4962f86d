"""The visual SET-SUM task (MoXI paper 4.1, SPEC C.14): data, model, and the paper's finding that MoXI's
interactions avoid inserting a redundant duplicate that Shapley values insert."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clearsight.errors import MethodError
from clearsight.experiments.set_sum import (
    CELL,
    DigitPool,
    digit_pools,
    evaluate_set_sum,
    load_model,
    make_set_sum,
    reproduce_set_sum,
    set_sum_classifier,
    set_sum_labels,
    train_set_sum,
)

pytest.importorskip("sklearn")
#: a SetSumNet trained by `clearsight set-sum` with its defaults (30,000 grids, 10 epochs, seed 0)
TRAINED = Path(__file__).parent / "fixtures" / "set_sum" / "set_sum_model.pt"


@pytest.fixture(scope="module")
def pools() -> tuple[DigitPool, DigitPool]:
    return digit_pools(0)


def test_labels_sum_the_distinct_digits():
    digits = torch.tensor([[3, 3, 5, 0], [9, 9, 9, 9], [1, 2, 3, 4], [0, 0, 0, 0], [9, 8, 7, 6]])
    assert set_sum_labels(digits).tolist() == [8, 9, 10, 0, 30]


def test_digit_pools_are_disjoint_halves(pools):
    train, test = pools
    assert len(train.labels) + len(test.labels) == 1797
    assert train.images.shape[1:] == (CELL, CELL) and 0 <= float(train.images.min()) <= float(train.images.max()) <= 1
    # no test digit image is also a training image: the test grids are made of unseen handwriting
    distances = torch.cdist(test.images.flatten(1)[:200], train.images.flatten(1))
    assert float(distances.min()) > 0


def test_composites_place_each_digit_in_its_cell(pools):
    _, test = pools
    data = make_set_sum(test, 50, seed=1)
    assert data.images.shape == (50, 3, 32, 32) and torch.equal(data.images[:, 0], data.images[:, 1])
    # each cell holds an image of the digit recorded for it: the nearest pool image has that class
    cells = [data.images[:, 0, :CELL, :CELL], data.images[:, 0, :CELL, CELL:], data.images[:, 0, CELL:, :CELL],
             data.images[:, 0, CELL:, CELL:]]
    for k, cell in enumerate(cells):
        nearest = torch.cdist(cell.flatten(1), test.images.flatten(1)).argmin(1)
        assert torch.equal(test.labels[nearest], data.digits[:, k])
    assert torch.equal(make_set_sum(test, 50, seed=1).images, data.images)  # seeded


def test_the_test_set_has_its_largest_digit_twice(pools):
    data = make_set_sum(pools[1], 500, seed=2, largest_twice=True)
    largest = data.digits.max(1).values
    assert ((data.digits == largest[:, None]).sum(1) == 2).all()
    uniform = make_set_sum(pools[1], 4000, seed=2)
    repeated = (uniform.digits.sort(1).values.diff(dim=1) == 0).any(1).float().mean()
    assert float(repeated) == pytest.approx(1 - 10 * 9 * 8 * 7 / 10**4, abs=0.03)  # ~50% hold a repeat


def test_training_lowers_the_loss(pools):
    losses = []
    train_set_sum(make_set_sum(pools[0], 1024, seed=3), epochs=3, seed=0, progress=lambda e, loss: losses.append(loss))
    assert losses[-1] < losses[0]


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(MethodError, match="rollout"):
        reproduce_set_sum(tmp_path, methods=["rollout"])
    with pytest.raises(MethodError, match="positive"):
        reproduce_set_sum(tmp_path, epochs=0)


@pytest.mark.slow
def test_moxi_avoids_the_redundant_duplicate_shapley_inserts(pools):
    clf = set_sum_classifier(load_model(TRAINED))
    data = make_set_sum(pools[1], 60, seed=3, largest_twice=True)
    results = evaluate_set_sum(clf, data, rounds=50)
    assert len(results.images) >= 45  # the trained model gets most test grids right
    moxi, minus, shapley = (results.accuracy(m) for m in ("moxi", "moxi-minus", "shapley"))
    assert moxi[0] == minus[0] == shapley[0] and moxi[-1] == 1.0  # the same empty and full grids
    # three cells hold every distinct digit: MoXI, which scores each candidate with the cells already in,
    # gets there; MoXI(-) and Shapley value both copies of the largest digit highly and insert both
    assert moxi[3] > shapley[3] and moxi[3] > minus[3]
    # MoXI(-) inserts the second copy second: the second cell adds nothing to its accuracy
    assert minus[2] == pytest.approx(minus[1], abs=0.05) and moxi[2] > minus[2]
