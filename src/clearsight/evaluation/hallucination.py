"""Scores for explanations that are images: hallucinated edges, and conciseness-preciseness (CP).

Kolek et al. (ShearletX, CVPR 2023) observed that mask explanations in a pixel or wavelet basis can
*hallucinate*: the masked image has edges the photo does not have (the mask's own borders), and the
classifier may react to those instead of to the photo. Two measures from that paper:

* :func:`hallucination_score`: the share of the explanation's edges that lie away from the photo's edges,
  counted relative to the number of photo edges. 0 means every edge of the explanation is (within a pixel)
  an edge of the photo.
* :func:`cp_scores`: how much of the class probability an explanation keeps per unit of the photo's
  information it keeps, with information measured as the l1 norm (CP-l1) or the exponential of the entropy
  (CP-entropy) of the coefficients in a representation (pixels, wavelets or shearlets).

Any image counts as an explanation: a CartoonX/WaveletX/ShearletX image, a masked photo, or a saliency map
times the photo (:func:`saliency_explanation_image`). Images are ``(3,H,W)`` or ``(H,W)`` (grayscale,
e.g. ``Explanation.cartoon``) tensors or arrays in [0,1]; ``(H,W,3)`` arrays (``render="color"`` cartoons)
are accepted too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputShapeError, MethodError
from ..models import Classifier, resize_map

#: threshold on the Sobel magnitude above which a pixel is an edge (the reference's value)
EDGE_THRESHOLD = 0.1
#: added inside the logarithm of the entropy, as the reference does (keeps log(0) finite)
ENTROPY_EPS = 1e-7
REPRESENTATIONS: tuple[str, ...] = ("pixel", "wavelet", "shearlet")


# ------------------------------------------------------------------------------------------- images
def as_image(image: Any, name: str = "image") -> torch.Tensor:
    """A ``(C,H,W)`` float64 tensor (C = 1 or 3) from a ``(H,W)``, ``(C,H,W)`` or ``(H,W,C)`` image (8-bit
    pixels are divided by 255; the edge threshold assumes values in [0,1])."""
    x = image.detach() if isinstance(image, torch.Tensor) else torch.as_tensor(np.asarray(image))
    if x.dtype == torch.uint8:  # 8-bit pixels, as PIL gives them
        x = x.to(torch.float64) / 255
    elif not x.is_floating_point():
        raise InputShapeError(f"{name} must be a float image in [0,1] or 8-bit pixels; got dtype {x.dtype}")
    x = x.to(torch.float64)
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 3 and x.shape[0] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(2, 0, 1)
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise InputShapeError(f"{name} must have shape (H,W), (1|3,H,W) or (H,W,1|3); got {tuple(x.shape)}")
    return x


def _same_size(explanation: torch.Tensor, photo: torch.Tensor) -> None:
    if explanation.shape[-2:] != photo.shape[-2:]:
        raise InputShapeError(f"the explanation is {tuple(explanation.shape[-2:])} pixels but the photo is "
                              f"{tuple(photo.shape[-2:])}; render the explanation at the photo's size")


def saliency_explanation_image(photo: Any, saliency: Any) -> torch.Tensor:
    """The photo times its saliency map, an explanation image like a masked photo (``(3,H,W)``).

    The map is resized bilinearly to the photo, negative values are cut to 0 (they argue against the class,
    and a mask keeps or drops, it does not invert), and it is divided by its maximum, so that the most salient
    pixel keeps its full value, as a mask of 1 would. An all-zero map gives a black image.
    """
    x = as_image(photo, "photo")
    s = torch.as_tensor(np.asarray(saliency.detach().cpu() if isinstance(saliency, torch.Tensor) else saliency),
                        dtype=torch.float64)
    if s.ndim != 2:
        raise InputShapeError(f"a saliency map must have shape (h,w); got {tuple(s.shape)}")
    if not torch.isfinite(s).all():
        raise InputShapeError("the saliency map holds NaN or infinite values")
    if s.shape != x.shape[-2:]:
        s = resize_map(s, tuple(x.shape[-2:])).to(torch.float64)
    s = s.clamp_min(0)
    top = s.max()
    s = s / top if top > 0 else s
    return x * s[None]


# -------------------------------------------------------------------------------------------- edges
def sobel_magnitude(image: Any) -> torch.Tensor:
    """Sobel gradient magnitude ``(H,W)`` of the image's grayscale (channel mean).

    The kernels are divided by 8 (the sum of their absolute values) and the border replicated, and the
    magnitude is ``sqrt(gx^2 + gy^2 + 1e-6)``: kornia's ``filters.sobel``, which the reference uses. A step
    from 0 to 1 thus has magnitude 0.5.
    """
    x = as_image(image)
    gray = x.mean(dim=0)[None, None]
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64) / 8
    kernels = torch.stack([kx, kx.T])[:, None]
    g = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)[0]
    return (g.pow(2).sum(dim=0) + 1e-6).sqrt()


def edge_map(image: Any, threshold: float = EDGE_THRESHOLD, normalize: bool = False) -> torch.Tensor:
    """Boolean ``(H,W)`` edges: Sobel magnitude above ``threshold``; ``normalize`` first divides the image by
    its maximum (what the reference does to explanations, not to photos)."""
    x = as_image(image)
    if normalize:
        top = x.max()
        x = x / top if top > 0 else x
    return sobel_magnitude(x) > threshold


def dilate(edges: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Binary dilation by a ``size`` x ``size`` square (the outside of the image counts as no edge)."""
    e = edges.to(torch.float64)[None, None]
    return F.max_pool2d(e, size, stride=1, padding=size // 2)[0, 0] > 0


def hallucination_score(explanation_image: Any, photo: Any, threshold: float = EDGE_THRESHOLD) -> float:
    """Edges of the explanation that are not edges of the photo, per edge of the photo.

    ``#(E(e) and not dilate3x3(E(x))) / #E(x)`` with ``E`` the Sobel edge map of the grayscale image
    thresholded at ``threshold`` (:func:`edge_map`), the explanation ``e`` divided by its maximum first and
    the photo ``x`` taken as it is.

    This matches ``scatterplot.py`` of the reference code (skmda37/ShearletX) with its default edge
    extractor, ``kornia.filters.sobel``: grayscale as the channel mean (``sum/3``), the explanation divided
    by its maximum, threshold 0.1 with ``>``, a 3x3 dilation of the photo's edges, and the count of edge
    pixels outside the dilated photo edges divided by the number of photo edges. One deviation: the paper's
    published scatter plots pass a different extractor to the same code (CoShREM shearlet edges with
    ``min_contrast=3``, from the ``coshrem`` package), which clearsight does not depend on; scores from the
    two extractors are not interchangeable.
    """
    e, x = as_image(explanation_image, "explanation image"), as_image(photo, "photo")
    _same_size(e, x)
    photo_edges = edge_map(x, threshold)
    count = int(photo_edges.sum())
    if count == 0:
        raise InputShapeError(f"the photo has no edges at Sobel threshold {threshold}: the hallucination score "
                              "is relative to the photo's edges and undefined without any")
    extra = edge_map(e, threshold, normalize=True) & ~dilate(photo_edges)
    return int(extra.sum()) / count


# ----------------------------------------------------------------------------------- conciseness (CP)
@dataclass(frozen=True)
class CPScores:
    """Conciseness-preciseness of one explanation image (see :func:`cp_scores`)."""

    cp_l1: float
    cp_entropy: float
    #: p(target | explanation) / p(target | photo)
    retained_probability: float
    probability_photo: float
    probability_explanation: float
    #: ||coefficients(explanation)||_1 / ||coefficients(photo)||_1
    l1_ratio: float
    #: entropies (natural log) of the normalised squared coefficients
    entropy_explanation: float
    entropy_photo: float
    representation: str
    target: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def coefficients(image: torch.Tensor, representation: Any) -> list[torch.Tensor]:
    """The coefficients of a ``(C,H,W)`` image in ``representation``: ``"pixel"``, ``"wavelet"`` (clearsight's
    default DWT, db3, 5 levels, zero padding: CartoonX's), ``"shearlet"`` (:mod:`clearsight.shearlets`, 4 scales),
    a ``WaveletTransform``/``ShearletTransform``, or anything with ``analyze(image) -> list of tensors`` (an RDE
    ``Representation``)."""
    from ..shearlets import ShearletTransform
    from ..wavelets import WaveletTransform

    if isinstance(representation, str):
        if representation == "pixel":
            return [image]
        if representation == "wavelet":
            representation = WaveletTransform()
        elif representation == "shearlet":
            representation = ShearletTransform()
        else:
            raise MethodError(f"unknown representation {representation!r}; choose one of {', '.join(REPRESENTATIONS)}")
    if isinstance(representation, WaveletTransform):
        yl, yh = representation.forward(image)
        return [yl, *yh]
    if isinstance(representation, ShearletTransform):
        return [representation.forward(image)]
    if hasattr(representation, "analyze"):
        return list(representation.analyze(image))
    raise MethodError(f"cannot compute coefficients in {representation!r}: pass 'pixel', 'wavelet', 'shearlet', a "
                      "transform or an object with analyze(image)")


def _representation_name(representation: Any) -> str:
    if isinstance(representation, str):
        return representation
    return str(getattr(representation, "name", type(representation).__name__))


def coefficient_l1(bands: Sequence[torch.Tensor]) -> float:
    """Sum of absolute values over all bands."""
    return float(sum(b.abs().sum() for b in bands))


def coefficient_entropy(bands: Sequence[torch.Tensor]) -> float:
    """``-sum p log(p + 1e-7)`` with ``p = c^2 / sum c^2`` over every coefficient of every band (natural log).

    The reference's definition (its ``entropy_*_representation``), the ``1e-7`` included. ``exp`` of it is
    the effective number of coefficients that carry the energy: 1 for a single coefficient, n for n equal
    ones. An all-zero image has entropy 0 (one "coefficient", nothing to spread).
    """
    energy = sum(b.pow(2).sum() for b in bands)
    if float(energy) == 0:
        return 0.0
    total = 0.0
    for b in bands:
        p = b.pow(2) / energy
        total -= float((p * torch.log(p + ENTROPY_EPS)).sum())
    return total


def cp_scores(clf: Classifier, photo: Any, explanation_image: Any, target: int | str | None = None,
              representation: Any = "wavelet", masked_coefficients: Sequence[torch.Tensor] | None = None
              ) -> CPScores:
    """Conciseness-preciseness scores of an explanation image for ``clf`` and ``target``.

    ``CP = retained class probability / retained image information`` (Kolek et al. 2023, Sec. 5): the model's
    probability of ``target`` (default: its prediction on the photo) on the explanation over that on the
    photo, divided by

    * CP-l1: ``||c(e)||_1 / ||c(x)||_1``, the l1 norms of the explanation's and the photo's coefficients in
      ``representation`` (all colour channels);
    * CP-entropy: ``exp(H(c(e))) / exp(H(c(x)))``, the ratio of the effective numbers of coefficients, with
      ``H`` the entropy of the normalised squared coefficients (:func:`coefficient_entropy`).

    The entropies and l1 norms are computed as the reference code computes them (``waveletx.py``,
    ``shearletx.py`` and ``scatterplot.py`` of skmda37/ShearletX: colour coefficients, ``p log(p + 1e-7)``);
    the code only records them, and the CP-entropy quotient uses their exponentials as the paper's
    information measure. The paper's text is not among the project's references, so its equation number is
    not cited here; the exponential form is clearsight's reading of it and :class:`CPScores` keeps both
    entropies, so any other combination can be recomputed.

    The reference measures a mask explanation by its *masked* coefficients (mask times the photo's
    coefficients), not by the coefficients of the rendered image: for a redundant or boundary-extended
    transform (shearlets, zero-padded db3) re-analysing the rendered, clamped image gives slightly different
    numbers. Pass ``masked_coefficients`` (a list of bands in ``representation``'s layout) to score a mask
    explanation exactly as the reference does; otherwise the explanation image is analysed. For pixels the
    two coincide. A grayscale explanation is shown to the model as a gray RGB image.

    CP of the photo itself is 1 in both versions. Higher is better: more probability kept per information
    kept.
    """
    x = as_image(photo, "photo")
    e = as_image(explanation_image, "explanation image")
    if x.shape[0] != 3:
        raise InputShapeError(f"the photo must be an RGB image (3,H,W); got {tuple(x.shape)}")
    _same_size(e, x)
    e = e.expand(3, -1, -1) if e.shape[0] == 1 else e
    target = clf.target_or_prediction(x.float().to(clf.device), target)
    with clf.using_precision("fp32"):
        probs = clf.logits(torch.stack([x, e]).float().to(clf.device)).float().softmax(dim=1)[:, target]
    p_photo, p_expl = float(probs[0]), float(probs[1])
    if p_photo <= 0:
        raise MethodError(f"the model gives class {target} probability 0 on the photo; CP is undefined")
    retained = p_expl / p_photo

    photo_bands = [b.to(torch.float64) for b in coefficients(x, representation)]
    if masked_coefficients is not None:
        expl_bands = [torch.as_tensor(b).detach().to(torch.float64) for b in masked_coefficients]
        want, got = [tuple(b.shape) for b in photo_bands], [tuple(b.shape) for b in expl_bands]
        if got != want:
            raise InputShapeError(f"masked_coefficients must have the shapes of the photo's coefficients {want}; "
                                  f"got {got}")
    else:
        expl_bands = [b.to(torch.float64) for b in coefficients(e, representation)]
    l1_photo = coefficient_l1(photo_bands)
    if l1_photo == 0:
        raise InputShapeError("the photo is black (all coefficients 0): its information is 0 and CP is undefined")
    l1_ratio = coefficient_l1(expl_bands) / l1_photo
    h_expl, h_photo = coefficient_entropy(expl_bands), coefficient_entropy(photo_bands)
    cp_l1 = retained / l1_ratio if l1_ratio > 0 else math.inf
    cp_entropy = retained * math.exp(h_photo - h_expl)
    return CPScores(cp_l1=cp_l1, cp_entropy=cp_entropy, retained_probability=retained, probability_photo=p_photo,
                    probability_explanation=p_expl, l1_ratio=l1_ratio, entropy_explanation=h_expl,
                    entropy_photo=h_photo, representation=_representation_name(representation), target=target)


__all__ = [
    "CPScores", "EDGE_THRESHOLD", "REPRESENTATIONS", "as_image", "coefficient_entropy", "coefficient_l1",
    "coefficients", "cp_scores", "dilate", "edge_map", "hallucination_score", "saliency_explanation_image",
    "sobel_magnitude",
]
