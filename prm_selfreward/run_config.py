"""``RunConfig``: the whole run's settings, one section per concern, each field owned once.

Every section is the config dataclass of the code that uses it (``SearchConfig`` in ``search.py``,
``StepJudgeConfig`` in ``judges/pairwise.py``, ``ModelConfig`` in ``models/config.py`` ...). A config file,
``--set KEY=VALUE`` and every command's options all land in this one tree (see :mod:`.cli_options`), so
a default cannot differ between the CLI and a file. Values are checked (type, choices, range) when the
config loads, naming the dotted key, before any model loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audit import AuditConfig
from .cluster import ClusterConfig
from .config import ConfigError, from_dict, load_yaml, merge, option
from .data.seed import SeedConfig
from .data.seed_instruct import InstructSeedConfig
from .evaluate import EvalConfig
from .instruct import InstructIterationConfig
from .judges.pairwise import MODES as JUDGE_MODES
from .judges.pairwise import StepJudgeConfig
from .models.config import ModelConfig
from .search import SearchConfig
from .train.config import DPOTrainConfig, SFTTrainConfig

TASKS = ("math", "instruct")


@dataclass
class JudgeEvalConfig:
    """Step-judge accuracy of every model on the held-out EFT pairs (the ``judge_eval/M<t>`` stages)."""

    limit: int = option(100, minimum=0, help="Held-out EFT pairs scored per model (step-judge accuracy); 0 = all.")
    modes: list[str] = option(
        [], choices=JUDGE_MODES,
        help="Judge modes scored on the same pairs besides judge.mode (always scored: it is the search's), "
        "e.g. [logprob, generate, likelihood] to choose the search's judge by measurement.",
    )
    generate_limit: int = option(
        0, minimum=0,
        help="generate mode scores only the first N of the scored pairs (it decodes an explanation per "
        "order, several times slower than the others); 0 = all of them.",
    )
    chunk_size: int = option(
        32, minimum=1,
        help="Pairs per judge call; the judged rows are appended after each, so a killed stage resumes "
        "from the last chunk (verdicts do not depend on it).",
    )
    select: bool = option(
        False,
        help="Choose the search's judge mode by measurement before each search (stage judge_select/M<t>): "
        "the most accurate of judge.mode and judge_eval.modes on M(t-1)'s held-out pairs that does not "
        "prefer copied or repeated steps on the copy probes (eligible anyway while search.guard_repeats is "
        "on); recorded in the manifest with its figures (docs/step-judge.md).",
    )
    probe_pairs: int = option(
        100, minimum=1, help="Copy probes judged per candidate mode by judge_select (from the held-out pairs)."
    )


@dataclass
class RunConfig:
    task: str = option("math", choices=TASKS, help="math (process-based, step-DPO) or instruct (instruction-level).")
    model: ModelConfig = option(default_factory=ModelConfig, help="The base model and how to run it.")
    iterations: int = option(2, minimum=0, help="DPO iterations after M1 (2 gives M2 and M3).")
    problems_per_iteration: list[int] = option(
        [8, 12], minimum=1, help="Training problems searched per DPO iteration; the last value repeats."
    )
    train_sources: list[str] = option(["gsm8k"], help="Training pools: gsm8k (train split), math (MATH minus MATH-500).")
    data_dir: str | None = option(None, help="Local benchmark directory (else $PRM_SR_DATA_DIR, else the hub).")
    seed: int = option(
        0, help="Seed for sampling training problems and for the generators; each stage has its own seed too."
    )
    seed_data: SeedConfig = option(default_factory=SeedConfig, help="IFT/EFT seed data (task math).")
    instruct_seed: InstructSeedConfig = option(
        default_factory=InstructSeedConfig, help="IFT + 5-point judge EFT seed data (task instruct)."
    )
    sft: SFTTrainConfig = option(default_factory=SFTTrainConfig, help="SFT of M0 into M1.")
    dpo: DPOTrainConfig = option(default_factory=DPOTrainConfig, help="DPO of M(t) into M(t+1).")
    search: SearchConfig = option(default_factory=SearchConfig, help="Step search (task math).")
    judge: StepJudgeConfig = option(
        default_factory=StepJudgeConfig,
        help="The pairwise step judge: of the search, of the held-out judge evaluation, of eval's test-time search.",
    )
    judge_eval: JudgeEvalConfig = option(
        default_factory=JudgeEvalConfig, help="Step-judge accuracy of every model on the held-out EFT pairs."
    )
    audit: AuditConfig = option(
        default_factory=AuditConfig,
        help="Pair audit (task math, off by default): rollouts from prefix + chosen vs prefix + rejected.",
    )
    instruct: InstructIterationConfig = option(
        default_factory=InstructIterationConfig, help="Self-instruct and 5-point judging (task instruct)."
    )
    eval: EvalConfig = option(default_factory=EvalConfig, help="Benchmarks evaluated after every model.")
    cluster: ClusterConfig = option(
        default_factory=ClusterConfig, help="The GPUs and nodes the run may use; generation engines (Ray)."
    )
    train_launcher: str | None = option(
        None,
        help="Run each training stage as a subprocess under this launcher, e.g. 'accelerate launch "
        "--config_file configs/accelerate/deepspeed_zero3.yaml' (multi-GPU); none: train in this process.",
    )

    def problems_for(self, t: int) -> int:
        """Problems searched to train M(t), t >= 2."""
        sizes = self.problems_per_iteration or [0]
        return sizes[min(t - 2, len(sizes) - 1)]


CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def default_config_path(smoke: bool = False) -> Path:
    """The embedded-model CPU config in the repository's ``configs/`` (an editable install, as the
    README's quick start makes; other installs pass ``--config``)."""
    return CONFIG_DIR / ("cpu-smoke.yaml" if smoke else "cpu-default.yaml")


def load_run_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The run config of YAML file ``path`` (none: the defaults) with ``overrides`` merged on top.

    Raises :class:`ConfigError` for an unknown key, a wrong type or a value out of range, naming it.
    """
    data = load_yaml(path) if path else {}
    if overrides:
        data = merge(data, overrides)
    return from_dict(RunConfig, data)


def validate_run_config(config: RunConfig, data_for: list[str] | None = None) -> None:
    """Checks across sections and against the data, run before any model loads.

    Benchmarks and training sources must be known; the data directory, when given, must exist and hold
    the files of ``data_for`` (default: everything the loop reads: the evaluation benchmarks, the
    training and seed sources). Raises :class:`ConfigError`."""
    from .data import BENCHMARKS, TRAIN_SOURCES

    unknown = [b for b in config.eval.benchmarks if b not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"eval.benchmarks: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    unknown = [b for b in config.eval.limit if b not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"eval.limit: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for key, sources in (("train_sources", config.train_sources), ("seed_data.ift_sources", config.seed_data.ift_sources),
                         ("seed_data.eft_sources", config.seed_data.eft_sources)):
        unknown = [s for s in sources if s not in TRAIN_SOURCES]
        if unknown:
            raise ConfigError(f"{key}: unknown source(s) {', '.join(unknown)}; choose from {', '.join(TRAIN_SOURCES)}")
    if config.data_dir is not None:
        from .data import check_data_dir

        if data_for is None:
            data_for = [*config.eval.benchmarks, *config.train_sources, *config.seed_data.ift_sources,
                        *config.seed_data.eft_sources]
        if data_for:
            check_data_dir(config.data_dir, data_for)
