"""`prm-sr restore`: a run published mid-way is rebuilt elsewhere and continues as if never moved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import prm_selfreward.evaluate as ev
import prm_selfreward.loop as loop
import prm_selfreward.stages.run as S
from prm_selfreward.errors import UserError
from prm_selfreward.io import read_jsonl
from prm_selfreward.publish import publish_run
from prm_selfreward.restore import restore_run
from tests.test_loop import _cli, smoke_config

LORA = {"lora": True, "lora_r": 4, "lora_alpha": 8, "learning_rate": 1e-3}


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


@pytest.fixture(scope="module")
def published_run(tmp_path_factory, tiny_model_dir, data_dir):
    """A LoRA run killed in its DPO stage (M0, seed, M1 done; M2's search, pairs and audit done), published."""
    root = tmp_path_factory.mktemp("restore")
    run_dir = root / "run"
    # The search's judge chosen by measurement between the two cheap modes.
    select = {"judge_eval": {"modes": ["likelihood"], "select": True, "probe_pairs": 4},
              "search": {"lockstep": 1},  # two chunks of one problem: an interrupted search resumes per chunk
              "audit": {"pairs": 2, "rollouts": 2, "max_new_tokens": 12, "chunk_size": 1}}
    config = loop.prepare_run_dir(run_dir, smoke_config(tiny_model_dir, data_dir, sft=LORA, dpo=LORA, **select),
                                  resume=False)
    real = S.train_dpo

    def killed(run, t):
        raise KeyboardInterrupt("the session ended")

    S.train_dpo = killed
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.iterate(config, run_dir, log=lambda msg: None)
    finally:
        S.train_dpo = real
    publish_run(run_dir, root / "published")
    return run_dir, root / "published"


def test_restore_rebuilds_the_finished_stages_and_drops_the_rest(published_run, tmp_path, data_dir):
    run_dir, published = published_run
    assert (published / "iter_1" / "model" / "adapter" / "adapter_config.json").is_file()
    assert not (published / "iter_1" / "model" / "model.safetensors").exists()  # megabytes, not the weights
    assert json.loads((published / "iter_2" / "problems.ids.json").read_text()) == \
        [r["id"] for r in read_jsonl(run_dir / "iter_2" / "problems.jsonl")]

    target = tmp_path / "restored"
    counts = restore_run(published, target, data_dir=str(data_dir), log=lambda msg: None)
    assert counts["restored"] == ["eval/M0", "seed", "judge_eval/M0", "train/M1 (SFT)", "eval/M1",
                                  "judge_eval/M1", "problems/M2", "judge_select/M2", "search/M2", "pairs/M2",
                                  "audit/M2"]
    # M2 is not trained: its training runs again, on the pairs the search made.
    assert counts["dropped"] == ["train/M2 (DPO)"]

    # M1: the base with the published adapter merged in, bit for bit the model the run trained.
    original, rebuilt = _weights(run_dir / "iter_1" / "model"), _weights(target / "iter_1" / "model")
    assert set(original) == set(rebuilt) and all(torch.equal(original[k], rebuilt[k]) for k in original)
    # Seed data and training problems are drawn again and are the run's own; judge rows get their text back.
    # The search's results and pairs get their questions and prompts back from the published templates.
    for rel in ("seed/ift.jsonl", "seed/eft_train.jsonl", "seed/eft_heldout.jsonl", "iter_2/problems.jsonl",
                "iter_0/judge_eval.jsonl", "iter_1/judge_eval.jsonl", "iter_2/search.jsonl", "iter_2/pairs.jsonl",
                "iter_2/audit.jsonl"):
        assert read_jsonl(target / rel) == read_jsonl(run_dir / rel), rel
    pairs = (target / "iter_2" / "pairs.jsonl").read_text()
    assert pairs and pairs == (run_dir / "iter_2" / "pairs.jsonl").read_text()  # byte for byte: DPO's made_by
    manifest = json.loads((target / "manifest.json").read_text())
    assert list(manifest["stages"]) == counts["restored"]
    assert manifest["restored"]["dropped_stages"] == counts["dropped"]


def test_a_restored_run_continues_with_resume(published_run, tmp_path, tiny_model_dir, data_dir, monkeypatch):
    _, published = published_run
    target = tmp_path / "restored"
    _cli(["restore", str(published), "--run-dir", str(target), "--data-dir", str(data_dir)])
    called = []
    for name in ("evaluate_model", "train_m1", "search_steps", "train_dpo"):
        original = getattr(S, name)
        monkeypatch.setattr(S, name, lambda *a, _o=original, _n=name, **k: called.append(_n) or _o(*a, **k))
    config = loop.prepare_run_dir(target, smoke_config(tiny_model_dir, data_dir), resume=True)
    loop.iterate(config, target, log=lambda msg: None)
    # Only what was not restored runs: M2's training and its evaluation.
    assert called == ["train_dpo", "evaluate_model"]
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert (target / "iter_2" / "model" / "adapter" / "adapter_config.json").is_file()
    chosen = manifest["stages"]["judge_select/M2"]["result"]["mode"]
    assert f"M2's search judged with **{chosen}**" in (target / "report.md").read_text()


def test_the_search_judges_with_the_mode_judge_select_chose(published_run):
    run_dir, _ = published_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    chosen = manifest["stages"]["judge_select/M2"]["result"]
    assert chosen["mode"] in ("logprob", "likelihood") and chosen["guards"] is True
    # Both modes have M1's held-out figures; the chosen one was probed on the copy probes.
    assert set(chosen["modes"]) == {"logprob", "likelihood"}
    assert chosen["modes"][chosen["mode"]]["probes"] >= 1 and chosen["modes"][chosen["mode"]]["eligible"]
    searched = read_jsonl(run_dir / "iter_2" / "search.jsonl")
    assert searched and all(r["made_by"]["judge"]["mode"] == chosen["mode"] for r in searched)


def test_restore_refuses_an_occupied_directory_and_changed_seed_data(published_run, tmp_path, data_dir):
    run_dir, published = published_run
    with pytest.raises(UserError, match="already holds a run"):
        restore_run(published, run_dir, data_dir=str(data_dir), log=lambda msg: None)
    with pytest.raises(UserError, match="holds no published run"):
        restore_run(tmp_path, tmp_path / "x", log=lambda msg: None)
    edited = tmp_path / "edited"
    shutil.copytree(published, edited)
    manifest = json.loads((edited / "manifest.json").read_text())
    manifest["stages"]["seed"]["result"]["ift"] += 1  # as if the data or the seed code had changed
    (edited / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="seed data built here differs"):
        restore_run(edited, tmp_path / "r2", data_dir=str(data_dir), log=lambda msg: None)


def test_redo_drops_a_stage_and_the_rest_so_the_resumed_run_does_them_with_new_settings(
        published_run, tmp_path, tiny_model_dir, data_dir, monkeypatch):
    """An ablation of the SFT recipe reuses M0's evaluation, the seed data and M0's judge figures."""
    _, published = published_run
    with pytest.raises(UserError, match="no such stage.*train/M1 \\(SFT\\)"):
        restore_run(published, tmp_path / "nothing", data_dir=str(data_dir), log=lambda msg: None, redo="train/M9")
    assert not (tmp_path / "nothing").exists()  # refused before anything is written

    target = tmp_path / "branch"
    _cli(["restore", str(published), "--run-dir", str(target), "--data-dir", str(data_dir), "--redo", "train/M1"])
    manifest = json.loads((target / "manifest.json").read_text())
    assert list(manifest["stages"]) == ["eval/M0", "seed", "judge_eval/M0"]
    assert manifest["restored"]["redo"] == "train/M1 (SFT)"
    assert manifest["restored"]["dropped_stages"][:2] == ["train/M1 (SFT)", "eval/M1"]
    assert not (target / "iter_1").exists()

    seen = []

    def train_m1(run):  # the SFT the branch runs: stop there, the settings are what matter
        seen.append(run.config.sft.loss_average)
        raise KeyboardInterrupt

    called = []
    monkeypatch.setattr(S, "train_m1", train_m1)
    monkeypatch.setattr(S, "evaluate_model", lambda *a, **k: called.append("evaluate_model"))
    config = loop.prepare_run_dir(target, smoke_config(tiny_model_dir, data_dir), resume=True,
                                  overrides={"sft": {"loss_average": "record"}})
    with pytest.raises(KeyboardInterrupt):
        loop.iterate(config, target, log=lambda msg: None)
    assert seen == ["record"] and called == []  # M0's evaluation reused, M1 trained with the new setting
    changes = json.loads((target / "manifest.json").read_text())["config_changes"]
    assert changes[-1]["set"] == {"sft.loss_average": "record"}


def test_redo_names_the_settings_changed_after_the_redone_stage_ran(published_run, tmp_path, data_dir):
    """A change made for a later stage (the record run's M3 learning rate) would silently apply to the
    redone one: restore says which, with the value the stage ran with, in the log and the manifest."""
    _, published = published_run
    edited = tmp_path / "edited"
    shutil.copytree(published, edited)
    manifest = json.loads((edited / "manifest.json").read_text())
    started = manifest["stages"]["train/M1 (SFT)"]["started"]
    manifest["config_changes"] = [
        {"time": started - 10, "set": {"sft.lora_r": 8}},  # before the stage ran: it ran with it
        {"time": started + 10, "set": {"sft.learning_rate": 2e-4, "dpo.beta": 0.5},
         "was": {"sft.learning_rate": 1e-3, "dpo.beta": 0.1}},
        {"time": started + 20, "set": {"dpo.beta": 0.1}, "was": {"dpo.beta": 0.5}},  # set back: no difference
        {"time": started + 30, "set": {"search.lockstep": 2}},  # old value never recorded
    ]
    (edited / "manifest.json").write_text(json.dumps(manifest))
    logs: list[str] = []
    counts = restore_run(edited, tmp_path / "branch", data_dir=str(data_dir), log=logs.append, redo="train/M1")
    expected = {"sft.learning_rate": {"ran_with": 1e-3, "now": 2e-4}, "search.lockstep": {"now": 2}}
    assert counts["settings_changed_since"] == expected
    assert json.loads((tmp_path / "branch" / "manifest.json").read_text())["restored"]["settings_changed_since"] \
        == expected
    [line] = [m for m in logs if "settings changed" in m]
    assert line.startswith("restore: train/M1 (SFT) ran in the published run before these settings changed")
    assert "sft.learning_rate = 0.0002 (ran with 0.001)" in line
    assert "search.lockstep = 2 (ran with a value not recorded)" in line
    assert "lora_r" not in line and "dpo.beta" not in line

    # Nothing changed after the redone stage: nothing said.
    logs.clear()
    counts = restore_run(published, tmp_path / "plain", data_dir=str(data_dir), log=logs.append, redo="train/M1")
    assert counts["settings_changed_since"] == {} and not any("settings changed" in m for m in logs)


def test_an_interrupted_evaluation_is_restored_with_its_records(published_run, tmp_path, tiny_model_dir, data_dir,
                                                                monkeypatch):
    """A session that ends mid-evaluation keeps the problems it did: the stage resumes from them."""
    _, published = published_run
    cut = tmp_path / "cut"
    shutil.copytree(published, cut)
    manifest = json.loads((cut / "manifest.json").read_text())
    manifest["stages"]["eval/M1"]["status"] = "running"
    (cut / "manifest.json").write_text(json.dumps(manifest))
    gsm8k = cut / "iter_1" / "eval" / "gsm8k.jsonl"
    kept = read_jsonl(gsm8k)[:1]
    gsm8k.write_text(json.dumps(kept[0]) + "\n")
    counts = restore_run(cut, tmp_path / "r", data_dir=str(data_dir), log=lambda msg: None)
    assert counts["restored"][-1] == "eval/M1" and counts["dropped"][0] == "judge_eval/M1"
    restored = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert restored["stages"]["eval/M1"]["status"] == "running"
    # Publish drops the benchmark text: the restored record has its prompt back, empty, and the resumed
    # stage reads it (it did not: EvalRecord requires a prompt) and generates only the problems it lacks.
    assert "prompt" not in kept[0]
    assert read_jsonl(tmp_path / "r" / "iter_1" / "eval" / "gsm8k.jsonl") == [{"id": kept[0]["id"], "prompt": "",
                                                                                **kept[0]}]
    solved: list[str] = []
    real_solve = ev._solve_chunk

    def solve(generator, chunk, *args):
        solved.extend(p.id for p in chunk)
        return real_solve(generator, chunk, *args)

    def session_ends(run, t):
        raise KeyboardInterrupt("stop after eval/M1")

    monkeypatch.setattr(ev, "_solve_chunk", solve)
    monkeypatch.setattr(S, "evaluate_judge", session_ends)
    config = loop.prepare_run_dir(tmp_path / "r", smoke_config(tiny_model_dir, data_dir), resume=True)
    with pytest.raises(KeyboardInterrupt):
        loop.iterate(config, tmp_path / "r", log=lambda msg: None)
    resumed = read_jsonl(tmp_path / "r" / "iter_1" / "eval" / "gsm8k.jsonl")
    assert resumed[0]["id"] == kept[0]["id"] and resumed[0]["completion"] == kept[0]["completion"]
    assert kept[0]["id"] not in solved and len(resumed) == len(read_jsonl(published / "iter_1" / "eval" / "gsm8k.jsonl"))


def test_an_interrupted_search_resumes_from_its_published_chunks(published_run, tmp_path, tiny_model_dir,
                                                                 data_dir, monkeypatch):
    """A session that ends mid-search keeps the chunks of problems it searched: only the rest is searched."""
    run_dir, published = published_run
    cut = tmp_path / "cut"
    shutil.copytree(published, cut)
    manifest = json.loads((cut / "manifest.json").read_text())
    manifest["stages"]["search/M2"]["status"] = "running"
    (cut / "manifest.json").write_text(json.dumps(manifest))
    searched = cut / "iter_2" / "search.jsonl"
    lines = searched.read_text().splitlines(keepends=True)
    chunk = yaml.safe_load((cut / "config.yaml").read_text())["search"]["lockstep"]  # problems per chunk
    assert len(lines) > chunk, "the fixture's search needs more than one chunk"
    searched.write_text("".join(lines[:chunk]))
    target = tmp_path / "r"
    counts = restore_run(cut, target, data_dir=str(data_dir), log=lambda msg: None)
    assert counts["restored"][-1] == "search/M2" and counts["dropped"][0] == "pairs/M2"
    assert read_jsonl(target / "iter_2" / "search.jsonl") == read_jsonl(run_dir / "iter_2" / "search.jsonl")[:chunk]

    config = loop.prepare_run_dir(target, smoke_config(tiny_model_dir, data_dir), resume=True)
    loop.iterate(config, target, log=lambda msg: None)
    result = json.loads((target / "manifest.json").read_text())["stages"]["search/M2"]["result"]
    assert result["resumed"]["records"] == chunk
    # The resumed search saw the same batches, hence the same seeds: the original run's results.
    assert read_jsonl(target / "iter_2" / "search.jsonl") == read_jsonl(run_dir / "iter_2" / "search.jsonl")


def test_an_interrupted_audit_resumes_from_its_published_chunks(published_run, tmp_path, tiny_model_dir, data_dir):
    run_dir, published = published_run
    cut = tmp_path / "cut"
    shutil.copytree(published, cut)
    manifest = json.loads((cut / "manifest.json").read_text())
    manifest["stages"]["audit/M2"]["status"] = "running"
    (cut / "manifest.json").write_text(json.dumps(manifest))
    audited = cut / "iter_2" / "audit.jsonl"
    lines = audited.read_text().splitlines(keepends=True)
    assert len(lines) == 2  # two chunks of one pair
    audited.write_text(lines[0])
    target = tmp_path / "r"
    counts = restore_run(cut, target, data_dir=str(data_dir), log=lambda msg: None)
    assert counts["restored"][-1] == "audit/M2" and counts["dropped"] == ["train/M2 (DPO)"]
    config = loop.prepare_run_dir(target, smoke_config(tiny_model_dir, data_dir), resume=True)
    loop.iterate(config, target, log=lambda msg: None)
    result = json.loads((target / "manifest.json").read_text())["stages"]["audit/M2"]["result"]
    assert result["resumed"]["records"] == 1
    assert read_jsonl(target / "iter_2" / "audit.jsonl") == read_jsonl(run_dir / "iter_2" / "audit.jsonl")


def test_restore_refuses_a_prompt_that_rebuilds_differently(published_run, tmp_path, data_dir):
    _, published = published_run
    edited = tmp_path / "edited"
    shutil.copytree(published, edited)
    pairs = edited / "iter_2" / "pairs.jsonl"
    rows = read_jsonl(pairs)
    rows[0]["prompt_template"] = rows[0]["prompt_template"].replace("Step", "Stage", 1)  # another prompt code
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match="rebuilt here differs"):
        restore_run(edited, tmp_path / "r", data_dir=str(data_dir), log=lambda msg: None)


def test_a_training_published_mid_way_continues_from_its_checkpoint(tmp_path, tiny_model_dir, data_dir, monkeypatch):
    """A session that ends mid-SFT keeps the published checkpoint: the restored run trains on from its step."""
    import prm_selfreward.train.sft as sft
    from tests.test_train_resume import KillAfter, Killed

    sft_options = {**LORA, "save_steps": 1, "max_steps": 4, "batch_size": 1, "per_device_batch_size": 1}
    config = smoke_config(tiny_model_dir, data_dir, sft=sft_options, iterations=0)
    run_dir, published, target = tmp_path / "run", tmp_path / "published", tmp_path / "restored"
    real = sft.run_trainer

    def killed_at_step_3(trainer, resume_from=None):  # before step 3's checkpoint: step 2's is the latest
        trainer.add_callback(KillAfter(3))
        return real(trainer, resume_from)

    monkeypatch.setattr(sft, "run_trainer", killed_at_step_3)
    with pytest.raises(Killed):
        loop.iterate(loop.prepare_run_dir(run_dir, config, resume=False), run_dir, log=lambda msg: None)
    monkeypatch.setattr(sft, "run_trainer", real)
    publish_run(run_dir, published)
    checkpoint = published / "iter_1" / "train_checkpoint"
    assert {p.name for p in checkpoint.iterdir()} >= {
        "adapter_config.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth",
        "trainer_state.json", "made_by.json"}
    assert not (checkpoint / "training_args.bin").exists()  # no pickles in a published folder
    assert not (checkpoint / "tokenizer.json").exists()  # the base's: the restored run has it

    counts = restore_run(published, target, data_dir=str(data_dir), log=lambda msg: None)
    assert counts["restored"][-1] == "train/M1 (SFT)"
    assert (target / "iter_1" / ".model.trainer" / "checkpoint-2" / "optimizer.pt").is_file()
    loop.iterate(loop.prepare_run_dir(target, config, resume=True), target, log=lambda msg: None)
    result = json.loads((target / "manifest.json").read_text())["stages"]["train/M1 (SFT)"]["result"]
    assert result["resumed_from_step"] == 2 and result["steps"] == 4
    publish_run(target, published)  # M1 is trained now: the checkpoint is no longer published
    assert not checkpoint.exists()
    assert (published / "iter_1" / "model" / "adapter" / "adapter_config.json").is_file()


def test_a_trimmed_run_is_restored_on_its_own_vocabulary_whatever_the_corpus_keeps(tmp_path, tiny_model_dir, data_dir,
                                                                                    monkeypatch):
    """``base_vocab.json`` rebuilds M0 exactly although this machine's corpus (other data, another package
    version) trims to other tokens; a folder published without it is trimmed again, and says so."""
    import prm_selfreward.models.trim as trim

    corpus = ["Step 1: Natalia sold 48/2 = 24 clips in May.", "The final answer is \\boxed{5}."]
    monkeypatch.setattr(trim, "default_corpus", lambda root: list(corpus))
    monkeypatch.setenv("PRM_SR_CACHE_DIR", str(tmp_path / "cache"))
    config = smoke_config(tiny_model_dir, data_dir, model={"trim_vocab": True}, sft=LORA, iterations=0)
    run_dir, published = tmp_path / "run", tmp_path / "published"
    loop.iterate(loop.prepare_run_dir(run_dir, config, resume=False), run_dir, log=lambda msg: None)
    publish_run(run_dir, published)
    base = json.loads((run_dir / "manifest.json").read_text())["base_model"]
    original = trim.read_trim_info(base["path"])["kept_ids"]
    vocab = json.loads((published / "base_vocab.json").read_text())
    assert vocab["kept_ids"] == original and vocab["sha256"] == base["vocabulary_sha256"] == \
        trim.vocabulary_sha256(original)

    # Another machine: another cache, and a corpus that keeps more tokens.
    corpus.append("Natalia sold 72 clips altogether in April and May.")
    monkeypatch.setenv("PRM_SR_CACHE_DIR", str(tmp_path / "cache2"))
    today = trim.read_trim_info(trim.trimmed_model_dir(str(tiny_model_dir), data_dir=data_dir, verbose=False))
    assert today["kept_ids"] != original  # else this test shows nothing
    logs: list[str] = []
    restore_run(published, tmp_path / "restored", data_dir=str(data_dir), log=logs.append)
    restored = loop.RunContext(tmp_path / "restored", config, log=lambda msg: None)
    assert trim.read_trim_info(restored.model_spec(0))["kept_ids"] == original
    rebuilt, trained = _weights(tmp_path / "restored" / "iter_1" / "model"), _weights(run_dir / "iter_1" / "model")
    assert set(rebuilt) == set(trained) and all(torch.equal(rebuilt[k], trained[k]) for k in trained)
    assert json.loads((tmp_path / "restored" / "manifest.json").read_text())["restored"]["base_vocabulary"] == "published"
    assert not any("does not hold M0's trimmed vocabulary" in m for m in logs)

    # Published before base_vocab.json was: today's corpus decides, and the log and the manifest say so.
    (published / "base_vocab.json").unlink()
    logs.clear()
    restore_run(published, tmp_path / "old", data_dir=str(data_dir), log=logs.append)
    assert any("does not hold M0's trimmed vocabulary" in m for m in logs)
    assert json.loads((tmp_path / "old" / "manifest.json").read_text())["restored"]["base_vocabulary"].startswith(
        "trimmed again")
    old = loop.RunContext(tmp_path / "old", config, log=lambda msg: None)
    assert trim.read_trim_info(old.model_spec(0))["kept_ids"] == today["kept_ids"]
