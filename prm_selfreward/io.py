"""File I/O at the edges of the pipeline: safe atomic writes, torn-tail repair, forgiving JSON Lines
reading and a JSON encoder that only ever writes standard JSON.

Contracts (issue 17):

- **Writes never replace what a path is** (:func:`atomic_write_bytes`, :func:`atomic_write_text`,
  :func:`atomic_copy`, and every writer built on them). A symlink is written through to its target (the link
  stays); a directory, FIFO, device or socket is refused with a :class:`UserError` before anything is
  written (:func:`check_output_path`, which commands also call on their ``-o`` paths up front). An
  existing target keeps its permission bits (and, where the process may, its owner); a new file gets
  the usual ``0o666 & ~umask``, not ``mkstemp``'s owner-only ``0o600``.
- **A torn tail never costs a complete record.** A kill can land after a record's last byte but
  before its newline: such a last line parses, so it is kept and its newline restored; only a last
  line that does not parse is cut (:func:`repair_torn_tail`; both counted).
- **One bad line costs one line.** :func:`iter_jsonl` decodes each line as UTF-8 on its own and
  reports, with its line number, invalid UTF-8, invalid JSON, lone surrogate escapes, integers over
  Python's digit limit and nesting too deep to parse; the other lines are read.
- **What we write is JSON.** :func:`json_dumps` writes NaN as ``null`` and the infinities as the
  strings ``"Infinity"`` / ``"-Infinity"`` (bare ``NaN`` is not JSON), and escapes a lone surrogate
  instead of crashing the UTF-8 write.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import UserError

# ------------------------------------------------------------------------------------- output paths


def _kind_of(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_output_path(path: str | os.PathLike[str], kind: str = "file") -> Path:
    """Refuse an output path that is not what the caller will write, before any work is done.

    ``kind="file"``: the path (after following symlinks) must be a regular file or not exist yet;
    a directory, FIFO, device or socket raises :class:`UserError` naming what it is. ``kind="dir"``:
    the path must be a directory or not exist yet. Returns ``path`` unchanged (a symlink is written
    through, so the caller keeps the name it was given).
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', not {kind!r}")
    path = Path(path)
    try:
        mode = path.stat().st_mode  # follows symlinks: the target is what would be written
    except FileNotFoundError:
        return path  # a new file (or a dangling link, whose target will be created)
    except NotADirectoryError as exc:
        raise UserError(f"output {str(path)!r}: a parent is not a directory") from exc
    if kind == "dir":
        if not stat.S_ISDIR(mode):
            raise UserError(f"output {str(path)!r} is not a directory (an output directory was expected)")
        return path
    what = _kind_of(mode)
    if what is not None:
        raise UserError(f"output {str(path)!r} is {what}; give the path of a regular file")
    return path


def _write_target(path: Path) -> Path:
    """The file a write to ``path`` must replace: the end of a symlink chain, checked to be writable."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    check_output_path(target)
    return target


def _umask() -> int:
    # os.umask can only be read by setting it; the set-and-restore is immediate.
    old = os.umask(0o022)
    os.umask(old)
    return old


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _remove_stale_temps(target: Path) -> None:
    """Remove temp files a killed writer of ``target`` left behind (SIGKILL runs no cleanup).

    Temp names carry the writer's pid (``.NAME.<pid>.XXXX.tmp``); only those of processes that no
    longer exist are removed, so a concurrent writer's temp file is never pulled from under it.
    """
    prefix = f".{target.name}."
    for leftover in target.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = leftover.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _atomic_write(path: str | os.PathLike[str], fill: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` atomically: ``fill`` writes the content into a temp file beside the target,
    which is fsynced and renamed over it (the contract of :func:`atomic_write_text`)."""
    target = _write_target(Path(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        old = target.stat()
    except FileNotFoundError:
        old = None
    _remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            if old is not None:
                os.chmod(handle.fileno(), stat.S_IMODE(old.st_mode))
                try:
                    os.chown(handle.fileno(), old.st_uid, old.st_gid)
                except OSError:
                    pass  # only root may give a file away; an unprivileged rewrite owns its file
            else:
                os.chmod(handle.fileno(), 0o666 & ~_umask())
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a killed run) sees the old file or the new one,
    never a half-written one: write a temp file beside the target, fsync, then rename over it.

    A symlink is written through (its target is replaced, the link kept); a special file or directory
    raises :class:`UserError`; the target's permission bits are kept (a new file: ``0o666 & ~umask``).
    Temp files that killed writers of the same target left behind are removed first.
    """
    _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` as UTF-8. Text that is not valid UTF-8 (a lone
    surrogate) raises before the target is touched."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Copy the file ``src`` to ``dst`` through :func:`atomic_write_bytes`'s contract (streamed, not
    read into memory): a kill leaves the old ``dst`` or the full copy, a symlink at ``dst`` is written
    through. ``src`` must be a regular file (a symlink to one is followed); anything else raises
    :class:`UserError` before ``dst`` is touched, so a FIFO never blocks the copy."""
    src = Path(src)
    try:
        mode = src.stat().st_mode
    except FileNotFoundError as exc:
        raise UserError(f"cannot copy {str(src)!r}: it does not exist") from exc
    what = _kind_of(mode)
    if what is not None:
        raise UserError(f"cannot copy {str(src)!r}: it is {what}, not a regular file")
    with open(src, "rb") as source:
        _atomic_write(dst, lambda handle: shutil.copyfileobj(source, handle, 1 << 20))


# ---------------------------------------------------------------------------------------- JSON out

# JSON tokens in allow_nan output: strings (skipped whole, so "NaN" inside text is left alone) or a
# bare non-finite constant.
_NONFINITE = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN')
_NONFINITE_AS = {"NaN": "null", "Infinity": '"Infinity"', "-Infinity": '"-Infinity"'}


def _dumps(obj: Any, indent: int | None, ascii_only: bool) -> str:
    try:
        return json.dumps(obj, ensure_ascii=ascii_only, allow_nan=False, default=str, indent=indent)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
    text = json.dumps(obj, ensure_ascii=ascii_only, allow_nan=True, default=str, indent=indent)
    return _NONFINITE.sub(lambda m: _NONFINITE_AS.get(m.group(0), m.group(0)), text)


def json_dumps(obj: Any, indent: int | None = None) -> str:
    """``json.dumps`` that only writes standard JSON, readable back as UTF-8.

    Non-ASCII text is written as is (``ensure_ascii=False``); NaN becomes ``null`` and the infinities
    the strings ``"Infinity"`` / ``"-Infinity"``; objects JSON cannot hold are written as ``str()``.
    Text holding a lone surrogate (which UTF-8 cannot encode) is written with ``\\uXXXX`` escapes, so
    the line stays valid and round-trips.
    """
    text = _dumps(obj, indent, ascii_only=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # ensure_ascii escapes every non-ASCII character, lone surrogates included: still valid JSON.
        text = _dumps(obj, indent, ascii_only=True)
    return text


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (see :func:`json_dumps` for what is written)."""
    atomic_write_text(path, json_dumps(obj, indent=2) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    """Atomically write ``rows`` as JSON Lines; returns the number of rows."""
    lines = [json_dumps(row) for row in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


# ------------------------------------------------------------------------------------ torn tails


@dataclass
class TailRepair:
    """What :func:`repair_torn_tail` did to a file's last line: ``kept`` a complete record that only
    lacked its newline (1 or 0), or ``cut`` an unparsable partial line (1 or 0, ``cut_bytes`` long)."""

    kept: int = 0
    cut: int = 0
    cut_bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"torn_tail_kept": self.kept, "torn_tail_cut": self.cut}


def repair_torn_tail(path: str | os.PathLike[str]) -> TailRepair:
    """Make a JSON Lines file end on a clean line boundary, never losing a complete record.

    A last line without its newline that parses as a JSON object is complete (a kill landed between
    its last byte and the newline): the newline is appended. Anything else there is a partial write
    and is truncated away. Call it *before* reading the records a resume skips, so what is read is
    what stays on disk. Idempotent; a missing or empty file is left alone.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return TailRepair()
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        # Find the start of the last line without reading the whole file.
        pos, chunk, tail = size, 1 << 16, b""
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return TailRepair()
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            handle.seek(pos)
            tail = handle.read(step) + tail
            nl = tail.rfind(b"\n")
            if nl >= 0:
                tail = tail[nl + 1 :]
                pos += nl + 1
                break
    if parse_jsonl_line(tail)[0] is not None:
        with open(path, "ab") as handle:
            handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        return TailRepair(kept=1)
    with open(path, "r+b") as handle:
        handle.truncate(pos)
        handle.flush()
        os.fsync(handle.fileno())
    return TailRepair(cut=1, cut_bytes=size - pos)


class JsonlAppender:
    """Append records one by one (for resumable stages). Each line is flushed and fsynced as written.

    Opening repairs a torn tail first (:func:`repair_torn_tail`; what it did is in ``repair``), so
    appends start on a clean line. A special file or directory raises :class:`UserError`; a symlink
    is appended through.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        check_output_path(self.path)  # before open(): opening a FIFO for append would block
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repair = repair_torn_tail(self.path)
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def append(self, row: dict[str, Any]) -> None:
        self._handle.write(json_dumps(row) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -------------------------------------------------------------------------------------- JSON in


@dataclass
class JsonlErrors:
    """Malformed lines met while reading: ``(line_number, message)``, 1-based line numbers."""

    errors: list[tuple[int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.errors)

    def summary(self, path: str | os.PathLike[str] = "") -> str:
        head = f"{len(self.errors)} malformed line(s)" + (f" in {path}" if path else "")
        shown = "; ".join(f"line {n}: {msg}" for n, msg in self.errors[:5])
        more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        return f"{head}: {shown}{more}"


# A surrogate escape in the raw line: only then can a parsed string hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(obj: Any) -> bool:
    # Iterative: the object may be nested as deep as the parser allowed.
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_jsonl_line(raw: bytes) -> tuple[Any, str | None]:
    """``(value, None)`` for a line holding one JSON object, else ``(None, why)``."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 (byte {exc.start + 1}: {raw[exc.start:exc.start + 1]!r})"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg})"
    except RecursionError:
        return None, "invalid JSON (nested too deep to read)"
    except ValueError as exc:  # e.g. an integer over sys.get_int_max_str_digits() digits
        return None, f"invalid JSON ({exc})"
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}"
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(obj):
        return None, "a string holds a lone surrogate escape (e.g. \\ud800), which is not text"
    return obj, None


def iter_jsonl(
    path: str | os.PathLike[str],
    errors: JsonlErrors | None = None,
    required: Iterable[str] = (),
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each well-formed JSON object line (1-based numbers).

    Lines are split on ``\\n`` only (a raw U+2028 inside a string is JSON, not a line break) and each
    is decoded as UTF-8 on its own; a UTF-8 BOM on the first line is ignored. Blank lines are skipped.
    A line that is not valid UTF-8, not a JSON object (invalid, too deep, an over-long integer, a lone
    surrogate), or lacks a ``required`` key is recorded in ``errors`` (if given) and skipped, never
    fatal: one bad line must not cost the whole batch.
    """
    required = tuple(required)
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            obj, problem = parse_jsonl_line(raw)
            if problem is None:
                missing = [key for key in required if key not in obj]
                if missing:
                    problem = f"missing field(s) {', '.join(missing)}"
            if problem is not None:
                if errors is not None:
                    errors.errors.append((number, problem))
                continue
            yield number, obj


def read_jsonl(
    path: str | os.PathLike[str], errors: JsonlErrors | None = None, required: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The records of :func:`iter_jsonl`, without their line numbers."""
    return [obj for _, obj in iter_jsonl(path, errors, required)]

