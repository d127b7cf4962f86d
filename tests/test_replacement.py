"""Corruptions, the L2 PGD attack, the Replace absence and the corruption / adversarial deletion curves
(SPEC C.11, C.12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clearsight.adversarial import pgd_l2
from clearsight.corruptions import CORRUPTIONS, corrupt, corrupt_tensor, hsv_to_rgb, plasma_fractal, rgb_to_hsv
from clearsight.errors import ImageError, MethodError
from clearsight.evaluation.replacement import (
    evaluate_replacement_curves,
    make_replacement,
    perturbation_norms,
)
from clearsight.parts import PatchGame, PatchGrid, Replace
from clearsight.scores import get_score

from .conftest import DEIT_CLI


def _photo(size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth colour image with edges, so blurs and colour changes have something to act on."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([x, y, 0.5 + 0.4 * np.sin(6 * x * y)], -1)
    img[size // 4: size // 2, size // 4: size // 2] = rng.uniform(0, 1, 3)
    return (img * 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------ corruptions
def test_the_cli_lists_every_corruption():
    from clearsight.cli import CORRUPTION_NAMES

    assert tuple(CORRUPTIONS) == CORRUPTION_NAMES


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_every_corruption_is_seeded_uint8_and_changes_the_photo(name):
    img = _photo()
    out = corrupt(img, name, 5, seed=3)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(out, corrupt(img, name, 5, seed=3))
    assert np.abs(out.astype(int) - img).mean() > 1.0


def test_hsv_conversion_matches_scikit_image():
    from skimage.color import hsv2rgb, rgb2hsv

    rgb = np.random.default_rng(0).uniform(0, 1, (40, 40, 3))
    rgb[:5, :5] = 0.5  # grey: no hue, no saturation
    rgb[5:10, :5, :2] = 0.9  # red and green tie for the maximum
    np.testing.assert_allclose(rgb_to_hsv(rgb), rgb2hsv(rgb), atol=1e-12)
    np.testing.assert_allclose(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, atol=1e-12)
    np.testing.assert_allclose(hsv_to_rgb(rgb), hsv2rgb(rgb), atol=1e-12)


@pytest.mark.parametrize("severity", [1, 5])
def test_gaussian_blur_matches_scikit_image(severity):
    from skimage.filters import gaussian

    img = _photo(96)
    sigma = (1, 2, 3, 4, 6)[severity - 1]
    expected = np.uint8(np.clip(gaussian(img / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255)
    assert np.abs(corrupt(img, "gaussian_blur", severity).astype(int) - expected).max() <= 1


@pytest.mark.parametrize("severity", [1, 5])
def test_defocus_blur_matches_opencv(severity):
    cv2 = pytest.importorskip("cv2")
    radius, alias = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[severity - 1]
    half, ksize = (8, 3) if radius <= 8 else (radius, 5)
    grid = np.arange(-half, half + 1)
    X, Y = np.meshgrid(grid, grid)
    disk = ((X**2 + Y**2) <= radius**2).astype(np.float32)
    kernel = cv2.GaussianBlur(disk / disk.sum(), (ksize, ksize), alias)
    img = _photo(96)
    expected = np.stack([cv2.filter2D((img / 255.0)[:, :, c], -1, kernel) for c in range(3)], -1)
    expected = np.uint8(np.clip(expected, 0, 1) * 255)
    assert np.abs(corrupt(img, "defocus_blur", severity).astype(int) - expected).max() <= 1


def test_noise_has_the_papers_strength():
    grey = np.full((128, 128, 3), 128, np.uint8)
    residual = corrupt(grey, "gaussian_noise", 1, seed=0).astype(float) - 128
    assert residual.std() == pytest.approx(0.08 * 255, rel=0.03)  # ImageNet-C severity 1: sigma 0.08
    flipped = corrupt(grey, "impulse_noise", 5, seed=0) != 128
    assert flipped.mean() == pytest.approx(0.27, abs=0.01)  # severity 5: 27% of values salted or peppered
    assert not np.array_equal(corrupt(grey, "gaussian_noise", 1, seed=0), corrupt(grey, "gaussian_noise", 1, seed=1))


def test_contrast_keeps_each_channels_mean_and_shrinks_its_spread():
    img = _photo(96)
    out = corrupt(img, "contrast", 5).astype(float)
    np.testing.assert_allclose(out.mean((0, 1)), img.mean((0, 1)), atol=1.0)  # truncation to uint8: < 1 level
    np.testing.assert_allclose(out.std((0, 1)), 0.05 * img.std((0, 1)), atol=0.6)


def test_pixelate_makes_blocks_and_fog_is_a_plasma_fractal():
    out = corrupt(_photo(64), "pixelate", 5)  # 64 -> 16 -> 64: 4x4 blocks
    assert np.array_equal(out, np.repeat(np.repeat(out[::4, ::4], 4, 0), 4, 1))
    heights = plasma_fractal(64, 1.4, np.random.RandomState(0))
    assert heights.shape == (64, 64) and heights.min() == 0 and heights.max() == 1
    assert np.array_equal(heights, plasma_fractal(64, 1.4, np.random.RandomState(0)))


def test_bad_corruption_requests_get_clear_errors():
    with pytest.raises(MethodError, match="frost needs assets"):
        corrupt(_photo(), "frost")
    with pytest.raises(MethodError, match="unknown corruption 'blurr'"):
        corrupt(_photo(), "blurr")
    with pytest.raises(MethodError, match="severity"):
        corrupt(_photo(), "fog", 6)
    with pytest.raises(ImageError, match="uint8"):
        corrupt(_photo().astype(float), "fog")
    with pytest.raises(ImageError, match="at least 32x32"):
        corrupt(_photo(16), "fog")
    with pytest.raises(MethodError, match="corruption:NAME"):
        make_replacement("blur")
    with pytest.raises(MethodError, match="integer 1..5"):
        make_replacement("corruption:fog:high")


def test_corrupt_tensor_quantises_like_the_papers_pipeline():
    image = torch.rand(3, 40, 40)
    out = corrupt_tensor(image, "contrast", 1)
    pixels = (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    expected = torch.from_numpy(corrupt(pixels, "contrast", 1)).permute(2, 0, 1).float() / 255
    assert torch.equal(out, expected)


# ------------------------------------------------------------------------------------------- the attack
def test_pgd_stays_in_the_ball_and_raises_the_loss(tiny_cnn):
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    target = int(tiny_cnn.logits(image[None]).argmax())
    adversarial = pgd_l2(tiny_cnn, image, target, epsilon=0.5, step=0.1, steps=5)
    assert (adversarial - image).norm() <= 0.5 + 1e-5
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    loss = torch.nn.functional.cross_entropy
    label = torch.tensor([target])
    assert loss(tiny_cnn(adversarial[None]), label) > loss(tiny_cnn(image[None]), label)
    assert torch.equal(adversarial, pgd_l2(tiny_cnn, image, target, epsilon=0.5, step=0.1, steps=5))
    with pytest.raises(MethodError, match="epsilon > 0"):
        pgd_l2(tiny_cnn, image, target, epsilon=0)


# ------------------------------------------------------------------------------------ the Replace absence
def test_replace_shows_the_replacement_where_patches_are_absent(tiny_vit):
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    other = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(2))
    replace = Replace(lambda clf, img, target: other, "test")
    game = PatchGame(tiny_vit, image, 0, score="logit", absence=replace)
    logits = game.logits(torch.stack([game.full()[0], game.empty()[0]]))
    expected = tiny_vit.logits(torch.stack([image, other]))
    torch.testing.assert_close(logits, expected)
    keep = torch.zeros(game.num_players, dtype=torch.bool)
    keep[:3] = True
    mask = game.grid.pixel_mask(keep[None])[0]
    mixed = other + mask * (image - other)
    torch.testing.assert_close(game.logits(keep[None]), tiny_vit.logits(mixed[None]))


def test_patch_norms_split_the_perturbation(tiny_cnn):
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    delta = 0.1 * torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(1))
    replace = Replace(lambda clf, img, target: img + delta, "shift")
    grid = PatchGrid(32, 32, 8)
    norms = perturbation_norms(replace, tiny_cnn, image, grid)
    assert norms.shape == (16,)
    assert float((norms**2).sum()) == pytest.approx(float(delta.pow(2).sum()), rel=1e-5)
    first = delta[:, :8, :8].norm()
    assert norms[0] == pytest.approx(float(first), rel=1e-5)


# ----------------------------------------------------------------------------------- curves, real model
@pytest.mark.slow
def test_corruption_curve_runs_from_the_clean_to_the_corrupted_photo(deit, photo_paths, tmp_path):
    image = deit.prepare(photo_paths[0])
    results = evaluate_replacement_curves(deit, [image], [0], ["gradcam"], "corruption:gaussian_noise:5",
                                          names=["tench"], store=tmp_path / "runs")
    assert results.name == "deletion-gaussian_noise-5"
    scores = results.scores["gradcam"][0]
    assert scores.shape == (197,)
    log_odds = get_score("log-odds")
    clean = log_odds(deit.logits(image[None]), 0)
    noisy = log_odds(deit.logits(corrupt_tensor(image, "gaussian_noise", 5)[None]), 0)
    assert scores[0] == pytest.approx(float(clean), abs=1e-3)
    assert scores[-1] == pytest.approx(float(noisy), abs=1e-3)  # every patch replaced: the corrupted photo
    again = evaluate_replacement_curves(deit, [image], [0], ["gradcam"], "corruption:gaussian_noise:5",
                                        names=["tench"], store=tmp_path / "runs")
    assert np.array_equal(again.scores["gradcam"][0], scores) and again.seconds == results.seconds  # reused
    other = evaluate_replacement_curves(deit, [image], [0], ["gradcam"], "corruption:gaussian_noise:4",
                                        names=["tench"], store=tmp_path / "runs")
    assert not np.array_equal(other.scores["gradcam"][0], scores)  # another severity is never reused


@pytest.mark.slow
def test_cli_adversarial_curves_and_patch_norms(tmp_path, one_photo_folder):
    from clearsight.cli import main

    out = tmp_path / "out"
    args = ["evaluate", "--images", str(one_photo_folder), "--out", str(out), *DEIT_CLI]
    assert main([*args, "--curve", "corruption", "--corruptions", "frost"]) == 2  # refused before any work
    assert main([*args, "--curve", "adversarial", "--methods", "gradcam,rollout", "--pgd-steps", "5"]) == 0
    accuracy = np.genfromtxt(out / "deletion-adversarial_accuracy.csv", delimiter=",", names=True)
    assert accuracy["gradcam"][0] == 1.0 and accuracy["gradcam"][-1] == 0.0  # PGD at eps 1 fools DeiT here
    norms = np.genfromtxt(out / "deletion-adversarial_patch_norms.csv", delimiter=",", names=True)
    assert len(norms) == 196
    # each column is the same per-patch norms in another order: equal totals, at most epsilon in l2
    assert norms["gradcam"].sum() == pytest.approx(norms["rollout"].sum(), rel=1e-5)
    assert np.sqrt((norms["gradcam"] ** 2).sum()) <= 1.0 + 1e-4
    assert (out / "deletion-adversarial.png").exists()
