"""``RunLayout``: every path of a run directory, named once.

The loop, the stages, ``prm-sr report`` and the tests ask this object where a file lives; no other
module spells a run-directory path. Layout (``runs/<name>/``)::

    config.yaml            the resolved run config (written once; a resume reads it back)
    manifest.json          versions, seed, and the status, wall time and result of every stage
    base_vocab.json        with model.trim_vocab: the kept token ids of M0's trimmed vocabulary
    seed/                  ift.jsonl, eft_train.jsonl, eft_heldout.jsonl, summary.json
                           (task instruct: also its 5-point judge seed files, see data/seed_instruct.py)
    iter_0/                M0 (the base model): eval/, judge_eval.jsonl (+ judge_eval_<mode>.jsonl
                           for every other mode of judge_eval.modes)
    iter_1/                M1 = SFT(M0): model/, eval/, judge_eval.jsonl, sft_data.jsonl (with a launcher)
    iter_<t>/ (t >= 2)     problems.jsonl, then search.jsonl + pairs.jsonl (task math) or prompts.jsonl +
                           judgments.jsonl + pairs.jsonl (task instruct), all made by M(t-1);
                           audit.jsonl (the optional pair audit, rollouts with M(t-1));
                           model/ = M(t), eval/, judge_eval.jsonl
    report.md, report.png  across iterations
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_ITER = re.compile(r"iter_(\d+)")


@dataclass(frozen=True)
class RunLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # -- the run ------------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def report_png(self) -> Path:
        return self.root / "report.png"

    @property
    def base_vocab(self) -> Path:
        """With ``model.trim_vocab``: the kept ids of M0's trimmed vocabulary (the run's own, rebuilt
        exactly on another machine)."""
        return self.root / "base_vocab.json"

    # -- seed data ----------------------------------------------------------------------------------
    @property
    def seed_dir(self) -> Path:
        return self.root / "seed"

    @property
    def ift(self) -> Path:
        return self.seed_dir / "ift.jsonl"

    @property
    def eft_train(self) -> Path:
        return self.seed_dir / "eft_train.jsonl"

    @property
    def eft_heldout(self) -> Path:
        return self.seed_dir / "eft_heldout.jsonl"

    @property
    def seed_summary(self) -> Path:
        return self.seed_dir / "summary.json"

    # -- one model M(t) -----------------------------------------------------------------------------
    def iter_dir(self, t: int) -> Path:
        return self.root / f"iter_{t}"

    def iterations(self) -> list[int]:
        """The t of every ``iter_<t>/`` present, ascending."""
        if not self.root.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.root.iterdir() if (m := _ITER.fullmatch(p.name)) and p.is_dir())

    def problems(self, t: int) -> Path:
        return self.iter_dir(t) / "problems.jsonl"

    def search(self, t: int) -> Path:
        return self.iter_dir(t) / "search.jsonl"

    def pairs(self, t: int) -> Path:
        return self.iter_dir(t) / "pairs.jsonl"

    def prompts(self, t: int) -> Path:
        return self.iter_dir(t) / "prompts.jsonl"

    def judgments(self, t: int) -> Path:
        return self.iter_dir(t) / "judgments.jsonl"

    def model(self, t: int) -> Path:
        return self.iter_dir(t) / "model"

    def train_checkpoint(self, t: int) -> Path:
        """A published folder's copy of M(t)'s latest training checkpoint, while M(t) is not trained yet
        (in a run directory the trainer keeps it in ``iter_<t>/.model.trainer/``)."""
        return self.iter_dir(t) / "train_checkpoint"

    def train_data(self, t: int, stage: str) -> Path:
        """What a training stage under a launcher reads (``stage``: sft or dpo)."""
        return self.iter_dir(t) / f"{stage}_data.jsonl"

    def train_config(self, t: int, stage: str) -> Path:
        return self.iter_dir(t) / f"{stage}_config.yaml"

    def eval_dir(self, t: int) -> Path:
        return self.iter_dir(t) / "eval"

    def eval_summary(self, t: int) -> Path:
        return self.eval_dir(t) / "summary.json"

    def judge_eval(self, t: int, mode: str | None = None, primary: str | None = None) -> Path:
        """M(t)'s judged held-out rows: ``judge_eval.jsonl`` for the judge the search uses (``mode`` None
        or equal to ``primary``, the run's ``judge.mode``), ``judge_eval_<mode>.jsonl`` for every other
        mode of ``judge_eval.modes``."""
        if mode is None or mode == primary:
            return self.iter_dir(t) / "judge_eval.jsonl"
        return self.iter_dir(t) / f"judge_eval_{mode}.jsonl"

    def audit(self, t: int) -> Path:
        """The pair audit of iteration t's step pairs (rollouts from prefix + chosen / rejected with M(t-1))."""
        return self.iter_dir(t) / "audit.jsonl"
