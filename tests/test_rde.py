"""The RDE mask optimiser behind CartoonX and Pixel RDE: mechanics on tiny models, one real photo."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import pywt
import torch

from clearsight.errors import ClearsightError, MethodError
from clearsight.explanation import Explanation
from clearsight.methods import build_explainer
from clearsight.methods.cartoonx import CartoonX, cartoon_image
from clearsight.methods.pixel_rde import PixelRDE
from clearsight.methods.rde import (
    FAST,
    FAST_CNN,
    FAST_VIT,
    PAPER,
    PixelRepresentation,
    Problem,
    Schedule,
    WaveletRepresentation,
    accumulate_gradients,
    distortion,
    initial_masks,
    objective_of_explanation,
    optimize_mask,
    optimize_masks_together,
    preoptimize,
    rde_objective,
    sparsity,
)


def tiny_image(seed: int = 0, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, 4, 4, generator=g)
    smooth = torch.nn.functional.interpolate(base[None], size=(size, size), mode="bilinear")[0]
    return (smooth + 0.1 * torch.rand(3, size, size, generator=g)).clamp(0, 1)


@pytest.fixture(params=["wavelet", "pixel"])
def representation(request):
    return WaveletRepresentation() if request.param == "wavelet" else PixelRepresentation()


def test_gradients_reach_only_the_mask(tiny_cnn, representation):
    image = tiny_image().requires_grad_(True)
    problem = Problem.build(tiny_cnn, image, 3, representation, lambda_k=5.0)
    masks = [m.requires_grad_(True) for m in initial_masks(problem, "random", seed=0)]
    noise = problem.noise.sample(problem.bands, 4, torch.Generator().manual_seed(0))
    dist, spars = problem.terms(masks, noise)
    (dist + problem.lambda_k * spars).backward()
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in masks)
    assert image.grad is None
    assert all(not b.requires_grad for b in problem.bands) and all(not v.requires_grad for v in noise)
    assert all(p.grad is None for p in tiny_cnn.model.parameters())


def test_ones_mask_with_zero_noise_reproduces_the_image(tiny_cnn, representation):
    image = tiny_image(1)
    problem = Problem.build(tiny_cnn, image, 0, representation, 1.0, zero_noise=True)
    masks = initial_masks(problem, "ones", 0)
    noise = problem.noise.sample(problem.bands, 2, torch.Generator().manual_seed(0))
    assert all(float(v.abs().max()) == 0 for v in noise)
    out = problem.obfuscations(masks, noise)
    tol = 1e-5 if isinstance(representation, WaveletRepresentation) else 0.0
    assert (out - image).abs().max() <= tol
    # and with adaptive noise too: a mask of ones lets no noise through
    adaptive = Problem.build(tiny_cnn, image, 0, representation, 1.0)
    noisy = adaptive.noise.sample(adaptive.bands, 2, torch.Generator().manual_seed(1))
    assert (adaptive.obfuscations(masks, noisy) - image).abs().max() <= 1e-5


def test_noise_statistics_match_a_direct_per_level_computation(tiny_cnn):
    image = tiny_image(2, 160)
    problem = Problem.build(tiny_cnn, image, 0, WaveletRepresentation(), 1.0)
    coeffs = pywt.wavedec2(image.double().numpy(), "db3", mode="zero", level=5)  # coarsest first
    expect_mean = [coeffs[0].mean()] + [np.stack(coeffs[5 - j]).mean() for j in range(5)]
    expect_std = [coeffs[0].std(ddof=1)] + [np.stack(coeffs[5 - j]).std(ddof=1) for j in range(5)]
    np.testing.assert_allclose(problem.noise.means, expect_mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(problem.noise.stds, expect_std, rtol=1e-4)
    pixel = Problem.build(tiny_cnn, image, 0, PixelRepresentation(), 1.0)
    np.testing.assert_allclose(pixel.noise.means, [image.double().mean()], rtol=1e-5)
    np.testing.assert_allclose(pixel.noise.stds, [image.double().std()], rtol=1e-5)
    draws = problem.noise.sample(problem.bands, 64, torch.Generator().manual_seed(0))
    assert abs(float(draws[1].std()) - problem.noise.stds[1]) < 0.05 * problem.noise.stds[1]


def test_distortions_on_hand_computed_values():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    clean = torch.tensor([0.5, 0.3, 0.2])
    probs = logits.softmax(1)
    assert torch.isclose(distortion(logits, clean, 0, "label"), ((0.5 - probs[:, 0]) ** 2).mean())
    assert torch.isclose(distortion(logits, clean, 0, "maximize-target"), ((1 - probs[:, 0]) ** 2).mean())
    assert torch.isclose(distortion(logits, clean, 0, "l2"), (probs - clean).norm(dim=1).mean())
    kl = (probs * (probs / clean).log()).sum(1).mean()
    assert torch.isclose(distortion(logits, clean, 0, "kl"), kl)
    with pytest.raises(MethodError):
        distortion(logits, clean, 0, "nope")
    assert float(sparsity([torch.ones(2, 2), torch.zeros(3, 2)])) == pytest.approx(0.4)


def test_paper_preset_first_steps_match_a_hand_written_computation(tiny_cnn):
    image, target, lam = tiny_image(3), 2, 20.0
    exp = CartoonX(preset="paper", steps=2, lambda_k=lam, seed=7).explain(tiny_cnn, image, target)
    assert exp.settings["schedule"]["samples"] == 64 and exp.settings["schedule"]["lr"] == 1e-3

    # by hand: DWT, per-band noise stats, 64 draws band by band from a generator seeded 7
    yl, yh = pywt_free_dwt(image)
    bands = [yl, *yh]
    g = torch.Generator().manual_seed(7)
    clean_p = tiny_cnn.logits(image[None]).softmax(1)[0, target]
    masks = [torch.ones(b.shape[1:], requires_grad=True) for b in bands]

    def loss_of(masks):
        noise = [b.mean() + b.std() * torch.randn((64, *b.shape), generator=g) for b in bands]
        z = [b * m + (1 - m) * v for b, m, v in zip(bands, masks, noise)]
        x = WaveletRepresentation().transform.inverse(z[0], z[1:], size=(32, 32)).clamp(0, 1)
        p = tiny_cnn(x).softmax(1)[:, target]
        k = sum(m.numel() for m in masks)
        return ((clean_p - p) ** 2).mean() + lam * sum(m.sum() for m in masks) / k

    loss0 = loss_of(masks)
    loss0.backward()
    # Adam's first step moves each entry by lr * g / (|g| + eps) (bias corrections cancel); then clamp
    stepped = [(m - 1e-3 * m.grad / (m.grad.abs() + 1e-8)).clamp(0, 1).detach() for m in masks]
    loss1 = loss_of(stepped)
    np.testing.assert_allclose(exp.history["loss"][:2], [float(loss0.detach()), float(loss1)], rtol=1e-5)


def pywt_free_dwt(image):
    return WaveletRepresentation().transform.forward(image)


@pytest.mark.parametrize("kind", ["label", "l2", "kl"])
def test_micro_batched_gradients_equal_the_one_batch_gradients(tiny_cnn, kind):
    """Slicing a step's noise batch (the default, for speed) changes no gradient beyond float rounding."""
    problem = Problem.build(tiny_cnn, tiny_image(8), 1, WaveletRepresentation(), 20.0, kind)
    g = torch.Generator().manual_seed(0)
    masks = [torch.rand(s, generator=g) for s in problem.mask_shapes()]
    noise = problem.noise.sample(problem.bands, 13, g)
    grads, values = [], []
    for micro in (13, 4, 1):
        params = [m.clone().requires_grad_(True) for m in masks]
        values.append(accumulate_gradients(problem, params, noise, micro))
        grads.append([p.grad for p in params])
    dist, spars = problem.terms(masks, noise)
    for (d, s), gs in zip(values, grads):
        assert d == pytest.approx(float(dist), rel=1e-4) and s == pytest.approx(float(spars), rel=1e-6)
        for a, b in zip(gs, grads[0]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_same_seed_same_explanation(tiny_cnn):
    a = CartoonX(steps=4, init="random", seed=3).explain(tiny_cnn, tiny_image(4))
    b = CartoonX(steps=4, init="random", seed=3).explain(tiny_cnn, tiny_image(4))
    c = CartoonX(steps=4, init="random", seed=4).explain(tiny_cnn, tiny_image(4))
    for k in a.mask:
        np.testing.assert_array_equal(a.mask[k], b.mask[k])
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])
    assert any(not np.array_equal(a.mask[k], c.mask[k]) for k in a.mask)


def test_resuming_from_a_checkpoint_continues_exactly(tiny_cnn):
    problem = Problem.build(tiny_cnn, tiny_image(5), 1, PixelRepresentation(), 4.0)
    sched = Schedule(steps=6, lr=0.05, samples=4)
    full = optimize_mask(problem, initial_masks(problem, "ones", 0), sched, seed=1)
    saved = []
    optimize_mask(problem, initial_masks(problem, "ones", 0), Schedule(steps=3, lr=0.05, samples=4), seed=1,
                  checkpoint=saved.append, checkpoint_every=3)
    resumed = optimize_mask(problem, initial_masks(problem, "ones", 0), sched, seed=1, resume=saved[-1])
    torch.testing.assert_close(resumed.masks[0], full.masks[0])
    np.testing.assert_allclose(resumed.history["loss"], full.history["loss"])


def test_convergence_test_stops_a_flat_run(tiny_cnn):
    problem = Problem.build(tiny_cnn, tiny_image(6), 1, PixelRepresentation(), 0.0, zero_noise=True)
    sched = Schedule(steps=200, lr=1e-3, samples=2, stop_tol=0.5, stop_window=5, min_steps=20)
    result = optimize_mask(problem, initial_masks(problem, "ones", 0), sched)
    assert result.stopped_early and 20 <= result.steps_run < 200
    saved = []  # resumed mid-run, it stops at the same step as the uninterrupted run
    optimize_mask(problem, initial_masks(problem, "ones", 0), replace(sched, steps=13), checkpoint=saved.append,
                  checkpoint_every=13)
    resumed = optimize_mask(problem, initial_masks(problem, "ones", 0), sched, resume=saved[-1])
    assert resumed.stopped_early and resumed.steps_run == result.steps_run


def test_photos_explained_together_equal_their_own_runs(tiny_cnn):
    """``explain`` of a list optimises the photos in lockstep (one model pass per photo on a CPU): every
    photo's mask, history and passes equal its own run, bit for bit, also for a photo that stops early."""
    images = [tiny_image(20), tiny_image(21), tiny_image(22)]
    for explainer in (CartoonX(steps=6, samples=3, seed=2, evaluate=True),
                      PixelRDE(steps=5, samples=2, init="random", seed=1)):
        together = explainer.explain(tiny_cnn, images, target=[1, 2, None])
        for image, target, shared in zip(images, [1, 2, None], together):
            alone = explainer.explain(tiny_cnn, image, target=target)
            assert shared.target == alone.target
            for k in alone.mask:
                np.testing.assert_array_equal(shared.mask[k], alone.mask[k])
            for k in alone.history:
                np.testing.assert_array_equal(shared.history[k], alone.history[k])
            assert shared.cost["passes"] == alone.cost["passes"]
            assert shared.settings == alone.settings
    problems = [Problem.build(tiny_cnn, tiny_image(23), 1, PixelRepresentation(), 0.0, zero_noise=True),
                Problem.build(tiny_cnn, tiny_image(25), 1, PixelRepresentation(), 4.0),
                Problem.build(tiny_cnn, tiny_image(26), 1, PixelRepresentation(), 20.0)]
    sched = Schedule(steps=60, lr=0.05, samples=2, stop_tol=0.1, stop_window=5, min_steps=20)
    starts = [initial_masks(p, "ones", 0) for p in problems]
    shared = optimize_masks_together(problems, starts, sched, seed=4)
    own = [optimize_mask(p, m, sched, seed=4) for p, m in zip(problems, starts)]
    assert [r.steps_run for r in shared] == [r.steps_run for r in own]
    assert len({r.steps_run for r in own}) == 3  # photos leave the batch at different steps
    for a, b in zip(shared, own):
        for x, y in zip(a.masks, b.masks):
            torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_photos_in_one_model_pass_follow_their_own_runs(tiny_cnn):
    """Three photos' noise slices in one model pass (what a GPU gets): each photo's gradients are its own, so
    the masks follow the photos' own runs to float rounding."""
    problems = [Problem.build(tiny_cnn, tiny_image(30 + i), i, WaveletRepresentation(), 5.0) for i in range(3)]
    sched = Schedule(steps=8, lr=0.05, samples=4)
    starts = [initial_masks(p, "random", 0) for p in problems]
    shared = optimize_masks_together(problems, starts, sched, seed=7, photos_per_pass=3)
    for p, m, result in zip(problems, starts, shared):
        own = optimize_mask(p, m, sched, seed=7)
        np.testing.assert_allclose(result.history["loss"], own.history["loss"], rtol=1e-4)
        for x, y in zip(result.masks, own.masks):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-4)
    with pytest.raises(MethodError, match="one image size"):
        other = Problem.build(tiny_cnn, tiny_image(33, size=48), 0, WaveletRepresentation(), 5.0)
        optimize_masks_together([problems[0], other], [starts[0], initial_masks(other, "ones", 0)], sched)


def test_an_interrupted_explanation_resumes_from_its_checkpoint(tiny_cnn, tmp_path, monkeypatch):
    import clearsight.methods.rde.optimizer as rde

    image, other = tiny_image(14), tiny_image(15)
    whole = CartoonX(steps=7, samples=2, seed=3).explain(tiny_cnn, image)
    real, calls = rde.accumulate_gradients_together, []

    def counted(*args, **kwargs):  # one call per optimisation step; the 6th is interrupted
        calls.append(1)
        if len(calls) == 6 and interrupt:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(rde, "accumulate_gradients_together", counted)
    explainer = CartoonX(steps=7, samples=2, seed=3)
    explainer.checkpoint_every = 2
    interrupt = True
    with pytest.raises(KeyboardInterrupt):
        explainer.explain(tiny_cnn, image, checkpoint_dir=tmp_path)
    assert len(list(tmp_path.glob("cartoonx-*.pt"))) == 1  # state after step 4

    interrupt = False
    calls.clear()
    CartoonX(steps=7, samples=2, seed=3).explain(tiny_cnn, other, checkpoint_dir=tmp_path)
    assert len(calls) == 7  # another photo never starts from that state
    import copy

    from clearsight.models import wrap_model

    retrained = copy.deepcopy(tiny_cnn.model)
    with torch.no_grad():
        next(retrained.parameters()).mul_(1.01)
    calls.clear()  # nor do other weights under the same model name
    CartoonX(steps=7, samples=2, seed=3).explain(
        wrap_model(retrained, tiny_cnn.preprocessing, name=tiny_cnn.name), image, whole.target, checkpoint_dir=tmp_path)
    assert len(calls) == 7
    calls.clear()
    resumed = explainer.explain(tiny_cnn, image, checkpoint_dir=tmp_path)
    assert len(calls) == 3 and resumed.settings["resumed_at_step"] == 4  # steps 5-7 only
    for k in whole.mask:
        np.testing.assert_array_equal(resumed.mask[k], whole.mask[k])
    np.testing.assert_array_equal(resumed.history["loss"], whole.history["loss"])
    assert not list(tmp_path.glob("*.pt"))  # the finished result supersedes its checkpoints


def test_initialisations(tiny_cnn):
    image = tiny_image(7)
    problem = Problem.build(tiny_cnn, image, 0, WaveletRepresentation(), 1.0)
    assert all(float(m.min()) == 1 for m in initial_masks(problem, "ones", 0))
    assert all(float(m.max()) == 0 for m in initial_masks(problem, "zeros", 0))  # every band, not just one
    rand = initial_masks(problem, "random", 0)
    assert all(0 <= float(m.min()) and float(m.max()) < 1 for m in rand)
    fg = torch.zeros(32, 32, dtype=torch.bool)
    fg[8:24, 8:24] = True
    fore = initial_masks(problem, "foreground", 0, fg, background_value=0.25)
    assert all(set(np.unique(m.numpy())) <= {0.25, 1.0} for m in fore)
    assert float(fore[1][0, 9, 9]) == 1.0 and float(fore[1][0, 0, 0]) == 0.25
    with pytest.raises(MethodError):
        initial_masks(problem, "foreground", 0, None)


def test_preoptimisation_picks_a_level_above_the_flip(tiny_cnn):
    image = tiny_image(8)
    target = int(tiny_cnn.predict(image[None])[0][0])
    problem = Problem.build(tiny_cnn, image, target, WaveletRepresentation(), 1.0)
    masks, level = preoptimize(problem, initial_masks(problem, "ones", 0), None, seed=0, samples=8)
    assert 0.01 <= level <= 1.0
    assert all(torch.allclose(m, torch.full_like(m, level)) for m in masks)
    exp = CartoonX(steps=2, init="preoptimize").explain(tiny_cnn, image)
    assert exp.settings["preoptimize"] and exp.settings["preopt_level"] is not None


def test_foreground_from_a_user_mask_and_grabcut(tiny_cnn):
    pytest.importorskip("cv2")
    fg = np.zeros((32, 32))
    fg[4:28, 4:28] = 1
    exp = PixelRDE(steps=2, init="foreground", foreground_mask=fg).explain(tiny_cnn, tiny_image(9))
    assert exp.settings["init"] == "foreground"
    from clearsight.methods.foreground import grabcut

    img = torch.zeros(3, 40, 40)
    img[:, 10:30, 10:30] = torch.tensor([0.9, 0.2, 0.1])[:, None, None]
    cut = grabcut(img, seed=0)
    assert cut.shape == (40, 40) and bool(cut[20, 20]) and not bool(cut[2, 2])


def test_a_foreground_mask_file_is_known_by_its_contents(tmp_path):
    """Overwriting the mask file changes the run's key (checkpoints and stored results are not reused)."""
    path = tmp_path / "fg.png"
    path.write_bytes(b"first mask")
    first = CartoonX(init="foreground", foreground_mask=path).settings()["foreground_mask"]
    path.write_bytes(b"second mask")
    second = CartoonX(init="foreground", foreground_mask=str(path)).settings()["foreground_mask"]
    assert first != second and str(path) in first and str(path) in second


def test_saved_explanation_recomputes_its_objective(tiny_cnn, tmp_path):
    image = tiny_image(10)
    exp = CartoonX(steps=3, lr=0.05, evaluate=True).explain(tiny_cnn, image)
    path = exp.save(tmp_path / "cx")
    loaded = Explanation.load(path)
    again = objective_of_explanation(tiny_cnn, loaded)
    assert again["objective"] == pytest.approx(float(exp.arrays["objective"]), rel=1e-6)
    assert set(loaded.mask) == {"yl", "yh0", "yh1", "yh2", "yh3", "yh4"}
    assert loaded.mask["yh0"].shape[0] == 3  # orientations; no colour axis


def test_cartoon_of_a_full_mask_is_the_grayscale_image(tiny_cnn):
    image = tiny_image(11)
    rep = WaveletRepresentation()
    problem = Problem.build(tiny_cnn, image, 0, rep, 1.0)
    ones = initial_masks(problem, "ones", 0)
    np.testing.assert_allclose(cartoon_image(rep, image, ones), image.mean(0).numpy(), atol=1e-5)
    colour = cartoon_image(rep, image, ones, color=True)
    np.testing.assert_allclose(colour, image.permute(1, 2, 0).numpy(), atol=1e-5)
    exp = CartoonX(steps=1, render="color").explain(tiny_cnn, image)
    assert exp.cartoon.shape == (32, 32, 3) and exp.saliency.shape == (32, 32)


def test_registry_and_option_errors(tiny_cnn):
    cx = build_explainer("cartoonx", {"preset": "paper", "steps": 1, "lambda_k": 3.0})
    assert isinstance(cx, CartoonX) and cx.schedule().steps == 1 and cx.schedule().lr == PAPER.lr
    assert isinstance(build_explainer("pixel-rde", {"init": "random"}), PixelRDE)
    for bad in ({"preset": "slow"}, {"init": "bogus"}, {"distortion": "x"}, {"steps": 0},
                {"init": "random", "preoptimize": True}, {"lambda_k": -1.0}, {"lambda_k": float("nan")},
                {"lr": 0.0}, {"lr": float("inf")}):
        with pytest.raises(ClearsightError):
            CartoonX(**bad)
    exp = PixelRDE(steps=2).explain(tiny_cnn, tiny_image(12))
    assert exp.method == "pixel-rde" and exp.mask["pixels"].shape == (32, 32)
    assert exp.settings["lambda_k"] == 4.0 and exp.cost["passes"] > 0


def test_the_default_schedule_follows_the_model_kind_and_explicit_settings_win(tiny_cnn, deit):
    """CartoonX's default is tuned per model kind (FAST_CNN for CNNs, FAST_VIT for ViTs: FAST loses to the paper
    preset on one photo of each); an explicit --steps / --lr still overrides it, and the run records what it used."""
    assert CartoonX().schedule(tiny_cnn) == FAST_CNN and CartoonX().schedule(deit) == FAST_VIT
    assert FAST_VIT.steps == 2 * FAST.steps and FAST_VIT.lr == FAST.lr
    assert PixelRDE().schedule(tiny_cnn) == FAST  # measured on CartoonX only
    mine = CartoonX(steps=3, lr=0.5).schedule(tiny_cnn)
    assert (mine.steps, mine.lr, mine.min_steps, mine.samples) == (3, 0.5, 3, FAST_CNN.samples)
    exp = CartoonX(steps=2).explain(tiny_cnn, tiny_image(14))
    assert exp.settings["schedule"]["lr"] == FAST_CNN.lr and exp.settings["steps_run"] == 2



def test_a_diverging_optimisation_stops_with_a_clear_error(tiny_cnn):
    image = tiny_image(13)
    problem = Problem.build(tiny_cnn, image, 0, WaveletRepresentation(), float("inf"))  # loss is inf at once
    with pytest.raises(MethodError, match="diverged at step 1"):
        optimize_mask(problem, initial_masks(problem, "ones", 0), Schedule(steps=3, samples=2))


@pytest.mark.slow
def test_objective_falls_on_a_real_photo(mobilenet, photo_paths):
    image = mobilenet.prepare(photo_paths[0])
    target = mobilenet.target_or_prediction(image, None)
    problem = Problem.build(mobilenet, image, target, WaveletRepresentation(), 20.0)
    start = rde_objective(problem, initial_masks(problem, "ones", 0), samples=16)
    exp = CartoonX(steps=5, lr=0.05, samples=8, precision="fp32").explain(mobilenet, image, target)
    masks = [torch.as_tensor(exp.mask[k]) for k in ("yl", "yh0", "yh1", "yh2", "yh3", "yh4")]
    end = rde_objective(problem, masks, samples=16)
    assert end["objective"] < start["objective"]
    assert exp.history["loss"][-1] < exp.history["loss"][0]


@pytest.mark.slow
def test_real_photos_explained_together_equal_their_own_runs(mobilenet, photo_paths):
    """On MobileNetV2 and two real photos, CartoonX of the list equals each photo's own CartoonX, bit for bit."""
    images = [mobilenet.prepare(p) for p in photo_paths[:2]]
    explainer = CartoonX(steps=3, samples=2, precision="fp32")
    together = explainer.explain(mobilenet, images)
    for image, shared in zip(images, together):
        alone = explainer.explain(mobilenet, image)
        for k in alone.mask:
            np.testing.assert_array_equal(shared.mask[k], alone.mask[k])


def test_bf16_runs_and_restores_the_classifier_precision(tiny_cnn):
    before = tiny_cnn.precision
    exp = CartoonX(steps=2, precision="bf16").explain(tiny_cnn, tiny_image(13))
    assert exp.settings["precision_used"] == "bf16" and tiny_cnn.precision == before
    assert np.isfinite(exp.history["loss"]).all()
    fast = CartoonX().schedule()
    passes = sum(fast.samples_at(t) for t in range(fast.steps))
    assert fast.precision == "auto" and passes < PAPER.steps * PAPER.samples / 20


def test_auto_precision_is_bf16_only_on_cpus_that_compute_it_natively(tiny_cnn):
    """``auto`` takes bf16 where it is the measured lever (a CPU with native bf16) and fp32 elsewhere, GPUs
    included: the defaults' quality against the paper preset was measured in fp32."""
    from types import SimpleNamespace

    from clearsight.methods.rde import cpu_has_bf16, resolve_precision

    assert resolve_precision("auto", tiny_cnn) == ("bf16" if cpu_has_bf16() else "fp32")
    assert resolve_precision("auto", SimpleNamespace(device=torch.device("cuda"))) == "fp32"
    assert resolve_precision("bf16", tiny_cnn) == "bf16"
    with pytest.raises(MethodError, match="unknown precision"):
        resolve_precision("fp16", tiny_cnn)


def test_progress_and_checkpoints_are_run_control_not_settings(tiny_cnn, tmp_path):
    """How a run is watched or kept comes from ``explain`` only: the constructors refuse it, and neither a
    progress bar nor a checkpoint folder changes the result."""
    for name in ("cartoonx", "pixel-rde"):
        for option in ({"progress": True}, {"checkpoint_dir": str(tmp_path)}):
            with pytest.raises(MethodError, match="unknown option|does not apply"):
                build_explainer(name, option)
    image = tiny_image(21)
    plain = PixelRDE(steps=3, samples=2, seed=1).explain(tiny_cnn, image)
    watched = PixelRDE(steps=3, samples=2, seed=1).explain(tiny_cnn, image, progress=True, checkpoint_dir=tmp_path)
    np.testing.assert_array_equal(plain.mask["pixels"], watched.mask["pixels"])
    assert plain.settings == watched.settings and "progress" not in plain.settings
