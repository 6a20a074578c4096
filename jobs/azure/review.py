"""`python -m jobs.azure.review --version N`: the reviewer's page for promoting dev's version N, as Markdown.

The promote workflow's first job writes it to $GITHUB_STEP_SUMMARY (the job summary GitHub shows on the run's
page, docs.github.com "Adding a job summary"), so whoever approves the `prod` environment sees which version,
its gate figures and its model card before approving. It reads the version's tags from the dev workspace and
changes nothing; it exits 1 when the promotion rule (jobs/promotion_rules.py) refuses the version, after the
page says why, so the run stops before anyone is asked to approve.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from jobs.errors import JobsError
from jobs.lineage import MODEL_NAME
from jobs.promotion_rules import promotion_problems, review_markdown


def page(ml: Any, version: str, workspace: str) -> tuple[str, bool]:
    """The page for MODEL_NAME `version` in the workspace `ml` is on, and whether it may be promoted.

    JobsError when the version is not there."""
    try:
        model = ml.models.get(MODEL_NAME, version=version)
    except ResourceNotFoundError:
        raise JobsError(f"{MODEL_NAME} version {version} is not registered in the workspace {workspace}") from None
    tags = {str(k): str(v) for k, v in (model.tags or {}).items()}
    return review_markdown(f"{MODEL_NAME} version {version} (workspace {workspace})", tags), not promotion_problems(
        tags
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.azure.review", description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="the registered version in dev to review")
    parser.add_argument("--stack", default=os.environ.get("PULUMI_STACK", "dev"), help="the stack that trained it")
    parser.add_argument("--outputs", type=Path, metavar="FILE", help="`pulumi stack output --json` of that stack")
    args = parser.parse_args(argv)
    from jobs.azure.session import connect
    from jobs.azure.stack_outputs import resolve

    try:
        outputs = resolve(args.stack, args.outputs)
        text, allowed = page(connect(outputs).ml, args.version, outputs.workspace_name)
    except JobsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except HttpResponseError as error:  # 401/403/5xx: what Azure said, in one line, not a traceback
        print(
            f"error: reading the model failed: Azure ML answered {error.status_code}: {error.message}", file=sys.stderr
        )
        return 2
    print(text)
    return 0 if allowed else 1


if __name__ == "__main__":
    sys.exit(main())
