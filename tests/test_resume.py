"""What a resumed run relies on: only a complete checkpoint resumes (optimizer, scheduler, random state, the fp16
scaler), an incomplete newest one is skipped with a note; a resumed multi-process run replays its epoch's order;
the best checkpoint, with ties broken by CER, survives the resume."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from xlsr_helpers.config import Config
from xlsr_helpers.train import callbacks, checkpoints, data, step

STATE = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


def _checkpoint(train_dir: Path, step: int, complete: bool = True, weights: str = "model.safetensors",
                lacking: tuple = (), rng: tuple = ("rng_state.pth",), extra: tuple = ()) -> Path:
    """A checkpoint folder as the Trainer writes it (``complete``: weights, state, optimizer, scheduler, random
    state), without the files named in ``lacking``."""
    folder = train_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    names = [weights] + (list(STATE) + list(rng) + list(extra) if complete else [])
    for name in names:
        if name not in lacking:
            (folder / name).write_text(json.dumps({"global_step": step}) if name.endswith(".json") else "x")
    return folder


# --------------------------------------------------------------------------------------------------
# which checkpoint resumes
# --------------------------------------------------------------------------------------------------
def test_resume_point_ignores_partial_checkpoints(tmp_path):
    assert checkpoints.find_resume_checkpoint(tmp_path / "missing", "auto") is None
    _checkpoint(tmp_path, 200)
    _checkpoint(tmp_path, 1000, weights="pytorch_model.bin")
    partial = _checkpoint(tmp_path, 1200, complete=False)  # killed while saving
    (tmp_path / "checkpoint-1400").mkdir()  # killed before anything was written
    (tmp_path / "checkpoint-notanumber").mkdir()
    assert checkpoints.find_resume_checkpoint(tmp_path, "auto").name == "checkpoint-1000", "numeric order, not text order"
    assert checkpoints.find_resume_checkpoint(tmp_path, "never") is None
    assert checkpoints.find_resume_checkpoint(tmp_path, str(tmp_path / "checkpoint-200")).name == "checkpoint-200"
    assert checkpoints.find_resume_checkpoint(tmp_path, "checkpoint-200").name == "checkpoint-200"
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        checkpoints.find_resume_checkpoint(tmp_path, str(partial))
    assert not checkpoints.is_complete_checkpoint(partial)


@pytest.mark.parametrize("lacking", ["optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json",
                                     "model.safetensors"])
def test_a_newest_checkpoint_without_what_a_resume_reads_is_skipped(tmp_path, lacking):
    """On Drive a checkpoint's files upload one by one: without optimizer.pt AdamW would restart from zero
    moments, without scheduler.pt the warm-up from its first step."""
    _checkpoint(tmp_path, 400)
    newest = _checkpoint(tmp_path, 800, lacking=(lacking,))
    what = "model weights" if lacking == "model.safetensors" else lacking
    assert checkpoints.missing_files(newest) == [what]
    assert checkpoints.find_resume_checkpoint(tmp_path, "auto").name == "checkpoint-400"
    assert checkpoints.incomplete_checkpoints(tmp_path) == {"checkpoint-800": [what]}
    with pytest.raises(FileNotFoundError, match=what):
        checkpoints.find_resume_checkpoint(tmp_path, "checkpoint-800")


def test_sharded_weights_need_every_shard(tmp_path):
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    folder = _checkpoint(tmp_path, 10, weights="model.safetensors.index.json", extra=shards[:1])
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": shards[0], "b": shards[1]}}))
    assert checkpoints.missing_files(folder) == [shards[1]]
    (folder / shards[1]).write_text("x")
    assert checkpoints.is_complete_checkpoint(folder)


def test_random_state_of_each_process(tmp_path):
    """torchrun: one rng_state_<rank>.pth per process; a single process's rng_state.pth resumes any run."""
    both = _checkpoint(tmp_path, 1, rng=("rng_state_0.pth", "rng_state_1.pth"))
    assert checkpoints.is_complete_checkpoint(both, world_size=2) and checkpoints.is_complete_checkpoint(both)
    half = _checkpoint(tmp_path, 2, rng=("rng_state_0.pth", "rng_state_1.pth"), lacking=("rng_state_1.pth",))
    assert checkpoints.missing_files(half, world_size=2) == ["rng_state_1.pth"]
    gap = _checkpoint(tmp_path, 3, rng=("rng_state_1.pth",))
    assert checkpoints.missing_files(gap, world_size=1) == ["rng_state_0.pth"]
    single = _checkpoint(tmp_path, 4)
    assert checkpoints.is_complete_checkpoint(single, world_size=2)
    none = _checkpoint(tmp_path, 5, rng=())
    assert checkpoints.missing_files(none) == ["rng_state.pth"]
    assert checkpoints.missing_files(none, world_size=2) == ["rng_state_0.pth", "rng_state_1.pth"]


def test_an_fp16_run_needs_the_scaler_of_its_fp16_checkpoints(tmp_path):
    fp16_run = tmp_path / "fp16"
    _checkpoint(fp16_run, 100, extra=("scaler.pt",))
    _checkpoint(fp16_run, 200)  # its scaler.pt not uploaded yet
    assert checkpoints.find_resume_checkpoint(fp16_run, "auto", fp16=True).name == "checkpoint-100"
    assert checkpoints.incomplete_checkpoints(fp16_run, fp16=True) == {"checkpoint-200": ["scaler.pt"]}
    assert checkpoints.find_resume_checkpoint(fp16_run, "auto", fp16=False).name == "checkpoint-200"
    bf16_run = tmp_path / "bf16"  # an earlier session on an A100 (bf16, no scaler), now a T4 (fp16)
    _checkpoint(bf16_run, 100)
    _checkpoint(bf16_run, 200)
    assert checkpoints.find_resume_checkpoint(bf16_run, "auto", fp16=True).name == "checkpoint-200"


def test_the_step_skips_an_incomplete_newest_checkpoint_with_a_note(tmp_path):
    cfg = Config(run_dir=str(tmp_path / "run"), model="tiny")
    training = step.Training(cfg, log=lambda *a: None)
    _checkpoint(training.train_dir, 4)
    _checkpoint(training.train_dir, 8, lacking=("optimizer.pt", "scheduler.pt"))
    assert training.check_outputs().name == "checkpoint-4"
    assert training.report["resumed_from"].endswith("checkpoint-4")
    note = next(n for n in training.notes if "Skipping" in n)
    assert "checkpoint-8 lacks optimizer.pt, scheduler.pt" in note


# --------------------------------------------------------------------------------------------------
# the epoch's order on a resumed multi-process run
# --------------------------------------------------------------------------------------------------
def _samplers(kind: str):
    lengths = np.random.default_rng(0).integers(16000, 160000, 64).tolist()
    if kind == "length buckets":
        from torch.utils.data import BatchSampler

        sampler = data.LengthBucketSampler(lengths, 4, seed=1)
        return sampler, BatchSampler(sampler, 4, drop_last=False)
    sampler = data.DurationBatchSampler(lengths, 30 * 16000, seed=1)
    return sampler, sampler


@pytest.mark.parametrize("kind", ["length buckets", "duration batches"])
def test_a_resumed_multi_process_run_replays_its_epochs_order(kind):
    """What accelerate and the Trainer build for process 1 of 2 resuming 3 batches into epoch 2: the sampler
    inside SkipBatchSampler(BatchSamplerShard(...)) gets its epoch from SamplerEpochCallback (the Trainer's own
    set_epoch does not reach it there)."""
    from accelerate.data_loader import BatchSamplerShard, SkipBatchSampler
    from transformers import TrainerControl, TrainerState, TrainingArguments

    fresh, fresh_batches = _samplers(kind)
    fresh.set_epoch(2)
    expected = list(BatchSamplerShard(fresh_batches, num_processes=2, process_index=1))[3:]

    sampler, batches = _samplers(kind)  # a new process: epoch 0 until told
    resumed = SkipBatchSampler(BatchSamplerShard(batches, num_processes=2, process_index=1), skip_batches=3)
    assert list(resumed) != expected, "epoch 0's order: what the resumed epoch replayed without the callback"
    args = TrainingArguments(output_dir="unused", report_to="none")
    per_process = len(BatchSamplerShard(batches, num_processes=2, process_index=1))
    state = TrainerState(epoch=2 + 3 / per_process)  # restored from the checkpoint: 3 batches into epoch 2
    callback = callbacks.SamplerEpochCallback(SimpleNamespace(length_sampler=sampler))
    callback.on_epoch_begin(args, state, TrainerControl())
    assert sampler.epoch == 2 and list(resumed) == expected


# --------------------------------------------------------------------------------------------------
# the best checkpoint: ties broken by CER, and known again after a resume
# --------------------------------------------------------------------------------------------------
def test_best_checkpoint_ties_are_broken_by_cer_and_survive_a_resume(tmp_path):
    import torch
    from transformers import TrainerState, TrainingArguments

    from xlsr_helpers.train.trainer import CTCTrainer

    args = TrainingArguments(output_dir=str(tmp_path), metric_for_best_model="wer", greater_is_better=False,
                             save_strategy="steps", report_to="none")
    trainer = CTCTrainer(model=torch.nn.Linear(1, 1), args=args)

    def evaluate(on, global_step, wer, cer) -> bool:
        metrics = {"eval_wer": wer, "eval_cer": cer}
        on.state.global_step = global_step
        on.state.log_history.append({"step": global_step, **metrics})  # the Trainer logs before it compares
        return on._determine_best_metric(metrics=metrics, trial=None)

    assert evaluate(trainer, 2, 1.0, 0.95)
    assert evaluate(trainer, 4, 1.0, 0.80), "WER 1.0 again, CER lower: the new best"
    assert not evaluate(trainer, 6, 1.0, 0.85)
    assert trainer.state.best_global_step == 4 and trainer.state.best_metric == 1.0
    assert not evaluate(trainer, 8, 1.0, 0.80), "equal in both: the first stays"
    assert evaluate(trainer, 10, 0.9, 0.90), "a lower WER wins whatever its CER"
    assert not evaluate(trainer, 12, 0.95, 0.10)

    trainer.state.save_to_json(str(tmp_path / "trainer_state.json"))  # as in checkpoint-12
    resumed = CTCTrainer(model=torch.nn.Linear(1, 1), args=args)
    resumed.state = TrainerState.load_from_json(str(tmp_path / "trainer_state.json"))  # as the Trainer resumes
    assert not evaluate(resumed, 14, 0.9, 0.95), "the best's CER is read back from the log history"
    assert evaluate(resumed, 16, 0.9, 0.50) and resumed.state.best_global_step == 16
