"""The RDE problem of one image: what is fixed while a mask is optimised, and how a mask is scored.

``loss(s) = distortion(model(x), model(z(s))) + lambda_k * sparsity(s) [+ spatial_lambda * spatial(s)]`` with
``z(s)`` the obfuscation of :mod:`clearsight.parts.obfuscation`. The optional spatial term (WaveletX,
ShearletX) is the mean absolute pixel value of the explanation image itself, ``clamp(synthesize(s * h_gray),
0, 1)`` for the grayscale photo's coefficients ``h_gray`` (:func:`clearsight.penalties.spatial_l1`); with
``spatial_lambda = 0`` the problem is CartoonX's exactly (the term is not even computed).

:class:`Problem` holds everything that stays fixed during one
optimisation (image, target, bands, noise model, clean probabilities), so the optimiser, the
pre-optimisation and the evaluation all compute the same loss. :func:`rde_objective` is the quality
measure presets are compared on; :func:`objective_of_explanation` recomputes it from a saved result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ...errors import InputShapeError, MethodError
from ...models import Classifier
from ...parts.obfuscation import NoiseModel, l2_distortion, obfuscate
from ...parts.representations import Bands, Representation, representation_from_settings
from ...penalties import spatial_l1
from ..base import resolve_target

Distortion = Literal["label", "l2", "maximize-target", "kl"]
DISTORTIONS: tuple[str, ...] = ("label", "l2", "maximize-target", "kl")

#: Noise samples and seed of the fixed evaluation set on which presets are compared. The seed differs from
#: the optimiser's default seeds, so that no run is scored on noise it was trained on.
EVAL_SAMPLES = 256
EVAL_SEED = 20230720
_EVAL_CHUNK = 32  # fixed, so the evaluation noise does not depend on memory settings


def distortion(logits: torch.Tensor, clean_probs: torch.Tensor, target: int, kind: str = "label") -> torch.Tensor:
    """Mean distortion over a batch of obfuscations (SPEC A.5).

    ``label``: squared difference of the target's probability; ``maximize-target``: the same against 1;
    ``l2``: Euclidean norm (not squared) of the softmax difference; ``kl``: KL(p_z || p_x).
    """
    probs = logits.float().softmax(dim=1)
    if kind == "label":
        return ((clean_probs[target] - probs[:, target]) ** 2).mean()
    if kind == "maximize-target":
        return ((1.0 - probs[:, target]) ** 2).mean()
    if kind == "l2":
        return l2_distortion(probs, clean_probs).mean()
    if kind == "kl":
        log_q = logits.float().log_softmax(dim=1)
        log_p = clean_probs.clamp_min(1e-30).log()
        return (probs * (log_q - log_p[None])).sum(dim=1).mean()
    raise MethodError(f"unknown distortion {kind!r}; choose one of {', '.join(DISTORTIONS)}")


def sparsity(masks: Bands) -> torch.Tensor:
    """Mean absolute mask value over all mask entries (||s||_1 / k, SPEC A.6)."""
    total = sum(m.abs().sum() for m in masks)
    count = sum(m.numel() for m in masks)
    return total / count


@dataclass
class Problem:
    """Everything fixed during one optimisation: image, target, bands, noise model, loss settings."""

    clf: Classifier
    image: torch.Tensor
    target: int
    representation: Representation
    bands: Bands
    noise: NoiseModel
    clean_probs: torch.Tensor
    lambda_k: float
    distortion: str = "label"
    #: weight of the spatial l1 term (0: none, CartoonX and Pixel RDE)
    spatial_lambda: float = 0.0
    #: the grayscale image's coefficients (``(1, ...)`` per band), built only when ``spatial_lambda > 0``
    gray_bands: Bands | None = None

    @classmethod
    def build(cls, clf: Classifier, image: torch.Tensor, target: int | str | None, representation: Representation,
              lambda_k: float, distortion_kind: str = "label", zero_noise: bool = False,
              noise_kind: str = "gaussian", spatial_lambda: float = 0.0) -> Problem:
        """Fix everything for one optimisation; ``target=None`` explains the prediction, read off the same
        clean pass that gives the reference probabilities."""
        if distortion_kind not in DISTORTIONS:
            raise MethodError(f"unknown distortion {distortion_kind!r}; choose one of {', '.join(DISTORTIONS)}")
        image = image.detach().float()
        with torch.no_grad():
            bands = [b.detach() for b in representation.analyze(image)]
            gray = None
            if spatial_lambda > 0:
                gray = [b.detach() for b in representation.analyze(image.mean(dim=0, keepdim=True))]
            with clf.using_precision("fp32"):
                logits = clf.logits(image[None])
        target, _ = resolve_target(clf, logits, target)
        clean = logits[0].float().softmax(0)
        return cls(clf, image, target, representation, bands, NoiseModel.from_bands(bands, zero_noise, noise_kind),
                   clean, float(lambda_k), distortion_kind, float(spatial_lambda), gray)

    @property
    def size(self) -> tuple[int, int]:
        return (self.image.shape[-2], self.image.shape[-1])

    def mask_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(b.shape[1:]) for b in self.bands]

    def obfuscations(self, masks: Bands, noise: Bands) -> torch.Tensor:
        """The batch of obfuscated images for ``masks`` and a batch of ``noise`` draws."""
        return self.representation.synthesize(obfuscate(self.bands, masks, noise), self.size)

    def distortion_of(self, masks: Bands, noise: Bands) -> torch.Tensor:
        """Mean distortion over a batch of noise draws; differentiable w.r.t. ``masks``."""
        return self.distortion_from(self.clf(self.obfuscations(masks, noise)))

    def distortion_from(self, logits: torch.Tensor) -> torch.Tensor:
        """This problem's mean distortion of the model's ``logits`` on a batch of its obfuscations (several
        photos' obfuscations may share one model pass; each photo scores its own rows)."""
        return distortion(logits, self.clean_probs, self.target, self.distortion)

    def terms(self, masks: Bands, noise: Bands) -> tuple[torch.Tensor, torch.Tensor]:
        """(distortion, sparsity) for one batch of noise; differentiable w.r.t. ``masks``."""
        return self.distortion_of(masks, noise), sparsity(masks)

    def explanation_image(self, masks: Bands) -> torch.Tensor:
        """``clamp(synthesize(s * h_gray), 0, 1)``, ``(H, W)``: the grayscale explanation the spatial term
        penalises; differentiable w.r.t. ``masks`` only (the coefficients are constants)."""
        gray = self.gray_bands
        if gray is None:
            with torch.no_grad():
                gray = [b.detach() for b in self.representation.analyze(self.image.mean(dim=0, keepdim=True))]
        out = self.representation.synthesize([(g * m)[None] for g, m in zip(gray, masks)], self.size)
        return out[0, 0].clamp(0, 1)

    def spatial_of(self, masks: Bands) -> torch.Tensor:
        """The spatial l1 term: mean absolute value of :meth:`explanation_image` (WaveletX, ShearletX)."""
        return spatial_l1(self.explanation_image(masks))


@torch.no_grad()
def rde_objective(problem: Problem, masks: Bands, samples: int = EVAL_SAMPLES, seed: int = EVAL_SEED,
                  distortion_kind: str = "label") -> dict[str, float]:
    """The quality measure presets are compared on: ``label`` distortion over a fixed, seeded set of
    ``samples`` noise draws (fp32, in chunks of 32) plus ``lambda_k`` x sparsity, for a final mask."""
    g = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    with problem.clf.using_precision("fp32"):
        while count < samples:
            n = min(_EVAL_CHUNK, samples - count)
            logits = problem.clf(problem.obfuscations(masks, problem.noise.sample(problem.bands, n, g)))
            total += float(distortion(logits, problem.clean_probs, problem.target, distortion_kind)) * n
            count += n
    dist = total / samples
    spars = float(sparsity(masks))
    out = {"objective": dist + problem.lambda_k * spars, "distortion": dist, "sparsity": spars}
    if problem.spatial_lambda > 0:
        spatial = float(problem.spatial_of(masks))
        out["spatial"] = spatial
        out["objective"] += problem.spatial_lambda * spatial
    return out


def masks_to_arrays(representation: Representation, masks: Bands) -> dict[str, np.ndarray]:
    return {name: m.detach().float().cpu().numpy() for name, m in zip(representation.band_names(), masks)}


def arrays_to_masks(representation: Representation, arrays: dict[str, np.ndarray],
                    device: torch.device | str = "cpu") -> Bands:
    names = representation.band_names()
    missing = [n for n in names if n not in arrays]
    if missing:
        raise InputShapeError(f"mask is missing bands {missing}; expected {names}")
    return [torch.as_tensor(np.asarray(arrays[n], dtype=np.float32), device=device) for n in names]


def objective_of_explanation(clf: Classifier, explanation: Any, samples: int = EVAL_SAMPLES,
                             seed: int = EVAL_SEED, distortion_kind: str = "label") -> dict[str, float]:
    """Recompute the objective of a saved RDE explanation from its mask, image and settings alone
    (``distortion_kind="l2"`` with one sample: the lambda sweep's evaluation, SPEC B.2)."""
    settings = explanation.settings
    if "image" not in explanation.arrays:
        raise MethodError("this explanation does not hold its image (arrays['image']); cannot recompute")
    representation = representation_from_settings(settings)
    image = torch.as_tensor(explanation.arrays["image"], dtype=torch.float32, device=clf.device)
    problem = Problem.build(clf, image, int(explanation.target), representation, float(settings["lambda_k"]),
                            "label", zero_noise=settings.get("noise") == "zero",
                            noise_kind="uniform" if settings.get("noise") == "uniform" else "gaussian",
                            spatial_lambda=float(settings.get("spatial_lambda") or 0.0))
    masks = arrays_to_masks(representation, explanation.mask, clf.device)
    return rde_objective(problem, masks, samples, seed, distortion_kind)
