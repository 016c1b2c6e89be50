"""Config machinery: one dataclass per concern, loaded from YAML, unknown keys rejected by name.

Each stage keeps its config dataclass next to its code (``SearchConfig`` in ``search.py`` ...), every
field with a ``help`` in its metadata; the run config composes them. ``from_dict`` walks nested
dataclasses so a typo anywhere fails with its full dotted key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A user error in a config: unknown key, wrong type, unreadable file. Shown without a traceback."""


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    **kwargs: Any,
) -> Any:
    """A dataclass field with help text (TRL style). Mutable defaults go through ``default_factory``.

    ``choices``, ``minimum`` (inclusive, or exclusive with ``exclusive_minimum``) and ``maximum`` are
    checked by :func:`from_dict` for every value a config file or ``--set`` gives, with the field's dotted
    name in the message, so a typo fails when the config loads, before any model does. For a list the
    check applies to each item; ``None`` (where the type allows it) is always accepted.
    """
    metadata: dict[str, Any] = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if minimum is not None:
        metadata["minimum"] = minimum
        metadata["exclusive_minimum"] = exclusive_minimum
    if maximum is not None:
        metadata["maximum"] = maximum
    if isinstance(default, list | dict | set):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def check_value(value: Any, metadata: Any, key: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` when ``value`` breaks the field's choices or range."""
    if value is None:
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_value(item, metadata, f"{key}[{i}]")
        return
    if isinstance(value, dict):
        for name, item in value.items():
            check_value(item, metadata, f"{key}.{name}")
        return
    choices = metadata.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    low = metadata.get("minimum")
    if low is not None:
        if metadata.get("exclusive_minimum") and not value > low:
            raise ConfigError(f"{key}: must be greater than {low}, got {value!r}")
        if not value >= low:
            raise ConfigError(f"{key}: must be at least {low}, got {value!r}")
    high = metadata.get("maximum")
    if high is not None and not value <= high:
        raise ConfigError(f"{key}: must be at most {high}, got {value!r}")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, prefix=key + ".")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} does not fit {tp}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if tp is Any or tp is None:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, str):
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp in (int, float) and isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 5e-7 as a string
        except ValueError:
            pass
    raise ConfigError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def from_dict(cls: type[T], data: dict[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys raise ``ConfigError`` naming the key."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"unknown config key(s) {', '.join(prefix + k for k in unknown)} (known: {known})")
    kwargs = {name: _coerce(value, hints[name], prefix + name) for name, value in data.items()}
    for name, value in kwargs.items():
        check_value(value, fields[name].metadata, prefix + name)
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a dataclass's own cross-field check (__post_init__)
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {exc}") from exc


def field_of(cls: type, key: str) -> tuple[dataclasses.Field, Any, Any]:
    """(field, type, default) of dotted ``key`` (``"search.width"``) in config dataclass ``cls``."""
    parts = key.split(".")
    node: Any = cls
    for i, part in enumerate(parts):
        hints = typing.get_type_hints(node)
        fields = {f.name: f for f in dataclasses.fields(node)}
        if part not in fields:
            raise KeyError(f"{key}: {'.'.join(parts[: i + 1])} is not a config field")
        f, tp = fields[part], hints[part]
        if i == len(parts) - 1:
            default = getattr(node(), part)
            return f, tp, default
        if not _is_dataclass_type(tp):
            raise KeyError(f"{key}: {'.'.join(parts[: i + 1])} is not a section")
        node = tp
    raise KeyError(key)


def set_key(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``data`` with dotted ``key`` set to ``value`` (nested mappings created as needed)."""
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return data


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["search.width=4", "train.dpo.lr=1e-6"]`` -> nested dict; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE (e.g. search.width=4)")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, help) for every field of config dataclass ``cls``, nested ones expanded."""
    rows: list[tuple[str, str, str]] = []
    hints = typing.get_type_hints(cls)
    instance = cls()
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key = prefix + f.name
        if _is_dataclass_type(hints[f.name]):
            rows.append((key, "", f.metadata.get("help", "")))
            rows.extend(describe(hints[f.name], key + "."))
            continue
        rows.append((key, repr(getattr(instance, f.name)), f.metadata.get("help", "")))
    return rows
