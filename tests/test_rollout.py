"""Attention rollout against a hand-computed product on a two-block toy ViT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clearsight.errors import MethodError
from clearsight.methods import build_explainer


def hand_rollout(attentions, preset: str) -> np.ndarray:
    """Rollout written out with numpy loops, for one image."""
    result = None
    for att in attentions:
        a = att[0].double().numpy().mean(0)
        T = a.shape[0]
        if preset == "vit-explain":
            flat = a.flatten()
            order = np.argsort(flat, kind="stable")
            k = int(T * T * 0.9)
            lowest = set(order[:k].tolist()) - {0}
            # ties are irrelevant for random attention; drop exactly those indices
            for idx in lowest:
                flat[idx] = 0.0
            a = flat.reshape(T, T)
            a = (a + np.eye(T)) / 2
            for i in range(T):
                a[i] = a[i] / a[i].sum()
        else:
            a = a + np.eye(T)
            a = a / a.sum()
        result = a if result is None else a @ result
    row = result[0, 1:]
    return (row / row.max()).reshape(4, 4)


@pytest.mark.parametrize("preset", ["vit-explain", "moxi"])
def test_rollout_matches_hand_computation(tiny_vit, preset):
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(5))
    e = build_explainer("rollout", {"preset": preset}).explain(tiny_vit, image)
    expected = hand_rollout(tiny_vit.attentions(image[None]), preset)
    np.testing.assert_allclose(e.arrays["grid"], expected, rtol=1e-5, atol=1e-6)
    assert e.arrays["grid"].max() == pytest.approx(1.0)
    assert e.saliency.shape == (32, 32)


def test_rollout_on_a_cnn_is_a_clear_error(tiny_cnn):
    with pytest.raises(MethodError, match="Vision Transformer"):
        build_explainer("rollout").explain(tiny_cnn, torch.rand(3, 32, 32))


def test_bad_rollout_settings():
    with pytest.raises(MethodError):
        build_explainer("rollout", {"preset": "nope"})
    with pytest.raises(MethodError):
        build_explainer("rollout", {"discard_ratio": 1.5})
    with pytest.raises(MethodError, match="does not apply"):
        build_explainer("rollout", {"eigen_smooth": True})


@pytest.mark.slow
def test_rollout_on_deit(deit, photo_paths):
    e = build_explainer("rollout", {"preset": "moxi"}).explain(deit, deit.prepare(photo_paths[1]))
    assert e.arrays["grid"].shape == (14, 14) and np.isfinite(e.saliency).all()
