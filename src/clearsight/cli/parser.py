"""The ``clearsight`` argument parser: one sub-command per job, each dispatching to its module."""

from __future__ import annotations

import argparse

from .. import __version__
from .common import (
    CORRUPTION_NAMES,
    DEFAULT_CURVE_METHODS,
    DEFAULT_OUT,
    DEFAULT_RD_METHODS,
    RD_CURVES,
    REPLACEMENT_CURVES,
    SEED_MAX,
    SHAPLEY_SAMPLINGS,
    OneLineParser,
    integer,
    number,
)
from .evaluate import cmd_evaluate
from .explain import cmd_demo, cmd_explain
from .report import cmd_compare, cmd_models, cmd_report
from .reproduce import add_reproduce_parser
from .set_sum import cmd_set_sum


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="efficientnet_lite0",
                   help="efficientnet_lite0 (built in), timm:NAME, torchvision:NAME or hf:ID")
    g.add_argument("--weights", help="state_dict file to load (weights_only); needed offline for timm/torchvision")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    g.add_argument("--precision", choices=["fp32", "bf16"],
                   help="bf16 autocast is 3-5x faster on CPUs with AVX512-BF16 (default fp32; cartoonx/pixel-rde: "
                   "the preset's, bf16 where the CPU has it natively)")
    g.add_argument("--size", type=integer(16, 2048), help="input size in pixels (default: the model's)")
    g.add_argument("--resize", choices=["crop", "squash"],
                   help="crop: resize short side and centre-crop (default); squash: resize to size x size")
    g.add_argument("--threads", default="auto",
                   help="torch threads: a number, or auto (default): the cores idle at the start, so that other "
                   "busy processes do not make the run several times slower")


def _add_method_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("method options (each applies to some methods only)")
    g.add_argument("--target-layer", help="Grad-CAM: module name to read (default: last conv stage / last block)")
    g.add_argument("--eigen-smooth", action="store_true", default=None, help="Grad-CAM: first principal component")
    g.add_argument("--aug-smooth", action="store_true", default=None, help="Grad-CAM: test-time augmentation")
    g.add_argument("--preset", help="rollout: vit-explain (default) or moxi; cartoonx/pixel-rde: paper")
    g.add_argument("--head-fusion", choices=["mean", "max", "min"], help="rollout: how heads are fused")
    g.add_argument("--discard-ratio", type=number(0, 1), help="rollout: fraction of lowest attention entries dropped")
    g.add_argument("--steps", type=integer(1, 1_000_000),
        help="cartoonx/pixel-rde: optimisation steps (default: the preset's; "
                   "fast: 480 (pixel-rde), cartoonx 960 on ViTs and 800 on CNNs; paper: 2000)")
    g.add_argument("--lambda", dest="lambda_k", type=number(0, 1e6),
                   help="cartoonx/pixel-rde: sparsity weight lambda_k (default 20 CNN / 10 ViT; pixel-rde 4)")
    g.add_argument("--spatial-lambda", type=float,
                   help="waveletx/shearletx: weight of the spatial l1 term, the mean pixel value of the explanation "
                   "image (default waveletx 10, shearletx 2; --lambda is their mask sparsity weight, 2 and 1)")
    g.add_argument("--init", choices=["ones", "zeros", "random", "foreground", "preoptimize"],
                   help="cartoonx/pixel-rde: mask initialisation (default ones)")
    g.add_argument("--samples", type=integer(1, 100_000),
        help="cartoonx/pixel-rde: noise samples per step (fast 5, paper 64)")
    g.add_argument("--lr", type=number(0, 10, low_open=True),
        help="cartoonx/pixel-rde: Adam learning rate (fast 0.05 with a cosine decay, "
                   "cartoonx on CNNs 0.1; paper 0.001)")
    g.add_argument("--render", choices=["gray", "color"], help="cartoonx: grayscale (default) or colour cartoon")
    g.add_argument("--foreground-mask", help="cartoonx/pixel-rde: image file with the foreground for --init "
                   "foreground (default: GrabCut, needs OpenCV)")
    g.add_argument("--plot-loss", action="store_true", help="cartoonx/pixel-rde: also write NAME_METHOD_loss.png")
    _add_patch_game_args(g)
    g.add_argument("--mode", choices=["insertion", "deletion"],
                   help="moxi/moxi-minus: insert patches until the target is predicted (default) or delete them "
                        "until it is not; deletion with --target other than the prediction is class-discriminative")
    g.add_argument("--tau", type=number(0, 1), help="moxi/moxi-minus insertion: also require this target probability")
    g.add_argument("--full-order", action="store_true", default=None,
                   help="moxi/moxi-minus: order all patches instead of stopping at the first success/failure")
    g.add_argument("--screen", choices=["none", "bf16"],
                   help="moxi on a timm ViT: bf16 scores each greedy step in bf16 first and re-scores in fp32 only "
                        "the candidates that could be best (the same order; less fp32 work only where bf16 is "
                        "native and candidates are far apart). Default none")


def _add_patch_game_args(g) -> None:
    """Options of the patch game shared by moxi, moxi-minus, shapley and ``evaluate``."""
    g.add_argument("--score", choices=["log-odds", "probability", "log-probability", "logit"],
                   help="moxi/moxi-minus/shapley: the reward (default log-odds)")
    g.add_argument("--absence", help="moxi/moxi-minus/shapley: how patches are removed: auto (token-drop for ViTs, "
                   "fill for CNNs), token-drop, fill[:mean|black|blur|VALUE], attention-mask[:K]")
    g.add_argument("--patch-size", type=integer(1, 2048),
        help="moxi/moxi-minus/shapley: patch side in pixels (default: the "
                   "ViT's patch, 16 for CNNs)")
    g.add_argument("--rounds", type=integer(1, 1_000_000),
        help="shapley: sampling rounds, 2N passes each, N+1 with permutation "
                   "sampling (default 200)")
    g.add_argument("--sampling", choices=SHAPLEY_SAMPLINGS,
                   help="shapley: how rounds are drawn (default plain, as the paper; permutation: the same error "
                   "per round at about half the passes)")


def build_parser() -> argparse.ArgumentParser:
    from ..methods import available_methods

    parser = OneLineParser(
        prog="clearsight", description="Explain what an image classifier looks at, and measure how faithfully.")
    parser.add_argument("--version", action="version", version=f"clearsight {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    methods = available_methods()
    ex = sub.add_parser("explain", help="explain images and save figures and results",
                        description="Explain one or more images; writes NAME_METHOD.png/.npz/.json to --out.")
    ex.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, WebP, ...)")
    ex.add_argument("--method", default="gradcam",
                    help="; ".join(f"{k}: {v}" for k, v in methods.items()) + " (default gradcam)")
    ex.add_argument("--target", help="class index or name to explain (default: the predicted class)")
    ex.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ex.add_argument("--seed", type=integer(0, SEED_MAX), default=0, help="seed for every random choice (default 0)")
    ex.add_argument("--overwrite", action="store_true", help="recompute results that already exist")
    ex.add_argument("--format", choices=["png", "svg", "pdf"], default="png", help="figure file format (default png)")
    ex.add_argument("--dpi", type=integer(10, 2400), help="figure resolution in dots per inch (default 150)")
    _add_model_args(ex)
    _add_method_args(ex)
    ex.set_defaults(func=cmd_explain)

    ev = sub.add_parser("evaluate", help="insertion/deletion or rate-distortion curves of several methods over a "
                        "folder", description="For every correctly classified image, order its patches by each method "
                        "and insert (or delete) them one by one; writes CURVE_accuracy.csv, CURVE_score.csv, "
                        "CURVE_auc.csv, CURVE.json and CURVE.png to --out. With --curve corruption / adversarial: "
                        "deletion curves whose deleted patches show a corrupted or adversarial copy of the photo; "
                        "writes deletion-NAME-SEVERITY_*.csv or deletion-adversarial_*.csv (plus _patch_norms.csv). "
                        "With --curve rd-keep / rd-randomize: rank each explanation's components (CartoonX: wavelet "
                        "coefficients; others: pixels) and keep the top x% while randomising the rest, or "
                        "randomise the top x%, for x = 0..100; writes "
                        "rd-FIGURE_mean.csv, _std.csv, _normalized.csv, rd-FIGURE.json and rd-FIGURE.png. With --curve "
                        "lambda-sweep: explain each image with cartoonx and pixel-rde at every --lambdas value and "
                        "measure each final mask's distortion and sparsity; writes lambda_sweep.csv/.json/.png. "
                        "With --curve inits: explain each image from every --inits initialisation and compare the "
                        "loss curves and final objectives; writes inits.csv, inits_loss.csv, inits.json and inits.png. "
                        "With --curve scores: the hallucination score, CP-l1, CP-entropy and retained probability "
                        "of each method's explanation image; writes scores.csv, scores.json and scores.png (CP "
                        "against hallucination, the ShearletX paper's scatter plot).")
    ev.add_argument("--curve", choices=["insertion", "deletion", *REPLACEMENT_CURVES, *RD_CURVES, "lambda-sweep",
                                        "inits", "scores"],
                    default="insertion", help="default insertion; corruption / adversarial: deletion curves where a "
                    "deleted patch shows a corrupted (--corruptions) or L2 PGD adversarial copy of the photo; "
                    "rd-keep / rd-randomize: rate-distortion curves "
                    "(l2 of softmax vectors); lambda-sweep: distortion and sparsity of RDE masks against lambda_k; "
                    "inits: RDE loss curves from several mask initialisations; scores: hallucination and "
                    "conciseness-preciseness of each explanation image")
    ev.add_argument("--methods",
                    help=f"comma-separated method names (default: insertion/deletion {DEFAULT_CURVE_METHODS}, the six "
                    f"of the MoXI paper; rate-distortion {DEFAULT_RD_METHODS}: random-* rank at random; lambda-sweep "
                    "cartoonx,pixel-rde; inits: cartoonx, one method; scores: cartoonx,waveletx,shearletx,pixel-rde)")
    ev.add_argument("--cp-representation", default="own", choices=["own", "pixel", "wavelet", "shearlet"],
                    help="scores: where CP measures information: own (default; RDE methods their masked "
                    "coefficients, saliency methods pixels) or one representation for every explanation image")
    ev.add_argument("--explanations", action="append", metavar="[METHOD=]DIR",
                    help="also evaluate the explanations saved in DIR by 'clearsight explain' (NAME_METHOD.npz/.json "
                    "per image; METHOD= picks one method when DIR holds several); may be repeated; not for "
                    "lambda-sweep or inits, which explain each image themselves")
    ev.add_argument("--images", required=True, metavar="DIR", help="folder of images")
    ev.add_argument("--labels", metavar="CSV", help="CSV with 'file' and 'class_index' columns; without it the "
                    "model's predictions are the labels; misclassified images are skipped")
    ev.add_argument("--limit", type=integer(1), help="use only the first N images (sorted by name)")
    ev.add_argument("--out", default=f"{DEFAULT_OUT}/evaluate", help=f"output folder (default {DEFAULT_OUT}/evaluate)")
    ev.add_argument("--seed", type=integer(0, SEED_MAX), default=0, help="seed of every random choice (default 0)")
    ev.add_argument("--overwrite", action="store_true",
                    help="recompute every curve (by default finished per-image curves in --out/runs are reused, so an "
                    "interrupted evaluation resumes where it stopped)")
    _add_model_args(ev)
    _add_patch_game_args(ev.add_argument_group("patch game and Shapley options"))
    sh = ev.add_argument_group("corruption and adversarial options")
    sh.add_argument("--corruptions",
                    help="corruption: comma-separated corruptions, one set of curves each (default gaussian_noise,"
                    f"fog, the paper's main figure; available: {', '.join(CORRUPTION_NAMES)})")
    sh.add_argument("--severity", type=integer(1, 5), help="corruption: severity 1..5 (default 5, as the paper)")
    sh.add_argument("--epsilon", type=number(0, 1e3, low_open=True),
                    help="adversarial: L2 radius of the PGD attack on [0,1] pixels (default 1.0, as the paper)")
    sh.add_argument("--pgd-step", type=number(0, 1e3, low_open=True), help="adversarial: PGD step length (default 0.2)")
    sh.add_argument("--pgd-steps", type=integer(1, 100_000), help="adversarial: PGD steps (default 10)")
    rd = ev.add_argument_group("rate-distortion, lambda-sweep and inits options")
    rd.add_argument("--steps", type=integer(1, 1_000_000),
        help="cartoonx/pixel-rde: optimisation steps (default: their default's)")
    rd.add_argument("--lambda", dest="lambda_k", type=number(0, 1e6),
        help="cartoonx/pixel-rde: sparsity weight lambda_k "
                    "(rate-distortion curves; the lambda sweep takes --lambdas)")
    rd.add_argument("--lambdas",
                    help="lambda-sweep: comma-separated lambda_k values (default 4,8,16,32,64, as the reproduction)")
    rd.add_argument("--inits",
                    help="inits: comma-separated initialisations, each INIT or INIT+preoptimize (default ones,random,"
                    "preoptimize,foreground,foreground+preoptimize; foreground uses GrabCut, the grabcut extra)")
    rd.add_argument("--draws", type=integer(1, 10_000), help="noise realisations averaged per curve or per mask "
                    "evaluation (default 1, as the reproduction)")
    ev.set_defaults(func=cmd_evaluate)

    co = sub.add_parser("compare", help="plot the rate-distortion curves of several evaluate runs together",
                        description="One figure of the mean curves in several rd-keep.json (or rd-randomize.json) "
                        "files written by 'clearsight evaluate', e.g. a CNN's and a ViT's, labelled model: method.")
    co.add_argument("results", nargs="+", metavar="RESULT_JSON", help="rd-keep.json / rd-randomize.json files")
    co.add_argument("--normalized", action="store_true",
                    help="plot in %% of each curve's fully randomised end (the reproduction's ViT figure)")
    co.add_argument("--common-images", action="store_true",
                    help="average over the images present in every result only (e.g. those both models classified "
                    "correctly)")
    co.add_argument("--out", default=f"{DEFAULT_OUT}/compare.png",
                    help=f"figure path (default {DEFAULT_OUT}/compare.png)")
    co.set_defaults(func=cmd_compare)

    ss = sub.add_parser("set-sum", help="the MoXI paper's visual SET-SUM task: where Shapley values fail",
                        description="Train a small CNN to add the distinct digits of 2x2 digit grids (scikit-learn's "
                        "bundled digits), then draw the insertion curves of MoXI, MoXI(-) and Shapley on grids whose "
                        "largest digit appears twice: 0/25/50/75/100% of the cells inserted. Writes the model and "
                        "set-sum-insertion_accuracy.csv, _auc.csv, .json and .png to --out; reruns reuse both.")
    ss.add_argument("--out", default=f"{DEFAULT_OUT}/set-sum", help=f"output folder (default {DEFAULT_OUT}/set-sum)")
    ss.add_argument("--train-size", type=int, default=30000, help="training composites (default 30000)")
    ss.add_argument("--epochs", type=int, default=10, help="training epochs (default 10: ~3 min on 2 cores)")
    ss.add_argument("--test-size", type=int, default=200, help="test composites for the curves (default 200)")
    ss.add_argument("--methods", default="moxi,moxi-minus,shapley", help="default moxi,moxi-minus,shapley")
    ss.add_argument("--rounds", type=int, default=200, help="shapley: sampling rounds (default 200)")
    ss.add_argument("--seed", type=integer(0, SEED_MAX), default=0,
        help="seed of the data split, composites and training")
    ss.set_defaults(func=cmd_set_sum)

    add_reproduce_parser(sub, _add_model_args)

    rp = sub.add_parser("report", help="an HTML page over a results folder (explanations and evaluations)",
                        description="Write a static HTML page that shows every explanation (figure, class, score, "
                        "cost, settings) and every evaluation (figures and small tables) found under FOLDER, linking "
                        "the files by relative path; open it in a browser.")
    rp.add_argument("folder", help="a results folder, e.g. the --out of explain or evaluate")
    rp.add_argument("--out", help="HTML file to write (default FOLDER/report.html)")
    rp.add_argument("--title", help="page title (default: the folder's name)")
    rp.set_defaults(func=cmd_report)

    mo = sub.add_parser("models", help="list the built-in model and the supported model specs")
    mo.set_defaults(func=cmd_models)

    de = sub.add_parser("demo", help="explain the bundled sample photo with the built-in model")
    de.add_argument("--method", default="gradcam", help="method to run (default gradcam)")
    de.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    de.set_defaults(func=cmd_demo)
    return parser
