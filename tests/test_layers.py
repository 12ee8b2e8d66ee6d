"""The package's layers import one way: a module imports its own package or the layers below it, function-level
imports included; train, runtime and export stand side by side; no import cycle. `python tests/test_layers.py`
prints the layer picture as the code has it."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "masterocr"

# bottom to top; one rank may hold several top-level units, which must not import each other (siblings)
LAYERS: list[tuple[str, ...]] = [
    ("errors", "version"),
    ("limits", "files", "devices", "text", "imports", "memory"),
    ("charset", "metrics", "assets", "samples"),
    ("model",),
    ("formats",),
    ("data",),
    ("train", "runtime", "export"),
    ("page",),
    ("serve",),
    ("demo",),
    ("cli",),
    ("__main__",),
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str | None:
    """The top-level unit (`data`, `cli`, ...) of a dotted module name; None for the package facade itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def imported_modules(path: Path, module: str) -> set[str]:
    """Every masterocr module `path` imports anywhere in its body (`from x import y` counts y when it is a
    module of its own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_pkg else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if module_exists(sub) else base)
    return found


def module_exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        name = module_name(path)
        graph[name] = {m for m in imported_modules(path, name) if m != name}
    return graph


def violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in graph.items():
        unit = unit_of(module)
        for target in sorted(targets):
            to = unit_of(target)
            if unit is None:  # the facade may re-export from any layer below the CLI
                if to is None or RANK.get(to, 99) >= RANK["demo"]:
                    bad.append(f"{module} -> {target}: the package facade re-exports library layers only")
                continue
            if to is None:
                bad.append(f"{module} -> {target}: import the module that defines a name, not the facade")
            elif unit not in RANK or to not in RANK:
                bad.append(f"{module} -> {target}: {unit if unit not in RANK else to} is in no layer of LAYERS")
            elif RANK[to] > RANK[unit]:
                bad.append(f"{module} -> {target}: {to} sits above {unit}")
            elif RANK[to] == RANK[unit] and to != unit:
                bad.append(f"{module} -> {target}: {unit} and {to} are siblings and import neither")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


def layer_picture(graph: dict[str, set[str]]) -> str:
    units = defaultdict(set)
    for module in graph:
        unit = unit_of(module)
        if unit is not None:
            units[unit].add(module)
    lines = []
    for rank in range(len(LAYERS) - 1, -1, -1):
        names = [u for u in LAYERS[rank] if u in units]
        if names:
            counts = ", ".join(f"{u} ({len(units[u])} modules)" for u in names)
            lines.append(f"L{rank}  {counts}")
    return "\n".join(lines)


def test_every_import_points_down_or_within_its_own_unit() -> None:
    bad = violations(import_graph())
    assert not bad, "\n".join(bad)


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(m) for m in import_graph()} - {None}
    assert units <= set(RANK), f"units with no layer: {sorted(units - set(RANK))}"


def test_the_checker_sees_a_function_level_import_of_a_higher_layer(tmp_path: Path) -> None:
    source = "def f():\n    from masterocr.cli import main\n    return main\n"
    path = SRC / PACKAGE / "model" / "__probe__.py"
    graph = {"masterocr.model.__probe__": imported_modules_from_text(source, "masterocr.model.__probe__", path)}
    assert any("cli sits above model" in v for v in violations(graph))
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]


def imported_modules_from_text(source: str, module: str, path: Path) -> set[str]:
    probe = path.parent / f"_layers_probe_{module.split('.')[-1]}.py"
    probe.write_text(source, encoding="utf-8")
    try:
        return imported_modules(probe, module)
    finally:
        probe.unlink()


if __name__ == "__main__":
    g = import_graph()
    print(layer_picture(g))
    for line in violations(g):
        print("violation:", line)
    for c in cycles(g):
        print("cycle:", " <-> ".join(c))
