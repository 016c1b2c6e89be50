"""Shared fixtures: the tiny in-process model, the benchmark data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight 2-layer Gemma 3 model with an in-process tokenizer, saved to a temp dir."""
    from prm_selfreward.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark data directory: $PRM_SR_DATA_DIR, else ../shared/data beside the repo."""
    path = Path(os.environ.get("PRM_SR_DATA_DIR", SHARED_DATA))
    if not (path / "gsm8k").is_dir():
        pytest.fail(f"benchmark data not found at {path}; set PRM_SR_DATA_DIR")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: the tiny model's matrices are too small for threads to pay off,
    and on a loaded machine waiting threads make each op ~10x slower. Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    """The tiny model and tokenizer, loaded once per module; each test wraps them in its own HFGenerator."""
    from prm_selfreward.models import load_model_and_tokenizer

    return load_model_and_tokenizer(tiny_model_dir)
