"""Dependencies flow one way (DESIGN, "Layout"), checked by package prefix.

core ← formats ← transport ← server; analysis sees core and formats only; the simulator
sees core only; cli and the pytest plugin sit on top. Relative imports count, and a
lazy import inside a function counts too, except for the third-party extras a layer
may load on demand (the openai SDK for ``to_openai()``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "streamtape"

# Which streamtape layers each layer may import ("errors" and "_version" are everyone's).
ALLOWED: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "_version": frozenset(),
    "core": frozenset({"core"}),
    "formats": frozenset({"core", "formats"}),
    "transport": frozenset({"core", "formats", "transport"}),
    # The servers run on the simulator's uvicorn runner, the one loopback runner we have.
    "server": frozenset({"core", "formats", "transport", "server", "simulator"}),
    "analysis": frozenset({"core", "formats", "analysis"}),
    "simulator": frozenset({"core", "simulator"}),
}
SHARED = frozenset({"errors", "_version"})
TOP = frozenset({"cli", "pytest_plugin", "_pytest", "__init__", "__main__"})
# Third-party libraries a layer must not import at module level.
BANNED_EXTERNAL: dict[str, frozenset[str]] = {
    "core": frozenset({"httpx", "httpx2", "click", "uvicorn", "openai", "anthropic"}),
    "formats": frozenset({"httpx", "httpx2", "click", "uvicorn", "openai", "anthropic"}),
    "analysis": frozenset({"httpx", "httpx2", "click", "uvicorn"}),
    "simulator": frozenset({"httpx", "httpx2", "click", "openai", "anthropic"}),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    """``streamtape.core.sse`` -> ``core``; ``streamtape`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path, module: str | None = None) -> tuple[set[str], set[str]]:
    """(absolute modules imported at module level, those imported inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    package = (module or module_name(path)).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    lazy_nodes = {
        id(inner)
        for func in ast.walk(tree)
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
        for inner in ast.walk(func)
        if inner is not func
    }
    eager: set[str] = set()
    lazy: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
                names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
            elif node.module:
                names = [node.module]
        (lazy if id(node) in lazy_nodes else eager).update(names)
    return eager, lazy


def violations(graph: Mapping[str, tuple[Iterable[str], Iterable[str]]]) -> list[str]:
    """Every import in ``graph`` (module -> (eager, lazy) imports) that breaks the rule."""
    found: list[str] = []
    for module, (eager, lazy) in graph.items():
        layer = layer_of(module)
        if layer in TOP:
            continue
        allowed = ALLOWED.get(layer)
        if allowed is None:
            found.append(f"{module}: layer {layer!r} is not in DESIGN's layout")
            continue
        for name in {*eager, *lazy}:
            if name.startswith("streamtape."):
                target = layer_of(name)
                if target not in SHARED and target not in allowed:
                    found.append(f"{module} imports {name} ({layer} may not see {target})")
            elif name == "streamtape":
                found.append(f"{module} imports the top-level package")
        for name in eager:
            if name.split(".")[0] in BANNED_EXTERNAL.get(layer, frozenset()):
                found.append(f"{module} imports {name} at module level")
    return sorted(found)


def package_graph() -> dict[str, tuple[set[str], set[str]]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def test_the_package_follows_the_dependency_rule() -> None:
    graph = package_graph()
    assert {"streamtape.core.sse", "streamtape.formats", "streamtape.transport"} <= set(graph)
    assert violations(graph) == []


@pytest.mark.parametrize(
    ("module", "imports", "complaint"),
    [
        ("streamtape.core.sse", {"streamtape.formats.base"}, "core may not see formats"),
        ("streamtape.formats.x", {"streamtape.transport.replay"}, "formats may not see transport"),
        ("streamtape.analysis.diff", {"streamtape.server.app"}, "analysis may not see server"),
        ("streamtape.simulator.app", {"streamtape.formats"}, "simulator may not see formats"),
        ("streamtape.core.match", {"httpx"}, "imports httpx at module level"),
        ("streamtape.core.match", {"streamtape"}, "imports the top-level package"),
        ("streamtape.gadgets.x", set(), "not in DESIGN's layout"),
    ],
)
def test_a_bad_import_graph_is_caught(module: str, imports: set[str], complaint: str) -> None:
    bad = violations({module: (imports, set())})
    assert len(bad) == 1 and complaint in bad[0], bad


def test_relative_imports_resolve_to_their_package(tmp_path: Path) -> None:
    path = tmp_path / "sse.py"
    path.write_text("from ..errors import SSEError\nfrom ..transport import replay\n")
    eager, _ = imports_of(path, "streamtape.core.sse")
    assert eager == {"streamtape.errors", "streamtape.transport"}
    graph = {"streamtape.core.sse": (eager, set[str]())}
    assert violations(graph) == [
        "streamtape.core.sse imports streamtape.transport (core may not see transport)"
    ]


def test_a_lazy_import_of_a_higher_layer_is_caught() -> None:
    bad = violations({"streamtape.core.cassette": (set(), {"streamtape.cli"})})
    assert bad == ["streamtape.core.cassette imports streamtape.cli (core may not see cli)"]


def test_only_the_cli_prints() -> None:
    for path in PACKAGE.rglob("*.py"):
        if layer_of(module_name(path)) in ("cli", "__main__"):
            continue
        calls = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
        ]
        assert not calls, f"{path.name} calls print()"
