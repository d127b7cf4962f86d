"""The RDE optimiser: Adam on ``distortion + lambda_k * sparsity``, projected to [0,1] after every step
(SPEC A.6), with gradient accumulation over noise slices, a convergence test and bit-exact resumption.

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
    precision = resolve_precision(schedule.precision, problem.clf)
    params = [m.detach().clone().requires_grad_(True) for m in masks]
    opt = torch.optim.Adam(params, lr=schedule.lr)
    gen = torch.Generator().manual_seed(seed)
    keys = ("loss", "distortion", "sparsity", "spatial", "samples", "lr")
    hist: dict[str, list[float]] = {k: [] for k in keys}
    start = 0
    if resume is not None:
        with torch.no_grad():
            for p, m in zip(params, resume["masks"]):
                p.copy_(m)
        opt.load_state_dict(resume["adam"])
        gen.set_state(resume["generator"])
        hist = {k: list(resume["history"].get(k, [0.0] * int(resume["step"]))) for k in keys}
        start = int(resume["step"])
    stopper = _ConvergenceTest(schedule)
    stopped = False
    for step, loss in enumerate(hist["loss"]):  # a resumed run stops where the uninterrupted one would
        stopped = stopper.should_stop(step, loss)
    end = start if stopped else schedule.steps
    with problem.clf.using_precision(precision):
        for step in range(start, end):
            lr = schedule.lr_at(step)
            for group in opt.param_groups:
                group["lr"] = lr
            n = schedule.samples_at(step)
            opt.zero_grad(set_to_none=True)
            dist, spars = accumulate_gradients(problem, params, problem.noise.sample(problem.bands, n, gen),
                                               micro_batch)
            spatial = spatial_gradient(problem, params)
            loss = dist + problem.lambda_k * spars + problem.spatial_lambda * spatial
            if not math.isfinite(loss):  # stop before the mask turns to NaN and gets saved as a result
                raise MethodError(f"the mask optimisation diverged at step {step + 1}: the loss is {loss} "
                                  "(the model returned non-finite outputs, or the learning rate is too large)")
            opt.step()
            with torch.no_grad():
                for p in params:
                    p.clamp_(0.0, 1.0)
            values = {"loss": loss, "distortion": dist, "sparsity": spars, "spatial": spatial,
                      "samples": float(n), "lr": lr}
            for k in keys:
                hist[k].append(values[k])
            if progress is not None:
                progress(step, values)
            if checkpoint is not None and (step + 1) % checkpoint_every == 0:
                checkpoint({"step": step + 1, "masks": [p.detach().clone() for p in params],
                            "adam": opt.state_dict(), "generator": gen.get_state(),
                            "history": {k: list(v) for k, v in hist.items()}})
            if stopper.should_stop(step, values["loss"]):
                stopped = True
                break
    return Result([p.detach() for p in params], {k: np.asarray(v, dtype=np.float32) for k, v in hist.items()},
                  len(hist["loss"]), precision, stopped_early=stopped)


def accumulate_gradients(problem: Problem, masks: Bands, noise: Bands, micro_batch: int = MICRO_BATCH
                         ) -> tuple[float, float]:
    """Gradients of ``distortion + lambda_k * sparsity`` into ``masks[i].grad``, the noise batch sliced into
    ``micro_batch`` samples at a time; returns (distortion, sparsity) of the whole batch.

    Every distortion is a mean over samples, so slice means weighted by slice size add up to the batch
    mean, and so do their gradients. Small slices keep the activations that backward needs in the CPU's
    caches, which makes a step faster than one large batch (benchmarks/RESULTS.md, "RDE micro-batches").
    """
    total = noise[0].shape[0]
    step = max(1, int(micro_batch))
    dist = 0.0
    for start in range(0, total, step):
        part = [v[start:start + step] for v in noise]
        weight = part[0].shape[0] / total
        d = problem.distortion_of(masks, part)
        (d * weight).backward()
        dist += float(d.detach()) * weight
    spars = sparsity(masks)
    (problem.lambda_k * spars).backward()
    return dist, float(spars.detach())


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
