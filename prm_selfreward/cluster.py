"""``ClusterConfig``: the machines a run may use, and the checks that stop a run that cannot use them.

The run config's ``cluster:`` section. ``prm-sr plan`` sizes every stage against it; ``prm-sr iterate``
calls :func:`check_training_launch` before the run starts, so a multi-GPU config without a training
launcher fails at once with the fix, not hours later in the first training stage.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Protocol

from .config import ConfigError, option
from .models.config import ModelConfig


@dataclass
class ClusterConfig:
    gpus_per_node: int = option(0, minimum=0, help="GPUs per node the run may use (0: none, a CPU run).")
    nodes: int = option(1, minimum=1, help="Nodes (a multi-node run needs a Ray cluster and a multi-node launcher).")
    gpu_memory_gb: float = option(80.0, minimum=0.0, exclusive_minimum=True, help="Memory of one GPU, GB (plan).")
    cpu_memory_gb: float = option(
        1024.0, minimum=0.0, exclusive_minimum=True, help="Host memory of one node, GB (plan: ZeRO offload needs it)."
    )
    data_parallel_size: int = option(
        1, minimum=1,
        help="Generation engines for search and eval, each on model.tensor_parallel_size GPUs: problems are "
        "sharded over them (Ray actors, see prm_selfreward/parallel.py); 1: generation in this process.",
    )
    ray_address: str | None = option(
        None, help="Ray cluster for the engines ('auto': the running one, or ray://host:10001); none: a local Ray."
    )

    @property
    def gpus(self) -> int:
        return self.gpus_per_node * self.nodes


DEFAULT_LAUNCHER = "accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml --num_processes {n}"


def launcher_processes(launcher: str | None) -> int | None:
    """``--num_processes N`` (or ``--nproc_per_node N``) of a launcher command line; None when absent."""
    if not launcher:
        return None
    parts = shlex.split(launcher)
    for flag in ("--num_processes", "--nproc_per_node", "--nproc-per-node"):
        for i, part in enumerate(parts):
            if part == flag and i + 1 < len(parts):
                return int(parts[i + 1])
            if part.startswith(flag + "="):
                return int(part.split("=", 1)[1])
    return None


def launcher_config_file(launcher: str | None) -> str | None:
    """The ``--config_file`` of an ``accelerate launch`` command line."""
    if not launcher:
        return None
    parts = shlex.split(launcher)
    for i, part in enumerate(parts):
        if part == "--config_file" and i + 1 < len(parts):
            return parts[i + 1]
        if part.startswith("--config_file="):
            return part.split("=", 1)[1]
    return None


class TrainingSetup(Protocol):
    """What :func:`check_training_launch` reads of a config (a ``RunConfig`` has it): typed here, not
    by importing ``run_config``, which imports this module (no import circle)."""

    cluster: ClusterConfig
    model: ModelConfig
    train_launcher: str | None


def check_training_launch(config: TrainingSetup) -> None:
    """Raise :class:`ConfigError` when training could not use the GPUs the config gives it.

    A config with more than one GPU (``cluster.gpus_per_node x nodes``, or a tensor-parallel or
    data-parallel generation setup) must train under ``train_launcher``: in this process TRL trains on
    one GPU (it refuses ``n_gpu > 1``) and full fine-tuning of a 7B model does not fit one. Generation
    must not ask for more GPUs than the cluster has.
    """
    cluster, model = config.cluster, config.model
    wanted = cluster.data_parallel_size * model.tensor_parallel_size
    gpus = max(cluster.gpus, wanted if model.backend == "vllm" else 0)
    if cluster.gpus and wanted > cluster.gpus:
        raise ConfigError(
            f"cluster: data_parallel_size {cluster.data_parallel_size} x model.tensor_parallel_size "
            f"{model.tensor_parallel_size} = {wanted} GPUs, but the cluster has {cluster.gpus}"
        )
    if gpus > 1 and not config.train_launcher:
        raise ConfigError(
            f"train_launcher: this config uses {gpus} GPUs but trains in this process, on one GPU (TRL refuses "
            f"n_gpu > 1); set train_launcher, e.g. --set train_launcher='{DEFAULT_LAUNCHER.format(n=gpus)}'"
        )
    processes = launcher_processes(config.train_launcher)
    if processes is not None and cluster.gpus and processes > cluster.gpus:
        raise ConfigError(
            f"train_launcher: --num_processes {processes} but the cluster has {cluster.gpus} GPUs"
        )


__all__ = ["ClusterConfig", "TrainingSetup", "check_training_launch", "launcher_config_file", "launcher_processes"]
