"""Package structure: no import circles inside a package (imports inside functions count: a lazy import
still ties two modules together), and no upward import from the lower layers into the stages."""

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
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)  # `from . import tokens`
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("prm_selfreward"))
    return out


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}
GRAPH = {name: {m for m in _imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


@pytest.mark.parametrize("package", ["prm_selfreward.models", "prm_selfreward.grading", "prm_selfreward.stages"])
def test_no_import_circles_within(package):
    inside = {m for m in GRAPH if m.startswith(package + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node] & inside):
            assert state.get(nxt) != 1, f"import circle: {' -> '.join([*path, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(inside):
        if module not in state:
            visit(module, [module])


LOWER = ("prm_selfreward.models", "prm_selfreward.grading", "prm_selfreward.judges", "prm_selfreward.steps",
         "prm_selfreward.records", "prm_selfreward.prompts", "prm_selfreward.stats", "prm_selfreward.search",
         "prm_selfreward.pairs", "prm_selfreward.train")
UPPER = ("prm_selfreward.evaluate", "prm_selfreward.stages", "prm_selfreward.loop", "prm_selfreward.commands",
         "prm_selfreward.cli", "prm_selfreward.report", "prm_selfreward.run_config")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(LOWER)))
def test_lower_layers_do_not_import_the_stages(module):
    upward = sorted(m for m in GRAPH[module] if m.startswith(UPPER))
    assert not upward, f"{module} imports {upward} (statistics live in stats.py, configs beside their code)"
