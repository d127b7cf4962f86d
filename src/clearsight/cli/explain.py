"""``clearsight explain`` and ``clearsight demo``: explain image files and write figures and results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import load_classifier, method_options, seed_everything

if TYPE_CHECKING:  # the CLI imports torch and the methods lazily, so that --help stays fast
    import torch

    from ..methods.base import Explainer
    from ..models import Classifier


def explain_file(clf: Classifier, explainer: Explainer, path: Path, target: int | None, out: Path,
                 size: int | None = None,
                 resize: str | None = None, overwrite: bool = False,
                 plot_loss: bool = False) -> tuple[Path | None, str]:
    """Explain one file and write ``STEM_METHOD.{png,npz,json}``; returns (figure, one line for the user).

    An existing result is kept (figure None): as it is when it was made the way this call asks, and with a
    line naming the settings that differ when it was not, so changing ``--lambda`` never silently returns
    the old answer and never overwrites a finished result without ``--overwrite``.
    """
    from ..viz import save_figure

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
    # run control: optimisers (CartoonX, Pixel RDE) show a bar with the loss and keep their state, so an
    # interrupted run resumes mid-optimisation; other methods ignore both
    explanation = explainer.explain(clf, image, target, progress=True, checkpoint_dir=out / ".checkpoints")
    explanation.settings.setdefault("image", str(path))
    explanation.settings["request"] = request  # as asked (None: the default), beside the values resolved
    explanation.save(stem)
    save_figure(explainer.figure(image, explanation, predicted), png)
    if plot_loss and "loss" in explanation.history:
        from ..viz.rde import loss_figure

        save_figure(loss_figure(explanation), out / f"{path.stem}_{explainer.name}_loss.png")
    return png, f"predicted {predicted[0]} ({predicted[1]:.1%}); explained {explanation.target_name}"


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
    from tqdm import tqdm

    from ..errors import ImageError
    from ..methods import build_explainer

    seed_everything(args.seed)
    explainer = build_explainer(args.method, method_options(args))
    out = Path(args.out)
    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:  # fail before the (slow) model load
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ImageError(f"image not found: {missing[0]}{more}")
    clf = load_classifier(args)
    target = clf.check_target(args.target) if args.target is not None else None
    paths = [Path(p) for p in args.images]
    for path in tqdm(paths, desc=f"{args.method}", unit="image", disable=len(paths) < 2, file=sys.stderr):
        png, line = explain_file(clf, explainer, path, target, out, args.size, args.resize, args.overwrite,
                                 getattr(args, "plot_loss", False))
        print(f"{path}: {line}" + (f" -> {png}" if png is not None else ""))
    return 0


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
