"""Benchmark loaders: one :class:`~prm_selfreward.records.Problem` type for seven math benchmarks.

Each benchmark loads from a local directory laid out like ``../shared/data`` (when a data directory is
given, or ``$PRM_SR_DATA_DIR`` is set) or, by default, from its Hugging Face hub dataset through
``datasets.load_dataset``. Both paths go through the same row parser, so a record looks the same
whichever way it came.

Ids are stable and say where a problem came from: ``gsm8k/test/17`` (0-based line), the MATH
``unique_id`` (``test/algebra/1.json``, shared by ``math`` and ``math500``), ``olympiadbench/1606``,
``aime24/60``, ``amc23/0``, ``gaokao2023en/12`` (0-based line).

Training pools are never evaluation problems: ``gsm8k`` split ``train`` (7473) and ``math`` split
``train``, which is the 4500 MATH test problems that are *not* in MATH-500 (the PRM800K convention:
MATH-500 is PRM800K's held-out test split, the other 4500 test problems were used for training).
:func:`training_problems` also drops any training problem whose normalised question equals an
evaluation problem's.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..grading.benchmarks import (  # noqa: F401 - re-exported: the loaders' public answer helpers
    MalformedRecord,
    gold_answers,
    gsm8k_final_answer,
    last_boxed_content,
    split_multiple_answers,
    strip_math_delimiters,
)
from ..io import JsonlErrors, iter_jsonl
from ..records import Problem

log = logging.getLogger(__name__)

BENCHMARKS: tuple[str, ...] = ("gsm8k", "math", "math500", "olympiadbench", "gaokao2023en", "aime24", "amc23")
DATA_DIR_ENV = "PRM_SR_DATA_DIR"

# The MATH subject directories of the original tarball; also the EleutherAI/hendrycks_math config names.
MATH_SUBJECTS: tuple[str, ...] = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)


# --------------------------------------------------------------------------------------------------
# Data-directory setting


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path | None:
    """The local benchmark directory to use: ``data_dir`` if given, else ``$PRM_SR_DATA_DIR``, else None
    (load from the Hugging Face hub). An explicit directory that does not exist is a UserError."""
    if data_dir is None or str(data_dir) == "":
        env = os.environ.get(DATA_DIR_ENV, "").strip()
        if not env:
            return None
        path, origin = Path(env).expanduser(), f"${DATA_DIR_ENV}"
    else:
        path, origin = Path(data_dir).expanduser(), "--data-dir"
    if not path.is_dir():
        raise UserError(f"benchmark data directory not found: {path} (from {origin})")
    return path


# --------------------------------------------------------------------------------------------------
# Answer helpers: gold answers are read by the checker's own module (one owner); re-exported here.

def normalize_question(text: str) -> str:
    """Key for "same problem": Unicode NFKC, case-folded, whitespace collapsed, ``$`` dropped."""
    text = unicodedata.normalize("NFKC", text).replace("$", " ").casefold()
    return " ".join(text.split())


def _question(row: dict[str, Any]) -> str:
    for key in ("question", "problem"):
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            return value
    raise MalformedRecord("no 'question' or 'problem' text")


def _str_field(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        raise MalformedRecord(f"field '{key}' missing or not a string")
    return value


def _level(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    match = re.search(r"\d+", str(value or ""))
    return int(match.group()) if match else None


# --------------------------------------------------------------------------------------------------
# Row parsers: one per benchmark, shared by the local and the hub path.
# Signature: (row, index, split) -> Problem; index is the 0-based position in the file / hub split.


def _parse_gsm8k(row: dict[str, Any], index: int, split: str) -> Problem:
    solution = _str_field(row, "answer")
    return Problem(
        id=f"gsm8k/{split}/{index}",
        question=_str_field(row, "question"),
        answers=gold_answers("gsm8k", row),
        benchmark="gsm8k",
        solution=solution,
        metadata={},
    )


def _math_problem(row: dict[str, Any], index: int, split: str, benchmark: str) -> Problem:
    solution = _str_field(row, "solution")
    answers = gold_answers(benchmark, row)
    subject = row.get("subject", row.get("type"))
    unique_id = row.get("unique_id") or row.get("_hub_id") or f"{split}/unknown/{index}"
    return Problem(
        id=str(unique_id),
        question=_question(row),
        answers=answers,
        benchmark=benchmark,
        solution=solution,
        metadata={"level": _level(row.get("level")), "subject": subject},
    )


def _parse_math(row: dict[str, Any], index: int, split: str) -> Problem:
    return _math_problem(row, index, split, "math")


def _parse_math500(row: dict[str, Any], index: int, split: str) -> Problem:
    return _math_problem(row, index, split, "math500")


def _parse_olympiadbench(row: dict[str, Any], index: int, split: str) -> Problem:
    answers = gold_answers("olympiadbench", row)
    final = row["final_answer"]
    multiple = bool(row.get("is_multiple_answer"))
    solutions = row.get("solution") or []
    if isinstance(solutions, str):
        solutions = [solutions]
    metadata: dict[str, Any] = {
        "subject": row.get("subfield"),
        "answer_type": row.get("answer_type"),
        "is_multiple_answer": multiple,
        "unit": row.get("unit"),
        "error": row.get("error"),
        "raw_answer": final,
    }
    if len(solutions) > 1:
        metadata["other_solutions"] = list(solutions[1:])
    return Problem(
        id=f"olympiadbench/{row.get('id', index)}",
        question=_question(row),
        answers=answers,
        benchmark="olympiadbench",
        solution=solutions[0] if solutions else None,
        metadata=metadata,
    )


def _parse_gaokao(row: dict[str, Any], index: int, split: str) -> Problem:
    answers = gold_answers("gaokao2023en", row)
    return Problem(
        id=f"gaokao2023en/{index}",
        question=_question(row),
        # Two upstream records have an empty answer: kept (the count stays 385) with no gold, so they
        # can only be scored wrong; docs/data.md lists them.
        answers=answers,
        benchmark="gaokao2023en",
        solution=None,
        metadata={"source": row.get("source"), "raw_answer": row.get("answer")},
    )


def _competition_parser(name: str) -> Callable[[dict[str, Any], int, str], Problem]:
    def parse(row: dict[str, Any], index: int, split: str) -> Problem:
        answers = gold_answers(name, row)
        solution = row.get("solution")
        return Problem(
            id=f"{name}/{row.get('id', index)}",
            question=_question(row),
            answers=answers,
            benchmark=name,
            solution=solution if isinstance(solution, str) else None,
            metadata={"url": row.get("url")},
        )

    return parse


# --------------------------------------------------------------------------------------------------
# Where each benchmark lives


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face hub dataset: ``load_dataset(path, name, split=split)`` for each name in ``names``."""

    path: str
    names: tuple[str | None, ...]
    split: str


@dataclass(frozen=True)
class BenchmarkSpec:
    local: dict[str, str]  # split -> file relative to the data dir
    hub: dict[str, HubSource]  # split -> hub source
    parse: Callable[[dict[str, Any], int, str], Problem]


SPECS: dict[str, BenchmarkSpec] = {
    "gsm8k": BenchmarkSpec(
        local={"test": "gsm8k/test.jsonl", "train": "gsm8k/train.jsonl"},
        hub={
            "test": HubSource("openai/gsm8k", ("main",), "test"),
            "train": HubSource("openai/gsm8k", ("main",), "train"),
        },
        parse=_parse_gsm8k,
    ),
    "math": BenchmarkSpec(
        local={"test": "math/test.jsonl"},
        hub={"test": HubSource("EleutherAI/hendrycks_math", MATH_SUBJECTS, "test")},
        parse=_parse_math,
    ),
    "math500": BenchmarkSpec(
        local={"test": "math/math500.jsonl"},
        hub={"test": HubSource("HuggingFaceH4/MATH-500", (None,), "test")},
        parse=_parse_math500,
    ),
    "olympiadbench": BenchmarkSpec(
        local={"test": "olympiadbench/test.jsonl"},
        hub={"test": HubSource("Hothan/OlympiadBench", ("OE_TO_maths_en_COMP",), "train")},
        parse=_parse_olympiadbench,
    ),
    "gaokao2023en": BenchmarkSpec(
        local={"test": "gaokao2023en/test.jsonl"},
        hub={"test": HubSource("MARIO-Math-Reasoning/Gaokao2023-Math-En", (None,), "train")},
        parse=_parse_gaokao,
    ),
    "aime24": BenchmarkSpec(
        local={"test": "aime24/test.jsonl"},
        hub={"test": HubSource("HuggingFaceH4/aime_2024", (None,), "train")},
        parse=_competition_parser("aime24"),
    ),
    "amc23": BenchmarkSpec(
        local={"test": "amc23/test.jsonl"},
        hub={"test": HubSource("math-ai/amc23", (None,), "test")},
        parse=_competition_parser("amc23"),
    ),
}

# Splits that exist for training only and are derived from other splits.
TRAIN_SPLITS: dict[str, str] = {
    "gsm8k": "train (the GSM8K train split, 7473 problems)",
    "math": "train (the 4500 MATH test problems not in MATH-500, the PRM800K convention)",
}


TRAIN_SOURCES: tuple[str, ...] = tuple(TRAIN_SPLITS)


def check_data_dir(data_dir: str | os.PathLike[str], names: Iterable[str]) -> Path:
    """Check before any work that the local data directory holds every file benchmarks ``names`` need
    (their test split; ``train`` as well for a training source). Raises UserError naming the first file
    missing, or the directory when it is missing or holds no benchmark at all."""
    root = resolve_data_dir(data_dir)
    if root is None:
        raise UserError("no benchmark data directory given")
    if not any((root / spec.local[split]).is_file() for spec in SPECS.values() for split in spec.local):
        raise UserError(f"benchmark data directory {root} holds none of the benchmark files (see docs/data.md)")
    for name in dict.fromkeys(names):
        spec = _spec(name)
        needed = ["test"] + (["train"] if name in TRAIN_SPLITS and "train" in spec.local else [])
        if name == "math":
            needed_files = [spec.local["test"], SPECS["math500"].local["test"]]
        else:
            needed_files = [spec.local[s] for s in needed]
        for rel in needed_files:
            if not (root / rel).is_file():
                raise UserError(f"benchmark {name!r} not found in data directory {root}: missing file {root / rel}")
    return root


def splits(name: str) -> tuple[str, ...]:
    """The splits ``load_benchmark(name, split=...)`` accepts."""
    spec = _spec(name)
    names = set(spec.local) | set(spec.hub) | ({"train"} if name in TRAIN_SPLITS else set())
    return tuple(sorted(names, key=lambda s: (s != "test", s)))


def _spec(name: str) -> BenchmarkSpec:
    if name not in SPECS:
        raise UserError(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})")
    return SPECS[name]


# --------------------------------------------------------------------------------------------------
# Loading


def load_benchmark(
    name: str,
    split: str = "test",
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    errors: JsonlErrors | None = None,
) -> list[Problem]:
    """Load benchmark ``name`` as Problems, in file (or hub) order; the first ``limit`` if given.

    Source: the local directory from :func:`resolve_data_dir` (``data_dir``, else ``$PRM_SR_DATA_DIR``),
    else the Hugging Face hub. ``split="train"`` exists for ``gsm8k`` and ``math`` only and never holds an
    evaluation problem (see the module docstring).

    Malformed lines (bad JSON, missing fields, a GSM8K answer without ``####`` ...) are skipped, logged
    as a warning with their line numbers and, if ``errors`` is given, recorded there; never fatal.
    Raises UserError for an unknown benchmark or split, a data directory without the benchmark's file
    (naming the file), or a hub load that fails (e.g. offline; the message names ``--data-dir`` /
    ``$PRM_SR_DATA_DIR``).
    """
    spec = _spec(name)
    if split not in splits(name):
        raise UserError(f"benchmark {name!r} has no split {split!r} (available: {', '.join(splits(name))})")
    if limit is not None and limit < 0:
        raise UserError(f"limit must be >= 0, got {limit}")
    errors = errors if errors is not None else JsonlErrors()
    root = resolve_data_dir(data_dir)
    if name == "math" and split == "train":
        problems = _math_train_pool(root, errors)
    elif root is not None:
        problems = _load_local(name, spec, split, root, errors)
    else:
        problems = _load_hub(name, spec, split, errors)
    return problems[:limit] if limit is not None else problems


def _load_local(name: str, spec: BenchmarkSpec, split: str, root: Path, errors: JsonlErrors) -> list[Problem]:
    path = root / spec.local[split]
    if not path.is_file():
        raise UserError(
            f"benchmark {name!r} (split {split!r}) not found in data directory {root}: missing file {path}"
        )
    before = len(errors)
    # Index by good records, not by line: a malformed line must not shift the ids of the lines after it,
    # so number rows by their line among non-blank lines instead.
    rows = list(iter_jsonl(path, errors))
    problems = []
    for line_number, row in rows:
        index = line_number - 1
        try:
            problems.append(spec.parse(row, index, split))
        except MalformedRecord as exc:
            errors.errors.append((line_number, str(exc)))
    if len(errors) > before:
        new = JsonlErrors(errors.errors[before:])
        log.warning("%s; skipped", new.summary(path))
    return problems


def _load_hub(name: str, spec: BenchmarkSpec, split: str, errors: JsonlErrors) -> list[Problem]:
    source = spec.hub[split]
    rows: list[tuple[int, dict[str, Any]]] = []
    for config in source.names:
        dataset = _hub_dataset(name, source, config)
        for row_index, row in enumerate(dataset):
            row = dict(row)
            if name == "math" and config is not None:
                # hendrycks_math rows carry no file id: name them by subject and row position.
                row.setdefault("_hub_id", f"{split}/{config}/hub-{row_index}")
            rows.append((len(rows) + 1, row))
    before = len(errors)
    problems = []
    for index, (row_number, row) in enumerate(rows):
        try:
            problems.append(spec.parse(row, index, split))
        except MalformedRecord as exc:
            errors.errors.append((row_number, str(exc)))
    if len(errors) > before:
        log.warning("%s; skipped", JsonlErrors(errors.errors[before:]).summary(f"hub:{source.path}"))
    if name == "math":
        problems = _adopt_math500_ids(problems, errors)
    return problems


def _hub_dataset(name: str, source: HubSource, config: str | None) -> Any:
    label = source.path + (f" ({config})" if config else "")
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a hard dependency
        raise UserError(f"loading {name!r} from the hub needs the 'datasets' package: {exc}") from exc
    try:
        return datasets.load_dataset(source.path, config, split=source.split)
    except Exception as exc:  # noqa: BLE001 - any failure here (offline, gated, renamed) is the user's to fix
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        raise UserError(
            f"could not load benchmark {name!r} from the Hugging Face hub ({label}): {reason}. "
            f"Without network access, point --data-dir (or ${DATA_DIR_ENV}) at a local copy laid out "
            "like ../shared/data."
        ) from exc


def _adopt_math500_ids(problems: list[Problem], errors: JsonlErrors) -> list[Problem]:
    # Hub MATH rows have no unique_id; those that are MATH-500 problems take the MATH-500 id so that the
    # train pool (and anything keyed by id) agrees with the local files.
    try:
        math500 = {
            normalize_question(p.question): p.id
            for p in _load_hub("math500", SPECS["math500"], "test", errors)
        }
    except UserError:
        return problems
    for problem in problems:
        problem.id = math500.get(normalize_question(problem.question), problem.id)
    return problems


def _math_train_pool(root: Path | None, errors: JsonlErrors) -> list[Problem]:
    """MATH test minus MATH-500, by unique_id and by question text (PRM800K's training problems)."""
    if root is not None:
        full = _load_local("math", SPECS["math"], "test", root, errors)
        held = _load_local("math500", SPECS["math500"], "test", root, errors)
    else:
        full = _load_hub("math", SPECS["math"], "test", errors)
        held = _load_hub("math500", SPECS["math500"], "test", errors)
    held_ids = {p.id for p in held}
    held_text = {normalize_question(p.question) for p in held}
    pool = [p for p in full if p.id not in held_ids and normalize_question(p.question) not in held_text]
    for problem in pool:
        problem.metadata["pool"] = "math_test_minus_math500"
    return pool


def training_problems(
    sources: Iterable[str],
    data_dir: str | os.PathLike[str] | None = None,
    exclude: Iterable[Problem] | None = None,
) -> list[Problem]:
    """The training split of each source (``gsm8k``, ``math``), concatenated in the given order.

    Drops any problem whose :func:`normalize_question` equals that of an ``exclude`` problem (pass the
    evaluation problems) and repeats within the pool (first kept). Raises UserError for a source with
    no training split.
    """
    excluded = {normalize_question(p.question) for p in exclude or ()}
    seen: set[str] = set()
    out: list[Problem] = []
    dropped_eval = dropped_dup = 0
    for source in sources:
        if source not in TRAIN_SPLITS:
            raise UserError(
                f"{source!r} has no training split (training sources: {', '.join(sorted(TRAIN_SPLITS))})"
            )
        for problem in load_benchmark(source, split="train", data_dir=data_dir):
            key = normalize_question(problem.question)
            if key in excluded:
                dropped_eval += 1
            elif key in seen:
                dropped_dup += 1
            else:
                seen.add(key)
                out.append(problem)
    if dropped_eval or dropped_dup:
        log.info(
            "training pool: dropped %d problem(s) equal to an evaluation problem, %d repeat(s)",
            dropped_eval,
            dropped_dup,
        )
    return out
