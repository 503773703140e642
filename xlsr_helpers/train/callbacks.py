"""The callbacks of step 04: what happens around the Trainer's own loop.

- :class:`HeadFirstCallback`     FREEZE_ENCODER_STEPS: only the CTC head learns during the first updates
- :class:`NonFiniteCallback`     a NaN/inf batch is skipped; a persistent one stops the run with what to change
- :class:`TimeLimitCallback`     MAX_TRAIN_MINUTES, the same step on every process
- :class:`DriveMirrorCallback`   the run folder on Google Drive: every N-th checkpoint mirrored there (``drive.py``)
- :class:`SurvivingBestCallback` a resume whose best checkpoint was lost: the best among those that are there
- :class:`EvalReportCallback`    one line per evaluation, live curves in a notebook
- :class:`SamplerEpochCallback`  the length-grouped sampler's epoch, also on a resumed multi-process run

:func:`make_callbacks` gives the step's set by name.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from transformers import TrainerCallback

from .distributed import agreed_max, log_main


class NonFiniteLossError(RuntimeError):
    """Training stopped because losses stayed NaN/infinite, updates kept overflowing, or weights broke."""


# A single non-finite batch is skipped (its update dropped, as fp16's GradScaler does on overflow); training
# stops when it persists. fp16 starts with a loss scale of 2**16 and halves it on each overflow, so a dozen
# skipped updates at the start are normal there: 25 in a row mean the scale fell below 2**-8 and is not coming back.
NON_FINITE_LOSS_PATIENCE = 5  # consecutive training batches with a NaN/inf loss
SKIPPED_UPDATE_PATIENCE = 25  # consecutive updates whose gradients were not finite

HEAD_PREFIX = "lm_head."  # the CTC head of every *ForCTC class


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


class DriveMirrorCallback(TrainerCallback):
    """The run folder on Google Drive: after each ``every``-th checkpoint (DRIVE_MIRROR_EVERY, as ``drive.py``'s
    plan took it), mirror it from the local disk to 04_train on Drive and delete the one mirrored before (kept when
    it is the best). Not the last update's checkpoint: the final model follows it. Only the main process copies."""

    def __init__(self, where, every: int, log: Callable = log_main):
        self.where = where  # drive.Places
        self.every = int(every)
        self.log = log
        self.mirrored: list[int] = []

    def on_save(self, args, state, control, **kwargs):
        from pathlib import Path

        from .drive import mirror

        step = state.global_step
        if (not self.where.mirrored or self.every <= 0 or not state.is_world_process_zero
                or step >= state.max_steps or step % (args.save_steps * self.every)):
            return control
        source = Path(args.output_dir) / f"checkpoint-{step}"
        keep = [Path(state.best_model_checkpoint).name] if state.best_model_checkpoint else []
        started = time.monotonic()
        mirror(source, self.where.run, keep)
        self.mirrored.append(step)
        self.log(f"checkpoint-{step} mirrored to Google Drive ({time.monotonic() - started:.0f} s)")
        return control


class SurvivingBestCallback(TrainerCallback):
    """A resumed run whose best checkpoint is gone (it was on the local disk of a Colab machine that disconnected,
    and not among those mirrored to Drive): the Trainer drops the best's folder but keeps its score, so no later
    evaluation could become the best unless it beat the lost one, and the final model would be the last weights.
    Here the best is chosen again among the checkpoints that are there, by the same rule (lower metric, ties broken
    by the other error rate), with a note."""

    def __init__(self, log: Callable = log_main):
        self.log = log
        self.replaced: dict[str, Any] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        from .checkpoints import list_checkpoints
        from .trainer import TIE_BREAKER  # trainer.py imports this module

        if state.best_model_checkpoint is not None or not state.best_global_step or not args.metric_for_best_model:
            return control
        metric = args.metric_for_best_model.removeprefix("eval_")
        tie = TIE_BREAKER.get(metric, metric)
        scores = {e["step"]: (e[f"eval_{metric}"], e.get(f"eval_{tie}", 0.0))
                  for e in state.log_history if f"eval_{metric}" in e}
        present = [(scores[step], step, path) for step, path in list_checkpoints(args.output_dir)
                   if step in scores and step <= state.global_step]
        lost = state.best_global_step
        if args.greater_is_better:
            present = [((-a, -b), step, path) for (a, b), step, path in present]
        if present:
            (score, step, path) = min(present)
            state.best_metric, state.best_global_step = scores[step][0], step
            state.best_model_checkpoint = str(path)
        else:
            state.best_metric, state.best_global_step = None, 0
        self.replaced = {"lost": lost, "best": state.best_global_step or None}
        self.log(f"The best checkpoint (step {lost}) is gone (it was on a local disk that did not survive); the best "
                 + (f"is now checkpoint-{state.best_global_step} among those that are here." if present else
                    "is chosen among the evaluations from now on."))
        return control


class EvalReportCallback(TrainerCallback):
    """One line per evaluation (WER, CER, empty predictions) and live curves in a notebook."""

    def __init__(self, live=None, log: Callable = log_main):
        self.live = live  # widgets.LiveCurves, or anything with update(figure, line)
        self.log = log
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
        self.log(line)
        if self.live is not None:
            try:
                self.live.update(curves_figure(state.log_history), line)
            except Exception as error:  # a display problem must never stop training
                self.log(f"(live curves unavailable: {error})")
        return control


class SamplerEpochCallback(TrainerCallback):
    """At the start of each epoch, the epoch of the trainer's own length-grouped sampler (``length_sampler``:
    :class:`~xlsr_helpers.train.data.LengthBucketSampler` or ``DurationBatchSampler``), which decides that
    epoch's order, from the training state.

    The Trainer sets it too, through accelerate's wrappers around the sampler; but on a resumed run with
    several processes the first epoch's loader is ``SkipBatchSampler(BatchSamplerShard(...))``, through which
    neither ``DataLoaderShard.set_epoch`` nor the Trainer reaches the sampler: every process then replayed
    epoch 0's order while skipping the batches of epoch N. The epoch is ``int(state.epoch)``: the Trainer
    counts ``epoch + batches done / batches per epoch``, restored from the checkpoint on a resume, so every
    process computes the same value."""

    def __init__(self, trainer):
        self.trainer = trainer

    def on_epoch_begin(self, args, state, control, **kwargs):
        sampler = getattr(self.trainer, "length_sampler", None)
        if sampler is not None:
            sampler.set_epoch(int(state.epoch or 0))
        return control


def make_callbacks(max_train_minutes: float, live=None, log: Callable = log_main,
                   freeze_encoder_steps: int = 0, where=None, mirror_every: int = 0) -> dict[str, Any]:
    """The step's callbacks by name: head_first, non_finite, time_limit, drive (with ``where``, drive.Places, and
    ``mirror_every``, the plan's DRIVE_MIRROR_EVERY), best, eval (the trainer adds its :class:`SamplerEpochCallback`
    itself)."""
    callbacks = {"head_first": HeadFirstCallback(freeze_encoder_steps), "non_finite": NonFiniteCallback(),
                 "time_limit": TimeLimitCallback(max_train_minutes), "best": SurvivingBestCallback(log),
                 "eval": EvalReportCallback(live, log)}
    if where is not None:
        callbacks["drive"] = DriveMirrorCallback(where, mirror_every, log)
    return callbacks
