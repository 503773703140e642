"""train.py: collator, feasibility filter, guards, resume point, metrics, and short real training runs."""

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from xlsr_helpers import ctc, models, tiny
from xlsr_helpers.audio import to_int16
from xlsr_helpers.config import Config
from xlsr_helpers.families import resolve
from xlsr_helpers.train import __main__ as entry
from xlsr_helpers.train import callbacks, checkpoints, curves, data, guards, step, trainer

# Small and fast: a few steps on the synthetic "tiny" corpus (40 train clips).
QUICK = dict(model="tiny", max_steps=4, eval_steps=2, save_steps=2, logging_steps=1, batch_size=4,
             gradient_accumulation_steps=1)


# --------------------------------------------------------------------------------------------------
# fixtures: a run folder with 01-03 done (synthetic tiny corpus, the real step functions)
# --------------------------------------------------------------------------------------------------
def make_run(run_dir: Path, size: str = "tiny", language: str = "tr", **params) -> Config:
    """Run steps 01-03 into ``run_dir`` (the synthetic corpus is cached between runs)."""
    from xlsr_helpers.load import run_load
    from xlsr_helpers.normalize import run_normalize
    from xlsr_helpers.vocab import run_vocab

    cfg = resolve(Config(language=language, run_dir=str(run_dir), data_source="synthetic", synthetic_size=size,
                         model="tiny").updated(**params))
    cfg.save("01_load")
    run_load(cfg)
    run_normalize(cfg)
    run_vocab(cfg)
    return cfg


def copy_run(source: Path, target: Path) -> Path:
    """A fresh run folder with 01-03 of ``source``."""
    target.mkdir(parents=True)
    for name in ("01_load", "02_normalize", "03_vocab", "run.json"):
        src = source / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, target / name)
    return target


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("base") / "run"
    make_run(run)
    return run


@pytest.fixture()
def run_cfg(base_run, tmp_path):
    run = copy_run(base_run, tmp_path / "run")
    return resolve(Config.load(run).updated(run_dir=str(run), **QUICK))


@pytest.fixture(scope="module")
def processor(base_run):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(str(base_run / "03_vocab" / "processor"))


def tiny_model(processor, **overrides):
    from transformers import Wav2Vec2ForCTC

    tok = processor.tokenizer
    values = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id)
    values.update(overrides)
    return Wav2Vec2ForCTC(tiny.tiny_config(**values))


# --------------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------------
def test_tiny_model_is_small_xlsr_shaped(processor):
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    cfg = resolve(Config(model="tiny"))
    model = models.build_model(cfg, processor, log=lambda *a: None)
    c = model.config
    params = models.count_parameters(model)
    assert 0.55e6 < params["total"] < 0.65e6 and 0.45e6 < params["trainable"] < 0.5e6
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (128, 3, 4, 256)
    assert c.feat_extract_norm == "layer" and c.do_stable_layer_norm
    assert c.vocab_size == len(processor.tokenizer) and c.pad_token_id == processor.tokenizer.pad_token_id
    assert c.ctc_loss_reduction == "mean" and c.ctc_zero_infinity
    assert c.layerdrop == 0.0 and c.mask_time_prob == 0.05
    assert not any(p.requires_grad for p in model.wav2vec2.feature_extractor.parameters()), "encoder frozen"
    # XLSR's frame arithmetic: 400-sample receptive field, 320-sample hop -> the same output lengths
    xlsr = Wav2Vec2ForCTC(Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=16, conv_dim=(4,) * 7))
    lengths = torch.arange(400, 400_000, 997)
    assert torch.equal(model._get_feat_extract_output_lengths(lengths), xlsr._get_feat_extract_output_lengths(lengths))


def test_tiny_front_end_is_a_filterbank(processor):
    """A pure tone lights up the band of its frequency: low tones low bands, high tones high bands."""
    model = models.build_model(resolve(Config(model="tiny")), processor, log=lambda *a: None)
    t = np.arange(16000) / 16000
    peaks = []
    for frequency in (200, 500, 1000, 2000, 4000):
        tone = torch.tensor(np.sin(2 * np.pi * frequency * t), dtype=torch.float32)[None]
        with torch.no_grad():
            bands = model.wav2vec2.feature_extractor(tone)[0].mean(dim=1)
        peaks.append(int(bands.argmax()))
        assert bands.max() > 3 * bands.median(), "a clear peak"
    assert peaks == sorted(peaks) and len(set(peaks)) == 5, peaks
    with pytest.raises(ValueError, match="tiny layout"):
        tiny.tiny_filterbank_(tiny_model(processor, conv_dim=(64,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2),
                                      conv_stride=(5, 2, 2, 2, 2, 2, 2)))


def test_from_pretrained_with_a_ctc_head_of_another_size(processor, tmp_path):
    """Re-fine-tuning a model fine-tuned on another vocabulary: the head is replaced, the body kept."""
    from transformers import Wav2Vec2ForCTC

    other = Wav2Vec2ForCTC(tiny.tiny_config(vocab_size=7, pad_token_id=6))
    other.save_pretrained(tmp_path / "other")
    cfg = resolve(Config(model=str(tmp_path / "other"), layerdrop=0.0, gradient_checkpointing=False))
    model = models.build_model(cfg, processor, log=lambda *a: None)
    assert model.lm_head.out_features == len(processor.tokenizer) != 7
    assert model.config.pad_token_id == processor.tokenizer.pad_token_id
    assert model.config.attention_dropout == 0.1 and model.config.layerdrop == 0.0
    torch.testing.assert_close(model.wav2vec2.encoder.layers[0].attention.q_proj.weight,
                               other.wav2vec2.encoder.layers[0].attention.q_proj.weight)
    guards.check_model(model, processor, log=lambda *a: None)


def test_layerdrop_is_switched_off_under_ddp(processor):
    messages = []
    cfg = resolve(Config(model="tiny", layerdrop=0.1))
    assert models.model_overrides(cfg, processor, world_size=1, log=messages.append)["layerdrop"] == 0.1
    assert models.model_overrides(cfg, processor, world_size=2, log=messages.append)["layerdrop"] == 0.0
    assert messages and "DistributedDataParallel" in messages[0]


# --------------------------------------------------------------------------------------------------
# guards
# --------------------------------------------------------------------------------------------------
def test_guard_vocabulary_mismatch(processor):
    tok = processor.tokenizer
    with pytest.raises(guards.GuardError, match="vocab_size"):
        guards.check_vocabulary(tiny_model(processor, vocab_size=len(tok) + 3), processor)
    with pytest.raises(guards.GuardError, match="pad_token_id"):
        guards.check_vocabulary(tiny_model(processor, pad_token_id=0), processor)
    guards.check_vocabulary(tiny_model(processor), processor)


def test_guard_loss_reduction(processor):
    with pytest.raises(guards.GuardError, match="mean"):
        guards.check_loss_reduction(tiny_model(processor, ctc_loss_reduction="sum"))
    guards.check_loss_reduction(tiny_model(processor))


def test_guard_attention_mask_is_switched_on_for_layer_norm_encoders(processor):
    import copy

    proc = copy.deepcopy(processor)
    layer = tiny_model(proc)
    proc.feature_extractor.return_attention_mask = False
    with pytest.raises(guards.GuardError, match="return_attention_mask=False"):
        guards.check_attention_mask(layer, proc, fix=False)
    messages = []
    assert guards.check_attention_mask(layer, proc, fix=True, log=messages.append)
    assert proc.feature_extractor.return_attention_mask is True and "'layer'" in messages[0]
    assert not guards.check_attention_mask(layer, proc, fix=False)
    # A group-norm encoder keeps what its checkpoint's preprocessor_config.json says, either way.
    group = tiny_model(proc, feat_extract_norm="group", do_stable_layer_norm=False)
    for setting in (True, False):
        proc.feature_extractor.return_attention_mask = setting
        assert not guards.check_attention_mask(group, proc, fix=False)


def test_guard_input_kind_and_same_model(processor, tmp_path):
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertProcessor

    w2v_bert_processor = Wav2Vec2BertProcessor(feature_extractor=SeamlessM4TFeatureExtractor(),
                                               tokenizer=processor.tokenizer)
    with pytest.raises(guards.GuardError, match="'input_features' but the model reads 'input_values'"):
        guards.check_input_kind(tiny_model(processor), w2v_bert_processor)
    guards.check_input_kind(tiny_model(processor), processor)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"model": "tiny"}))
    guards.check_same_model("tiny", report)
    with pytest.raises(guards.GuardError, match="Run 03_vocab again with MODEL='facebook/w2v-bert-2.0'"):
        guards.check_same_model("facebook/w2v-bert-2.0", report)


def test_training_arguments_use_transformers_5_names(tmp_path):
    args = trainer.training_arguments(resolve(Config(model="tiny")), tmp_path)
    assert args.eval_strategy == "steps" and args.save_strategy == "steps"
    assert args.train_sampling_strategy == "group_by_length" and args.length_column_name == "input_length"
    assert args.warmup_steps == 0.08, "WARMUP_STEPS=-1 means 8 % of the steps"
    assert args.learning_rate == 5e-3 and args.per_device_train_batch_size == 8
    assert args.gradient_accumulation_steps == 1 and args.num_train_epochs == 30
    assert args.remove_unused_columns is False
    assert args.load_best_model_at_end and args.metric_for_best_model == "wer" and args.greater_is_better is False
    assert args.dataloader_num_workers == 0, "no data-loader workers on a CPU"
    seed = trainer.training_arguments(resolve(Config()), tmp_path)
    assert (seed.learning_rate, seed.warmup_steps, seed.num_train_epochs, seed.eval_steps, seed.save_steps,
            seed.save_total_limit, seed.gradient_accumulation_steps) == (3e-4, 500, 30, 400, 400, 2, 2)
    assert resolve(Config()).gradient_checkpointing == "auto" and not seed.gradient_checkpointing, \
        "auto starts off; Training.choose_checkpointing measures"
    assert trainer.training_arguments(resolve(Config(gradient_checkpointing=True)), tmp_path).gradient_checkpointing
    chinese = trainer.training_arguments(resolve(Config(model="tiny", language="zh-CN")), tmp_path)
    assert chinese.metric_for_best_model == "cer", "languages written without spaces keep the best CER"
    random_order = trainer.training_arguments(resolve(Config(model="tiny", group_by_length=False)), tmp_path)
    assert random_order.train_sampling_strategy == "random"


# --------------------------------------------------------------------------------------------------
# feasibility
# --------------------------------------------------------------------------------------------------
def _rows(rows):
    from datasets import Dataset

    return Dataset.from_dict({
        "input_length": [r[0] for r in rows], "labels": [r[1] for r in rows], "problem": [r[2] for r in rows]})


def test_feasibility_drops_and_counts(processor):
    model = tiny_model(processor)  # 1 s = 49 frames; mask_time_length 10
    frames_1s = 49
    rows = _rows([
        (16000, [1, 2, 3], ""),                          # fine
        (16000, [1] * frames_1s, ""),                    # 49 labels but 48 blanks needed between repeats
        (16000, [1, 2] * 24, ""),                        # 48 distinct neighbours: fits in 49 frames
        (16000, [1, 2] * 25, ""),                        # 50 labels > 49 frames
        (3000, [1], ""),                                 # 9 frames < mask span of 10
        (16000 * 30, [1, 2], ""),                        # longer than max duration (20 s)
        (0, [], "undecodable: RuntimeError: x"),
        (16000, [], "empty transcript"),
    ])
    kept, counts, examples = data.feasibility(rows, model, processor.feature_extractor, max_duration_s=20.0)
    assert list(kept["input_length"]) == [16000, 16000]
    assert counts == {"too_few_frames_for_labels": 2, "shorter_than_time_mask": 1, "too_long": 1,
                      "undecodable": 1, "empty_transcript": 1}
    assert examples["too_few_frames_for_labels"][0]["frames"] == frames_1s
    no_mask = tiny_model(processor, mask_time_prob=0.0)
    kept, counts, _ = data.feasibility(rows, no_mask, processor.feature_extractor, max_duration_s=0)
    assert "shorter_than_time_mask" not in counts and "too_long" not in counts


# --------------------------------------------------------------------------------------------------
# collator and metrics
# --------------------------------------------------------------------------------------------------
def test_collator_makes_model_inputs_from_samples_and_masks_label_padding(processor):
    rng = np.random.default_rng(0)
    clips = [rng.normal(0.1, 0.2, 5 * 320).astype(np.float32), rng.normal(-0.2, 0.3, 8 * 320).astype(np.float32)]
    features = [
        {"samples": to_int16(clips[0]), "labels": [3, 4], "input_length": len(clips[0]), "id": "a"},
        {"samples": to_int16(clips[1]), "labels": [5, 6, 7, 8], "input_length": len(clips[1]), "id": "b"},
    ]
    batch = data.DataCollatorCTCWithPadding(processor)(features)
    assert batch["input_values"].shape == (2, 8 * 320)
    assert batch["input_values"][0, 5 * 320:].eq(0).all(), "audio padded with zeros"
    first = batch["input_values"][0, : 5 * 320]
    assert abs(float(first.mean())) < 1e-3 and abs(float(first.std()) - 1) < 1e-2, "normalized on its own samples"
    assert batch["attention_mask"].tolist() == [[1] * 5 * 320 + [0] * 3 * 320, [1] * 8 * 320]
    assert batch["labels"].tolist() == [[3, 4, -100, -100], [5, 6, 7, 8]]
    assert batch[data.INPUT_LENGTHS_KEY].tolist() == [5 * 320, 8 * 320]
    assert set(batch) == {"input_values", "attention_mask", "labels", data.INPUT_LENGTHS_KEY}
    import copy

    no_mask = copy.deepcopy(processor)
    no_mask.feature_extractor.return_attention_mask = False
    unmasked = data.DataCollatorCTCWithPadding(no_mask)(features)
    assert "attention_mask" not in unmasked
    # Without a mask, each clip is still normalized over its own samples only (not over the padding).
    torch.testing.assert_close(unmasked["input_values"][0, : 5 * 320], first)


def test_collator_makes_w2v_bert_features(processor):
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertProcessor

    w2v_bert = Wav2Vec2BertProcessor(feature_extractor=SeamlessM4TFeatureExtractor(), tokenizer=processor.tokenizer)
    features = [{"samples": to_int16(np.random.default_rng(n).normal(0, 0.1, n)), "labels": [3]} for n in (16000, 8000)]
    batch = data.DataCollatorCTCWithPadding(w2v_bert)(features)
    assert batch["input_features"].shape == (2, 49, 160), "80 mel bins, two frames stacked: 160 values per 20 ms"
    assert batch["attention_mask"].sum(-1).tolist() == [49, 24]


def test_metrics_keep_doubled_letters(processor):
    tok = processor.tokenizer
    pad = tok.pad_token_id
    ids = {c: tok.convert_tokens_to_ids(c) for c in "ale"}
    word = [ids["a"], ids["l"], ids["l"], ids["e"]]  # "alle"
    labels = np.array([word + [-100], word + [-100]])
    assert ctc.decode_labels(tok, labels) == ["alle", "alle"], "labels: no merging of the doubled l"
    good = [ids["a"], ids["l"], pad, ids["l"], ids["e"], ids["e"], -100]  # blank between the two l
    merged = [ids["a"], ids["l"], ids["l"], ids["e"], pad, -100, -100]  # CTC merges ll -> l
    assert ctc.greedy_decode(tok, np.array([good, merged])) == ["alle", "ale"]

    class Prediction:
        predictions = np.array([good, merged])
        label_ids = labels

    metrics = trainer.make_compute_metrics(processor)(Prediction)
    assert metrics["cer"] == pytest.approx(1 / 8)
    assert metrics["wer"] == pytest.approx(1 / 2)
    assert metrics["empty_share"] == 0.0


def test_empty_prediction_share():
    m = ctc.error_rates(["bir iki", "üç", "dört", ""], ["bir iki", "", "", "inserted"])
    assert m["empty_share"] == pytest.approx(2 / 4)
    assert m["wer"] == pytest.approx(3 / 4), "two deletions and one insertion over four reference words"
    assert np.isnan(ctc.error_rates([""], ["a"])["wer"])


def test_evaluation_decodes_only_each_clips_own_frames(run_cfg):
    """In-training WER/CER must not depend on how clips are batched: frames beyond a clip's own are -100."""
    training = step.Training(run_cfg, log=lambda *a: None)
    training.check_outputs()
    training.load()
    training.build_model()
    training.check()
    training.prepare()
    trainer_ = training.make_trainer()
    trainer_.model.eval()  # as in Trainer.evaluate (no dropout, no masking)
    eval_set = training.prepared["eval"]
    rows = [eval_set[i] for i in range(4)]
    batch = data.DataCollatorCTCWithPadding(training.processor)(rows)
    _, ids, _ = trainer_.prediction_step(trainer_.model, dict(batch), prediction_loss_only=False)
    frames = training.model._get_feat_extract_output_lengths(batch[data.INPUT_LENGTHS_KEY])
    for row, n in zip(ids, frames):
        assert (row[:n] >= 0).all() and (row[n:] == ctc.IGNORED_ID).all()
    alone = [trainer_.prediction_step(trainer_.model, dict(data.DataCollatorCTCWithPadding(training.processor)([r])),
                                      prediction_loss_only=False)[1][0] for r in rows]
    together = ctc.greedy_decode(training.processor.tokenizer, ids)
    assert together == [ctc.greedy_decode(training.processor.tokenizer, [a])[0] for a in alone]


# --------------------------------------------------------------------------------------------------
# length-grouped batches
# --------------------------------------------------------------------------------------------------
def test_length_bucket_sampler(tmp_path):
    rng = np.random.default_rng(0)
    lengths = rng.integers(16000, 160000, 1000).tolist()  # 1-10 s
    sampler = data.LengthBucketSampler(lengths, batch_size=16, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(1000)) and len(sampler) == 1000
    assert first[:16].count(int(np.argmax(lengths))) == 1, "the longest clip is in the first batch"
    assert list(data.LengthBucketSampler(lengths, 16, seed=3)) == first, "same seed and epoch: same order (DDP, resume)"
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(second) == list(range(1000))
    assert max(lengths[i] for i in first[-(1000 % 16):]) < np.percentile(lengths, 5), "partial batch: shortest"

    def padding(order):
        padded = real = 0
        for k in range(0, len(order) - len(order) % 16, 16):
            batch = [lengths[i] for i in order[k:k + 16]]
            padded, real = padded + max(batch) * 16, real + sum(batch)
        return 1 - real / padded

    assert padding(first) < 0.05 < padding(rng.permutation(1000).tolist())
    # every full batch is contiguous in sorted order (up to the noise): max/min ratio stays small
    for k in range(0, 992, 16):
        batch = [lengths[i] for i in first[k:k + 16]]
        assert max(batch) / min(batch) < 1.25


def test_trainer_uses_length_buckets_from_the_column(run_cfg):
    training = step.Training(run_cfg, log=lambda *a: None)
    training.load()
    training.build_model()
    training.prepare()
    trainer = training.make_trainer()
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, data.LengthBucketSampler) and sampler.batch_size == run_cfg.batch_size
    assert sampler.lengths.tolist() == list(training.prepared["train"]["input_length"])
    assert trainer.length_sampler is sampler, "kept, for SamplerEpochCallback (tests/test_resume.py)"
    assert any(isinstance(c, callbacks.SamplerEpochCallback) for c in trainer.callback_handler.callbacks)


# --------------------------------------------------------------------------------------------------
# real (short) training runs on the tiny synthetic corpus
# --------------------------------------------------------------------------------------------------
def test_training_writes_a_model_that_loads_alone(run_cfg):
    from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

    report = step.run_train(run_cfg, log=lambda *a: None)
    train_dir = run_cfg.step_dir("04_train")
    assert report["global_step"] == 4 and report["stopped_by"] == "completed"
    assert report["rows_kept"]["train"] > 0 and report["parameters"]["total"] > 0
    assert {"wer", "cer", "empty_share", "loss"} <= set(report["eval"])
    assert len(curves.eval_history(report)) >= 2, "evaluated at steps 2 and 4"
    assert (train_dir / "curves.png").stat().st_size > 10_000
    saved = json.loads((train_dir / "report.json").read_text())
    assert saved["global_step"] == 4 and saved["history"]
    # the final model and every checkpoint load alone (weights + processor in one folder)
    for folder in [run_cfg.model_dir] + [p for _, p in checkpoints.list_checkpoints(train_dir)]:
        model = Wav2Vec2ForCTC.from_pretrained(str(folder))
        proc = Wav2Vec2Processor.from_pretrained(str(folder))
        assert model.config.vocab_size == len(proc.tokenizer)
        inputs = proc(np.zeros(16000, dtype=np.float32), sampling_rate=16000, return_tensors="pt")
        assert model(**inputs).logits.shape[-1] == len(proc.tokenizer)
    assert len(checkpoints.list_checkpoints(train_dir)) == 2, "save_total_limit=2"
    assert all(checkpoints.is_complete_checkpoint(p) for _, p in checkpoints.list_checkpoints(train_dir)), \
        "the Trainer writes every file that the completeness check asks for"
    # a finished model is never replaced silently
    with pytest.raises(checkpoints.ModelExistsError, match="OVERWRITE_MODEL"):
        step.run_train(run_cfg, log=lambda *a: None)
    mtime = (run_cfg.model_dir / "config.json").stat().st_mtime_ns
    step.run_train(run_cfg.updated(overwrite_model=True, resume="never"), log=lambda *a: None)
    assert (run_cfg.model_dir / "config.json").stat().st_mtime_ns != mtime
    assert not (train_dir / "model.tmp").exists()


@pytest.mark.parametrize("frozen_steps, encoder_changes", [(4, False), (2, True)])
def test_freeze_encoder_steps_trains_only_the_head_first(run_cfg, processor, frozen_steps, encoder_changes):
    """FREEZE_ENCODER_STEPS=N: after N updates only lm_head has moved from the initial weights (drawn from SEED,
    so build_model gives them again); after more updates than N the encoder has moved too."""
    from safetensors.torch import load_file

    initial = models.build_model(run_cfg, processor, log=lambda *a: None).state_dict()
    report = step.run_train(run_cfg.updated(freeze_encoder_steps=frozen_steps), log=lambda *a: None)
    assert report["global_step"] == 4
    trained = load_file(str(run_cfg.model_dir / "model.safetensors"))
    moved = {name for name, tensor in trained.items() if not torch.equal(tensor, initial[name])}
    assert {"lm_head.weight", "lm_head.bias"} <= moved
    encoder_moved = {name for name in moved if not name.startswith("lm_head.")}
    assert bool(encoder_moved) == encoder_changes, sorted(encoder_moved)[:5]


def test_time_limit_still_saves_and_evaluates(run_cfg):
    report = step.run_train(run_cfg.updated(max_steps=500, max_train_minutes=0.001), log=lambda *a: None)
    assert report["stopped_by"] == "time_limit" and report["global_step"] < 500
    assert (run_cfg.model_dir / "model.safetensors").exists()
    assert "cer" in report["eval"]


def test_step_settings_the_trainer_would_refuse_are_refused_first(tmp_path):
    with pytest.raises(guards.GuardError, match="multiple of EVAL_STEPS"):
        trainer.training_arguments(resolve(Config(model="tiny", eval_steps=100, save_steps=250)), tmp_path)
    with pytest.raises(guards.GuardError, match="GRADIENT_CHECKPOINTING"):
        trainer.training_arguments(resolve(Config(model="tiny", gradient_checkpointing="sometimes")), tmp_path)
    with pytest.raises(guards.GuardError, match="MAX_BATCH_SECONDS"):
        trainer.training_arguments(resolve(Config(model="tiny", max_batch_seconds=10.0)), tmp_path)


def test_data_loader_workers_only_where_they_help(monkeypatch):
    assert trainer.dataloader_workers(3) == 3, "a setting is kept"
    monkeypatch.setattr(trainer, "_cuda_available", lambda: False)
    assert trainer.dataloader_workers(None) == 0
    monkeypatch.setattr(trainer, "_cuda_available", lambda: True)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert trainer.dataloader_workers(None) == 1, "Colab's 2 cores: one decodes clips, one drives the GPU"
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert trainer.dataloader_workers(None) == 4
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert trainer.dataloader_workers(None) == 4


def _poison_losses(monkeypatch, batches):
    """Make the training loss NaN for the given training batches (counted from 1)."""
    seen = {"batches": 0}

    class Poisoned(trainer.CTCTrainer):
        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training:
                seen["batches"] += 1
                if seen["batches"] in batches:
                    inputs = dict(inputs, input_values=inputs["input_values"] * float("nan"))
            return super().compute_loss(model, inputs, *args, **kwargs)

    monkeypatch.setattr(step, "CTCTrainer", Poisoned)
    return seen


def test_one_non_finite_batch_is_skipped_and_training_goes_on(run_cfg, monkeypatch):
    seen = _poison_losses(monkeypatch, {2})
    report = step.run_train(run_cfg, log=lambda *a: None)
    assert seen["batches"] == 4 and report["stopped_by"] == "completed" and report["global_step"] == 4
    assert report["non_finite_losses"] == 1 and report["skipped_updates"] == 1
    from safetensors.torch import load_file

    weights = load_file(str(run_cfg.model_dir / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values()), "the skipped update left no NaN behind"
    assert all(math.isfinite(entry["loss"]) for entry in report["history"] if "loss" in entry)


def test_persistent_non_finite_losses_stop_with_a_clear_message(run_cfg, monkeypatch):
    _poison_losses(monkeypatch, set(range(3, 100)))
    with pytest.raises(callbacks.NonFiniteLossError, match="5 batches in a row"):
        step.run_train(run_cfg.updated(max_steps=20, eval_steps=20, save_steps=20), log=lambda *a: None)
    train_dir = run_cfg.step_dir("04_train")
    assert not checkpoints.list_checkpoints(train_dir), "no checkpoint of the failing run"
    assert not run_cfg.model_dir.exists()
    report = json.loads((train_dir / "report.json").read_text())
    assert report["stopped_by"] == "non_finite_loss" and report["global_step"] == 7
    assert "LEARNING_RATE" in report["failure"] and "RESUME=auto" in report["failure"]


def test_non_finite_weights_stop_at_once(processor):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    callback = callbacks.NonFiniteCallback()
    model = tiny_model(processor)
    args = TrainingArguments(output_dir="unused", report_to="none")
    control = TrainerControl(should_log=True)
    callback.on_step_end(args, TrainerState(global_step=3), control, model=model)
    assert not control.should_training_stop, "finite weights: nothing to do"
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("inf")
    callback.on_step_end(args, TrainerState(global_step=4), control, model=model)
    assert control.should_training_stop and not control.should_save
    assert callback.reason == "non_finite_weights" and "lm_head.weight" in callback.failure


def test_non_finite_gradients_are_dropped_before_the_update(processor):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    callback = callbacks.NonFiniteCallback()
    model = tiny_model(processor)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    model.lm_head.bias.grad[0] = float("nan")
    args = TrainingArguments(output_dir="unused", report_to="none")
    callback.on_pre_optimizer_step(args, TrainerState(), TrainerControl(), model=model)
    assert all(p.grad is None for p in model.parameters()) and callback.skipped_updates == 1
    for _ in range(callbacks.SKIPPED_UPDATE_PATIENCE - 1):
        model.lm_head.bias.grad = torch.full_like(model.lm_head.bias, float("inf"))
        callback.on_pre_optimizer_step(args, TrainerState(), TrainerControl(), model=model)
    control = TrainerControl()
    callback.on_step_end(args, TrainerState(global_step=30), control, model=model)
    assert control.should_training_stop and callback.reason == "non_finite_gradients"
    assert "bf16" in callback.failure


def test_sanity_check_fails_when_nothing_can_be_learned(run_cfg):
    training = step.Training(run_cfg, log=lambda *a: None)
    training.load()
    training.build_model()
    training.prepare()
    before = {k: v.clone() for k, v in training.model.state_dict().items()}
    with pytest.raises(guards.GuardError, match="SANITY_CHECK failed"):
        guards.sanity_check(training.model, training.processor, training.prepared["train"], learning_rate=0.0,
                       max_steps=3, log=lambda *a: None)
    result = guards.sanity_check(training.model, training.processor, training.prepared["train"], learning_rate=0.0,
                            max_steps=3, log=lambda *a: None, raise_on_failure=False)
    assert not result["passed"] and result["cer_after"] >= 0.5 and result["steps"] == 3
    after = training.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the model itself is untouched"


@pytest.mark.slow  # trains until it learns (~50 s): the slow tier, so that the unit tier stays within 3 minutes
def test_sanity_check_passes_for_a_setup_that_learns(run_cfg):
    report = step.run_train(run_cfg.updated(sanity_check=True, max_steps=2, eval_steps=2, save_steps=2),
                         log=lambda *a: None)
    check = report["sanity_check"]
    assert check["passed"] and check["cer_after"] < 0.5 < check["cer_before"] and check["steps"] <= 300
    assert check["loss_last"] < 0.2 * check["loss_first"]


def test_missing_inputs_are_named(tmp_path):
    cfg = resolve(Config(run_dir=str(tmp_path / "empty"), model="tiny"))
    with pytest.raises(FileNotFoundError, match="02_normalize"):
        step.Training(cfg, log=lambda *a: None).load()


def test_train_main_reads_the_run_folder(run_cfg, capsys):
    assert entry.train_main(["--run-dir", str(tmp := run_cfg.run_path), "-p", "MAX_STEPS=2", "-p", "EVAL_STEPS=2",
                         "-p", "SAVE_STEPS=2", "-p", "BATCH_SIZE=4", "-p", "GRADIENT_ACCUMULATION_STEPS=1",
                         "-p", "MODEL=tiny"]) == 0
    assert "Done: step 2" in capsys.readouterr().out
    assert json.loads((tmp / "run.json").read_text())["steps"]["04_train"]["max_steps"] == 2
    assert entry.train_main(["--run-dir", str(tmp), "-p", "MODEL=tiny"]) == 1  # model exists, no overwrite
    assert "OVERWRITE_MODEL" in capsys.readouterr().err
    assert entry.train_main(["--run-dir", str(tmp.parent / "nothing")]) == 2


# --------------------------------------------------------------------------------------------------
# issue 10: duration batches, dev subset, best checkpoint, disk budget, checkpointing auto, Drive
# --------------------------------------------------------------------------------------------------
def test_duration_batches_stay_within_their_budget_with_little_padding():
    rng = np.random.default_rng(0)
    lengths = (np.clip(rng.lognormal(np.log(5.0), 0.35, 2000), 1.0, 10.0) * 16000).astype(int)
    budget = 60 * 16000
    sampler = data.DurationBatchSampler(lengths, budget, seed=1)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths))), "every clip once per epoch"
    assert all(len(b) * max(lengths[b]) <= budget for b in batches), "no batch over its budget"
    assert int(np.argmax(lengths)) in batches[0], "the longest clip comes first"
    assert sampler.padding_share() <= 0.05
    sizes = [len(b) for b in batches]
    assert max(sizes) >= 2 * min(sizes), "short clips travel in larger batches"
    sampler.set_epoch(1)
    again = list(sampler)
    assert len(again) == len(batches) and again != batches and again[0] == batches[0]
    assert list(data.DurationBatchSampler(lengths, budget, seed=1)) == batches, "the order depends on (seed, epoch)"
    with pytest.raises(ValueError, match="MAX_BATCH_SECONDS"):
        data.DurationBatchSampler([90 * 16000], budget)


def test_training_with_duration_batches(run_cfg):
    report = step.run_train(run_cfg.updated(max_batch_seconds=20.0), log=lambda *a: None)
    assert report["stopped_by"] == "completed" and report["global_step"] == 4


def test_dev_subset_during_training_and_all_of_it_at_the_end(run_cfg):
    training = step.Training(run_cfg.updated(eval_max_samples=3), log=lambda *a: None)
    training.check_outputs()
    training.load()
    training.build_model()
    training.prepare()
    training.make_trainer()
    scored = []
    original = training.trainer.compute_metrics
    training.trainer.compute_metrics = lambda p: scored.append(len(p.label_ids)) or original(p)
    training.train()
    report = training.finish()
    assert report["eval_rows_during_training"] == 3 and len(training.eval_full) > 3
    assert scored == [3, 3, len(training.eval_full)], "steps 2 and 4 on the subset, the final one on all"
    lengths = trainer.lengths_of(training.eval_full)
    assert lengths == sorted(lengths, reverse=True), "sorted: batches of similar length"
    subset = trainer.lengths_of(training.prepared["eval"])
    assert subset == sorted(subset, reverse=True) and set(subset) <= set(lengths)
    again = step.eval_subset(training.eval_full, 3, seed=run_cfg.seed)
    assert trainer.lengths_of(again) == subset, "the same subset at every evaluation"


def test_the_final_model_is_the_best_checkpoint(run_cfg):
    from safetensors.torch import load_file

    report = step.run_train(run_cfg.updated(max_steps=8, eval_steps=2, save_steps=2, save_total_limit=1),
                            log=lambda *a: None)
    evals = [e for e in report["history"] if "eval_wer" in e][:-1]  # the last one is the final evaluation
    best = min(evals, key=lambda e: (e["eval_wer"], e["eval_cer"]))  # equal WERs: the lower CER, then the first
    assert report["best_metric"] == best["eval_wer"]
    assert report["best_checkpoint"].endswith(f"checkpoint-{best['step']}")
    kept = {path.name for _, path in checkpoints.list_checkpoints(run_cfg.step_dir("04_train"))}
    assert f"checkpoint-{best['step']}" in kept, "SAVE_TOTAL_LIMIT=1 rotates the others out, never the best"
    final = load_file(str(run_cfg.model_dir / "model.safetensors"))
    chosen = load_file(str(Path(report["best_checkpoint"]) / "model.safetensors"))
    assert all(torch.equal(final[name], chosen[name]) for name in final)


def test_disk_budget_refuses_a_run_whose_checkpoints_do_not_fit(run_cfg, monkeypatch, processor):
    import shutil as shutil_module
    from collections import namedtuple

    model = tiny_model(processor)
    sizes = checkpoints.checkpoint_bytes(model)
    weights = sum(p.numel() * 4 for p in model.parameters())
    assert sizes["weights"] == weights
    assert sizes["optimizer"] == 8 * sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert checkpoints.checkpoints_at_once(2) == 3 and checkpoints.checkpoints_at_once(1) == 3
    assert checkpoints.checkpoints_at_once(1, keep_best=False) == 2
    usage = namedtuple("usage", "total used free")
    needed = 3 * sizes["checkpoint"] + sizes["weights"]
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**12, 0, needed - 1))
    with pytest.raises(checkpoints.DiskBudgetError, match="SAVE_TOTAL_LIMIT cannot lower it"):
        checkpoints.disk_budget(model, run_cfg.step_dir("04_train"), save_total_limit=2)
    with pytest.raises(checkpoints.DiskBudgetError, match=r"set SAVE_TOTAL_LIMIT=2 \(3 at once instead of 5"):
        checkpoints.disk_budget(model, run_cfg.step_dir("04_train"), save_total_limit=4)
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**12, 0, needed))
    assert checkpoints.disk_budget(model, run_cfg.step_dir("04_train"), 2)["needed_gb"] == pytest.approx(needed / 1e9)
    training = step.Training(run_cfg, log=lambda *a: None)
    training.load()
    training.build_model()
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**12, 0, 1000))
    with pytest.raises(checkpoints.DiskBudgetError, match="only 0.0 GB are free"):
        training.check()


def test_xlsr53_checkpoints_on_a_free_drive():
    """The estimate for a real XLSR-53 run (315M weights, CNN frozen), from its architecture."""
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    from benchmarks.gpu_families import XLSR53

    with torch.device("meta"):
        model = Wav2Vec2ForCTC(Wav2Vec2Config(**XLSR53, vocab_size=40))
    model.freeze_feature_encoder()
    sizes = checkpoints.checkpoint_bytes(model)
    assert 1.2e9 < sizes["weights"] < 1.3e9 and 3.6e9 < sizes["checkpoint"] < 3.9e9


def test_checkpointing_auto_is_off_on_a_cpu_and_settings_are_kept(run_cfg):
    training = step.Training(run_cfg.updated(gradient_checkpointing="auto"), log=lambda *a: None)
    training.load()
    training.build_model()
    training.prepare()
    assert training.choose_checkpointing() is False
    assert "cpu" in training.report["gradient_checkpointing"]["why"]
    batch = training.largest_batch()
    longest = max(trainer.lengths_of(training.prepared["train"]))
    # lengths come from the metadata (clip_durations.tsv, in ms); the decoded clip may differ by a few samples
    assert batch["input_values"].shape[0] == run_cfg.batch_size
    assert abs(batch["input_values"].shape[1] - longest) <= 160  # 10 ms
    forced = step.Training(run_cfg.updated(gradient_checkpointing=True), log=lambda *a: None)
    forced.args = trainer.training_arguments(forced.cfg, forced.train_dir)
    assert forced.choose_checkpointing() is True
