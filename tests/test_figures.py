"""Figures: colour bars and maps that fit the values, titles that say what is shown (model, class, probability,
settings, the number of MoXI patches really used), MoXI's patch grid kept, saving in PNG / SVG / PDF at a
chosen dpi, atomically and without following links, and the user's matplotlib backend left alone."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb
from PIL import Image

from clearsight.errors import ClearsightError
from clearsight.explanation import Explanation
from clearsight.methods import build_explainer
from clearsight.viz import FigureFormatError, explanation_figure, save_figure
from clearsight.viz.curves import save_curve_figure
from clearsight.viz.heatmap import order_figure, order_title, step_grid
from clearsight.viz.overlay import DIVERGING_CMAP, SEQUENTIAL_CMAP, saliency_norm

from .conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[1]


def _photo() -> torch.Tensor:
    return torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))


def _explanation(saliency: np.ndarray, **kw) -> Explanation:
    return Explanation(method="shapley", target=1, target_name="goldfish", model="timm:deit", score=0.25,
                       saliency=saliency.astype(np.float32), settings={"rounds": 8, "patch_size": 16, **kw})


def _colorbars(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


# ------------------------------------------------------------------------------------------------ colour maps
def test_signed_maps_get_a_diverging_map_centred_on_zero_and_one_signed_maps_a_sequential_one():
    signed = np.array([[-0.2, 0.0], [0.5, 0.1]])
    cmap, norm = saliency_norm(signed)
    assert cmap == DIVERGING_CMAP and norm.vmin == -norm.vmax == -0.5 and norm(0.0) == 0.5  # 0: neutral white
    cmap, norm = saliency_norm(np.array([[0.0, 2.0]]))
    assert cmap == SEQUENTIAL_CMAP and (norm.vmin, norm.vmax) == (0.0, 2.0)
    cmap, norm = saliency_norm(np.zeros((3, 3)))  # a constant map draws without dividing by zero
    assert cmap == SEQUENTIAL_CMAP and norm.vmax > norm.vmin


def test_explanation_figure_has_a_colour_bar_on_the_values_and_a_title_naming_model_class_and_settings():
    sal = np.linspace(-1, 3, 64 * 64).reshape(64, 64)
    fig = explanation_figure(_photo(), _explanation(sal), predicted=("tench", 0.6))
    bars = _colorbars(fig)
    assert len(bars) == 1
    mappable = fig.axes[1].images[-1]
    assert mappable.get_cmap().name == DIVERGING_CMAP and mappable.norm.vmin == -3 and mappable.norm.vmax == 3
    assert "red: for the class" in bars[0].get_ylabel()
    title = fig.get_suptitle()
    assert "shapley on timm:deit: goldfish (p=25.0%)" in title and "rounds 8" in title and "patch size 16" in title
    assert fig.axes[0].get_title() == "predicted: tench (60.0%)"
    cartoon = _explanation(sal, mode="zero", wave="db3")  # CartoonX's "mode" is the wavelet padding, not a direction
    title = explanation_figure(_photo(), cartoon).get_suptitle()
    assert title.startswith("shapley on timm:deit") and "mode zero" in title


# ------------------------------------------------------------------------------------------------ MoXI
def _moxi(order: list[int], highlighted: tuple[int, int], stop: int | None, grid=(4, 8), mode="deletion"):
    n = len(order)
    return Explanation(method="moxi", target=1, target_name="goldfish", model="efficientnet_lite0", score=0.03,
                       saliency=np.zeros((64, 128), np.float32), order=np.array(order),
                       order_scores=np.linspace(1, -1, n),
                       arrays={"probabilities": np.linspace(0.1, 0.4, n),
                               "phase": np.array([1] * highlighted[0] + [2] * (n - highlighted[0]), np.int8)},
                       settings={"mode": mode, "score": "log-odds", "grid": list(grid), "stop_step": stop,
                                 "success": stop is not None, "highlighted": list(highlighted)})


def test_moxi_title_counts_every_patch_deleted_not_only_the_highlighted_ones():
    # the user's case: class-discriminative deletion, 21 patches to make goldfish the prediction, 1 more to flip it
    ex = _moxi(list(range(22)), (21, 22), 22)
    title = order_title(ex)
    assert title.startswith("22 patches deleted: 21 to make goldfish the prediction,\nthen 1 (coloured)")
    assert "p(goldfish) after: 40.0%" in title
    ins = _moxi([5, 3, 7], (0, 3), 3, mode="insertion")
    assert order_title(ins).startswith("3 patches inserted until goldfish predicted")
    failed = _moxi(list(range(32)), (32, 32), None)
    assert "32 patches deleted without making goldfish the prediction" in order_title(failed)


def test_moxi_heatmap_keeps_the_patch_grid_nearest_neighbour_with_steps_and_a_labelled_legend():
    ex = _moxi([9, 2, 30, 4], (1, 3), 3)
    step, before = step_grid(ex)
    assert step.shape == (4, 8) and step.flat[2] == 1 and step.flat[30] == 2 and np.isnan(step.flat[4])
    assert before.flat[9] and before.sum() == 1
    fig = order_figure(torch.rand(3, 64, 128), ex, predicted=("tench", 0.9))
    heat = fig.axes[1].images[1]
    assert heat.get_array().shape == (4, 8) and heat.get_interpolation() == "nearest"  # patch by patch
    lines = [c for c in fig.axes[1].collections if isinstance(c, LineCollection)]
    assert sum(len(c.get_segments()) for c in lines) == (8 - 1) + (4 - 1)  # the patch grid is drawn
    assert _colorbars(fig) and "step" in _colorbars(fig)[0].get_ylabel()
    score_ax = fig.axes[2]
    labels = [t.get_text() for t in score_ax.get_legend().get_texts()]
    assert "coloured patches (steps 2-3)" in labels and "p(goldfish)" in labels
    assert score_ax.get_ylabel() == "log-odds of goldfish" and score_ax.get_xlabel() == "patches deleted (step)"
    assert "moxi deletion on efficientnet_lite0: goldfish (p=3.0%)" in fig.get_suptitle()


@pytest.mark.slow
def test_real_class_discriminative_deletion_figure_reports_what_moxi_did(effnet, one_thread):
    image = effnet.prepare(SAMPLES / "n01440764_tench.JPEG")
    second = int(effnet.logits(image[None].to(effnet.device))[0].argsort(descending=True)[1])
    explainer = build_explainer("moxi", {"mode": "deletion", "patch_size": 56})
    ex = explainer.explain(effnet, image, second)
    lo, hi = ex.settings["highlighted"]
    assert int((ex.arrays["phase"] == 1).sum()) == lo  # phase 1 patches are those before the coloured ones
    done = ex.settings["stop_step"] if ex.settings["stop_step"] is not None else len(ex.order)
    fig = explainer.figure(image, ex, ("tench", 0.87))
    title = fig.axes[1].get_title()
    assert title.startswith(f"{done} patches deleted")
    assert f"{lo} to make {ex.target_name} the prediction" in title or "without making" in title
    assert f"{ex.target_name} (p={ex.score:.1%})" in fig.get_suptitle() and "patch size 56" in fig.get_suptitle()
    assert fig.axes[1].images[1].get_array().shape == (4, 4)


@pytest.mark.slow
def test_real_shapley_figure_uses_a_diverging_map_when_values_have_both_signs(effnet, one_thread):
    image = effnet.prepare(SAMPLES / "n01440764_tench.JPEG")
    explainer = build_explainer("shapley", {"rounds": 2, "patch_size": 56, "seed": 0})
    ex = explainer.explain(effnet, image)
    fig = explainer.figure(image, ex)
    heat = fig.axes[1].images[-1]
    if ex.saliency.min() < 0 < ex.saliency.max():
        assert heat.get_cmap().name == DIVERGING_CMAP and heat.norm.vmin == -heat.norm.vmax
        assert np.allclose(heat.get_cmap()(heat.norm(0.0))[:3], to_rgb("#f7f7f7"), atol=0.03)  # 0 is neutral
    else:
        assert heat.get_cmap().name == SEQUENTIAL_CMAP


# ------------------------------------------------------------------------------------------------ saving
MAGIC = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_save_figure_writes_the_format_of_the_suffix_or_of_the_format_argument(tmp_path, fmt):
    fig = explanation_figure(_photo(), _explanation(np.ones((64, 64))))
    by_suffix = save_figure(fig, tmp_path / f"a.{fmt}")
    assert by_suffix == tmp_path / f"a.{fmt}" and by_suffix.read_bytes().startswith(MAGIC[fmt])
    by_format = save_figure(fig, tmp_path / "b.png", format=fmt.upper())
    assert by_format == tmp_path / f"b.{fmt}" and by_format.read_bytes().startswith(MAGIC[fmt])
    assert save_figure(fig, tmp_path / "sub" / "c", format=fmt) == tmp_path / "sub" / f"c.{fmt}"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_save_figure_dpi_sets_the_png_resolution_and_bad_requests_are_user_errors(tmp_path):
    fig = explanation_figure(_photo(), _explanation(np.ones((64, 64))))
    small = Image.open(save_figure(fig, tmp_path / "small.png", dpi=50)).size
    large = Image.open(save_figure(fig, tmp_path / "large.png", dpi=200)).size
    assert large[0] == pytest.approx(4 * small[0], rel=0.05) and large[1] == pytest.approx(4 * small[1], rel=0.05)
    for bad in ({"format": "jpg"}, {"dpi": 0}, {"dpi": "high"}):
        with pytest.raises(FigureFormatError):
            save_figure(fig, tmp_path / "x.png", **bad)
    with pytest.raises(ClearsightError, match=r"\.png, \.svg, \.pdf"):
        save_figure(fig, tmp_path / "x.gif")
    path = save_curve_figure({"m": np.linspace(0, 1, 5)}, "insertion", tmp_path / "curve", dpi=72, format="svg")
    assert path == tmp_path / "curve.svg" and path.read_bytes().startswith(b"<?xml")


def test_save_figure_replaces_a_planted_link_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "out" / "figure.png"
    link.parent.mkdir()
    link.symlink_to(victim)
    save_figure(explanation_figure(_photo(), _explanation(np.ones((64, 64)))), link)
    assert victim.read_text() == "keep me"
    assert not link.is_symlink() and link.read_bytes().startswith(b"\x89PNG")


def test_save_figure_is_atomic_a_failed_save_keeps_the_old_file(tmp_path):
    target = tmp_path / "figure.png"
    target.write_bytes(b"old figure")
    fig = explanation_figure(_photo(), _explanation(np.ones((64, 64))))

    def broken(f, **_):
        f.write(b"half a fig")
        raise RuntimeError("disk full")

    fig.savefig = broken
    with pytest.raises(RuntimeError):
        save_figure(fig, target)
    assert target.read_bytes() == b"old figure" and [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_vector_output_is_deterministic(tmp_path):
    for fmt in ("svg", "pdf"):  # the same figure drawn twice gives the same bytes (no dates, no random ids)
        first = save_figure(explanation_figure(_photo(), _explanation(np.ones((64, 64)))), tmp_path / f"1.{fmt}")
        second = save_figure(explanation_figure(_photo(), _explanation(np.ones((64, 64)))), tmp_path / f"2.{fmt}")
        assert first.read_bytes() == second.read_bytes()


def test_importing_and_saving_leaves_the_users_matplotlib_backend_alone(tmp_path):
    script = f"""
import matplotlib
matplotlib.use("svg")
import numpy as np, torch
import clearsight.viz, clearsight.viz.curves, clearsight.viz.heatmap, clearsight.viz.rde, clearsight.viz.report
from clearsight.explanation import Explanation
from clearsight.viz import explanation_figure, save_figure
ex = Explanation(method="gradcam", target=0, saliency=np.ones((8, 8), np.float32))
save_figure(explanation_figure(torch.rand(3, 8, 8), ex), {str(tmp_path / 'f.png')!r})
clearsight.viz.curves.save_curve_figure({{"m": np.zeros(3)}}, "insertion", {str(tmp_path / 'c.pdf')!r})
print(matplotlib.get_backend(), "matplotlib.pyplot" in __import__("sys").modules)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": ""}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["svg", "False"]  # backend kept, pyplot never even imported
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "c.pdf").exists()


#: the one place pyplot may be used: ``Explanation.plot()`` without axes draws a new pyplot figure, which is what
#: a notebook user asks for (pyplot picks the user's backend; it never switches it)
PYPLOT_ALLOWED = {"explanation.py"}


def test_no_viz_module_selects_a_backend():
    for path in (ROOT / "src" / "clearsight").rglob("*.py"):
        text = path.read_text()
        assert "matplotlib.use(" not in text, path
        assert "import matplotlib.pyplot" not in text or path.name in PYPLOT_ALLOWED, path


def test_a_figure_reads_back_as_an_image_of_the_requested_size(tmp_path):
    png = save_figure(explanation_figure(_photo(), _explanation(np.ones((64, 64)))), tmp_path / "f.png", dpi=100)
    with Image.open(io.BytesIO(png.read_bytes())) as im:
        assert im.size[0] > 600  # a 9.5-inch figure at 100 dpi, trimmed to its content


def test_titles_count_in_the_right_number(tmp_path, monkeypatch):
    """A one-photo run's figure says "1 image", not "1 images" (the lambda sweep's title, through the helper
    every count in a title goes through)."""
    import clearsight.viz.curves as curves
    from clearsight.wording import counted

    titles = []
    monkeypatch.setattr(curves, "save_figure", lambda fig, path, **_: titles.append(fig._suptitle.get_text()))
    values = {"cartoonx": (np.ones(2), np.zeros(2))}
    for images in (1, 10):
        curves.save_lambda_sweep_figure([4.0, 8.0], values, values, tmp_path / "sweep.png", images=images)
    bars = " (mean, bars: std over images, cut at 0)"
    assert titles == ["lambda sweep, 1 image" + bars, "lambda sweep, 10 images" + bars]
    assert [counted(0, "photo"), counted(1, "patch", "patches"), counted(3, "patch", "patches")] == \
        ["0 photos", "1 patch", "3 patches"]


def test_lambda_sweep_bars_stay_at_or_above_zero(tmp_path, monkeypatch):
    """Distortion and non-sparsity are never negative: where the std over photos exceeds the mean (one collapsed
    mask among few photos) the bar stops at 0 instead of drawing impossible values; its upper half is the std."""
    import clearsight.viz.curves as curves

    figures = []
    monkeypatch.setattr(curves, "save_figure", lambda fig, path, **_: figures.append(fig))
    values = {"pixel-rde": (np.array([0.04, 0.27]), np.array([0.02, 0.29]))}
    curves.save_lambda_sweep_figure([4.0, 64.0], values, values, tmp_path / "sweep.png", images=8)
    for ax in figures[0].axes:
        bars = [seg for c in ax.collections for seg in c.get_segments()]
        lows = sorted(min(seg[:, 1]) for seg in bars)
        highs = sorted(max(seg[:, 1]) for seg in bars)
        assert lows == pytest.approx([0.0, 0.02])  # 0.27 - 0.29 cut at 0; 0.04 - 0.02 kept
        assert highs == pytest.approx([0.06, 0.56])
        assert ax.get_ylim()[0] == 0
