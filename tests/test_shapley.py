"""Sampled Shapley values against exhaustive enumeration; seeding, sizes, variance-reduced sampling."""

from __future__ import annotations

import pytest
import torch

from clearsight.errors import MethodError
from clearsight.methods import build_explainer
from clearsight.methods.shapley import (
    exact_shapley,
    passes_per_round,
    random_orderings,
    round_sizes,
    shapley_rounds,
)
from clearsight.parts import PatchGame, PatchGrid

pytestmark = pytest.mark.usefixtures("one_thread")


def toy_game(n: int = 8, seed: int = 0):
    """A game with interactions: weighted sum, pairwise synergies and a saturating total."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, generator=g)
    pairs = torch.randn(n, n, generator=g).triu(1)

    def value(keep: torch.Tensor) -> torch.Tensor:
        x = keep.double()
        return x @ w.double() + ((x @ pairs.double()) * x).sum(1) + torch.tanh(x.sum(1) - n / 2)

    return value


def test_exact_shapley_is_efficient_and_exact_on_additive_games():
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    phi = exact_shapley(lambda keep: keep.double() @ w.double(), 4)
    torch.testing.assert_close(phi, w.double())
    value = toy_game()
    phi = exact_shapley(value, 8)
    full, empty = value(torch.ones(1, 8, dtype=torch.bool)), value(torch.zeros(1, 8, dtype=torch.bool))
    assert float(phi.sum()) == pytest.approx(float(full - empty))


@pytest.mark.parametrize("sampling", ["plain", "antithetic", "stratified"])
def test_estimator_approaches_exact_values(sampling):
    value = toy_game()
    exact = exact_shapley(value, 8).float()
    errors = []
    for rounds in (50, 3000):
        estimate = shapley_rounds(value, 8, rounds, sampling, seed=1).mean(0)
        errors.append(float((estimate - exact).abs().max()))
    assert errors[1] < 0.1 * float(exact.abs().max())
    assert errors[1] < errors[0]


def test_antithetic_pairs_are_complements():
    value = toy_game()
    seen = []
    shapley_rounds(lambda keep: seen.append(keep.clone()) or value(keep), 8, 2, "antithetic", seed=0)
    first, second = seen[0][8:], seen[1][8:]  # the contexts (without i) of the two rounds
    eye = torch.eye(8, dtype=torch.bool)
    assert torch.equal(second, ~first & ~eye)


def test_sizes_cover_zero_to_n_minus_one():
    g = torch.Generator().manual_seed(0)
    sizes = round_sizes(5, 5000, "plain", g)
    assert sizes.min() == 0 and sizes.max() == 4
    counts = torch.bincount(sizes, minlength=5).float() / 5000
    assert (counts - 0.2).abs().max() < 0.03  # uniform, including N-1 (the reference's off-by-one)
    strat = round_sizes(10, 10, "stratified", g)
    assert sorted(strat.tolist()) == list(range(10))  # one per slice


def test_seeded_and_chunked_on_a_patch_game(tiny_vit):
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    explainer = build_explainer("shapley", {"rounds": 6, "seed": 3})
    a, b = explainer.explain(tiny_vit, image), explainer.explain(tiny_vit, image)
    assert (a.arrays["grid"] == b.arrays["grid"]).all()
    c = build_explainer("shapley", {"rounds": 6, "seed": 4}).explain(tiny_vit, image)
    assert not (a.arrays["grid"] == c.arrays["grid"]).all()
    assert a.cost["passes"] == 1 + 6 * 2 * 16
    assert sorted(a.order.tolist()) == list(range(16))


def test_estimator_approaches_exact_values_on_a_vit(tiny_vit):
    """4 players of 2x2 tokens: enumeration is exact, sampling must get close."""
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    game = PatchGame(tiny_vit, image, 2, grid=PatchGrid(32, 32, 16))
    exact = exact_shapley(game.value, 4).float()
    estimate = shapley_rounds(game.value, 4, 2000, "antithetic", seed=0).mean(0)
    assert float((estimate - exact).abs().max()) < 0.05 * float(exact.abs().max()) + 1e-3


def test_bad_settings_are_refused():
    with pytest.raises(MethodError):
        build_explainer("shapley", {"sampling": "lucky"})
    with pytest.raises(MethodError):
        build_explainer("shapley", {"rounds": 0})


@pytest.mark.parametrize("antithetic", [False, True])
def test_permutation_rounds_are_exact_marginal_contributions(antithetic):
    """Every round is one ordering: contributions sum to f(N) - f(empty) (efficiency per round), and each
    equals f(players before i + i) - f(players before i), recomputed here one coalition at a time."""
    value = toy_game()
    sampling = "permutation-antithetic" if antithetic else "permutation"
    rounds = shapley_rounds(value, 8, 6, sampling, seed=2)
    full, empty = value(torch.ones(1, 8, dtype=torch.bool)), value(torch.zeros(1, 8, dtype=torch.bool))
    torch.testing.assert_close(rounds.sum(1).double(), (full - empty).expand(6), atol=1e-5, rtol=0)
    orders = random_orderings(8, 6, antithetic, torch.Generator().manual_seed(2))
    for r, order in enumerate(orders.tolist()):
        for pos, player in enumerate(order):
            before = torch.zeros(1, 8, dtype=torch.bool)
            before[0, order[:pos]] = True
            with_i = before.clone()
            with_i[0, player] = True
            assert float(rounds[r, player]) == pytest.approx(float(value(with_i) - value(before)), abs=1e-5)
    if antithetic:
        assert torch.equal(orders[1], orders[0].flip(0))


@pytest.mark.parametrize("sampling", ["permutation", "permutation-antithetic"])
def test_permutation_sampling_approaches_exact_values(sampling):
    value = toy_game()
    exact = exact_shapley(value, 8).float()
    estimate = shapley_rounds(value, 8, 3000, sampling, seed=1).mean(0)
    assert float((estimate - exact).abs().max()) < 0.05 * float(exact.abs().max())


def test_permutation_rounds_cost_n_plus_one_passes(tiny_vit):
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    a = build_explainer("shapley", {"rounds": 5, "seed": 3, "sampling": "permutation"}).explain(tiny_vit, image)
    assert a.cost["passes"] == 1 + 5 * (16 + 1) == 1 + 5 * passes_per_round(16, "permutation")
    b = build_explainer("shapley", {"rounds": 5, "seed": 3, "sampling": "permutation"}).explain(tiny_vit, image)
    assert (a.arrays["grid"] == b.arrays["grid"]).all()


def test_cli_offers_every_sampling():
    from clearsight.cli import SHAPLEY_SAMPLINGS
    from clearsight.methods.shapley import SAMPLINGS

    assert SHAPLEY_SAMPLINGS == SAMPLINGS
