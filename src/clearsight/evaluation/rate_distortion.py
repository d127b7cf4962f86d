"""Rate-distortion curves (SPEC B.1): how far the model's output moves as an explanation's most relevant
components are kept while the rest is randomised (``keep``), or are themselves randomised (``randomize``).

A *component* is one mask entry of the explanation's representation: a pixel position (all three colour
channels) for Pixel RDE and pixel-relevance maps (Grad-CAM, rollout, ...), one low-pass position or one
(level, orientation, position) detail coefficient for CartoonX, again all channels together. Components are
ranked by relevance (descending; ties in random order: shuffled, then a stable sort); the ``random-pixel`` and
``random-wavelet`` baselines take a uniformly random order.

Along the ranking, 100 steps of ``ceil(total / 100)`` components give **101 points** (0 %, 1 %, ..., 100 %).
Randomised components take one fixed noise realisation per curve, drawn from the adaptive Gaussian of the
representation (the image's mean and std for pixels; each wavelet level's for wavelets, SPEC A.4), so
``keep`` at 0 % and ``randomize`` at 100 % are the same fully randomised input. Wavelet-domain images are
clamped to [0,1] for every wavelet curve alike (the reference clamped CartoonX but not its random baseline);
pixel-domain images are never clamped. The distortion at each point is the ``l2`` distance of the 1000-way
softmax vectors of the clean and the modified image (not squared, not target-only).

Over a set of images the curves are averaged (mean and std); :meth:`DistortionResults.normalized` applies
the reproduction's normalisation for its ViT figure. Explanations take minutes per image for CartoonX, so
each (image, method) is a unit of :mod:`clearsight.evaluation.driver` that holds both figures' curves of one
explanation: with a ``store`` folder each finished one is kept, an interrupted run resumes, and the second
figure reads what the first computed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import MethodError
from ..explanation import Explanation, atomic_write_text
from ..methods.base import Explainer
from ..parts.obfuscation import NoiseModel, l2_distortion, obfuscate
from ..parts.representations import (
    PixelRepresentation,
    Representation,
    WaveletRepresentation,
    representation_from_settings,
)
from ..wording import counted
from .curves import auc, write_curve_table
from .driver import Evaluation, Progress, result_options
from .sources import resolve_methods

Figure = Literal["keep", "randomize"]
FIGURES: tuple[str, ...] = ("keep", "randomize")
#: baselines that rank components at random, by the domain they randomise
RANDOM_METHODS = {"random-pixel": "pixel", "random-wavelet": "wavelet"}
POINTS = 101
#: images per forward pass while a curve is evaluated (a memory bound only: the result does not depend on it)
BATCH = 16


def check_figure(figure: str) -> Figure:
    if figure not in FIGURES:
        raise MethodError(f"a rate-distortion figure is 'keep' or 'randomize'; got {figure!r}")
    return figure  # type: ignore[return-value]


def relevance_order(relevance: torch.Tensor | np.ndarray, seed: int = 0) -> torch.Tensor:
    """Component indices by descending relevance; equal values in a seeded random order."""
    values = torch.as_tensor(np.asarray(relevance, dtype=np.float32)).reshape(-1)
    shuffled = torch.randperm(values.numel(), generator=torch.Generator().manual_seed(seed))
    return shuffled[torch.argsort(values[shuffled], descending=True, stable=True)]


def random_order(total: int, seed: int = 0) -> torch.Tensor:
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))


def point_counts(total: int, points: int = POINTS) -> list[int]:
    """Components processed at each point: 0, s, 2s, ... capped at ``total``, with s = ceil(total/(points-1))."""
    if points < 2:
        raise MethodError("a rate-distortion curve needs at least two points")
    step = math.ceil(total / (points - 1))
    return [min(i * step, total) for i in range(points)]


def explanation_representation(explanation: Explanation) -> Representation:
    """The domain an explanation ranks: its own RDE representation when it has one, else pixels."""
    if explanation.mask and "representation" in explanation.settings:
        return representation_from_settings(explanation.settings)
    return PixelRepresentation(clamp=False)


def explanation_relevance(explanation: Explanation, representation: Representation,
                          size: tuple[int, int]) -> np.ndarray:
    """One relevance value per component of ``representation``, in the order of its mask entries.

    An RDE explanation gives its final mask; any other method's saliency map ranks pixel positions (the
    reproduction used the attention-rollout map this way)."""
    names = representation.band_names()
    if all(n in explanation.mask for n in names):
        return np.concatenate([np.asarray(explanation.mask[n], dtype=np.float32).reshape(-1) for n in names])
    if isinstance(representation, PixelRepresentation):
        saliency = np.asarray(explanation.saliency, dtype=np.float32)
        if saliency.shape != tuple(size):
            raise MethodError(f"the {explanation.method} map is {saliency.shape[0]}x{saliency.shape[1]}, the image "
                              f"{size[0]}x{size[1]}: a pixel ranking needs one value per pixel")
        return saliency.reshape(-1)
    raise MethodError(f"the {explanation.method} explanation has no mask over the {representation.name} "
                      f"components ({', '.join(names)})")


def explanation_ranking(explanation: Explanation, size: Sequence[int], seed: int = 0
                        ) -> tuple[Representation, torch.Tensor]:
    """The domain an explanation ranks and its components in relevance order (seeded ties): the arguments
    :func:`distortion_curve` takes for that explanation."""
    representation = explanation_representation(explanation)
    relevance = explanation_relevance(explanation, representation, (int(size[0]), int(size[1])))
    return representation, relevance_order(relevance, seed)


@torch.no_grad()
def distortion_curve(clf, image: torch.Tensor, representation: Representation, order: torch.Tensor,
                     figure: Figure = "keep", points: int = POINTS, seed: int = 0, draws: int = 1) -> np.ndarray:
    """The l2 softmax distortion at each of ``points`` fractions of the ranked components (SPEC B.1).

    ``order`` lists every component once, most relevant first. ``draws`` > 1 averages the curve over that
    many noise realisations (seeds ``seed``, ``seed + 1``, ...); the reference used one.
    """
    figure = check_figure(figure)
    if int(draws) < 1:
        raise MethodError(f"draws is the number of noise realisations averaged per curve (at least 1); got {draws}")
    image = image.to(clf.device)
    size = tuple(image.shape[-2:])
    with clf.using_precision("fp32"):
        bands = representation.analyze(image)
        shapes = [tuple(b.shape[1:]) for b in bands]
        total = sum(math.prod(s) for s in shapes)
        order = torch.as_tensor(order, dtype=torch.long).reshape(-1).cpu()
        if order.numel() != total or not torch.equal(torch.sort(order).values, torch.arange(total)):
            raise MethodError(f"an ordering must list each of the {total} {representation.name} components once")
        ranks = torch.empty(total, dtype=torch.long)
        ranks[order] = torch.arange(total)
        ranks = ranks.to(clf.device)
        clean = clf.logits(image[None]).float().softmax(1)
        noise_model = NoiseModel.from_bands(bands)
        counts = torch.tensor(point_counts(total, points), device=clf.device)
        curve = np.zeros(len(counts), dtype=np.float64)
        for draw in range(int(draws)):
            noise = noise_model.sample(bands, 1, torch.Generator().manual_seed(seed + draw))
            for start in range(0, len(counts), BATCH):
                first = ranks[None, :] < counts[start:start + BATCH, None]  # (n, total): the leading components
                kept = (first if figure == "keep" else ~first).float()
                masks = [m.reshape(-1, 1, *s) for m, s in zip(kept.split([math.prod(s) for s in shapes], 1), shapes)]
                probs = clf.logits(representation.synthesize(obfuscate(bands, masks, noise), size)).float().softmax(1)
                curve[start:start + len(first)] += l2_distortion(probs, clean).double().cpu().numpy()
    return (curve / int(draws)).astype(np.float32)


def method_curves(method: str | Explainer | Explanation, clf, image: torch.Tensor, target: int,
                  figures: Sequence[Figure] = FIGURES, options: dict[str, Any] | None = None, points: int = POINTS,
                  seed: int = 0, draws: int = 1) -> dict[str, np.ndarray]:
    """The rate-distortion curve of each of ``figures`` for ``method``'s explanation of ``image`` (or for a
    random baseline), from one explanation: ``method`` is a name (made with ``options``), an explainer, or an
    explanation already made. Both figures rank the same explanation, so computing it once halves the cost
    of a CartoonX curve pair (the explanation takes minutes, a curve seconds)."""
    size = tuple(image.shape[-2:])
    if isinstance(method, str) and method in RANDOM_METHODS:
        representation: Representation = (WaveletRepresentation() if RANDOM_METHODS[method] == "wavelet"
                                           else PixelRepresentation(clamp=False))
        total = sum(math.prod(b.shape[1:]) for b in representation.analyze(image.to(clf.device)))
        order = random_order(total, seed)
    else:
        if isinstance(method, Explanation):
            explanation = method
        elif isinstance(method, str):
            from ..methods import build_explainer

            run = {"checkpoint_dir": (options or {}).get("checkpoint_dir")}
            explanation = build_explainer(method, result_options(options or {})).explain(
                clf, image, target, **{k: v for k, v in run.items() if v is not None})
        else:
            explanation = method.explain(clf, image, target)
        representation, order = explanation_ranking(explanation, size, seed)
    return {figure: distortion_curve(clf, image, representation, order, figure, points, seed, draws)
            for figure in figures}


def method_curve(method: str | Explainer | Explanation, clf, image: torch.Tensor, target: int,
                 figure: Figure = "keep", options: dict[str, Any] | None = None, points: int = POINTS, seed: int = 0,
                 draws: int = 1) -> np.ndarray:
    """The rate-distortion curve of one ``figure`` (see :func:`method_curves`)."""
    return method_curves(method, clf, image, target, (check_figure(figure),), options, points, seed, draws)[figure]


@dataclass
class DistortionResults:
    """Rate-distortion curves of several methods over a set of images: ``curves[method]`` is
    ``(images, points)``; :meth:`mean`, :meth:`std` and :meth:`normalized` summarise them."""

    figure: Figure
    images: list[str] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    curves: dict[str, list[np.ndarray]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"rd-{self.figure}"

    @property
    def methods(self) -> list[str]:
        return list(self.curves)

    def add(self, method: str, curve: np.ndarray, seconds: float) -> None:
        self.curves.setdefault(method, []).append(np.asarray(curve, dtype=np.float32))
        self.seconds[method] = self.seconds.get(method, 0.0) + seconds

    def mean(self, method: str) -> np.ndarray:
        return np.stack(self.curves[method]).mean(0)

    def std(self, method: str) -> np.ndarray:
        return np.stack(self.curves[method]).std(0)

    def normalized(self, method: str) -> np.ndarray:
        """The mean curve in % of its fully randomised end, as the reproduction's ViT figure: divided by its
        last value when that is within 0.1 of its maximum, else by its first value, times 100."""
        y = self.mean(method)
        reference = y[-1] if y.max() - y[-1] < 0.1 else y[0]
        return y / reference * 100 if reference > 0 else np.full_like(y, np.nan)

    @classmethod
    def load(cls, path: str | Path) -> DistortionResults:
        """Read the ``rd-FIGURE.json`` that :meth:`save` wrote (per-image curves included)."""
        from ..errors import ImageError
        from ..io import check_image_file

        check_image_file(path, "result file")  # a folder or FIFO is refused before it is opened
        try:
            meta = json.loads(Path(path).read_bytes().decode("utf-8"))
            loaded = cls(figure=check_figure(meta["figure"]), images=[str(i) for i in meta["images"]],
                         targets=list(meta["targets"]), skipped=list(meta["skipped"]),
                         curves={str(m): [np.asarray(c, dtype=np.float32) for c in v]
                                 for m, v in meta["curves"].items()},
                         seconds=dict(meta["seconds"]), settings=dict(meta["settings"]))
            lengths = {c.shape for v in loaded.curves.values() for c in v}
            if (not loaded.curves or len(lengths) != 1 or len(next(iter(lengths))) != 1
                    or any(len(v) != len(loaded.images) for v in loaded.curves.values())):
                raise ValueError("curves of unequal shapes, or not one per image")
            return loaded
        except PermissionError:
            raise ImageError(f"cannot read {path}: permission denied") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, MethodError):
            raise ImageError(f"{path} is not a rate-distortion result (rd-keep.json or rd-randomize.json "
                             "written by clearsight evaluate)") from None

    def restricted(self, images: Sequence[str]) -> DistortionResults:
        """The same results over the given images only (in this result's order)."""
        keep = [i for i, name in enumerate(self.images) if name in set(images)]
        return DistortionResults(figure=self.figure, images=[self.images[i] for i in keep],
                                 targets=[self.targets[i] for i in keep], skipped=self.skipped,
                                 curves={m: [c[i] for i in keep] for m, c in self.curves.items()},
                                 seconds=self.seconds, settings=self.settings)

    def areas(self) -> dict[str, float]:
        """Area under each mean curve over x in [0,1]: lower is better for ``keep`` (the kept components
        carry the prediction), higher for ``randomize`` (randomising them destroys it)."""
        return {m: auc(self.mean(m)) for m in self.methods}

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write ``rd-FIGURE_mean.csv``, ``_std.csv``, ``_normalized.csv``, ``rd-FIGURE.json`` and ``.png``."""
        from ..viz.curves import save_curve_figure

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {kind: write_curve_table(out / f"{self.name}_{kind}.csv",
                                         {m: getattr(self, kind)(m) for m in self.methods})
                 for kind in ("mean", "std", "normalized")}
        paths["json"] = out / f"{self.name}.json"
        meta = {"figure": self.figure, "images": self.images, "targets": self.targets, "skipped": self.skipped,
                "areas": self.areas(), "seconds": self.seconds, "settings": self.settings,
                "mean": {m: self.mean(m).tolist() for m in self.methods},
                "normalized": {m: self.normalized(m).tolist() for m in self.methods},
                "curves": {m: [c.tolist() for c in self.curves[m]] for m in self.methods}}
        verb = "kept (the rest randomised)" if self.figure == "keep" else "randomised"
        paths["png"] = save_curve_figure({m: self.mean(m) for m in self.methods}, self.name, out / f"{self.name}.png",
                                         self.areas(), ylabel="distortion (l2 of softmax)",
                                         xlabel=f"% of components {verb}, most relevant first",
                                         title=f"rate-distortion ({self.figure}), {counted(len(self.images), 'image')}")
        atomic_write_text(paths["json"], json.dumps(meta, indent=2, default=str))  # last: the finished record
        return paths


def evaluate_rate_distortion(clf, images: Sequence[torch.Tensor], labels: Sequence[int | None],
                             methods: Sequence[Any], figure: Figure = "keep", names: Sequence[str] | None = None,
                             method_options: dict[str, dict[str, Any]] | None = None, points: int = POINTS,
                             seed: int = 0, draws: int = 1, progress: Progress | None = None,
                             store: str | Path | None = None, engine: Any = None) -> DistortionResults:
    """Rate-distortion curves of ``methods`` over ``images``, each explained for its label (None: the
    prediction); misclassified images are skipped.

    ``methods`` are names (explanation methods, ``random-pixel``, ``random-wavelet``), explainer objects or
    saved explanations (as for :func:`~clearsight.evaluation.curves.evaluate_curves`). With ``store``, finished
    (image, method) curves are kept there and reused (keyed by everything that changes them); images are then
    told apart by ``names``, which must be unique; the stored units hold both figures, so asking for the other
    figure afterwards explains nothing again. ``engine`` runs the units (default: in this process).
    """
    figure = check_figure(figure)
    resolved = resolve_methods(methods, method_options, builtin=tuple(RANDOM_METHODS))
    labels_out = [m.label for m in resolved]
    parameters = {"metric": "l2 distance of softmax vectors", "points": points, "seed": seed, "draws": draws,
                  "unit": "component"}
    # one unit holds both figures' curves of an (image, method): the second figure reuses the first's
    run = Evaluation(clf, images, labels, names, "rate-distortion", parameters, store, engine)
    results = DistortionResults(figure=figure, settings={"model": run.clf.name, **parameters, "methods": labels_out})
    kept, results.skipped = run.classified()
    results.images, results.targets = [name for name, _, _ in kept], [target for _, _, target in kept]
    planned = run.plan_methods(kept, resolved, rd_unit, {"points": points, "seed": seed, "draws": draws})
    finished = run.run(planned, results.skipped, labels_out, progress)
    for p in planned:
        results.add(p.label, finished[p.unit][figure], float(finished[p.unit]["seconds"]))
    return results


def rd_unit(clf, image: torch.Tensor, target: int, options: dict[str, Any]) -> dict[str, np.ndarray]:
    """One (image, method): its ``keep`` and ``randomize`` curves, from one explanation."""
    return method_curves(options["method"], clf, image, target, FIGURES, options["method_options"],
                         options["points"], options["seed"], options["draws"])


def compare_figure(results: Sequence[str | Path], out: str | Path, normalized: bool = False,
                   common_images: bool = False) -> Path:
    """One figure of the mean curves of several ``rd-FIGURE.json`` files (e.g. one per model, for the
    reproduction's CNN-vs-ViT figure), each line labelled ``model: method``. ``normalized`` plots the curves
    in % of their fully randomised end (:meth:`DistortionResults.normalized`); ``common_images`` averages
    over the images every result kept (those all models classified correctly, as the reproduction did)."""
    from ..viz.curves import save_curve_figure

    loaded = [DistortionResults.load(path) for path in results]
    if len({r.figure for r in loaded}) > 1:
        raise MethodError("these results mix rd-keep and rd-randomize curves; compare one figure at a time")
    if common_images:
        shared = set.intersection(*(set(r.images) for r in loaded)) if loaded else set()
        if not shared:
            raise MethodError("these results have no image in common")
        loaded = [r.restricted(sorted(shared)) for r in loaded]
    curves = {f"{r.settings.get('model', '?')}: {m}": (r.normalized(m) if normalized else r.mean(m))
              for r in loaded for m in r.methods}
    figure = loaded[0].figure if loaded else "keep"
    verb = "kept (the rest randomised)" if figure == "keep" else "randomised"
    images = sorted({len(r.images) for r in loaded})
    return save_curve_figure(curves, f"rd-{figure}", out,
                             ylabel="normalized distortion [%]" if normalized else "distortion (l2 of softmax)",
                             xlabel=f"% of components {verb}, most relevant first",
                             title=f"rate-distortion ({figure}), {counted(len(loaded), 'result')}, "
                                   f"{'/'.join(map(str, images))} images")
