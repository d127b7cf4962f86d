"""README.md is the first thing a user runs: every ``clearsight ...`` command it shows must parse with today's
command line (an option renamed or removed would otherwise only surface when a user copies it)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    """The ``clearsight`` commands of the README's bash blocks, continuation lines joined, comments dropped."""
    commands, in_bash, pending = [], False, ""
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_bash = line.strip() == "```bash"
            continue
        if not in_bash:
            continue
        text = pending + line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else pending
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        if text.startswith("clearsight "):
            commands.append(text)
    return commands


def test_the_readme_shows_commands():
    names = {shlex.split(c)[1] for c in readme_commands()}
    assert {"explain", "evaluate", "compare", "models"} <= names


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_parses(command):
    from clearsight.cli import build_parser

    argv = shlex.split(command)[1:]
    if "--help" in argv:  # prints the help and exits 0
        with pytest.raises(SystemExit) as stop:
            build_parser().parse_args(argv)
        assert stop.value.code == 0
        return
    args = build_parser().parse_args(argv)
    assert callable(args.func)
    if args.command == "explain":  # the method and its options are accepted too (no model is loaded)
        from clearsight.cli import _method_options
        from clearsight.methods import build_explainer

        build_explainer(args.method, _method_options(args))
