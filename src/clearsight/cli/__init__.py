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

import sys

from ..errors import ClearsightError
from ..threads import choose_threads
from .common import CORRUPTION_NAMES, SHAPLEY_SAMPLINGS, method_options
from .explain import explain_file
from .parser import build_parser

#: the old private name, kept for callers of the single-module CLI
_method_options = method_options


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version (0) or a flag refused in one line (2): a status, as below
        return exit_.code if isinstance(exit_.code, int) else 2
    from ..models import keep_freed_memory

    keep_freed_memory()  # the command owns its process: freed activations stay mapped (library calls never do this)
    try:
        threads = choose_threads(getattr(args, "threads", None))
        if threads is not None:
            import torch

            torch.set_num_threads(threads)  # the command owns its process (the library restores after each call)
        return int(args.func(args) or 0)
    except ClearsightError as err:
        print(f"clearsight: error: {err.cli_message()}", file=sys.stderr)  # options named as --flags
        return 2
    except OSError as err:  # the file system refused (permissions, a full disk, a name too long): one line
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        print(f"clearsight: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clearsight: interrupted; finished results are saved, run again to resume", file=sys.stderr)
        return 130


__all__ = ["CORRUPTION_NAMES", "SHAPLEY_SAMPLINGS", "build_parser", "explain_file", "main", "method_options"]
