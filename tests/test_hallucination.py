"""Hallucination and conciseness-preciseness scores, on real photos and a real model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from clearsight.errors import InputShapeError, MethodError
from clearsight.evaluation import CPScores, cp_scores, edge_map, hallucination_score, saliency_explanation_image
from clearsight.evaluation.hallucination import coefficient_entropy, coefficients, dilate, sobel_magnitude
from clearsight.penalties import spatial_l1, spatial_l2
from clearsight.shearlets import ShearletTransform
from clearsight.wavelets import WaveletTransform


@pytest.fixture(scope="module")
def photo(photo_paths):
    """The first sample photo at 224x224 (squashed), (3,H,W) in [0,1]; its maximum is 1."""
    from PIL import Image

    img = Image.open(photo_paths[0]).convert("RGB").resize((224, 224))
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1).contiguous()


def test_sobel_equals_scipys(photo):
    """Our Sobel (kornia's conventions: kernels / 8, replicated border) against scipy.ndimage's."""
    gray = photo.double().mean(0).numpy()
    gx, gy = ndimage.sobel(gray, axis=1, mode="nearest") / 8, ndimage.sobel(gray, axis=0, mode="nearest") / 8
    np.testing.assert_allclose(sobel_magnitude(photo).numpy(), np.sqrt(gx**2 + gy**2 + 1e-6), atol=1e-12)
    step = torch.zeros(8, 8)
    step[:, 4:] = 1
    assert sobel_magnitude(step)[3, 3:5].tolist() == pytest.approx([0.5, 0.5], abs=1e-5)


def test_dilation_is_a_3x3_square():
    e = torch.zeros(5, 5, dtype=torch.bool)
    e[0, 0] = e[3, 3] = True
    d = dilate(e)
    assert d.sum() == 4 + 9 and d[1, 1] and d[4, 4] and not d[2, 0]


def test_the_photo_itself_hallucinates_nothing(photo_paths):
    """Score 0 for photos whose maximum is 1 (the explanation is divided by its maximum, the photo is not;
    a photo with a lower maximum gains faint edges by that division, as in the reference)."""
    from PIL import Image

    for path in photo_paths[:5]:
        x = torch.from_numpy(np.asarray(Image.open(path).convert("RGB").resize((224, 224)),
                                        dtype=np.float32) / 255).permute(2, 0, 1)
        if x.max() == 1:
            assert hallucination_score(x, x) == 0.0
    assert hallucination_score(x * 0.5, x * 0.5 / (x * 0.5).max()) == 0.0


def test_a_painted_line_is_a_hallucinated_edge(photo):
    """A black line painted into the photo adds edges the photo does not have: the score counts exactly the
    new edge pixels away from the photo's (dilated) edges, per photo edge."""
    painted = photo.clone()
    painted[:, 100:103, 20:200] = 0.0
    score = hallucination_score(painted, photo)
    assert score > 0
    photo_edges = edge_map(photo)
    expected = (edge_map(painted, normalize=True) & ~dilate(photo_edges)).sum() / photo_edges.sum()
    assert score == pytest.approx(float(expected))
    # the new edges are along the painted line only
    extra = edge_map(painted, normalize=True) & ~dilate(photo_edges)
    rows = extra.nonzero()[:, 0]
    assert rows.min() >= 98 and rows.max() <= 104
    # channels-last arrays are read as the same image; a grayscale explanation is scored too (it is divided
    # by its own maximum, so its score differs slightly)
    assert hallucination_score(painted.permute(1, 2, 0).numpy(), photo) == pytest.approx(score)
    assert hallucination_score(painted.mean(0), photo) == pytest.approx(score, rel=0.05)
    as_bytes = (painted.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()  # as PIL would give it
    assert hallucination_score(as_bytes, photo) == pytest.approx(score, rel=0.02)


def test_hallucination_needs_matching_sizes_and_photo_edges(photo):
    with pytest.raises(InputShapeError, match="pixels"):
        hallucination_score(photo[:, :100], photo)
    with pytest.raises(InputShapeError, match="8-bit"):
        hallucination_score(torch.ones(3, 224, 224, dtype=torch.int64), photo)
    with pytest.raises(InputShapeError, match="no edges"):
        hallucination_score(photo, torch.full((3, 224, 224), 0.5))


def test_saliency_times_photo(photo):
    sal = torch.zeros(7, 7)
    sal[3, 3] = 2.0
    sal[0, 0] = -5.0
    img = saliency_explanation_image(photo, sal)
    assert img.shape == photo.shape
    assert img.min() >= 0 and (img <= photo.double() + 1e-12).all()
    centre = img[:, 112, 112] / photo[:, 112, 112].double()
    assert centre.tolist() == pytest.approx([1.0, 1.0, 1.0], abs=0.05)  # the top of the map keeps the pixel
    assert img[:, :10, :10].abs().max() == 0  # negative saliency removes
    same = torch.rand(224, 224, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(saliency_explanation_image(photo, same).numpy(),
                               (photo.double() * same.double() / same.max()).numpy(), atol=1e-7)
    assert saliency_explanation_image(photo, torch.zeros(5, 5)).abs().max() == 0
    with pytest.raises(InputShapeError):
        saliency_explanation_image(photo, torch.zeros(3, 5, 5))


def test_entropy_counts_effective_coefficients():
    """exp(H) is the number of equal coefficients carrying the energy (up to the reference's 1e-7)."""
    for n in (1, 10, 1000):
        assert math.exp(coefficient_entropy([torch.ones(n, dtype=torch.float64)])) == pytest.approx(n, rel=1e-3)
    assert coefficient_entropy([torch.zeros(4)]) == 0.0
    split = [torch.ones(3, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)]
    assert math.exp(coefficient_entropy(split)) == pytest.approx(7, rel=1e-3)


def test_coefficients_in_each_representation(photo):
    x = photo.double()
    assert coefficients(x, "pixel")[0] is x
    wav = coefficients(x, "wavelet")
    assert len(wav) == 6 and wav[0].shape == (3, 11, 11)
    she = coefficients(x, "shearlet")
    assert she[0].shape == (3, 49, 224, 224)
    assert torch.equal(coefficients(x, ShearletTransform(3))[0], ShearletTransform(3).forward(x))
    assert len(coefficients(x, WaveletTransform(level=2))) == 3
    with pytest.raises(MethodError):
        coefficients(x, "fourier")


@pytest.mark.slow
def test_cp_scores_on_a_real_model(effnet, photo, one_thread):
    """CP of the photo itself is 1 (both versions, every representation); a masked photo's CP-l1 and CP-entropy
    equal an independent computation from the model's probabilities and the pixel values."""
    for rep in ("pixel", "wavelet", "shearlet"):
        s = cp_scores(effnet, photo, photo, representation=rep)
        assert isinstance(s, CPScores) and s.representation == rep
        assert s.cp_l1 == pytest.approx(1.0, abs=1e-12) and s.cp_entropy == pytest.approx(1.0, abs=1e-12)
        assert s.retained_probability == 1.0
    target = s.target
    assert target == int(effnet.predict(photo)[0][0])

    mask = torch.zeros(224, 224)
    mask[40:190, 30:200] = 1.0
    masked = photo * mask
    s = cp_scores(effnet, photo, masked, target=target, representation="pixel")
    probs = effnet.logits(torch.stack([photo, masked])).softmax(1)[:, target].double()
    retained = float(probs[1] / probs[0])
    l1_ratio = float(masked.double().abs().sum() / photo.double().abs().sum())
    assert s.retained_probability == pytest.approx(retained, rel=1e-4)
    assert s.l1_ratio == pytest.approx(l1_ratio, rel=1e-9)
    assert s.cp_l1 == pytest.approx(retained / l1_ratio, rel=1e-4)

    def entropy(v: np.ndarray) -> float:
        p = v**2 / (v**2).sum()
        return float(-(p * np.log(p + 1e-7)).sum())

    h_x, h_e = entropy(photo.double().numpy()), entropy(masked.double().numpy())
    assert s.cp_entropy == pytest.approx(retained / math.exp(h_e - h_x), rel=1e-4)
    assert s.cp_entropy > s.retained_probability  # keeping fewer effective pixels raises CP

    # the reference's convention for mask explanations: masked coefficients, here all kept -> CP 1
    bands = coefficients(photo.double(), "wavelet")
    kept = cp_scores(effnet, photo, photo, target=target, representation="wavelet", masked_coefficients=bands)
    assert kept.cp_l1 == pytest.approx(1.0) and kept.cp_entropy == pytest.approx(1.0)
    with pytest.raises(InputShapeError, match="masked_coefficients"):
        cp_scores(effnet, photo, photo, target=target, representation="wavelet", masked_coefficients=bands[:2])
    # a grayscale explanation is scored (shown to the model as a gray RGB image)
    gray = cp_scores(effnet, photo, photo.mean(0), target=target, representation="pixel")
    assert 0 < gray.l1_ratio < 1.01


def test_spatial_penalties():
    x = torch.tensor([[[0.0, 0.5], [1.0, -0.5]]], requires_grad=True)
    assert float(spatial_l1(x.detach())) == pytest.approx(0.5)
    assert float(spatial_l2(x.detach())) == pytest.approx(math.sqrt(1.5 / 4))
    spatial_l1(x).backward()
    assert torch.allclose(x.grad, torch.tensor([[[0.0, 0.25], [0.25, -0.25]]]))  # sign(x) / 4, 0 at 0
    batch = torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)])
    assert spatial_l1(batch).tolist() == [0.0, 1.0]
    with pytest.raises(InputShapeError):
        spatial_l1(torch.zeros(4))
