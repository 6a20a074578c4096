"""docs/cli.md, the command-line reference, generated from the parser itself (jobs/cli.py build_parser).

    .venv/bin/python -m jobs.reference            # print the reference
    .venv/bin/python -m jobs.reference --write    # rewrite docs/cli.md
    .venv/bin/python -m jobs.reference --check    # exit 1 when docs/cli.md is not what the parser gives (make lint)

Generated, so that the reference cannot drift from the flags: every command, its flags in their groups, each
flag's value, default and help, and which target it applies to (from cli.AZURE_ONLY / cli.LOCAL_ONLY, the same
tables that refuse a flag on the other target). Defaults that come from the environment (JOBS_TARGET,
PULUMI_STACK) are shown as the variable, so that the file is the same on every machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from jobs import cli
from jobs.commands import JOBS
from jobs.paths import ROOT

REFERENCE = ROOT / "docs" / "cli.md"
# Variables whose value becomes a default in build_parser: unset while rendering, so the file is machine-free.
# dest -> (the variable build_parser reads its default from, the default without it).
ENVIRONMENT_DEFAULTS = {"target": ("JOBS_TARGET", "local"), "stack": ("PULUMI_STACK", "dev")}


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _flag_names(action: argparse.Action) -> str:
    names = ", ".join(f"`{name}`" for name in action.option_strings)
    if action.nargs == 0:
        return names
    choices = "{" + ",".join(map(str, action.choices)) + "}" if action.choices else None
    value = action.metavar or choices or action.dest.upper()
    return f"{names} `{value}`"


def _default(action: argparse.Action) -> str:
    if action.dest in ENVIRONMENT_DEFAULTS:
        variable, fallback = ENVIRONMENT_DEFAULTS[action.dest]
        return f"`${variable}`, else `{fallback}`"
    if action.default in (None, argparse.SUPPRESS, False, []) or action.nargs == 0:
        return ""
    default = action.default
    if isinstance(default, Path) and default.is_relative_to(ROOT):
        default = default.relative_to(ROOT)  # the checkout's own file, wherever it is cloned
    return f"`{default}`"


def _applies(action: argparse.Action) -> str:
    if action.dest in cli.AZURE_ONLY:
        return "azure"
    if action.dest in cli.LOCAL_ONLY:
        return "local"
    return "both"


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%" in text:  # argparse's own help expansion (%(default)s, %%)
        text = text % {"default": action.default, "prog": JOBS}
    return _cell(text)


def render() -> str:
    """The reference as Markdown: a section per command in cli.COMMANDS order, a table of its flags."""
    variables = [variable for variable, _ in ENVIRONMENT_DEFAULTS.values()]
    saved = {name: os.environ.pop(name) for name in variables if name in os.environ}
    try:
        parser = cli.build_parser()
    finally:
        os.environ.update(saved)
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    lines = [
        "# Command-line reference",
        "",
        "Generated from the parser by `.venv/bin/python -m jobs.reference --write`; `make lint` fails when it is",
        "out of date. Run a command as `.venv/bin/python -m jobs COMMAND` from the checkout, or",
        "`.venv/bin/heart-failure COMMAND` from anywhere. A flag for the other target is refused, not ignored",
        "(the column *target*); [jobs.md](jobs.md) explains the commands, the gate and every refusal.",
        "",
        "| command | what it does | targets |",
        "|---|---|---|",
    ]
    for name, command in cli.COMMANDS.items():
        targets = "local" if command.local_only else "local, azure"
        lines.append(f"| [`{name}`](#{name}) | {_cell(command.line)} | {targets} |")
    for name, command in cli.COMMANDS.items():
        sub = subparsers.choices[name]
        lines += ["", f"## {name}", "", _cell(command.summary[0].upper() + command.summary[1:]) + ".", ""]
        rows = [
            action
            for group in sub._action_groups
            for action in group._group_actions
            if action.option_strings and action.dest != "help"
        ]
        if not rows:
            lines.append("No flags but `--target` (local only).")
            continue
        lines += ["| flag | default | target | what it does |", "|---|---|---|---|"]
        for action in rows:
            lines.append(f"| {_flag_names(action)} | {_default(action)} | {_applies(action)} | {_help(action)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """`--write` rewrites docs/cli.md; `--check` exits 1 (with what to run) when it is stale; else print it."""
    parser = argparse.ArgumentParser(prog="python -m jobs.reference", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"rewrite {REFERENCE.relative_to(ROOT)}")
    mode.add_argument("--check", action="store_true", help="exit 1 when the file is not what the parser gives")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        REFERENCE.write_text(text)
        return 0
    if args.check:
        current = REFERENCE.read_text() if REFERENCE.is_file() else ""
        if current != text:
            print(
                f"{REFERENCE.relative_to(ROOT)} is out of date with jobs/cli.py's flags; run "
                "`.venv/bin/python -m jobs.reference --write` and commit it",
                file=sys.stderr,
            )
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
