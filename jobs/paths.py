"""The repository root: the one owner of that fact for every module under jobs/.

infra/ (the Pulumi program), scoring/ (the endpoint's entry script, shipped alone to Azure) and
policy/ (the CrossGuard pack) keep their own: each runs as a separate program whose folder is
packaged or uploaded without jobs/, so it cannot import this module.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
