"""The codebase stays one a reader can hold: no module of vaegen past 400 lines, no function past 80, and the
training function under 100 lines, docstring included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vaegen"
MODULES = sorted(PACKAGE.rglob("*.py"))


def functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(f"{path.relative_to(PACKAGE)}:{node.name}", node.end_lineno - node.lineno + 1)  # type: ignore[operator]
            for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_no_module_is_longer_than_400_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in MODULES if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long


def test_no_function_is_longer_than_80_lines() -> None:
    long = [(name, lines) for path in MODULES for name, lines in functions(path) if lines > 80]
    assert not long


def test_the_training_function_reads_in_under_100_lines() -> None:
    assert dict(functions(PACKAGE / "train" / "loop.py"))["train/loop.py:fit"] < 100
