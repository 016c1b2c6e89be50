"""``prm-sr plan``: what a run config will ask of the machines, checked before any GPU is rented.

:func:`build_plan` resolves nothing but configs and the model's ``config.json`` (see
:mod:`.models.shapes`): no model loads, no GPU is needed. Per stage it says what runs where (GPUs,
launcher, tensor and data parallel sizes), estimates GPU memory per device for training and for vLLM,
and sets the longest prompt each stage sends against the context. Anything that cannot fit is a
*problem*; the command prints them and fails (exit 2).

Estimates (bytes, per GPU unless said otherwise):

- **DeepSpeed ZeRO-3 model states**: DeepSpeed's own estimator
  (``deepspeed.runtime.zero.stage3.estimate_zero3_model_states_mem_needs``) when DeepSpeed imports,
  else the same formula (:func:`zero3_model_states`): GPU ``4 * largest_layer + 18 * P / gpus`` without
  offload, ``4 * largest_layer + 2 * P / gpus`` with the optimizer offloaded (host: ``16 * P * 1.5`` per
  node), ``4 * largest_layer`` with parameters offloaded too (host: ``18 * P * 1.5``).
- **LoRA under ZeRO-3**: the frozen base in bf16, sharded (``2 * P / gpus``), the adapter's states as
  above (``18 * L / gpus``); the reference model is the base with the adapter off (no copy).
- **No DeepSpeed** (one process, or DDP: every GPU holds everything): fp32 weights (training loads
  fp32, see ``train/config.py``) 4 bytes, gradients 4, AdamW 8 per trained parameter.
- **Reference model** (DPO, full fine-tuning, no ``precompute_ref_log_probs``): bf16 sharded under
  ZeRO-3 (``2 * P / gpus``), fp32 otherwise.
- **Activations** (rough, gradient checkpointing on): each layer's input kept
  (``layers * tokens * hidden * 2``) plus fp32 logits and their log-softmax (``tokens * vocab * 8``),
  for ``per_device_batch_size`` sequences of ``max_length`` tokens (DPO: chosen and rejected, twice).
- **vLLM**: bf16 weights ``2 * P / tp``; the KV cache gets ``gpu_memory_utilization * GPU`` minus the
  weights and ~10% for activations and CUDA graphs; one token's KV is ``2 * layers * max(1, kv_heads/tp)
  * head_dim * 2`` bytes; the cache must hold at least one sequence of ``max_model_len`` tokens (vLLM
  refuses to start otherwise).

Prompt lengths are counted with the model's tokenizer when one is found locally (chat template
included), else estimated at :data:`CHARS_PER_TOKEN` characters a token; variable parts (the question,
steps, candidates) are counted at their budgets: ``question_tokens`` for a question,
``search.max_step_tokens`` for a step.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .cluster import launcher_config_file, launcher_processes
from .errors import UserError
from .models.shapes import ModelShape, model_shape
from .run_config import RunConfig

GB = 1e9
CHARS_PER_TOKEN = 3.0
"""Characters a token when no tokenizer is at hand: low for English (about 4), so prompts are
over-estimated rather than under."""
PLACEHOLDER = "\x00"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


@dataclass
class StagePlan:
    stage: str
    where: str
    memory: dict[str, float] = field(default_factory=dict)
    """GB per device, by part."""
    prompt_tokens: int | None = None
    """The longest prompt the stage sends, plus its completion budget."""
    notes: list[str] = field(default_factory=list)

    @property
    def memory_total(self) -> float:
        return sum(v for k, v in self.memory.items() if not k.startswith("host"))


@dataclass
class Plan:
    model: str
    shape: ModelShape
    context: int
    token_counter: str
    stages: list[StagePlan]
    problems: list[str]

    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------------------------------------
# Memory


def zero3_model_states(
    total: int, largest: int, gpus_per_node: int, nodes: int, offload_optimizer: bool, offload_param: bool,
    zero_init: bool = True, buffer_factor: float = 1.5,
) -> tuple[float, float]:
    """(host bytes per node, GPU bytes per GPU) of ZeRO-3 model states: DeepSpeed's estimator when it
    imports, else the same formula (documented in the module docstring)."""
    try:
        from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    except Exception:  # DeepSpeed is the gpu extra; the formula below is its own
        estimate_zero3_model_states_mem_needs = None
    if estimate_zero3_model_states_mem_needs is not None:
        cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
            total, largest, num_gpus_per_node=gpus_per_node, num_nodes=nodes, cpu_offload=offload_optimizer,
            cpu_offload_params=offload_param, zero_init=zero_init, additional_buffer_factor=buffer_factor,
        )
        return float(cpu), float(gpu)
    gpus = gpus_per_node * nodes
    per_node = 1 / nodes
    layer = 4 * largest
    if offload_optimizer and offload_param:
        gpu = layer
        cpu = total * (18 * per_node if zero_init else max(4 * gpus_per_node, 18 * per_node)) * buffer_factor
    elif offload_optimizer:
        gpu = layer + int(2 * total / gpus)
        cpu = total * (16 * per_node if zero_init else max(4 * gpus_per_node, 16 * per_node)) * buffer_factor
    else:
        gpu = layer + int(18 * total / gpus)
        cpu = (largest * 4 * gpus_per_node if zero_init else total * 4 * gpus_per_node) * buffer_factor
    return float(cpu), float(gpu)


@dataclass(frozen=True)
class TrainingSetup:
    """How a training stage is launched, read from ``train_launcher`` and its accelerate config."""

    processes: int
    launcher: str
    zero_stage: int | None
    offload_optimizer: bool
    offload_param: bool


def training_setup(config: RunConfig, base_dir: Path | None = None) -> TrainingSetup:
    launcher = config.train_launcher
    if not launcher:
        return TrainingSetup(1, "this process", None, False, False)
    processes = launcher_processes(launcher)
    zero, off_opt, off_param = None, False, False
    path = launcher_config_file(launcher)
    if path is not None:
        file = Path(path)
        if not file.is_absolute() and not file.exists() and base_dir is not None:
            file = base_dir / path
        if not file.is_file():
            raise UserError(f"train_launcher: accelerate config {path} not found")
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        processes = processes or int(data.get("num_processes", 1))
        if data.get("distributed_type") == "DEEPSPEED":
            ds = data.get("deepspeed_config", {}) or {}
            if ds.get("deepspeed_config_file"):
                ds_file = Path(ds["deepspeed_config_file"])
                zero_cfg = json.loads(ds_file.read_text(encoding="utf-8")).get("zero_optimization", {})
                zero = int(zero_cfg.get("stage", 0))
                off_opt = (zero_cfg.get("offload_optimizer") or {}).get("device", "none") not in ("none", None)
                off_param = (zero_cfg.get("offload_param") or {}).get("device", "none") not in ("none", None)
            else:
                zero = int(ds.get("zero_stage", 0))
                off_opt = ds.get("offload_optimizer_device", "none") not in ("none", None)
                off_param = ds.get("offload_param_device", "none") not in ("none", None)
    return TrainingSetup(processes or 1, launcher.split()[0], zero, off_opt, off_param)


def training_memory(
    shape: ModelShape, train: Any, setup: TrainingSetup, cluster: Any, dpo: bool
) -> dict[str, float]:
    """GB per GPU (and ``host`` GB per node) of one training stage (see the module docstring)."""
    p = shape.parameters
    gpus = max(setup.processes, 1)
    nodes = max(cluster.nodes, 1)
    out: dict[str, float] = {}
    lora = shape.lora_parameters_per_rank * train.lora_r if train.lora else 0
    trained = lora or p
    if setup.zero_stage == 3:
        host, states = zero3_model_states(
            trained, shape.largest_layer_parameters, gpus // nodes or 1, nodes,
            setup.offload_optimizer, setup.offload_param,
        )
        if lora:
            out["frozen base (bf16, sharded)"] = 2 * p / gpus / GB
            out["LoRA weights+grads+AdamW (ZeRO-3)"] = states / GB
        else:
            out["weights+grads+AdamW (ZeRO-3)"] = states / GB
        out["host per node"] = host / GB
        if dpo and not lora and not train.precompute_ref_log_probs:
            out["reference model (bf16, sharded)"] = 2 * p / gpus / GB
    else:
        out["weights (fp32)"] = 4 * p / GB
        out["gradients (fp32)"] = 4 * trained / GB
        out["AdamW states (fp32)"] = 8 * trained / GB
        if dpo and not lora and not train.precompute_ref_log_probs:
            out["reference model (fp32)"] = 4 * p / GB
    sequences = train.per_device_batch_size * (2 if dpo else 1)
    tokens = sequences * train.max_length
    out["activations (rough)"] = (shape.layers * tokens * shape.hidden_size * 2 + tokens * shape.vocab_size * 8) / GB
    return out


def vllm_memory(shape: ModelShape, model: Any, cluster: Any, context: int) -> tuple[dict[str, float], list[str]]:
    """(GB per GPU by part, problems) of one vLLM engine."""
    tp = model.tensor_parallel_size
    weights = 2 * shape.parameters / tp
    budget = model.gpu_memory_utilization * cluster.gpu_memory_gb * GB
    overhead = 0.1 * cluster.gpu_memory_gb * GB
    kv = budget - weights - overhead
    per_token = 2 * shape.layers * max(1, math.ceil(shape.kv_heads / tp)) * shape.head_dim * 2
    problems = []
    memory = {"weights (bf16)": weights / GB, "KV cache": max(kv, 0) / GB}
    if kv < per_token * context:
        problems.append(
            f"vLLM: {weights / GB:.1f} GB of weights per GPU leave {max(kv, 0) / GB:.1f} GB of KV cache, less than one "
            f"{context}-token sequence needs ({per_token * context / GB:.2f} GB); raise model.tensor_parallel_size "
            "or model.gpu_memory_utilization, or lower model.max_model_len"
        )
    return memory, problems


# ---------------------------------------------------------------------------------------------------
# Prompts


class TokenCounter:
    """Counts a prompt's tokens with the model's tokenizer if it is local, else estimates them."""

    def __init__(self, spec: str):
        self.tokenizer = None
        self.description = f"estimated at {CHARS_PER_TOKEN:g} characters a token (no tokenizer for {spec} found locally)"
        try:
            from transformers import AutoTokenizer

            from .models.embedded import is_embedded

            if is_embedded(spec):
                from .models.loading import resolve_model_path

                source: str = str(resolve_model_path(spec))
            else:
                source = spec
            local = Path(source).expanduser()
            if local.is_dir() and not any((local / f).is_file() for f in TOKENIZER_FILES):
                raise FileNotFoundError(f"no tokenizer files in {local}")  # a config.json-only directory
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            self.description = f"the tokenizer of {spec}"
        except Exception:  # no tokenizer files locally (a config-only directory, an uncached hub id)
            self.tokenizer = None

    def format(self, message: str) -> str:
        tok = self.tokenizer
        if tok is not None and getattr(tok, "chat_template", None):
            return tok.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                           add_generation_prompt=True)
        return message

    def count(self, text: str) -> int:
        """Tokens of ``text`` with every :data:`PLACEHOLDER` left out (the caller adds their budgets)."""
        text = text.replace(PLACEHOLDER, "")
        if self.tokenizer is not None:
            return len(self.tokenizer(text)["input_ids"])
        return math.ceil(len(text) / CHARS_PER_TOKEN)


def _prompt_tokens(counter: TokenCounter, message: str, slots: int) -> int:
    """Tokens of the formatted ``message`` whose ``slots`` placeholders are counted apart (by the caller)."""
    assert message.count(PLACEHOLDER) == slots
    return counter.count(counter.format(message))


# ---------------------------------------------------------------------------------------------------
# The plan


def _gb(memory: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in memory.items())


def build_plan(config: RunConfig, question_tokens: int = 512, base_dir: Path | None = None) -> Plan:
    """The :class:`Plan` of ``config`` (module docstring). ``question_tokens``: the budget a question
    is counted at. Raises UserError only when the model's config cannot be found."""
    from .evaluate import AUTO_FEW_SHOT
    from .judges.prompts import pairwise_step_message
    from .prompts import solve_message
    from .steps import next_step_prefix

    model, cluster, search, judge = config.model, config.cluster, config.search, config.judge
    shape = model_shape(model.name)
    problems: list[str] = []
    if shape.context is None and model.max_model_len is None:
        raise UserError(f"{model.name}: its config has no max_position_embeddings; set model.max_model_len")
    context = model.max_model_len or int(shape.context)  # type: ignore[arg-type]
    if shape.context is not None and context > shape.context:
        problems.append(f"model.max_model_len {context} is above the model's max_position_embeddings {shape.context}")
    counter = TokenCounter(model.name)
    stages: list[StagePlan] = []

    # -- generation: where it runs --------------------------------------------------------------------
    dp, tp = cluster.data_parallel_size, model.tensor_parallel_size
    if model.backend == "vllm":
        engine = f"vLLM, {dp} engine(s) x TP {tp} = {dp * tp} GPU(s)"
        engine += f" as Ray actors ({cluster.ray_address or 'local Ray'})" if dp > 1 else " in this process"
        vmem, vproblems = vllm_memory(shape, model, cluster, context)
        problems += vproblems
    else:
        engine = f"transformers on {model.device}" + (f", {dp} Ray actors" if dp > 1 else ", in this process")
        vmem = {"weights": (4 if model.dtype == "float32" else 2) * shape.parameters / GB}

    # -- prompts: (minimum that must fit, worst case) --------------------------------------------------
    q = PLACEHOLDER
    step = PLACEHOLDER
    eval_shots = config.eval.few_shot if config.eval.few_shot != "auto" else AUTO_FEW_SHOT
    eval_prompt = _prompt_tokens(counter, solve_message(q, int(eval_shots)), 1) + question_tokens
    eval_need = eval_prompt + config.eval.max_new_tokens
    e = StagePlan("eval (each model)", engine, dict(vmem), eval_need,
                  [f"solve prompt {eval_prompt} + max_new_tokens {config.eval.max_new_tokens}"])
    if eval_need > context:
        problems.append(f"eval: a {eval_prompt}-token solve prompt + eval.max_new_tokens {config.eval.max_new_tokens} "
                        f"= {eval_need} > context {context}; lower eval.max_new_tokens or eval.few_shot")
    stages.append(e)

    if config.task == "math":
        base = _prompt_tokens(counter, solve_message(q, search.few_shot) + next_step_prefix([]), 1) + question_tokens
        first = base + search.max_step_tokens
        steps_fit = max(0, (context - first) // (search.max_step_tokens + 4))
        worst = base + (search.max_rounds - 1) * (search.max_step_tokens + 4) + search.max_step_tokens
        s = StagePlan(f"search/M<t> (w={search.width}, {search.max_rounds} rounds)", engine, dict(vmem), min(worst, context),
                      [f"step 1 needs {first} tokens; at {search.max_step_tokens} tokens a step, "
                       f"{min(steps_fit + 1, search.max_rounds)} of {search.max_rounds} steps fit before a search stops "
                       "(stop_reason context, counted)"])
        if first > context:
            problems.append(f"search: the step-1 prompt ({base} tokens) + search.max_step_tokens "
                            f"{search.max_step_tokens} = {first} > context {context}")
        stages.append(s)

        reserve = judge.max_new_tokens if judge.mode == "generate" else 1
        judge_base = _prompt_tokens(counter, pairwise_step_message(q, [], step, step), 3) + question_tokens
        judge_min = judge_base + 2 * search.max_step_tokens + reserve
        judge_steps = max(0, (context - judge_min) // (search.max_step_tokens + 4))
        j = StagePlan(f"judge in search ({judge.mode}, debias {judge.debias})", engine, {}, min(
            judge_min + (search.max_rounds - 1) * (search.max_step_tokens + 4), context),
            [f"question + two {search.max_step_tokens}-token candidates + verdict budget {reserve} = {judge_min}; "
             f"{min(judge_steps, search.max_rounds - 1)} of up to {search.max_rounds - 1} previous steps fit "
             "(earlier ones elided, counted)"])
        if judge_min > context:
            problems.append(f"judge: question {question_tokens} + two candidates of search.max_step_tokens "
                            f"{search.max_step_tokens} + verdict {reserve} + instruction = {judge_min} > context "
                            f"{context}; lower search.max_step_tokens or judge.max_new_tokens")
        stages.append(j)

    # -- training --------------------------------------------------------------------------------------
    setup = training_setup(config, base_dir)
    for name, train, dpo in (("train/M1 (SFT)", config.sft, False), ("train/M<t> (DPO)", config.dpo, True)):
        memory = training_memory(shape, train, setup, cluster, dpo)
        zero = f"ZeRO-{setup.zero_stage}" if setup.zero_stage else "no DeepSpeed"
        if setup.zero_stage and (setup.offload_optimizer or setup.offload_param):
            zero += " (offload: " + ", ".join(
                n for n, on in (("optimizer", setup.offload_optimizer), ("params", setup.offload_param)) if on) + ")"
        tuning = f"LoRA r={train.lora_r}" if train.lora else "full fine-tuning"
        where = f"{setup.launcher}, {setup.processes} process(es), {zero}, {tuning}"
        st = StagePlan(name, where, memory, train.max_length)
        gpu = st.memory_total
        if cluster.gpus and gpu > cluster.gpu_memory_gb:
            problems.append(f"{name}: about {gpu:.0f} GB per GPU > {cluster.gpu_memory_gb:g} GB ({_gb(memory)}); "
                            "use ZeRO-3 (train_launcher), offload, or LoRA (sft/dpo.lora)")
        host = memory.get("host per node", 0.0)
        if host > cluster.cpu_memory_gb:
            problems.append(f"{name}: ZeRO-3 offload needs about {host:.0f} GB of host memory per node > "
                            f"cluster.cpu_memory_gb {cluster.cpu_memory_gb:g}; use LoRA (sft/dpo.lora) instead")
        if train.max_length > context:
            problems.append(f"{name}: max_length {train.max_length} > context {context}")
        stages.append(st)

    return Plan(model.name, shape, context, counter.description, stages, problems)


def format_plan(plan: Plan) -> list[str]:
    """The plan as printable lines."""
    s = plan.shape
    lines = [
        f"model {plan.model}: {s.parameters / 1e9:.2f}B parameters ({s.model_type}, {s.layers} layers, "
        f"largest layer {s.largest_layer_parameters / 1e6:.0f}M), context {plan.context}",
        f"  config from {s.source}",
        f"  prompt tokens: {plan.token_counter}",
    ]
    for st in plan.stages:
        lines.append(f"{st.stage}: {st.where}")
        if st.memory:
            lines.append(f"  memory per GPU (GB): {_gb(st.memory)}; total {st.memory_total:.1f}")
        if st.prompt_tokens is not None:
            lines.append(f"  longest sequence: {st.prompt_tokens} of {plan.context} tokens")
        lines += [f"  {n}" for n in st.notes]
    lines.append("fits" if plan.ok() else "DOES NOT FIT:")
    lines += [f"  - {p}" for p in plan.problems]
    return lines


__all__ = ["Plan", "StagePlan", "build_plan", "format_plan", "training_memory", "vllm_memory", "zero3_model_states"]
