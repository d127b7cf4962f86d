"""Insertion / deletion curves: end points, AUC, orders of every method, files written."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from clearsight.errors import MethodError
from clearsight.evaluation import auc, evaluate_curves, image_curve, order_coalitions, saliency_order
from clearsight.explanation import Explanation
from clearsight.parts import PatchGame, PatchGrid

pytestmark = pytest.mark.usefixtures("one_thread")


def images(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, 32, 32, generator=g) for _ in range(n)]


def test_auc_on_x_in_unit_interval():
    assert auc(np.ones(197)) == pytest.approx(1.0)
    assert auc(np.linspace(0, 1, 197)) == pytest.approx(0.5)
    assert auc([0.0, 1.0, 1.0]) == pytest.approx(0.75)
    with pytest.raises(MethodError):
        auc([1.0])


def test_order_coalitions():
    keep = order_coalitions(torch.tensor([2, 0, 1]), "insertion")
    assert keep.tolist() == [[False, False, False], [False, False, True], [True, False, True], [True, True, True]]
    assert torch.equal(order_coalitions(torch.tensor([2, 0, 1]), "deletion"), ~keep)


@pytest.mark.parametrize("clf_name", ["tiny_vit", "tiny_cnn"])
def test_curves_start_and_end_where_they_must(request, clf_name):
    clf = request.getfixturevalue(clf_name)
    image = images(1)[0]
    target = 3
    game = PatchGame(clf, image, target, grid=PatchGrid(32, 32, 8))
    order = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    full = float(game.value(game.full())[0])
    empty = float(game.value(game.empty())[0])
    ins, ins_pred = image_curve(game, order, "insertion")
    dele, _ = image_curve(game, order, "deletion")
    assert ins.shape == dele.shape == (17,)
    assert ins[0] == pytest.approx(empty, abs=1e-5) and ins[-1] == pytest.approx(full, abs=1e-5)
    assert dele[0] == pytest.approx(full, abs=1e-5) and dele[-1] == pytest.approx(empty, abs=1e-5)
    assert ins_pred[-1] == int(clf.logits(image[None]).argmax())
    with pytest.raises(MethodError):
        image_curve(game, torch.arange(15), "insertion")


def test_saliency_order_prefers_the_grid_map():
    grid = PatchGrid(32, 32, 8)
    e = Explanation(method="x", target=0, saliency=np.zeros((32, 32), np.float32),
                    arrays={"grid": np.arange(16, dtype=np.float32).reshape(4, 4)})
    assert saliency_order(e, grid).tolist() == list(range(15, -1, -1))
    e = Explanation(method="x", target=0, saliency=grid.to_pixels(torch.arange(16.0)).numpy())
    assert saliency_order(e, grid).tolist() == list(range(15, -1, -1))


@pytest.mark.parametrize("curve", ["insertion", "deletion"])
def test_dataset_curves_for_every_method(tiny_vit, tmp_path, curve):
    methods = ["moxi", "moxi-minus", "shapley", "gradcam", "gradcampp", "rollout"]
    done = []
    results = evaluate_curves(tiny_vit, images(3), [None, None, None], methods, curve,
                              method_options={"shapley": {"rounds": 4}}, progress=done.append)
    assert len(done) == 3 * len(methods)
    for m in methods:
        acc = results.accuracy(m)
        assert acc.shape == (17,)
        # labels = predictions: every image is right with all patches
        assert acc[-1 if curve == "insertion" else 0] == 1.0
        assert 0.0 <= results.aucs()[m] <= 1.0
    paths = results.save(tmp_path)
    with open(paths["accuracy"]) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["fraction", *methods] and len(rows) == 18
    assert paths["png"].stat().st_size > 0
    assert results.title() == f"{curve} curves, {tiny_vit.name}, 3 photos"  # how coarse the accuracy steps are


def test_misclassified_images_are_skipped(tiny_cnn):
    pics = images(2, seed=1)
    predicted = [int(tiny_cnn.logits(p[None]).argmax()) for p in pics]
    wrong = (predicted[1] + 1) % 10
    results = evaluate_curves(tiny_cnn, pics, [predicted[0], wrong], ["moxi-minus"], "insertion",
                              names=["a", "b"], patch_size=8)
    assert results.images == ["a"] and results.skipped == ["b"]


def test_an_interrupted_evaluation_resumes_without_recomputing(tiny_vit, tmp_path, monkeypatch):
    import clearsight.evaluation.curves as curves

    pics, names = images(2), ["a.png", "b c.png"]
    opts = {"shapley": {"rounds": 3}}

    def interrupt_after(n):
        calls = []

        def progress(method):
            calls.append(method)
            if len(calls) == n:
                raise KeyboardInterrupt

        return progress

    with pytest.raises(KeyboardInterrupt):  # stopped after 3 of the 4 (image, method) runs
        evaluate_curves(tiny_vit, pics, [None, None], ["moxi-minus", "shapley"], "deletion", names=names,
                        method_options=opts, store=tmp_path, progress=interrupt_after(3))
    fresh = evaluate_curves(tiny_vit, pics, [None, None], ["moxi-minus", "shapley"], "deletion", names=names,
                            method_options=opts)

    computed = []
    real_order = curves.method_order
    monkeypatch.setattr(curves, "method_order", lambda m, *a, **k: computed.append(m) or real_order(m, *a, **k))
    resumed = evaluate_curves(tiny_vit, pics, [None, None], ["moxi-minus", "shapley"], "deletion", names=names,
                              method_options=opts, store=tmp_path)
    assert computed == ["shapley"]  # only the run the interruption cut off
    for m in ("moxi-minus", "shapley"):
        np.testing.assert_array_equal(resumed.accuracy(m), fresh.accuracy(m))
        np.testing.assert_allclose(resumed.mean_score(m), fresh.mean_score(m), rtol=1e-6)

    computed.clear()  # other settings never reuse stored curves
    evaluate_curves(tiny_vit, pics, [None, None], ["shapley"], "deletion", names=names,
                    method_options={"shapley": {"rounds": 4}}, store=tmp_path)
    assert computed == ["shapley", "shapley"]
    computed.clear()  # other photos under the same names (another folder) never reuse them either
    swapped = evaluate_curves(tiny_vit, pics[::-1], [None, None], ["moxi-minus"], "deletion", names=names,
                              store=tmp_path)
    assert computed == ["moxi-minus", "moxi-minus"]
    np.testing.assert_array_equal(swapped.accuracy("moxi-minus"), fresh.accuracy("moxi-minus"))
    with pytest.raises(MethodError, match="unique"):
        evaluate_curves(tiny_vit, pics, [None, None], ["moxi-minus"], "deletion", names=["a", "a"], store=tmp_path)


@pytest.mark.slow
def test_cli_evaluate_and_explain(tmp_path, photo_paths, one_photo_folder):
    from clearsight.cli import main

    from .conftest import DEIT_CLI as model

    folder = one_photo_folder
    out = tmp_path / "eval"
    assert main(["evaluate", "--curve", "insertion", "--methods", "moxi-minus,rollout", "--images", str(folder),
                 "--labels", str(photo_paths[0].parent / "labels.csv"), "--out", str(out), *model]) == 0
    with open(out / "insertion_auc.csv") as f:
        assert [r["method"] for r in csv.DictReader(f)] == ["moxi-minus", "rollout"]
    assert (out / "insertion.png").exists() and (out / "insertion_accuracy.csv").exists()
    assert len(list((out / "runs").rglob("*.npz"))) == 2  # one finished curve per (image, method), for resuming
    assert main(["explain", str(photo_paths[0]), "--method", "moxi-minus", "--mode", "deletion", "--out",
                 str(tmp_path / "x"), *model]) == 0
    assert (tmp_path / "x" / f"{photo_paths[0].stem}_moxi-minus-deletion_deit_tiny_patch16_224.png").exists()
    assert main(["explain", str(photo_paths[0]), "--method", "gradcam", "--tau", "0.5", *model]) == 2
