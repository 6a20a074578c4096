"""May this model version be promoted to prod? The rule every target applies, read from the version's tags.

Target-agnostic and pure: the tags are the ones jobs/lineage.py model_tags writes on every registration path
(Azure's `jobs register`, the pipeline step, the local registry), so one rule serves the Azure registry
promotion (jobs/azure/promotion.py) and the local one. Also here: the tags a promoted copy gains
(`promoted.*`), how a copy already in the target registry is recognised as the same promotion, and the
reviewer's summary of a version (the CI approval page, .github/workflows/promote.yml).
"""

from __future__ import annotations

import datetime
import getpass
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from jobs.errors import JobsError
from jobs.lineage import GATE_TAGS, GATE_UNDECIDED, LINEAGE_METRICS, UNKNOWN, finite_number

# What TrainingSettings.as_tags writes in `leaking_columns_used` for a model that uses no leaking column.
HONEST = "none"
GATE_METRIC = "AUC_weighted"
# The tags a promoted copy carries beside every lineage tag of its source, in this order.
PROMOTED_FROM = "promoted.from"  # the source: a workspace (azureml://subscriptions/.../workspaces/<name>) or registry
PROMOTED_FROM_VERSION = "promoted.from_version"  # the version number in the source
PROMOTED_BY = "promoted.by"  # who: the GitHub actor and run in CI, else the operating-system user
PROMOTED_AT = "promoted.at"  # when: UTC, ISO 8601 to the second
PROMOTION_TAGS = (PROMOTED_FROM, PROMOTED_FROM_VERSION, PROMOTED_BY, PROMOTED_AT)


def gate_problem(tags: Mapping[str, str]) -> str | None:
    """Why the tags do not show a passed quality gate; None when they do.

    Every registration path runs jobs/lineage.py quality_gate first and records its figures in GATE_TAGS; a
    version without them was registered some other way (by hand, `az ml model create`), and one whose tags say
    GATE_UNDECIDED is a dry run's model.yml. A recorded floor (gate.min_auc) must hold for the recorded metric.
    """
    missing = [tag for tag in GATE_TAGS if not tags.get(tag)]
    if missing:
        return (
            f"it carries no quality-gate record ({', '.join(missing)} missing): it was not registered by "
            "`jobs register` or the pipeline, so no gate passed it; register it with `jobs register`"
        )
    if any(tags[tag] == GATE_UNDECIDED for tag in GATE_TAGS):
        return f"its gate tags say {GATE_UNDECIDED!r}: a dry run's model, never gated"
    score = finite_number(tags.get(f"metric.{GATE_METRIC}"))
    if score is None:
        return f"it records no metric.{GATE_METRIC}, the figure its gate judged"
    floor = tags["gate.min_auc"]
    if floor != "off" and (finite_number(floor) is None or score < float(floor)):
        return f"its metric.{GATE_METRIC} {score:.4f} is below the floor its gate records (gate.min_auc {floor})"
    return None


def leak_problem(tags: Mapping[str, str]) -> str | None:
    """Why the tags do not show an honest model (no column that leaks the outcome); None when they do.

    `leaking_columns_used` is "none" for the honest default, names the columns for the lesson's reproduction
    (--include-leaking-columns), and is "unknown" on versions registered before the tag existed.
    """
    used = tags.get("leaking_columns_used", UNKNOWN).strip()
    if used == HONEST:
        return None
    if used in ("", UNKNOWN):
        return (
            "it does not record whether it uses a column that leaks the outcome (leaking_columns_used is "
            f"{used or 'empty'!r}); train and register it again so the tag is written"
        )
    return (
        f"it uses {used}, which leaks the outcome (trained with --include-leaking-columns): the lesson's "
        "reproduction, not a model to serve patients; train without that flag"
    )


@dataclass(frozen=True)
class Rule:
    """One condition of promotion: its name (for the reviewer) and the problem it finds in a version's tags."""

    name: str
    problem: Callable[[Mapping[str, str]], str | None]


RULES = (Rule("passed the quality gate", gate_problem), Rule("uses no leaking column", leak_problem))


def promotion_problems(tags: Mapping[str, str]) -> list[str]:
    """Every reason the version with these tags may not be promoted ([] when it may), one per failed rule."""
    return [problem for rule in RULES if (problem := rule.problem(tags)) is not None]


class PromotionRefused(JobsError):
    """A version the rules refuse (no passed gate, or a leaking column); nothing was copied, shared or deployed."""


class NothingToRollBack(JobsError):
    """The environment has no previous version to go back to; nothing was changed."""


def check_promotable(what: str, tags: Mapping[str, str], to: str = "prod") -> None:
    """Raise PromotionRefused naming `what` (e.g. "heart-failure-automl version 3"), the environment `to` and every
    reason it may not be promoted; return when every rule holds."""
    problems = promotion_problems(tags)
    if problems:
        raise PromotionRefused(
            f"{what} may not be promoted to {to}:\n  - "
            + "\n  - ".join(problems)
            + "\nNothing was copied, shared or deployed."
        )


def promoted_by(environ: Mapping[str, str] | None = None) -> str:
    """Who promotes: in GitHub Actions the actor and the run (GITHUB_ACTOR, GITHUB_REPOSITORY, GITHUB_RUN_ID, the
    default variables GitHub sets, docs.github.com "Store information in variables"), else the OS user."""
    environ = os.environ if environ is None else environ
    actor = environ.get("GITHUB_ACTOR", "").strip()
    if actor:
        run = environ.get("GITHUB_RUN_ID", "").strip()
        where = environ.get("GITHUB_REPOSITORY", "").strip()
        return f"{actor} (GitHub Actions run {run} of {where})" if run and where else actor
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment nor the password database
        return UNKNOWN


def promoted_at(at: datetime.datetime | None = None) -> str:
    """`at` (default: now) as the promoted.at tag: UTC, ISO 8601, to the second (2026-12-03T17:05:09Z)."""
    return (at or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def promotion_tags(tags: Mapping[str, str], source: str, version: str, by: str, at: str) -> dict[str, str]:
    """The promoted copy's tags: every tag of the source version, then the four PROMOTION_TAGS."""
    return {
        **{k: str(v) for k, v in tags.items()},
        PROMOTED_FROM: source,
        PROMOTED_FROM_VERSION: str(version),
        PROMOTED_BY: by,
        PROMOTED_AT: at,
    }


def same_promotion(existing: Mapping[str, str], source: str, version: str, tags: Mapping[str, str]) -> bool:
    """Whether a copy already in the target under the same name and version is this promotion (reuse it) and
    not another model that took the number (refuse): the same source and source version, and the same
    training run as the version being promoted."""
    return (
        existing.get(PROMOTED_FROM) == source
        and existing.get(PROMOTED_FROM_VERSION) == str(version)
        and existing.get("training_run") == tags.get("training_run")
    )


# Metrics that rank the probabilities without a threshold; the rest are counted at AutoML's 0.5.
_THRESHOLD_FREE = ("AUC_weighted", "average_precision_score_weighted")


def _metric_kind(name: str) -> str:
    if name in _THRESHOLD_FREE:
        return "cross-validated, no threshold"
    return "cross-validated, at probability 0.5 (AutoML's convention), not at the operating point"


def review_markdown(what: str, tags: Mapping[str, str]) -> str:
    """The reviewer's page for a promotion, as GitHub-flavoured Markdown: the verdict of each rule, the gate's
    figures and the model card's facts, each saying what it is (all from the version's tags)."""
    lines = [f"## Promote {what} to prod?", ""]
    for rule in RULES:
        problem = rule.problem(tags)
        lines.append(f"- {'yes' if problem is None else 'NO'}: {rule.name}" + (f": {problem}" if problem else ""))
    lines += ["", "### Quality gate (recorded when it was registered)", "", "| comparison | figure |", "|---|---|"]
    score = tags.get(f"metric.{GATE_METRIC}", UNKNOWN)
    lines.append(f"| {GATE_METRIC} of the model (its training run's cross-validation) | {score} |")
    for tag in GATE_TAGS:
        lines.append(f"| {tag} | {tags.get(tag, UNKNOWN)} |")
    lines += ["", "### Model card (from the model's tags)", "", "| fact | value |", "|---|---|"]
    card = (
        ("headline: out-of-fold AUC with its 95% interval, on the training patients", "headline.auc"),
        ("operating point: probability at or above which result=true", "operating_point.threshold"),
        ("how the operating point was chosen", "operating_point.rule"),
        ("dataset (its schema names the cohort it holds for)", "dataset"),
        ("columns left out", "dropped_columns"),
        ("leaking columns used", "leaking_columns_used"),
        ("training data version (content hash)", "data_version"),
        ("training run", "training_run"),
        ("commit trained from", "git_commit"),
        ("registered by", "registered_by"),
    )
    for label, tag in card:
        lines.append(f"| {label} | {tags.get(tag, 'not recorded')} |")
    for name in LINEAGE_METRICS:
        if f"metric.{name}" in tags and name != GATE_METRIC:
            lines.append(f"| {name} ({_metric_kind(name)}) | {tags[f'metric.{name}']} |")
    lines += [
        "",
        "The cohort, intended use and subgroup figures are in the model card of the run's report; these figures hold "
        "for patients like the training cohort only.",
    ]
    return "\n".join(lines) + "\n"
