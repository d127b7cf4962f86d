"""How an RDE mask is optimised: the :class:`Schedule` and its presets, and the precision it runs at.

``PAPER`` is the reference exactly (2000 Adam steps, lr 1e-3, 64 noise samples, fp32, no stopping).
``FAST`` is the default: a larger step with a cosine decay, many steps of few noise samples each, a
convergence test and bf16 autocast where the CPU supports it natively; CartoonX takes ``FAST_VIT`` on ViTs
(twice the steps) and ``FAST_CNN`` on CNNs (more and larger steps). A fast preset must end at an objective
(:func:`~clearsight.methods.rde.problem.rde_objective`) no higher than the paper preset's; the measurements
that chose these numbers, and the variants that lost, are in ``benchmarks/RESULTS.md`` (section "RDE
presets"), made by ``benchmarks/rde.py``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from ...errors import MethodError
from ...models import Classifier
from ...models.token import cpu_has_bf16


@dataclass(frozen=True)
class Schedule:
    """How the mask is optimised: steps, learning rate, noise samples per step, stopping, precision.

    * ``lr_schedule``: ``"constant"`` (reference) or ``"cosine"`` (decay from ``lr`` to ``lr * lr_final``
      over ``steps``).
    * ``samples_start``: noise samples per step at the start, growing linearly to ``samples`` at
      ``ramp`` x ``steps`` (``None`` = always ``samples``). Early steps only need the gradient's sign.
    * ``stop_tol``: convergence test. Every ``stop_window`` steps, the mean loss of the last window is
      compared with the window before; the run stops once it improved by less than ``stop_tol`` (relative)
      for two windows in a row, but not before ``min_steps``. ``None`` = never stop early.
    * ``precision``: ``"fp32"``, ``"bf16"`` or ``"auto"`` (bf16 where the CPU supports it natively).
    """

    steps: int = 2000
    lr: float = 1e-3
    samples: int = 64
    lr_schedule: Literal["constant", "cosine"] = "constant"
    lr_final: float = 0.02
    samples_start: int | None = None
    ramp: float = 0.5
    stop_tol: float | None = None
    stop_window: int = 20
    min_steps: int = 0
    precision: Literal["fp32", "bf16", "auto"] = "fp32"

    def samples_at(self, step: int) -> int:
        if self.samples_start is None or self.ramp <= 0:
            return self.samples
        frac = min(1.0, step / max(1.0, self.ramp * self.steps))
        return int(round(self.samples_start + frac * (self.samples - self.samples_start)))

    def lr_at(self, step: int) -> float:
        if self.lr_schedule == "constant":
            return self.lr
        if self.lr_schedule == "cosine":
            cos = 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, self.steps - 1))))
            return self.lr * (self.lr_final + (1 - self.lr_final) * cos)
        raise MethodError(f"unknown lr_schedule {self.lr_schedule!r}; use 'constant' or 'cosine'")


#: The reference behaviour (SPEC A.6, A.7): 128,000 forward+backward passes per image.
PAPER = Schedule(steps=2000, lr=1e-3, samples=64, precision="fp32")

#: The base default (Pixel RDE on every model; CartoonX tunes it per model kind below): at most 480 Adam steps of 5
#: noise samples (2,400 passes, 1.9% of the paper preset's), lr 0.05 with a cosine decay, a convergence test after
#: 440 steps, bf16 autocast where the CPU has native bf16. At a fixed number of passes, more steps of fewer samples
#: end lower than fewer, better-averaged steps (measurements: benchmarks/RESULTS.md, "RDE presets").
FAST = Schedule(steps=480, lr=0.05, samples=5, lr_schedule="cosine", lr_final=0.02,
                stop_tol=0.005, stop_window=20, min_steps=440, precision="auto")

#: CartoonX's default on CNNs (lambda_k 20): twice FAST's step and 800 steps (4,000 passes); FAST itself loses to
#: the paper preset on EfficientNet-Lite0 (benchmarks/RESULTS.md, "RDE presets").
FAST_CNN = replace(FAST, steps=800, lr=0.1, min_steps=740)

#: CartoonX's default on ViTs (lambda_k 10): FAST run twice as long, 960 steps (at most 4,800 passes, 3.8% of the
#: paper preset's); FAST's 480 steps lose on DeiT-Tiny's robin, a larger step loses too (benchmarks/RESULTS.md).
FAST_VIT = replace(FAST, steps=960, min_steps=900)

PRESETS: dict[str, Schedule] = {"paper": PAPER, "fast": FAST}


def resolve_precision(precision: str, clf: Classifier) -> str:
    """``auto``: bf16 autocast only on CPUs that compute it natively, where it is the lever the issue measured
    (3-5x per forward+backward); fp32 everywhere else. GPUs keep fp32 because the defaults' quality against
    the paper preset was measured in fp32 only; ``precision="bf16"`` asks for it explicitly
    (``benchmarks/rde.py --bf16-gradients`` measures how far bf16 moves a step's gradient)."""
    if precision == "auto":
        return "bf16" if clf.device.type == "cpu" and cpu_has_bf16() else "fp32"
    if precision not in ("fp32", "bf16"):
        raise MethodError(f"unknown precision {precision!r}; use fp32, bf16 or auto")
    return precision


def schedule_settings(schedule: Schedule) -> dict[str, Any]:
    return asdict(schedule)


def with_overrides(schedule: Schedule, **changes: Any) -> Schedule:
    """``schedule`` with the given fields replaced (None values ignored)."""
    return replace(schedule, **{k: v for k, v in changes.items() if v is not None})
