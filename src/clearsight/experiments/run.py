"""The run every experiment of ``clearsight reproduce`` shares (:class:`Reproduction`): the paper, the model,
the photos and their labels, the experiments' options, the engine and store, and where results go
(``OUT/PAPER/EXPERIMENT/MODEL``). The experiments themselves live in :mod:`.moxi_paper` and
:mod:`.cartoonx_paper`; :mod:`.reproduce` runs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import MethodError
from ..evaluation.rate_distortion import POINTS as RD_POINTS

#: the MoXI paper's methods on ImageNet (rollout only where the model is a ViT)
MOXI_METHODS = ("moxi", "moxi-minus", "shapley", "gradcam", "gradcampp", "rollout")
#: the MoXI paper's Shapley baseline: 200 rounds of plain sampling (Table 1)
PAPER_SHAPLEY_ROUNDS = 200

#: experiments that do not use the run's model (SET-SUM trains its own): one result folder, not one per model
MODEL_FREE = frozenset({"set-sum"})


def model_folder(clf: Any) -> str:
    """A model's result folder name: its name made safe for a path, and the start of its weights' digest (two
    checkpoints of one architecture share a name but not their results)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(clf.name)).strip("-.") or "model"
    return f"{name}-{clf.weights_digest()[:8]}"


@dataclass
class Reproduction:
    """One ``clearsight reproduce`` run: the paper, the model (a :class:`~clearsight.evaluation.driver.ModelSpec`),
    the photos and their labels, the output folder and the engine.

    ``options`` holds the experiments' knobs (``shapley_rounds``, ``shapley_sampling``, ``patch_size``,
    ``steps`` for CartoonX/Pixel RDE, ``points`` of the rate-distortion curves, ``lambdas``, ``corruptions``,
    ``heatmap_images``, ``set_sum_*``);
    ``other_model`` is the second architecture of the CartoonX CNN-vs-ViT experiments.
    """

    paper: str
    model: Any
    images: Sequence[Path]
    labels: dict[str, int]
    out: Path
    engine: Any = None
    seed: int = 0
    other_model: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    progress: Callable[[str], None] | None = None

    # ---- what every experiment shares -------------------------------------------------------------
    @cached_property
    def clf(self):
        return self.model.load()

    @cached_property
    def other_clf(self):
        return self.other_model.load() if self.other_model is not None else None

    @cached_property
    def photos(self) -> list[torch.Tensor]:
        return [self.clf.prepare(p) for p in self.images]

    @property
    def names(self) -> list[str]:
        return [Path(p).name for p in self.images]

    @property
    def targets(self) -> list[int | None]:
        return [self.labels.get(name) for name in self.names]

    @property
    def store(self) -> Path:
        return self.out / "units"

    def folder(self, experiment: str) -> Path:
        """Where ``experiment`` writes its figures and summary: ``OUT/PAPER/EXPERIMENT/MODEL``, a folder per
        model (its name and a digest of its weights), so that a run on a second model (the MoXI paper's
        ResNet-18 curves beside its ViT's) adds its results beside the first's instead of replacing them;
        experiments that do not use ``--model`` (:data:`MODEL_FREE`) write to ``OUT/PAPER/EXPERIMENT``.

        The folder is not made here: each writer makes it with its first file, so a run stopped before an
        experiment wrote anything leaves no empty folder behind."""
        path = self.out / self.paper / experiment
        return path if experiment in MODEL_FREE else path / self.model_dir

    @cached_property
    def model_dir(self) -> str:
        """:func:`model_folder` of the run's model, once (a module of your own has its weights hashed anew on
        every digest)."""
        return model_folder(self.clf)

    def work_model(self, spec: Any = None, clf: Any = None):
        """What the evaluation functions get as their model: the loaded classifier for the local engine, the
        spec for an engine whose workers load it themselves."""
        from ..engine import LocalEngine

        spec, clf = (spec, clf) if spec is not None else (self.model, self.clf)
        return clf if self.engine is None or isinstance(self.engine, LocalEngine) else spec

    @property
    def is_vit(self) -> bool:
        return bool(getattr(self.clf, "is_token_model", False))

    def common(self, images: int, **extra: Any) -> dict[str, Any]:
        return {"model": self.clf.name, "architecture": "vit" if self.is_vit else "cnn", "images": int(images),
                "deviations": list(self.deviations), **extra}

    @property
    def deviations(self) -> list[str]:
        notes = []
        rounds = int(self.options.get("shapley_rounds", PAPER_SHAPLEY_ROUNDS))
        if rounds != PAPER_SHAPLEY_ROUNDS or self.options.get("shapley_sampling", "plain") != "plain":
            notes.append(f"Shapley values from {rounds} rounds of {self.options.get('shapley_sampling', 'plain')} "
                         f"sampling, not the paper's {PAPER_SHAPLEY_ROUNDS} plain rounds (noisier values; the "
                         "runtime table scales Shapley's seconds to the paper's setting by model passes).")
        if self.options.get("patch_size"):
            notes.append(f"patches of {self.options['patch_size']} pixels, not the model's token patch.")
        if self.options.get("steps"):
            notes.append(f"CartoonX / Pixel RDE optimised for {self.options['steps']} steps, not the preset's.")
        if self.rd_points != RD_POINTS:
            notes.append(f"rate-distortion curves at {self.rd_points} points, not {RD_POINTS} (1% steps).")
        return notes

    @property
    def rd_points(self) -> int:
        """Points of every rate-distortion curve (the reproduction's 1% steps unless ``options["points"]``
        asks for a coarser curve: each point is one model pass per method, image and figure)."""
        return int(self.options.get("points", RD_POINTS))

    def expect(self, units: int) -> None:
        """Tell the progress bar that at least ``units`` more reports follow (the evaluation driver's protocol:
        work done outside the driver, or the total of several evaluations announced at once)."""
        expect = getattr(self.progress, "expect", None)
        if expect is not None:
            expect(units)

    def report(self, label: str) -> None:
        if self.progress:
            self.progress(label)

    # ---- shared pieces -------------------------------------------------------------------------------
    def moxi_methods(self) -> list[str]:
        chosen = self.options.get("methods") or MOXI_METHODS
        return [m for m in chosen if m != "rollout" or self.is_vit]

    def method_options(self) -> dict[str, dict[str, Any]]:
        shapley = {"rounds": int(self.options.get("shapley_rounds", PAPER_SHAPLEY_ROUNDS)),
                   "sampling": self.options.get("shapley_sampling", "plain"), "seed": self.seed}
        return {"shapley": shapley}

    def curves(self, curve: str, methods: Sequence[str] | None = None, limit: int | None = None,
               absence: Any = None, first: int = 0):
        """``curve`` of each method over photos ``first`` up to ``limit`` (default: to the last), reported to the
        run's progress bar."""
        from ..evaluation import evaluate_curves

        chosen = slice(first, len(self.photos) if limit is None else limit)
        return evaluate_curves(self.work_model(), self.photos[chosen], self.targets[chosen], list(methods or
                               self.moxi_methods()), curve, names=self.names[chosen], absence=absence,
                               method_options=self.method_options(), patch_size=self.options.get("patch_size"),
                               progress=self.progress, store=self.store, engine=self.engine)


def runtime_unit(clf, image: torch.Tensor, target: int, options: dict[str, Any]) -> dict[str, np.ndarray]:
    """One timed explanation (the unit adds its ``seconds``): MoXI until the prediction flips, the others in
    full; ``steps`` is MoXI's greedy steps (0 for the others)."""
    from ..methods import build_explainer

    options = dict(options)
    method = options.pop("method")
    explanation = build_explainer(method, options).explain(clf, image, target)
    stop = explanation.settings.get("stop_step")
    return {"steps": np.asarray(-1 if stop is None else int(stop)), "passes": np.asarray(explanation.cost["passes"])}


def check_models(experiments: Sequence[str], other_model: Any) -> None:
    """Refuse, before any model loads, experiments that need a second model when none is given."""
    if "vit" in experiments and other_model is None:
        rest = ",".join(e for e in experiments if e != "vit")
        raise MethodError("the vit experiment compares two models: give --other-model (a CNN when --model is a "
                          "ViT, or the other way round)" + (f", or leave vit out: --only {rest}" if rest else ""))


def write_text(path: Path, text: str) -> None:
    """Write an experiment's small text table atomically, making its folder with it (see
    :meth:`Reproduction.folder`)."""
    from ..explanation import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
