"""A static HTML page over a results folder: every explanation (figure, class, score, cost, settings) and
every evaluation (figure, small tables, links to the rest), so that a run over many photos can be looked at
in a browser without a notebook.

The page links the figures by relative path (it lives in the folder it describes, so the folder can be moved
or zipped whole) and escapes every text it shows: file names, class names, method names and settings come
from users and from the files, and must never become markup.
"""

from __future__ import annotations

import csv
import html
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..errors import ClearsightError

#: folders of finished per-image results and optimiser checkpoints: data, not results to show
SKIPPED_FOLDERS = {"runs", ".checkpoints"}
#: tables with more rows than this are linked, not shown
MAX_TABLE_ROWS = 25
EXPLANATION_FORMAT = "clearsight.explanation/1"


@dataclass
class _Explanation:
    meta: dict
    json_path: Path
    figure: Path | None
    loss_figure: Path | None


@dataclass
class _Evaluation:
    name: Path  # the result's path without suffix
    figures: list[Path]
    tables: list[Path]
    summary: dict


def _files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS)
        for name in sorted(files):
            yield Path(root) / name


def _scan(folder: Path) -> tuple[list[_Explanation], list[_Evaluation]]:
    explanations, evaluations = [], []
    files = list(_files(folder))
    present = set(files)
    for path in files:
        if path.suffix != ".json":
            continue
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # not ours, or being written: leave it out rather than fail the page
        if not isinstance(meta, dict):
            continue
        stem = path.with_suffix("")
        figure = stem.with_suffix(".png")
        if meta.get("format") == EXPLANATION_FORMAT:
            loss = stem.with_name(stem.name + "_loss.png")
            explanations.append(_Explanation(meta, path, figure if figure in present else None,
                                             loss if loss in present else None))
            continue
        tables = sorted(p for p in files if p.suffix == ".csv" and p.parent == path.parent
                        and (p.stem == stem.name or p.stem.startswith(stem.name + "_")))
        figures = sorted(p for p in files if p.suffix == ".png" and p.parent == path.parent
                         and (p.stem == stem.name or p.stem.startswith(stem.name + "_")))
        if figures or tables:
            evaluations.append(_Evaluation(stem, figures, tables, meta))
    return explanations, evaluations


def _link(path: Path, base: Path) -> str:
    return html.escape(quote(os.path.relpath(path, base).replace(os.sep, "/")), quote=True)


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(path: Path, base: Path) -> str:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return ""
    caption = f'<p class="file"><a href="{_link(path, base)}">{_text(path.name)}</a></p>'
    if len(rows) - 1 > MAX_TABLE_ROWS:
        return caption.replace("</p>", f" ({len(rows) - 1} rows)</p>")
    head = "".join(f"<th>{_text(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f"{caption}<table><tr>{head}</tr>{body}</table>"


def _explanation_card(item: _Explanation, base: Path) -> str:
    meta = item.meta
    score = meta.get("score")
    cost = meta.get("cost") or {}
    facts = [
        ("image", item.json_path.stem),
        ("model", meta.get("model", "")),
        ("class", f"{meta.get('target_name', '')} ({meta.get('target')})"),
        ("probability", "" if score is None else f"{float(score):.3f}"),
        ("seconds", f"{float(cost['seconds']):.2f}" if "seconds" in cost else ""),
        ("model passes", f"{int(cost['passes']):,}" if "passes" in cost else ""),
    ]
    rows = "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in facts if v != "")
    figures = "".join(f'<a href="{_link(p, base)}"><img src="{_link(p, base)}" alt="{_text(p.name)}"></a>'
                      for p in (item.figure, item.loss_figure) if p is not None)
    settings = json.dumps(meta.get("settings", {}), indent=1, sort_keys=True, default=str)
    return (f'<div class="card"><h3>{_text(meta.get("method", "?"))}: {_text(item.json_path.stem)}</h3>{figures}'
            f"<table>{rows}</table><details><summary>settings</summary><pre>{_text(settings)}</pre></details>"
            f'<p class="file"><a href="{_link(item.json_path, base)}">{_text(item.json_path.name)}</a></p></div>')


def _evaluation_card(item: _Evaluation, base: Path) -> str:
    figures = "".join(f'<a href="{_link(p, base)}"><img src="{_link(p, base)}" alt="{_text(p.name)}"></a>'
                      for p in item.figures)
    tables = "".join(_table(p, base) for p in item.tables)
    images = item.summary.get("images")
    skipped = item.summary.get("skipped")
    counts = ""
    if isinstance(images, list):
        counts = f"<p>{len(images)} images" + (f", {len(skipped)} skipped (misclassified)"
                                               if isinstance(skipped, list) else "") + "</p>"
    title = os.path.relpath(item.name, base)
    return f'<div class="card wide"><h3>{_text(title)}</h3>{counts}{figures}{tables}</div>'


_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h3{font-size:1em;margin:.2em 0}
.grid{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ddd;border-radius:6px;padding:.7em;width:420px}
.wide{width:100%}img{max-width:400px;margin:.2em}table{border-collapse:collapse;font-size:.85em;margin:.3em 0}
td,th{border:1px solid #ddd;padding:.15em .4em;text-align:left}.file{font-size:.8em;color:#666}
pre{font-size:.75em;max-height:20em;overflow:auto}"""


def build_report(folder: str | os.PathLike, out: str | os.PathLike | None = None, title: str | None = None) -> Path:
    """Write an HTML page describing the results in ``folder`` (default ``folder/report.html``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ClearsightError(f"no results folder at {folder}: give the --out folder of explain or evaluate")
    out = Path(out) if out is not None else folder / "report.html"
    base = out.resolve().parent
    explanations, evaluations = _scan(folder.resolve())
    if not explanations and not evaluations:
        raise ClearsightError(f"{folder} holds no clearsight results (explanation .json files or evaluation "
                              "tables and figures)")
    title = title or f"clearsight results: {folder.resolve().name}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_text(title)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>{_text(title)}</h1>"]
    if evaluations:
        parts.append(f"<h2>Evaluations ({len(evaluations)})</h2><div class='grid'>")
        parts += [_evaluation_card(e, base) for e in evaluations]
        parts.append("</div>")
    if explanations:
        parts.append(f"<h2>Explanations ({len(explanations)})</h2><div class='grid'>")
        parts += [_explanation_card(e, base) for e in explanations]
        parts.append("</div>")
    parts.append("</body></html>")
    from ..explanation import atomic_write

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: f.write("\n".join(parts).encode()))
    return out
