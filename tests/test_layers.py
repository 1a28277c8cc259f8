"""The package's layers: every import (at module level or inside a function) points down or sideways within
its layer, and no two modules import each other, however far round. ``python tests/test_layers.py`` prints
the graph's layers and exits non-zero on a violation."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "latentcodec"
# Lowest first. A module's layer is its longest listed prefix.
LAYERS: list[tuple[str, ...]] = [
    ("latentcodec", "latentcodec.errors", "latentcodec.constants", "latentcodec.fs", "latentcodec.timings"),
    ("latentcodec.audio",),
    ("latentcodec.format",),
    ("latentcodec.runtime",),
    ("latentcodec.models",),
    ("latentcodec.vocoders",),
    ("latentcodec.codec", "latentcodec.info", "latentcodec.metrics", "latentcodec.export", "latentcodec.options"),
    ("latentcodec.jobs", "latentcodec.evaluate", "latentcodec.api", "latentcodec.dataset"),
    ("latentcodec.training",),
    ("latentcodec.cli",),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, wherever the statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "latentcodec"}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (the package imports absolutely)"
            if (node.module or "").split(".")[0] != "latentcodec":
                continue
            for a in node.names:  # `from latentcodec.jobs import folders` names a module
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in known else node.module)
    return found & known


def layer_of(name: str) -> int:
    best = max((len(p), i) for i, layer in enumerate(LAYERS) for p in layer if name == p or name.startswith(p + "."))
    return best[1]


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(p, set(mods)) - {m} for m, p in mods.items()}


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    return [f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
            for m, deps in g.items() for d in sorted(deps) if layer_of(d) > layer_of(m)]


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer() -> None:
    for m in modules():
        layer_of(m)  # raises when no layer's prefix matches


def test_no_import_points_up() -> None:
    assert upward_imports(graph()) == []


def test_no_import_circles() -> None:
    assert cycles(graph()) == []


def test_the_checker_sees_a_circle_and_an_upward_import() -> None:
    g = {"latentcodec.format.container": {"latentcodec.codec"}, "latentcodec.codec": {"latentcodec.format.container"}}
    assert cycles(g) == [["latentcodec.codec", "latentcodec.format.container"]]
    assert upward_imports(g) == ["latentcodec.format.container (layer 2) imports latentcodec.codec (layer 6)"]


if __name__ == "__main__":
    g = graph()
    for i, layer in enumerate(LAYERS):
        print(i, " ".join(sorted(m for m in g if layer_of(m) == i)))
    bad = upward_imports(g) + [" <-> ".join(c) for c in cycles(g)]
    print("\n".join(bad) or f"{len(g)} modules, {sum(map(len, g.values()))} imports: none points up, no circles")
    sys.exit(1 if bad else 0)
