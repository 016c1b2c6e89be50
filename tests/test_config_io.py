"""Config loading (unknown keys rejected by name), atomic writes, JSON Lines reading, the run manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from prm_selfreward.config import ConfigError, from_dict, load_yaml, merge, option, parse_overrides
from prm_selfreward.io import JsonlAppender, JsonlErrors, atomic_write_text, read_jsonl, write_jsonl
from prm_selfreward.runs import Manifest


@dataclass
class Inner:
    width: int = option(6, help="w")
    temperature: float = option(0.5, help="T")
    stop: list[str] = option(["Step"], help="stops")


@dataclass
class Outer:
    name: str = option("x", help="name")
    limit: int | None = option(None, help="limit")
    inner: Inner = field(default_factory=Inner)


@pytest.mark.parametrize(
    "data,message",
    [
        ({"nmae": "y"}, "unknown config key(s) nmae"),
        ({"inner": {"widht": 3}}, "unknown config key(s) inner.widht"),
        ({"inner": {"width": "six"}}, "inner.width: expected int"),
        ({"inner": {"width": True}}, "inner.width: expected a number"),
        ({"inner": 3}, "inner: expected a mapping"),
        ({"inner": {"stop": "Step"}}, "inner.stop: expected a list"),
    ],
)
def test_from_dict_rejects_bad_input_by_name(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_dict(Outer, data)


def test_from_dict_builds_nested_and_coerces():
    cfg = from_dict(Outer, {"limit": None, "inner": {"width": 4, "temperature": "5e-1", "stop": ["a", "b"]}})
    assert cfg.inner.width == 4 and cfg.inner.temperature == 0.5 and cfg.inner.stop == ["a", "b"]
    assert cfg.limit is None and cfg.name == "x"
    # Defaults are not shared between instances.
    a, b = Inner(), Inner()
    a.stop.append("z")
    assert b.stop == ["Step"]


def test_overrides_and_merge():
    over = parse_overrides(["inner.width=3", "name=abc", "inner.temperature=0.7"])
    assert over == {"inner": {"width": 3, "temperature": 0.7}, "name": "abc"}
    merged = merge({"inner": {"width": 6, "stop": ["s"]}, "name": "x"}, over)
    assert merged == {"inner": {"width": 3, "stop": ["s"], "temperature": 0.7}, "name": "abc"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["inner.width"])


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(top)


def test_atomic_write_leaves_no_temp_and_replaces(tmp_path):
    path = tmp_path / "sub" / "f.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]


def test_read_jsonl_reports_malformed_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\nnot json\n[1, 2]\n\n{"b": 2}\n{"a": 3}\n')
    errors = JsonlErrors()
    rows = read_jsonl(path, errors, required=["a"])
    assert rows == [{"a": 1}, {"a": 3}]
    assert [n for n, _ in errors.errors] == [2, 3, 5]
    assert "missing field(s) a" in errors.errors[2][1]
    assert "3 malformed line(s)" in errors.summary(path)


def test_appender_cuts_a_torn_tail(tmp_path):
    path = tmp_path / "x.jsonl"
    write_jsonl(path, [{"i": 0}])
    with open(path, "a") as handle:
        handle.write('{"i": 1, "tor')
    with JsonlAppender(path) as out:
        out.append({"i": 2})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"i": 0}, {"i": 2}]


def test_manifest_skips_done_stages_and_reruns_interrupted(tmp_path):
    calls = []
    m = Manifest.load(tmp_path)
    assert m.run("a", lambda: calls.append("a") or {"n": 1}) == {"n": 1}
    # A stage that raised stays "running" (as after a kill) and runs again next time.
    with pytest.raises(RuntimeError):
        m.run("b", lambda: (_ for _ in ()).throw(RuntimeError("killed")))
    m2 = Manifest.load(tmp_path)
    assert m2.stages["b"]["status"] == "running"
    first_start = m2.stages["b"]["started"]
    assert m2.run("a", lambda: calls.append("a again")) == {"n": 1}
    assert m2.run("b", lambda: calls.append("b") or 2) == 2
    assert calls == ["a", "b"]
    done = Manifest.load(tmp_path)
    assert done.is_done("b")
    # The resumed stage says so: two attempts, the first one's start kept; a stage run once has neither.
    assert done.stages["b"]["attempts"] == 2 and done.stages["b"]["first_started"] == first_start
    assert "attempts" not in done.stages["a"] and "first_started" not in done.stages["a"]


def test_configs_doc_names_every_key():
    from pathlib import Path

    from prm_selfreward.config import describe
    from prm_selfreward.run_config import RunConfig

    doc = (Path(__file__).resolve().parents[1] / "docs" / "configs.md").read_text()
    missing = [key for key, _, _ in describe(RunConfig) if f"`{key}`" not in doc]
    assert not missing, f"docs/configs.md lacks {missing}: regenerate its table"


def test_public_api_resolves():
    import prm_selfreward

    missing = [name for name in prm_selfreward.__all__ if not hasattr(prm_selfreward, name)]
    assert not missing
    assert prm_selfreward.check("The answer is \\boxed{\\frac{1}{2}}", "0.5").correct
