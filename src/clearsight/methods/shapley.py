"""Sampled Shapley values of image patches: MoXI's Shapley baseline (SPEC C.5 with the section-0 fix).

Each round draws one coalition size s uniformly from {0, ..., N-1}, shared by all players, and for every
player i a subset m_i of the other N-1 players of that size, uniformly; it adds f(m_i + i) - f(m_i). Since
the Shapley weight of a subset depends only on its size and every size is equally likely under it, the
round average is an unbiased estimate of the Shapley value. (The reference drew sizes floor(195 r) with
r ~ U(0,1), which makes size N-1 nearly impossible; section 0 fixes that.) A round costs 2N passes.

Variance reduction, same cost per round:
- ``antithetic``: rounds come in pairs; the partner of (s, m_i) is (N-1-s, the complement of m_i among
  the others). Large and small contexts of the same split are negatively correlated, which cancels much
  of the between-round noise.
- ``stratified``: the R sizes are stratified (one uniform draw in each of R equal slices of [0,1)), so
  every part of the size range is visited as often as it should be.

Cheaper rounds, same error per round:
- ``permutation``: a round is one uniformly random ordering of the players; player i's context is the set
  of players before it. Its position is uniform over {0..N-1} and the players before it are a uniform
  subset of that size, so each player's contribution has exactly the distribution of a ``plain`` round:
  the same error for the same number of rounds. But all N contributions come from the N+1 prefixes of one
  ordering, so a round costs N+1 passes instead of 2N (about half). Rounds are evaluated in blocks, so
  that token dropping still batches prefixes of equal length from many orderings together.
- ``permutation-antithetic``: orderings come in pairs, an ordering and its reverse (the players after i
  become the ones before it), the antithetic scheme of Mitchell et al. (2022) for Shapley values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from ..errors import MethodError
from ..explanation import Explanation
from ..models import Classifier
from ..parts import PatchGame, PatchGrid
from .base import CostMeter, Explainer, RunControl, resolve_target, single_image
from .progress import progress_bar

Sampling = Literal["plain", "antithetic", "stratified", "permutation", "permutation-antithetic"]
ValueFn = Callable[[torch.Tensor], torch.Tensor]
SAMPLINGS = ("plain", "antithetic", "stratified", "permutation", "permutation-antithetic")
PERMUTATION_SAMPLINGS = ("permutation", "permutation-antithetic")
#: orderings evaluated in one call of ``value`` (their prefixes of equal length batch together)
PERMUTATION_BLOCK = 32


def passes_per_round(n: int, sampling: Sampling) -> int:
    """Model passes one round costs: 2N (size-based schemes) or N+1 (one ordering's prefixes)."""
    return n + 1 if sampling in PERMUTATION_SAMPLINGS else 2 * n


def round_sizes(n: int, rounds: int, sampling: Sampling, generator: torch.Generator) -> torch.Tensor:
    """The coalition size of each round, ``(rounds,)`` in {0..n-1}."""
    if sampling == "stratified":
        slices = torch.randperm(rounds, generator=generator).double()
        u = (slices + torch.rand(rounds, generator=generator, dtype=torch.float64)) / rounds
    elif sampling == "antithetic":
        pairs = (rounds + 1) // 2
        u = torch.rand(pairs, generator=generator, dtype=torch.float64).repeat_interleave(2)[:rounds]
    else:
        u = torch.rand(rounds, generator=generator, dtype=torch.float64)
    sizes = (u * n).floor().long().clamp_(max=n - 1)
    if sampling == "antithetic":
        sizes[1::2] = n - 1 - sizes[1::2]
    return sizes


def random_contexts(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``(n,n)`` bool: row i is a uniform subset of the players other than i, of ``size`` players."""
    keys = torch.rand(n, n, generator=generator)
    keys.fill_diagonal_(2.0)  # never among the ``size`` smallest: i is not in its own context
    ranks = keys.argsort(1).argsort(1)
    return ranks < size


def shapley_rounds(value: ValueFn, n: int, rounds: int, sampling: Sampling = "plain", seed: int = 0,
                   device: torch.device | str = "cpu",
                   progress: Callable[[int], object] | None = None) -> torch.Tensor:
    """Per-round marginal contributions ``(rounds, n)``; their mean over rounds estimates the Shapley values.

    ``value`` maps ``(B,n)`` keep-masks to ``(B,)`` scores (e.g. :meth:`PatchGame.value`).
    """
    if sampling not in SAMPLINGS:
        raise MethodError(f"unknown Shapley sampling {sampling!r}; use {', '.join(SAMPLINGS)}")
    if rounds < 1:
        raise MethodError(f"Shapley sampling needs at least one round; got {rounds}")
    generator = torch.Generator().manual_seed(int(seed))
    if sampling in PERMUTATION_SAMPLINGS:
        return _permutation_rounds(value, n, rounds, sampling == "permutation-antithetic", generator, device,
                                   progress)
    sizes = round_sizes(n, rounds, sampling, generator)
    eye = torch.eye(n, dtype=torch.bool)
    out = torch.empty(rounds, n)
    context = torch.zeros(n, n, dtype=torch.bool)
    for r in range(rounds):
        if sampling == "antithetic" and r % 2 == 1:
            context = ~context & ~eye  # the complement among the others: size n-1-s
        else:
            context = random_contexts(n, int(sizes[r]), generator)
        both = torch.cat([context | eye, context]).to(device)
        v = value(both).float().cpu()
        out[r] = v[:n] - v[n:]
        if progress is not None:
            progress(1)
    return out


def random_orderings(n: int, rounds: int, antithetic: bool, generator: torch.Generator) -> torch.Tensor:
    """``(rounds, n)`` orderings of the players; with ``antithetic``, odd rows reverse the row before."""
    fresh = (rounds + 1) // 2 if antithetic else rounds
    orders = torch.stack([torch.randperm(n, generator=generator) for _ in range(fresh)])
    if antithetic:
        orders = torch.stack([orders, orders.flip(1)], dim=1).reshape(-1, n)[:rounds]
    return orders


def _permutation_rounds(value: ValueFn, n: int, rounds: int, antithetic: bool, generator: torch.Generator,
                        device: torch.device | str,
                        progress: Callable[[int], object] | None = None) -> torch.Tensor:
    """Contributions ``(rounds, n)`` from the prefixes of random orderings (``permutation`` sampling)."""
    orders = random_orderings(n, rounds, antithetic, generator)
    out = torch.empty(rounds, n)
    steps = torch.arange(n + 1)
    for start in range(0, rounds, PERMUTATION_BLOCK):
        block = orders[start:start + PERMUTATION_BLOCK]
        ranks = block.argsort(1)  # ranks[r, i] = position of player i in ordering r
        prefixes = ranks[:, None, :] < steps[None, :, None]  # (R, n+1, n): the first j players kept
        v = value(prefixes.reshape(-1, n).to(device)).float().cpu().reshape(block.shape[0], n + 1)
        gains = v[:, 1:] - v[:, :-1]  # gains[r, j] = contribution of the player at position j
        out[start:start + block.shape[0]] = gains.gather(1, ranks)
        if progress is not None:
            progress(block.shape[0])
    return out


def exact_shapley(value: ValueFn, n: int) -> torch.Tensor:
    """Shapley values by enumerating all 2^n coalitions (small n only: tests and toy games)."""
    if n > 16:
        raise MethodError(f"exact Shapley values enumerate 2^n coalitions; n={n} is too many")
    masks = torch.tensor(list(itertools.product([False, True], repeat=n)), dtype=torch.bool)
    table = value(masks).double()
    index = {tuple(m.tolist()): k for k, m in enumerate(masks)}
    phi = torch.zeros(n, dtype=torch.float64)
    for k, m in enumerate(masks):
        s = int(m.sum())
        for i in range(n):
            if m[i]:
                continue
            weight = math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n)
            with_i = list(m.tolist())
            with_i[i] = True
            phi[i] += weight * (table[index[tuple(with_i)]] - table[k])
    return phi


class ShapleySampling(Explainer):
    """Monte-Carlo Shapley values of the patches (MoXI's baseline), seeded.

    Args:
        rounds: number of rounds (200 in the paper); each costs 2N model passes (N+1 for ``permutation``).
        sampling: ``plain`` (the reference's scheme), ``antithetic``, ``stratified``, ``permutation`` (same
            error per round at about half the passes) or ``permutation-antithetic`` (see module docs).
        seed: seed of every random choice.
        score, absence, patch_size: the game, as for :class:`~clearsight.methods.moxi.MoXI`.
    """

    name = "shapley"
    #: takes the patch game's options (score, absence, patch_size); ranks patches by saliency
    patch_game = True

    def __init__(self, rounds: int = 200, sampling: Sampling = "plain", seed: int = 0, score: str = "log-odds",
                 absence: str = "auto", patch_size: int | None = None) -> None:
        if sampling not in SAMPLINGS:
            raise MethodError(f"unknown Shapley sampling {sampling!r}; use {', '.join(SAMPLINGS)}")
        if int(rounds) < 1:
            raise MethodError(f"Shapley sampling needs at least one round; got {rounds}")
        self.rounds = int(rounds)
        self.sampling = sampling
        self.seed = int(seed)
        self.score = score
        self.absence = absence
        self.patch_size = patch_size

    def game(self, clf: Classifier, image: torch.Tensor, target: int) -> PatchGame:
        grid = PatchGrid.for_classifier(clf, self.patch_size)
        return PatchGame(clf, image, target, score=self.score, absence=self.absence, grid=grid)

    def values(self, game: PatchGame, progress: bool = False) -> torch.Tensor:
        """Per-round contributions ``(rounds, N)`` on ``game`` (``progress``: a bar of the rounds on stderr)."""
        with progress_bar(progress, self.rounds, f"{self.name} {self.sampling}", "round") as update:
            return shapley_rounds(game.value, game.num_players, self.rounds, self.sampling, self.seed,
                                  game.clf.device, progress=update)

    def explain_one(self, clf: Classifier, image: torch.Tensor, target: int | str | None = None,
                    run: RunControl = RunControl()) -> Explanation:
        image = single_image(clf, image)
        meter = CostMeter(clf)
        with meter.measure():
            target, prob = resolve_target(clf, clf.logits(image[None]), target)
            game = self.game(clf, image, target)
            phi = self.values(game, progress=run.progress).mean(0)
        grid = game.grid
        order = torch.argsort(phi, descending=True, stable=True)
        return Explanation(
            method=self.name, target=target, target_name=clf.class_name(target), model=clf.name,
            saliency=grid.to_pixels(phi).numpy().astype(np.float32), score=prob, order=order.numpy(),
            arrays={"grid": grid.to_grid(phi).numpy()}, cost=meter.as_dict(),
            settings={**self.settings(), "grid": list(grid.shape)},
        )
