"""The papers' claims as data: every number or checkable statement of the experiments ``clearsight reproduce``
runs, each with where the paper says it, the paper's value and setting, how we measure it from the
experiment's summary (:mod:`.summary`) and the comparison that decides whether it holds on our model.

Why data: the claims table (results.md) is then one loop over :data:`CLAIMS`, a claim whose experiment was
not run still gets its row ("not measured"), and a reader sees beside each of our numbers the paper's own.

Sources: ``moxi`` is Sumiyasu, Kawamoto, Kera, "Identifying Important Group of Pixels using Interactions"
(/work/shared/papers/moxi.md); ``cartoonx`` is Dubbeldam et al., "[Re] On the Reproducibility of CartoonX"
(ReScience C, MLRC 2022; /work/shared/papers/cartoonx-reproduction.md). The paper texts carry no page
numbers, so ``where`` cites sections, figures and tables. Numbers in ``paper_value`` are quoted from the text;
where a statement is only visible in a figure, the value says "read off Fig. N".

Thresholds: a claim of an ordering ("MoXI rises more sharply") holds when the ordering holds on our run; a
claim of a value is checked within a tolerance of ours, stated in ``Check.basis``: 10 accuracy points
(:data:`POINTS`), a factor of 2 for step counts and speed-ups (:data:`FACTOR`), 5 % for "matches"
(:data:`MATCH`). These tolerances are ours, not the papers': the papers give no error bars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from ...errors import ClearsightError

Paper = Literal["moxi", "cartoonx"]

#: The experiments of ``clearsight reproduce moxi`` and ``clearsight reproduce cartoonx``, in report order.
EXPERIMENTS: dict[str, tuple[str, ...]] = {
    "moxi": ("curves", "heatmaps", "class-discriminative", "corruptions", "adversarial", "set-sum", "consistency",
             "runtime"),
    "cartoonx": ("qualitative", "rate-distortion", "lambda", "vit", "inits", "runtime"),
}

TITLES: dict[str, str] = {
    "moxi": "Sumiyasu, Kawamoto, Kera: Identifying Important Group of Pixels using Interactions (MoXI)",
    "cartoonx": "Dubbeldam, Eijpe, Ruthardt, Sasse: [Re] On the Reproducibility of CartoonX (ReScience C, 2023)",
}

POINTS = 0.10  # accuracy claims: within 10 percentage points
FACTOR = 2.0  # counts and speed-ups: within a factor of 2
MATCH = 0.05  # "matches": within 5 %

Op = Literal[">", ">=", "<", "<=", "approx", "factor", "by eye", "report"]


@dataclass(frozen=True)
class Check:
    """When a claim holds: ``value OP threshold``; ``approx``: within ``tolerance`` of the threshold;
    ``factor``: within a factor ``tolerance`` of it; ``by eye``: a qualitative claim a reader judges from the
    figures; ``report``: a value reported for context only (e.g. seconds on the paper's GPU)."""

    op: Op
    threshold: float = 0.0
    tolerance: float = 0.0
    basis: str = ""

    def __post_init__(self) -> None:
        if self.op not in (">", ">=", "<", "<=", "approx", "factor", "by eye", "report"):
            raise ValueError(f"unknown comparison {self.op!r}")
        if self.op == "factor" and self.tolerance < 1:
            raise ValueError("a factor tolerance must be at least 1")

    @property
    def tested(self) -> bool:
        return self.op not in ("by eye", "report")

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the claim (NaN never does)."""
        if not self.tested:
            raise ValueError(f"a {self.op!r} claim is not tested by a number")
        if math.isnan(value):
            return False
        t = self.threshold
        if self.op == ">":
            return value > t
        if self.op == ">=":
            return value >= t
        if self.op == "<":
            return value < t
        if self.op == "<=":
            return value <= t
        if self.op == "approx":
            return abs(value - t) <= self.tolerance + 1e-12
        return t / self.tolerance - 1e-12 <= value <= t * self.tolerance + 1e-12

    def describe(self, unit: str = "number") -> str:
        """The test in words, in the claim's unit: "> 0", "within 10 points of 90.0%", "within a factor 2 of 6"."""
        if self.op == "by eye":
            return "judged by eye from the figures"
        if self.op == "report":
            return "reported for context, not tested"
        t = format_value(self.threshold, unit)
        if self.op == "approx":
            spread = format_value(self.tolerance, "points" if unit in ("percent", "share") else unit, signed=False)
            return f"within {spread} of {t}"
        if self.op == "factor":
            return f"within a factor {self.tolerance:g} of {t}"
        return f"{self.op} {t}"


UNITS = ("percent", "points", "share", "seconds", "ratio", "steps", "number")


def format_value(value: float | None, unit: str = "number", signed: bool | None = None) -> str:
    """A measured value as the table prints it: ``percent``/``share`` 0.9 -> "90.0%", ``points`` (a
    difference of fractions) 0.12 -> "+12.0 points", ``seconds`` -> "0.153 s", ``ratio`` -> "29.8x",
    ``steps`` -> "6", ``number`` -> 4 significant digits. Differences (``points``, ``number`` by default
    when negative) carry their sign so a reader sees which side of 0 they fall."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    sign = "+" if (signed if signed is not None else unit in ("points",)) else ""
    if unit in ("percent", "share"):
        return f"{value * 100:.1f}%"
    if unit == "points":
        return f"{value * 100:{sign}.1f} points"
    if unit == "seconds":
        return f"{value:.3g} s"
    if unit == "ratio":
        return f"{value:.3g}x"
    if unit == "steps":
        return f"{value:g}"
    return f"{value:{sign}.4g}"


def check_paper(paper: str) -> Paper:
    """The paper's key, or a :class:`ClaimError` naming the two there are."""
    if paper not in EXPERIMENTS:
        raise ClaimError(f"unknown paper {paper!r}; the claims cover {', '.join(EXPERIMENTS)}")
    return paper  # type: ignore[return-value]


class ClaimError(ClearsightError):
    """A claims table was asked for an unknown paper or experiment, or given summaries it cannot read."""


@dataclass(frozen=True)
class Claim:
    """One statement of a paper, where it is, and how our run checks it.

    ``measure`` names a function of :data:`clearsight.experiments.claims.summary.MEASURES`, called as
    ``measure(summary, **dict(args))`` on the summary of ``experiment``; ``holds`` decides the verdict;
    ``unit`` says how values print (``percent``, ``points``, ``seconds``, ``ratio``, ``steps``, ``share``,
    ``number``). ``architecture`` (``vit``/``cnn``) ties a claim to runs of that kind of model (the paper's
    ViT figures vs its ResNet-18 figure); None: any run of the experiment.
    """

    id: str
    paper: Paper
    experiment: str
    where: str
    statement: str
    paper_value: str
    paper_setting: str
    measure: str | None
    holds: Check
    args: tuple[tuple[str, Any], ...] = ()
    unit: str = "number"
    architecture: str | None = None

    @property
    def qualitative(self) -> bool:
        return self.measure is None

    def call(self) -> str:
        """The measure as a readable call, e.g. ``accuracy_at(curve=insertion, method=moxi, x=0.04)``."""
        if self.measure is None:
            return ""
        shown = ", ".join(f"{k}={'/'.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in self.args)
        return f"{self.measure}({shown})"


# ---- the papers' settings, quoted from their setup sections ----

VIT_T = "ViT-T (vit-tiny-patch16-224), ImageNet, 1000 correctly classified images (one per class), 14x14 patches"
DEIT_T = "DeiT-T, the same 1000 ImageNet images, 14x14 patches"
RESNET18 = "ResNet-18, the same 1000 ImageNet images, 14x14 patches"
CORRUPTED = "ViT-T, ImageNet images of Sec. 5.1, patches corrupted at severity 5"
ALL_CORRUPTIONS = "ViT-T and DeiT-T, 19 corruptions of the imagecorruptions module at severity 5"
ADVERSARIAL = "ViT-T (Fig. 15) and DeiT-T (Fig. 16), L2 untargeted PGD, epsilon 1.0, step size 0.2"
SET_SUM = "ResNet-18 on 2x2 grids of MNIST digits (56x56, 28x28 patches), 10,000 test images, zero fill"
CONSISTENCY = "ViTs trained on 10, 20, 100 and 1000 ImageNet classes; correctly classified 10-class test images"
RUNTIME = "ViT-T, 100 ImageNet images, 12-core CPU, 64 GB RAM, NVIDIA RTX 3090"
CX_RD = ("MobileNetV3-Small, 100 ImageNet images of 100 classes at 256x256; CartoonX lambda_k 20, Pixel RDE 4; "
         "2000 Adam steps, batch 64")
CX_LAMBDA = "MobileNetV3-Small, 100 ImageNet images, six values of lambda_k"
CX_VIT = "DeiT-tiny (lambda_k 10, 224x224) vs MobileNetV3-Small (lambda_k 20), 100 ImageNet images"
CX_INITS = "MobileNetV3-Small, CartoonX lambda_k 20, 2000 steps; loss curves of two sample images"
CX_RUNTIME = "MobileNet (MobileNetV3-Small), one explanation of 2000 steps, NVIDIA Titan RTX"
CX_QUALITATIVE = "MobileNetV3-Small, 100 ImageNet images; CartoonX lambda_k 20, Pixel RDE 4"

def _approx(value: float, tolerance: float = POINTS, basis: str = "our tolerance: 10 accuracy points") -> Check:
    return Check("approx", value, tolerance, basis)


def _factor(value: float) -> Check:
    return Check("factor", value, FACTOR, "our tolerance: a factor of 2")


AHEAD = Check(">", 0.0)  # the ordering the paper states: positive = the paper's winner is ahead
BELOW = Check("<", 0.0)
BY_EYE = Check("by eye")
REPORT = Check("report", basis="absolute seconds depend on the hardware")


def _c(id: str, paper: Paper, experiment: str, where: str, statement: str, paper_value: str, paper_setting: str,
       measure: str | None, holds: Check, unit: str = "number", architecture: str | None = None,
       **args: Any) -> Claim:
    return Claim(id=id, paper=paper, experiment=experiment, where=where, statement=statement,
                 paper_value=paper_value, paper_setting=paper_setting, measure=measure, holds=holds,
                 args=tuple(args.items()), unit=unit, architecture=architecture)


def _moxi_claims() -> list[Claim]:
    m: Paper = "moxi"
    ins_rivals = ("gradcam", "rollout", "shapley")
    claims = [
        # ---- Sec. 5.1, Fig. 3: insertion and deletion curves on ViT-T ----
        _c("moxi-ins4-moxi", m, "curves", "Sec. 5.1, Fig. 3(a); Sec. 1",
           "With only 4% of the patches visible, MoXI's insertion order reaches 90% accuracy.", "90%", VIT_T,
           "accuracy_at", _approx(0.90), "percent", "vit", curve="insertion", method="moxi", x=0.04),
        _c("moxi-ins4-gradcam", m, "curves", "Sec. 5.1, Fig. 3(a); Sec. 1",
           "With 4% of the patches visible in Grad-CAM's order, accuracy is 2%.", "2%", VIT_T,
           "accuracy_at", _approx(0.02), "percent", "vit", curve="insertion", method="gradcam", x=0.04),
        _c("moxi-ins4-rollout", m, "curves", "Sec. 5.1, Fig. 3(a); Sec. 1",
           "With 4% of the patches visible in attention rollout's order, accuracy is 4%.", "4%", VIT_T,
           "accuracy_at", _approx(0.04), "percent", "vit", curve="insertion", method="rollout", x=0.04),
        _c("moxi-ins4-shapley", m, "curves", "Sec. 5.1, Fig. 3(a); Sec. 1",
           "With 4% of the patches visible in Shapley-value order, accuracy is 25%.", "25%", VIT_T,
           "accuracy_at", _approx(0.25), "percent", "vit", curve="insertion", method="shapley", x=0.04),
        _c("moxi-ins4-lead", m, "curves", "Sec. 5.1, Fig. 3(a); Sec. 1",
           "At 4% of the patches visible MoXI significantly outperforms Grad-CAM, attention rollout and Shapley "
           "values.", "90% vs 2%, 4%, 25%", VIT_T,
           "lead_at", AHEAD, "points", "vit", curve="insertion", method="moxi", x=0.04, against=ins_rivals),
        _c("moxi-del10-moxi", m, "curves", "Sec. 5.1, Fig. 3(b)",
           "Concealing just 10% of the image in MoXI's deletion order decreases accuracy to 16%.", "16%", VIT_T,
           "accuracy_at", _approx(0.16), "percent", "vit", curve="deletion", method="moxi", x=0.10),
        _c("moxi-del10-gradcam", m, "curves", "Sec. 5.1, Fig. 3(b)",
           "Concealing 10% of the image in Grad-CAM's order only decreases accuracy to approximately 79%.",
           "approximately 79%", VIT_T,
           "accuracy_at", _approx(0.79), "percent", "vit", curve="deletion", method="gradcam", x=0.10),
        _c("moxi-del10-rollout", m, "curves", "Sec. 5.1, Fig. 3(b)",
           "Concealing 10% of the image in attention rollout's order only decreases accuracy to approximately "
           "79%.", "approximately 79%", VIT_T,
           "accuracy_at", _approx(0.79), "percent", "vit", curve="deletion", method="rollout", x=0.10),
        _c("moxi-del10-lead", m, "curves", "Sec. 5.1, Fig. 3(b)",
           "At 10% of the image concealed MoXI leaves a far lower accuracy than Grad-CAM and attention rollout.",
           "16% vs approximately 79%", VIT_T,
           "lead_at", AHEAD, "points", "vit", curve="deletion", method="moxi", x=0.10,
           against=("gradcam", "rollout")),
        _c("moxi-ins-auc", m, "curves", "Sec. 5.1, Fig. 3(a)",
           "MoXI's insertion curve rises more sharply than every other method's (area under the curve).",
           "sharpest rise (read off Fig. 3(a))", VIT_T,
           "auc_lead", AHEAD, "points", "vit", curve="insertion", method="moxi"),
        _c("moxi-del-auc", m, "curves", "Sec. 5.1, Fig. 3(b)",
           "MoXI's deletion curve falls more sharply than every other method's (area under the curve).",
           "sharpest fall (read off Fig. 3(b))", VIT_T,
           "auc_lead", AHEAD, "points", "vit", curve="deletion", method="moxi"),
        _c("moxi-ins-interactions", m, "curves", "Sec. 5.1, Fig. 3(a)",
           "Using interactions, MoXI finds patches giving a higher insertion accuracy than self-context "
           "(MoXI(-)) and original Shapley values, which pick patches with similar information.",
           "MoXI above MoXI(-) and Shapley (read off Fig. 3(a))", VIT_T,
           "auc_lead", AHEAD, "points", "vit", curve="insertion", method="moxi", against=("moxi-minus", "shapley")),
        _c("moxi-ins-shapley-sharper", m, "curves", "Sec. 5.1, Fig. 3(a)",
           "Both the self-context and the original Shapley values, based on confidence scores, rise more sharply "
           "than the feature-based Grad-CAM, Grad-CAM++ and attention rollout (our reading of the comparison).",
           "read off Fig. 3(a)", VIT_T,
           "group_auc_gap", AHEAD, "points", "vit", curve="insertion", group=("moxi-minus", "shapley"),
           against=("gradcam", "gradcampp", "rollout")),
        _c("moxi-ins-monotone", m, "curves", "App. E",
           "All insertion curves consistently show a monotonic increase of accuracy with the insertion rate.",
           "monotonic increase", VIT_T,
           "largest_drop", Check("<=", 0.02, 0.0, "our tolerance: a fall of at most 2 points between neighbours "
                                 "(a finite image set is noisy)"), "points", "vit", curve="insertion"),
        # ---- App. B: DeiT-T (Fig. 8) and ResNet-18 (Fig. 9) ----
        _c("moxi-deit-ins-auc", m, "curves", "App. B, Fig. 8(a)",
           "On DeiT-T, MoXI's insertion curve again rises more sharply than the other methods'.",
           "sharper increase (read off Fig. 8(a))", DEIT_T,
           "auc_lead", AHEAD, "points", "vit", curve="insertion", method="moxi"),
        _c("moxi-deit-del-auc", m, "curves", "App. B, Fig. 8(b)",
           "On DeiT-T, MoXI's deletion curve falls more sharply than the other methods'.",
           "sharper decrease (read off Fig. 8(b))", DEIT_T,
           "auc_lead", AHEAD, "points", "vit", curve="deletion", method="moxi"),
        _c("moxi-cnn-ins-auc", m, "curves", "App. B, Fig. 9(a)",
           "On ResNet-18 (a CNN), MoXI's insertion curve also rises more sharply than the other methods'.",
           "similar to ViT (read off Fig. 9(a))", RESNET18,
           "auc_lead", AHEAD, "points", "cnn", curve="insertion", method="moxi"),
        _c("moxi-cnn-del-auc", m, "curves", "App. B, Fig. 9(b)",
           "On ResNet-18, MoXI's deletion curve also falls more sharply than the other methods'.",
           "similar to ViT (read off Fig. 9(b))", RESNET18,
           "auc_lead", AHEAD, "points", "cnn", curve="deletion", method="moxi"),
        # ---- Sec. 5.2, Fig. 4 (and App. E, Fig. 11-12): heatmaps ----
        _c("moxi-heat-ins-fewer", m, "heatmaps", "Sec. 5.2, Fig. 4(a); App. E, Fig. 11-12",
           "MoXI's insertion heatmap highlights fewer patches than the other methods' (patches inserted until the "
           "classification is correct).", "fewer regions (read off Fig. 4(a))", VIT_T,
           "median_steps_lead", AHEAD, "steps", curve="insertion", method="moxi"),
        _c("moxi-heat-del-concentrated", m, "heatmaps", "Sec. 5.2, Fig. 4(b)",
           "On deletion, MoXI(-) and Grad-CAM highlight extensively across the image while MoXI's highlights are "
           "concentrated (patches removed until misclassification).", "read off Fig. 4(b)", VIT_T,
           "median_steps_lead", AHEAD, "steps", curve="deletion", method="moxi", against=("moxi-minus", "gradcam")),
        _c("moxi-heat-ins-background", m, "heatmaps", "Sec. 5.2, Fig. 4(a)",
           "MoXI's insertion patches cover the background as well as the class object; the other methods mostly "
           "the object only.", "read off Fig. 4(a)", VIT_T, None, BY_EYE),
        _c("moxi-heat-del-object", m, "heatmaps", "Sec. 5.2, Fig. 4(b)",
           "MoXI's deletion patches concentrate on the class object, with less emphasis on the background than "
           "attention rollout and Shapley values.", "read off Fig. 4(b)", VIT_T, None, BY_EYE),
        # ---- Sec. 5.2, Fig. 5 and App. F: class-discriminative localisation ----
        _c("moxi-class-discriminative", m, "class-discriminative", "Sec. 5.2, Fig. 5; App. F",
           "Targeting the predicted class (bull mastiff) MoXI highlights the dog's face; targeting another class "
           "(tiger cat) it highlights the cat's face and body.", "read off Fig. 5", "ViT-T, one ImageNet image",
           None, BY_EYE),
        # ---- Sec. 5.3, Fig. 6 and App. G.1: common corruptions ----
        _c("moxi-corrupt-gaussian", m, "corruptions", "Sec. 5.3, Fig. 6(a)",
           "Corrupting patches with Gaussian noise in MoXI's deletion order decreases accuracy more than in the "
           "other methods' orders.", "significant decrease (read off Fig. 6(a))", CORRUPTED,
           "corruption_auc_lead", AHEAD, "points", corruption="gaussian_noise", method="moxi"),
        _c("moxi-corrupt-fog", m, "corruptions", "Sec. 5.3, Fig. 6(b)",
           "Fog corruption gives results similar to Gaussian noise: MoXI's order decreases accuracy most.",
           "similar to Gaussian noise (read off Fig. 6(b))", CORRUPTED,
           "corruption_auc_lead", AHEAD, "points", corruption="fog", method="moxi"),
        _c("moxi-corrupt-all", m, "corruptions", "Sec. 5.3; App. G.1, Fig. 13-14",
           "With the other common corruptions too, MoXI gives a sharper decrease at the early stage of the "
           "deletion curve than the others.", "read off Fig. 13-14", ALL_CORRUPTIONS,
           "corruption_early_share", Check(">", 0.5, 0.0, "our reading: under most corruptions run; early stage "
                                           "= mean over the first 25% of patches"), "share", method="moxi"),
        # ---- App. G.2, Fig. 15-16: adversarial perturbations ----
        _c("moxi-adv-rollout", m, "adversarial", "App. G.2, Fig. 15(a), 16(a)",
           "With adversarial perturbations instead of masking, attention rollout gives a slightly sharper "
           "decrease than MoXI.", "rollout slightly sharper (read off Fig. 15(a), 16(a))", ADVERSARIAL,
           "auc_difference", AHEAD, "points", path=("deletion",), method="moxi", other="rollout"),
        _c("moxi-adv-rollout-aligned", m, "adversarial", "App. G.2, Fig. 15(b)",
           "The patches attention rollout ranks important are well aligned with the amount of adversarial "
           "perturbation on them (Spearman correlation of deletion rank and perturbation norm).",
           "aligned (read off Fig. 15(b))", ADVERSARIAL,
           "norm_order_correlation", BELOW, "number", method="rollout"),
        _c("moxi-adv-moxi-ends", m, "adversarial", "App. G.2, Fig. 15(b)",
           "Patches at the early and late stages of MoXI's order carry more perturbation than those at the middle "
           "stage (first and last thirds vs the middle third).", "read off Fig. 15(b)", ADVERSARIAL,
           "norm_u_shape", AHEAD, "number", method="moxi"),
        # ---- Sec. 4.1, Fig. 2 and App. A: visual SET-SUM ----
        _c("moxi-setsum-50", m, "set-sum", "Sec. 4.1, Fig. 2(b)",
           "With 50% of the image unmasked, MoXI is more accurate than MoXI(-) and Shapley values.",
           "MoXI highest (read off Fig. 2(b))", SET_SUM,
           "lead_at", AHEAD, "points", curve="insertion", method="moxi", x=0.5, against=("moxi-minus", "shapley")),
        _c("moxi-setsum-75", m, "set-sum", "Sec. 4.1, Fig. 2(b)",
           "With 75% of the image unmasked, MoXI is more accurate than MoXI(-) and Shapley values.",
           "MoXI highest (read off Fig. 2(b))", SET_SUM,
           "lead_at", AHEAD, "points", curve="insertion", method="moxi", x=0.75, against=("moxi-minus", "shapley")),
        _c("moxi-setsum-duplicates", m, "set-sum", "App. A",
           "Sampling the four digits uniformly, a composite image holds a duplicate number with a probability of "
           "roughly 47%.", "roughly 47%", SET_SUM,
           "duplicate_rate", _approx(0.47, 0.05, "our tolerance: 5 points"), "percent"),
        # ---- Sec. 5.4, Fig. 7 and App. H, Fig. 17: consistency over the number of classes ----
        _c("moxi-consistency-rollout", m, "consistency", "Sec. 5.4, Fig. 7",
           "As the number of classes grows, attention rollout's insertion accuracy decreases significantly while "
           "MoXI's decreases only slightly (drop in area, fewest to most classes).", "read off Fig. 7",
           CONSISTENCY, "consistency_drop_lead", AHEAD, "points", method="moxi", against=("rollout",)),
        _c("moxi-consistency-moxi", m, "consistency", "Sec. 5.4, Fig. 7",
           "MoXI's insertion accuracy does not decrease (caption: only a minor decrease) as the number of classes "
           "grows.", "no / minor decrease (read off Fig. 7(b))", CONSISTENCY,
           "consistency_drop", Check("<=", 0.05, 0.0, "our tolerance: 5 points of area"), "points",
           curve="insertion", method="moxi"),
        _c("moxi-consistency-others", m, "consistency", "App. H, Fig. 17 (top)",
           "Grad-CAM, attention rollout and Shapley values lose insertion accuracy more than MoXI as the number of "
           "classes grows.", "read off Fig. 17", CONSISTENCY,
           "consistency_drop_lead", AHEAD, "points", method="moxi", against=("gradcam", "rollout", "shapley")),
        _c("moxi-consistency-deletion", m, "consistency", "Sec. 5.4; App. H, Fig. 17 (bottom)",
           "MoXI's deletion curves are also consistent across the number of classes.", "read off Fig. 17",
           CONSISTENCY, "consistency_spread", Check("<=", 0.05, 0.0, "our tolerance: 5 points of area"), "points",
           curve="deletion", method="moxi"),
        # ---- App. C, Table 1: runtime and greedy steps ----
        _c("moxi-runtime-gradcam", m, "runtime", "App. C, Table 1",
           "Grad-CAM takes 0.15 s per image.", "0.15 s", RUNTIME, "seconds", REPORT, "seconds",
           method="gradcam"),
        _c("moxi-runtime-rollout", m, "runtime", "App. C, Table 1",
           "Attention rollout takes 0.02 s per image.", "0.02 s", RUNTIME, "seconds", REPORT, "seconds",
           method="rollout"),
        _c("moxi-runtime-shapley", m, "runtime", "App. C, Table 1",
           "Shapley values (200 samples) take 17.9 s per image.", "17.9 s", RUNTIME, "seconds", REPORT,
           "seconds", method="shapley"),
        _c("moxi-runtime-moxi-ins", m, "runtime", "App. C, Table 1",
           "MoXI's insertion, until the classification is correct, takes 0.60 s per image.", "0.60 s", RUNTIME,
           "seconds", REPORT, "seconds", method="moxi-insertion"),
        _c("moxi-runtime-moxi-del", m, "runtime", "App. C, Table 1",
           "MoXI's deletion, until the classification fails, takes 1.34 s per image.", "1.34 s", RUNTIME,
           "seconds", REPORT, "seconds", method="moxi-deletion"),
        _c("moxi-runtime-30x", m, "runtime", "App. C, Table 1",
           "MoXI is approximately 30 times faster than Shapley values (mean seconds per image as Table 1, MoXI's "
           "insertion).",
           "approximately 30x (17.9 s / 0.60 s)", RUNTIME,
           "seconds_ratio", _factor(30.0), "ratio", slower="shapley", faster="moxi-insertion"),
        _c("moxi-runtime-beats-shapley", m, "runtime", "App. C",
           "MoXI surpasses Shapley values in runtime, for deletion too.", "17.9 s vs 1.34 s", RUNTIME,
           "seconds_ratio", Check(">", 1.0, 0.0, "the ordering the paper states"), "ratio", slower="shapley",
           faster="moxi-deletion"),
        _c("moxi-runtime-not-as-fast", m, "runtime", "App. C",
           "MoXI is not as fast as Grad-CAM and attention rollout.", "0.60 s vs 0.15 s and 0.02 s", RUNTIME,
           "seconds_lead", Check(">", 0.0, 0.0, "the ordering the paper states"), "seconds",
           method="moxi-insertion", faster=("gradcam", "rollout")),
        _c("moxi-steps-insertion", m, "runtime", "App. C",
           "In the runtime experiment the median number of greedy insertion steps was 6 (std 7.6).",
           "6 (std 7.6)", RUNTIME, "median_greedy_steps", _factor(6.0), "steps", curve="insertion"),
        _c("moxi-steps-deletion", m, "runtime", "App. C",
           "The median number of greedy deletion steps was 10 (std 11.3).", "10 (std 11.3)", RUNTIME,
           "median_greedy_steps", _factor(10.0), "steps", curve="deletion"),
        _c("moxi-steps-under-4pct", m, "runtime", "App. C (from Fig. 3(a))",
           "More than 90% of the evaluation images need fewer than 0.04N insertion steps.", "more than 90%",
           VIT_T, "share_steps_below", Check(">", 0.9, 0.0, "the share the paper states"), "share",
           curve="insertion", fraction=0.04),
    ]
    return claims


def _cartoonx_claims() -> list[Claim]:
    c: Paper = "cartoonx"
    return [
        # ---- Sec. 4.1, Fig. 1-2: qualitative ----
        _c("cx-qual-smooth", c, "qualitative", "Sec. 4.1, Fig. 1",
           "CartoonX gives piece-wise smooth explanations, blurring out irrelevant areas, where Pixel RDE gives "
           "pixel-sparse ones.", "read off Fig. 1", CX_QUALITATIVE, None, BY_EYE),
        _c("cx-qual-easier", c, "qualitative", "Sec. 4.1, Fig. 1",
           "It was much easier to find examples of CartoonX outperforming Pixel RDE than the other way around.",
           "subjective comparison of 100 images", CX_QUALITATIVE, None, BY_EYE),
        _c("cx-qual-misclassified", c, "qualitative", "Sec. 4.1, Fig. 2",
           "On misclassified images CartoonX can indicate why (object outlines resembling another class), which "
           "Pixel RDE cannot.", "read off Fig. 2", CX_QUALITATIVE, None, BY_EYE),
        # ---- Sec. 4.1, Fig. 3 left/middle: rate-distortion ----
        _c("cx-rd-keep-match", c, "rate-distortion", "Sec. 4.1, Fig. 3 (left)",
           "Keeping the most relevant components and randomising the rest, CartoonX matches or outperforms Pixel "
           "RDE (area under the distortion curve, lower is better).", "matches or outperforms (read off Fig. 3)",
           CX_RD, "rd_auc_ratio", Check("<=", 1.0 + MATCH, 0.0, "'matches': within 5% (our tolerance)"), "ratio",
           figure="keep", method="cartoonx", other="pixel-rde"),
        _c("cx-rd-randomize-match", c, "rate-distortion", "Sec. 4.1, Fig. 3 (middle)",
           "Randomising the most relevant components, CartoonX matches or outperforms Pixel RDE (area under the "
           "distortion curve, higher is better).", "matches or outperforms (read off Fig. 3)", CX_RD,
           "rd_auc_ratio", Check(">=", 1.0 - MATCH, 0.0, "'matches': within 5% (our tolerance)"), "ratio",
           figure="randomize", method="cartoonx", other="pixel-rde"),
        _c("cx-rd-keep-drop-cartoonx", c, "rate-distortion", "Sec. 4.1, Fig. 3 (left)",
           "Keeping few of CartoonX's most relevant components, the distortion drops steeply to 0.25 (0.45 in the "
           "original paper); lowest mean distortion within the first 25% kept.", "0.25 (original: 0.45)", CX_RD,
           "rd_early_minimum", _approx(0.25, 0.10, "our tolerance: 0.10"), "number", method="cartoonx"),
        _c("cx-rd-keep-drop-pixel-rde", c, "rate-distortion", "Sec. 4.1, Fig. 3 (left)",
           "Keeping few of Pixel RDE's most relevant components, the distortion drops steeply to 0.25 (0.45 in "
           "the original paper).", "0.25 (original: 0.45)", CX_RD,
           "rd_early_minimum", _approx(0.25, 0.10, "our tolerance: 0.10"), "number", method="pixel-rde"),
        _c("cx-rd-keep-rise-cartoonx", c, "rate-distortion", "Sec. 4.1, Fig. 3 (left)",
           "After the initial drop the distortion of CartoonX increases slightly (the original paper's dropped "
           "more continuously).", "slight increase (read off Fig. 3 left)", CX_RD,
           "rd_rise_after_drop", AHEAD, "number", method="cartoonx"),
        _c("cx-rd-keep-rise-pixel-rde", c, "rate-distortion", "Sec. 4.1, Fig. 3 (left)",
           "After the initial drop the distortion of Pixel RDE increases slightly.",
           "slight increase (read off Fig. 3 left)", CX_RD, "rd_rise_after_drop", AHEAD, "number",
           method="pixel-rde"),
        _c("cx-rd-keep-random", c, "rate-distortion", "Sec. 4.1, Fig. 3 (left)",
           "A good explanation yields a steep decrease of the distortion at low rates: keeping CartoonX's most "
           "relevant coefficients beats keeping random ones (difference of areas).", "criterion stated in Sec. 4.1",
           CX_RD, "rd_auc_difference", BELOW, "number", figure="keep", method="cartoonx", other="random-wavelet"),
        _c("cx-rd-randomize-random", c, "rate-distortion", "Sec. 4.1, Fig. 3 (middle)",
           "A good explanation induces a sharp initial increase: randomising CartoonX's most relevant coefficients "
           "beats randomising random ones (difference of areas).", "criterion stated in Sec. 4.1", CX_RD,
           "rd_auc_difference", AHEAD, "number", figure="randomize", method="cartoonx", other="random-wavelet"),
        # ---- Sec. 4.1, Fig. 3 right: lambda sweep ----
        _c("cx-lambda-sparsity", c, "lambda", "Sec. 4.1, Fig. 3 (right)",
           "The non-sparsity of Pixel RDE is always higher than CartoonX's, at every lambda_k (largest difference "
           "CartoonX minus Pixel RDE).", "always higher for Pixel RDE (read off Fig. 3 right)", CX_LAMBDA,
           "lambda_largest_gap", BELOW, "number", quantity="sparsity", method="cartoonx", other="pixel-rde"),
        _c("cx-lambda-distortion", c, "lambda", "Sec. 4.1, Fig. 3 (right)",
           "Across all subexperiments CartoonX matches or outperforms Pixel RDE: its distortion is not above Pixel "
           "RDE's at any lambda_k (largest ratio).", "matches or outperforms (read off Fig. 3 right)", CX_LAMBDA,
           "lambda_largest_ratio", Check("<=", 1.0 + MATCH, 0.0, "'matches': within 5% (our tolerance)"), "ratio",
           quantity="distortion", method="cartoonx", other="pixel-rde"),
        # ---- Sec. 4.2, Fig. 4-5: CartoonX on a ViT ----
        _c("cx-vit-keep-sharp", c, "vit", "Sec. 4.2, Fig. 5 (left)",
           "With the ViT, the distortion drops sharply when all but CartoonX's most relevant components are "
           "randomised (below the random-coefficient benchmark; difference of areas).", "read off Fig. 5 left",
           CX_VIT, "rd_auc_difference", BELOW, "number", figure="keep", method="cartoonx", other="random-wavelet",
           model="vit"),
        _c("cx-vit-randomize-sharp", c, "vit", "Sec. 4.2, Fig. 5 (right)",
           "With the ViT, the distortion increases sharply when CartoonX's most relevant components are "
           "randomised (above the random benchmark).", "read off Fig. 5 right", CX_VIT,
           "rd_auc_difference", AHEAD, "number", figure="randomize", method="cartoonx", other="random-wavelet",
           model="vit"),
        _c("cx-vit-cnn-drop", c, "vit", "Sec. 4.2, Fig. 5 (left)",
           "The CNN shows a sharper initial drop than the ViT (normalised curves, mean over the first 25%, CNN "
           "minus ViT).", "read off Fig. 5 left", CX_VIT, "vit_early_gap", BELOW, "number", figure="keep"),
        _c("cx-vit-cnn-increase", c, "vit", "Sec. 4.2, Fig. 5 (right)",
           "The CNN shows a sharper initial increase than the ViT (normalised curves).", "read off Fig. 5 right",
           CX_VIT, "vit_early_gap", AHEAD, "number", figure="randomize"),
        _c("cx-vit-sparser", c, "vit", "Sec. 4.2",
           "The majority of the ViT CartoonX explanations are sparser than their CNN counterparts.",
           "the majority of 100 images", CX_VIT, "share_vit_sparser",
           Check(">", 0.5, 0.0, "'the majority'"), "share"),
        _c("cx-vit-qualitative", c, "vit", "Sec. 4.2, Fig. 4",
           "Where CNN and ViT agree, CartoonX on both roughly coincides with attention rollout; for some images "
           "the ViT explanation is almost completely black while the CNN's is not.", "read off Fig. 4", CX_VIT,
           None, BY_EYE),
        # ---- Sec. 4.2, Fig. 6: mask initialisations ----
        _c("cx-inits-preoptimize-early", c, "inits", "Sec. 4.2, Fig. 6",
           "The pre-optimised mask converges faster at first (mean loss over the first 10% of the steps, minus "
           "that of the all-ones start).", "faster initial convergence (read off Fig. 6)", CX_INITS,
           "init_early_gap", BELOW, "number", variant="preoptimize"),
        _c("cx-inits-reunite", c, "inits", "Sec. 4.2, Fig. 6",
           "The pre-optimisation and the normal (all-ones) loss curves reunite before convergence (ratio of final "
           "losses).", "curves reunite (read off Fig. 6)", CX_INITS,
           "init_final_ratio", _approx(1.0, MATCH, "our tolerance: 5%"), "ratio", variant="preoptimize"),
        _c("cx-inits-foreground", c, "inits", "Sec. 4.2, Fig. 6",
           "The foreground-mask initialisation ends with a final loss too high compared with the other starts.",
           "final loss too high (read off Fig. 6)", CX_INITS,
           "init_final_ratio", Check(">", 1.0, 0.0, "above the all-ones start"), "ratio", variant="foreground"),
        _c("cx-inits-random", c, "inits", "Sec. 4.2",
           "Random initialisation leads to unrobust results (spread of the final loss over images, over that of "
           "the all-ones start).", "unrobust", CX_INITS,
           "init_spread_ratio", Check(">", 1.0, 0.0, "more spread than the all-ones start"), "ratio",
           variant="random"),
        # ---- Sec. 3.6: runtime ----
        _c("cx-runtime-cartoonx", c, "runtime", "Sec. 3.6",
           "One CartoonX explanation takes 96 seconds.", "96 s", CX_RUNTIME, "seconds", REPORT, "seconds",
           method="cartoonx"),
        _c("cx-runtime-pixel-rde", c, "runtime", "Sec. 3.6",
           "One Pixel RDE explanation takes 75 seconds.", "75 s", CX_RUNTIME, "seconds", REPORT, "seconds",
           method="pixel-rde"),
        _c("cx-runtime-ratio", c, "runtime", "Sec. 3.6",
           "A CartoonX explanation takes longer than a Pixel RDE one (ratio of mean seconds).", "96 s vs 75 s",
           CX_RUNTIME, "seconds_ratio", Check(">", 1.0, 0.0, "96 s > 75 s"), "ratio", slower="cartoonx",
           faster="pixel-rde"),
    ]


CLAIMS: tuple[Claim, ...] = tuple(_moxi_claims() + _cartoonx_claims())


def claims_of(paper: str) -> list[Claim]:
    """The claims of one paper, in report order (experiments as :data:`EXPERIMENTS`, then as listed)."""
    order = {e: i for i, e in enumerate(EXPERIMENTS[check_paper(paper)])}
    return sorted((c for c in CLAIMS if c.paper == paper), key=lambda c: order[c.experiment])


#: How our runs depart from the papers' settings; results.md lists these beside the runs' own deviations.
DEVIATIONS: dict[str, tuple[str, ...]] = {
    "moxi": (
        "Data: the 200 sample photos shipped with clearsight (labels.csv; those the model classifies correctly), "
        "not 1000 ImageNet validation images, one per class (ImageNet validation is not available offline).",
        "ViT: DeiT-Tiny stands in for ViT-T (vit-tiny-patch16-224), whose weights are not available offline; "
        "the paper's DeiT-T figure (Fig. 8) is the closest match.",
        "CNN: MobileNetV2 / EfficientNet-Lite0 stand in for ResNet-18 (Fig. 9).",
        "Consistency (Fig. 7, 17): the offline analogue restricts one model's output to 10, 20, 100 and 1000 "
        "classes instead of training four models on 10-1000 ImageNet classes.",
        "SET-SUM (Fig. 2): scikit-learn's 8x8 digits upsampled to 16x16 on a small CNN, not MNIST on ResNet-18 "
        "(see clearsight.experiments.set_sum).",
        "Runtime (Table 1): seconds on our machine, not on the paper's RTX 3090; only ratios and orderings are "
        "tested.",
        "Tolerances of value claims (10 accuracy points, a factor 2 for counts and speed-ups, 5% for 'matches') "
        "are ours; the papers give no error bars.",
    ),
    "cartoonx": (
        "Data: the 200 sample photos shipped with clearsight, not the reproduction's 100 ImageNet images "
        "(imagenet-sample-images).",
        "CNN: MobileNetV2 / EfficientNet-Lite0 stand in for MobileNetV3-Small; the ViT is DeiT-Tiny, as in the "
        "reproduction.",
        "Image size: each model's own input size (the reproduction resized to 256x256 for the CNN, 224x224 for "
        "the ViT).",
        "Schedules: clearsight's default optimisation schedules, not necessarily the reproduction's 2000 Adam "
        "steps of batch 64, unless the run records otherwise.",
        "Runtime: seconds on our machine, not on the reproduction's Titan RTX; only the ordering is tested.",
        "Tolerances of value claims (0.10 distortion, 5% for 'matches') are ours; the paper gives no error bars.",
    ),
}
