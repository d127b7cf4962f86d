"""MoXI: the greedy order against an independent brute force, MoXI(-), stopping rules, heatmap, C.10."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clearsight.errors import MethodError
from clearsight.explanation import Explanation
from clearsight.methods import build_explainer
from clearsight.methods.moxi import MoXI, greedy, order_heat
from clearsight.parts import PatchGame
from clearsight.scores import log_odds

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_image(seed: int = 0) -> torch.Tensor:
    return torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(seed))


def brute_force_values(clf, tokens, target, chosen: list[int], mode: str) -> tuple[list[int], torch.Tensor]:
    """f(S with b) for every remaining b, straight from ``forward_tokens`` (no PatchGame, own batching)."""
    n = clf.num_patches
    rest = [b for b in range(n) if b not in chosen]
    if mode == "insertion":
        sets = [sorted(chosen + [b]) for b in rest]
    else:
        sets = [sorted(set(range(n)) - set(chosen) - {b}) for b in rest]
    values = []
    with torch.no_grad():
        for start in range(0, len(sets), 7):
            index = torch.tensor(sets[start:start + 7], dtype=torch.long).reshape(len(sets[start:start + 7]), -1)
            values.append(log_odds(clf.forward_tokens(tokens, index), target))
    return rest, torch.cat(values)


def assert_greedy_matches_brute_force(clf, image, target, mode, order, atol=1e-5):
    tokens = clf.embed(image[None])
    chosen: list[int] = []
    for pick in order.tolist():
        rest, values = brute_force_values(clf, tokens, target, chosen, mode)
        best = int(values.argmax() if mode == "insertion" else values.argmin())
        got = rest.index(pick)
        assert rest[best] == pick or abs(float(values[best] - values[got])) < atol, (chosen, pick, rest[best])
        chosen.append(pick)


@pytest.mark.parametrize("mode", ["insertion", "deletion"])
def test_greedy_order_equals_brute_force_on_tiny_vit(tiny_vit, mode):
    image = tiny_image(1)
    target = int(tiny_vit.logits(image[None]).argmax())
    result = greedy(PatchGame(tiny_vit, image, target), mode, full_order=True)
    assert sorted(result.order.tolist()) == list(range(16))
    assert_greedy_matches_brute_force(tiny_vit, image, target, mode, result.order)


@pytest.mark.slow
@pytest.mark.parametrize("mode,steps", [("insertion", 6), ("deletion", 2)])
def test_greedy_order_equals_brute_force_on_deit(deit, photo_paths, mode, steps):
    image = deit.prepare(photo_paths[0])
    target = int(deit.logits(image[None]).argmax())
    result = greedy(PatchGame(deit, image, target), mode, max_steps=steps)
    assert len(result.order) == steps
    assert_greedy_matches_brute_force(deit, image, target, mode, result.order, atol=1e-4)


@pytest.mark.parametrize("mode", ["insertion", "deletion"])
def test_first_step_is_moxi_minus_top_patch(tiny_vit, mode):
    image = tiny_image(2)
    with_i = MoXI(mode=mode, full_order=True).explain(tiny_vit, image)
    without = build_explainer("moxi-minus", {"mode": mode, "full_order": True}).explain(tiny_vit, image)
    assert without.method == "moxi-minus"
    assert with_i.order[0] == without.order[0]
    assert with_i.order_scores[0] == pytest.approx(without.order_scores[0], abs=1e-5)


@pytest.mark.slow
def test_first_step_is_moxi_minus_top_patch_on_deit(deit, photo_paths):
    image = deit.prepare(photo_paths[1])
    target = int(deit.logits(image[None]).argmax())
    game = PatchGame(deit, image, target)
    first = greedy(game, "insertion", max_steps=1)
    minus = MoXI(interactions=False).run(game)
    assert first.order[0] == minus.order[0]


def test_insertion_stops_at_first_success(tiny_vit):
    image = tiny_image(3)
    target = int(tiny_vit.logits(image[None]).argmax())
    full = MoXI(full_order=True).explain(tiny_vit, image)
    early = MoXI().explain(tiny_vit, image)
    stop = early.settings["stop_step"]
    assert stop is not None and len(early.order) == stop
    np.testing.assert_array_equal(early.order, full.order[:stop])
    predictions = full.arrays["predictions"]
    assert predictions[stop - 1] == target and (predictions[: stop - 1] != target).all()
    assert full.settings["stop_step"] == stop and len(full.order) == 16


def test_tau_delays_the_insertion_stop(tiny_vit):
    image = tiny_image(3)
    plain = MoXI(full_order=True).explain(tiny_vit, image)
    strict = MoXI(full_order=True, tau=0.5).explain(tiny_vit, image)
    np.testing.assert_array_equal(plain.order, strict.order)  # tau changes the stop, not the order
    stop = strict.settings["stop_step"]
    if stop is not None:
        assert stop >= plain.settings["stop_step"] and strict.arrays["probabilities"][stop - 1] >= 0.5


def test_deletion_stops_at_first_failure(tiny_vit):
    for seed in range(4, 20):  # a random tiny model may keep its mind with every patch gone: find one
        image = tiny_image(seed)
        target = int(tiny_vit.logits(image[None]).argmax())
        e = MoXI(mode="deletion").explain(tiny_vit, image)
        stop = e.settings["stop_step"]
        if stop is not None:
            break
    assert stop is not None
    assert e.arrays["predictions"][stop - 1] != target
    assert (e.arrays["predictions"][: stop - 1] == target).all()
    assert e.order_scores.shape == (stop,)


def test_order_heatmap_follows_spec_c9(tiny_vit):
    image = tiny_image(5)
    e = MoXI().explain(tiny_vit, image)
    c = e.settings["stop_step"]
    heat = e.arrays["grid"].reshape(-1)
    for t, patch in enumerate(e.order[:c]):
        assert heat[patch] == pytest.approx((c - t) / c)
    assert (heat > 0).sum() == c and e.saliency.shape == (32, 32)
    assert order_heat(torch.tensor([3, 1]), 2, 4).tolist() == [0.0, 0.5, 0.0, 1.0]


def test_moxi_on_a_cnn_uses_fill_and_counts_passes(tiny_cnn):
    image = tiny_image(6)
    e = MoXI(full_order=True, patch_size=8).explain(tiny_cnn, image)
    assert sorted(e.order.tolist()) == list(range(16))
    # one clean pass, then 16 + 15 + ... + 1 candidates
    assert e.cost["passes"] == 1 + 16 * 17 // 2


def test_attention_mask_absence(tiny_vit):
    e = MoXI(absence="attention-mask:1", full_order=True).explain(tiny_vit, tiny_image(7))
    assert sorted(e.order.tolist()) == list(range(16))


def test_explanation_round_trips(tiny_vit, tmp_path):
    e = MoXI(mode="deletion").explain(tiny_vit, tiny_image(8))
    back = Explanation.load(e.save(tmp_path / "moxi"))
    np.testing.assert_array_equal(back.order, e.order)
    assert back.settings["mode"] == "deletion"


def test_class_discriminative_deletion(tiny_vit):
    for seed in range(9, 40):  # find an image where deleting patches can make the runner-up win
        image = tiny_image(seed)
        probs = tiny_vit.logits(image[None]).softmax(1)[0]
        predicted, target = int(probs.argmax()), int(probs.argsort()[-2])
        e = MoXI(mode="deletion").explain(tiny_vit, image, target)
        phase = e.arrays["phase"]
        first, last = e.settings["highlighted"]
        n1 = int((phase == 1).sum())
        if n1 < len(phase) or e.arrays["predictions"][-1] == target:
            break
        assert first == last == n1  # phase 1 failed: nothing highlighted
    assert first == n1 and e.arrays["predictions"][n1 - 1] == target  # phase 1 ends when t is predicted
    assert (e.arrays["predictions"][:n1 - 1] != target).all()
    heat = e.arrays["grid"].reshape(-1)
    assert set(np.flatnonzero(heat)) == set(e.order[first:last].tolist())
    assert e.target == target and predicted != target
    with pytest.raises(MethodError, match="interactions"):
        build_explainer("moxi-minus", {"mode": "deletion"}).explain(tiny_vit, image, target)


def assert_same_explanations(batch, alone):
    for b, a in zip(batch, alone, strict=True):
        np.testing.assert_array_equal(b.order, a.order)
        np.testing.assert_array_equal(b.order_scores, a.order_scores)  # the same numbers, not just the same order
        assert b.settings["stop_step"] == a.settings["stop_step"] and b.target == a.target
        assert b.cost["passes"] == a.cost["passes"]


@pytest.mark.parametrize("model,options", [
    ("tiny_vit", {"mode": "insertion", "full_order": True}),
    ("tiny_vit", {"mode": "deletion"}),
    ("tiny_vit", {"mode": "deletion", "interactions": False, "full_order": True}),
    ("tiny_cnn", {"mode": "insertion", "patch_size": 8}),
])
def test_a_batch_shares_passes_and_gives_each_photo_its_own_explanation(request, model, options):
    clf = request.getfixturevalue(model)
    images = [tiny_image(s) for s in (11, 12, 13)]
    explainer = MoXI(**options)
    shared = []
    real = type(PatchGame(clf, images[0], 0).bound).logits_across.__func__

    def spy(cls, bounds, keep, owner):
        shared.append(len(torch.unique(owner)))
        return real(cls, bounds, keep, owner)

    import unittest.mock as mock
    with mock.patch.object(type(PatchGame(clf, images[0], 0).bound), "logits_across", classmethod(spy)):
        batch = explainer.explain(clf, torch.stack(images))
    assert max(shared) == 3  # rows of all three photos went through one pass
    assert_same_explanations(batch, [explainer.explain(clf, image) for image in images])


def test_a_batch_with_a_class_discriminative_deletion_explains_it_on_its_own(tiny_vit):
    images = [tiny_image(14), tiny_image(15)]
    second = int(tiny_vit.logits(images[1][None]).softmax(1)[0].argsort()[-2])
    explainer = MoXI(mode="deletion")
    batch = explainer.explain(tiny_vit, images, [None, second])
    assert "phase" in batch[1].arrays and "phase" not in batch[0].arrays
    assert_same_explanations(batch, [explainer.explain(tiny_vit, images[0]),
                                     explainer.explain(tiny_vit, images[1], second)])


@pytest.mark.slow
def test_a_batch_of_photos_on_deit_equals_each_photo_alone(deit, photo_paths):
    images = [deit.prepare(p) for p in photo_paths[:2]]
    explainer = MoXI(mode="insertion", patch_size=32)  # 7x7 patches: the photos' own stop points, quickly
    assert_same_explanations(explainer.explain(deit, images), [explainer.explain(deit, i) for i in images])


@pytest.mark.parametrize("mode", ["insertion", "deletion"])
def test_bf16_screened_steps_give_the_fp32_order(tiny_vit, mode):
    image = tiny_image(16)
    plain = MoXI(mode=mode, full_order=True).explain(tiny_vit, image)
    screened = MoXI(mode=mode, full_order=True, screen="bf16").explain(tiny_vit, image)
    np.testing.assert_array_equal(screened.order, plain.order)
    # fp32 values of the picks (a smaller batch rounds a few of them 1 ulp differently)
    np.testing.assert_allclose(screened.order_scores, plain.order_scores, rtol=0, atol=1e-5)
    record = screened.settings["screening"]
    assert 0 < record["screen_rescored"] <= 1 and record["screen_bound"] > 0
    assert "screening" not in plain.settings


def test_a_failed_bound_check_falls_back_to_fp32_for_that_step(tiny_vit):
    from clearsight.methods.greedy import Screening, greedy_together

    image = tiny_image(17)
    target = int(tiny_vit.logits(image[None]).argmax())
    game = PatchGame(tiny_vit, image, target)
    first = game.value(torch.eye(16, dtype=torch.bool))
    # a "cheap" score that ranks the candidates backwards: its best is the fp32 worst. With the bound set to the
    # first step's spread every candidate is re-scored, and their errors spread twice as wide: the check fails
    cheap = PatchGame(tiny_vit, image, target, score=lambda logits, t: -log_odds(logits, t))
    screen = Screening(cheap, bound=float(first.max() - first.min()))
    screened = greedy_together([game], "insertion", [None], max_steps=1, screens=[screen])[0]
    assert screen.fallbacks == 1 and screen.rescored == 16
    assert screened.order.tolist() == [int(first.argmax())]  # the fp32 pick, not the cheap one


def test_screening_is_refused_where_it_cannot_run(tiny_cnn):
    with pytest.raises(MethodError, match="timm"):
        MoXI(screen="bf16", patch_size=8).explain(tiny_cnn, tiny_image(18))
    with pytest.raises(MethodError, match="moxi-minus"):
        MoXI(interactions=False, screen="bf16")
    with pytest.raises(MethodError, match="screen must be"):
        MoXI(screen="fp8")
    assert "screening" not in MoXI(patch_size=8).explain(tiny_cnn, tiny_image(18)).settings  # off by default


@pytest.mark.slow
@pytest.mark.parametrize("mode,steps", [("insertion", 3), ("deletion", 1)])
def test_bf16_screened_steps_give_the_fp32_order_on_deit(deit, photo_paths, mode, steps):
    from clearsight.methods.greedy import Screening, calibrate_bound, greedy_together
    from clearsight.parts import PatchGrid, TokenDrop

    image = deit.prepare(photo_paths[0])
    target = int(deit.logits(image[None]).argmax())
    grid = PatchGrid.for_classifier(deit, 32)  # 7x7 players of 4 tokens: bf16 is emulated on most CI CPUs
    game = PatchGame(deit, image, target, grid=grid)
    cheap = PatchGame(deit, image, target, absence=TokenDrop(precision="bf16"), grid=grid)
    screen = Screening(cheap, calibrate_bound(game, cheap, mode, groups=4, per_group=8))  # bf16 is slow here
    screened = greedy_together([game], mode, [None], max_steps=steps, screens=[screen])[0]
    plain = greedy(PatchGame(deit, image, target, grid=grid), mode, max_steps=steps)
    assert screened.order.tolist() == plain.order.tolist()
    assert screen.rescored <= screen.candidates and screen.fallbacks == 0


def test_bad_options_are_refused():
    with pytest.raises(MethodError):
        MoXI(mode="sideways")
    with pytest.raises(MethodError):
        MoXI(tau=2.0)
    with pytest.raises(MethodError):
        build_explainer("moxi-minus", {"interactions": True})
