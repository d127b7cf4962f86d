"""A static HTML page over a results folder, so that a run over many photos can be looked at in a browser.

The page has a table of contents, a summary table (one row per explanation: photo, method, model, mode or
preset, class, probability, seconds, model passes), per model an image x method grid of thumbnails (rows the
photos, columns the methods) linking to the full figures, one card per explanation titled with photo, method,
model and mode, and one card per evaluation (figures, small tables, links to the rest). Everything is sorted,
so the same folder always gives the same page.

The page links the figures by relative path (it lives in the folder it describes, so the folder can be moved
or zipped whole) and escapes every text it shows: file names, class names, method names and settings come
from users and from the files, and must never become markup. A file the page cannot use (broken or hostile
JSON, binary or oversized CSV, a name that is not UTF-8, a named pipe or other non-regular file) is left out
or shown as unreadable; the page never fails or blocks because of one file, and never opens anything but
regular files.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ..errors import ClearsightError
from ..wording import counted

#: folders of finished per-image results and optimiser checkpoints: data, not results to show
SKIPPED_FOLDERS = {"runs", ".checkpoints"}
#: tables with more rows than this are linked, not shown
MAX_TABLE_ROWS = 25
#: larger files are not read (a results JSON is a few KiB, a shown table far below this)
MAX_JSON_BYTES = 4 << 20
MAX_CSV_BYTES = 1 << 20
#: longer table cells are cut when shown
MAX_CELL_CHARS = 120
EXPLANATION_FORMAT = "clearsight.explanation/1"
#: figure files, in the order a result's figure is looked for (the browser shows PNG and SVG inline)
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
INLINE_SUFFIXES = (".png", ".svg")


@dataclass
class _Explanation:
    meta: dict
    json_path: Path
    figure: Path | None
    loss_figure: Path | None
    photo: str = ""
    method: str = ""
    model: str = ""
    mode: str = ""
    anchor: str = ""

    @property
    def column(self) -> str:
        return self.method + (f" ({self.mode})" if self.mode else "")

    @property
    def title(self) -> str:
        return f"{self.photo} · {self.column} · {self.model or 'unknown model'}"


@dataclass
class _Evaluation:
    name: Path  # the result's path without suffix
    figures: list[Path]
    tables: list[Path]
    summary: dict
    anchor: str = ""


@dataclass
class _Scan:
    explanations: list[_Explanation] = field(default_factory=list)
    evaluations: list[_Evaluation] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)
    #: the regular PAPER/EXPERIMENT[/MODEL]/summary.json files of reproductions (see :func:`_claims_section`)
    summaries: set[Path] = field(default_factory=set)
    #: their figures, by (paper, experiment)
    experiment_figures: dict[tuple[str, str], list[Path]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ reading
def _is_regular(path: Path) -> bool:
    """Only regular files are ever opened: a named pipe would block the page forever, a device worse."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _read_bytes(path: Path, limit: int) -> bytes | None:
    """The file's bytes, or None when it is not a regular file (checked again on the open descriptor, so a
    file swapped for a pipe after the scan cannot block), cannot be read, or is larger than ``limit``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_json_value(path: Path) -> object:
    """The JSON value in ``path``, read with the page's limits; None when it cannot be read or parsed."""
    data = _read_bytes(path, MAX_JSON_BYTES)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _read_json(path: Path) -> dict | None:
    meta = _read_json_value(path)
    return meta if isinstance(meta, dict) else None


def _read_summary(path: Path) -> dict | list | None:
    """A reproduce experiment's summary.json (a dict, or a list of dicts: one per model run); None when it is
    anything else."""
    summary = _read_json_value(path)
    if isinstance(summary, dict) or (isinstance(summary, list) and summary
                                     and all(isinstance(s, dict) for s in summary)):
        return summary
    return None


def _reproduction_experiment(path: Path, folder: Path) -> tuple[str, str] | None:
    """(paper, experiment) when ``path`` lies in a ``clearsight reproduce`` output folder's
    ``PAPER/EXPERIMENT/`` (its summary.json feeds the claims section, its figures are shown there)."""
    from ..experiments.claims.papers import EXPERIMENTS

    parts = path.relative_to(folder).parts
    if len(parts) >= 3 and parts[1] in EXPERIMENTS.get(parts[0], ()):
        return parts[0], parts[1]
    return None


def _files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS)
        for name in sorted(files):
            yield Path(root) / name


def _number(value: object) -> float | None:
    """A finite number from a results file, or None (strings, booleans, Infinity and NaN are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _string(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else json.dumps(value, default=str)


def _first_present(stem: Path, present: set[Path], suffixes: tuple[str, ...] = FIGURE_SUFFIXES) -> Path | None:
    for suffix in suffixes:
        candidate = stem.with_name(stem.name + suffix)
        if candidate in present:
            return candidate
    return None


def _explanation(meta: dict, path: Path, present: set[Path]) -> _Explanation:
    stem = path.with_suffix("")
    settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    method = _string(meta.get("method")) or "?"
    image = settings.get("image")
    if isinstance(image, str) and image:
        photo = Path(image).stem
    else:  # the CLI names results PHOTO_METHOD
        photo = stem.name[: -len(method) - 1] if stem.name.endswith("_" + method) else stem.name
    mode = settings.get("mode") if settings.get("mode") in ("insertion", "deletion") else settings.get("preset")
    return _Explanation(meta, path, _first_present(stem, present),
                        _first_present(stem.with_name(stem.name + "_loss"), present),
                        photo=photo, method=method, model=_string(meta.get("model")),
                        mode=mode if isinstance(mode, str) else "")


def _scan(folder: Path) -> _Scan:
    found = _Scan()
    files = [p for p in _files(folder)]
    regular = [p for p in files if _is_regular(p)]
    present = set(regular)
    found.unreadable = [p for p in files if p not in present]
    for path in regular:
        experiment = _reproduction_experiment(path, folder)
        if experiment is not None and path.suffix.lower() in FIGURE_SUFFIXES:
            found.experiment_figures.setdefault(experiment, []).append(path)
        if path.suffix != ".json":
            continue
        if experiment is not None and path.name == "summary.json" and len(path.relative_to(folder).parts) <= 4:
            found.summaries.add(path)
            continue
        meta = _read_json(path)
        if meta is None:
            found.unreadable.append(path)  # not ours, broken, or being written: shown as unreadable
            continue
        stem = path.with_suffix("")
        if meta.get("format") == EXPLANATION_FORMAT:
            found.explanations.append(_explanation(meta, path, present))
            continue
        related = [p for p in regular if p.parent == path.parent
                   and (p.stem == stem.name or p.stem.startswith(stem.name + "_"))]
        tables = sorted(p for p in related if p.suffix == ".csv")
        figures = sorted(p for p in related if p.suffix in FIGURE_SUFFIXES)
        if figures or tables:
            found.evaluations.append(_Evaluation(stem, figures, tables, meta))
    return found


def _claims_section(folder: Path, found: _Scan, base: Path) -> str:
    """The claims beside the papers of the reproductions stored in ``folder`` (``clearsight reproduce``'s
    OUT), the same rows as each PAPER/results.md, rebuilt from the experiments' summaries, each experiment's
    table followed by its figures; '' when the folder holds none. A summary the page cannot read is listed as
    unreadable and its claims read "not measured"."""
    from ..experiments.claims import EXPERIMENTS, ClaimError, claims_html, claims_table, read_summaries

    used: list[Path] = []

    def read(path: Path) -> dict | list | None:
        summary = _read_summary(path) if path in found.summaries else None
        if summary is None and path not in found.unreadable:
            found.unreadable.append(path)
        elif summary is not None:
            used.append(path)
        return summary

    rows = []
    for paper in EXPERIMENTS:
        used.clear()
        summaries, commands = read_summaries(folder, paper, read)
        if not summaries:
            continue
        try:
            rows += claims_table(paper, summaries, commands)
        except (ClaimError, TypeError, ValueError):  # summaries of a shape no claim can read: shown as such
            found.unreadable += used
    figures = {(paper, experiment): '<div class="grid">' + "".join(
        f"<figure>{_figure_html(p, base, 'figure')}<figcaption class='file'>"
        f"{_text(os.path.relpath(p, folder / paper / experiment))}</figcaption></figure>" for p in sorted(paths))
        + "</div>" for (paper, experiment), paths in found.experiment_figures.items()}
    return claims_html(rows, after=figures) if rows else ""


# ------------------------------------------------------------------------------------------------ writing
def _display(value: object) -> str:
    """Text as shown: surrogates (the bytes of a file name that is not UTF-8, or a lone escape in a JSON string)
    become replacement characters, so the page is always valid UTF-8."""
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in str(value))


def _text(value: object) -> str:
    return html.escape(_display(value), quote=True)


def _link(path: Path, base: Path) -> str:
    """A relative URL to ``path``, percent-encoded from the file name's bytes (any name works)."""
    return html.escape(quote(os.fsencode(os.path.relpath(path, base).replace(os.sep, "/"))), quote=True)


def _figure_html(path: Path, base: Path, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    if path.suffix.lower() not in INLINE_SUFFIXES:
        return f'<a href="{_link(path, base)}">{_text(path.name)}</a>'
    return f'<a href="{_link(path, base)}"><img{cls} src="{_link(path, base)}" alt="{_text(path.name)}"></a>'


def _cell(value: str) -> str:
    value = value if len(value) <= MAX_CELL_CHARS else value[:MAX_CELL_CHARS] + "…"
    return _text(value)


def _table(path: Path, base: Path) -> str:
    caption = f'<p class="file"><a href="{_link(path, base)}">{_text(path.name)}</a>'
    data = _read_bytes(path, MAX_CSV_BYTES)
    if data is None:
        return caption + " (unreadable)</p>"
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error):  # binary, or a field over csv's size limit
        return caption + " (unreadable)</p>"
    if not rows:
        return caption + " (empty)</p>"
    if len(rows) - 1 > MAX_TABLE_ROWS:
        return caption + f" ({len(rows) - 1} rows)</p>"
    head = "".join(f"<th>{_cell(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f"{caption}</p><table><tr>{head}</tr>{body}</table>"


def _facts(item: _Explanation) -> list[tuple[str, str]]:
    meta = item.meta
    score = _number(meta.get("score"))
    cost = meta.get("cost") if isinstance(meta.get("cost"), dict) else {}
    seconds, passes = _number(cost.get("seconds")), _number(cost.get("passes"))
    target = meta.get("target")
    name = _string(meta.get("target_name"))
    return [
        ("photo", item.photo),
        ("method", item.method),
        ("model", item.model),
        ("mode / preset", item.mode),
        ("class", f"{name} ({target})" if isinstance(target, int) and not isinstance(target, bool) else name),
        ("probability", "" if score is None else f"{score:.3f}"),
        ("seconds", "" if seconds is None else f"{seconds:.2f}"),
        ("model passes", "" if passes is None else f"{int(passes):,}"),
    ]


def _explanation_card(item: _Explanation, base: Path) -> str:
    rows = "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in _facts(item) if v != "")
    figures = "".join(_figure_html(p, base) for p in (item.figure, item.loss_figure) if p is not None)
    settings = item.meta.get("settings") if isinstance(item.meta.get("settings"), dict) else {}
    settings_text = json.dumps(settings, indent=1, sort_keys=True, default=str)
    return (f'<div class="card" id="{item.anchor}"><h3>{_text(item.title)}</h3>{figures}'
            f"<table>{rows}</table><details><summary>settings</summary><pre>{_text(settings_text)}</pre></details>"
            f'<p class="file"><a href="{_link(item.json_path, base)}">{_text(item.json_path.name)}</a></p></div>')


def _evaluation_card(item: _Evaluation, base: Path) -> str:
    figures = "".join(_figure_html(p, base) for p in item.figures)
    tables = "".join(_table(p, base) for p in item.tables)
    images = item.summary.get("images")
    skipped = item.summary.get("skipped")
    counts = ""
    if isinstance(images, list):
        counts = f"<p>{counted(len(images), 'image')}" + (f", {len(skipped)} skipped (misclassified)"
                                               if isinstance(skipped, list) else "") + "</p>"
    title = os.path.relpath(item.name, base)
    return f'<div class="card wide" id="{item.anchor}"><h3>{_text(title)}</h3>{counts}{figures}{tables}</div>'


def _method_rank(method: str) -> tuple[int, str]:
    from ..methods import METHODS

    names = list(METHODS)
    return (names.index(method) if method in names else len(names), method)


def _summary_table(explanations: list[_Explanation]) -> str:
    keys = ["photo", "method", "model", "mode / preset", "class", "probability", "seconds", "model passes"]
    head = "".join(f"<th>{_text(k)}</th>" for k in keys)
    rows = []
    for item in explanations:
        facts = dict(_facts(item))
        cells = [f'<a href="#{item.anchor}">{_text(facts["photo"])}</a>'] + [_text(facts[k]) for k in keys[1:]]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table class="summary"><tr>{head}</tr>{"".join(rows)}</table>'


def _grid(items: list[_Explanation], base: Path) -> str:
    """Rows: photos; columns: methods (and modes); cells: thumbnails linking to the full figure and the card."""
    columns = sorted({(_method_rank(e.method), e.column) for e in items})
    photos = sorted({e.photo for e in items})
    cells: dict[tuple[str, str], list[_Explanation]] = {}
    for e in items:
        cells.setdefault((e.photo, e.column), []).append(e)
    head = "<th>photo</th>" + "".join(f"<th>{_text(c)}</th>" for _, c in columns)
    rows = []
    for photo in photos:
        tds = []
        for _, column in columns:
            parts = []
            for e in cells.get((photo, column), []):
                thumb = (_figure_html(e.figure, base, "thumb") if e.figure is not None
                         else '<span class="file">no figure</span>')
                parts.append(f'{thumb}<br><a class="file" href="#{e.anchor}">details</a>')
            tds.append(f"<td>{'<hr>'.join(parts)}</td>")
        rows.append(f"<tr><th>{_text(photo)}</th>{''.join(tds)}</tr>")
    return f'<div class="scroll"><table class="grid-table"><tr>{head}</tr>{"".join(rows)}</table></div>'


_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1800px}
h3{font-size:1em;margin:.2em 0}nav{background:#f6f6f6;padding:.5em 1em;border-radius:6px}nav ul{margin:.2em 0}
.grid{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ddd;border-radius:6px;padding:.7em;
width:min(100%,760px);box-sizing:border-box}.wide{width:100%}.card img{max-width:100%;margin:.2em 0}
img.thumb{width:260px;max-width:none}table{border-collapse:collapse;font-size:.85em;margin:.3em 0}
td,th{border:1px solid #ddd;padding:.15em .4em;text-align:left;vertical-align:top}.file{font-size:.8em;color:#666}
.scroll{overflow-x:auto}pre{font-size:.75em;max-height:20em;overflow:auto}:target{outline:3px solid #f90}
.claims td{max-width:28em}img.figure{width:480px;max-width:100%}
.claims code{font-size:.85em;word-break:break-all}.verdict{font-weight:bold}
.verdict.yes{color:#1a7f37}.verdict.no{color:#b42318}.verdict.not-measured{color:#777;font-weight:normal}"""


def _assign_anchors(found: _Scan, base: Path) -> None:
    found.explanations.sort(key=lambda e: (e.model, e.photo, _method_rank(e.method), e.mode,
                                           os.fsencode(os.path.relpath(e.json_path, base))))
    found.evaluations.sort(key=lambda e: os.fsencode(os.path.relpath(e.name, base)))
    for i, e in enumerate(found.explanations, 1):
        e.anchor = f"explanation-{i}"
    for i, e in enumerate(found.evaluations, 1):
        e.anchor = f"evaluation-{i}"


def build_report(folder: str | os.PathLike, out: str | os.PathLike | None = None, title: str | None = None) -> Path:
    """Write an HTML page describing the results in ``folder`` (default ``folder/report.html``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ClearsightError(f"no results folder at {folder}: give the --out folder of explain, evaluate or reproduce")
    out = Path(out) if out is not None else folder / "report.html"
    base = out.resolve().parent
    found = _scan(folder.resolve())
    claims = _claims_section(folder.resolve(), found, base)
    if not found.explanations and not found.evaluations and not claims:
        raise ClearsightError(f"{folder} holds no clearsight results (explanation .json files or evaluation "
                              "tables and figures)")
    _assign_anchors(found, base)
    models: dict[str, list[_Explanation]] = {}
    for e in found.explanations:
        models.setdefault(e.model, []).append(e)
    title = title or f"clearsight results: {folder.resolve().name}"
    toc = ["<nav><strong>Contents</strong><ul>"]
    if claims:
        toc.append('<li><a href="#claims">Claims beside the papers</a></li>')
    if found.explanations:
        toc.append(f'<li><a href="#summary">Summary ({len(found.explanations)} explanations)</a><ul>')
        toc += [f'<li><a href="#model-{i}">{_text(m or "unknown model")}: image x method grid ({len(v)})</a></li>'
                for i, (m, v) in enumerate(models.items(), 1)]
        toc.append('</ul></li><li><a href="#explanations">Explanations</a></li>')
    if found.evaluations:
        toc.append(f'<li><a href="#evaluations">Evaluations ({len(found.evaluations)})</a><ul>')
        toc += [f'<li><a href="#{e.anchor}">{_text(os.path.relpath(e.name, base))}</a></li>'
                for e in found.evaluations]
        toc.append("</ul></li>")
    toc.append("</ul></nav>")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_text(title)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>{_text(title)}</h1>", *toc]
    if claims:
        parts.append(claims)
    if found.explanations:
        parts.append(f'<h2 id="summary">Summary</h2>{_summary_table(found.explanations)}')
        for i, (model, items) in enumerate(models.items(), 1):
            parts.append(f'<h2 id="model-{i}">{_text(model or "unknown model")}: image x method</h2>')
            parts.append(_grid(items, base))
    if found.evaluations:
        parts.append(f'<h2 id="evaluations">Evaluations ({len(found.evaluations)})</h2><div class="grid">')
        parts += [_evaluation_card(e, base) for e in found.evaluations]
        parts.append("</div>")
    if found.explanations:
        parts.append(f'<h2 id="explanations">Explanations ({len(found.explanations)})</h2><div class="grid">')
        parts += [_explanation_card(e, base) for e in found.explanations]
        parts.append("</div>")
    if found.unreadable:
        names = "".join(f"<li>{_text(os.path.relpath(p, base))}</li>"
                        for p in sorted(found.unreadable, key=lambda p: os.fsencode(str(p))))
        parts.append(f"<details><summary>{len(found.unreadable)} files not shown (unreadable, not regular files, "
                     f"or not clearsight results)</summary><ul class='file'>{names}</ul></details>")
    parts.append("</body></html>")
    from ..explanation import atomic_write

    out.parent.mkdir(parents=True, exist_ok=True)
    page = "\n".join(parts).encode("utf-8")
    atomic_write(out, lambda f: f.write(page))
    return out
