"""The ``clearsight`` command line: ``explain``, ``evaluate``, ``compare``, ``set-sum``, ``report``, ``models`` and
``demo``.

User mistakes (a bad file, an unknown model or method, rollout on a CNN, a class out of range) print one
line, ``clearsight: error: ...``, and exit with status 2; Ctrl-C exits with 130. Results already written
stay valid: every file is written atomically, and ``explain`` skips images whose results exist unless
``--overwrite`` is given, so an interrupted run resumes where it stopped (and says so, naming the settings,
when the existing result was made differently). CartoonX and Pixel RDE also keep
their optimisation state in ``OUT/.checkpoints`` (every 25 steps), so even one long paper-preset image
resumes mid-optimisation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .errors import ClearsightError

if TYPE_CHECKING:  # the CLI imports torch and the methods lazily, so that --help stays fast
    import torch

    from .methods.base import Explainer
    from .models import Classifier

#: ``clearsight.methods.shapley.SAMPLINGS``, spelled out so that ``--help`` need not import torch
#: (tests/test_shapley.py checks that the two agree)
SHAPLEY_SAMPLINGS = ("plain", "antithetic", "stratified", "permutation", "permutation-antithetic")

DEFAULT_OUT = "clearsight-out"
#: ``clearsight evaluate``: rate-distortion figures (``clearsight.evaluation.rate_distortion.FIGURES``) and
#: each kind of curve's default methods
RD_CURVES = ("rd-keep", "rd-randomize")
#: deletion curves whose deleted patches show a corrupted or adversarial copy of the photo
REPLACEMENT_CURVES = ("corruption", "adversarial")
#: ``clearsight.corruptions.CORRUPTIONS``, spelled out so that ``--help`` need not import torch
#: (tests/test_replacement.py checks that the two agree)
CORRUPTION_NAMES = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "gaussian_blur", "defocus_blur",
                    "fog", "brightness", "contrast", "saturate", "pixelate", "jpeg_compression")
DEFAULT_CURVE_METHODS = "moxi,moxi-minus,gradcam,gradcampp,rollout,shapley"
DEFAULT_RD_METHODS = "cartoonx,pixel-rde,random-wavelet,random-pixel"

#: CLI destinations that are passed to the method's constructor (when given) by ``build_explainer``.
METHOD_OPTIONS = [
    "target_layer", "eigen_smooth", "aug_smooth",  # Grad-CAM family
    "preset", "head_fusion", "discard_ratio",  # rollout (preset also names other methods' presets)
    "steps", "lambda_k", "init", "samples", "lr", "render", "foreground_mask",  # CartoonX / Pixel RDE
    "mode", "tau", "full_order", "score", "absence", "patch_size", "rounds", "sampling",  # MoXI / Shapley
]


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="efficientnet_lite0",
                   help="efficientnet_lite0 (built in), timm:NAME, torchvision:NAME or hf:ID")
    g.add_argument("--weights", help="state_dict file to load (weights_only); needed offline for timm/torchvision")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    g.add_argument("--precision", choices=["fp32", "bf16"],
                   help="bf16 autocast is 3-5x faster on CPUs with AVX512-BF16 (default fp32; cartoonx/pixel-rde: "
                   "the preset's, bf16 where the CPU has it natively)")
    g.add_argument("--size", type=int, help="input size in pixels (default: the model's)")
    g.add_argument("--resize", choices=["crop", "squash"],
                   help="crop: resize short side and centre-crop (default); squash: resize to size x size")


def _add_method_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("method options (each applies to some methods only)")
    g.add_argument("--target-layer", help="Grad-CAM: module name to read (default: last conv stage / last block)")
    g.add_argument("--eigen-smooth", action="store_true", default=None, help="Grad-CAM: first principal component")
    g.add_argument("--aug-smooth", action="store_true", default=None, help="Grad-CAM: test-time augmentation")
    g.add_argument("--preset", help="rollout: vit-explain (default) or moxi; cartoonx/pixel-rde: paper")
    g.add_argument("--head-fusion", choices=["mean", "max", "min"], help="rollout: how heads are fused")
    g.add_argument("--discard-ratio", type=float, help="rollout: fraction of lowest attention entries dropped")
    g.add_argument("--steps", type=int, help="cartoonx/pixel-rde: optimisation steps (default: the preset's; "
                   "fast: 480 (pixel-rde), cartoonx 960 on ViTs and 800 on CNNs; paper: 2000)")
    g.add_argument("--lambda", dest="lambda_k", type=float,
                   help="cartoonx/pixel-rde: sparsity weight lambda_k (default 20 CNN / 10 ViT; pixel-rde 4)")
    g.add_argument("--init", choices=["ones", "zeros", "random", "foreground", "preoptimize"],
                   help="cartoonx/pixel-rde: mask initialisation (default ones)")
    g.add_argument("--samples", type=int, help="cartoonx/pixel-rde: noise samples per step (fast 5, paper 64)")
    g.add_argument("--lr", type=float, help="cartoonx/pixel-rde: Adam learning rate (fast 0.05 with a cosine decay, "
                   "cartoonx on CNNs 0.1; paper 0.001)")
    g.add_argument("--render", choices=["gray", "color"], help="cartoonx: grayscale (default) or colour cartoon")
    g.add_argument("--foreground-mask", help="cartoonx/pixel-rde: image file with the foreground for --init "
                   "foreground (default: GrabCut, needs OpenCV)")
    g.add_argument("--plot-loss", action="store_true", help="cartoonx/pixel-rde: also write NAME_METHOD_loss.png")
    _add_patch_game_args(g)
    g.add_argument("--mode", choices=["insertion", "deletion"],
                   help="moxi/moxi-minus: insert patches until the target is predicted (default) or delete them "
                        "until it is not; deletion with --target other than the prediction is class-discriminative")
    g.add_argument("--tau", type=float, help="moxi/moxi-minus insertion: also require this target probability")
    g.add_argument("--full-order", action="store_true", default=None,
                   help="moxi/moxi-minus: order all patches instead of stopping at the first success/failure")


def _add_patch_game_args(g) -> None:
    """Options of the patch game shared by moxi, moxi-minus, shapley and ``evaluate``."""
    g.add_argument("--score", choices=["log-odds", "probability", "log-probability", "logit"],
                   help="moxi/moxi-minus/shapley: the reward (default log-odds)")
    g.add_argument("--absence", help="moxi/moxi-minus/shapley: how patches are removed: auto (token-drop for ViTs, "
                   "fill for CNNs), token-drop, fill[:mean|black|blur|VALUE], attention-mask[:K]")
    g.add_argument("--patch-size", type=int, help="moxi/moxi-minus/shapley: patch side in pixels (default: the "
                   "ViT's patch, 16 for CNNs)")
    g.add_argument("--rounds", type=int, help="shapley: sampling rounds, 2N passes each, N+1 with permutation "
                   "sampling (default 200)")
    g.add_argument("--sampling", choices=SHAPLEY_SAMPLINGS,
                   help="shapley: how rounds are drawn (default plain, as the paper; permutation: the same error "
                   "per round at about half the passes)")


def build_parser() -> argparse.ArgumentParser:
    from .methods import available_methods

    parser = argparse.ArgumentParser(
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
    ex.add_argument("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    ex.add_argument("--overwrite", action="store_true", help="recompute results that already exist")
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
                        "coefficients; others: pixels) and keep the top x%% while randomising the rest, or "
                        "randomise the top x%%, for x = 0..100; writes "
                        "rd-FIGURE_mean.csv, _std.csv, _normalized.csv, rd-FIGURE.json and rd-FIGURE.png. With --curve "
                        "lambda-sweep: explain each image with cartoonx and pixel-rde at every --lambdas value and "
                        "measure each final mask's distortion and sparsity; writes lambda_sweep.csv/.json/.png. "
                        "With --curve inits: explain each image from every --inits initialisation and compare the "
                        "loss curves and final objectives; writes inits.csv, inits_loss.csv, inits.json and inits.png.")
    ev.add_argument("--curve", choices=["insertion", "deletion", *REPLACEMENT_CURVES, *RD_CURVES, "lambda-sweep",
                                        "inits"],
                    default="insertion", help="default insertion; corruption / adversarial: deletion curves where a "
                    "deleted patch shows a corrupted (--corruptions) or L2 PGD adversarial copy of the photo; "
                    "rd-keep / rd-randomize: rate-distortion curves "
                    "(l2 of softmax vectors); lambda-sweep: distortion and sparsity of RDE masks against lambda_k; "
                    "inits: RDE loss curves from several mask initialisations")
    ev.add_argument("--methods",
                    help=f"comma-separated method names (default: insertion/deletion {DEFAULT_CURVE_METHODS}, the six "
                    f"of the MoXI paper; rate-distortion {DEFAULT_RD_METHODS}: random-* rank at random; lambda-sweep "
                    "cartoonx,pixel-rde; inits: cartoonx, one method)")
    ev.add_argument("--images", required=True, metavar="DIR", help="folder of images")
    ev.add_argument("--labels", metavar="CSV", help="CSV with 'file' and 'class_index' columns; without it the "
                    "model's predictions are the labels; misclassified images are skipped")
    ev.add_argument("--limit", type=int, help="use only the first N images (sorted by name)")
    ev.add_argument("--out", default=f"{DEFAULT_OUT}/evaluate", help=f"output folder (default {DEFAULT_OUT}/evaluate)")
    ev.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    ev.add_argument("--overwrite", action="store_true",
                    help="recompute every curve (by default finished per-image curves in --out/runs are reused, so an "
                    "interrupted evaluation resumes where it stopped)")
    _add_model_args(ev)
    _add_patch_game_args(ev.add_argument_group("patch game and Shapley options"))
    sh = ev.add_argument_group("corruption and adversarial options")
    sh.add_argument("--corruptions", default="gaussian_noise,fog",
                    help="corruption: comma-separated corruptions, one set of curves each (default gaussian_noise,"
                    f"fog, the paper's main figure; available: {', '.join(CORRUPTION_NAMES)})")
    sh.add_argument("--severity", type=int, default=5, help="corruption: severity 1..5 (default 5, as the paper)")
    sh.add_argument("--epsilon", type=float, default=1.0,
                    help="adversarial: L2 radius of the PGD attack on [0,1] pixels (default 1.0, as the paper)")
    sh.add_argument("--pgd-step", type=float, default=0.2, help="adversarial: PGD step length (default 0.2)")
    sh.add_argument("--pgd-steps", type=int, default=10, help="adversarial: PGD steps (default 10)")
    rd = ev.add_argument_group("rate-distortion, lambda-sweep and inits options")
    rd.add_argument("--steps", type=int, help="cartoonx/pixel-rde: optimisation steps (default: their default's)")
    rd.add_argument("--lambda", dest="lambda_k", type=float, help="cartoonx/pixel-rde: sparsity weight lambda_k "
                    "(rate-distortion curves; the lambda sweep takes --lambdas)")
    rd.add_argument("--lambdas", default="4,8,16,32,64",
                    help="lambda-sweep: comma-separated lambda_k values (default 4,8,16,32,64, as the reproduction)")
    rd.add_argument("--inits", default="ones,random,preoptimize,foreground,foreground+preoptimize",
                    help="inits: comma-separated initialisations, each INIT or INIT+preoptimize (default ones,random,"
                    "preoptimize,foreground,foreground+preoptimize; foreground uses GrabCut, the grabcut extra)")
    rd.add_argument("--draws", type=int, default=1, help="noise realisations averaged per curve or per mask "
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
                        "largest digit appears twice: 0/25/50/75/100%% of the cells inserted. Writes the model and "
                        "set-sum-insertion_accuracy.csv, _auc.csv, .json and .png to --out; reruns reuse both.")
    ss.add_argument("--out", default=f"{DEFAULT_OUT}/set-sum", help=f"output folder (default {DEFAULT_OUT}/set-sum)")
    ss.add_argument("--train-size", type=int, default=30000, help="training composites (default 30000)")
    ss.add_argument("--epochs", type=int, default=10, help="training epochs (default 10: ~3 min on 2 cores)")
    ss.add_argument("--test-size", type=int, default=200, help="test composites for the curves (default 200)")
    ss.add_argument("--methods", default="moxi,moxi-minus,shapley", help="default moxi,moxi-minus,shapley")
    ss.add_argument("--rounds", type=int, default=200, help="shapley: sampling rounds (default 200)")
    ss.add_argument("--seed", type=int, default=0, help="seed of the data split, composites and training")
    ss.set_defaults(func=cmd_set_sum)

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


def _method_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {k: getattr(args, k) for k in METHOD_OPTIONS if getattr(args, k, None) is not None}
    shared = {"seed": getattr(args, "seed", None), "precision": getattr(args, "precision", None)}
    return _with_shared(args.method, options, shared)


def _with_shared(method: str, options: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Pass options that are not the method's alone (``--seed``, ``--precision``) on to methods whose
    constructor takes them (Shapley sampling and the RDE methods take a seed; the RDE methods choose their
    own precision unless told)."""
    import inspect

    from .methods import METHODS, explainer_class

    if method not in METHODS:
        return options
    cls, fixed = explainer_class(method)
    accepted = inspect.signature(cls.__init__).parameters
    extra = {k: v for k, v in shared.items() if v is not None and k in accepted and k not in fixed}
    return {**options, **extra}


def _load(args: argparse.Namespace):
    from .models import load_model

    return load_model(args.model, weights=args.weights, device=args.device, precision=args.precision or "fp32")


def _seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def explain_file(clf: Classifier, explainer: Explainer, path: Path, target: int | None, out: Path,
                 size: int | None = None,
                 resize: str | None = None, overwrite: bool = False,
                 plot_loss: bool = False) -> tuple[Path | None, str]:
    """Explain one file and write ``STEM_METHOD.{png,npz,json}``; returns (figure, one line for the user).

    An existing result is kept (figure None): as it is when it was made the way this call asks, and with a
    line naming the settings that differ when it was not, so changing ``--lambda`` never silently returns
    the old answer and never overwrites a finished result without ``--overwrite``.
    """
    from .viz import save_figure

    stem = out / f"{path.stem}_{explainer.name}"
    png, meta_path = stem.with_suffix(".png"), stem.with_suffix(".json")
    image = clf.prepare(path, size=size, resize=resize)
    request = _result_request(clf, explainer, path, image, target, resize)
    if png.exists() and meta_path.exists() and not overwrite:
        changed = _differences(meta_path, request)
        if changed:
            return None, (f"a result made differently exists in {out} ({'; '.join(changed)}); "
                          "use --overwrite to replace it or --out for another folder")
        return None, f"result exists in {out} (use --overwrite to recompute)"
    cls, prob = clf.predict(image[None])
    predicted = (clf.class_name(int(cls[0])), float(prob[0]))
    explanation = explainer.explain(clf, image, target)
    explanation.settings.setdefault("image", str(path))
    explanation.settings["request"] = request  # as asked (None: the default), beside the values resolved
    explanation.save(stem)
    save_figure(explainer.figure(image, explanation, predicted), png)
    if plot_loss and "loss" in explanation.history:
        from .viz.rde import loss_figure

        save_figure(loss_figure(explanation), out / f"{path.stem}_{explainer.name}_loss.png")
    return png, f"predicted {predicted[0]} ({predicted[1]:.1%}); explained {explanation.target_name}"


def _result_request(clf: Classifier, explainer: Explainer, path: Path, image: torch.Tensor, target: int | None,
                    resize: str | None) -> dict[str, Any]:
    """Everything that decides a result file: the photo file's bytes (two photos may share a file name), the
    model (name, weights digest, precision), the target as asked (None: the prediction), the size the photo
    was brought to and how, and the method's settings as given (None: the method's default)."""
    from .checkpoints import file_digest
    from .explanation import jsonable

    return jsonable({
        "file": file_digest(path), "model": clf.name,
        "weights": clf.weights_digest(), "precision": clf.precision, "target": target,
        "size": list(image.shape[-2:]), "resize": resize or clf.preprocessing.resize,
        "method": explainer.settings(),
    })


def _differences(meta_path: Path, request: dict[str, Any]) -> list[str]:
    """``name stored -> asked`` for each entry in which the stored result's request differs from this one.

    A result written before requests were recorded is taken as matching, and so is an entry the stored
    request lacks (a setting added by a later version); an unreadable record is not.
    """
    import json

    try:
        stored = json.loads(meta_path.read_text()).get("settings", {}).get("request")
    except (OSError, ValueError, AttributeError):
        return ["its record is unreadable"]
    if not isinstance(stored, dict):
        return []

    def flat(entries: dict[str, Any]) -> dict[str, Any]:
        method = entries.get("method") if isinstance(entries.get("method"), dict) else {}
        return {**{k: v for k, v in entries.items() if k != "method"}, **method}

    def shown(value: Any) -> str:
        return "default" if value is None else repr(value)

    old, new = flat(stored), flat(request)
    return [("another photo with this file name" if key == "file" else
             f"{key} {shown(old[key])} -> {shown(value)}") for key, value in new.items()
            if key in old and old[key] != value]


def cmd_explain(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .errors import ImageError
    from .methods import build_explainer

    _seed_everything(args.seed)
    explainer = build_explainer(args.method, _method_options(args))
    out = Path(args.out)
    if hasattr(explainer, "progress"):  # optimisers (CartoonX, Pixel RDE): a bar that shows the loss
        explainer.progress = True
    if hasattr(explainer, "checkpoint_dir"):  # and their state, so an interrupted run resumes mid-optimisation
        explainer.checkpoint_dir = out / ".checkpoints"
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:  # fail before the (slow) model load
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ImageError(f"image not found: {missing[0]}{more}")
    clf = _load(args)
    target = clf.check_target(args.target) if args.target is not None else None
    paths = [Path(p) for p in args.images]
    for path in tqdm(paths, desc=f"{args.method}", unit="image", disable=len(paths) < 2, file=sys.stderr):
        png, line = explain_file(clf, explainer, path, target, out, args.size, args.resize, args.overwrite,
                                 getattr(args, "plot_loss", False))
        print(f"{path}: {line}" + (f" -> {png}" if png is not None else ""))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .cli_evaluate import run_evaluate

    return run_evaluate(args)


def cmd_compare(args: argparse.Namespace) -> int:
    from .evaluation.rate_distortion import compare_figure

    print(f"figure: {compare_figure(args.results, args.out, args.normalized, args.common_images)}")
    return 0


def cmd_set_sum(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .experiments.set_sum import check_set_sum, reproduce_set_sum

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    check_set_sum(args.train_size, args.epochs, args.test_size, args.rounds, methods)
    with tqdm(total=args.test_size * len(methods), desc="SET-SUM curves", unit="run", file=sys.stderr) as bar:
        run = reproduce_set_sum(
            args.out, args.train_size, args.epochs, args.test_size, args.seed, args.rounds, methods,
            train_progress=lambda epoch, loss: bar.write(f"epoch {epoch}/{args.epochs}: loss {loss:.4f}"),
            progress=lambda m: (bar.set_postfix_str(m), bar.update()))
    curves = run.curves
    print(f"model {run.model_path}: accuracy {run.accuracy_uniform:.3f} on uniform test grids, "
          f"{run.accuracy_largest_twice:.3f} on grids with the largest digit twice")
    print(f"{len(curves.images)} test grids explained, {len(curves.skipped)} skipped (misclassified)")
    print("insertion accuracy after 0/1/2/3/4 of 4 cells:")
    for m in curves.methods:
        print(f"  {m:12s} " + "  ".join(f"{v:.3f}" for v in curves.accuracy(m)))
    print(f"table: {Path(args.out) / 'set-sum-insertion_accuracy.csv'}  figure: "
          f"{Path(args.out) / 'set-sum-insertion.png'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .viz.report import build_report

    print(f"report: {build_report(args.folder, args.out, args.title)}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models import BUILTIN, DEFAULT_MODEL, EXAMPLES

    print("built-in:")
    for name, desc in BUILTIN.items():
        print(f"  {name:32s} {desc}{' (default)' if name == DEFAULT_MODEL else ''}")
    print("specs (pass --weights PATH when offline):")
    for name, desc in EXAMPLES.items():
        print(f"  {name:32s} {desc}")
    print("  timm:NAME / torchvision:NAME / hf:ID   any classifier of those libraries")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .io import bundled_sample
    from .methods import build_explainer
    from .models import load_model

    clf = load_model()
    explainer = build_explainer(args.method)
    png, summary = explain_file(clf, explainer, bundled_sample(), None, Path(args.out) / "demo", overwrite=True)
    print(f"{bundled_sample().name} with {clf.name}: {summary}")
    print(f"figure: {png}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ClearsightError as err:
        print(f"clearsight: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clearsight: interrupted; finished results are saved, run again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
