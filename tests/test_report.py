"""`clearsight report`: an HTML page over a results folder, with every user-controlled text escaped."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from clearsight.cli import main
from clearsight.errors import ClearsightError
from clearsight.evaluation import CurveResults
from clearsight.explanation import Explanation
from clearsight.viz.report import build_report

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
    for href in re.findall(r'(?:href|src)="([^"]+)"', text):  # every link points at a file that exists
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
