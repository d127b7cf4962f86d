"""What every ``clearsight`` command shares: flag constants, loading the model, seeding, and mapping flags
to method options. Imported by every command module; imports none of them."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ClearsightError, MethodError

#: ``clearsight.methods.shapley.SAMPLINGS``, spelled out so that ``--help`` need not import torch
#: (tests/test_shapley.py checks that the two agree)
SHAPLEY_SAMPLINGS = ("plain", "antithetic", "stratified", "permutation", "permutation-antithetic")

DEFAULT_OUT = "clearsight-out"
#: the largest ``--seed``: every random generator clearsight seeds (torch, numpy's legacy ones) takes 32 bits
SEED_MAX = 2**32 - 1
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
    "spatial_lambda",  # WaveletX / ShearletX
    "mode", "tau", "full_order", "screen", "score", "absence", "patch_size", "rounds", "sampling",  # MoXI / Shapley
]


def method_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {k: getattr(args, k) for k in METHOD_OPTIONS if getattr(args, k, None) is not None}
    shared = {"seed": getattr(args, "seed", None), "precision": getattr(args, "precision", None)}
    return with_shared(args.method, options, shared)


def with_shared(method: str, options: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Pass options that are not the method's alone (``--seed``, ``--precision``) on to methods whose
    constructor takes them (Shapley sampling and the RDE methods take a seed; the RDE methods choose their
    own precision unless told)."""
    import inspect

    from ..methods import METHODS, explainer_class

    if method not in METHODS:
        return options
    cls, fixed = explainer_class(method)
    accepted = inspect.signature(cls.__init__).parameters
    extra = {k: v for k, v in shared.items() if v is not None and k in accepted and k not in fixed}
    return {**options, **extra}


def load_classifier(args: argparse.Namespace):
    from ..models import load_model

    return load_model(args.model, weights=args.weights, device=args.device, precision=args.precision or "fp32")


def seed_everything(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def model_spec(args: argparse.Namespace):
    """The model flags as a :class:`~clearsight.evaluation.driver.ModelSpec`, which workers of any engine
    load themselves."""
    from ..evaluation.driver import ModelSpec

    return ModelSpec(args.model, args.weights, args.device, args.precision or "fp32")


def split_names(text: str) -> list[str]:
    """Comma-separated values, blanks dropped."""
    return [v.strip() for v in text.split(",") if v.strip()]


def lambdas(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise MethodError(f"--lambdas takes comma-separated numbers, e.g. 4,8,16; got {text!r}")
    return values


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose mistakes print as every other user mistake does: one line, ``clearsight:
    error: ...``, exit status 2 (argparse's usage block would bury the one line that matters)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"clearsight: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def integer(low: int | None = None, high: int | None = None, what: str = "") -> Any:
    """An argparse type: a whole number in ``[low, high]``, refused with the range otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range: {_range(low, high)}{what}")
        return value
    parse.__name__ = "integer"
    return parse


def number(low: float | None = None, high: float | None = None, low_open: bool = False, what: str = "") -> Any:
    """An argparse type: a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``); NaN and
    infinities are refused, since they turn every curve and score into NaN."""
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if ((low is not None and (value < low or (low_open and value == low)))
                or (high is not None and value > high)):
            shown = _range(low, high).replace("at least", "more than") if low_open else _range(low, high)
            raise argparse.ArgumentTypeError(f"{value:g} is out of range: {shown}{what}")
        return value
    parse.__name__ = "number"
    return parse


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


def check_device(device: str) -> None:
    """Refuse a device this machine lacks before the model is loaded: ``cpu``, ``cuda[:N]`` with CUDA and that
    many GPUs, ``mps`` on Apple GPUs."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ClearsightError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ClearsightError(f"--device {device}: this machine has no CUDA GPU (or torch was built without "
                                  "CUDA); use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise ClearsightError(f"--device {device}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}")
        return
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ClearsightError(f"--device {device}: no Apple GPU (MPS) here; use --device cpu")
        return
    raise ClearsightError(f"--device {device}: clearsight runs on cpu, cuda or mps")


def writable_folder(folder: str | os.PathLike, flag: str = "--out") -> Path:
    """Prove the output folder takes files before any work is spent: an existing file, a name too long, or a
    folder without write permission is one clear line now, not a traceback after an hour of explanations.
    A folder that does not exist yet is not created here (a command that fails later leaves nothing behind):
    its nearest existing parent must be a writable folder and every new name must fit the file system."""
    import tempfile

    path = Path(folder)
    try:
        if path.is_dir():
            with tempfile.TemporaryFile(dir=path):
                pass
            return path
        if path.exists() or path.is_symlink():
            raise ClearsightError(f"{flag} {path} is an existing file, not a folder; give a folder name")
        parent = path.absolute()
        while not parent.exists() and parent != parent.parent:
            limit = os.pathconf(parent.parent, "PC_NAME_MAX") if parent.parent.is_dir() else 255
            if len(os.fsencode(parent.name)) > limit:
                raise ClearsightError(f"{flag} {path}: the name {parent.name[:40]!r}... is longer than the file "
                                      f"system allows ({limit} bytes)")
            parent = parent.parent
        if not parent.is_dir():
            raise ClearsightError(f"{flag} {path}: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ClearsightError(f"{flag} {path}: cannot create it in {parent} (permission denied)")
    except OSError as err:
        raise ClearsightError(f"{flag} {path}: cannot write there ({err.strerror or err})") from None
    return path


def regular_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` when it is a regular file that can be read; one line naming the problem otherwise. The type
    checks (named pipes and devices refused before anything opens them) are :func:`clearsight.io.check_image_file`'s;
    this adds the read permission, which the CLI checks before the model loads."""
    from ..io import check_image_file

    path = check_image_file(path, what)
    if not os.access(path, os.R_OK):
        raise ClearsightError(f"cannot read {what} {path}: permission denied")
    return path


def check_absence(spec: str | None) -> None:
    """Parse ``--absence`` now (``auto`` waits for the model), so a bad fill value fails before any work."""
    if spec is not None and spec != "auto":
        from ..parts import make_absence

        make_absence(spec)
