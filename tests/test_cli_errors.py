"""Every user mistake on the command line is one line ``clearsight: error: ...`` and exit status 2: never a
traceback, never a hang, never a silent success. One test per class of mistake; property-based where the
input space is large (option values, CSV bytes, JSON shapes, targets)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import struct
import zlib
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearsight.cli import main
from clearsight.cli.common import integer, number
from clearsight.errors import ClearsightError

from .conftest import MODELS, SAMPLES

PHOTO = SAMPLES / "n01440764_tench.JPEG"
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own mistakes
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, needle=""):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("clearsight: error: "), err
    assert "Traceback" not in err and needle in lines[0], err


@contextmanager
def no_hang(seconds=60):
    """Fail (instead of hanging the suite) when the block waits on a pipe."""
    def alarm(*_):
        raise TimeoutError("hung")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def claiming_png(path, width=20000, height=20000):
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * (width * 3 + 1) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


# ---------------------------------------------------------------------------------------- option values
@given(text=st.one_of(st.text(max_size=12), st.integers().map(str), st.floats().map(repr)))
@settings(max_examples=300, deadline=None)
def test_option_values_are_in_range_or_refused(text):
    """Any text given to a numeric option parses to a finite value in range, or is refused (never NaN, inf,
    overflow or a silently changed value)."""
    for parse, low, high in ((number(0, 10, low_open=True), 0, 10), (number(0, 1), 0, 1),
                             (integer(16, 2048), 16, 2048), (integer(0, 2**32 - 1), 0, 2**32 - 1)):
        try:
            value = parse(text)
        except argparse.ArgumentTypeError:
            continue
        assert value == value and low <= value <= high
        assert not (low == 0 and parse.__name__ == "number" and value == 0 and high == 10)


@pytest.mark.parametrize("argv, needle", [
    (["--seed", str(2**64)], "--seed"),
    (["--size", "-1"], "--size"),
    (["--size", "100000"], "--size"),
    (["--size", "0"], "--size"),
    (["--lr", "1e300", "--method", "pixel-rde"], "--lr"),
    (["--lr", "nan", "--method", "pixel-rde"], "--lr"),
    (["--tau", "inf", "--method", "moxi"], "--tau"),
    (["--dpi", "0"], "--dpi"),
    (["--format", "gif"], "--format"),
])
def test_explain_option_values_refused_in_one_line(capsys, tmp_path, argv, needle):
    code, _, err = run(capsys, "explain", PHOTO, "--out", tmp_path, *argv)
    assert_one_line_error(code, err, needle)


@pytest.mark.parametrize("argv, needle", [
    (["--curve", "adversarial", "--epsilon", "nan"], "--epsilon"),
    (["--limit", "-1"], "--limit"),
    (["--limit", "0"], "--limit"),
    (["--absence", "fill:nan", "--methods", "gradcam"], "fill"),
    (["--absence", "fill:inf", "--methods", "gradcam"], "fill"),
    (["--methods", ""], "--methods"),
    (["--methods", "gradcam,gradcam"], "more than once"),
    (["--methods", "gradcam", "--lambda", "5"], "--lambda"),
    (["--methods", "gradcam", "--rounds", "5"], "--rounds"),
    (["--methods", "gradcam", "--epsilon", "0.5"], "--epsilon"),
    (["--methods", "gradcam", "--severity", "3"], "--severity"),
    (["--curve", "lambda-sweep", "--lambda", "3"], "--lambdas"),
])
def test_evaluate_refuses_options_that_would_be_ignored_or_poison_the_curves(capsys, tmp_path, argv, needle):
    code, _, err = run(capsys, "evaluate", "--images", SAMPLES, "--out", tmp_path, *argv)
    assert_one_line_error(code, err, needle)


@pytest.mark.parametrize("argv, needle", [
    (["--method", "gradcam", "--plot-loss"], "--plot-loss"),
    (["--method", "pixel-rde", "--foreground-mask", PHOTO], "--init foreground"),
    (["--method", "moxi", "--mode", "deletion", "--tau", "0.5"], "--tau"),
    (["--device", "bogus"], "device"),
    (["--device", "mps"], "mps"),
])
def test_explain_refuses_options_that_would_be_ignored(capsys, tmp_path, argv, needle):
    code, _, err = run(capsys, "explain", PHOTO, "--out", tmp_path, *argv)
    assert_one_line_error(code, err, needle)


def test_missing_cuda_is_one_line(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = run(capsys, "explain", PHOTO, "--out", tmp_path, "--device", "cuda")
    assert_one_line_error(code, err, "CUDA")


# ---------------------------------------------------------------------------------------- files
@pytest.mark.parametrize("kind", ["file", "too-long", "under-a-file"])
def test_unusable_out_is_refused_before_any_work(capsys, tmp_path, kind):
    existing = tmp_path / "afile"
    existing.write_text("x")
    out = {"file": existing, "too-long": tmp_path / ("a" * 300), "under-a-file": existing / "sub"}[kind]
    code, _, err = run(capsys, "explain", PHOTO, "--out", out)
    assert_one_line_error(code, err, "--out")
    assert existing.read_text() == "x"


def test_fifo_is_refused_never_opened(capsys, tmp_path):
    """Opening a named pipe waits for a writer forever: as an image, a mask, a result or labels it is refused."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with no_hang():
        code, _, err = run(capsys, "explain", fifo, "--out", tmp_path / "o")
        assert_one_line_error(code, err, "not a regular file")
        code, _, err = run(capsys, "explain", PHOTO, "--method", "pixel-rde", "--init", "foreground",
                           "--foreground-mask", fifo, "--out", tmp_path / "o")
        assert_one_line_error(code, err, "not a regular file")
        code, _, err = run(capsys, "compare", fifo, "--out", tmp_path / "c.png")
        assert_one_line_error(code, err, "not a regular file")
        code, _, err = run(capsys, "evaluate", "--images", SAMPLES, "--labels", fifo, "--methods", "gradcam",
                           "--out", tmp_path / "e")
        assert_one_line_error(code, err, "not a regular file")


def test_folder_as_image_says_folder(capsys, tmp_path):
    code, _, err = run(capsys, "explain", tmp_path, "--out", tmp_path / "o")
    assert_one_line_error(code, err, "is a folder")


def test_decompression_bombs_are_refused_as_images_and_masks(tmp_path):
    from clearsight.errors import ImageError
    from clearsight.io import load_image
    from clearsight.methods.foreground import load_mask

    bomb = claiming_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(bomb)
    with pytest.raises(ClearsightError):
        load_mask(bomb, (224, 224))


@given(body=st.binary(max_size=300))
@FAST
def test_labels_csv_bytes_load_or_are_refused(tmp_path, body):
    """Any bytes as a labels file: a mapping of file names to class indices, or one ClearsightError."""
    from clearsight.evaluation import read_labels

    path = tmp_path / "labels.csv"
    path.write_bytes(b"file,class_index\n" + body)
    try:
        labels = read_labels(path)
    except ClearsightError as err:
        assert "\n" not in str(err)
        return
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in labels.items())


@pytest.mark.parametrize("data, ok", [
    ("\ufefffile,class_index\na.jpg,3\n".encode(), True),  # Excel's UTF-8 with a byte-order mark
    ("file,class_index\ncafé.jpg,3\n".encode("latin-1"), False),
    ("file,class_index\na.jpg,3\n".encode("utf-16"), False),
    (b"file,class_index\na.jpg\n", False),  # a short row
    (b"file,class_index\na.jpg,\xc2\xb2\n", False),  # a superscript two
    (b"file,class_index\na.jpg,--5\n", False),
    (b"\x00\x01\x02binary", False),
])
def test_labels_encodings_and_rows(tmp_path, data, ok):
    from clearsight.evaluation import read_labels

    path = tmp_path / "labels.csv"
    path.write_bytes(data)
    if ok:
        assert read_labels(path) == {"a.jpg": 3}
    else:
        with pytest.raises(ClearsightError):
            read_labels(path)


json_values = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=20)
VALID_RD = {"figure": "keep", "images": ["a.jpg", "b.jpg"], "targets": [0, 1], "skipped": [], "seconds": {"m": 1},
            "settings": {"model": "x"}, "curves": {"m": [[0.0, 0.5, 1.0], [0.0, 0.25, 1.0]]}}


@given(key=st.sampled_from(sorted(VALID_RD)), value=json_values)
@FAST
def test_compare_on_any_json_shape_is_a_figure_or_one_error(tmp_path, key, value):
    """A rate-distortion result with any one entry replaced by any JSON value loads (and then its curves are
    usable) or is refused as not a result."""
    import numpy as np

    from clearsight.evaluation.rate_distortion import DistortionResults

    path = tmp_path / "rd-keep.json"
    path.write_text(json.dumps({**VALID_RD, key: value}))
    try:
        loaded = DistortionResults.load(path)
    except ClearsightError:
        return
    for m in loaded.methods:
        assert loaded.mean(m).shape == (3,) and np.isfinite(loaded.areas()[m]) in (True, False)


def test_compare_unknown_out_suffix_and_printed_path(capsys, tmp_path):
    path = tmp_path / "rd-keep.json"
    path.write_text(json.dumps(VALID_RD))
    code, _, err = run(capsys, "compare", path, "--out", tmp_path / "c.txt")
    assert_one_line_error(code, err, "suffix")
    code, out, _ = run(capsys, "compare", path, "--out", tmp_path / "x" / "c")
    assert code == 0 and out.strip() == f"figure: {tmp_path / 'x' / 'c.png'}"
    assert (tmp_path / "x" / "c.png").is_file()


@pytest.mark.parametrize("kind", ["object", "int-keys", "folder", "garbage"])
def test_bad_weights_are_one_line_without_torch_advice(capsys, tmp_path, kind):
    import torch

    path = tmp_path / "w.pt"
    if kind == "object":
        torch.save({"x": argparse.Namespace(a=1)}, path)  # not loadable with weights_only
    elif kind == "int-keys":
        torch.save({1: torch.zeros(1)}, path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"not a checkpoint")
    code, _, err = run(capsys, "explain", PHOTO, "--model", "torchvision:mobilenet_v2", "--weights", path,
                       "--out", tmp_path / "o")
    assert_one_line_error(code, err)
    assert "weights_only" not in err


@given(text=st.text(max_size=6))
@FAST
def test_any_target_text_is_a_class_or_one_error(effnet, text):
    """``--target`` (and a labels CSV's class) as any text: a valid class index, or one TargetError (``²`` is a
    digit to ``str.isdigit`` but no number, ``--5`` no class)."""
    from clearsight.errors import TargetError

    try:
        value = effnet.check_target(text)
    except TargetError as err:
        assert "\n" not in str(err)
        return
    assert 0 <= value < effnet.num_classes


# ---------------------------------------------------------------------------------------- writes
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_atomic_write_gives_the_umask_mode(tmp_path, umask):
    from clearsight.explanation import atomic_write

    before = os.umask(umask)
    try:
        path = tmp_path / "f.json"
        atomic_write(path, lambda f: f.write(b"{}"))
    finally:
        os.umask(before)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_no_source_file_writes_in_place():
    """Every file clearsight keeps goes through atomic_write: no ``open(..., "w")`` or ``write_text`` in src."""
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "clearsight"
    pattern = re.compile(r"(?<!fd)open\([^)]*['\"][wa]b?['\"]|\.write_text\(|\.write_bytes\(")
    offenders = [f"{p.relative_to(src)}:{i}" for p in src.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


@pytest.mark.slow
def test_interrupted_figure_leaves_no_finished_record_and_names_differ_by_model(capsys, tmp_path, monkeypatch):
    """A kill while the figure is written leaves no JSON record, so the rerun redoes the image; two models'
    results and both figure formats sit side by side; the resume check looks for the format asked."""
    import clearsight.viz as viz

    real = viz.save_figure

    def killed(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(viz, "save_figure", killed)
    code, _, _ = run(capsys, "explain", PHOTO, "--out", tmp_path)
    assert code == 130 and not list(tmp_path.glob("*.json"))
    monkeypatch.setattr(viz, "save_figure", real)
    code, out, _ = run(capsys, "explain", PHOTO, "--out", tmp_path)
    assert code == 0 and "predicted tench" in out
    stem = tmp_path / "n01440764_tench_gradcam_efficientnet_lite0"
    assert {p.name for p in tmp_path.glob("n01440764_tench_*")} == {
        stem.name + s for s in (".png", ".npz", ".json")}
    record, figure = (stem.with_name(stem.name + s) for s in (".json", ".png"))
    assert record.stat().st_mtime_ns >= figure.stat().st_mtime_ns  # the record last
    code, out, _ = run(capsys, "explain", PHOTO, "--out", tmp_path, "--format", "svg")
    assert code == 0 and "predicted tench" in out and stem.with_name(stem.name + ".svg").is_file()
    code, out, _ = run(capsys, "explain", PHOTO, "--out", tmp_path, "--format", "svg")
    assert "result exists" in out
    code, out, _ = run(capsys, "explain", PHOTO, "--out", tmp_path, "--model", "torchvision:mobilenet_v2",
                       "--weights", MODELS / "mobilenet_v2.pth")
    assert code == 0 and "made differently" not in out
    assert (tmp_path / "n01440764_tench_gradcam_mobilenet_v2.png").is_file()


def test_moxi_and_shapley_show_progress_on_stderr(capsys, effnet, one_thread):
    """The patch games report their steps and rounds when asked (the CLI asks), on stderr only."""
    from clearsight.methods import build_explainer

    image = effnet.prepare(PHOTO)
    build_explainer("moxi", {"patch_size": 112}).explain(effnet, image, progress=True)
    out, err = capsys.readouterr()
    assert "step" in err and out == ""
    build_explainer("shapley", {"patch_size": 112, "rounds": 3}).explain(effnet, image, progress=True)
    out, err = capsys.readouterr()
    assert "round" in err and out == ""
    build_explainer("shapley", {"patch_size": 112, "rounds": 3}).explain(effnet, image)
    assert capsys.readouterr().err == ""
