"""Package structure: no import circle anywhere in ``prm_selfreward`` (imports inside functions and under
``TYPE_CHECKING`` count: a lazy import still ties two modules together), and no upward import from the
lower layers into the stages.

The graph has an edge A -> B for every module B that A names in an import. ``from .pkg import name``
is an edge to ``pkg.name`` when that is a module (``from . import tokens``), else to ``pkg``. Importing
``pkg.sub`` also runs ``pkg/__init__.py``, but that implicit edge is left out: a package re-exporting
its submodules would otherwise always be a circle with them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import prm_selfreward

ROOT = Path(prm_selfreward.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULE_FILES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """Every prm_selfreward module ``path`` imports, anywhere in the file (absolute dotted names)."""
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("prm_selfreward"):
                continue
            for alias in node.names:  # `from . import tokens` imports the module tokens, not .
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in MODULE_FILES else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("prm_selfreward"))
    return out


MODULES = MODULE_FILES
GRAPH = {name: {m for m in _imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per group of modules that import each other (the strongly connected components of
    ``graph`` with more than one module, or a module importing itself), each as a path that closes."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                groups.append(group)

    for module in sorted(graph):
        if module not in index:
            connect(module)
    circles = []
    for group in groups:
        start = min(group)
        path, seen = [start], {start}
        while True:  # walk inside the group until the path closes
            nxt = min(m for m in graph[path[-1]] if m in group)
            path.append(nxt)
            if nxt in seen:
                break
            seen.add(nxt)
        circles.append(path[path.index(path[-1]):])
    return circles


def test_no_import_circle_anywhere_in_the_package():
    circles = import_circles(GRAPH)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("graph,expected", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c", "a"]]),
    ({"a": {"a"}}, [["a", "a"]]),
])
def test_the_circle_finder_finds_circles(graph, expected):
    assert import_circles(graph) == expected


def test_the_graph_sees_lazy_and_type_checking_imports(tmp_path):
    """What the test relies on: an import inside a function or under TYPE_CHECKING is an edge, and
    ``from . import sub`` is an edge to the submodule."""
    assert "prm_selfreward.train.common" in GRAPH["prm_selfreward.evaluate"]  # inside a function
    assert "prm_selfreward.models.base" in GRAPH["prm_selfreward.models.config"]  # under TYPE_CHECKING
    assert "prm_selfreward.models.tokens" in GRAPH["prm_selfreward.models.hf"]  # from . import tokens
    assert "prm_selfreward.models" not in GRAPH["prm_selfreward.models.hf"]
    assert len(GRAPH) == len(list(ROOT.rglob("*.py")))  # the whole package, every folder


LOWER = ("prm_selfreward.models", "prm_selfreward.grading", "prm_selfreward.judges", "prm_selfreward.steps",
         "prm_selfreward.records", "prm_selfreward.prompts", "prm_selfreward.stats", "prm_selfreward.search",
         "prm_selfreward.pairs", "prm_selfreward.train")
UPPER = ("prm_selfreward.evaluate", "prm_selfreward.stages", "prm_selfreward.loop", "prm_selfreward.commands",
         "prm_selfreward.cli", "prm_selfreward.report", "prm_selfreward.run_config")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(LOWER)))
def test_lower_layers_do_not_import_the_stages(module):
    upward = sorted(m for m in GRAPH[module] if m.startswith(UPPER))
    assert not upward, f"{module} imports {upward} (statistics live in stats.py, configs beside their code)"
