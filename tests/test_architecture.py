"""The package's layering, checked on its source: who may import whom, and no cycles.

docs/architecture.md draws the layers; this test keeps them true. Imports
are read with ``ast`` (top-level and inside functions alike: a lazy import is
still a dependency), relative imports resolved to module names.

Layers, lowest first:
- core: the contract, records, rules and the in-memory backend; imports only core;
- sql: the SQL backend (``sessionstore.sql.*``); imports core and sql;
- agent: the runner, models and session tools (``sessionstore.agent.*``); imports core
  (and may use the facade), never a backend, so it runs on every one;
- redis: the Redis backend (``sessionstore.redis.*``), a sibling of sql; imports core and redis;
- facade: ``sessionstore`` itself, ``factory``, ``demo``, ``__main__``; picks backends;
- adapters: the framework adapters (``sessionstore.adapters``, ``.adk``, ``.openai_agents``,
  ``.langchain``); import core and the facade, never the SQL internals;
- cli: the command line (``sessionstore.cli.*``); may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sessionstore.sql import aiosqlite_fence

PACKAGE = "sessionstore"
SRC = Path(__file__).resolve().parents[1] / "src" / PACKAGE
FACADE = {PACKAGE, f"{PACKAGE}.factory", f"{PACKAGE}.demo", f"{PACKAGE}.__main__", f"{PACKAGE}.sync", f"{PACKAGE}.alembic"}
ADAPTERS = (f"{PACKAGE}.adapters", f"{PACKAGE}.adk", f"{PACKAGE}.openai_agents", f"{PACKAGE}.langchain")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


def _imports(name: str, is_package: bool, source: str, known: set[str]) -> set[str]:
    """The package's own modules that module `name` (with this source) imports. A name imported
    from a package counts as the submodule when one exists by that name, else as the package."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import sessionstore.sql.x.y` -> closest module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, _is_package(path), path.read_text(), known) for name, path in modules.items()}


def _layer(module: str) -> str:
    if module in FACADE:
        return "facade"
    if module.startswith(f"{PACKAGE}.cli"):
        return "cli"
    if module.startswith(f"{PACKAGE}.sql"):
        return "sql"
    if module.startswith(f"{PACKAGE}.agent"):
        return "agent"
    if any(module == a or module.startswith(a + ".") for a in ADAPTERS):
        return "adapters"
    if module.startswith(f"{PACKAGE}.redis"):
        return "redis"
    return "core"


ALLOWED = {
    "core": {"core"},
    "sql": {"core", "sql"},
    "agent": {"core", "facade", "agent"},
    "redis": {"core", "redis"},
    "facade": {"core", "sql", "redis", "agent", "facade", "cli"},
    "adapters": {"core", "facade", "adapters"},
    "cli": {"core", "sql", "redis", "agent", "facade", "adapters", "cli"},
}


def test_the_graph_sees_the_package() -> None:
    graph = _graph()
    assert {f"{PACKAGE}.service", f"{PACKAGE}.sql.service", f"{PACKAGE}.cli"} <= set(graph)
    assert f"{PACKAGE}.sql.database" in graph[f"{PACKAGE}.sql.service"]
    assert f"{PACKAGE}.records" in graph[f"{PACKAGE}.service"]
    assert f"{PACKAGE}.service" in graph[f"{PACKAGE}.agent.runner"]
    assert f"{PACKAGE}.agent.runner" in graph[f"{PACKAGE}.agent"]
    assert f"{PACKAGE}.redis.scripts" in graph[f"{PACKAGE}.redis.service"]
    assert f"{PACKAGE}.redis" in graph[f"{PACKAGE}.factory"]


def test_the_agent_layer_reaches_no_backend() -> None:
    """The runner, models and tools work on every backend because they only see the contract."""
    graph = _graph()
    wrong = [f"{m} imports {t}" for m, targets in sorted(graph.items()) if _layer(m) == "agent"
             for t in sorted(targets) if t.startswith(f"{PACKAGE}.sql") or t in {f"{PACKAGE}.memory", f"{PACKAGE}.factory"}]
    assert wrong == []


def test_each_layer_imports_only_the_layers_below_it() -> None:
    wrong = [
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in sorted(_graph().items())
        for target in sorted(targets)
        if _layer(target) not in ALLOWED[_layer(module)]
    ]
    assert wrong == []


def test_the_adapters_are_a_layer_of_their_own() -> None:
    graph = _graph()
    assert _layer(f"{PACKAGE}.adk.service") == "adapters"
    assert f"{PACKAGE}.adapters" in graph[f"{PACKAGE}.adk.service"]
    assert "sql" not in ALLOWED["adapters"]


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    # A package's __init__ re-exporting its own submodules is not a cycle between concerns.
    real = [c for c in cycles if not all(m == c[0] or m.startswith(c[0] + ".") for m in c)]
    assert [" -> ".join(c) for c in real] == []


def test_the_checks_see_an_upward_and_a_lazy_import() -> None:
    """The checker itself: a core module's upward import inside a function is found and refused."""
    source = "def f():\n    from .sql.service import SQLSessionService\n"
    targets = _imports(f"{PACKAGE}.records", False, source, set(_modules()))
    assert targets == {f"{PACKAGE}.sql.service"}
    assert _layer(f"{PACKAGE}.sql.service") not in ALLOWED[_layer(f"{PACKAGE}.records")]


# ----------------------------------------------------------------------------- the aiosqlite fence


def test_the_installed_aiosqlite_passes_the_fence() -> None:
    import aiosqlite

    aiosqlite_fence.check_aiosqlite(aiosqlite.Connection)


def test_an_aiosqlite_without_the_private_api_fails_at_import_with_the_versions_that_work() -> None:
    class Renamed:  # what a future aiosqlite that renamed its internals would look like
        async def execute(self) -> None: ...

    with pytest.raises(ImportError) as caught:
        aiosqlite_fence.check_aiosqlite(Renamed)
    message = str(caught.value)
    assert "_execute" in message and "_conn" in message
    assert aiosqlite_fence.TESTED in message
