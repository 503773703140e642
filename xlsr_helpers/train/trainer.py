"""TrainingArguments on transformers-5 names, the CTC Trainer, its metrics, and the callbacks of step 04."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable

from ..audio import LENGTH_COLUMN, output_frames
from ..config import Config
from ..ctc import IGNORED_ID, decode_labels, error_rates, greedy_decode
from .data import INPUT_LENGTHS_KEY, LengthBucketSampler
from .distributed import log_main, world_size
from .guards import GuardError


class NonFiniteLossError(RuntimeError):
    """Training stopped because the loss became NaN or infinite."""


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


def training_arguments(cfg: Config, output_dir: str | Path, **extra):
    """TrainingArguments from the config on transformers-5 names (the recipe's values by default)."""
    from transformers import TrainingArguments

    cfg = cfg.resolved()
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
        logging_nan_inf_filter=False,  # a NaN must show, not be averaged away
        seed=cfg.seed,
        report_to="none",
        remove_unused_columns=False,  # keep input_length for the length-grouped sampler; the collator ignores it
        length_column_name=LENGTH_COLUMN,
        dataloader_num_workers=0,
        dataloader_pin_memory=_cuda_available(),
        save_only_model=False,  # optimizer and scheduler too: a resume continues exactly
        **choose_precision(cfg.precision),
    )
    if "train_sampling_strategy" in names:  # transformers >= 5
        kwargs["train_sampling_strategy"] = "group_by_length" if cfg.group_by_length else "random"
    else:
        kwargs["group_by_length"] = cfg.group_by_length
    checkpointing = bool(cfg.gradient_checkpointing)
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
             "fp16", "bf16", "seed")
    return [{"argument": name, "value": getattr(args, name)} for name in names if hasattr(args, name)]


# --------------------------------------------------------------------------------------------------
# metrics: greedy decoding of each clip's own frames
# --------------------------------------------------------------------------------------------------
def make_compute_metrics(processor) -> Callable:
    """WER, CER and the empty-prediction share of an evaluation (the argmax ids come from CTCTrainer)."""
    tokenizer = processor.tokenizer

    def compute_metrics(prediction) -> dict[str, float]:
        predictions = greedy_decode(tokenizer, prediction.predictions)
        references = decode_labels(tokenizer, prediction.label_ids)
        return error_rates(references, predictions)

    return compute_metrics


def make_trainer_class():
    from transformers import Trainer

    class CTCTrainer(Trainer):
        """Trainer with length-grouped batches (:class:`LengthBucketSampler` over ``input_length``) whose
        evaluation keeps only the argmax id of each frame (not [batch, frames, vocab] floats), with every
        frame beyond a clip's own marked -100: in-training WER/CER do not depend on how clips were batched.
        (The length column is read once, as a list: transformers 5 reads it item by item through a lazy Column.)
        """

        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            strategy = getattr(self.args, "train_sampling_strategy", None)
            grouped = strategy == "group_by_length" or (strategy is None and getattr(self.args, "group_by_length", False))
            if grouped and LENGTH_COLUMN in getattr(dataset, "column_names", []):
                lengths = dataset.select_columns([LENGTH_COLUMN]).with_format(None)[:][LENGTH_COLUMN]
                seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
                return LengthBucketSampler(lengths, self.args.train_batch_size, seed=seed)
            return super()._get_train_sampler(train_dataset) if train_dataset is not None else \
                super()._get_train_sampler()

        def compute_loss(self, model, inputs, *args, **kwargs):
            inputs = {k: v for k, v in inputs.items() if k != INPUT_LENGTHS_KEY}
            return super().compute_loss(model, inputs, *args, **kwargs)

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            import torch

            lengths = inputs.get(INPUT_LENGTHS_KEY)
            inputs = {k: v for k, v in inputs.items() if k != INPUT_LENGTHS_KEY}
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

    class NonFiniteLossCallback(TrainerCallback):
        """Stops at the first logged NaN/inf loss, without saving a checkpoint of broken weights."""

        def __init__(self):
            self.failure: str | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                self.failure = (
                    f"The training loss became {loss} at step {state.global_step}. Training stopped and this "
                    "state was not saved. Usual causes: learning rate too high or warm-up too short (lower "
                    "LEARNING_RATE, raise WARMUP_STEPS), fp16 overflow (PRECISION=bf16 or fp32), or a corrupt "
                    "clip. The last complete checkpoint is kept: RESUME=auto continues from it.")
                control.should_training_stop = True
                control.should_save = False
                control.should_evaluate = False
            return control

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
            over = time.monotonic() - self.started >= self.limit_s
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                import torch

                flag = torch.tensor([1.0 if over else 0.0], device=args.device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                over = bool(flag.item() > 0)
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

    return {"head_first": HeadFirstCallback(freeze_encoder_steps), "non_finite": NonFiniteLossCallback(), "time_limit": TimeLimitCallback(max_train_minutes),
            "drive": DriveFlushCallback(), "eval": EvalReportCallback()}
