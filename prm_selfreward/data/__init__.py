"""Benchmark loaders (hub or local directory) and the seed IFT/EFT data builders (docs/data.md)."""

from .benchmarks import (
    BENCHMARKS,
    DATA_DIR_ENV,
    TRAIN_SOURCES,
    check_data_dir,
    load_benchmark,
    normalize_question,
    resolve_data_dir,
    splits,
    training_problems,
)
from .seed import CORRUPTIONS, SeedConfig, SeedSummary, build_seed_data, eft_to_sft

__all__ = [
    "BENCHMARKS",
    "CORRUPTIONS",
    "DATA_DIR_ENV",
    "TRAIN_SOURCES",
    "SeedConfig",
    "SeedSummary",
    "build_seed_data",
    "check_data_dir",
    "eft_to_sft",
    "load_benchmark",
    "normalize_question",
    "resolve_data_dir",
    "splits",
    "training_problems",
]
