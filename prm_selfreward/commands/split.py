"""``prm-sr split [FILE|-]``: split solutions into steps, one JSON object ``{"steps": [...]}`` per solution.

Input is plain text (the whole input is one solution) or JSON Lines (one solution per line, taken
from ``--field``, default ``solution``; each output row carries its ``input_line``). The input is read
as bytes: a UTF-8 BOM is ignored, lines are split on ``\\n`` only (a raw U+2028 inside a JSON string
is not a line break) and each line is decoded on its own. JSON Lines is recognised when the first
non-blank line starts with ``{`` or at least half of the non-blank lines parse as JSON objects, so one
bad first line does not turn a whole file into one plain-text solution. Bad lines (invalid UTF-8,
invalid JSON, no string ``--field``) are reported on stderr with their line numbers and skipped; the
report is printed whatever happens.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import UserError
from ..io import json_dumps, parse_jsonl_line

BOM = b"\xef\xbb\xbf"


def _read_input(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    path = Path(file)
    if not path.is_file():
        raise UserError(f"input file {file!r} does not exist")
    return path.read_bytes()


def _lines(data: bytes) -> list[bytes]:
    return data.removeprefix(BOM).split(b"\n")


def _looks_like_jsonl(data: bytes) -> bool:
    lines = [line.strip() for line in _lines(data) if line.strip()]
    if not lines:
        return False
    if lines[0].startswith(b"{"):
        return True
    parsed = sum(parse_jsonl_line(line)[0] is not None for line in lines)
    return parsed > 0 and 2 * parsed >= len(lines)


def iter_solutions(data: bytes | str, field: str, errors: list[str]) -> list[tuple[int | None, str]]:
    """``(input_line, solution)`` pairs in ``data``: each JSON Lines record's ``field``, or
    ``(None, data)`` when the input is plain text. Problems with individual lines are appended to
    ``errors`` (1-based line numbers); plain text that is not UTF-8 is decoded with replacement
    characters and reported."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if not _looks_like_jsonl(data):
        text = data.removeprefix(BOM)
        try:
            return [(None, text.decode("utf-8"))]
        except UnicodeDecodeError as exc:
            errors.append(f"invalid UTF-8 at byte {exc.start + 1} (replaced with U+FFFD)")
            return [(None, text.decode("utf-8", "replace"))]
    out = []
    for number, raw in enumerate(_lines(data), start=1):
        if not raw.strip():
            continue
        obj, problem = parse_jsonl_line(raw)
        if problem is None:
            value = obj.get(field)
            if isinstance(value, str):
                out.append((number, value))
                continue
            problem = f"no string field {field!r}"
        errors.append(f"line {number}: {problem}")
    return out


def split_command(
    file: str = typer.Argument("-", help="Input file (plain text or JSON Lines); '-' reads stdin."),
    format: str = typer.Option("auto", "--format", "-f", help="auto|step|paragraph|line|delimiter."),
    delimiter: str | None = typer.Option(None, "--delimiter", "-d", help="Step delimiter (e.g. 'ки')."),
    field: str = typer.Option("solution", help="JSON Lines field holding the solution."),
    strip_calculator: bool = typer.Option(
        False, "--strip-calculator-notes", help="Remove GSM8K <<a*b=c>> notes before splitting."
    ),
) -> None:
    """Split solutions into steps; prints one {"steps": [...]} JSON object per solution."""
    from ..steps import FORMATS, split_steps, strip_calculator_notes

    if format not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    if format == "delimiter" and not delimiter:
        raise UserError("--format delimiter needs --delimiter")
    errors: list[str] = []
    out = sys.stdout
    try:
        for number, solution in iter_solutions(_read_input(file), field, errors):
            if strip_calculator:
                solution = strip_calculator_notes(solution)
            row: dict[str, object] = {"steps": split_steps(solution, format, delimiter)}
            if number is not None:
                row["input_line"] = number
            out.write(json_dumps(row) + "\n")
        out.flush()
    finally:
        if errors:  # reported whatever happened after reading
            shown = "; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else "")
            print(f"skipped {len(errors)} malformed line(s): {shown}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("split")(split_command)
