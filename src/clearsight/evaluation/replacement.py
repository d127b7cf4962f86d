"""Deletion curves under distribution shift: deleted patches show a corrupted or an adversarial copy of the
photo instead of being dropped (the MoXI paper, section 5.3 and appendix G; SPEC C.11 and C.12).

Each method orders the clean photo's patches as for an ordinary deletion curve (MoXI and MoXI(-) with their
own deletion orders, the saliency maps by descending saliency); then, for j = 0..N, the first j patches of
that order are replaced by the same patches of the corrupted photo (``corruption:NAME:SEVERITY``, by
default severity 5 as in the paper) or of an L2 PGD adversarial example (``adversarial``). The model sees
a whole image at every point. A method whose order finds the patches the model relies on makes the accuracy
fall fastest; under attack, the paper also plots each patch's perturbation norm in each method's deletion
order (:func:`perturbation_norms_by_order`), to show which patches the attack changed most.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import MethodError
from ..parts import PatchGrid, Replace
from .curves import CurveResults, evaluate_curves, write_curve_table

REPLACEMENT_KINDS = ("corruption", "adversarial")


def corruption_replacement(name: str, severity: int = 5, seed: int = 0) -> Replace:
    """Absent patches show the photo corrupted by ``name`` at ``severity`` (:mod:`clearsight.corruptions`),
    quantised to uint8 as the paper's pipeline does; ``seed`` fixes the corruption's random draws."""
    from ..corruptions import check_corruption

    check_corruption(name, severity)
    return Replace(partial(_corrupted, name=name, severity=severity, seed=seed),
                   f"corruption:{name}:{severity}:seed{seed}")


# module-level makers (not lambdas), so that curves with a replacement pickle to other engines' workers
def _corrupted(clf, image: torch.Tensor, target: int, *, name: str, severity: int, seed: int) -> torch.Tensor:
    from ..corruptions import corrupt_tensor

    return corrupt_tensor(image, name, severity, seed)


def _attacked(clf, image: torch.Tensor, target: int, *, epsilon: float, step: float, steps: int) -> torch.Tensor:
    from ..adversarial import pgd_l2

    return pgd_l2(clf, image, target, epsilon, step, steps)


def adversarial_replacement(epsilon: float = 1.0, step: float = 0.2, steps: int = 10) -> Replace:
    """Absent patches show an untargeted L2 PGD example of the photo (:func:`clearsight.adversarial.pgd_l2`)
    against the class the model predicts for it."""
    if epsilon <= 0 or step <= 0 or steps < 1:
        raise MethodError(f"PGD needs epsilon > 0, step > 0 and at least one step; got {epsilon}, {step}, {steps}")
    return Replace(partial(_attacked, epsilon=epsilon, step=step, steps=steps),
                   f"adversarial:l2-pgd:eps{epsilon:g}:step{step:g}:steps{steps}")


def make_replacement(spec: str, seed: int = 0, epsilon: float = 1.0, step: float = 0.2, steps: int = 10
                     ) -> Replace:
    """A :class:`Replace` from a short spec: ``corruption:NAME[:SEVERITY]`` or ``adversarial``."""
    kind, _, rest = spec.partition(":")
    if kind == "corruption":
        name, _, severity = rest.partition(":")
        try:
            level = int(severity or 5)
        except ValueError:
            raise MethodError(f"a corruption's severity is an integer 1..5; got {severity!r}") from None
        return corruption_replacement(name, level, seed)
    if kind == "adversarial" and not rest:
        return adversarial_replacement(epsilon, step, steps)
    raise MethodError(f"unknown replacement {spec!r}; use corruption:NAME[:SEVERITY] or adversarial")


def evaluate_replacement_curves(clf, images: Sequence[torch.Tensor], labels: Sequence[int | None],
                                methods: Sequence[Any], replacement: Replace | str,
                                names: Sequence[str] | None = None, score: str = "log-odds",
                                method_options: dict[str, dict[str, Any]] | None = None,
                                patch_size: int | None = None, progress: Callable[[str], None] | None = None,
                                store: str | Path | None = None, engine=None) -> CurveResults:
    """Deletion curves of ``methods`` over ``images`` where deleted patches show ``replacement``'s image.

    The methods explain the clean photos with their usual absence (``method_options``); only the curve
    replaces patches. Misclassified photos are skipped; with ``store``, finished curves are kept and reused;
    ``methods`` and ``engine`` are as for :func:`~clearsight.evaluation.curves.evaluate_curves`. The results'
    ``name`` is ``deletion-<what replaces>``, e.g. ``deletion-fog-5`` or ``deletion-adversarial``.
    """
    replace = make_replacement(replacement) if isinstance(replacement, str) else replacement
    results = evaluate_curves(clf, images, labels, methods, "deletion", names=names, absence=replace, score=score,
                              method_options=method_options, patch_size=patch_size, progress=progress,
                              store=store, engine=engine)
    parts = replace.description.split(":")
    results.name = "deletion-" + ("-".join(parts[1:3]) if parts[0] == "corruption" else parts[0])
    what = "corrupted" if parts[0] == "corruption" else "adversarial"
    results.xlabel = f"% of patches replaced by the {what} image (each method's deletion order)"
    return results


def perturbation_norms(replace: Replace, clf, image: torch.Tensor, grid: PatchGrid) -> np.ndarray:
    """The L2 norm of ``replacement - image`` over each patch (all its pixels and channels), ``(N,)``."""
    image = image.to(clf.device)
    delta = (replace.replacement(clf, image) - image).float()
    squared = delta.pow(2).sum(0)  # (H,W)
    return (grid.pool(squared) * grid.patch**2).sqrt().cpu().numpy()


def perturbation_norms_by_order(results: CurveResults, replace: Replace, clf,
                                images: dict[str, torch.Tensor], patch_size: int | None = None
                                ) -> dict[str, np.ndarray]:
    """Per method, the mean over images of the perturbation norm of the patch deleted at each step of its
    deletion order (the paper's Fig. 15b): a method that finds the attacked patches starts high.

    ``images`` maps the names in ``results.images`` to the photos.
    """
    grid = PatchGrid.for_classifier(clf, patch_size)
    norms = {name: perturbation_norms(replace, clf, images[name], grid) for name in results.images}
    by_order = {}
    for method, orders in results.orders.items():
        if len(orders) != len(results.images):
            continue  # curves stored without their orders: nothing to line up
        by_order[method] = np.mean([norms[name][order] for name, order in zip(results.images, orders)], axis=0)
    return by_order


def save_perturbation_norms(by_order: dict[str, np.ndarray], out: str | Path, name: str) -> dict[str, Path]:
    """Write ``{name}_patch_norms.csv`` (one column per method, a row per deletion step) and a figure."""
    from ..viz.curves import save_curve_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = write_curve_table(out / f"{name}_patch_norms.csv", by_order)
    png = save_curve_figure(by_order, "deletion", out / f"{name}_patch_norms.png",
                            ylabel="L2 norm of the perturbation in the patch",
                            xlabel="% of patches, in each method's deletion order",
                            title="perturbation per patch along each deletion order")
    return {"csv": csv_path, "png": png}
