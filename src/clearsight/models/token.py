"""`TokenClassifier`: what a Vision Transformer offers beyond logits.

MoXI removes image patches by dropping their tokens after the position embeddings; attention rollout needs
every block's attention matrix; attention masking hides absent keys from layer k on. All three need to run
the encoder by hand. Rather than patching the model (the MoXI reference rebinds ``forward`` methods), this
module runs the *unchanged* modules of the model in the right order, through a small adapter per family
(timm ViT/DeiT, Hugging Face ViT). Nothing on the model is modified, so nothing needs restoring, and
timm's fused attention is left as it is for ordinary forward passes.
"""

from __future__ import annotations

import copy
import math
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputShapeError, MethodError
from .classifier import Classifier

#: precisions of :meth:`TokenClassifier.forward_tokens`
TOKEN_PRECISIONS = ("fp32", "bf16")
_BF16_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _ViTAdapter:
    """Uniform access to a ViT family's parts. Subclasses fill in the family-specific bits."""

    patch_size: int
    grid: tuple[int, int]
    num_prefix_tokens: int
    num_heads: int

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    # patch tokens with position embeddings, (B, N, D)
    def patch_tokens(self, pixels: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # prefix tokens (CLS, registers, ...) with their position embeddings, (B, P, D)
    def prefix_tokens(self, batch: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def blocks(self) -> list[nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def run_block(self, block: nn.Module, x: torch.Tensor, key_bias: torch.Tensor | None,
                  want_attention: bool) -> tuple[torch.Tensor, torch.Tensor | None]:  # pragma: no cover
        raise NotImplementedError

    def head(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def gradcam_layer(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
               key_bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain softmax attention, (B,H,T,d) in, context (B,H,T,d) and weights (B,H,T,T) out."""
    logits = (q * scale) @ k.transpose(-2, -1)
    if key_bias is not None:
        logits = logits + key_bias[:, None, None, :].to(logits.dtype)
    weights = logits.softmax(dim=-1)
    return weights @ v, weights


class _TimmViT(_ViTAdapter):
    """timm ``VisionTransformer`` (ViT, DeiT, DeiT-3, register variants with standard blocks)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        pe = model.patch_embed
        self.patch_size = int(pe.patch_size[0])
        self.grid = (int(pe.grid_size[0]), int(pe.grid_size[1]))
        self.num_prefix_tokens = int(model.num_prefix_tokens)
        first = model.blocks[0]
        for attr in ("norm1", "attn", "ls1", "drop_path1", "norm2", "mlp", "ls2", "drop_path2"):
            if not hasattr(first, attr):
                raise MethodError(f"timm model {type(model).__name__} has non-standard blocks (no {attr})")
        self.num_heads = int(first.attn.num_heads)

    def patch_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m.patch_embed(pixels)
        if x.ndim == 4:  # dynamic image size models return (B,H,W,D)
            x = x.flatten(1, 2)
        if m.pos_embed is None:
            return x
        pos = m.pos_embed if m.no_embed_class else m.pos_embed[:, self.num_prefix_tokens:]
        return x + pos

    def prefix_tokens(self, batch: int) -> torch.Tensor:
        m = self.model
        parts = [t.expand(batch, -1, -1) for t in (m.cls_token, getattr(m, "reg_token", None)) if t is not None]
        if not parts:
            return m.pos_embed.new_zeros(batch, 0, m.embed_dim)
        prefix = torch.cat(parts, dim=1)
        if m.pos_embed is not None and not m.no_embed_class:
            prefix = prefix + m.pos_embed[:, : self.num_prefix_tokens]
        return prefix

    def blocks(self) -> list[nn.Module]:
        return list(self.model.blocks)

    def run_block(self, block, x, key_bias, want_attention):
        if key_bias is None and not want_attention:
            return block(x), None
        return timm_block(block, x, key_bias, want_attention)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        return m.forward_head(m.norm(x))

    def gradcam_layer(self) -> nn.Module:
        return self.model.blocks[-1].norm1

    def before_blocks(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.norm_pre(x)


class _HuggingFaceViT(_ViTAdapter):
    """Hugging Face ``ViTForImageClassification`` (and DeiT models sharing its layout)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.backbone = getattr(model, "vit", None) or getattr(model, "deit", None)
        if self.backbone is None:
            raise MethodError(f"Hugging Face model {type(model).__name__} is not a ViT classifier")
        cfg = model.config
        self.patch_size = int(cfg.patch_size)
        side = int(cfg.image_size) // self.patch_size
        self.grid = (side, side)
        emb = self.backbone.embeddings
        self.num_prefix_tokens = 1 + int(getattr(emb, "distillation_token", None) is not None)
        self.num_heads = int(cfg.num_attention_heads)

    def patch_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        emb = self.backbone.embeddings
        x = emb.patch_embeddings(pixels)
        return x + emb.position_embeddings[:, self.num_prefix_tokens:]

    def prefix_tokens(self, batch: int) -> torch.Tensor:
        emb = self.backbone.embeddings
        parts = [emb.cls_token.expand(batch, -1, -1)]
        if self.num_prefix_tokens == 2:
            parts.append(emb.distillation_token.expand(batch, -1, -1))
        return torch.cat(parts, dim=1) + emb.position_embeddings[:, : self.num_prefix_tokens]

    def blocks(self) -> list[nn.Module]:
        # transformers 5 keeps the layers on the backbone; 4.x under ``encoder.layer``
        layers = getattr(self.backbone, "layers", None)
        return list(layers if layers is not None else self.backbone.encoder.layer)

    @staticmethod
    def _projections(layer: nn.Module) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
        """(query, key, value, output) linear layers, in the 5.x or the 4.x layout."""
        att = layer.attention
        if hasattr(att, "q_proj"):
            return att.q_proj, att.k_proj, att.v_proj, att.o_proj
        return att.attention.query, att.attention.key, att.attention.value, att.output.dense

    def _mlp(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The feed-forward half of a block, residual included."""
        h = layer.layernorm_after(x)
        if hasattr(layer, "mlp"):
            return x + layer.dropout(layer.mlp(h))
        return layer.output(layer.intermediate(h), x)

    def run_block(self, layer, x, key_bias, want_attention):
        h = layer.layernorm_before(x)
        query, key, value, out = self._projections(layer)
        B, T, _ = h.shape
        heads = self.num_heads
        d = query.out_features // heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, T, heads, d).transpose(1, 2)

        ctx, weights = _attention(split(query(h)), split(key(h)), split(value(h)), 1.0 / math.sqrt(d), key_bias)
        x = x + out(ctx.transpose(1, 2).reshape(B, T, heads * d))
        return self._mlp(layer, x), (weights if want_attention else None)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone.layernorm(x)
        if self.num_prefix_tokens == 2 and hasattr(self.model, "distillation_classifier"):
            return (self.model.cls_classifier(x[:, 0]) + self.model.distillation_classifier(x[:, 1])) / 2
        classifier = getattr(self.model, "classifier", None) or self.model.cls_classifier
        return classifier(x[:, 0])

    def gradcam_layer(self) -> nn.Module:
        return self.blocks()[-1].layernorm_before

    def before_blocks(self, x: torch.Tensor) -> torch.Tensor:
        return x


def supports_cls_only(model: nn.Module) -> bool:
    """Whether ``model`` is a timm ``VisionTransformer`` with standard blocks whose head reads the CLS token
    alone, so that :func:`timm_cls_logits` gives its logits."""
    try:
        from timm.models.vision_transformer import VisionTransformer
    except ImportError:  # pragma: no cover - timm is a dependency
        return False
    if not isinstance(model, VisionTransformer) or model.global_pool != "token" or model.attn_pool is not None:
        return False
    last = model.blocks[-1]
    needed = ("norm1", "attn", "ls1", "drop_path1", "norm2", "mlp", "ls2", "drop_path2")
    return all(hasattr(last, a) for a in needed) and all(
        hasattr(last.attn, a) for a in ("qkv", "q_norm", "k_norm", "proj", "num_heads", "head_dim"))


def timm_block(block: nn.Module, x: torch.Tensor, key_bias: torch.Tensor | None = None,
               want_attention: bool = False, cls_only: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A timm ``Block`` written out, for what its own ``forward`` cannot do: return the attention weights,
    hide keys (``key_bias``, ``(B,T)``), or compute the output of the first (CLS) row only.

    With ``cls_only`` keys and values still come from every token, but attention, projection and MLP run
    for the CLS row alone, ``(B,1,D)`` out: the head reads nothing else, so logits and input gradients are
    those of the full block (to float rounding) for about 7% less work on DeiT-Tiny. Without weights or a
    key bias, attention is PyTorch's fused kernel; with them, :func:`_attention`. Returns (output, weights or
    None).
    """
    attn = block.attn
    h = block.norm1(x)
    B, T, _ = h.shape
    rows = 1 if cls_only else T
    qkv = attn.qkv(h).reshape(B, T, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = attn.q_norm(q[:, :, :1] if cls_only else q), attn.k_norm(k)
    if key_bias is None and not want_attention:
        ctx, weights = F.scaled_dot_product_attention(q, k, v, scale=float(attn.scale)), None
    else:
        ctx, weights = _attention(q, k, v, attn.scale, key_bias)
    ctx = ctx.transpose(1, 2).reshape(B, rows, -1)
    ctx = attn.norm(ctx) if hasattr(attn, "norm") else ctx
    gate = getattr(attn, "gate", None)
    if gate is not None:
        ctx = ctx * gate(h[:, :1] if cls_only else h).sigmoid()
    out = (x[:, :1] if cls_only else x) + block.drop_path1(block.ls1(attn.proj_drop(attn.proj(ctx))))
    return out + block.drop_path2(block.ls2(block.mlp(block.norm2(out)))), weights


def timm_cls_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of a :func:`supports_cls_only` model from its token sequence ``x`` (prefix tokens first, position
    embeddings added), with the last block computed for the CLS token only."""
    x = model.norm_pre(x)
    for block in model.blocks[:-1]:
        x = block(x)
    return model.forward_head(model.norm(timm_block(model.blocks[-1], x, cls_only=True)[0]))


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 pays off; elsewhere torch
    emulates it and it is slower than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_copy(model: nn.Module) -> nn.Module:
    """A bfloat16 copy of ``model`` in eval mode, made once per model (kept while the model lives)."""
    if model not in _BF16_COPIES:
        _BF16_COPIES[model] = copy.deepcopy(model).to(torch.bfloat16).eval()
    return _BF16_COPIES[model]


def vit_adapter(model: nn.Module) -> _ViTAdapter | None:
    """The adapter for a supported ViT, or None for any other model."""
    try:
        from timm.models.vision_transformer import VisionTransformer
    except ImportError:  # pragma: no cover - timm is a dependency
        VisionTransformer = ()  # type: ignore[assignment]
    if isinstance(model, VisionTransformer):
        return _TimmViT(model)
    if type(model).__module__.startswith("transformers.") and hasattr(model, "config"):
        if getattr(model.config, "model_type", "") in ("vit", "deit"):
            return _HuggingFaceViT(model)
    return None


class TokenClassifier(Classifier):
    """A ViT classifier with access to its tokens.

    - ``embed(images)``: patch tokens ``(B,N,D)`` with position embeddings added (prefix tokens excluded);
    - ``forward_tokens(tokens, keep, precision)``: the encoder on the prefix tokens plus only the kept patch
      tokens; a coalition of k patches costs k tokens, not N;
    - ``attentions(images)``: every block's attention ``(B,heads,T,T)``;
    - ``forward_masked(images, keep, layer)``: all tokens present, but absent keys hidden from attention
      in blocks ``layer..L-1`` (MoXI appendix D).
    """

    is_token_model = True

    def __init__(self, model: nn.Module, *args, **kwargs) -> None:
        adapter = vit_adapter(model)
        if adapter is None:
            raise MethodError(f"{type(model).__name__} is not a supported Vision Transformer")
        super().__init__(model, *args, **kwargs)
        self.adapter = adapter
        #: standard timm ViTs skip the non-CLS rows of the last block in every forward pass (same logits)
        self.cls_only = supports_cls_only(model)

    @property
    def patch_size(self) -> int:
        return self.adapter.patch_size

    @property
    def grid(self) -> tuple[int, int]:
        return self.adapter.grid

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def num_prefix_tokens(self) -> int:
        return self.adapter.num_prefix_tokens

    def _check_size(self, images: torch.Tensor) -> None:
        expected = (self.grid[0] * self.patch_size, self.grid[1] * self.patch_size)
        if tuple(images.shape[-2:]) != expected:
            raise InputShapeError(
                f"{self.name} takes {expected[0]}x{expected[1]} images; got {images.shape[-2]}x{images.shape[-1]}"
            )

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.cls_only:
            return super()._forward(images)
        self._check_size(images)
        with self.autocast():
            return timm_cls_logits(self.model, self._sequence(images)).float()

    def _sequence(self, images: torch.Tensor, rows: int | None = None) -> torch.Tensor:
        """The full token sequence (prefix tokens, then every patch token) of [0,1] images, ``rows`` copies
        of a single image if given. Call inside :meth:`autocast`."""
        patches = self.adapter.patch_tokens(self.normalize(images))
        if rows is not None and patches.shape[0] == 1:
            patches = patches.expand(rows, -1, -1)
        return torch.cat([self.adapter.prefix_tokens(patches.shape[0]).to(patches.dtype), patches], dim=1)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Patch tokens with position embeddings, ``(B,N,D)``, from [0,1] images."""
        images = self.check_images(images).to(self.device)
        self._check_size(images)
        with self.autocast():
            return self.adapter.patch_tokens(self.normalize(images))

    def _encode(self, x: torch.Tensor, key_bias: torch.Tensor | None = None, from_layer: int = 0,
                want_attention: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.adapter.before_blocks(x)
        maps: list[torch.Tensor] = []
        for i, block in enumerate(self.adapter.blocks()):
            bias = key_bias if i >= from_layer else None
            x, weights = self.adapter.run_block(block, x, bias, want_attention)
            if want_attention:
                maps.append(weights)
        return self.adapter.head(x).float(), maps

    def forward_tokens(self, tokens: torch.Tensor, keep: torch.Tensor | None = None,
                       precision: str = "fp32") -> torch.Tensor:
        """Logits (float32) from the prefix tokens plus the patch tokens listed in ``keep`` (``(B,k)`` indices).

        ``tokens`` comes from :meth:`embed` (``(B,N,D)``, or ``(1,N,D)`` shared by every row of ``keep``).
        ``keep=None`` keeps every patch. Each row of ``keep`` counts as one model pass. This is the one
        token-dropping path (MoXI's, through :class:`~clearsight.parts.absence.TokenDrop`): standard timm ViTs
        compute the last block for the CLS row only (:func:`timm_block`), as :meth:`__call__` does.

        ``precision="fp32"`` runs the model's own weights (under the classifier's autocast setting);
        ``"bf16"`` runs a bfloat16 copy of them (made once per model; standard timm ViTs only), about twice
        as fast on CPUs with AVX512-BF16 and slower on CPUs without, with logits off by ~0.1.
        """
        if precision not in TOKEN_PRECISIONS:
            raise MethodError(f"precision must be one of {', '.join(TOKEN_PRECISIONS)}; got {precision!r}")
        if precision != "fp32" and not self.cls_only:
            raise MethodError(f"bf16 token dropping supports standard timm ViTs only, not {self.name}")
        if keep is None:
            kept = tokens
        else:
            keep = keep.to(tokens.device).long()
            if keep.ndim != 2:
                raise InputShapeError(f"keep must be a (B,k) index tensor; got shape {tuple(keep.shape)}")
            src = tokens.expand(keep.shape[0], -1, -1) if tokens.shape[0] == 1 else tokens
            kept = src.gather(1, keep[:, :, None].expand(-1, -1, tokens.shape[2]))
        self.passes += kept.shape[0]
        x = torch.cat([self.adapter.prefix_tokens(kept.shape[0]).to(kept.dtype), kept], dim=1)
        if not self.cls_only:
            with self.autocast():
                return self._encode(x)[0]
        if precision == "bf16":
            return timm_cls_logits(bf16_copy(self.model), x.to(torch.bfloat16)).float()
        with self.autocast():
            return timm_cls_logits(self.model, x).float()

    def key_bias(self, keep_mask: torch.Tensor) -> torch.Tensor:
        """Additive attention bias ``(B,T)``: 0 for prefix and kept patches, -inf for absent ones."""
        keep_mask = keep_mask.to(self.device).bool()
        prefix = torch.ones(keep_mask.shape[0], self.num_prefix_tokens, dtype=torch.bool, device=self.device)
        full = torch.cat([prefix, keep_mask], dim=1)
        bias = torch.zeros(full.shape, device=self.device)
        return bias.masked_fill_(~full, float("-inf"))

    def forward_masked(self, images: torch.Tensor, keep_mask: torch.Tensor, layer: int = 0) -> torch.Tensor:
        """Logits with every token present but absent patches (``keep_mask`` False, ``(B,N)``) hidden as
        attention keys in blocks ``layer`` and later."""
        images = self.check_images(images).to(self.device)
        self._check_size(images)
        if keep_mask.shape[-1] != self.num_patches:
            raise InputShapeError(f"keep_mask must have {self.num_patches} columns; got {keep_mask.shape[-1]}")
        B = keep_mask.shape[0]
        self.passes += B
        with self.autocast():
            x = self._sequence(images, rows=B)
            return self._encode(x, key_bias=self.key_bias(keep_mask), from_layer=layer)[0]

    def attentions(self, images: torch.Tensor, with_logits: bool = False):
        """Every block's attention weights, a list of ``(B,heads,T,T)`` tensors (T = prefix + patches);
        with ``with_logits=True`` also the logits of the same pass, as ``(maps, logits)``.

        Computed by running the blocks' own modules explicitly, so it works whether or not timm uses fused
        attention, and leaves the model untouched.
        """
        images = self.check_images(images).to(self.device)
        self._check_size(images)
        self.passes += images.shape[0]
        with torch.no_grad(), self.autocast():
            logits, maps = self._encode(self._sequence(images), want_attention=True)
        maps = [a.float() for a in maps]
        return (maps, logits) if with_logits else maps

    def gradcam_layer(self) -> nn.Module:
        """The module whose tokens Grad-CAM uses: the last block's first LayerNorm."""
        return self.adapter.gradcam_layer()
