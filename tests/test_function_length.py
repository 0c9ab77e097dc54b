"""No function outside tests/ runs past 60 lines (its decorators left out, its docstring in):
a longer one is split where its parts have names of their own."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("flows", "transforms", "schemas", "report_templates", "benchmarks")
LIMIT = 60


def long_functions(repo: Path = REPO) -> list[str]:
    found = []
    for folder in FOLDERS:
        for path in sorted((repo / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > LIMIT:
                        where = path.relative_to(repo)
                        found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_runs_past_60_lines():
    assert long_functions() == []


def test_the_count_sees_a_long_function_and_passes_one_of_60_lines(tmp_path):
    """The check itself: a 61-line function is found, a 60-line one is not."""
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    (tmp_path / "flows" / "long.py").write_text(f"def long():\n{body}\n", encoding="utf-8")
    short = "\n".join(f"    x{i} = {i}" for i in range(59))
    (tmp_path / "schemas" / "short.py").write_text(f"def short():\n{short}\n", encoding="utf-8")
    assert long_functions(tmp_path) == ["flows/long.py:1 long (61 lines)"]
