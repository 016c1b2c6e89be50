"""``resolve_device``: the one place a device name is checked and ``auto`` resolved (generation and training)."""

from __future__ import annotations

import re

from .config import ConfigError

DEVICES = ("auto", "cpu", "cuda")
_CUDA_INDEX = re.compile(r"cuda:\d+")


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; ``cpu``, ``cuda`` and ``cuda:N`` pass
    through; anything else raises :class:`~prm_selfreward.config.ConfigError`."""
    if device not in DEVICES and not _CUDA_INDEX.fullmatch(device):
        raise ConfigError(f"device: expected one of {', '.join(DEVICES)} (or cuda:N), got {device!r}")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
