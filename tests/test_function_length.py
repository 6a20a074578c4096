"""No function or method longer than 70 lines (the project's style rule), from its `def` to its last line,
docstring and comments included: a longer one does more than one thing, and is split along its concerns."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 70
CHECKED = ("infra", "jobs", "scoring", "policy", "bench", "acceptance")
# Files still being shortened in parallel work (issue 21); each is let through whatever its functions' lengths.
# Empty this list once they are split: nothing else may join it.
ALLOWED = {
    "jobs/local/automl.py",  # search and train: being split into search and selection
}


def _too_long() -> list[str]:
    found = []
    for folder in CHECKED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ALLOWED:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=relative)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_LINES:
                        found.append(f"{relative}:{node.lineno} {node.name} is {length} lines")
    return found


def test_no_function_is_over_70_lines():
    assert _too_long() == [], f"split these along their concerns (at most {MAX_LINES} lines each)"


def test_the_allow_list_names_files_that_exist():
    # A file renamed or split away must leave the list, or the list would let its successor through unseen.
    assert [name for name in sorted(ALLOWED) if not (ROOT / name).is_file()] == []
