"""The patch game: grid geometry, absence strategies, chunked scoring and pass counting."""

from __future__ import annotations

import pytest
import torch

from clearsight.errors import ClearsightError, InputShapeError, MethodError
from clearsight.parts import AttentionMask, Fill, PatchGame, PatchGrid, TokenDrop, make_absence
from clearsight.scores import log_odds

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_image(seed: int = 0, size: int = 32) -> torch.Tensor:
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------ grid
def test_grid_geometry():
    grid = PatchGrid(224, 224, 16)
    assert grid.shape == (14, 14) and grid.size == 196
    keep = torch.zeros(1, 196, dtype=torch.bool)
    keep[0, 14 * 2 + 3] = True  # row 2, column 3
    mask = grid.pixel_mask(keep)[0, 0]
    assert mask.sum() == 256 and mask[32:48, 48:64].all()
    values = torch.arange(196.0)
    assert torch.equal(grid.pool(grid.to_pixels(values)), values)
    assert torch.equal(grid.pool(grid.to_grid(values)), values)


def test_grid_rejects_bad_sizes():
    with pytest.raises(InputShapeError):
        PatchGrid(224, 224, 15)
    with pytest.raises(InputShapeError):
        PatchGrid(32, 32, 8).check_coalitions(torch.ones(2, 15, dtype=torch.bool))


def test_token_groups_of_coarse_players():
    groups = PatchGrid(32, 32, 16).token_groups(8, (4, 4))
    assert groups.tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    with pytest.raises(MethodError):
        PatchGrid(36, 36, 12).token_groups(8, (4, 4))


# --------------------------------------------------------------------------------------------- absence
def test_token_drop_keeping_every_patch_equals_the_model(tiny_vit):
    image = tiny_image()
    game = PatchGame(tiny_vit, image, 0, absence=TokenDrop())
    full = tiny_vit.logits(image[None])
    torch.testing.assert_close(game.logits(game.full()), full, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_token_drop_keeping_every_patch_equals_deit(deit, photo_paths):
    image = deit.prepare(photo_paths[0])
    game = PatchGame(deit, image, 0, absence="token-drop")
    torch.testing.assert_close(game.logits(game.full()), deit.logits(image[None]), atol=1e-4, rtol=1e-4)


def test_token_drop_runs_on_kept_tokens_only(tiny_vit):
    """A coalition's logits equal the encoder on exactly its tokens, whatever the chunking."""
    image = tiny_image(1)
    keep = torch.rand(12, 16, generator=torch.Generator().manual_seed(0)) < 0.5
    small = PatchGame(tiny_vit, image, 3, absence=TokenDrop(max_tokens=8))
    large = PatchGame(tiny_vit, image, 3, absence=TokenDrop(max_tokens=10_000))
    tokens = tiny_vit.embed(image[None])
    for row in range(keep.shape[0]):
        index = torch.nonzero(keep[row]).T
        expected = tiny_vit.forward_tokens(tokens, index)
        torch.testing.assert_close(small.logits(keep[row:row + 1]), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(small.logits(keep), large.logits(keep), atol=1e-5, rtol=1e-5)
    assert small.passes == keep.shape[0] * 2  # once row by row above, once all together


def test_coarse_players_drop_their_tokens(tiny_vit):
    image = tiny_image(2)
    game = PatchGame(tiny_vit, image, 0, grid=PatchGrid(32, 32, 16))
    assert game.num_players == 4
    keep = torch.tensor([[True, False, False, True]])
    expected = tiny_vit.forward_tokens(tiny_vit.embed(image[None]), torch.tensor([[0, 1, 4, 5, 10, 11, 14, 15]]))
    torch.testing.assert_close(game.logits(keep), expected, atol=1e-5, rtol=1e-5)


def test_fill_mean_is_zero_in_normalised_space(tiny_cnn):
    image = tiny_image(3)
    base = Fill("mean").baseline(tiny_cnn, image)
    assert tiny_cnn.normalize(base[None]).abs().max() < 1e-6
    game = PatchGame(tiny_cnn, image, 0)
    assert game.absence.describe() == "fill:mean"
    torch.testing.assert_close(game.logits(game.full()), tiny_cnn.logits(image[None]))
    torch.testing.assert_close(game.logits(game.empty()), tiny_cnn.logits(base[None]))


@pytest.mark.parametrize("value", ["black", "blur", 0.25, (0.1, 0.2, 0.3)])
def test_fill_values(tiny_cnn, value):
    image = tiny_image(4)
    base = Fill(value).baseline(tiny_cnn, image)
    assert base.shape == image.shape
    keep = torch.zeros(1, 4, dtype=torch.bool)
    keep[0, 0] = True
    game = PatchGame(tiny_cnn, image, 0, absence=Fill(value), grid=PatchGrid(32, 32, 16))
    composite = base.clone()
    composite[:, :16, :16] = image[:, :16, :16]
    torch.testing.assert_close(game.logits(keep), tiny_cnn.logits(composite[None]), atol=1e-5, rtol=1e-5)


def test_attention_mask_keeping_every_patch_equals_the_model(tiny_vit):
    image = tiny_image(5)
    game = PatchGame(tiny_vit, image, 0, absence=AttentionMask(layer=1))
    torch.testing.assert_close(game.logits(game.full()), tiny_vit.logits(image[None]), atol=1e-5, rtol=1e-5)
    keep = torch.rand(3, 16, generator=torch.Generator().manual_seed(1)) < 0.5
    expected = tiny_vit.forward_masked(image[None], keep, layer=1)
    torch.testing.assert_close(game.logits(keep), expected, atol=1e-5, rtol=1e-5)


def test_token_strategies_refuse_cnns(tiny_cnn):
    for absence in (TokenDrop(), AttentionMask(0)):
        with pytest.raises(MethodError, match="Vision Transformer"):
            PatchGame(tiny_cnn, tiny_image(), 0, absence=absence)


def test_make_absence_parses_names(tiny_vit, tiny_cnn):
    assert isinstance(make_absence("auto", tiny_vit), TokenDrop)
    assert isinstance(make_absence(None, tiny_cnn), Fill)
    assert make_absence("fill:blur").describe() == "fill:blur"
    assert make_absence("fill:0.5").value == 0.5
    assert make_absence("attention-mask:3").layer == 3
    with pytest.raises(ClearsightError):
        make_absence("nothing")
    with pytest.raises(MethodError):
        PatchGame(tiny_vit, tiny_image(), 0, absence=AttentionMask(layer=5))


# ------------------------------------------------------------------------------------------------ game
def test_value_groups_sizes_and_keeps_row_order(tiny_vit):
    image = tiny_image(6)
    game = PatchGame(tiny_vit, image, 2)
    keep = torch.rand(9, 16, generator=torch.Generator().manual_seed(2)) < torch.linspace(0.1, 0.9, 9)[:, None]
    values = game.value(keep)
    one_by_one = torch.cat([game.value(keep[i:i + 1]) for i in range(9)])
    torch.testing.assert_close(values, one_by_one, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values, log_odds(game.logits(keep), 2))
    before = tiny_vit.passes
    game.value(keep)
    assert tiny_vit.passes - before == 9


def test_value_of_index_lists(tiny_vit):
    game = PatchGame(tiny_vit, tiny_image(7), 1)
    keep = game.coalitions([[0, 5], [], list(range(16))])
    assert keep.sum(1).tolist() == [2, 0, 16]
    assert torch.isfinite(game.value(keep)).all()  # the empty coalition (CLS only) is allowed


def test_with_score_shares_the_bound_absence(tiny_vit):
    game = PatchGame(tiny_vit, tiny_image(8), 1)
    other = game.with_score("probability", target=4)
    assert other.bound is game.bound and other.target == 4
    p = other.value(game.full())
    torch.testing.assert_close(p, tiny_vit.logits(tiny_image(8)[None]).softmax(1)[:, 4], atol=1e-5, rtol=1e-5)


def test_fast_timm_encoder_matches_forward_tokens(tiny_vit):
    """The CLS-only last block gives the model's own logits."""
    from clearsight.parts.absence import TimmTokenEncoder

    assert TimmTokenEncoder.supports(tiny_vit)
    image = tiny_image(9)
    tokens = tiny_vit.embed(image[None])
    index = torch.stack([torch.randperm(16, generator=torch.Generator().manual_seed(i))[:9] for i in range(5)])
    with torch.inference_mode():
        fast = TimmTokenEncoder(tiny_vit)(tokens, index)
        slow = tiny_vit.forward_tokens(tokens, index)
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
        rough = TimmTokenEncoder(tiny_vit, "bf16")(tokens, index)
    assert rough.dtype == torch.float32 and (rough - slow).abs().max() < 0.1
    assert make_absence("token-drop:bf16").describe() == "token-drop[bf16]"
    with pytest.raises(MethodError):
        TokenDrop(precision="fp8")
