"""``clearsight reproduce moxi|cartoonx``: each experiment of a paper re-run on your model and photos, and every
claim of the paper beside our number (:mod:`clearsight.experiments.claims`).

An experiment is a set of units (:class:`clearsight.engine.Unit`: experiment, image, method, settings) run on
an engine (in this process, or on a Ray cluster) through one store (``OUT/units``): a finished unit is never
computed again, so a killed run resumes and a later session continues it. Each experiment then boils its
units down to a JSON *summary* (the contract in :mod:`clearsight.experiments.claims.summary`) and figures in
``OUT/PAPER/EXPERIMENT/``; ``OUT/PAPER/results.md`` is rebuilt from every summary present, so figures and
tables regenerate from the stored units alone (a second run with everything stored computes nothing).

The run every experiment shares is :class:`~.run.Reproduction`; the experiments are in :mod:`.moxi_paper` and
:mod:`.cartoonx_paper`; this module names them (:data:`PAPERS`) and runs them.

Our setting differs from the papers' where the paper's cannot be had offline (ImageNet validation, ViT-T
weights, trained 10/20/100-class models); each summary carries its ``deviations`` and results.md lists them
beside the numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import MethodError
from .cartoonx_paper import (
    cartoonx_inits,
    cartoonx_lambda,
    cartoonx_qualitative,
    cartoonx_rate_distortion,
    cartoonx_runtime,
    cartoonx_vit,
)
from .moxi_paper import (
    moxi_adversarial,
    moxi_class_discriminative,
    moxi_consistency,
    moxi_corruptions,
    moxi_curves,
    moxi_heatmaps,
    moxi_runtime,
    moxi_set_sum,
)
from .run import Reproduction, check_models

__all__ = ["PAPERS", "Reproduction", "check_experiments", "check_models", "reproduce", "write_results"]

PAPERS: dict[str, dict[str, Callable[[Reproduction], dict[str, Any]]]] = {
    "moxi": {"curves": moxi_curves, "heatmaps": moxi_heatmaps, "class-discriminative": moxi_class_discriminative,
             "corruptions": moxi_corruptions, "adversarial": moxi_adversarial, "set-sum": moxi_set_sum,
             "consistency": moxi_consistency, "runtime": moxi_runtime},
    "cartoonx": {"qualitative": cartoonx_qualitative, "rate-distortion": cartoonx_rate_distortion,
                 "lambda": cartoonx_lambda, "vit": cartoonx_vit, "inits": cartoonx_inits,
                 "runtime": cartoonx_runtime},
}


def check_experiments(paper: str, only: Sequence[str] | None) -> list[str]:
    """The experiments to run, in the paper's order; unknown names are refused before any work."""
    if paper not in PAPERS:
        raise MethodError(f"unknown paper {paper!r}; choose moxi or cartoonx")
    names = list(PAPERS[paper])
    if not only:
        return names
    unknown = [e for e in only if e not in PAPERS[paper]]
    if unknown:
        raise MethodError(f"unknown {paper} experiment {', '.join(unknown)}; choose from {', '.join(names)}")
    return [e for e in names if e in set(only)]


def write_results(out: Path, paper: str) -> Path:
    """``OUT/PAPER/results.md`` from the stored summaries alone (no model, nothing recomputed)."""
    from .claims import DEVIATIONS, claims_table, read_summaries, write_results_md

    summaries, commands = read_summaries(out, paper)
    rows = claims_table(paper, summaries, commands, DEVIATIONS.get(paper, ()))
    runs = [r for s in summaries.values() for r in ([s] if isinstance(s, dict) else s)]  # a list: one per model
    models = sorted({str(r.get("model")) for r in runs if r.get("model")})
    return write_results_md(out / paper / "results.md", rows, {
        "paper": paper, "models": ", ".join(models) or "none yet",
        "experiments run": ", ".join(summaries) or "none yet"})


def reproduce(run: Reproduction, only: Sequence[str] | None = None,
              done: Callable[[str, dict[str, Any]], None] | None = None) -> Path:
    """Run the chosen experiments of ``run.paper`` (all by default), write each summary and figure, then
    results.md; ``done(experiment, summary)`` after each experiment."""
    from .claims import write_summary

    for experiment in check_experiments(run.paper, only):
        summary = PAPERS[run.paper][experiment](run)
        summary["command"] = run.command
        write_summary(run.folder(experiment) / "summary.json", summary)
        if done:
            done(experiment, summary)
    return write_results(run.out, run.paper)
