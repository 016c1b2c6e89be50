"""``RunContext``: what the stages of one run share (layout, config, manifest, log, the loaded model)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..layout import RunLayout
from ..run_config import RunConfig
from ..runs import Manifest


def train_stage_name(t: int) -> str:
    """The manifest name of the stage that makes M(t)."""
    return "train/M1 (SFT)" if t == 1 else f"train/M{t} (DPO)"


class RunContext:
    """State shared by the stages of one run: its :class:`RunLayout`, config, manifest, log, and the
    generator of the model the current stages use (loaded once, kept while consecutive stages use it)."""

    def __init__(self, run_dir: str | Path, config: RunConfig, log: Callable[[str], None] = print):
        self.layout = RunLayout(Path(run_dir))
        self.dir = self.layout.root
        self.config = config
        self.manifest = Manifest.load(self.dir)
        self.log = log
        self._generator: Any = None
        self._generator_spec: str | None = None
        self._base_spec: str | None = None

    def iter_dir(self, t: int) -> Path:
        """``iter_<t>/``, created when missing."""
        path = self.layout.iter_dir(t)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def model_spec(self, t: int) -> str:
        """Where M(t) lives: the base model, a trained directory, or M(t-1)'s when training was skipped."""
        if t == 0:
            return self.base_model_spec()
        result = self.manifest.result(train_stage_name(t))
        if isinstance(result, dict) and result.get("skipped"):
            return str(result["model"])
        return str(self.layout.model(t))

    def base_model_spec(self) -> str:
        """M0: the configured model, or its vocabulary-trimmed copy (made once, cached) with ``trim_vocab``.

        The trimmed copy's directory is recorded in the manifest (``base_model``) the first time, and a
        resumed run keeps using it while it exists: the default corpus includes the package's own texts, so
        a later version of the package may trim to a different directory, and one run must have one M0."""
        if self._base_spec is None:
            m = self.config.model
            recorded = self.manifest.data.get("base_model")
            if not m.trim_vocab:
                self._base_spec = m.name
            elif isinstance(recorded, dict) and recorded.get("trim_vocab") and Path(recorded["path"]).is_dir():
                self._base_spec = str(recorded["path"])
            else:
                from ..models.trim import trimmed_model_dir

                self._base_spec = str(trimmed_model_dir(m.name, data_dir=self.config.data_dir))
                self.manifest.data["base_model"] = {"name": m.name, "trim_vocab": True, "path": self._base_spec}
                self.manifest.save()
        return self._base_spec

    def generator(self, t: int) -> Any:
        """The generator for M(t), loaded once and kept while consecutive stages use the same model."""
        from ..models.config import load_generator_from_config

        spec = self.model_spec(t)
        if self._generator_spec != spec:
            self.release()
            self._generator = load_generator_from_config(self.config.model, spec, seed=self.config.seed)
            self._generator_spec = spec
        return self._generator

    def release(self) -> None:
        """Free the generator before training (the trainer loads its own copy)."""
        if self._generator is not None and hasattr(self._generator, "close"):
            self._generator.close()
        self._generator = None
        self._generator_spec = None
        gc.collect()

    def stage(self, name: str, fn: Callable[[], Any]) -> Any:
        return self.manifest.run(name, fn, self.log)
