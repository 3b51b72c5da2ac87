"""The package keeps the layers that docs/architecture.md draws: each folder imports only the folders below it
(read from the source with `ast`, imports inside functions and under TYPE_CHECKING included), and no module
imports itself back through others."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vaegen"

# What each folder may import (itself included); the order of docs/architecture.md
ALLOWED = {
    "core": {"core"},
    "songci": {"core", "songci"},
    "train": {"core", "songci", "train"},
    "generate": {"core", "songci", "generate"},
    "eval": {"core", "songci", "train", "generate", "eval"},
    "cli": {"core", "songci", "train", "generate", "eval", "cli"},
    "serve": {"core", "songci", "generate", "serve"},
    "": {"generate", "cli"},  # vaegen/__init__.py (the Python API) and vaegen/__main__.py
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The vaegen modules a file imports, anywhere in it: `from vaegen.a import b` counts vaegen.a.b where b is a
    module, else vaegen.a."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("vaegen")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vaegen"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
    return found - {"vaegen"}


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def folder(module: str) -> str:
    """The folder of a module: vaegen.core.model -> core; the package's own files -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else ""


def test_every_folder_has_its_place_in_the_layers() -> None:
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert folders == set(ALLOWED) - {""}


def test_no_import_goes_against_the_layers() -> None:
    wrong = sorted(f"{module} imports {target}" for module, targets in GRAPH.items() for target in targets
                   if folder(target) not in ALLOWED[folder(module)])
    assert not wrong


def test_the_core_cli_and_server_keep_apart() -> None:
    """The acceptance's three rules, spelt out."""
    assert not {"train", "generate", "eval", "songci", "cli", "serve"} & ALLOWED["core"]
    assert not {"generate", "eval", "cli", "serve"} & ALLOWED["train"]
    assert "serve" not in ALLOWED["cli"] and "cli" not in ALLOWED["serve"]


def test_no_module_imports_itself_back() -> None:
    """Depth-first search for a cycle in the module graph."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return None
        for target in sorted(GRAPH.get(module, ())):
            if (cycle := visit(target, [*path, module])) is not None:
                return cycle
        done.add(module)
        return None

    cycles = [cycle for module in sorted(GRAPH) if (cycle := visit(module, [])) is not None]
    assert not cycles


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text("def f():\n    from vaegen.core import model\n    import vaegen.serve.app\n", encoding="utf-8")
    assert imports(source) == {"vaegen.core.model", "vaegen.serve.app"}


def test_importing_the_trainer_loads_no_generation() -> None:
    """What a training process loads, in a fresh interpreter: neither decoding nor the tune book."""
    code = "import sys, vaegen.train.loop; print(sorted(m for m in sys.modules if m.startswith('vaegen.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "vaegen.train.loop" in loaded
    assert "vaegen.generate" not in loaded and "vaegen.songci.tune_book" not in loaded
