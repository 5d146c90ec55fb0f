"""Dependencies flow one way: the sans-IO core never imports the adapters or entry points."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "streamtape"
CORE = ["errors", "exchange", "sse", "chat", "assembly", "cassette", "redact", "match", "pacing"]
ADAPTERS_AND_ENTRY_POINTS = {
    "httpx",
    "httpx2",
    "click",
    "uvicorn",
    "openai",
    "streamtape.httpcompat",
    "streamtape.transports",
    "streamtape.demo",
    "streamtape.demo_upstream",
    "streamtape.cli",
}


def imported_modules(path: Path) -> set[str]:
    """Modules imported at import time (a lazy import inside a function is an optional extra)."""
    tree = ast.parse(path.read_text(), str(path))
    lazy = {
        id(inner)
        for func in ast.walk(tree)
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
        for inner in ast.walk(func)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in lazy:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_adapter(module: str) -> None:
    imported = imported_modules(PACKAGE / f"{module}.py")
    bad = {
        name
        for name in imported
        for banned in ADAPTERS_AND_ENTRY_POINTS
        if name == banned or name.startswith(banned + ".")
    }
    assert not bad, f"streamtape.{module} imports {sorted(bad)}"


def test_only_the_cli_prints() -> None:
    for path in PACKAGE.glob("*.py"):
        if path.stem in ("cli", "demo", "__main__"):
            continue
        calls = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
        ]
        assert not calls, f"{path.name} calls print()"
