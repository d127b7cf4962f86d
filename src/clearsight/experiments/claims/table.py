"""The claims table: one row per claim of a paper, the paper's value beside ours, written as results.md and
as an HTML section of the report page.

Why rows for every claim: a claim whose experiment has not run yet (or whose run lacks a method) still gets
its row, saying "not measured" and why, so the table never hides a claim and never shows a value nobody
measured. Everything is read from the experiments' summaries (:mod:`.summary`), so the table can be
rebuilt from the stored results without recomputing anything.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...explanation import atomic_write
from .papers import DEVIATIONS, EXPERIMENTS, TITLES, Claim, ClaimError, check_paper, claims_of, format_value
from .summary import MEASURES, NotMeasured

YES, NO, NOT_MEASURED, BY_EYE, REPORTED = "yes", "no", "not measured", "by eye", "reported"
ARCHITECTURES = {"vit": "a ViT", "cnn": "a CNN"}


@dataclass(frozen=True)
class Row:
    """A claim with our result: ``verdict`` is ``yes``/``no`` (tested), ``not measured`` (``note`` says
    why), ``by eye`` (qualitative: ``figures`` to look at) or ``reported`` (a value shown for context)."""

    claim: Claim
    verdict: str
    value: float | None = None
    model: str = ""
    images: int | None = None
    command: str = ""
    note: str = ""
    figures: tuple[str, ...] = ()
    deviations: tuple[str, ...] = ()

    @property
    def value_text(self) -> str:
        if self.verdict == NOT_MEASURED:
            return NOT_MEASURED
        if self.claim.qualitative:
            return "see " + ", ".join(self.figures) if self.figures else "see the experiment's figures"
        return format_value(self.value, self.claim.unit)

    @property
    def test_text(self) -> str:
        """How the value is judged: the comparison and its basis (the measure is :meth:`Claim.call`)."""
        basis = f" ({self.claim.holds.basis})" if self.claim.holds.basis else ""
        return self.claim.holds.describe(self.claim.unit) + basis


def _summaries_of(experiment: str, given: Any) -> list[Mapping[str, Any]]:
    """One experiment's summaries as a list: a dict (one run) or a list of dicts (runs on several models)."""
    runs = [given] if isinstance(given, Mapping) else given
    if not isinstance(runs, Sequence) or isinstance(runs, str) or not all(isinstance(r, Mapping) for r in runs):
        raise ClaimError(f"the summary of {experiment!r} must be a dict or a list of dicts, not "
                         f"{type(given).__name__}")
    return list(runs)


def _images(summary: Mapping[str, Any]) -> int | None:
    images = summary.get("images")
    return int(images) if isinstance(images, (int, float)) and not isinstance(images, bool) else None


def _measure(claim: Claim, runs: list[Mapping[str, Any]]) -> tuple[float | None, Mapping[str, Any], str]:
    """The claim's value from the first run that has what it needs, that run, and why the others had not."""
    reasons = []
    for run in runs:
        try:
            value = MEASURES[claim.measure](run, **dict(claim.args))  # type: ignore[index]
            return float(value), run, ""
        except NotMeasured as e:
            reasons.append(str(e))
        except (TypeError, ValueError, KeyError, IndexError) as e:  # a malformed summary: shown, never guessed
            reasons.append(f"the summary could not be read ({type(e).__name__}: {e})")
    return None, runs[0], "; ".join(dict.fromkeys(reasons))


def _strings(value: Any) -> tuple[str, ...]:
    """A summary's list of texts (figures, deviations); anything else (a hand-edited or foreign file) is none."""
    return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else ()


def claim_row(claim: Claim, runs: list[Mapping[str, Any]] | None, command: str = "",
              deviations: Sequence[str] = ()) -> Row:
    """The row of one claim given the runs of its experiment (None: not run)."""
    if not runs:
        return Row(claim, NOT_MEASURED, command=command, note=f"the {claim.experiment} experiment has not run",
                   deviations=tuple(deviations))
    if claim.architecture is not None:
        fitting = [r for r in runs if r.get("architecture") == claim.architecture]
        if not fitting:
            return Row(claim, NOT_MEASURED, model=", ".join(str(r.get("model", "?")) for r in runs),
                       command=command, deviations=tuple(deviations),
                       note=f"needs a run on {ARCHITECTURES.get(claim.architecture, claim.architecture)} "
                            "(the summary's 'architecture')")
        runs = fitting
    if claim.qualitative:
        run = runs[0]
        value, note = None, ""
    else:
        value, run, note = _measure(claim, runs)
    own = _strings(run.get("deviations"))
    if claim.qualitative:
        verdict = BY_EYE
    elif value is None:
        verdict = NOT_MEASURED
    elif not claim.holds.tested:
        verdict = REPORTED
    else:
        verdict = YES if claim.holds.holds(value) else NO
    command = str(run.get("command") or command)  # the command of the run that measured it, when it says
    return Row(claim, verdict, value=value, model=str(run.get("model", "")), images=_images(run), command=command,
               note=note, figures=_strings(run.get("figures")),
               deviations=tuple(dict.fromkeys([*deviations, *own])))


def claims_table(paper: str, summaries: Mapping[str, Any], commands: Mapping[str, str] | None = None,
                 deviations: Sequence[str] | None = None) -> list[Row]:
    """One row per claim of ``paper``, in report order.

    ``summaries[experiment]`` is the experiment's summary (or a list of them, one per model run); a claim
    tied to an architecture takes the first run of that architecture, others the first run that has what
    the measure needs. ``commands[experiment]`` is the command line that made the summary; ``deviations``
    are run-wide departures from the paper (default: the paper's standard list, :data:`DEVIATIONS`), kept
    on every row with those the summaries list themselves.
    """
    paper = check_paper(paper)
    unknown = [e for e in summaries if e not in EXPERIMENTS[paper]]
    if unknown:
        raise ClaimError(f"no experiment {', '.join(map(repr, unknown))} in the {paper} reproduction; its "
                         f"experiments are {', '.join(EXPERIMENTS[paper])}")
    commands = commands or {}
    deviations = DEVIATIONS[paper] if deviations is None else tuple(str(d) for d in deviations)
    runs = {e: _summaries_of(e, s) for e, s in summaries.items() if s is not None}
    return [claim_row(c, runs.get(c.experiment), str(commands.get(c.experiment, "")), deviations)
            for c in claims_of(paper)]


# ---- results.md ----

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_text(text: Any) -> str:
    """Text safe in a Markdown table cell: one line, HTML and Markdown syntax shown literally."""
    one_line = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=False))


def md_code(text: Any) -> str:
    """Text as an inline code span in a table cell (fenced by more backticks than it holds; pipes escaped,
    as GitHub tables need even inside code)."""
    one_line = " ".join(str(text).split())
    if not one_line:
        return ""
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", one_line)), default=0) + 1)
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{ticks}{pad}{one_line.replace('|', chr(92) + '|')}{pad}{ticks}"


COLUMNS = ("Claim", "Where", "Paper", "Paper's setting", "Ours", "Test", "Our model", "Images", "Holds?",
           "Command")


def _md_row(row: Row) -> str:
    claim = row.claim
    ours = md_text(row.value_text) + (f" ({md_text(row.note)})" if row.note else "")
    cells = [f"**{md_text(claim.id)}**: {md_text(claim.statement)}", md_text(claim.where),
             md_text(claim.paper_value), md_text(claim.paper_setting), ours,
             " ".join(filter(None, [md_code(claim.call()), md_text(row.test_text)])),
             md_text(row.model or "-"), md_text("-" if row.images is None else row.images),
             f"**{row.verdict}**", md_code(row.command) or "-"]
    return "| " + " | ".join(cells) + " |"


def _tally(rows: Sequence[Row]) -> str:
    counts = {v: sum(r.verdict == v for r in rows) for v in (YES, NO, NOT_MEASURED, BY_EYE, REPORTED)}
    return (f"{len(rows)} claims: {counts[YES]} hold, {counts[NO]} do not, {counts[NOT_MEASURED]} not measured, "
            f"{counts[BY_EYE]} judged by eye, {counts[REPORTED]} reported for context.")


def _by_paper_and_experiment(rows: Sequence[Row]) -> dict[str, dict[str, list[Row]]]:
    grouped: dict[str, dict[str, list[Row]]] = {}
    for row in rows:
        grouped.setdefault(row.claim.paper, {}).setdefault(row.claim.experiment, []).append(row)
    return grouped


def _deviations(rows: Sequence[Row], extra: Sequence[str] = ()) -> list[str]:
    found = [*extra, *(d for r in rows for d in r.deviations)]
    return list(dict.fromkeys(str(d) for d in found))


def results_markdown(rows: Sequence[Row], header_info: Mapping[str, Any] | None = None) -> str:
    """The text of results.md (see :func:`write_results_md`)."""
    header_info = dict(header_info or {})
    extra = header_info.pop("deviations", None) or []
    if isinstance(extra, str):
        extra = [extra]
    papers = list(_by_paper_and_experiment(rows))
    lines = ["# Claims beside the papers", ""]
    lines += [f"- Paper: {md_text(TITLES.get(p, p))}" for p in papers]
    lines += [f"- {md_text(k)}: {md_text(v)}" for k, v in header_info.items()]
    lines += ["", md_text(_tally(rows)), "",
              "Holds? says whether the paper's claim holds on our run: **yes** / **no** by the test beside it, "
              "**not measured** when its experiment has not run (or lacks what the test needs), **by eye** for a "
              "qualitative claim, **reported** for a value shown for context only.", ""]
    header = "| " + " | ".join(COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    for paper, experiments in _by_paper_and_experiment(rows).items():
        if len(papers) > 1:
            lines += [f"## {md_text(paper)}", ""]
        for experiment, group in experiments.items():
            level = "###" if len(papers) > 1 else "##"
            lines += [f"{level} {md_text(experiment)}", "", md_text(_tally(group)), "", header, rule]
            lines += [_md_row(r) for r in group]
            lines.append("")
    lines += ["## Deviations from the papers' setting", ""]
    lines += [f"- {md_text(d)}" for d in _deviations(rows, extra)] or ["- none recorded"]
    return "\n".join(lines) + "\n"


def write_results_md(path: str | Path, rows: Sequence[Row], header_info: Mapping[str, Any] | None = None) -> Path:
    """Write results.md atomically: a header (``header_info``: key -> value lines, e.g. models, images, the
    clearsight version; its ``deviations`` key adds to the rows' deviations), then per experiment a table of
    its claims, then the deviations from the papers' setting that the rows and the header record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = results_markdown(rows, header_info)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path


# ---- HTML section for the report page ----

def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def claims_html(rows: Sequence[Row], deviations: Sequence[str] = (),
                after: Mapping[tuple[str, str], str] | None = None) -> str:
    """The claims table as an HTML ``<section>`` for the report page; every text is escaped.

    ``after[(paper, experiment)]`` is HTML placed after that experiment's table (the report page's figures of
    the experiment); it is inserted as given, so its maker escapes what it shows."""
    after = after or {}
    parts = ['<section class="claims" id="claims">', "<h2>Claims beside the papers</h2>",
             f"<p>{_h(_tally(rows))}</p>"]
    for paper, experiments in _by_paper_and_experiment(rows).items():
        parts.append(f"<h3>{_h(TITLES.get(paper, paper))}</h3>")
        for experiment, group in experiments.items():
            # one command made the whole table (the usual case): said once above it, not in every row
            commands = {r.command for r in group}
            shared = len(commands) == 1
            columns = COLUMNS[:-1] if shared else COLUMNS
            parts.append(f"<h4>{_h(experiment)}</h4>")
            if shared and group[0].command:
                parts.append(f"<p>Command: <code>{_h(group[0].command)}</code></p>")
            parts += ["<table>", "<tr>" + "".join(f"<th>{_h(c)}</th>" for c in columns) + "</tr>"]
            for r in group:
                ours = _h(r.value_text) + (f" <small>({_h(r.note)})</small>" if r.note else "")
                cells = [f"<b>{_h(r.claim.id)}</b>: {_h(r.claim.statement)}", _h(r.claim.where),
                         _h(r.claim.paper_value), _h(r.claim.paper_setting), ours,
                         " ".join(filter(None, [f"<code>{_h(r.claim.call())}</code>" if r.claim.call() else "",
                                                _h(r.test_text)])),
                         _h(r.model or "-"), _h("-" if r.images is None else r.images),
                         f'<span class="verdict {_h(r.verdict.replace(" ", "-"))}">{_h(r.verdict)}</span>']
                if not shared:
                    cells.append(f"<code>{_h(r.command)}</code>" if r.command else "-")
                parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            parts.append("</table>")
            if (paper, experiment) in after:
                parts.append(after[(paper, experiment)])
    found = _deviations(rows, deviations)
    if found:
        parts += ["<h3>Deviations from the papers' setting</h3>", "<ul>"]
        parts += [f"<li>{_h(d)}</li>" for d in found]
        parts.append("</ul>")
    parts.append("</section>")
    return "\n".join(parts)
