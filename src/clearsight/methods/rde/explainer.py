"""RDEExplainer: the shared driver of CartoonX and Pixel RDE.

It turns the constructor's settings into a :class:`~clearsight.methods.rde.problem.Problem` and a
:class:`~clearsight.methods.rde.schedule.Schedule`, starts the mask (:mod:`.initial`), runs the optimiser
(:mod:`.optimizer`) and records everything the result depends on. How a run is watched (a progress bar) or
kept (a resumable checkpoint folder) comes from the :class:`~clearsight.methods.base.RunControl` of
``explain``, never from the constructor: it changes no result, so it is no setting.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...checkpoints import RunCheckpoint, file_digest, pixel_digest
from ...errors import MethodError
from ...explanation import Explanation
from ...models import Classifier
from ...parts.representations import Bands, Representation
from ..base import CostMeter, Explainer, RunControl, same_size_chunks, single_image
from .initial import INITS, foreground_masks, initial_masks, preoptimize
from .optimizer import Result, optimize_mask, optimize_masks_together
from .problem import DISTORTIONS, EVAL_SAMPLES, EVAL_SEED, Problem, masks_to_arrays, rde_objective
from .schedule import FAST, PRESETS, Schedule, resolve_precision, schedule_settings, with_overrides

#: photos optimised together at most by :meth:`RDEExplainer.explain_batch` (their problems stay in memory)
BATCH_PHOTOS = 16


class RDEExplainer(Explainer):
    """Shared driver of CartoonX and Pixel RDE: presets, initialisation, optimisation, bookkeeping.

    Subclasses choose the representation, the default ``lambda_k`` and how the result is rendered.
    Settings given explicitly (``steps``, ``lr``, ``samples``, ``precision``) override the preset. A progress
    bar and a checkpoint folder are asked of ``explain(clf, image, progress=True, checkpoint_dir=...)``; with a
    folder, an interrupted run resumes from its last checkpoint to the same mask as an uninterrupted one.
    """

    name = "rde"
    representation_kind = "pixel"
    #: steps between checkpoints when ``explain`` gets a ``checkpoint_dir`` (one write costs milliseconds)
    checkpoint_every = 25

    def __init__(self, preset: str = "fast", lambda_k: float | None = None, steps: int | None = None,
                 lr: float | None = None, samples: int | None = None, init: str = "ones",
                 preoptimize: bool = False, foreground_mask: Any = None, distortion: str = "label",
                 noise: str = "adaptive", precision: str | None = None, seed: int = 0,
                 evaluate: bool = False) -> None:
        if preset not in PRESETS:
            raise MethodError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if init not in INITS:
            raise MethodError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        if distortion not in DISTORTIONS:
            raise MethodError(f"unknown distortion {distortion!r}; choose one of {', '.join(DISTORTIONS)}")
        if noise not in ("adaptive", "uniform", "zero"):
            raise MethodError(f"unknown noise {noise!r}; use 'adaptive' (Gaussian, per band), 'uniform' "
                              "(uniform on mean +- std, per band) or 'zero'")
        if steps is not None and steps < 1:
            raise MethodError(f"--steps must be at least 1, got {steps}")
        if samples is not None and samples < 1:
            raise MethodError(f"--samples must be at least 1, got {samples}")
        if lambda_k is not None and not (math.isfinite(lambda_k) and lambda_k >= 0):
            raise MethodError(f"--lambda must be a non-negative number, got {lambda_k}")
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            raise MethodError(f"--lr must be a positive number, got {lr}")
        if precision is not None and precision not in ("fp32", "bf16", "auto"):
            raise MethodError(f"unknown precision {precision!r}; use fp32, bf16 or auto")
        if init == "preoptimize":  # shorthand of the CLI: ones, then pre-optimisation
            init, preoptimize = "ones", True
        if preoptimize and init not in ("ones", "foreground"):
            raise MethodError("pre-optimisation starts from init 'ones' or 'foreground' (SPEC B.5)")
        self.preset = preset
        self.lambda_k = lambda_k
        self.steps = steps
        self.lr = lr
        self.samples = samples
        self.init = init
        self.preoptimize = preoptimize
        self.foreground_mask = foreground_mask
        self.distortion = distortion
        self.noise = noise
        self.precision = precision
        self.seed = seed
        self.evaluate = evaluate

    # ---------------------------------------------------------------------------------- overridables
    def make_representation(self) -> Representation:  # pragma: no cover - abstract
        raise NotImplementedError

    def default_lambda(self, clf: Classifier) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def render(self, problem: Problem, masks: Bands) -> tuple[np.ndarray, np.ndarray | None]:
        """(saliency (H,W), cartoon image or None)."""
        raise NotImplementedError  # pragma: no cover

    def spatial_weight(self, clf: Classifier) -> float:
        """Weight of the spatial l1 term of the loss (:meth:`Problem.spatial_of`); 0 (none) unless a method
        (WaveletX, ShearletX) adds it."""
        return 0.0

    def preset_schedule(self, preset: str) -> Schedule:
        """The schedule of a named preset other than ``fast``; methods with their own reference settings
        (WaveletX's ``paper``) override this."""
        return PRESETS[preset]

    # ------------------------------------------------------------------------------------- machinery
    def fast_schedule(self, clf: Classifier | None) -> Schedule:
        """The ``fast`` preset's schedule for ``clf`` (None: no model in view); methods tuned per model
        kind override this."""
        return FAST

    def schedule(self, clf: Classifier | None = None) -> Schedule:
        """The preset (for ``clf``, where the default depends on the model) with the explicit overrides."""
        base = self.fast_schedule(clf) if self.preset == "fast" else self.preset_schedule(self.preset)
        sched = with_overrides(base, steps=self.steps, lr=self.lr, samples=self.samples, precision=self.precision)
        if self.steps is not None and sched.min_steps > sched.steps:
            sched = replace(sched, min_steps=sched.steps)
        if sched.samples_start is not None and sched.samples_start > sched.samples:
            sched = replace(sched, samples_start=sched.samples)
        return sched

    def settings(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "foreground_mask"}
        out["foreground_mask"] = self._foreground_key()
        return out

    def figure(self, image: torch.Tensor, explanation: Explanation, predicted: tuple[str, float] | None = None):
        """Photo and the cartoon (CartoonX) or mask (Pixel RDE), copper colour map."""
        from ...viz.rde import rde_figure

        return rde_figure(image, explanation, predicted)

    def _foreground(self, problem: Problem) -> torch.Tensor | None:
        if self.init != "foreground":
            return None
        from ..foreground import foreground_map

        return foreground_map(problem.image, self.foreground_mask, seed=self.seed)

    def _initial_masks(self, problem: Problem, schedule: Schedule) -> tuple[Bands, int | None]:
        """The starting mask (``init``, then pre-optimisation if asked) and the pre-optimisation level."""
        fg = self._foreground(problem)
        masks = initial_masks(problem, self.init, self.seed, fg)
        if not self.preoptimize:
            return masks, None
        fg_bands = foreground_masks(fg, problem.mask_shapes(), 0.0) if fg is not None else None
        with problem.clf.using_precision(resolve_precision(schedule.precision, problem.clf)):
            return preoptimize(problem, masks, fg_bands, self.seed)

    def _foreground_key(self) -> str | None:
        """The user-given foreground mask as a string (a file's path and a digest of its bytes, or a digest
        of an array's values), so that settings, checkpoint names and the CLI's stored requests tell two
        masks apart, even when one file was overwritten by another."""
        mask = self.foreground_mask
        if mask is None:
            return None
        if isinstance(mask, (str, bytes, Path)):  # a file: its name for people, its bytes for the key
            path = Path(mask.decode() if isinstance(mask, bytes) else mask)
            if not path.is_file():
                return str(path)  # reading it fails later with a clear error
            return f"{path} (sha256 {file_digest(path)})"
        values = mask if isinstance(mask, torch.Tensor) else torch.as_tensor(np.asarray(mask, dtype=np.float32))
        return pixel_digest(values)

    def _checkpoint(self, clf: Classifier, problem: Problem, representation: Representation,
                    schedule: Schedule, folder: str | Path | None) -> RunCheckpoint | None:
        """Where this run's state is kept in ``folder``, named by everything that decides its result; None
        without a folder."""
        if folder is None:
            return None
        run = {k: v for k, v in self.settings().items() if k != "evaluate"}  # scoring the end changes no step
        description = {
            "method": self.name, "settings": run, "representation": representation.settings(),
            "lambda_k": problem.lambda_k,
            **({"spatial_lambda": problem.spatial_lambda} if problem.spatial_lambda else {}),
            "schedule": schedule_settings(schedule), "model": clf.name,
            "weights": clf.weights_digest(),
            "target": problem.target, "pixels": pixel_digest(problem.image),
            "precision": resolve_precision(schedule.precision, clf),
        }
        return RunCheckpoint(folder, self.name, description)

    def _prepare(self, clf: Classifier, image: torch.Tensor, target: int | str | None) -> _Prepared:
        """Everything fixed before the optimisation of one photo (checked by :func:`single_image`): its problem
        and the schedule."""
        representation = self.make_representation()
        lambda_k = float(self.lambda_k if self.lambda_k is not None else self.default_lambda(clf))
        problem = Problem.build(clf, image, target, representation, lambda_k, self.distortion,
                                zero_noise=self.noise == "zero",
                                noise_kind="uniform" if self.noise == "uniform" else "gaussian",
                                spatial_lambda=float(self.spatial_weight(clf)))
        return _Prepared(problem, self.schedule(clf))

    def explain_one(self, clf: Classifier, image: torch.Tensor, target: int | str | None = None,
                    run: RunControl = RunControl()) -> Explanation:
        meter = CostMeter(clf)
        with meter.measure():
            prepared = self._prepare(clf, single_image(clf, image), target)
            problem, schedule = prepared.problem, prepared.schedule
            checkpoint = self._checkpoint(clf, problem, problem.representation, schedule, run.checkpoint_dir)
            resume = checkpoint.load() if checkpoint is not None else None
            if resume is not None:  # initialisation and pre-optimisation were done before the interruption
                masks, preopt_level = [m.to(clf.device) for m in resume["masks"]], resume.get("preopt_level")
            else:
                masks, preopt_level = self._initial_masks(problem, schedule)
            save = None if checkpoint is None else (
                lambda state: checkpoint.save({**state, "preopt_level": preopt_level}))
            start = int(resume["step"]) if resume is not None else 0
            with _progress_bar(run.progress, schedule.steps, self.name, start) as bar:
                result = optimize_mask(problem, masks, schedule, self.seed, bar, resume=resume, checkpoint=save,
                                       checkpoint_every=self.checkpoint_every)
            explanation = self._explanation(prepared, result, preopt_level, start)
        if checkpoint is not None:  # the result supersedes it (callers save it at once; the CLI does)
            checkpoint.discard()
        explanation.cost = meter.as_dict()
        return explanation

    def explain_batch(self, clf: Classifier, images: list[torch.Tensor], targets: list[int | str | None],
                      run: RunControl = RunControl()) -> list[Explanation]:
        """Optimise the masks of photos of one size together (:func:`optimize_masks_together`): step ``t`` of
        every photo in shared model passes where :meth:`photos_per_pass` says that pays. Each explanation is
        the photo's own run (bit for bit with one photo per pass); its cost is its own passes, with the wall
        time shared in proportion. With a checkpoint folder, photos run one by one (a checkpoint keeps one
        run's state)."""
        if run.checkpoint_dir is not None or len(images) < 2:
            return super().explain_batch(clf, images, targets, run)
        checked = [single_image(clf, image) for image in images]
        out: list[Explanation | None] = [None] * len(images)
        for chunk in same_size_chunks(checked, BATCH_PHOTOS):
            meter = CostMeter(clf)
            with meter.measure():
                prepared, starts, levels, own = [], [], [], []
                for i in chunk:
                    before = clf.passes
                    prepared.append(self._prepare(clf, checked[i], targets[i]))
                    masks, level = self._initial_masks(prepared[-1].problem, prepared[-1].schedule)
                    starts.append(masks)
                    levels.append(level)
                    own.append(clf.passes - before)
                schedule = prepared[0].schedule
                with _progress_bar(run.progress, schedule.steps * len(chunk), f"{self.name} x{len(chunk)}") as bar:
                    results = optimize_masks_together([p.problem for p in prepared], starts, schedule, self.seed,
                                                      bar, photos_per_pass=self.photos_per_pass(clf, len(chunk)))
                explanations = []
                for k, (p, r, level) in enumerate(zip(prepared, results, levels)):
                    before = clf.passes  # scoring the final mask (``evaluate``) is the photo's own work
                    explanations.append(self._explanation(p, r, level, 0))
                    own[k] += clf.passes - before
            passes = [o + int(r.history["samples"].sum()) for o, r in zip(own, results)]
            total = max(1, sum(passes))
            for i, explanation, n in zip(chunk, explanations, passes):
                explanation.cost = {"seconds": meter.seconds * n / total, "passes": float(n)}
                out[i] = explanation
        return [e for e in out if e is not None]

    def photos_per_pass(self, clf: Classifier, count: int) -> int:
        """How many photos' noise slices share one model pass in :meth:`explain_batch`: one on a CPU, where
        a step of one photo's few samples already runs at its best (small slices stay in the caches:
        ``benchmarks/RESULTS.md``, "RDE micro-batches" and "RDE batches"), all of them on a GPU, where one
        photo's samples leave most of the device idle."""
        return 1 if clf.device.type == "cpu" else count

    def _explanation(self, prepared: _Prepared, result: Result, preopt_level: int | None,
                     resumed_at: int) -> Explanation:
        """The explanation of a finished optimisation (its cost is filled in by the caller)."""
        problem, schedule = prepared.problem, prepared.schedule
        clf, representation = problem.clf, problem.representation
        saliency, cartoon = self.render(problem, result.masks)
        arrays: dict[str, np.ndarray] = {
            "image": problem.image.detach().float().cpu().numpy(),
            "noise_mean": np.asarray(problem.noise.means, dtype=np.float64),
            "noise_std": np.asarray(problem.noise.stds, dtype=np.float64),
        }
        if self.evaluate:
            for key, value in rde_objective(problem, result.masks).items():
                arrays[key] = np.asarray(value, dtype=np.float64)
        spatial_lambda = problem.spatial_lambda
        settings = {
            **self.settings(), **representation.settings(), "lambda_k": problem.lambda_k,
            **({"spatial_lambda": spatial_lambda} if spatial_lambda else {}),
            "schedule": schedule_settings(schedule), "precision_used": result.precision,
            "steps_run": result.steps_run, "stopped_early": result.stopped_early,
            "preopt_level": preopt_level, "image_size": list(problem.size), "resumed_at_step": resumed_at,
            "objective_eval": {"distortion": "label", "samples": EVAL_SAMPLES, "seed": EVAL_SEED},
        }
        target = problem.target
        return Explanation(
            method=self.name, target=target, saliency=saliency, model=clf.name,
            target_name=clf.class_name(target), score=float(problem.clean_probs[target]),
            mask=masks_to_arrays(representation, result.masks), cartoon=cartoon, history=result.history,
            arrays=arrays, cost={}, settings=settings,
        )


@dataclass
class _Prepared:
    """One photo's problem and the schedule its mask is optimised with."""

    problem: Problem
    schedule: Schedule


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int, label: str, start: int = 0
                  ) -> Iterator[Callable[[int, dict[str, float]], None] | None]:
    """A tqdm bar showing the loss, or nothing; a resumed run's bar starts at ``start``."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=start, desc=label, unit="step", leave=False)

    def update(step: int, values: dict[str, float]) -> None:
        bar.update(1)
        if step % 5 == 0:
            bar.set_postfix(loss=f"{values['loss']:.4f}", dist=f"{values['distortion']:.4f}",
                            mask=f"{values['sparsity']:.3f}")

    try:
        yield update
    finally:
        bar.close()
