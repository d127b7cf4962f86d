"""The RDE optimiser: Adam on ``distortion + lambda_k * sparsity``, projected to [0,1] after every step
(SPEC A.6), with gradient accumulation over noise slices, a convergence test and bit-exact resumption; several
photos can run in lockstep, sharing model passes (:func:`optimize_masks_together`), through the same loop.

Randomness: the noise of step ``t`` is drawn from one ``torch.Generator`` seeded with ``seed``, band by
band in :meth:`~clearsight.parts.representations.Representation.band_names` order, as
``mean + std * randn((L, *band.shape))``. The same seed gives the same mask on the same machine and thread
count; another thread count sums floats in another order, and over hundreds of steps the optimisation can
drift to a different mask of similar objective.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...errors import MethodError
from ...parts.representations import Bands
from .problem import Problem, sparsity
from .schedule import Schedule, resolve_precision

#: noise samples per forward+backward slice of an optimisation step (see :func:`accumulate_gradients`)
MICRO_BATCH = 8


@dataclass
class Result:
    """The optimised masks, per-step history and bookkeeping of one run."""

    masks: Bands
    history: dict[str, np.ndarray]
    steps_run: int
    precision: str
    stopped_early: bool = False


def optimize_mask(problem: Problem, masks: Bands, schedule: Schedule, seed: int = 0,
                  progress: Callable[[int, dict[str, float]], None] | None = None,
                  resume: dict[str, Any] | None = None,
                  checkpoint: Callable[[dict[str, Any]], None] | None = None,
                  checkpoint_every: int = 100, micro_batch: int = MICRO_BATCH) -> Result:
    """Adam on ``distortion + lambda_k * sparsity``, projecting to [0,1] after each step (SPEC A.6).

    Each step's noise batch goes through the model in slices of ``micro_batch`` samples whose gradients
    add up (:func:`accumulate_gradients`): the same step as one batch, to float rounding.

    History arrays (one entry per step, for the mask *before* the step): ``loss``, ``distortion``,
    ``sparsity`` (mean mask value), ``spatial`` (the spatial l1 term; 0 when the problem has none),
    ``samples`` and ``lr``. ``progress(step, values)`` is called per step.
    Long runs can be checkpointed: ``checkpoint(state)`` receives, every ``checkpoint_every`` steps, a
    state dict (masks, Adam state, generator state, history) that ``resume`` continues bit for bit.
    """
    run = _Run.begin(problem, masks, schedule, seed, progress, checkpoint, resume)
    return _optimize([run], schedule, checkpoint_every, micro_batch, photos_per_pass=1)[0]


def optimize_masks_together(problems: list[Problem], masks: list[Bands], schedule: Schedule, seed: int = 0,
                            progress: Callable[[int, dict[str, float]], None] | None = None,
                            micro_batch: int = MICRO_BATCH, photos_per_pass: int = 1) -> list[Result]:
    """:func:`optimize_mask` of several problems (photos) in lockstep, ``photos_per_pass`` photos' noise slices
    in one model pass: a GPU step of one photo's few noise samples leaves the device mostly idle, and a
    pass of many photos' samples costs about as much as one photo's.

    Each photo keeps its own Adam state, noise generator (seeded with ``seed``, as when it runs alone) and
    convergence test; a photo that has converged leaves the batch. The masks' gradients are independent
    (a photo's loss depends on its own mask only), so each result is the photo's own run: bit for bit with
    ``photos_per_pass=1``, and to float rounding otherwise (a model pass over more rows may sum in another
    order). Every problem must share one model and image size. ``progress`` is called per photo and step.
    """
    if not problems:
        return []
    if len(problems) != len(masks):
        raise MethodError(f"{len(masks)} starting masks for {len(problems)} problems")
    if len({p.size for p in problems}) > 1 or len({id(p.clf) for p in problems}) > 1:
        raise MethodError("photos optimised together must share one model and one image size")
    runs = [_Run.begin(p, m, schedule, seed, progress) for p, m in zip(problems, masks)]
    return _optimize(runs, schedule, 100, micro_batch, photos_per_pass)


_KEYS = ("loss", "distortion", "sparsity", "spatial", "samples", "lr")


@dataclass
class _Run:
    """One photo's optimisation state: its masks, Adam, noise generator, history and convergence test."""

    problem: Problem
    params: list[torch.Tensor]
    opt: torch.optim.Adam
    gen: torch.Generator
    hist: dict[str, list[float]]
    stopper: _ConvergenceTest
    start: int
    stopped: bool
    progress: Callable[[int, dict[str, float]], None] | None
    checkpoint: Callable[[dict[str, Any]], None] | None

    @classmethod
    def begin(cls, problem: Problem, masks: Bands, schedule: Schedule, seed: int,
              progress: Callable[[int, dict[str, float]], None] | None = None,
              checkpoint: Callable[[dict[str, Any]], None] | None = None,
              resume: dict[str, Any] | None = None) -> _Run:
        """Fresh state, or the state a checkpoint kept (``resume``), replaying its history through the
        convergence test so that a resumed run stops where the uninterrupted one would."""
        params = [m.detach().clone().requires_grad_(True) for m in masks]
        opt = torch.optim.Adam(params, lr=schedule.lr)
        gen = torch.Generator().manual_seed(seed)
        hist: dict[str, list[float]] = {k: [] for k in _KEYS}
        start = 0
        if resume is not None:
            with torch.no_grad():
                for p, m in zip(params, resume["masks"]):
                    p.copy_(m)
            opt.load_state_dict(resume["adam"])
            gen.set_state(resume["generator"])
            hist = {k: list(resume["history"].get(k, [0.0] * int(resume["step"]))) for k in _KEYS}
            start = int(resume["step"])
        stopper = _ConvergenceTest(schedule)
        stopped = False
        for step, loss in enumerate(hist["loss"]):
            stopped = stopper.should_stop(step, loss)
        return cls(problem, params, opt, gen, hist, stopper, start, stopped, progress, checkpoint)

    def state(self, step: int) -> dict[str, Any]:
        """What :meth:`begin` needs to continue after ``step`` steps, bit for bit."""
        return {"step": step, "masks": [p.detach().clone() for p in self.params], "adam": self.opt.state_dict(),
                "generator": self.gen.get_state(), "history": {k: list(v) for k, v in self.hist.items()}}

    def result(self, precision: str) -> Result:
        return Result([p.detach() for p in self.params],
                      {k: np.asarray(v, dtype=np.float32) for k, v in self.hist.items()},
                      len(self.hist["loss"]), precision, stopped_early=self.stopped)


def _optimize(runs: list[_Run], schedule: Schedule, checkpoint_every: int, micro_batch: int,
              photos_per_pass: int) -> list[Result]:
    """The optimisation loop every run shares: at each step, the photos still running draw their noise,
    their gradients accumulate in shared passes, and each takes its own Adam step."""
    clf = runs[0].problem.clf
    precision = resolve_precision(schedule.precision, clf)
    with clf.using_precision(precision):
        for step in range(min(r.start for r in runs), schedule.steps):
            active = [r for r in runs if not r.stopped and r.start <= step]
            if not active:
                break
            lr = schedule.lr_at(step)
            n = schedule.samples_at(step)
            for r in active:
                for group in r.opt.param_groups:
                    group["lr"] = lr
                r.opt.zero_grad(set_to_none=True)
            noises = [r.problem.noise.sample(r.problem.bands, n, r.gen) for r in active]
            terms = accumulate_gradients_together([r.problem for r in active], [r.params for r in active], noises,
                                                  micro_batch, photos_per_pass)
            for r, (dist, spars) in zip(active, terms):
                spatial = spatial_gradient(r.problem, r.params)
                loss = dist + r.problem.lambda_k * spars + r.problem.spatial_lambda * spatial
                if not math.isfinite(loss):  # stop before the mask turns to NaN and gets saved as a result
                    raise MethodError(f"the mask optimisation diverged at step {step + 1}: the loss is {loss} "
                                      "(the model returned non-finite outputs, or the learning rate is too large)")
                r.opt.step()
                with torch.no_grad():
                    for p in r.params:
                        p.clamp_(0.0, 1.0)
                values = {"loss": loss, "distortion": dist, "sparsity": spars, "spatial": spatial,
                          "samples": float(n), "lr": lr}
                for k in _KEYS:
                    r.hist[k].append(values[k])
                if r.progress is not None:
                    r.progress(step, values)
                if r.checkpoint is not None and (step + 1) % checkpoint_every == 0:
                    r.checkpoint(r.state(step + 1))
                if r.stopper.should_stop(step, values["loss"]):
                    r.stopped = True
    return [r.result(precision) for r in runs]


def accumulate_gradients(problem: Problem, masks: Bands, noise: Bands, micro_batch: int = MICRO_BATCH
                         ) -> tuple[float, float]:
    """Gradients of ``distortion + lambda_k * sparsity`` into ``masks[i].grad``, the noise batch sliced into
    ``micro_batch`` samples at a time; returns (distortion, sparsity) of the whole batch.

    Every distortion is a mean over samples, so slice means weighted by slice size add up to the batch
    mean, and so do their gradients. Small slices keep the activations that backward needs in the CPU's
    caches, which makes a step faster than one large batch (benchmarks/RESULTS.md, "RDE micro-batches").
    """
    return accumulate_gradients_together([problem], [masks], [noise], micro_batch)[0]


def accumulate_gradients_together(problems: list[Problem], masks: list[Bands], noises: list[Bands],
                                  micro_batch: int = MICRO_BATCH, photos_per_pass: int = 1
                                  ) -> list[tuple[float, float]]:
    """:func:`accumulate_gradients` for several photos, each with the same number of noise draws: slice ``j``
    of ``photos_per_pass`` photos goes through the model in one pass. Each photo's gradient contributions
    arrive in the order of its own run (slice by slice, then the sparsity), so with one photo per pass every
    photo's gradients are bit for bit its own."""
    if len({n[0].shape[0] for n in noises}) > 1:
        raise MethodError("photos optimised together draw the same number of noise samples per step")
    total = noises[0][0].shape[0] if noises else 0
    step, group = max(1, int(micro_batch)), max(1, int(photos_per_pass))
    dists = [0.0] * len(problems)
    for start in range(0, total, step):
        for first in range(0, len(problems), group):
            members = range(first, min(first + group, len(problems)))
            batch = [problems[i].obfuscations(masks[i], [v[start:start + step] for v in noises[i]]) for i in members]
            logits = problems[first].clf(torch.cat(batch) if len(batch) > 1 else batch[0]).split(
                [b.shape[0] for b in batch])
            weight = batch[0].shape[0] / total  # slice means weighted by slice size add up to the step's mean
            terms = [problems[i].distortion_from(rows) for i, rows in zip(members, logits)]
            sum(d * weight for d in terms).backward()
            for i, d in zip(members, terms):
                dists[i] += float(d.detach()) * weight
    out = []
    for p, m, dist in zip(problems, masks, dists):
        spars = sparsity(m)
        (p.lambda_k * spars).backward()
        out.append((dist, float(spars.detach())))
    return out


def spatial_gradient(problem: Problem, masks: Bands) -> float:
    """Add the gradient of ``spatial_lambda * spatial`` to ``masks[i].grad`` and return the spatial term;
    nothing (and 0.0) for problems without one, so CartoonX and Pixel RDE take exactly their old steps.

    The term needs no noise, so it is computed once per step, outside the micro-batches, in fp32 (the
    explanation image is a transform of the mask, not a model pass; autocast would not speed it up)."""
    if problem.spatial_lambda <= 0:
        return 0.0
    spatial = problem.spatial_of(masks)
    (problem.spatial_lambda * spatial).backward()
    return float(spatial.detach())


class _ConvergenceTest:
    """Stop once the windowed mean loss improves by less than ``stop_tol`` (relative) twice in a row."""

    def __init__(self, schedule: Schedule) -> None:
        self.s = schedule
        self.window: list[float] = []
        self.previous: float | None = None
        self.flat = 0

    def should_stop(self, step: int, loss: float) -> bool:
        if self.s.stop_tol is None:
            return False
        self.window.append(loss)
        if len(self.window) < self.s.stop_window:
            return False
        mean = float(np.mean(self.window))
        self.window = []
        improved = self.previous is None or self.previous - mean > self.s.stop_tol * abs(self.previous)
        self.previous = mean
        self.flat = 0 if improved else self.flat + 1
        return self.flat >= 2 and step + 1 >= self.s.min_steps
