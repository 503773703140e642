"""TrainingArguments on transformers-5 names, the CTC Trainer, its metrics, and the callbacks of step 04."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

from ..audio import LENGTH_COLUMN, output_frames
from ..config import Config
from ..constants import SAMPLING_RATE
from ..families import resolve
from ..ctc import IGNORED_ID, decode_labels, error_rates, greedy_decode
from ..normalize import primary_metric
from .data import SKIPPED_KEY, DurationBatchSampler, LengthBucketSampler, split_batch
from .distributed import log_main, world_size
from .guards import GuardError


class NonFiniteLossError(RuntimeError):
    """Training stopped because losses stayed NaN/infinite, updates kept overflowing, or weights broke."""


# A single non-finite batch is skipped (its update dropped, as fp16's GradScaler does on overflow); training
# stops when it persists. fp16 starts with a loss scale of 2**16 and halves it on each overflow, so a dozen
# skipped updates at the start are normal there: 25 in a row mean the scale fell below 2**-8 and is not coming back.
NON_FINITE_LOSS_PATIENCE = 5  # consecutive training batches with a NaN/inf loss
SKIPPED_UPDATE_PATIENCE = 25  # consecutive updates whose gradients were not finite


# --------------------------------------------------------------------------------------------------
# training arguments
# --------------------------------------------------------------------------------------------------
def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def choose_precision(precision: str = "auto") -> dict[str, bool]:
    """fp16 on CUDA, bf16 where the GPU supports it, fp32 on CPU (and MPS)."""
    import torch

    precision = (precision or "auto").lower()
    cuda = torch.cuda.is_available()
    if precision == "auto":
        if not cuda:
            return {"fp16": False, "bf16": False}
        return {"fp16": False, "bf16": True} if torch.cuda.is_bf16_supported() else {"fp16": True, "bf16": False}
    if precision not in ("fp32", "fp16", "bf16"):
        raise ValueError(f"PRECISION must be auto, fp32, fp16 or bf16; got {precision!r}")
    if precision != "fp32" and not cuda:
        raise GuardError(f"PRECISION={precision} needs a CUDA GPU; use fp32 (or auto) on CPU.")
    return {"fp16": precision == "fp16", "bf16": precision == "bf16"}


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
        **choose_precision(cfg.precision),
    )
    if "train_sampling_strategy" in names:  # transformers >= 5
        kwargs["train_sampling_strategy"] = "group_by_length" if cfg.group_by_length else "random"
    else:
        kwargs["group_by_length"] = cfg.group_by_length
    checkpointing = cfg.gradient_checkpointing is True or str(cfg.gradient_checkpointing).lower() == "true"
    kwargs["activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"] = \
        checkpointing
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


def make_trainer_class():
    from transformers import Trainer

    class CTCTrainer(Trainer):
        """Trainer with length-grouped batches (:class:`LengthBucketSampler` over ``input_length``, or
        :class:`DurationBatchSampler` under MAX_BATCH_SECONDS) whose evaluation keeps only the argmax id of each
        frame (not [batch, frames, vocab] floats), with every frame beyond a clip's own marked -100: in-training
        WER/CER do not depend on how clips were batched. It counts training batches whose loss is not finite
        (``non_finite_losses``, ``non_finite_streak``), for :class:`NonFiniteCallback`, and clips the collator
        could not decode (``skipped_clips``: training batches, ``skipped_eval_clips``: evaluations).
        """

        def __init__(self, *args, max_batch_seconds: float = 0.0, train_collator=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.max_batch_seconds = float(max_batch_seconds or 0.0)
            self.train_collator = train_collator  # training batches only (e.g. speed perturbation); else data_collator
            self.non_finite_losses = 0
            self.non_finite_streak = 0
            self.skipped_clips = 0
            self.skipped_eval_clips = 0

        def _sampler_seed(self) -> int:
            return self.args.data_seed if self.args.data_seed is not None else self.args.seed

        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            strategy = getattr(self.args, "train_sampling_strategy", None)
            grouped = strategy == "group_by_length" or (strategy is None and getattr(self.args, "group_by_length", False))
            if grouped and LENGTH_COLUMN in getattr(dataset, "column_names", []):
                return LengthBucketSampler(lengths_of(dataset), self.args.train_batch_size, seed=self._sampler_seed())
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

            sampler = DurationBatchSampler(lengths_of(self.train_dataset),
                                           int(self.max_batch_seconds * SAMPLING_RATE), seed=self._sampler_seed())
            workers = self.args.dataloader_num_workers
            init = seed_worker  # transformers < 5.x takes the worker id alone
            if "num_workers" in inspect.signature(seed_worker).parameters:
                init = partial(seed_worker, num_workers=workers, rank=self.args.process_index)
            loader = DataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                                num_workers=workers, pin_memory=self.args.dataloader_pin_memory,
                                worker_init_fn=init if workers else None)
            return self.accelerator.prepare(loader)

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

    return CTCTrainer


# --------------------------------------------------------------------------------------------------
# callbacks
# --------------------------------------------------------------------------------------------------
def agreed_max(value: float, device) -> float:
    """The largest ``value`` over all processes (itself without torch.distributed): a decision to stop that
    one process takes alone would leave the others waiting for it forever."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    import torch

    flag = torch.tensor([float(value)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return float(flag.item())


HEAD_PREFIX = "lm_head."  # the CTC head of every *ForCTC class


def make_callbacks(max_train_minutes: float, live=None, log: Callable = log_main,
                   freeze_encoder_steps: int = 0) -> dict[str, Any]:
    """The step's callbacks by name: head_first, non_finite, time_limit, drive, eval."""
    from transformers import TrainerCallback

    from ..colab import flush_drive

    class HeadFirstCallback(TrainerCallback):
        """FREEZE_ENCODER_STEPS: during the first N updates only the new CTC head learns (fairseq's wav2vec 2.0
        fine-tuning calls it freeze_finetune_updates). The gradients of every other weight are dropped just
        before the optimizer step, so AdamW leaves those weights (and its state for them) untouched; the
        optimizer, DDP and gradient clipping see the same parameters throughout. Off by default (the 2021
        recipe has none); fairseq's fine-tuning configurations use thousands of such updates."""

        def __init__(self, steps: int):
            self.steps = max(0, int(steps or 0))

        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            if model is not None and state.global_step < self.steps:
                for name, parameter in model.named_parameters():
                    if not name.removeprefix("module.").startswith(HEAD_PREFIX):
                        parameter.grad = None
            return control

    class NonFiniteCallback(TrainerCallback):
        """A non-finite batch does not end the run; a persistent one does, and says which and what to change.

        Before each optimizer step, gradients that are not finite (from a NaN/inf loss, or an fp16 overflow) are
        dropped, so the update is skipped: AdamW leaves every weight and its state alone (fp16's GradScaler skips
        the same update and lowers its scale). Training stops, without saving, when losses stay non-finite for
        NON_FINITE_LOSS_PATIENCE batches in a row, when SKIPPED_UPDATE_PATIENCE updates in a row are skipped,
        or at once when a weight is no longer finite (checked before each log, evaluation and save)."""

        def __init__(self):
            self.failure: str | None = None
            self.reason: str | None = None
            self.skipped_updates = 0
            self.skipped_streak = 0
            self.trainer = None  # set by Training.make_trainer: the loss counters live on the trainer

        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            import torch

            if model is None:
                return control
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            # one host sync for all tensors; the same answer on every process (gradients are all-reduced)
            finite = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) if grads else True
            if finite:
                self.skipped_streak = 0
            else:
                if not args.fp16:  # fp16: the GradScaler skips this update itself and lowers its scale
                    for parameter in model.parameters():
                        parameter.grad = None
                self.skipped_updates += 1
                self.skipped_streak += 1
            return control

        def on_step_end(self, args, state, control, model=None, **kwargs):
            loss_streak = agreed_max(getattr(self.trainer, "non_finite_streak", 0), args.device)
            if loss_streak >= NON_FINITE_LOSS_PATIENCE:
                self._stop(control, "non_finite_loss",
                           f"The training loss was NaN or infinite for {loss_streak} batches in a row (up to step "
                           f"{state.global_step}); each was skipped, but it does not recover. Usual causes: learning rate "
                           "too high or warm-up too short (lower LEARNING_RATE, raise WARMUP_STEPS), fp16 overflow "
                           "(PRECISION=bf16 on a GPU that has it, else fp32), or broken clips or transcripts.")
            elif self.skipped_streak >= SKIPPED_UPDATE_PATIENCE:
                self._stop(control, "non_finite_gradients",
                           f"{self.skipped_streak} updates in a row had NaN or infinite gradients (up to step "
                           f"{state.global_step}) and were skipped. Under fp16 the loss scale has collapsed: use "
                           "PRECISION=bf16 (GPUs from Ampere on) or fp32, or lower LEARNING_RATE.")
            elif model is not None and (control.should_log or control.should_evaluate or control.should_save):
                import torch

                named = list(model.named_parameters())
                finite = torch.stack([torch.isfinite(p).all() for _, p in named]).cpu()  # one host sync
                if not bool(finite.all()):
                    broken = named[int((~finite).nonzero()[0])][0]
                    self._stop(control, "non_finite_weights",
                               f"The weight {broken} became NaN or infinite at step {state.global_step}. Lower "
                               "LEARNING_RATE or raise WARMUP_STEPS; under fp16 try PRECISION=bf16 or fp32.")
            return control

        def _stop(self, control, reason: str, message: str) -> None:
            self.reason = reason
            self.failure = (message + " Training stopped and this state was not saved; the last complete checkpoint "
                            "is kept, and RESUME=auto continues from it after the change.")
            control.should_training_stop = True
            control.should_save = False
            control.should_evaluate = False

    class TimeLimitCallback(TrainerCallback):
        """MAX_TRAIN_MINUTES: stop after that long (all processes agree on the same step)."""

        def __init__(self, minutes: float):
            self.limit_s = minutes * 60.0
            self.started = None
            self.stopped_at: int | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()

        def on_step_end(self, args, state, control, **kwargs):
            if self.limit_s <= 0 or self.started is None:
                return control
            over = agreed_max(float(time.monotonic() - self.started >= self.limit_s), args.device) > 0
            if over:
                self.stopped_at = state.global_step
                control.should_training_stop = True
            return control

    class DriveFlushCallback(TrainerCallback):
        """After each checkpoint: make Google Drive write it now (a disconnect then loses nothing)."""

        def on_save(self, args, state, control, **kwargs):
            flush_drive()
            return control

    class EvalReportCallback(TrainerCallback):
        """One line per evaluation (WER, CER, empty predictions) and live curves in a notebook."""

        def __init__(self):
            self.started = time.monotonic()

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            from .curves import curves_figure

            if not state.is_world_process_zero or not metrics:
                return control
            empty = metrics.get("eval_empty_share", float("nan"))
            minutes = (time.monotonic() - self.started) / 60
            line = (f"{minutes:5.1f} min  step {state.global_step:>6}  epoch {state.epoch or 0:6.2f}  "
                    f"eval loss {metrics.get('eval_loss', float('nan')):8.4f}  "
                    f"WER {metrics.get('eval_wer', float('nan')):.3f}  CER {metrics.get('eval_cer', float('nan')):.3f}  "
                    f"empty predictions {empty:.0%}")
            if empty == empty and empty >= 0.5:
                line += ("  <- the model still predicts mostly blanks (normal in the first hundreds of steps; if it "
                         "lasts, check LEARNING_RATE, WARMUP_STEPS and the vocabulary)")
            log(line)
            if live is not None:
                try:
                    live.update(curves_figure(state.log_history), line)
                except Exception as error:  # a display problem must never stop training
                    log(f"(live curves unavailable: {error})")
            return control

    return {"head_first": HeadFirstCallback(freeze_encoder_steps), "non_finite": NonFiniteCallback(), "time_limit": TimeLimitCallback(max_train_minutes),
            "drive": DriveFlushCallback(), "eval": EvalReportCallback()}
