"""Every bounded value a user sets on the command line, declared once: its flag, its type and bounds, the targets
it applies to, and why not elsewhere.

The bounds are annotated-types constraints (Ge, Gt, Le, Lt: the vocabulary pydantic validates), checked by
pydantic's TypeAdapter; from the same declaration come the argparse type (jobs/cli.py), the "allowed: ..."
wording of every message, the refusal of a flag on the wrong target (cli.AZURE_ONLY / LOCAL_ONLY), the settings'
own checks (jobs/training.py TrainingSettings.validate, jobs/monitoring/check.py Thresholds.problems), the
local endpoint's port range (jobs/local/endpoint.py) and `make demo PORT=` (the Makefile asks `port` below).

    .venv/bin/python -m jobs.options port 5001   # exit 0, or 2 with the problem (what the Makefile runs)

Light to import (no pydantic until a value is checked): `status` and `--help` must start at once (issue 22).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from annotated_types import Ge, Gt, Le, Lt

from scoring.contract import THRESHOLD_ABOVE, THRESHOLD_BELOW

TARGETS = ("local", "azure")
A_WEEK_MINUTES = 7 * 24 * 60
A_YEAR_HOURS = 366 * 24


@dataclass(frozen=True)
class Bounded:
    """A number's type and range: `kind` int or float, `low`/`high` annotated-types constraints (None: open)."""

    kind: type
    low: Ge | Gt | None = None
    high: Le | Lt | None = None
    unit: str = ""  # appended to the allowed text: "seconds"
    note: str = ""  # appended in parentheses: "a week"

    @property
    def noun(self) -> str:
        return "a whole number" if self.kind is int else "a number"

    @property
    def allowed(self) -> str:
        """What is allowed, in words: "a whole number from 1024 to 65535", "above 0 and at most 10080 (a week)"."""

        def shown(bound: Any) -> str:
            value = getattr(bound, type(bound).__name__.lower())  # Ge(1).ge, Lt(1).lt, ...
            return f"{value:g}" if isinstance(value, float) else str(value)

        low = "" if self.low is None else ("above " if isinstance(self.low, Gt) else "from ") + shown(self.low)
        high = "" if self.high is None else ("below " if isinstance(self.high, Lt) else "at most ") + shown(self.high)
        if self.kind is int and isinstance(self.low, Ge) and self.high is None:
            text = f"a whole number, at least {shown(self.low)}"
        elif low.startswith("from ") and high.startswith("at most "):
            text = f"{low} to {high[len('at most ') :]}"
            text = f"a whole number {text}" if self.kind is int else text
        elif low and high:
            text = f"{low} and {high}"
        else:
            text = f"{self.noun} {low or high}"
        if self.unit:
            text += f" {self.unit}"
        return text + (f" ({self.note})" if self.note else "")

    @cached_property
    def _adapter(self) -> Any:
        from typing import Annotated

        from pydantic import TypeAdapter

        constraints = [c for c in (self.low, self.high) if c is not None]
        return TypeAdapter(Annotated[(self.kind, *constraints)])  # type: ignore[arg-type]

    def of_kind(self, value: Any) -> bool:
        """Whether `value` is of `kind` as Python holds it: an int for a whole number (not a bool), an int or a
        float for a number; a string such as '5001' is not, though pydantic's lax mode would read it."""
        if isinstance(value, bool):
            return False
        return isinstance(value, int) if self.kind is int else isinstance(value, (int, float))

    def within(self, value: float) -> bool:
        """Whether `value` (already of `kind`) is finite and within the bounds."""
        from pydantic import ValidationError

        if isinstance(value, float) and not math.isfinite(value):
            return False
        try:
            self._adapter.validate_python(value, strict=False)
        except ValidationError:
            return False
        return True


@dataclass(frozen=True)
class Option:
    """One user-settable value: `dest` (the argparse destination and settings field), its `flag`, its bounds,
    the targets it applies to and, when that is one, why it means nothing on the other."""

    dest: str
    flag: str
    bounds: Bounded | None = None  # None: a name, a path or a switch (the parser's type is enough)
    targets: tuple[str, ...] = TARGETS
    why_not: str = ""
    default: Any = None  # where the project has one default for it (the port); else the settings' own

    def parse(self, text: str) -> Any:
        """The argparse type: the flag's value as `kind`, or argparse's error naming what is allowed.

        The range is checked after parsing (problems), so that every bad value is listed at once."""
        if self.bounds is None:
            return text
        try:
            return self.bounds.kind(text)
        except ValueError:
            bounds = self.bounds
            raise argparse.ArgumentTypeError(f"{text!r} is not {bounds.noun}; allowed: {bounds.allowed}") from None

    def problem(self, value: Any) -> str | None:
        """None, or `argument --flag: VALUE is not allowed; allowed: ...` (the wording argparse uses)."""
        if value is None or self.bounds is None:
            return None
        if not self.bounds.of_kind(value):  # a program's '5001' or True, which no flag can give
            return f"argument {self.flag}: {value!r} is not {self.bounds.noun}; allowed: {self.bounds.allowed}"
        if self.bounds.within(value):
            return None
        # As typed, for what argparse read from a flag: 99999999999, not 1e+11; 0, not 0.0.
        whole = isinstance(value, float) and value.is_integer() and abs(value) < 1e16
        shown = str(int(value)) if whole else repr(value) if isinstance(value, float) else str(value)
        return f"argument {self.flag}: {shown} is not allowed; allowed: {self.bounds.allowed}"


def _options(*options: Option) -> dict[str, Option]:
    return {option.dest: option for option in options}


_AT_LEAST_1 = Bounded(int, Ge(1))
_ABOVE_0 = Bounded(float, Gt(0))
_FRACTION = Bounded(float, Ge(0), Le(1))

_WORKSPACE = "it locates the Azure ML workspace"
_ONE_SERVER = "the local endpoint is one server on this machine"

OPTIONS: dict[str, Option] = _options(
    # Where the Azure ML workspace is, and the dry run.
    Option("stack", "--stack", None, ("azure",), "it names the Pulumi stack that locates the Azure ML workspace"),
    Option("outputs", "--outputs", None, ("azure",), _WORKSPACE),
    Option("subscription_id", "--subscription-id", None, ("azure",), _WORKSPACE),
    Option("resource_group", "--resource-group", None, ("azure",), _WORKSPACE),
    Option("workspace", "--workspace", None, ("azure",), _WORKSPACE),
    Option("dry_run", "--dry-run", None, ("azure",), "it builds Azure ML specs"),
    Option("out", "--out", None, ("azure",), "it is the folder for --dry-run's Azure ML specs"),
    Option("wait", "--wait", None, ("azure",), "local training always runs to the end before the command returns"),
    # Training. The timeout's week is a project cap (a run nobody waits for), not Azure's.
    Option("timeout_minutes", "--timeout-minutes", Bounded(float, Gt(0), Le(A_WEEK_MINUTES), note="a week")),
    Option("trial_timeout_minutes", "--trial-timeout-minutes", Bounded(float, Gt(0), Le(A_WEEK_MINUTES))),
    # jobs/local/search.py: FLAML runs one trial at a time without Ray.
    Option(
        "max_concurrent_trials",
        "--max-concurrent-trials",
        _AT_LEAST_1,
        ("azure",),
        "local training runs one trial at a time",
    ),
    # A project cap, not Azure's (azure-ai-ml 1.35.2's TableVerticalLimitSettings documents no maximum): a
    # reproducible local run of this many trials ends within minutes here, an unbounded one never.
    Option("max_trials", "--max-trials", Bounded(int, Ge(1), Le(1000))),
    Option("cv_folds", "--cv-folds", Bounded(int, Ge(2), Le(20))),
    # azure-ai-ml 1.35.2's automl.classification() has no seed parameter (automl/_automl_tabular.py).
    Option("seed", "--seed", Bounded(int, Ge(0), Le(2**32 - 1)), ("local",), "Azure AutoML takes no seed"),
    # As long as the longest --timeout-minutes (a week): the cap cannot be longer than what it caps.
    Option(
        "local_budget_seconds",
        "--local-budget-seconds",
        Bounded(float, Gt(0), Le(A_WEEK_MINUTES * 60), unit="seconds"),
        ("local",),
        "Azure AutoML runs for --timeout-minutes",
    ),
    # Registration and deployment.
    Option("min_auc", "--min-auc", _FRACTION),
    # Versions are whole numbers from 1 on both targets: the local registry's and the ones `register` gets from
    # Azure ML, which numbers a model's versions 1, 2, ... when none is given (azure-ai-ml 1.35.2
    # ModelOperations.create_or_update, auto-increment).
    Option("version", "--version", Bounded(int, Ge(1), note="versions are 1, 2, 3, ...")),
    Option("instance_type", "--instance-type", None, ("azure",), _ONE_SERVER),
    Option("instance_count", "--instance-count", _AT_LEAST_1, ("azure",), _ONE_SERVER),
    # Unprivileged ports only: below 1024 needs root on Linux.
    Option(
        "port",
        "--port",
        Bounded(int, Ge(1024), Le(65535)),
        ("local",),
        "the Azure endpoint's address comes from the stack",
        default=5001,
    ),
    # The environment (jobs/environments.py): locally a registry and an endpoint of its own.
    Option("env", "--env", None, ("local",), "in Azure, --stack names the environment's workspace"),
    Option("threshold", "--threshold", Bounded(float, Gt(THRESHOLD_ABOVE), Lt(THRESHOLD_BELOW))),
    Option("min_sensitivity", "--min-sensitivity", Bounded(float, Gt(0), Le(1))),
    # Monitoring; the thresholds' defaults are Azure ML's (jobs/monitoring/drift.py).
    Option("numerical_threshold", "--numerical-threshold", _ABOVE_0),
    Option("categorical_threshold", "--categorical-threshold", _ABOVE_0),
    Option("prediction_threshold", "--prediction-threshold", _ABOVE_0),
    # A year at most: collected data is kept collectedDataRetentionDays (30 by default), and a window past any
    # retention only says the same with more arithmetic to overflow.
    Option("window_hours", "--window-hours", Bounded(float, Gt(0), Le(A_YEAR_HOURS), note="a year")),
    # Azure's deployment logs refusals (scoring/collect.py) instead of collecting them, and its schedule has no
    # signal for them; its drift signals take no minimum count.
    Option(
        "max_refused_share",
        "--max-refused-share",
        _FRACTION,
        ("local",),
        "Azure collects scored records only; refusals go to the deployment's log",
    ),
    Option(
        "min_records",
        "--min-records",
        _AT_LEAST_1,
        ("local",),
        "Azure's monitoring schedule has no minimum record count",
    ),
    Option(
        "reference",
        "--reference",
        None,
        ("local",),
        "in Azure the reference is the training data asset named by the model's data_version tag",
    ),
    Option(
        "emails",
        "--email",
        None,
        ("azure",),
        "the Azure monitoring schedule sends the alerts; locally, act on the exit code (1 on drift)",
    ),
)


def argument_type(dest: str) -> Callable[[str], Any]:
    """The argparse `type=` of a declared bounded option."""
    return OPTIONS[dest].parse


def allowed(dest: str) -> str:
    """The allowed values of a declared bounded option, in words (for its help)."""
    bounds = OPTIONS[dest].bounds
    assert bounds is not None, dest  # a declaration error, caught by any test that builds the parser
    return bounds.allowed


def problems(values: Mapping[str, Any], dests: Iterable[str] | None = None) -> list[str]:
    """Every declared option among `values` (dest -> value; those in `dests` only, when given) that is out of
    bounds, as messages in declaration order; [] when all are allowed."""
    wanted = set(values if dests is None else dests)
    found = (
        option.problem(values[option.dest])
        for option in OPTIONS.values()
        if option.dest in wanted and option.dest in values
    )
    return [problem for problem in found if problem]


def only_on(target: str) -> dict[str, tuple[str, str]]:
    """The declared options that apply to `target` alone: dest -> (flag, why not on the other)."""
    return {o.dest: (o.flag, o.why_not) for o in OPTIONS.values() if o.targets == (target,)}


def main(argv: list[str]) -> int:
    """`python -m jobs.options DEST VALUE [--make-variable NAME]`: exit 0 when VALUE is allowed for the declared
    option DEST, else 2 with the problem on stderr; with --make-variable, the problem in make's terms
    (`make demo PORT=80`: the user typed PORT=, not --port)."""
    variable = None
    if len(argv) == 4 and argv[2] == "--make-variable":
        argv, variable = argv[:2], argv[3]
    if len(argv) != 2 or argv[0] not in OPTIONS or OPTIONS[argv[0]].bounds is None:
        bounded = ",".join(dest for dest, option in OPTIONS.items() if option.bounds is not None)
        print(f"usage: python -m jobs.options {{{bounded}}} VALUE [--make-variable NAME]", file=sys.stderr)
        return 2
    option, text = OPTIONS[argv[0]], argv[1]
    try:
        problem = option.problem(option.parse(text))
        what = f"is not a usable {option.dest}"
    except argparse.ArgumentTypeError as error:
        problem, what = f"argument {option.flag}: {error}", f"is not a {option.dest} number"
    if problem and variable:
        problem = (
            f"error: {variable}={text} {what}; use make demo {variable}=N, N {allowed(option.dest)} "
            f"(make passes it to {option.flag})"
        )
    if problem:
        print(problem, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
