"""A JSON Lines output that a stage appends to record by record and resumes from, keyed by input item.

The judge (``prm-sr judge`` and the ``judge_eval/M<t>`` stages) and the pair audit write one record
per input item as they go, so a killed run keeps what it did. On a re-run, :class:`ResumableOutput`
reads the records back and hands the stage the ones it may reuse, under the rules eval and search
follow (``docs/architecture.md``, "Resume rules"):

- **made by the same model and settings**: every record carries ``made_by`` and its ``fingerprint``
  (:mod:`prm_selfreward.fingerprint`); a record made by anything else stops the stage with a
  :class:`~prm_selfreward.fingerprint.StaleOutputError` naming the difference;
- **of the same input**: each record names its item in a key field (``row``, ``input_line``) and keeps
  the item's identifying fields (``same``: the question and steps of a comparison, the prompt and steps
  of a pair); a record whose item now reads differently, or names no item of this input, is an error
  too, so an edited input or a smaller limit is never mixed with old records;
- **torn tails**: a complete last line whose newline a kill cut off is kept, a partial one cut
  (:func:`~prm_selfreward.io.repair_torn_tail`); another malformed line is skipped and its item redone.
  ``resumed`` counts them: ``records`` reused, ``torn_tail_kept``, ``torn_tail_cut``,
  ``malformed_lines``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .fingerprint import StaleOutputError, check_made_by, stamp
from .io import JsonlAppender, JsonlErrors, read_jsonl


class ResumableOutput:
    """``path`` as a resumable output of the items ``items`` (key -> item), records keyed by ``key``.

    Reading happens at construction (records of another model or input raise before any work);
    ``done`` then maps each reusable record's key to it. Use as a context manager and :meth:`append`
    each new record (stamped with ``made_by`` here); ``resumed`` is set on entering.
    """

    def __init__(
        self,
        path: str | Path,
        made_by: Mapping[str, Any],
        key: str,
        items: Mapping[Hashable, Mapping[str, Any]],
        same: Sequence[str],
    ):
        self.path = Path(path)
        self.made_by = dict(made_by)
        self.key = key
        self.done: dict[Hashable, dict[str, Any]] = {}
        self.resumed: dict[str, int] = {}
        self._errors = JsonlErrors()
        self._out: JsonlAppender | None = None
        if not self.path.exists():
            return
        rows = read_jsonl(self.path, self._errors)
        check_made_by(self.path, rows, made_by)
        for row in rows:
            k = row.get(key)
            item = items.get(k) if isinstance(k, Hashable) else None
            if item is None:
                raise StaleOutputError(
                    f"{self.path} holds a record for {key} {k!r}, which is not among the {len(items)} "
                    "items of this input (another input file, or a smaller limit?); write to a fresh output "
                    "or delete the file to start over"
                )
            changed = [f for f in same if row.get(f) != item.get(f)]
            if changed:
                raise StaleOutputError(
                    f"{self.path}: the record for {key} {k!r} was made for another input item ({', '.join(changed)} "
                    "differ: the input file changed?); write to a fresh output or delete the file to start over"
                )
            self.done[k] = row

    def __enter__(self) -> ResumableOutput:
        self._out = JsonlAppender(self.path)
        self.resumed = {"records": len(self.done), **self._out.repair.to_dict(),
                        "malformed_lines": len(self._errors) - self._out.repair.cut}
        return self

    def __exit__(self, *exc: object) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Stamp ``record`` with ``made_by`` and its fingerprint, append it (flushed and fsynced) and
        count it done; returns it."""
        assert self._out is not None, "append inside the with block"
        stamp(record, self.made_by)
        self._out.append(record)
        self.done[record[self.key]] = record
        return record


__all__ = ["ResumableOutput"]
