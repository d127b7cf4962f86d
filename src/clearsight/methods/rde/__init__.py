"""Rate-distortion explanations (RDE): the mask optimiser shared by CartoonX and Pixel RDE.

An RDE explanation is a mask ``s`` in [0,1] over the coefficients ``h`` of an image in some representation
(wavelet coefficients for CartoonX, pixels for Pixel RDE). Coefficients where the mask is low are replaced
by noise ``v`` drawn from the image's own statistics::

    obfuscation  z = synthesize(h * s + (1 - s) * v)
    loss(s)      = distortion(model(x), model(z)) + lambda_k * mean(s)

and ``s`` is found by Adam on the loss, projected to [0,1] after every step (SPEC A.3 to A.6). The concerns
are kept apart, one module each, so that each can be read, tested and varied alone:

* *what a part is*: a :class:`Representation` (:mod:`clearsight.parts.representations`) turns an image into
  named coefficient bands and back; the rate-distortion curves rank the same bands;
* *what absence means*: adaptive Gaussian noise with one mean and one std per band
  (:mod:`clearsight.parts.obfuscation`, SPEC A.4, A.9), shared with the rate-distortion curves;
* *the problem*: :class:`Problem`, the distortions, the sparsity and the objective presets are compared on
  (:mod:`.problem`);
* *how long and how hard*: :class:`Schedule`, the presets ``PAPER``, ``FAST``, ``FAST_VIT``, ``FAST_CNN``
  and the precision choice (:mod:`.schedule`);
* *where a mask starts*: :func:`initial_masks`, :func:`preoptimize` (:mod:`.initial`);
* *how parts are chosen*: :func:`optimize_mask`, several photos at once :func:`optimize_masks_together`
  (:mod:`.optimizer`);
* *the explainer*: :class:`RDEExplainer`, which CartoonX and Pixel RDE subclass (:mod:`.explainer`).

Everything other modules and ``benchmarks/rde.py`` import is re-exported here, so
``from clearsight.methods.rde import ...`` keeps working. To replace a function for a test (monkeypatch),
patch it in the module that calls it (e.g. ``clearsight.methods.rde.optimizer.accumulate_gradients``).
"""

from ...parts.obfuscation import NoiseModel, l2_distortion, obfuscate
from ...parts.representations import (
    Bands,
    PixelRepresentation,
    Representation,
    WaveletRepresentation,
    representation_from_settings,
)
from .explainer import RDEExplainer
from .initial import INITS, foreground_masks, initial_masks, preoptimize
from .optimizer import MICRO_BATCH, Result, accumulate_gradients, optimize_mask, optimize_masks_together
from .problem import (
    DISTORTIONS,
    EVAL_SAMPLES,
    EVAL_SEED,
    Distortion,
    Problem,
    arrays_to_masks,
    distortion,
    masks_to_arrays,
    objective_of_explanation,
    rde_objective,
    sparsity,
)
from .schedule import (
    FAST,
    FAST_CNN,
    FAST_VIT,
    PAPER,
    PRESETS,
    Schedule,
    cpu_has_bf16,
    resolve_precision,
    schedule_settings,
    with_overrides,
)

__all__ = [
    "DISTORTIONS", "EVAL_SAMPLES", "EVAL_SEED", "FAST", "FAST_CNN", "FAST_VIT", "INITS", "MICRO_BATCH", "PAPER",
    "PRESETS", "Bands", "Distortion", "NoiseModel", "PixelRepresentation", "Problem", "RDEExplainer",
    "Representation", "Result", "Schedule", "WaveletRepresentation", "accumulate_gradients", "arrays_to_masks",
    "cpu_has_bf16", "distortion", "foreground_masks", "initial_masks", "l2_distortion", "masks_to_arrays",
    "obfuscate", "objective_of_explanation", "optimize_mask", "optimize_masks_together", "preoptimize", "rde_objective",
    "representation_from_settings", "resolve_precision", "schedule_settings", "sparsity", "with_overrides",
]
