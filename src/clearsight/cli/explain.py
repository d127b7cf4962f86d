"""``clearsight explain`` and ``clearsight demo``: explain image files and write figures and results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import (
    check_absence,
    check_device,
    load_classifier,
    method_options,
    regular_file,
    seed_everything,
    writable_folder,
)
from .progress import unit_bar

if TYPE_CHECKING:  # the CLI imports torch and the methods lazily, so that --help stays fast
    import torch

    from ..methods.base import Explainer
    from ..models import Classifier


def explain_file(clf: Classifier, explainer: Explainer, path: Path, target: int | None, out: Path,
                 size: int | None = None,
                 resize: str | None = None, overwrite: bool = False,
                 plot_loss: bool = False, variants: tuple[str, ...] = (), dpi: int | None = None,
                 fmt: str = "png") -> tuple[Path | None, str]:
    """Explain one file and write ``PHOTO_METHOD[-VARIANT]_MODEL.{png,npz,json}`` (see
    :mod:`clearsight.cli.names`); returns (figure, one line for the user).

    The figures come first and the JSON record last: the record marks a finished result, so an interrupted
    write leaves no record and the next run redoes the image; a result counts as present only when every one
    of its files is. An existing result is kept (figure None): as it is when it was made the way this call
    asks, and with a line naming the settings that differ when it was not, so changing ``--lambda`` never
    silently returns the old answer and never overwrites a finished result without ``--overwrite``.
    """
    from ..viz import save_figure
    from ..viz.overlay import DEFAULT_DPI
    from .names import result_stem, with_suffix

    base = out / result_stem(path, explainer.name, clf.name, variants)
    figure, meta_path = with_suffix(base, f".{fmt}"), with_suffix(base, ".json")
    loss_path = with_suffix(base, f"_loss.{fmt}")
    needed = [figure, with_suffix(base, ".npz"), meta_path, *([loss_path] if plot_loss else [])]
    image = clf.prepare(path, size=size, resize=resize)
    request = _result_request(clf, explainer, path, image, target, resize)
    if not overwrite and all(p.is_file() for p in needed):
        changed = _differences(meta_path, request)
        if changed:
            return None, (f"a result made differently exists in {out} ({'; '.join(changed)}); "
                          "use --overwrite to replace it or --out for another folder")
        return None, f"result exists in {out} (use --overwrite to recompute)"
    cls, prob = clf.predict(image[None])
    predicted = (clf.class_name(int(cls[0])), float(prob[0]))
    # run control: optimisers (CartoonX, Pixel RDE) show a bar with the loss and keep their state, so an
    # interrupted run resumes mid-optimisation; the patch games show their steps or rounds
    explanation = explainer.explain(clf, image, target, progress=True, checkpoint_dir=out / ".checkpoints")
    explanation.settings.setdefault("image", str(path))
    explanation.settings["request"] = request  # as asked (None: the default), beside the values resolved
    dpi = DEFAULT_DPI if dpi is None else dpi
    save_figure(explainer.figure(image, explanation, predicted), figure, dpi=dpi, format=fmt)
    if plot_loss and "loss" in explanation.history:
        from ..viz.rde import loss_figure

        save_figure(loss_figure(explanation), loss_path, dpi=dpi, format=fmt)
    explanation.save(base)  # the arrays, then the record: last, as the mark of a finished result
    return figure, f"predicted {predicted[0]} ({predicted[1]:.1%}); explained {explanation.target_name}"


def _result_request(clf: Classifier, explainer: Explainer, path: Path, image: torch.Tensor, target: int | None,
                    resize: str | None) -> dict[str, Any]:
    """Everything that decides a result file: the photo file's bytes (two photos may share a file name), the
    model (name, weights digest, precision), the target as asked (None: the prediction), the size the photo
    was brought to and how, and the method's settings as given (None: the method's default)."""
    from ..checkpoints import file_digest
    from ..explanation import jsonable

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
    from ..methods import build_explainer
    from ..methods.capabilities import can

    seed_everything(args.seed)
    explainer = build_explainer(args.method, method_options(args))
    check_explain_flags(args)
    paths = [Path(p) for p in args.images]
    for path in paths:  # fail before the (slow) model load
        regular_file(path, "image")
    check_device(args.device)
    out = writable_folder(args.out)
    if can(args.method, "rde"):  # the optimiser's state goes there every 25 steps: prove it takes files now
        writable_folder(out / ".checkpoints", "the checkpoint folder")
    clf = load_classifier(args)
    target = clf.check_target(args.target) if args.target is not None else None
    variants = method_variants(args)
    with unit_bar(args.method, len(paths), unit="image", disable=len(paths) < 2) as progress:
        for path in paths:
            figure, line = explain_file(clf, explainer, path, target, out, args.size, args.resize, args.overwrite,
                                        getattr(args, "plot_loss", False), variants, args.dpi, args.format)
            progress.bar.write(f"{path}: {line}" + (f" -> {figure}" if figure is not None else ""), file=sys.stdout)
            (progress if figure is not None else progress.from_store)(path.name)  # kept results: no time spent
    return 0


def check_explain_flags(args: argparse.Namespace) -> None:
    """Refuse flags that would be silently ignored: ``--plot-loss`` without an optimiser, ``--foreground-mask``
    without ``--init foreground``, ``--tau`` in deletion mode."""
    from ..errors import MethodError
    from ..methods.capabilities import can

    if getattr(args, "plot_loss", False) and not can(args.method, "rde"):
        raise MethodError(f"--plot-loss draws an optimiser's loss (cartoonx, pixel-rde); {args.method} has none")
    if args.foreground_mask is not None:
        if args.init != "foreground":
            raise MethodError("--foreground-mask is the mask of --init foreground; add --init foreground")
        regular_file(args.foreground_mask, "foreground mask")
    check_absence(args.absence)
    if args.tau is not None and args.mode == "deletion":
        raise MethodError("--tau is a target probability insertion must reach; it does not apply to --mode deletion")


def method_variants(args: argparse.Namespace) -> tuple[str, ...]:
    """The values of ``--mode`` and ``--preset`` that differ from the method's default, for the result's name
    (``moxi-deletion``, ``rollout-moxi``, ``cartoonx-paper``)."""
    import inspect

    from ..methods import explainer_class
    from .names import VARIANT_SETTINGS

    cls, fixed = explainer_class(args.method)
    parameters = inspect.signature(cls.__init__).parameters
    variants = []
    for key in VARIANT_SETTINGS:
        value = getattr(args, key, None)
        default = fixed.get(key, parameters[key].default if key in parameters else None)
        if value is not None and value != default:
            variants.append(str(value))
    return tuple(variants)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..io import bundled_sample
    from ..methods import build_explainer
    from ..models import load_model

    clf = load_model()
    explainer = build_explainer(args.method)
    png, summary = explain_file(clf, explainer, bundled_sample(), None, Path(args.out) / "demo", overwrite=True)
    print(f"{bundled_sample().name} with {clf.name}: {summary}")
    print(f"figure: {png}")
    return 0
