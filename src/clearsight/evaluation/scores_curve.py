"""The ``scores`` evaluation: hallucination and conciseness-preciseness (CP) of each method's explanation
image over a set of photos, and the scatter plot of the ShearletX paper (CP against hallucination).

Per (image, method) unit (:class:`~clearsight.evaluation.driver.Evaluation`, computed by the module-level
:func:`scores_unit` so that it runs on any engine and is stored and reused like every other unit):

* the explanation image: an RDE method's (CartoonX, WaveletX, ShearletX, Pixel RDE) mask times the colour
  photo's coefficients, synthesised and clamped to [0,1] (the reference's final explanation); any other
  method's saliency map times the photo (:func:`~clearsight.evaluation.hallucination.saliency_explanation_image`);
* its hallucination score against the photo (0: no edge the photo lacks), and CP-l1, CP-entropy and the
  retained probability (:func:`~clearsight.evaluation.hallucination.cp_scores`). With ``representation="own"``
  (default) an RDE explanation's information is that of its masked coefficients in its own representation
  (the reference's ``img_representation`` scatter plots) and a saliency explanation's that of its pixels; a
  representation name (``pixel``, ``wavelet``, ``shearlet``) measures every explanation image in that one.

A good explanation sits bottom-right in the plot: high CP (much probability per information kept) and low
hallucination.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import MethodError
from ..explanation import Explanation, atomic_write
from ..wording import counted
from .driver import Evaluation, Progress, result_options
from .hallucination import REPRESENTATIONS, cp_scores, hallucination_score, saliency_explanation_image
from .sources import resolve_methods

#: the four RDE methods the ShearletX paper compares (its scatter plot), the curve's default methods
DEFAULT_SCORE_METHODS = "cartoonx,waveletx,shearletx,pixel-rde"
#: the numbers each unit gives, in the table's column order
SCORES = ("hallucination", "cp_l1", "cp_entropy", "retained_probability", "l1_ratio")
#: what ``representation`` may be: each method's own domain, or one of the fixed representations
CP_REPRESENTATIONS = ("own", *REPRESENTATIONS)


def check_representation(representation: str) -> str:
    if representation not in CP_REPRESENTATIONS:
        raise MethodError(f"unknown CP representation {representation!r}; choose one of "
                          f"{', '.join(CP_REPRESENTATIONS)}")
    return representation


def explain_source(source: Any, clf, image: torch.Tensor, target: int, options: dict[str, Any]) -> Explanation:
    """The explanation of ``image`` by ``source``: a saved explanation, an explainer, or a method name made
    with ``options`` (an RDE method keeps its optimisation state in ``options["checkpoint_dir"]``)."""
    if isinstance(source, Explanation):
        return source
    if isinstance(source, str):
        from ..methods import build_explainer

        folder = options.get("checkpoint_dir")
        run = {"checkpoint_dir": folder} if folder is not None else {}
        return build_explainer(source, result_options(options)).explain(clf, image, target, **run)
    return source.explain(clf, image, target)


@torch.no_grad()
def explanation_image(explanation: Explanation, photo: torch.Tensor) -> tuple[torch.Tensor, list | None, Any]:
    """(explanation image ``(3,H,W)`` in [0,1], masked coefficients or None, their representation or None).

    An RDE explanation (a mask over a representation's bands) renders as ``clamp(synthesize(mask * analyze(
    photo)), 0, 1)`` in colour, with the masked coefficients for CP; anything else as its saliency times the
    photo."""
    from ..parts.representations import representation_from_settings

    if explanation.mask and "representation" in explanation.settings:
        representation = representation_from_settings(explanation.settings)
        names = representation.band_names()
        masks = [torch.as_tensor(np.asarray(explanation.mask[n], dtype=np.float32)) for n in names]
        x = photo.detach().float().cpu()
        masked = [b * m for b, m in zip(representation.analyze(x), masks)]
        image = representation.synthesize([b[None] for b in masked], tuple(x.shape[-2:]))[0].clamp(0, 1)
        return image, masked, representation
    return saliency_explanation_image(photo.detach().cpu(), explanation.saliency).float(), None, None


def score_explanation(clf, photo: torch.Tensor, explanation: Explanation, target: int,
                      representation: str = "own") -> dict[str, float]:
    """The hallucination score, CP-l1, CP-entropy, retained probability and l1 ratio of one explanation."""
    image, masked, own = explanation_image(explanation, photo)
    if representation == "own":
        cp = cp_scores(clf, photo.cpu(), image, target, own if own is not None else "pixel", masked)
    else:
        cp = cp_scores(clf, photo.cpu(), image, target, check_representation(representation))
    return {"hallucination": hallucination_score(image, photo.cpu()), "cp_l1": cp.cp_l1,
            "cp_entropy": cp.cp_entropy, "retained_probability": cp.retained_probability, "l1_ratio": cp.l1_ratio}


def scores_unit(clf, image: torch.Tensor, target: int, options: dict[str, Any]) -> dict[str, np.ndarray]:
    """One (image, method) unit: explain, render, score."""
    explanation = explain_source(options["method"], clf, image, target, options["method_options"])
    values = score_explanation(clf, image, explanation, target, options["representation"])
    return {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}


@dataclass
class ScoreResults:
    """``scores[method][k]`` is the list (one per image) of score ``k`` (:data:`SCORES`)."""

    images: list[str] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def methods(self) -> list[str]:
        return list(self.scores)

    def add(self, method: str, values: dict[str, Any], seconds: float) -> None:
        table = self.scores.setdefault(method, {k: [] for k in SCORES})
        for k in SCORES:
            table[k].append(float(values[k]))
        self.seconds[method] = self.seconds.get(method, 0.0) + seconds

    def means(self) -> dict[str, dict[str, float]]:
        return {m: {k: float(np.mean(v)) if v else float("nan") for k, v in s.items()} for m, s in self.scores.items()}

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``scores.csv`` (one row per image and method), ``scores.json`` and ``scores.png``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"csv": out / "scores.csv", "json": out / "scores.json", "png": out / "scores.png"}
        text = io.StringIO()
        w = csv.writer(text)
        w.writerow(["image", "target", "method", *SCORES])
        for m, table in self.scores.items():
            for i, (name, target) in enumerate(zip(self.images, self.targets)):
                w.writerow([name, target, m, *(f"{table[k][i]:.6g}" for k in SCORES)])
        atomic_write(paths["csv"], lambda f: f.write(text.getvalue().encode()))
        meta = {"images": self.images, "targets": self.targets, "skipped": self.skipped, "scores": self.scores,
                "means": self.means(), "seconds": self.seconds, "settings": self.settings}
        atomic_write(paths["json"], lambda f: f.write(json.dumps(meta, indent=2, default=str).encode()))
        from ..viz.overlay import save_figure

        save_figure(scores_figure(self), paths["png"])
        return paths


def scores_figure(results: ScoreResults):
    """The ShearletX paper's scatter plot: CP-entropy and CP-l1 (log scale) against the hallucination score,
    one point per image, one colour per method, the method's mean as a large marker."""
    from ..viz.overlay import new_figure

    fig = new_figure(10.0, 4.2)
    axes = fig.subplots(1, 2)
    for ax, key, label in ((axes[0], "cp_entropy", "CP-entropy"), (axes[1], "cp_l1", "CP-l1")):
        for i, (m, table) in enumerate(results.scores.items()):
            colour = f"C{i % 10}"
            x, y = np.asarray(table["hallucination"]), np.asarray(table[key])
            ax.scatter(x, y, s=18, alpha=0.6, color=colour, label=m)
            if len(x):
                ax.scatter([x.mean()], [y.mean()], s=120, marker="X", color=colour, edgecolor="black")
        ax.set_xlabel("hallucination score (lower is better)")
        ax.set_ylabel(f"{label} (higher is better)")
        if any(v > 0 for t in results.scores.values() for v in t[key]):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    model = results.settings.get("model", "?")
    fig.suptitle(f"conciseness-preciseness against hallucination, {model}, {counted(len(results.images), 'image')} "
                 f"(X: mean)", fontsize=10)
    return fig


def evaluate_scores(clf, images: Sequence[torch.Tensor], labels: Sequence[int | None], methods: Sequence[Any],
                    names: Sequence[str] | None = None, method_options: dict[str, dict[str, Any]] | None = None,
                    representation: str = "own", progress: Progress | None = None,
                    store: str | Path | None = None, engine: Any = None) -> ScoreResults:
    """Hallucination and CP scores of ``methods``' explanations of ``images`` (each for its label, None: the
    prediction; misclassified images are skipped). ``methods`` as for
    :func:`~clearsight.evaluation.rate_distortion.evaluate_rate_distortion`; ``store`` keeps finished units."""
    representation = check_representation(representation)
    resolved = resolve_methods(methods, method_options)
    labels_out = [m.label for m in resolved]
    parameters = {"representation": representation, "unit": "explanation image"}
    run = Evaluation(clf, images, labels, names, "scores", parameters, store, engine)
    results = ScoreResults(settings={"model": run.clf.name, **parameters, "methods": labels_out})
    kept, results.skipped = run.classified()
    results.images, results.targets = [name for name, _, _ in kept], [target for _, _, target in kept]
    planned = run.plan_methods(kept, resolved, scores_unit, {"representation": representation})
    finished = run.run(planned, results.skipped, labels_out, progress)
    for p in planned:
        results.add(p.label, finished[p.unit], float(finished[p.unit]["seconds"]))
    return results


__all__ = ["CP_REPRESENTATIONS", "DEFAULT_SCORE_METHODS", "SCORES", "ScoreResults", "evaluate_scores",
           "explanation_image", "score_explanation", "scores_figure", "scores_unit"]
