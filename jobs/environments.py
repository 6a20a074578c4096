"""The environments a model moves through, declared once: `dev`, where `train` and `register` put versions,
and `prod`, which gets them only by `promote` (docs/promotion.md).

The names are the Pulumi stacks' (Pulumi.dev.yaml, Pulumi.prod.yaml, docs/environments.md): in Azure an
environment is its stack's workspace; on this machine it is an MLflow registry and an endpoint of its own
(jobs/local/places.py says where). From this one table come `--env` and `--to`'s parsing, their help and every
message that lists what is allowed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from jobs.options import OPTIONS


@dataclass(frozen=True)
class Environment:
    """One environment: `name`; `port`, its local endpoint's default port on 127.0.0.1; `promoted_from`, the
    environment its versions come from (None: versions are registered here, from training runs)."""

    name: str
    port: int
    promoted_from: str | None = None


ENVIRONMENTS: dict[str, Environment] = {
    environment.name: environment
    for environment in (
        Environment("dev", OPTIONS["port"].default),
        Environment("prod", 5002, promoted_from="dev"),
    )
}
# Where `register` (and `train`'s MLflow runs) go: the one environment nothing is promoted into.
(REGISTERED_IN,) = (name for name, environment in ENVIRONMENTS.items() if environment.promoted_from is None)
# What `--to` may name: the environments a version is promoted into.
PROMOTION_TARGETS = tuple(name for name, environment in ENVIRONMENTS.items() if environment.promoted_from)


def environment(name: str) -> Environment:
    """The declared environment `name`; JobsError naming the allowed ones otherwise (for callers past argparse)."""
    from jobs.errors import JobsError

    problem = _problem(name, tuple(ENVIRONMENTS), "--env")
    if problem:
        raise JobsError(problem)
    return ENVIRONMENTS[name]


def promotion_target(name: str) -> Environment:
    """The environment `--to NAME` promotes into (or rolls back); JobsError for any other name."""
    from jobs.errors import JobsError

    problem = _problem(name, PROMOTION_TARGETS, "--to")
    if problem:
        raise JobsError(problem)
    return ENVIRONMENTS[name]


def _problem(name: str, allowed: tuple[str, ...], flag: str) -> str | None:
    if name in allowed:
        return None
    what = "is not an environment" if name not in ENVIRONMENTS else f"cannot be given to {flag}"
    why = (
        f" ({REGISTERED_IN} is where `register` puts versions; they reach {', '.join(PROMOTION_TARGETS)} by `promote`)"
        if flag == "--to" and name == REGISTERED_IN
        else ""
    )
    return f"argument {flag}: {name!r} {what}; allowed: {', '.join(allowed)}{why}"


def argument_type(flag: str) -> Callable[[str], str]:
    """The argparse `type=` of `--env` (any environment) or `--to` (a promotion target)."""
    allowed = tuple(ENVIRONMENTS) if flag == "--env" else PROMOTION_TARGETS

    def parse(text: str) -> str:
        problem = _problem(text, allowed, flag)
        if problem:
            # argparse prefixes "argument --to: " itself.
            raise argparse.ArgumentTypeError(problem.split(": ", 1)[1])
        return text

    return parse


def allowed(flag: str) -> str:
    """The names `flag` takes, for its help: "dev, prod"."""
    return ", ".join(ENVIRONMENTS if flag == "--env" else PROMOTION_TARGETS)
