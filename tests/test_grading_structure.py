"""Structure of the checker package: no import circles, one reader of plain numbers, one owner of
gold answers (the loaders in data/ call grading's)."""

from __future__ import annotations

import ast
from fractions import Fraction
from pathlib import Path

import prm_selfreward.grading as grading

PACKAGE = Path(grading.__file__).parent


def _imports(path: Path) -> set[str]:
    """Sibling modules of the grading package that ``path`` imports, anywhere in the file."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:
                out.add(module.split(".")[0] if module else "")
                if not module:
                    out.update(alias.name for alias in node.names)
            elif module.startswith("prm_selfreward.grading."):
                out.add(module.split(".")[2])
    return {m for m in out if (PACKAGE / f"{m}.py").exists()}


def test_no_import_circles_in_the_checker():
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, f"import circle: {' -> '.join([*path, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert "equivalence" not in graph["timeout"]  # the circle this module layout removed


def test_one_number_reader():
    from prm_selfreward.data import seed, seed_instruct
    from prm_selfreward.grading import numbers

    assert not hasattr(seed_instruct, "_parse_number")
    assert seed.parse_number("1,250") == numbers.exact_value("1,250") == Fraction(1250)
    assert seed.parse_number("\\frac{1}{2}") is None  # plain text only
    assert numbers.parse_number("\\frac{1}{2}") == (Fraction(1, 2), False)


def test_data_loaders_use_the_checkers_gold_rules():
    from prm_selfreward.data import benchmarks as data_benchmarks
    from prm_selfreward.grading import benchmarks as grading_benchmarks

    for name in ("split_multiple_answers", "strip_math_delimiters", "gsm8k_final_answer", "MalformedRecord"):
        assert getattr(data_benchmarks, name) is getattr(grading_benchmarks, name)
    row = {"final_answer": ["$69$,$84$"], "is_multiple_answer": True, "question": "q", "id": 7}
    assert grading_benchmarks.gold_answers("olympiadbench", row) == ["69", "84"]
    assert data_benchmarks.SPECS["olympiadbench"].parse(row, 0, "test").answers == ["69", "84"]
    assert grading.gold_from_record("olympiadbench", row) == (["69", "84"], None)
    assert grading.gold_from_record("amc23", {"answer": 27.0}) == ("27", None)
