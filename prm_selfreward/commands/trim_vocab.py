"""``prm-sr trim-vocab MODEL --out DIR [--corpus FILES]``: a vocabulary-trimmed copy of a model.

Keeps the tokens the corpus uses, their BPE merge intermediates, the byte tokens and every special
token (see :mod:`prm_selfreward.models.trim`); reports how many corpus texts do not tokenize exactly
as with the full tokenizer (target 0).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UserError


def trim_vocab_command(
    model: str = typer.Argument(..., help="Model to trim: a local directory, a hub id, or 'embedded'."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the trimmed model directory (must not exist)."),
    corpus: list[Path] | None = typer.Option(
        None, "--corpus", help="Corpus files (.jsonl/.json: every string value; others: the whole file). "
        "Default: every *.jsonl in the data directory plus the package's prompts. Repeatable.",
    ),
    data_dir: str | None = typer.Option(
        None, "--data-dir", help="Benchmark directory for the default corpus (else $PRM_SR_DATA_DIR)."
    ),
    keep_ascii: bool = typer.Option(
        False, "--keep-ascii/--corpus-only", help="Also keep every plain-ASCII token (larger, slower; see docs/models.md)."
    ),
) -> None:
    """Write a copy of MODEL whose tokenizer and embedding/output rows keep only what the corpus needs."""
    from rich.console import Console

    from ..data.benchmarks import resolve_data_dir
    from ..models.loading import resolve_model_path
    from ..models.trim import default_corpus, package_texts, texts_from_file, trim_model

    console = Console()
    if corpus:
        texts = [t for f in corpus for t in texts_from_file(f)] + package_texts()
    else:
        root = resolve_data_dir(data_dir)
        if root is None:
            raise UserError("the default corpus needs the benchmark directory: pass --data-dir, set "
                            "$PRM_SR_DATA_DIR, or pass --corpus FILES")
        texts = default_corpus(root)
    source = resolve_model_path(model)
    report = trim_model(source, out, texts, keep_ascii=keep_ascii)
    console.print(
        f"kept {report.kept:,} of {report.full_vocab:,} tokens ({report.corpus_distinct:,} from the corpus, "
        f"{report.intermediates:,} more on their merge paths, {report.special:,} special, {report.byte_tokens} byte "
        f"tokens) in {report.seconds:.0f} s"
    )
    console.print(
        f"corpus: {report.corpus_texts:,} texts, {report.corpus_tokens:,} tokens; not exact: {report.not_exact}; "
        f"not lossless: {report.not_lossless}"
    )
    console.print(f"written: {out}")
    if report.not_exact or report.not_lossless:
        raise UserError(f"{report.not_exact} corpus texts tokenize differently, {report.not_lossless} not losslessly")


def register(app: typer.Typer) -> None:
    app.command("trim-vocab")(trim_vocab_command)
