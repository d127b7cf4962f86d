"""``clearsight reproduce``: each experiment of both papers, at the smallest size that still runs every code
path (DeiT-Tiny with 4 patches of 112 px, 2 Shapley rounds, 3 RDE steps), writes its figure, its summary and
its claim rows; a second run computes nothing; results.md regenerates from the stored summaries alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from clearsight.cli import main
from clearsight.evaluation import read_labels
from clearsight.evaluation.driver import ModelSpec
from clearsight.experiments.claims import EXPERIMENTS
from clearsight.experiments.claims.table import md_text
from clearsight.experiments.reproduce import PAPERS, Reproduction, reproduce

from .conftest import DEIT_CLI, MODELS, SAMPLES

#: the SetSumNet trained with `clearsight set-sum`'s defaults, kept by tests/test_set_sum.py
TRAINED_SET_SUM = Path(__file__).parent / "fixtures" / "set_sum" / "set_sum_model.pt"

pytestmark = pytest.mark.slow
PHOTOS = ("n01440764_tench.JPEG", "n01496331_electric_ray.JPEG")
SMALL = {"shapley_rounds": 2, "shapley_sampling": "permutation", "patch_size": 112, "steps": 3,
         "corruptions": ["fog"], "heatmap_images": 1, "lambdas": [4.0, 32.0], "inits": ["ones", "random"],
         "classes": [10, 1000], "points": 11, "consistency_methods": ["moxi", "gradcam"], "qualitative_images": 1,
         "set_sum_test": 4,
         "methods": ["moxi", "moxi-minus", "shapley", "gradcam", "rollout"]}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        shutil.copy(SAMPLES / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def runs(photos, tmp_path_factory, deit):
    out = tmp_path_factory.mktemp("reproduce")
    spec = ModelSpec("timm:deit_tiny_patch16_224", str(MODELS / "deit_tiny_patch16_224.pth"))

    def make(paper: str, limit: int = 1) -> Reproduction:
        run = Reproduction(paper=paper, model=spec, images=sorted(photos.iterdir())[:limit], labels={}, out=out,
                           other_model=ModelSpec("efficientnet_lite0"), options=dict(SMALL), command="test")
        run.__dict__["clf"] = deit  # the session's model: the spec is what Ray workers would load
        run.labels = read_labels(SAMPLES / "labels.csv", deit)
        return run

    return make


class TallyBar:
    """A progress callback like the CLI's bar: told how many calls at least follow (``expect``), then one call
    per report."""

    def __init__(self) -> None:
        self.calls = self.total = 0

    def __call__(self, label: str) -> None:
        self.calls += 1

    def from_store(self, label: str) -> None:
        self.calls += 1

    def expect(self, units: int) -> None:  # at least ``units`` more calls follow
        self.total = max(self.total, self.calls + units)


def test_every_experiment_of_the_claims_is_reproducible():
    assert {p: tuple(PAPERS[p]) for p in PAPERS} == {p: tuple(EXPERIMENTS[p]) for p in EXPERIMENTS}


@pytest.mark.parametrize("paper,experiment", [(p, e) for p in PAPERS for e in PAPERS[p]])
def test_each_experiment_writes_its_figure_summary_and_claim_rows(runs, paper, experiment):
    run = runs(paper, limit=2 if experiment == "class-discriminative" else 1)
    if experiment == "set-sum":  # the model trained with the defaults (30,000 grids, 10 epochs, seed 0) is reused
        from clearsight.checkpoints import fingerprint

        settings = {"train_size": 30000, "epochs": 10, "seed": 0, "model": "SetSumNet-16"}
        run.folder("set-sum").mkdir(parents=True, exist_ok=True)
        shutil.copy(TRAINED_SET_SUM, run.folder("set-sum") / f"set_sum_model-{fingerprint(settings)[:12]}.pt")
    run.progress = bar = TallyBar()
    reproduce(run, [experiment])
    assert bar.calls == bar.total > 0, (bar.calls, bar.total)  # the bar was told every report: it ends full
    summary = json.loads((run.folder(experiment) / "summary.json").read_text())
    assert summary["images"] >= 1 and summary["command"] == "test"
    assert summary["figures"] and all(Path(f).is_file() and Path(f).stat().st_size > 0 for f in summary["figures"])
    results = (run.out / paper / "results.md").read_text()
    section = results.split(f"## {experiment}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| **")]
    assert rows, f"no claim rows for {experiment}"
    measured = [r for r in rows if "not measured" not in r]
    assert measured, f"every claim of {experiment} is 'not measured':\n{section}"
    if (paper, experiment) == ("cartoonx", "rate-distortion"):  # coarser curves than the paper's, and said so
        assert all(len(summary[f]["mean"][m]) == SMALL["points"] for f in ("keep", "randomize") for m in
                   ("cartoonx", "pixel-rde", "random-wavelet", "random-pixel"))
        assert any("at 11 points, not 101" in d for d in summary["deviations"])
    if (paper, experiment) == ("moxi", "runtime"):  # 2 permutation rounds of 4 players: 10 passes and a clean one
        ratio = summary["seconds"]["shapley"][0] / summary["seconds"]["shapley-measured"][0]
        assert 200 * 2 * 4 / 11 - 1e-6 <= ratio <= 200 * 2 * 4 / 10 + 1e-6  # scaled to the paper's 200 plain rounds
        assert any("scaled" in d for d in summary["deviations"])


def test_a_second_run_computes_nothing_and_tables_regenerate_from_summaries(runs):
    run = runs("moxi")
    reproduce(run, ["curves"])
    units = sorted((run.out / "units").rglob("*.npz"))
    stamps = [u.stat().st_mtime_ns for u in units]
    reproduce(run, ["curves"])
    assert [u.stat().st_mtime_ns for u in sorted((run.out / "units").rglob("*.npz"))] == stamps
    results = run.out / "moxi" / "results.md"
    results.unlink()
    assert main(["reproduce", "moxi", "--images", str(SAMPLES), "--out", str(run.out), "--tables-only"]) == 0
    assert "## curves" in results.read_text()


def test_bad_flags_fail_before_any_model_loads(tmp_path, capsys):
    assert main(["reproduce", "moxi", "--only", "curvs", "--images", str(SAMPLES), "--out", str(tmp_path)]) == 2
    assert "unknown moxi experiment curvs" in capsys.readouterr().err
    assert main(["reproduce", "cartoonx", "--only", "lambda", "--images", str(SAMPLES), "--address", "127.0.0.1:1",
                 *DEIT_CLI,
                 "--out", str(tmp_path)]) == 2
    assert "--address names a Ray cluster" in capsys.readouterr().err
    assert not (tmp_path / "units").exists()


def test_an_unusable_out_or_device_fails_in_one_line_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import clearsight.models as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("the model loaded before the check"))
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    assert main(["reproduce", "moxi", "--only", "runtime", "--images", str(SAMPLES), *DEIT_CLI,
                 "--out", str(not_a_folder)]) == 2
    err = capsys.readouterr().err
    assert "file.txt" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["reproduce", "moxi", "--only", "runtime", "--images", str(SAMPLES), *DEIT_CLI,
                 "--device", "cuda:7", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cuda" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_cluster_that_cannot_be_reached_or_a_missing_second_model_fail_before_the_model_loads(
        tmp_path, capsys, monkeypatch):
    """``ray.init`` on a wrong address never returns (it retries the GCS for good): the address is tried first,
    with a timeout, and refused in one line; so are the vit experiment without --other-model and an address
    that is not HOST:PORT."""
    import socket

    import clearsight.models as models

    pytest.importorskip("ray")
    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("the model loaded before the check"))
    with socket.socket() as closed:  # a port nothing listens on: bound, never listening
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        cases = [(["moxi", "--engine", "ray", "--address", f"127.0.0.1:{port}"],
                  f"cannot reach Ray at 127.0.0.1:{port}"),
                 (["moxi", "--engine", "ray", "--address", "ray://headnode"], "should be HOST:PORT"),
                 (["cartoonx", "--only", "vit"], "give --other-model")]
        for argv, needle in cases:
            code = main(["reproduce", *argv, "--images", str(SAMPLES), *DEIT_CLI, "--out", str(tmp_path / "out")])
            err = capsys.readouterr().err
            assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_curves_go_photo_group_by_group_and_join_to_the_one_pass_result(photos, tmp_path, deit, monkeypatch):
    """A curves run stopped after its first group leaves both curves of that group's photos and nothing of the
    next (a smaller --limit is then a complete result); resumed, the joined groups equal one evaluation of every
    photo at once; the progress total is announced once, for every group."""
    import clearsight.experiments.moxi_paper as moxi_paper
    from clearsight.evaluation import evaluate_curves

    monkeypatch.setattr(moxi_paper, "CURVE_GROUP", 1)
    spec = ModelSpec("timm:deit_tiny_patch16_224", str(MODELS / "deit_tiny_patch16_224.pth"))
    run = Reproduction(paper="moxi", model=spec, images=sorted(photos.iterdir()), labels={}, out=tmp_path,
                       options=dict(SMALL), command="test")
    run.__dict__["clf"] = deit
    run.labels = read_labels(SAMPLES / "labels.csv", deit)
    methods = run.moxi_methods()

    class Stop(Exception):
        pass

    class Bar:
        def __init__(self, stop_after=None):
            self.calls, self.total, self.stored, self.stop_after = 0, 0, 0, stop_after

        def __call__(self, label):
            self.calls += 1
            if self.calls == self.stop_after:
                raise Stop

        def from_store(self, label):
            self.stored += 1
            self.calls += 1

        def expect(self, n):  # at least n more calls follow
            self.total = max(self.total, self.calls + n)

    run.progress = Bar(stop_after=2 * len(methods))  # both curves of the first photo
    with pytest.raises(Stop):
        reproduce(run, ["curves"])
    stored = {curve: [p.name for p in (tmp_path / "units" / curve).glob("*.npz")]
              for curve in ("insertion", "deletion")}
    assert len(stored["insertion"]) == len(stored["deletion"]) == len(methods)
    assert all(name.startswith(PHOTOS[0] + "-") for names in stored.values() for name in names)
    run.progress = bar = Bar()
    reproduce(run, ["curves"])
    assert bar.total == bar.calls == 2 * len(PHOTOS) * len(methods)
    assert bar.stored == 2 * len(methods)  # the first photo's, said to be stored (not in the time left)
    summary = json.loads((run.folder("curves") / "summary.json").read_text())
    assert summary["images"] == len(PHOTOS)
    for curve in ("insertion", "deletion"):
        whole = evaluate_curves(deit, run.photos, run.targets, methods, curve, names=run.names,
                                method_options=run.method_options(), patch_size=SMALL["patch_size"])
        assert whole.images == list(PHOTOS)
        for method in methods:
            np.testing.assert_array_equal(summary[curve]["accuracy"][method], whole.accuracy(method))


def test_a_second_model_adds_its_results_beside_the_firsts(runs, mobilenet):
    """The MoXI paper's curves come from a ViT and a CNN (Fig. 3 and 9): run on each into one OUT, both
    runs' figures and summaries stay, and results.md measures the ViT claims on the ViT's run and the CNN
    claims on the CNN's, each row naming the command that made it."""
    vit = runs("moxi")
    vit.command = "reproduce on the ViT"
    reproduce(vit, ["curves"])
    cnn = runs("moxi")
    cnn.__dict__["clf"] = mobilenet
    cnn.model = ModelSpec("torchvision:mobilenet_v2", str(MODELS / "mobilenet_v2.pth"))
    cnn.labels = read_labels(SAMPLES / "labels.csv", mobilenet)
    cnn.command = "reproduce on the CNN"
    reproduce(cnn, ["curves"])
    folders = sorted(p.parent.name for p in (vit.out / "moxi" / "curves").glob("*/summary.json"))
    assert vit.folder("curves") != cnn.folder("curves")
    assert folders == sorted([vit.folder("curves").name, cnn.folder("curves").name])
    assert all((f / "insertion.png").is_file() for f in (vit.folder("curves"), cnn.folder("curves")))
    section = (vit.out / "moxi" / "results.md").read_text().split("## curves\n", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("**")[1].rstrip(":"): line for line in section.splitlines() if line.startswith("| **")}
    models = next(line for line in (vit.out / "moxi" / "results.md").read_text().splitlines()
                  if line.startswith("- models: "))  # the module's other runs share this OUT: theirs too
    assert md_text(vit.clf.name) in models and md_text(mobilenet.name) in models
    for claim, command in (("moxi-cnn-ins-auc", "the CNN"), ("moxi-ins-auc", "the ViT")):
        assert "not measured" not in rows[claim] and f"reproduce on {command}" in rows[claim], rows[claim]


def test_a_run_stopped_before_an_experiment_wrote_anything_leaves_no_folder(runs, tmp_path, monkeypatch):
    """A kill during an experiment's first unit must not leave an empty OUT/PAPER/EXPERIMENT/MODEL folder
    (it looks like a finished run that wrote nothing)."""
    from clearsight.evaluation.driver import Evaluation

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    run = runs("moxi")
    run.out = tmp_path / "out"
    monkeypatch.setattr(Evaluation, "run", killed)
    with pytest.raises(KeyboardInterrupt):
        reproduce(run, ["curves"])
    assert not (run.out / "moxi" / "curves").exists()
    assert not run.out.exists() or not list(run.out.rglob("*")), list(run.out.rglob("*"))
