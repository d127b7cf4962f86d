"""The evaluation driver: methods given as names, explainer objects or saved explanations give the same
results; capabilities come from the classes; the work a driver plans pickles (for other engines)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from clearsight.engine import UnitStore
from clearsight.errors import MethodError
from clearsight.evaluation import SavedExplanations, evaluate_curves, evaluate_rate_distortion
from clearsight.evaluation.curves import curve_unit
from clearsight.evaluation.driver import Evaluation, ModelSpec, UnitWork
from clearsight.methods import build_explainer
from clearsight.methods.capabilities import can, methods_that
from clearsight.methods.gradcam import GradCAM
from clearsight.methods.moxi import MoXI
from clearsight.parts import PatchGrid, make_absence

pytestmark = pytest.mark.usefixtures("one_thread")


def images(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, 32, 32, generator=g) for _ in range(n)]


def test_capabilities_are_declared_on_the_classes():
    assert methods_that("gives_order") == ["moxi", "moxi-minus"]
    assert methods_that("patch_game") == ["moxi", "moxi-minus", "shapley"]
    assert methods_that("rde") == ["cartoonx", "pixel-rde", "waveletx", "shearletx"]
    assert methods_that("needs_token_model") == ["rollout"]
    assert can(MoXI(interactions=False), "modes") == ("insertion", "deletion") and can("gradcam", "modes") == ()
    with pytest.raises(KeyError):
        can("gradcam", "flies")


def test_objects_and_saved_explanations_give_the_curves_of_the_named_methods(tiny_vit, tmp_path):
    pics, names = images(2), ["a.png", "b.png"]
    by_name = evaluate_curves(tiny_vit, pics, [None, None], ["moxi-minus", "gradcam"], "deletion", names=names)
    objects = evaluate_curves(tiny_vit, pics, [None, None], [MoXI(mode="deletion", interactions=False), GradCAM()],
                              "deletion", names=names)
    assert objects.methods == ["moxi-minus", "gradcam"]
    # saved explanations: a mapping of image names, and a folder written the way `clearsight explain` writes
    made = {n: build_explainer("gradcam").explain(tiny_vit, p) for n, p in zip(names, pics)}
    for n, e in made.items():
        e.save(tmp_path / f"{n.rsplit('.', 1)[0]}_gradcam")
    saved = evaluate_curves(tiny_vit, pics, [None, None], [made, SavedExplanations(tmp_path)], "deletion", names=names)
    assert saved.methods == ["gradcam", "gradcam-2"]
    for results, m, same_as in ((objects, "moxi-minus", "moxi-minus"), (objects, "gradcam", "gradcam"),
                                (saved, "gradcam", "gradcam"), (saved, "gradcam-2", "gradcam")):
        np.testing.assert_array_equal(results.accuracy(m), by_name.accuracy(same_as))
        np.testing.assert_allclose(results.mean_score(m), by_name.mean_score(same_as), rtol=1e-6)

    with pytest.raises(MethodError, match="mode='deletion'"):  # an insertion order never makes a deletion curve
        evaluate_curves(tiny_vit, pics, [None, None], [MoXI(mode="insertion")], "deletion", names=names)
    other = {n: build_explainer("gradcam").explain(tiny_vit, p, (tiny_vit.logits(p[None]).argmax().item() + 1) % 10)
             for n, p in zip(names, pics)}
    with pytest.raises(MethodError, match="explains class"):  # made for another class than the curve's
        evaluate_curves(tiny_vit, pics, [None, None], [other], "deletion", names=names)
    with pytest.raises(MethodError, match="no saved gradcam explanation"):
        evaluate_curves(tiny_vit, pics, [None, None], [SavedExplanations(tmp_path)], "deletion", names=["c.png", "a"])


def test_a_saved_rde_explanation_ranks_its_own_components(tiny_cnn, tmp_path):
    pic = images(1, seed=3)
    explanation = build_explainer("pixel-rde", {"steps": 2, "samples": 2}).explain(tiny_cnn, pic[0])
    by_name = evaluate_rate_distortion(tiny_cnn, pic, [None], ["pixel-rde"], "keep", names=["a"], points=11,
                                       method_options={"pixel-rde": {"steps": 2, "samples": 2}})
    saved = evaluate_rate_distortion(tiny_cnn, pic, [None], [{"a": explanation}], "keep", names=["a"], points=11,
                                     store=tmp_path)
    np.testing.assert_allclose(saved.mean("pixel-rde"), by_name.mean("pixel-rde"), rtol=1e-6)
    assert len(UnitStore(tmp_path).finished()) == 1  # one unit, keyed by the explanation's digest


def test_planned_work_pickles_and_computes_the_same_curve(tiny_vit):
    pics = images(1)
    run = Evaluation(tiny_vit, pics, [None], ["a"], "deletion", {}, None)
    (name, image, target), = run.classified()[0]
    grid = PatchGrid.for_classifier(tiny_vit)
    options = {"method": "gradcam", "method_options": {}, "curve": "deletion", "score": "log-odds",
               "absence": make_absence(None, tiny_vit), "grid": grid}
    planned = run.plan(name, image, target, "gradcam", {"name": "gradcam"}, curve_unit, options)
    work = UnitWork(ModelSpec("timm:some_vit", "/w.pth"), {planned.unit: planned.task})
    copy = pickle.loads(pickle.dumps(work))
    assert copy.model == ModelSpec("timm:some_vit", "/w.pth")  # a worker loads the model itself in setup()
    ours = UnitWork(tiny_vit, {planned.unit: planned.task}).compute(tiny_vit, planned.unit)
    theirs = copy.compute(tiny_vit, planned.unit)
    np.testing.assert_allclose(theirs["scores"], ours["scores"], rtol=1e-6)
    assert planned.unit.options["pixels"] and planned.unit.options["weights"] == tiny_vit.weights_digest()


@pytest.mark.slow
def test_cli_evaluates_the_explanations_a_folder_holds(tmp_path, one_photo_folder):
    """``evaluate --explanations DIR`` gives the curve of the method that made them (EfficientNet-Lite0)."""
    import csv

    from clearsight.cli import main

    explained = tmp_path / "explained"
    photo = next(one_photo_folder.iterdir())
    small = ["--size", "96"]  # 36 patches: a curve of 37 passes
    assert main(["explain", str(photo), "--method", "gradcam", "--out", str(explained), *small]) == 0
    out = tmp_path / "eval"
    assert main(["evaluate", "--curve", "deletion", "--methods", "gradcam", "--explanations", str(explained),
                 "--images", str(one_photo_folder), "--out", str(out), *small]) == 0
    with open(out / "deletion_auc.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["gradcam", "gradcam-2"]
    assert rows["gradcam"]["auc_mean_score"] == rows["gradcam-2"]["auc_mean_score"]
    assert main(["evaluate", "--curve", "inits", "--explanations", str(explained), "--images",
                 str(one_photo_folder)]) == 2


class PicklingEngine:
    """Runs the work the way a cluster engine must: pickled and unpickled first, so the model comes from the
    work's :class:`ModelSpec`, loaded in ``setup()``, never from this process."""

    name = "pickling"

    def __init__(self) -> None:
        self.setups = 0

    def run(self, work, units, store=None, progress=None):
        from clearsight.engine import LocalEngine

        shipped = pickle.loads(pickle.dumps(work))
        assert isinstance(shipped.model, ModelSpec)
        self.setups += 1
        return LocalEngine().run(shipped, units, store, progress)


@pytest.mark.slow
def test_a_model_spec_is_loaded_by_the_work_itself_with_the_same_curves(effnet, photo_paths, tmp_path):
    image = effnet.prepare(photo_paths[0], size=96)  # 36 patches: a curve of 37 passes
    local = evaluate_curves(effnet, [image], [None], ["gradcam"], "deletion", names=["a"])
    engine = PicklingEngine()
    shipped = evaluate_curves(ModelSpec("efficientnet_lite0"), [image], [None], ["gradcam"], "deletion", names=["a"],
                              engine=engine, store=tmp_path)
    assert engine.setups == 1 and shipped.images == local.images
    np.testing.assert_allclose(shipped.mean_score("gradcam"), local.mean_score("gradcam"), rtol=1e-4, atol=1e-5)
    # the same units from the loaded model and the local engine: found in the store, nothing recomputed
    again = evaluate_curves(effnet, [image], [None], ["gradcam"], "deletion", names=["a"], store=tmp_path)
    assert again.seconds == shipped.seconds


class CountingBar:
    """A progress callback that is also told how many calls to expect (``clearsight reproduce``'s bar)."""

    def __init__(self) -> None:
        self.expected = 0
        self.calls: list[str] = []

    def __call__(self, label: str) -> None:
        self.calls.append(label)

    def expect(self, units: int) -> None:  # at least ``units`` more calls follow
        self.expected = max(self.expected, len(self.calls) + units)


def test_a_progress_bar_is_told_its_total_before_the_units_run(tiny_vit, tmp_path):
    pics = images(3, seed=5)
    labels = [None, None, (int(tiny_vit.logits(pics[2][None]).argmax()) + 1) % 10]  # the third is misclassified
    bar = CountingBar()
    evaluate_curves(tiny_vit, pics, labels, ["moxi-minus", "gradcam"], "insertion", names=["a", "b", "c"],
                    progress=bar, store=tmp_path)
    assert bar.expected == len(bar.calls) == 6  # 2 images x 2 methods, and the skipped one's 2 ticks
    bar = CountingBar()
    evaluate_curves(tiny_vit, pics, labels, ["moxi-minus", "gradcam"], "insertion", names=["a", "b", "c"],
                    progress=bar, store=tmp_path)  # all stored: the same count, nothing computed
    assert bar.expected == len(bar.calls) == 6


def test_a_result_neutral_setting_keeps_the_stored_key():
    from clearsight.evaluation.sources import resolve_methods

    plain, screened = resolve_methods([MoXI(), MoXI(screen="bf16")])
    assert plain.settings(plain.source("a", 0)) == screened.settings(screened.source("a", 0))
    assert MoXI(screen="bf16").settings()["screen"] == "bf16"  # still on the explanation's record
