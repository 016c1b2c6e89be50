"""``RunContext``: what the stages of one run share (layout, config, manifest, log, the loaded model)."""

from __future__ import annotations

import gc
import json
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

        With ``trim_vocab`` the run owns its vocabulary: the kept ids are written once to ``base_vocab.json``
        and the trimmed copy's directory recorded in the manifest (``base_model``). A resumed run keeps using
        that directory while it exists and otherwise rebuilds exactly that vocabulary (another machine, a
        restored run, an emptied cache): the default corpus holds the package's own texts and the data
        directory's, so trimming again from today's corpus may keep other tokens, and one run must have one
        M0. Raises :class:`UserError` when the recorded directory keeps other ids than ``base_vocab.json``."""
        if self._base_spec is None:
            m = self.config.model
            self._base_spec = str(self._trimmed_base()) if m.trim_vocab else m.name
        return self._base_spec

    def _trimmed_base(self) -> Path:
        from ..errors import UserError
        from ..io import atomic_write_text, json_dumps
        from ..models.trim import read_trim_info, trimmed_model_dir, vocabulary_sha256

        m, vocab = self.config.model, self.layout.base_vocab
        kept = json.loads(vocab.read_text(encoding="utf-8"))["kept_ids"] if vocab.is_file() else None
        recorded = self.manifest.data.get("base_model")
        recorded_path = recorded.get("path") if isinstance(recorded, dict) and recorded.get("trim_vocab") else None
        path = Path(recorded_path) if recorded_path else None
        info = read_trim_info(path) if path is not None else None
        if info is None:  # first use, or the recorded copy is gone: trim (to the run's vocabulary if known)
            path = trimmed_model_dir(m.name, data_dir=self.config.data_dir, kept_ids=kept)
            info = read_trim_info(path) or {}
        if kept is not None and info.get("kept_ids") != kept:
            raise UserError(f"M0's trimmed copy {path} keeps other tokens than this run's vocabulary ({vocab}); "
                            "remove the manifest's base_model entry to rebuild the run's own")
        digest = vocabulary_sha256(info["kept_ids"])
        if kept is None:
            kept = info["kept_ids"]
            atomic_write_text(vocab, json_dumps({"model": m.name, "full_vocab": info.get("full_vocab"), "kept": len(kept),
                                                 "sha256": digest, "kept_ids": kept}) + "\n")
        entry = {"name": m.name, "trim_vocab": True, "path": str(path), "kept": len(kept), "vocabulary_sha256": digest}
        if recorded != entry:
            self.manifest.data["base_model"] = entry
            self.manifest.save()
        return path

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
