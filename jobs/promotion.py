"""What a version must show before it is promoted, and the tags that say where a promoted version came from.

Target-neutral: the rules read a version's lineage tags (jobs/lineage.py model_tags), which every path that
registers a model writes the same way, so the local target (jobs/local/backend.py promote) and Azure apply the
same two refusals with the same words:
- a version without a passed quality gate: its gate.* tags missing, or still GATE_UNDECIDED (a dry run's
  model.yml, a version registered by hand). `register` refuses a model that fails the gate, so a version with
  decided gate.* tags passed it;
- a version whose model uses a column that leaks the outcome (`leaking_columns_used` other than "none":
  `--include-leaking-columns`, the lesson's reproduction, or "unknown" where the lineage cannot say).
"""

from __future__ import annotations

import datetime
import getpass
from collections.abc import Mapping

from jobs.errors import JobsError
from jobs.lineage import GATE_TAGS, GATE_UNDECIDED, UNKNOWN

# The origin a promoted version carries, beside every lineage tag of the version it copies.
ORIGIN_TAGS = ("promoted.from", "promoted.from_version", "promoted.by", "promoted.at")


class PromotionRefused(JobsError):
    """The version may not be promoted (no passed gate, or a leaking column); nothing was copied or deployed."""


class NothingToRollBack(JobsError):
    """The environment has no previous version to go back to; nothing was changed."""


def refusals(version: str, tags: Mapping[str, str]) -> list[str]:
    """Why version `version` (its lineage tags `tags`) may not be promoted; [] when it may."""
    found = []
    undecided = [tag for tag in GATE_TAGS if tags.get(tag, GATE_UNDECIDED) == GATE_UNDECIDED]
    if undecided:
        found.append(
            f"version {version} has no record of passing the quality gate ({', '.join(undecided)} "
            + ("missing or undecided" if len(undecided) > 1 else "is missing or undecided")
            + "): only a version `register` gated can be promoted; register its training run with `register`"
        )
    leaking = tags.get("leaking_columns_used", UNKNOWN)
    if leaking == UNKNOWN:
        found.append(
            f"version {version}'s lineage does not say whether its model uses a column that leaks the outcome "
            "(leaking_columns_used is unknown); train and register it again, which records it"
        )
    elif leaking != "none":
        found.append(
            f"version {version} uses {leaking}, which leaks the outcome (trained with --include-leaking-columns, "
            "the lesson's reproduction): its figures are not what it would do for a new patient; train "
            "without --include-leaking-columns for a model that can be promoted"
        )
    return found


def check_promotable(version: str, tags: Mapping[str, str], to: str) -> None:
    """Raise PromotionRefused listing every reason version `version` may not go to `to`."""
    found = refusals(version, tags)
    if found:
        raise PromotionRefused(f"refused to promote version {version} to {to}:\n  - " + "\n  - ".join(found))


def origin_tags(
    source: str, version: str, by: str | None = None, at: datetime.datetime | None = None
) -> dict[str, str]:
    """The promoted.* tags: the environment and version it came from, who promoted it (default: this machine's
    user) and when (UTC, ISO 8601, to the second)."""
    when = (at or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    if by is None:
        try:
            by = getpass.getuser()
        except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (a bare container)
            by = UNKNOWN
    values = (source, str(version), by, when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return dict(zip(ORIGIN_TAGS, values, strict=True))
