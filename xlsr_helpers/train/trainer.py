"""TrainingArguments on transformers-5 names, the CTC Trainer and its metrics (the callbacks: ``callbacks.py``)."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Callable

from transformers import Trainer

from ..audio import LENGTH_COLUMN, output_frames
from ..config import Config
from ..constants import SAMPLING_RATE
from ..families import resolve
from ..ctc import IGNORED_ID, decode_labels, error_rates, greedy_decode
from ..normalize import primary_metric
from ..precision import resolve_precision
from .adapter_checkpoints import AdapterCheckpointsMixin
from .callbacks import SamplerEpochCallback
from .data import SKIPPED_KEY, DurationBatchSampler, LengthBucketSampler, split_batch
from .distributed import world_size
from .guards import GuardError

# Gradient checkpointing recomputes each layer's forward pass in the backward pass. The reentrant variant (the
# default of older transformers) passes gradients back through a checkpointed layer only when its *inputs* require
# them: with a frozen base (MMS adapters: only the adapters and the head train) that holds only while wav2vec2 marks
# its CNN's output as requiring a gradient, which it stops doing once the feature encoder is frozen; the adapters
# inside the layers then get no gradient at all. The non-reentrant variant does not depend on it: set, not inherited.
CHECKPOINTING_KWARGS = {"use_reentrant": False}
# The tie-breaker of the best checkpoint: early in a run every evaluation may be at WER 1.0 while the CER falls.
TIE_BREAKER = {"wer": "cer", "cer": "wer"}


# --------------------------------------------------------------------------------------------------
# training arguments
# --------------------------------------------------------------------------------------------------
def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def precision_flags(precision: str = "auto") -> dict[str, bool]:
    """The Trainer's ``fp16`` and ``bf16`` flags for PRECISION, by the project's one rule
    (:func:`xlsr_helpers.precision.resolve_precision`: bf16 where the GPU has it natively, fp16 on a T4/V100,
    fp32 on a CPU; an explicit fp16/bf16 without CUDA raises ``PrecisionError``)."""
    name = resolve_precision(precision)
    return {"fp16": name == "fp16", "bf16": name == "bf16"}


def dataloader_workers(setting: int | None) -> int:
    """DATALOADER_WORKERS: the setting when given; else, on a CUDA machine, one worker per two CPU cores (1 on Colab's
    2, at most 4), and 0 on a CPU (workers would take cores from the model).

    The workers decode the clips (issue 14: no decoded copy on disk): ~130-150 clips/s each, measured on this
    project's 2-core machine (``benchmarks/scale.py --loader``). An estimate from arithmetic, not a measurement:
    XLSR-53 trains on ~100 GFLOP per second of audio, so an A100 at ~100 TFLOP/s effective takes ~200 clips of
    5 s per second (a T4 ~40): two workers keep an A100 fed, one a T4.
    """
    if setting is not None:
        return max(0, int(setting))
    if not _cuda_available():
        return 0
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def check_step_settings(cfg: Config) -> None:
    """Settings the Trainer would refuse deep inside, refused here with what to change."""
    if cfg.save_steps % cfg.eval_steps:
        raise GuardError(
            f"SAVE_STEPS={cfg.save_steps} is not a multiple of EVAL_STEPS={cfg.eval_steps}: the best checkpoint "
            "(lowest WER/CER) can only be kept when every checkpoint has an evaluation. Set SAVE_STEPS to a "
            f"multiple of EVAL_STEPS (e.g. {cfg.eval_steps * max(1, round(cfg.save_steps / cfg.eval_steps))}).")
    if str(cfg.gradient_checkpointing).lower() not in ("true", "false", "auto"):
        raise GuardError(f"GRADIENT_CHECKPOINTING must be True, False or \"auto\", not {cfg.gradient_checkpointing!r}.")
    if cfg.max_batch_seconds and cfg.max_batch_seconds < cfg.max_duration_s:
        raise GuardError(
            f"MAX_BATCH_SECONDS={cfg.max_batch_seconds} is shorter than MAX_DURATION_S={cfg.max_duration_s}: the "
            "longest clips could not fit in any batch. Raise MAX_BATCH_SECONDS or lower MAX_DURATION_S.")


def training_arguments(cfg: Config, output_dir: str | Path, **extra):
    """TrainingArguments from the config on transformers-5 names (the recipe's values by default).

    The checkpoint with the lowest WER (CER for languages written without spaces) is kept besides the last one,
    and the final model is that best one (``load_best_model_at_end``). GRADIENT_CHECKPOINTING="auto" starts
    off here; :func:`xlsr_helpers.train.memory.needs_checkpointing` turns it on when the GPU requires it."""
    from transformers import TrainingArguments

    cfg = resolve(cfg)
    check_step_settings(cfg)
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else 0
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        warmup_steps=0.08 if warmup < 0 else warmup,  # < 1 is a ratio of the total steps in transformers 5
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        eval_strategy="steps", eval_steps=cfg.eval_steps,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        logging_strategy="steps", logging_steps=cfg.logging_steps,
        logging_nan_inf_filter=True,  # a skipped non-finite batch is counted by NonFiniteCallback, not averaged in
        load_best_model_at_end=True, metric_for_best_model=primary_metric(cfg.language), greater_is_better=False,
        seed=cfg.seed,
        report_to="none",
        remove_unused_columns=False,  # keep input_length for the length-grouped sampler; the collator ignores it
        length_column_name=LENGTH_COLUMN,
        dataloader_num_workers=dataloader_workers(cfg.dataloader_workers),
        dataloader_pin_memory=_cuda_available(),
        save_only_model=False,  # optimizer and scheduler too: a resume continues exactly
        **precision_flags(cfg.precision),
    )
    if "train_sampling_strategy" in names:  # transformers >= 5
        kwargs["train_sampling_strategy"] = "group_by_length" if cfg.group_by_length else "random"
    else:
        kwargs["group_by_length"] = cfg.group_by_length
    checkpointing = cfg.gradient_checkpointing is True or str(cfg.gradient_checkpointing).lower() == "true"
    prefix = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    kwargs[prefix] = checkpointing
    kwargs[f"{prefix}_kwargs"] = dict(CHECKPOINTING_KWARGS)  # set, not inherited from the version's default
    if world_size() > 1:
        kwargs["ddp_find_unused_parameters"] = False
    kwargs.update(extra)
    return TrainingArguments(**kwargs)


def arguments_table(args) -> list[dict[str, Any]]:
    """The TrainingArguments that matter for a CTC run, as rows (notebook 04 shows them)."""
    names = ("per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate", "warmup_steps",
             "num_train_epochs", "max_steps", "eval_steps", "save_steps", "logging_steps", "save_total_limit",
             "train_sampling_strategy", "group_by_length", "gradient_checkpointing", "activation_checkpointing",
             "dataloader_num_workers", "load_best_model_at_end", "metric_for_best_model", "fp16", "bf16", "seed")
    return [{"argument": name, "value": getattr(args, name)} for name in names if hasattr(args, name)]


# --------------------------------------------------------------------------------------------------
# metrics: greedy decoding of each clip's own frames
# --------------------------------------------------------------------------------------------------
def make_compute_metrics(processor, blank: int | None = None) -> Callable:
    """WER, CER and the empty-prediction share of an evaluation (the argmax ids come from CTCTrainer); ``blank``:
    the model's CTC blank (``ctc.blank_id``; the pad token when not given)."""
    tokenizer = processor.tokenizer

    def compute_metrics(prediction) -> dict[str, float]:
        predictions = greedy_decode(tokenizer, prediction.predictions, blank)
        references = decode_labels(tokenizer, prediction.label_ids)
        return error_rates(references, predictions)

    return compute_metrics


def lengths_of(dataset) -> list[int]:
    """The ``input_length`` column as a list, read at once (transformers 5 would read it item by item)."""
    return dataset.select_columns([LENGTH_COLUMN]).with_format(None)[:][LENGTH_COLUMN]


def wins_tie(metrics: dict[str, float], log_history: list[dict], best_step: int | None, metric: str) -> bool:
    """Whether an evaluation (``metrics``, ``eval_*`` keys) whose ``metric`` equals the best one's so far is better
    by :data:`TIE_BREAKER` (CER for WER, WER for CER) than the best evaluation, read from the log history at
    ``best_step`` (which a resumed run restores). Lower is better for both."""
    tie = TIE_BREAKER.get(metric)
    if tie is None or best_step is None:
        return False
    logged = [entry for entry in log_history if entry.get("step") == best_step and f"eval_{metric}" in entry]
    if not logged or metrics.get(f"eval_{metric}") != logged[-1][f"eval_{metric}"]:
        return False
    ours, theirs = metrics.get(f"eval_{tie}"), logged[-1].get(f"eval_{tie}")
    return ours is not None and theirs is not None and ours < theirs


class CTCTrainer(AdapterCheckpointsMixin, Trainer):
    """Trainer with length-grouped batches (:class:`LengthBucketSampler` over ``input_length``, or
    :class:`DurationBatchSampler` under MAX_BATCH_SECONDS; ``length_sampler``, whose epoch
    :class:`~xlsr_helpers.train.callbacks.SamplerEpochCallback` sets) whose evaluation keeps only the argmax id of
    each frame (not [batch, frames, vocab] floats), with every frame beyond a clip's own marked -100: in-training
    WER/CER do not depend on how clips were batched. Of evaluations with the same WER (CER for languages written
    without spaces) the best is the one with the lower CER (WER), not the first. It counts training batches
    whose loss is not finite (``non_finite_losses``, ``non_finite_streak``), for ``NonFiniteCallback``, and clips
    the collator could not decode (``skipped_clips``: training batches, ``skipped_eval_clips``: evaluations).
    With ``adapter_lang`` (a frozen base: MMS adapters), its checkpoints and saved model hold the trained tensors
    only, with ``base_model`` (MODEL) named beside them (:mod:`~xlsr_helpers.train.adapter_checkpoints`).
    """

    def __init__(self, *args, max_batch_seconds: float = 0.0, train_collator=None, adapter_lang: str | None = None,
                 base_model: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.adapter_lang, self.base_model = adapter_lang, base_model
        self.max_batch_seconds = float(max_batch_seconds or 0.0)
        self.train_collator = train_collator  # training batches only (e.g. speed perturbation); else data_collator
        self.non_finite_losses = 0
        self.non_finite_streak = 0
        self.skipped_clips = 0
        self.skipped_eval_clips = 0
        self.length_sampler = None  # the sampler that orders the training batches, once built
        self.add_callback(SamplerEpochCallback(self))

    def _sampler_seed(self) -> int:
        return self.args.data_seed if self.args.data_seed is not None else self.args.seed

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        strategy = getattr(self.args, "train_sampling_strategy", None)
        grouped = strategy == "group_by_length" or (strategy is None and getattr(self.args, "group_by_length", False))
        if grouped and LENGTH_COLUMN in getattr(dataset, "column_names", []):
            self.length_sampler = LengthBucketSampler(lengths_of(dataset), self.args.train_batch_size,
                                                      seed=self._sampler_seed())
            return self.length_sampler
        return super()._get_train_sampler(train_dataset) if train_dataset is not None else \
            super()._get_train_sampler()

    def get_train_dataloader(self):
        """Training batches through ``train_collator`` when one is given (evaluation keeps ``data_collator``)."""
        if self.train_collator is None:
            return self._train_dataloader()
        collator, self.data_collator = self.data_collator, self.train_collator
        try:  # the DataLoader keeps the collator it was built with
            return self._train_dataloader()
        finally:
            self.data_collator = collator

    def _train_dataloader(self):
        """Under MAX_BATCH_SECONDS: a DataLoader over :class:`DurationBatchSampler` batches (Accelerate shards
        them between processes and replays the epoch on a resume); else the Trainer's own."""
        if not self.max_batch_seconds:
            return super().get_train_dataloader()
        import inspect
        from functools import partial

        from torch.utils.data import DataLoader
        from transformers.trainer_utils import seed_worker

        budget = int(self.max_batch_seconds * SAMPLING_RATE)
        self.length_sampler = DurationBatchSampler(lengths_of(self.train_dataset), budget, seed=self._sampler_seed())
        workers = self.args.dataloader_num_workers
        init = seed_worker  # transformers < 5.x takes the worker id alone
        if "num_workers" in inspect.signature(seed_worker).parameters:
            init = partial(seed_worker, num_workers=workers, rank=self.args.process_index)
        loader = DataLoader(self.train_dataset, batch_sampler=self.length_sampler, collate_fn=self.data_collator,
                            num_workers=workers, pin_memory=self.args.dataloader_pin_memory,
                            worker_init_fn=init if workers else None)
        return self.accelerator.prepare(loader)

    def _determine_best_metric(self, metrics, trial=None) -> bool:
        """The Trainer's rule (a strictly lower WER, or CER, is a new best), and a tie won by :func:`wins_tie`."""
        if super()._determine_best_metric(metrics=metrics, trial=trial):
            return True
        metric = (self.args.metric_for_best_model or "").removeprefix("eval_")
        if self.args.greater_is_better or not wins_tie(metrics, self.state.log_history,
                                                       self.state.best_global_step, metric):
            return False
        if self.args.save_strategy != "no":
            self.state.best_global_step = self.state.global_step
        return True

    def compute_loss(self, model, inputs, *args, **kwargs):
        if SKIPPED_KEY in inputs and model.training:
            self.skipped_clips += int(inputs[SKIPPED_KEY])
        inputs = split_batch(inputs)[0]
        result = super().compute_loss(model, inputs, *args, **kwargs)
        if model.training:
            loss = result[0] if isinstance(result, tuple) else result
            # one host sync per batch: negligible next to a forward and backward pass of a speech encoder
            if math.isfinite(float(loss.detach().float())):
                self.non_finite_streak = 0
            else:
                self.non_finite_losses += 1
                self.non_finite_streak += 1
        return result

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        import torch

        self.skipped_eval_clips += int(inputs.get(SKIPPED_KEY, 0))
        inputs, lengths = split_batch(inputs)
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        if logits is None:
            return loss, logits, labels
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        ids = logits.argmax(dim=-1)
        if lengths is not None:
            unwrapped = self.accelerator.unwrap_model(model)
            frames = output_frames(unwrapped, self.processing_class.feature_extractor, lengths.cpu().numpy())
            frames = torch.as_tensor(frames, device=ids.device)
            outside = torch.arange(ids.shape[1], device=ids.device)[None, :] >= frames[:, None]
            ids = ids.masked_fill(outside, IGNORED_ID)
        return loss, ids, labels
