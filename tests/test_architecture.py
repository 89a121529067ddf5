"""The import contract (docs/architecture.md): which package may import which, no import cycles, and a design
note at the top of every package.

Read from the source with ``ast``, so every import counts: module level, inside functions, under
``if TYPE_CHECKING:``. ``from a.b import c`` is an import of the module ``a.b.c`` when that module exists, else of
``a.b``; importing a module does not count as importing its package's ``__init__`` (Python runs it, but a package
whose ``__init__`` re-exports a submodule would otherwise be a cycle with every importer of that submodule).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHELL = "sealtrail"
# Each domain package and what it may import directly; a package may also import whatever those may import
# (transitively), so "signer may import registry" lets it use ledger and schemas as well.
MAY_IMPORT: dict[str, set[str]] = {
    "errors": set(),
    "schemas": {"errors"},
    "hsm_adapters": {"errors"},
    "ledger": {"schemas"},
    "registry": {"schemas", "ledger"},
    "signer": {"schemas", "hsm_adapters", "registry", "ledger"},
    "verifier": {"schemas", "ledger", "registry"},
    "accounts": {"schemas"},
    "workflow": {"schemas", "accounts", "registry", "signer"},
    "jobs": {"workflow", "signer"},
}
# The design's forbidden edges, checked on their own as well (a wrong MAY_IMPORT above must not hide them).
FORBIDDEN: dict[str, set[str]] = {
    "verifier": {"signer", "hsm_adapters", "workflow", "jobs", SHELL},
    "ledger": {"signer", "verifier", "hsm_adapters", "registry", SHELL},
    "signer": {"verifier", SHELL},
    "schemas": set(MAY_IMPORT) - {"schemas", "errors"} | {SHELL},
    "hsm_adapters": set(MAY_IMPORT) - {"hsm_adapters", "errors"} | {SHELL},
    "accounts": set(MAY_IMPORT) - {"accounts", "schemas", "errors"} | {SHELL},
    "registry": {SHELL},
    "workflow": {SHELL},
    "jobs": {SHELL},
}
PACKAGES = [p for p in [*MAY_IMPORT, SHELL] if (ROOT / p / "__init__.py").is_file()]


def allowed(package: str) -> set[str]:
    seen: set[str] = set()
    todo = list(MAY_IMPORT[package])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(MAY_IMPORT.get(name, ()))
    return seen | {package, "errors"}


@cache
def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _resolve(name: str) -> str | None:
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules():
            return candidate
        parts.pop()
    return None


def _imported_names(module: str, path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                target = f"{source}.{alias.name}"
                yield node.lineno, target if target in modules() else source


@cache
def graph() -> dict[str, dict[str, int]]:
    """module → {imported module of ours → first line}"""
    edges: dict[str, dict[str, int]] = {}
    for module, path in modules().items():
        out: dict[str, int] = {}
        for line, name in _imported_names(module, path):
            target = _resolve(name)
            if target is not None and target != module:
                out.setdefault(target, line)
        edges[module] = out
    return edges


def _where(module: str, target: str) -> str:
    path = modules()[module].relative_to(ROOT)
    return f"{path}:{graph()[module][target]} imports {target}"


def test_the_graph_sees_the_packages_and_function_level_imports() -> None:
    """The checker itself: it finds our modules and an import inside a function body."""
    assert {"schemas", "ledger", "signer", "verifier", "sealtrail"} <= set(PACKAGES)
    assert len(modules()) > 100
    probe = ROOT / "sealtrail" / "cli" / "main.py"
    assert probe.is_file()
    # `sealtrail demo` imports the demo inside the command's function: that edge must be seen.
    assert "sealtrail.demo" in graph()["sealtrail.cli.main"]


@pytest.mark.parametrize("package", [p for p in PACKAGES if p != SHELL])
def test_package_imports_only_what_it_may(package: str) -> None:
    may = allowed(package)
    bad = [
        _where(module, target)
        for module in modules()
        if module.split(".")[0] == package
        for target in graph()[module]
        if target.split(".")[0] not in may
    ]
    assert not bad, f"{package} may import only {sorted(may)}:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_forbidden_edges_absent(package: str) -> None:
    bad = [
        _where(module, target)
        for module in modules()
        if module.split(".")[0] == package
        for target in graph()[module]
        if target.split(".")[0] in FORBIDDEN[package]
    ]
    assert not bad, "\n".join(bad)


def _cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, {}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(graph())
    described = [
        " → ".join(c) + "\n    " + "\n    ".join(_where(m, t) for m in c for t in graph()[m] if t in c) for c in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(described)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_has_a_design_note(package: str) -> None:
    """Each package's ``__init__.py`` says its one job (and, at the top level, what it may import)."""
    missing = []
    for init in sorted((ROOT / package).rglob("__init__.py")):
        if "migrations" in init.parts:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        if not doc or len(doc) < 40:
            missing.append(f"{init.relative_to(ROOT)}: no docstring saying the package's job")
        elif init.parent.name == package and "import" not in doc.lower():
            missing.append(f"{init.relative_to(ROOT)}: the docstring does not say what it may import")
    assert not missing, "\n".join(missing)
