"""Models: real accuracy on the shared photos, token access equal to the model, clear loading errors."""

from __future__ import annotations

import pytest
import torch

from clearsight.errors import InputShapeError, MethodError, ModelError, TargetError
from clearsight.models import load_model, wrap_model

from .conftest import MODELS, SAMPLES


def top1(clf, rows) -> float:
    correct = 0
    for start in range(0, len(rows), 50):
        chunk = rows[start:start + 50]
        images = torch.stack([clf.prepare(SAMPLES / r["file"]) for r in chunk])
        predicted, _ = clf.predict(images)
        correct += int((predicted == torch.tensor([int(r["class_index"]) for r in chunk])).sum())
    return correct / len(rows)


@pytest.mark.slow
@pytest.mark.parametrize("fixture,floor", [("effnet", 0.85), ("deit", 0.80), ("mobilenet", 0.80)])
def test_top1_on_the_200_shared_photos(request, labels, fixture, floor):
    assert len(labels) == 200
    assert top1(request.getfixturevalue(fixture), labels) >= floor


@pytest.mark.slow
def test_builtin_model_known_answers(effnet):
    import skimage.data
    from PIL import Image

    coffee = effnet.prepare(Image.fromarray(skimage.data.coffee()))
    assert int(effnet.predict(coffee[None])[0]) == 967  # espresso
    assert effnet.class_name(967) == "espresso"


@pytest.mark.slow
def test_forward_tokens_all_kept_equals_model(deit, photo_paths):
    images = torch.stack([deit.prepare(p) for p in photo_paths[:3]])
    with torch.inference_mode():
        reference = deit.model(deit.normalize(images))
        tokens = deit.embed(images)
        assert torch.allclose(deit.forward_tokens(tokens), reference, atol=1e-4)
        keep_all = torch.arange(196).expand(3, -1)
        assert torch.allclose(deit.forward_tokens(tokens, keep_all), reference, atol=1e-4)
        # order of kept tokens is irrelevant: positions were added before dropping
        shuffled = torch.stack([torch.randperm(196, generator=torch.Generator().manual_seed(i)) for i in range(3)])
        assert torch.allclose(deit.forward_tokens(tokens, shuffled), reference, atol=1e-4)
        half = keep_all[:, ::2]
        dropped = deit.forward_tokens(tokens, half)
        assert (dropped - reference).abs().max() > 0.1


@pytest.mark.slow
def test_cls_only_forward_gives_the_models_logits_and_input_gradients(deit, photo_paths):
    """DeiT's forward skips the last block's non-CLS rows: the logits and the gradients with respect to
    the image (what Grad-CAM and the RDE optimisers use) must be those of timm's own forward."""
    assert deit.cls_only
    images = torch.stack([deit.prepare(p) for p in photo_paths[:2]]).requires_grad_(True)
    ours = deit(images)
    ours[:, 3].sum().backward()
    grad_ours = images.grad.clone()
    images.grad = None
    reference = deit.model(deit.normalize(images))
    reference[:, 3].sum().backward()
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(grad_ours, images.grad, atol=1e-6, rtol=1e-3)


@pytest.mark.slow
def test_attention_masking_from_layer0_matches_token_dropping(deit, photo_paths):
    image = deit.prepare(photo_paths[0])[None]
    keep_mask = torch.zeros(2, 196, dtype=torch.bool)
    keep_mask[0, :98] = True
    keep_mask[1, ::3] = True
    with torch.inference_mode():
        tokens = deit.embed(image)
        for row in range(2):
            keep = keep_mask[row].nonzero().T
            dropped = deit.forward_tokens(tokens, keep)
            masked = deit.forward_masked(image, keep_mask[row:row + 1], layer=0)
            assert torch.allclose(dropped, masked, atol=1e-3)
        full = deit.forward_masked(image, torch.ones(1, 196, dtype=torch.bool), layer=0)
        assert torch.allclose(full, deit.model(deit.normalize(image)), atol=1e-4)
        late = deit.forward_masked(image, keep_mask[:1], layer=11)  # masking only the last block changes less
        early = deit.forward_masked(image, keep_mask[:1], layer=0)
        assert not torch.allclose(late, early, atol=1e-3)


def test_captured_attention_equals_timm_unfused_attention(tiny_vit):
    """Independent check: timm's own attention (fused attention off, weights taken from attn_drop)."""
    model = tiny_vit.model
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    captured: list[torch.Tensor] = []
    handles = [blk.attn.attn_drop.register_forward_hook(lambda m, i, o: captured.append(o.detach()))
               for blk in model.blocks]
    before = [blk.attn.fused_attn for blk in model.blocks]
    for blk in model.blocks:
        blk.attn.fused_attn = False
    try:
        with torch.no_grad():
            model(tiny_vit.normalize(images))
    finally:
        for blk, flag in zip(model.blocks, before):
            blk.attn.fused_attn = flag
        for h in handles:
            h.remove()
    ours = tiny_vit.attentions(images)
    assert len(ours) == len(captured) == 2
    for a, b in zip(ours, captured):
        assert torch.allclose(a, b, atol=1e-6)
    assert [blk.attn.fused_attn for blk in model.blocks] == before  # the model was left as it was


def test_forward_tokens_equals_timms_own_blocks_on_the_kept_tokens(tiny_vit):
    """Independent check of the one token path (CLS-only last block, fp32): timm's own ``Block.forward`` on
    the prefix plus the kept tokens, then its head; bf16 runs a bf16 copy and stays close; the block written
    out (``timm_block``) equals timm's block on every row, and on the CLS row when asked for that row only."""
    from clearsight.models.token import timm_block

    model = tiny_vit.model
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    keep = torch.stack([torch.randperm(16, generator=torch.Generator().manual_seed(i))[:6] for i in range(4)])
    with torch.inference_mode():
        tokens = tiny_vit.embed(image)
        kept = tokens.expand(4, -1, -1).gather(1, keep[:, :, None].expand(-1, -1, tokens.shape[2]))
        x = model.norm_pre(torch.cat([tiny_vit.adapter.prefix_tokens(4), kept], dim=1))
        for block in model.blocks:
            x = block(x)
        reference = model.forward_head(model.norm(x))
        torch.testing.assert_close(tiny_vit.forward_tokens(tokens, keep), reference, atol=1e-5, rtol=1e-5)
        rough = tiny_vit.forward_tokens(tokens, keep, precision="bf16")
        assert rough.dtype == torch.float32 and (rough - reference).abs().max() < 0.1
        seq = torch.rand(2, 9, 16, generator=torch.Generator().manual_seed(4))
        block = model.blocks[0]
        full, weights = timm_block(block, seq, want_attention=True)
        torch.testing.assert_close(full, block(seq), atol=1e-6, rtol=1e-5)
        assert weights.shape == (2, 2, 9, 9)
        torch.testing.assert_close(timm_block(block, seq, cls_only=True)[0], block(seq)[:, :1], atol=1e-6, rtol=1e-5)
    with pytest.raises(MethodError, match="precision"):
        tiny_vit.forward_tokens(tokens, keep, precision="fp16")


def test_token_classifier_geometry(tiny_vit):
    assert tiny_vit.grid == (4, 4) and tiny_vit.patch_size == 8 and tiny_vit.num_prefix_tokens == 1
    with pytest.raises(InputShapeError):
        tiny_vit.embed(torch.rand(1, 3, 40, 40))


def test_passes_are_counted(tiny_vit):
    before = tiny_vit.passes
    tiny_vit.logits(torch.rand(5, 3, 32, 32))
    tokens = tiny_vit.embed(torch.rand(1, 3, 32, 32))
    with torch.inference_mode():
        tiny_vit.forward_tokens(tokens, torch.zeros(7, 3, dtype=torch.long))
    assert tiny_vit.passes - before == 12


def test_bad_inputs(tiny_cnn):
    with pytest.raises(InputShapeError):
        tiny_cnn(torch.rand(3, 32))
    with pytest.raises(InputShapeError):
        tiny_cnn(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(TargetError):
        tiny_cnn.check_target(10)
    with pytest.raises(TargetError):
        tiny_cnn.check_target("no such class")
    assert tiny_cnn.check_target("3") == 3


@pytest.mark.parametrize("spec", ["nope", "timm:", "keras:resnet", "timm:not_a_model_xyz", "torchvision:nope"])
def test_unknown_specs(spec):
    with pytest.raises(ModelError):
        load_model(spec)


def test_weights_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model("torchvision:mobilenet_v2", weights=tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ModelError, match="cannot load"):
        load_model("torchvision:mobilenet_v2", weights=tmp_path / "junk.pth")
    with pytest.raises(ModelError, match="do not fit"):  # DeiT weights into a MobileNet
        load_model("torchvision:mobilenet_v2", weights=MODELS / "deit_tiny_patch16_224.pth")


def test_weights_only_refuses_pickled_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ModelError):
        load_model("torchvision:mobilenet_v2", weights=tmp_path / "evil.pth")


def test_offline_pretrained_download_says_to_pass_weights(monkeypatch):
    import timm

    def refuse(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise OSError("network unreachable")
        return original(*args, **kwargs)

    original = timm.create_model
    monkeypatch.setattr(timm, "create_model", refuse)
    with pytest.raises(ModelError, match="--weights"):
        load_model("timm:deit_tiny_patch16_224")


def test_rollout_features_refuse_cnns(tiny_cnn):
    from clearsight.models import TokenClassifier

    with pytest.raises(MethodError):
        TokenClassifier(tiny_cnn.model)


def test_huggingface_vit_tokens_match_model():
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=32, patch_size=8, num_hidden_layers=2, hidden_size=16,
                                    num_attention_heads=2, intermediate_size=32, num_labels=5)
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config)
    from clearsight.models import Preprocessing

    clf = wrap_model(model, Preprocessing(input_size=32, mean=(0.5,) * 3, std=(0.5,) * 3), name="hf-tiny")
    assert clf.is_token_model and clf.grid == (4, 4)
    images = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        reference = clf.logits(images)
        assert torch.allclose(clf.forward_tokens(clf.embed(images)), reference, atol=1e-5)
        with pytest.raises(MethodError, match="standard timm ViTs only"):
            clf.forward_tokens(clf.embed(images), precision="bf16")
        full = clf.forward_masked(images, torch.ones(2, 16, dtype=torch.bool))
        assert torch.allclose(full, reference, atol=1e-5)
    attentions = clf.attentions(images)
    assert len(attentions) == 2 and attentions[0].shape == (2, 2, 17, 17)
    assert torch.allclose(attentions[0].sum(-1), torch.ones(2, 2, 17), atol=1e-5)


def test_cpu_allocator_tuning_is_applied_once_and_can_be_refused():
    """glibc keeps freed activations mapped (cpu_memory); users can opt out or choose their own values."""
    import subprocess
    import sys

    from clearsight.models.cpu_memory import keep_freed_memory

    probe = "from clearsight.models.cpu_memory import keep_freed_memory as k; print(k(), k())"

    def run(**env):
        import os

        full = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env
        return subprocess.run([sys.executable, "-c", probe], env=full, capture_output=True, text=True,
                              check=True).stdout.split()

    if sys.platform.startswith("linux") and keep_freed_memory():  # glibc: applied, and stays applied
        assert run() == ["True", "True"]
    assert run(CLEARSIGHT_MALLOC_TUNING="0") == ["False", "False"]
    assert run(MALLOC_TRIM_THRESHOLD_="1000000") == ["False", "False"]  # the user's own glibc settings win


def test_weights_digest_tells_checkpoints_of_one_architecture_apart(tiny_cnn):
    """Same name, other weights: another digest (stored results and checkpoints are keyed by it)."""
    import copy

    from clearsight.models import wrap_model

    same = wrap_model(copy.deepcopy(tiny_cnn.model), tiny_cnn.preprocessing, name=tiny_cnn.name)
    other_model = copy.deepcopy(tiny_cnn.model)
    with torch.no_grad():
        next(other_model.parameters())[0, 0, 0, 0] += 1e-3
    other = wrap_model(other_model, tiny_cnn.preprocessing, name=tiny_cnn.name)
    assert same.weights_digest() == tiny_cnn.weights_digest()
    assert other.weights_digest() != tiny_cnn.weights_digest()
