"""`clearsight report`: an HTML page over a results folder, with every user-controlled text escaped."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from clearsight.cli import main
from clearsight.errors import ClearsightError
from clearsight.evaluation import CurveResults
from clearsight.explanation import Explanation
from clearsight.viz.report import build_report

from .conftest import SAMPLES

HOSTILE = "<script>alert('x')</script>"


def _results_folder(root: Path) -> Path:
    folder = root / "results"
    stem = folder / "a&b <photo>_gradcam"
    Explanation(method="gradcam", target=3, saliency=np.zeros((4, 4), np.float32), model="timm:deit",
                target_name=HOSTILE, score=0.25, cost={"seconds": 1.5, "passes": 2},
                settings={"note": HOSTILE}).save(stem)
    Image.new("RGB", (8, 8)).save(stem.with_name(stem.name + ".png"))
    curves = CurveResults(curve="insertion", images=["p1", "p2"], labels=[1, 2], skipped=["p3"])
    for _ in range(2):
        curves.add(HOSTILE, np.linspace(0, 1, 5), np.array([0, 1, 1, 1, 1]), 1, 0.5)
    curves.save(folder)
    (folder / "runs").mkdir()
    (folder / "runs" / "settings.json").write_text('{"curve": "insertion"}')  # stored runs: not shown
    Image.new("RGB", (8, 8)).save(folder / "runs" / "settings.png")
    return folder


def test_report_shows_every_result_and_escapes_what_users_control(tmp_path):
    folder = _results_folder(tmp_path)
    page = build_report(folder)
    assert page == folder / "report.html"
    text = page.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text  # class, method and settings escaped
    assert "Explanations (1)" in text and "Evaluations (1)" in text
    assert "2 images, 1 skipped" in text
    assert "<th>probability</th><td>0.250</td>" in text and "<th>model passes</th><td>2</td>" in text
    assert "insertion_auc.csv" in text and "<th>auc_accuracy</th>" in text  # a small table is shown
    assert "runs/" not in text
    ids = set(re.findall(r'id="([^"]+)"', text))
    for href in re.findall(r'(?:href|src)="([^"]+)"', text):  # every link points at a file or anchor that exists
        if href.startswith("#"):
            assert href[1:] in ids, href
        else:
            assert (page.parent / unquote(href.replace("&amp;", "&"))).exists(), href


def test_report_elsewhere_links_back_into_the_folder(tmp_path):
    folder = _results_folder(tmp_path)
    page = build_report(folder, tmp_path / "pages" / "index.html", title="run <1>")
    text = page.read_text()
    assert "<title>run &lt;1&gt;</title>" in text
    links = re.findall(r'src="([^"]+)"', text)
    assert links and all(unquote(h.replace("&amp;", "&")).startswith("../results/") for h in links)
    assert all((page.parent / unquote(h.replace("&amp;", "&"))).exists() for h in links)


def test_report_refuses_folders_without_results(tmp_path, capsys):
    with pytest.raises(ClearsightError, match="no results folder"):
        build_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClearsightError, match="holds no clearsight results"):
        build_report(tmp_path / "empty")
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "holds no clearsight results" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- layout and navigation
def _explanation(folder: Path, photo: str, method: str, model: str, mode: str | None = None,
                 figure: bool = True) -> None:
    settings = {"image": f"/photos/{photo}.jpg", **({"mode": mode} if mode else {})}
    stem = folder / model.replace(":", "-") / f"{photo}_{method}{'_' + mode if mode else ''}"
    Explanation(method=method, target=1, saliency=np.zeros((4, 4), np.float32), model=model,
                target_name="goldfish", score=0.5, cost={"seconds": 2.0, "passes": 10},
                settings=settings).save(stem)
    if figure:
        Image.new("RGB", (40, 20), (200, 30, 30)).save(stem.with_name(stem.name + ".png"))


def _grid_folder(root: Path, reverse: bool = False) -> Path:
    folder = root / "grid"
    jobs = [(photo, method, model, mode) for model in ("timm:deit", "efficientnet_lite0")
            for photo in ("tench", "robin") for method, mode in
            (("gradcam", None), ("moxi", "insertion"), ("moxi", "deletion"))]
    for job in reversed(jobs) if reverse else jobs:
        _explanation(folder, *job)
    return folder


def test_report_has_a_grid_per_model_a_summary_navigation_and_distinct_titles(tmp_path):
    page = build_report(_grid_folder(tmp_path))
    text = page.read_text()
    # a table of contents whose every anchor exists
    nav = text[text.index("<nav>"):text.index("</nav>")]
    ids = set(re.findall(r'id="([^"]+)"', text))
    assert {a for a in re.findall(r'href="#([^"]+)"', nav)} <= ids
    assert "efficientnet_lite0: image x method grid (6)" in nav and "timm:deit: image x method grid (6)" in nav
    # one grid per model: rows photos (sorted), columns methods in the registry's order, modes apart
    grids = re.findall(r'<table class="grid-table">(.*?)</table>', text, re.S)
    assert len(grids) == 2
    for grid in grids:
        rows = re.findall(r"<tr>(.*?)</tr>", grid, re.S)
        assert re.findall(r"<th>([^<]*)</th>", rows[0]) == ["photo", "gradcam", "moxi (deletion)",
                                                             "moxi (insertion)"]
        assert [re.match(r"<th>([^<]*)</th>", r).group(1) for r in rows[1:]] == ["robin", "tench"]
        assert all(r.count('class="thumb"') == 3 for r in rows[1:])  # every cell holds its thumbnail
    # the summary: one row per result; cards titled photo + method (+ mode) + model, all different
    summary = re.search(r'<table class="summary">(.*?)</table>', text, re.S).group(1)
    assert summary.count("<tr>") == 1 + 12
    assert "<td>moxi</td><td>timm:deit</td><td>deletion</td><td>goldfish (1)</td><td>0.500</td><td>2.00</td>" \
        "<td>10</td>" in summary
    titles = re.findall(r'<div class="card" id="[^"]+"><h3>([^<]*)</h3>', text)
    assert len(titles) == 12 and len(set(titles)) == 12
    assert "tench · moxi (deletion) · timm:deit" in titles


def test_report_order_does_not_depend_on_the_order_files_were_written(tmp_path):
    first = build_report(_grid_folder(tmp_path / "a"), title="t").read_bytes()
    second = build_report(_grid_folder(tmp_path / "b", reverse=True), title="t").read_bytes()
    assert first == second


# ------------------------------------------------------------------------------------------------ robustness
def _with_alarm(seconds: int, call):
    """Run ``call`` but fail (rather than hang the suite) if it blocks, e.g. on opening a named pipe."""
    def timeout(*_):
        raise TimeoutError("build_report blocked")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        return call()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_report_survives_hostile_files_without_crashing_or_blocking(tmp_path):
    folder = _results_folder(tmp_path)
    base = {"format": "clearsight.explanation/1", "method": "gradcam", "target": 1, "settings": {}}
    (folder / "score_gradcam.json").write_text(json.dumps({**base, "score": "abc", "cost": 5}))
    (folder / "inf_gradcam.json").write_text('{"format": "clearsight.explanation/1", "method": "x", '
                                              '"score": Infinity, "cost": {"seconds": NaN, "passes": "2"}}')
    (folder / "list.json").write_text("[1, 2]")
    (folder / "half.json").write_text('{"format": ')
    (folder / "insertion_binary.csv").write_bytes(bytes(range(256)) * 4)
    (folder / "insertion_wide.csv").write_text("a,b\n" + "x" * (128 * 1024) + ",1\n")  # at csv's field limit
    (folder / "insertion_wider.csv").write_text("a,b\n" + "y" * (200 * 1024) + ",1\n")  # over it
    odd = os.fsencode(str(folder)) + b"/caf\xe9\xff_gradcam"
    Explanation(method="gradcam", target=2, saliency=np.zeros((4, 4), np.float32), model="m").save(
        Path(os.fsdecode(odd)))
    Image.new("RGB", (8, 8)).save(os.fsdecode(odd + b".png"))
    os.mkfifo(folder / "pipe.json")
    os.mkfifo(folder / "insertion_pipe.csv")
    page = _with_alarm(20, lambda: build_report(folder))
    raw = page.read_bytes()
    text = raw.decode("utf-8")  # valid UTF-8 whatever the file names
    assert "insertion_binary.csv</a> (unreadable)" in text and "insertion_wider.csv</a> (unreadable)" in text
    assert "x" * 121 not in text and "x" * 120 + "…" in text  # a huge cell is cut, not pasted whole
    assert "caf\ufffd\ufffd" in text and "%E9%FF_gradcam.png" in text  # shown replaced, linked by its bytes
    assert "pipe.json" in text and "half.json" in text  # listed as not shown, never opened
    cards = {re.search(r">([^<>]+\.json)</a></p></div>$", c).group(1): c
             for c in re.findall(r'<div class="card" id=.*?</p></div>', text)}
    assert "probability" not in cards["score_gradcam.json"]  # "abc" is no probability, 5 no cost
    assert "seconds" not in cards["score_gradcam.json"]
    for shown in ("probability", "seconds", "model passes"):  # Infinity, NaN and "2" are not shown as numbers
        assert f"<th>{shown}</th>" not in cards["inf_gradcam.json"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=st.dictionaries(
    st.sampled_from(["method", "target", "target_name", "model", "score", "cost", "settings", "format"]),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                              max_size=3), max_leaves=8)))
def test_report_never_fails_on_any_json_shape(tmp_path_factory, meta):
    folder = tmp_path_factory.mktemp("shapes")
    meta = {**meta, "format": "clearsight.explanation/1"}
    (folder / "x_gradcam.json").write_text(json.dumps(meta))
    Image.new("RGB", (4, 4)).save(folder / "x_gradcam.png")
    text = build_report(folder).read_bytes().decode("utf-8")
    assert "<script" not in text.lower().replace("&lt;script", "")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_report_never_fails_on_any_csv_bytes(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("csv")
    (folder / "insertion.json").write_text('{"curve": "insertion"}')
    (folder / "insertion_auc.csv").write_bytes(data)
    text = build_report(folder).read_bytes().decode("utf-8")
    assert "insertion_auc.csv" in text and "<script" not in text.lower().replace("&lt;script", "")


# ------------------------------------------------------------------------------------------------ in a browser
@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless Chromium; installed with apt-get (as CI runs, as root) when neither name is on PATH."""
    def found() -> str | None:
        return shutil.which("chromium") or shutil.which("chromium-browser")

    if found() is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium",
                       shell=True, check=False, capture_output=True, timeout=900)
    if found() is None:
        pytest.skip("no chromium and no way to install it (apt-get as root)")
    return found()


_IMAGE_CHECK = """<script>window.addEventListener("load", () => {
  const imgs = [...document.images];
  document.body.dataset.images = imgs.length;
  document.body.dataset.broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt).join("|");
});</script>"""


def _browse(chromium: str, page: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--allow-file-access-from-files", "--virtual-time-budget=10000", *flags,
                           page.as_uri()], capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_report_renders_in_a_browser_with_every_image_loaded(tmp_path, chromium):
    from clearsight.viz import explanation_figure, save_figure

    folder = _grid_folder(tmp_path)
    for png in sorted(folder.rglob("*.png"))[:4]:  # a few real figures among the small placeholders
        ex = Explanation(method="gradcam", target=1, saliency=np.outer(np.arange(32), np.arange(32)).astype("f4"),
                         model="timm:deit", target_name="goldfish", score=0.5)
        save_figure(explanation_figure(np.asarray(Image.open(SAMPLES / "n01440764_tench.JPEG").convert("RGB")
                                                  .resize((32, 32))) / 255.0, ex), png, dpi=60)
    _results_folder(folder)
    page = build_report(folder)
    check = page.with_name("check.html")  # the page plus a script that lists images the browser could not load
    check.write_text(page.read_text().replace("</body>", _IMAGE_CHECK + "</body>"))
    dom = _browse(chromium, check, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    images = int(re.search(r'data-images="(\d+)"', dom.stdout).group(1))
    assert images == page.read_text().count("<img ") and images >= 2 * 12  # thumbnail + card figure each
    assert 'data-broken=""' in dom.stdout, re.search(r'data-broken="([^"]*)"', dom.stdout).group(1)
    shot = tmp_path / "report.png"
    run = _browse(chromium, page, f"--screenshot={shot}", "--window-size=1400,1600")
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert pixels.shape[:2] == (1600, 1400)
    assert pixels.std() > 20 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # text and figures drawn


def test_report_columns_use_moxis_direction_or_the_preset_never_cartoonxs_wavelet_mode(tmp_path):
    folder = tmp_path / "r"
    Explanation(method="cartoonx", target=1, saliency=np.zeros((4, 4), np.float32), model="m",
                settings={"mode": "zero", "preset": "fast", "image": "cat.jpg"}).save(folder / "cat_cartoonx")
    text = build_report(folder).read_text()
    assert "cat · cartoonx (fast) · m" in text and "cartoonx (zero)" not in text


def _verdicts(section: str) -> dict[str, str]:
    """Claim id -> the verdict the page shows for it."""
    return dict(re.findall(r'<td><b>([^<]+)</b>:.*?<span class="verdict [^"]+">([^<]+)</span>', section))


def test_a_reproduce_folder_shows_the_claims_beside_the_papers_as_results_md_does(tmp_path):
    """`clearsight report OUT` on a reproduce output folder puts every claim of each paper reproduced there
    beside the paper's number, with the verdicts results.md gives (the same rows, from the same summaries);
    a summary it cannot read is listed as unreadable and only its experiment's claims turn "not measured"."""
    from clearsight.experiments.claims import claims_of, claims_table, write_summary

    from .test_claims import paper_world

    out = tmp_path / "reproduce"
    world = paper_world()["moxi"]  # every claim holds in it, but MoXI's ViT insertion curve, flat here
    curves = world["curves"][0]["insertion"]["accuracy"]
    curves["moxi"] = [0.0] * len(curves["moxi"])
    commands = {e: f"clearsight reproduce moxi --only {e} {HOSTILE}" for e in world}
    for experiment, summary in world.items():  # a list: one run per model, as the curves experiment's
        signed = ([{**r, "command": commands[experiment]} for r in summary] if isinstance(summary, list)
                  else {**summary, "command": commands[experiment]})
        folder = out / "moxi" / experiment / ("" if experiment == "set-sum" else "deit-0123abcd")  # per model
        folder.mkdir(parents=True)
        write_summary(folder / "summary.json", signed)
    Image.new("RGB", (8, 8)).save(out / "moxi" / "heatmaps" / "deit-0123abcd" / "insertion.png")  # a figure
    expected = {r.claim.id: r.verdict for r in claims_table("moxi", world, commands)}
    assert {"yes", "no"} <= set(expected.values())  # the world tests both outcomes

    text = build_report(out).read_text()  # summaries alone, no figure: still a page
    assert '<a href="#claims">Claims beside the papers</a>' in text and 'id="claims"' in text
    assert _verdicts(text) == expected and len(expected) == len(claims_of("moxi"))
    assert "<script>" not in text and "--only curves &lt;script&gt;" in text  # the command, escaped, once
    assert text.count("--only curves &lt;script&gt;") == 1
    assert "files not shown" not in text  # the summaries are the claims' input, not unreadable files
    heatmaps = text.split("<h4>heatmaps</h4>", 1)[1].split("<h4>", 1)[0]  # its table, then its figures
    assert heatmaps.index("</table>") < heatmaps.index(
        '<img class="figure" src="moxi/heatmaps/deit-0123abcd/insertion.png"')

    (out / "moxi" / "curves" / "deit-0123abcd" / "summary.json").write_text("{broken")
    text = build_report(out).read_text()
    shown = _verdicts(text)
    curves = {c.id for c in claims_of("moxi") if c.experiment == "curves"}
    assert all(shown[c] == "not measured" for c in curves)
    assert {c: v for c, v in shown.items() if c not in curves} == {c: v for c, v in expected.items() if c not in curves}
    assert "1 files not shown" in text and "moxi/curves/deit-0123abcd/summary.json" in text

    odd = {**world["runtime"], "figures": 5, "deviations": {"not": "a list"}, "model": ["a", "list"]}
    write_summary(out / "moxi" / "runtime" / "deit-0123abcd" / "summary.json", odd)  # foreign shapes: no crash
    assert _verdicts(build_report(out).read_text()) == shown


def test_a_folder_without_reproductions_has_no_claims_section(tmp_path):
    text = build_report(_results_folder(tmp_path)).read_text()
    assert "Claims beside the papers" not in text and 'href="#claims"' not in text
