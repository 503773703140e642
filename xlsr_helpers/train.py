"""Step 04: fine-tune a CTC model (XLSR-53 or ``tiny``) on the prepared run folder.

Reads ``02_normalize/dataset`` and ``03_vocab/processor``; writes ``04_train/``:
``prepared/`` (audio as Arrow, reused on the next run), ``checkpoint-*/`` (each loadable alone: weights,
config and processor), ``model/`` (the final model + processor), ``curves.png`` and ``report.json``.

What it adds to the seed notebook (whose training code no longer runs on transformers 5):

- the transformers-5 names (``eval_strategy``, ``train_sampling_strategy="group_by_length"`` over a
  precomputed ``input_length`` column, ``processing_class``, ``freeze_feature_encoder``);
- CTC feasibility: samples whose labels cannot fit in the model's output frames are dropped and counted;
- guards that refuse the known failure modes before step 1 (pad id / vocabulary size, loss reduction,
  attention mask vs feature-encoder norm, LayerDrop under DDP) and an optional one-batch overfit test;
- a stop with a clear message on a non-finite loss, the share of empty predictions at each evaluation;
- resume from the last *complete* checkpoint, never deleting a finished model without OVERWRITE_MODEL;
- the same code for one CPU, one GPU, ``torchrun`` and ``accelerate launch`` (``xlsr train``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .audio import LENGTH_COLUMN, ctc_min_frames, output_frames, prepare_dataset
from .config import Config

STEP = "04_train"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")
# The tiny model: XLSR's transformer (pre-LN "stable layer norm", conv positional embedding, CTC head) scaled
# down to hidden 128 x 3 layers (~0.5M trained parameters), on a fixed filterbank front-end instead of a random
# 7-layer CNN. The feature encoder keeps XLSR's frame arithmetic (400-sample receptive field, 320-sample hop:
# 20 ms frames, the same output lengths) in two conv layers: 256 Hann-windowed cosine/sine filters at 64
# mel-spaced frequencies (+/- pairs), layer norm and GELU (a smooth magnitude), then a 1x1 conv that sums each
# band's four filters. Frozen like a pretrained encoder, it hands the transformer a spectrogram. Measured on
# the demo corpus (600 clips, 2 CPU cores): with XLSR's random 7-layer CNN (64 channels, frozen or trained)
# the model was still at CER ~0.8 after 800 updates of 8 clips; with the filterbank it passes CER 0.2 after
# ~500 (see tiny_filterbank_).
TINY_ARCHITECTURE = dict(
    hidden_size=128, num_hidden_layers=3, num_attention_heads=4, intermediate_size=256,
    conv_dim=(256, 64), conv_kernel=(400, 1), conv_stride=(320, 1),
    feat_extract_norm="layer", do_stable_layer_norm=True, num_conv_pos_embeddings=64,
    num_conv_pos_embedding_groups=16, feat_extract_activation="gelu", conv_bias=True,
)
SANITY_CLIPS = 8
SANITY_MAX_STEPS = 300
SANITY_PASS_CER = 0.5


class GuardError(ValueError):
    """A setting that is known to make training fail (or silently learn nothing); the message says what to do."""


class NonFiniteLossError(RuntimeError):
    """Training stopped because the loss became NaN or infinite."""


class ModelExistsError(FileExistsError):
    """04_train/model already holds a finished model and OVERWRITE_MODEL is False."""


def log_main(*args, **kwargs) -> None:
    """print() on the main process only (every rank runs this module under torchrun)."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(*args, **kwargs, flush=True)


# --------------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------------
def model_overrides(cfg: Config, processor, world_size: int = 1, log: Callable = log_main) -> dict[str, Any]:
    """Config values set on every model (the seed's), with the vocabulary of ``processor``."""
    cfg = cfg.resolved()
    layerdrop = float(cfg.layerdrop or 0.0)
    if world_size > 1 and layerdrop > 0:
        log(f"LayerDrop {layerdrop} skips random layers, which DistributedDataParallel cannot handle "
            f"(their parameters get no gradient): LAYERDROP is set to 0.0 for this {world_size}-process run.")
        layerdrop = 0.0
    tokenizer = processor.tokenizer
    values = dict(
        attention_dropout=cfg.attention_dropout, hidden_dropout=cfg.hidden_dropout,
        feat_proj_dropout=cfg.feat_proj_dropout, mask_time_prob=float(cfg.mask_time_prob or 0.0),
        layerdrop=layerdrop, ctc_loss_reduction="mean", ctc_zero_infinity=True,
        pad_token_id=tokenizer.pad_token_id, vocab_size=len(tokenizer),
    )
    for name in ("bos_token_id", "eos_token_id"):  # keeps transformers from "aligning" them with a warning
        if getattr(tokenizer, name, None) is not None:
            values[name] = getattr(tokenizer, name)
    return values


def tiny_config(vocab_size: int, pad_token_id: int, **overrides):
    """Wav2Vec2Config of the ``tiny`` model (see TINY_ARCHITECTURE)."""
    from transformers import Wav2Vec2Config

    values = dict(TINY_ARCHITECTURE, vocab_size=vocab_size, pad_token_id=pad_token_id,
                  ctc_loss_reduction="mean", ctc_zero_infinity=True)
    values.update(overrides)
    return Wav2Vec2Config(**values)


def tiny_filterbank_(model, fmin: float = 80.0, fmax: float = 7600.0, sampling_rate: int = 16_000):
    """Set the tiny model's feature encoder to a fixed filterbank (in place; returns the model).

    Layer 0 (kernel 400 = 25 ms, hop 320 = 20 ms): for each of ``conv_dim[1]`` mel-spaced frequencies a
    Hann-windowed cosine and sine and their negatives, unit norm. Layer norm across the filters and GELU make
    GELU(x) + GELU(-x) ~ |x|. Layer 1 (1x1) adds each band's four outputs: a magnitude spectrum per frame.
    """
    import torch

    layers = model.wav2vec2.feature_extractor.conv_layers
    conv0, conv1 = layers[0].conv, layers[1].conv
    bands = conv1.out_channels
    if conv0.out_channels != 4 * bands or conv1.kernel_size[0] != 1 or len(layers) != 2:
        raise ValueError("tiny_filterbank_ needs conv_dim=(4*bands, bands), conv_kernel=(k, 1): the tiny layout")
    size = conv0.kernel_size[0]
    t = np.arange(size) / sampling_rate
    window = np.hanning(size)
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    centers = 700.0 * (10 ** (np.linspace(mel(fmin), mel(fmax), bands) / 2595.0) - 1.0)
    filters = []
    for f in centers:
        for wave in (np.cos(2 * np.pi * f * t) * window, np.sin(2 * np.pi * f * t) * window):
            wave = wave / np.linalg.norm(wave)
            filters += [wave, -wave]
    with torch.no_grad():
        conv0.weight.copy_(torch.tensor(np.array(filters), dtype=conv0.weight.dtype).unsqueeze(1))
        conv0.bias.zero_()
        conv1.weight.zero_()
        conv1.bias.zero_()
        for band in range(bands):
            conv1.weight[band, 4 * band:4 * band + 4, 0] = 0.5
    return model


def build_model(cfg: Config, processor, world_size: int = 1, log: Callable = log_main):
    """``Wav2Vec2ForCTC`` for MODEL: ``tiny`` (random weights) or a Hub id / local path.

    A checkpoint whose CTC head has another size (another language's fine-tuned model) is loaded with
    ``ignore_mismatched_sizes``: the head is re-initialized for this vocabulary, the rest is kept.
    """
    import torch
    from transformers import Wav2Vec2ForCTC

    cfg = cfg.resolved()
    overrides = model_overrides(cfg, processor, world_size, log)
    if cfg.is_tiny():
        torch.manual_seed(cfg.seed)
        model = tiny_filterbank_(Wav2Vec2ForCTC(tiny_config(**overrides)))
    else:
        model = Wav2Vec2ForCTC.from_pretrained(cfg.model, ignore_mismatched_sizes=True, **overrides)
    if cfg.freeze_feature_encoder:
        model.freeze_feature_encoder()
    return model


def count_parameters(model) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}


# --------------------------------------------------------------------------------------------------
# guards
# --------------------------------------------------------------------------------------------------
def check_vocabulary(model, processor) -> None:
    """pad id and vocabulary size of the model agree with the tokenizer (else: garbage or a crash later)."""
    tokenizer = processor.tokenizer
    config = model.config
    problems = []
    if config.pad_token_id != tokenizer.pad_token_id:
        problems.append(f"model pad_token_id={config.pad_token_id} but the tokenizer's {tokenizer.pad_token!r} "
                        f"has id {tokenizer.pad_token_id} (CTC uses the pad token as its blank)")
    if config.vocab_size != len(tokenizer):
        problems.append(f"model vocab_size={config.vocab_size} but the tokenizer has {len(tokenizer)} tokens")
    head = getattr(model, "lm_head", None)
    if head is not None and head.out_features != len(tokenizer):
        problems.append(f"the CTC head has {head.out_features} outputs but the tokenizer has {len(tokenizer)} tokens")
    if problems:
        raise GuardError("Model and vocabulary disagree: " + "; ".join(problems) +
                         ". Build the model with pad_token_id=tokenizer.pad_token_id and "
                         "vocab_size=len(tokenizer) (train.build_model does), and use 03_vocab's processor.")


def check_loss_reduction(model) -> None:
    if model.config.ctc_loss_reduction != "mean":
        raise GuardError(f"ctc_loss_reduction={model.config.ctc_loss_reduction!r}: with 'sum' the loss (and the "
                         "gradient) grows with the batch and clip length, and the seed's learning rate diverges. "
                         "Use ctc_loss_reduction='mean'.")


def check_attention_mask(model, processor, fix: bool = True, log: Callable = log_main) -> bool:
    """The feature extractor returns an attention mask iff the model's feature encoder uses layer norm.

    Layer-norm encoders (XLSR, XLS-R, MMS, lv60) need the mask, or padding changes every frame's statistics;
    group-norm ones (wav2vec2-base) were trained on unpadded audio and must get zero padding without a mask.
    With ``fix`` a mismatch is corrected on the processor (and saved with every checkpoint); else it raises.
    Returns True when something was changed.
    """
    norm = getattr(model.config, "feat_extract_norm", "layer")
    wanted = norm == "layer"
    extractor = processor.feature_extractor
    if bool(extractor.return_attention_mask) == wanted:
        return False
    message = (f"The model's feature encoder uses {norm!r} norm, so the feature extractor should have "
               f"return_attention_mask={wanted}, but it has {extractor.return_attention_mask}.")
    if not fix:
        raise GuardError(message + " Rebuild 03_vocab with the same MODEL as training.")
    extractor.return_attention_mask = wanted
    log(message + f" Set to {wanted} for training; the processor saved with the model carries the fix.")
    return True


def check_model(model, processor, fix: bool = True, log: Callable = log_main) -> list[str]:
    """Every guard; returns notes about what was adjusted."""
    notes = []
    check_vocabulary(model, processor)
    check_loss_reduction(model)
    if check_attention_mask(model, processor, fix=fix, log=log):
        notes.append(f"return_attention_mask set to {processor.feature_extractor.return_attention_mask}")
    return notes


# --------------------------------------------------------------------------------------------------
# feasibility
# --------------------------------------------------------------------------------------------------
FEASIBILITY_REASONS = {
    "undecodable": "the clip could not be decoded",
    "empty_transcript": "the transcript is empty",
    "too_long": "longer than MAX_DURATION_S",
    "too_few_frames_for_labels": "fewer output frames than labels plus a blank between repeated letters",
    "shorter_than_time_mask": "fewer output frames than the time-mask length (mask_time_length)",
}


def feasibility(dataset, model, max_duration_s: float = 0.0, check_ctc: bool = True, check_mask: bool = True,
                sampling_rate: int = 16_000):
    """Keep the rows CTC can learn from; return (dataset, {reason: count}, examples).

    A row is dropped when its clip was undecodable or its transcript empty, when it is longer than
    ``max_duration_s`` (> 0), when its label sequence needs more frames than the model outputs for the clip
    (``len(labels)`` + one blank per adjacent repeat; the model's own output-length function), or, with
    time masking on, when it has fewer frames than one mask span.
    """
    columns = dataset.select_columns([LENGTH_COLUMN, "labels", "problem"]).with_format(None)[:]
    lengths = np.asarray(columns[LENGTH_COLUMN], dtype=np.int64)
    frames = output_frames(model, np.maximum(lengths, 1)) if len(lengths) else np.zeros(0, dtype=np.int64)
    mask_on = check_mask and float(getattr(model.config, "mask_time_prob", 0.0) or 0.0) > 0
    mask_length = int(getattr(model.config, "mask_time_length", 10)) if mask_on else 0
    counts = {reason: 0 for reason in FEASIBILITY_REASONS}
    examples: dict[str, list] = {}
    keep = []
    for i, (problem, labels) in enumerate(zip(columns["problem"], columns["labels"])):
        reason = None
        if problem:
            reason = "undecodable" if problem.startswith("undecodable") else "empty_transcript"
        elif max_duration_s and lengths[i] > max_duration_s * sampling_rate:
            reason = "too_long"
        elif check_ctc and ctc_min_frames(labels) > frames[i]:
            reason = "too_few_frames_for_labels"
        elif mask_on and frames[i] < mask_length:
            reason = "shorter_than_time_mask"
        if reason is None:
            keep.append(i)
        else:
            counts[reason] += 1
            examples.setdefault(reason, [])
            if len(examples[reason]) < 3:
                examples[reason].append({"row": i, "seconds": round(float(lengths[i]) / sampling_rate, 2),
                                         "frames": int(frames[i]), "labels": len(labels),
                                         "problem": problem or None})
    kept = dataset if len(keep) == len(dataset) else dataset.select(keep)
    return kept, {k: v for k, v in counts.items() if v}, examples


# --------------------------------------------------------------------------------------------------
# batches and metrics
# --------------------------------------------------------------------------------------------------
@dataclass
class DataCollatorCTCWithPadding:
    """Pads input_values (with an attention mask when the feature extractor asks for one) and labels
    (padding replaced by -100, which the CTC loss ignores). Extra columns (input_length, id) are ignored."""

    processor: Any
    padding: bool | str = True

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        extractor = self.processor.feature_extractor
        inputs = [{"input_values": np.asarray(f["input_values"], dtype=np.float32)} for f in features]
        batch = extractor.pad(inputs, padding=self.padding, return_tensors="pt",
                              return_attention_mask=bool(extractor.return_attention_mask))
        labels = [{"input_ids": [int(x) for x in f["labels"]]} for f in features]
        padded = self.processor.tokenizer.pad(labels, padding=self.padding, return_tensors="pt",
                                              return_attention_mask=True)
        batch["labels"] = padded["input_ids"].masked_fill(padded["attention_mask"].ne(1), -100)
        return batch


def preprocess_logits_for_metrics(logits, labels):
    """Keep only the argmax ids (not [batch, frames, vocab] floats) between evaluation batches."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def decode_predictions(tokenizer, pred_ids) -> list[str]:
    """CTC greedy decoding of argmax ids: merge repeats, drop blanks (-100 padding counts as blank)."""
    ids = np.asarray(pred_ids).copy()
    ids[ids < 0] = tokenizer.pad_token_id
    return tokenizer.batch_decode(ids)


def decode_labels(tokenizer, label_ids) -> list[str]:
    """References from label ids: -100 -> pad, and no merging of repeated letters (group_tokens=False)."""
    ids = np.asarray(label_ids).copy()
    ids[ids == -100] = tokenizer.pad_token_id
    return tokenizer.batch_decode(ids, group_tokens=False)


def error_rates(references: list[str], predictions: list[str]) -> dict[str, float]:
    """WER, CER (jiwer, corpus level) and the share of empty predictions; empty references are skipped."""
    import jiwer

    pairs = [(r, p) for r, p in zip(references, predictions) if r.strip()]
    if not pairs:
        return {"wer": float("nan"), "cer": float("nan"), "empty_share": float("nan")}
    refs, preds = [r for r, _ in pairs], [p for _, p in pairs]
    return {
        "wer": float(jiwer.wer(refs, preds)),
        "cer": float(jiwer.cer(refs, preds)),
        "empty_share": sum(1 for p in preds if not p.strip()) / len(preds),
    }


def make_compute_metrics(processor) -> Callable:
    tokenizer = processor.tokenizer

    def compute_metrics(prediction) -> dict[str, float]:
        predictions = decode_predictions(tokenizer, prediction.predictions)
        references = decode_labels(tokenizer, prediction.label_ids)
        return error_rates(references, predictions)

    return compute_metrics


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
    """TrainingArguments from the config on transformers-5 names (the seed's values by default)."""
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
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        kwargs["ddp_find_unused_parameters"] = False
    kwargs.update(extra)
    return TrainingArguments(**kwargs)


# --------------------------------------------------------------------------------------------------
# resume
# --------------------------------------------------------------------------------------------------
def is_complete_checkpoint(path: str | Path) -> bool:
    """A checkpoint is complete when its trainer_state.json (written last) and its weights exist."""
    path = Path(path)
    return (path / "trainer_state.json").is_file() and any((path / name).is_file() for name in WEIGHT_FILES)


def list_checkpoints(train_dir: str | Path) -> list[tuple[int, Path]]:
    train_dir = Path(train_dir)
    found = []
    if train_dir.is_dir():
        for child in train_dir.iterdir():
            match = CHECKPOINT_RE.match(child.name)
            if match and child.is_dir():
                found.append((int(match.group(1)), child))
    return sorted(found)


def find_resume_checkpoint(train_dir: str | Path, resume: str = "auto") -> Path | None:
    """The checkpoint to resume from: RESUME=auto -> the last complete one (partial ones are ignored),
    never -> None, a path -> that checkpoint (which must be complete)."""
    resume = (resume or "auto").strip()
    if resume.lower() == "never":
        return None
    if resume.lower() == "auto":
        complete = [path for _, path in list_checkpoints(train_dir) if is_complete_checkpoint(path)]
        return complete[-1] if complete else None
    path = Path(resume).expanduser()
    if not path.is_absolute() and not path.exists():
        path = Path(train_dir) / resume
    if not is_complete_checkpoint(path):
        raise FileNotFoundError(f"RESUME={resume!r}: {path} is not a complete checkpoint (it needs "
                                f"trainer_state.json and model weights). Use auto, never or another checkpoint.")
    return path.resolve()


# --------------------------------------------------------------------------------------------------
# callbacks
# --------------------------------------------------------------------------------------------------
def _callbacks():
    from transformers import TrainerCallback

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
            from .colab import flush_drive

            flush_drive()
            return control

    class EvalReportCallback(TrainerCallback):
        """One line per evaluation (WER, CER, empty predictions) and live curves in a notebook."""

        def __init__(self, live=None, log: Callable = log_main):
            self.live = live
            self.log = log
            self.started = time.monotonic()

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.monotonic()

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
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

    return NonFiniteLossCallback, TimeLimitCallback, DriveFlushCallback, EvalReportCallback


class LengthBucketSampler:
    """Training order for length-grouped batches: little padding, random batches, the longest batch first.

    Each epoch the clips are sorted by their length times a random factor in [1 - noise, 1 + noise] (so
    that batch-mates change between epochs), cut into batches of ``batch_size``, and the full batches are
    shuffled; the batch holding the longest clip goes first (an out-of-memory error shows at step 1, not
    hours later), a last partial batch (the shortest clips) goes last. The order depends only on (seed, epoch): every DDP process
    computes the same one, and a resumed run replays the epoch it stopped in.

    transformers' ``LengthGroupedSampler`` sorts only inside random mega-batches of 50 x batch x accumulation
    clips (at most a quarter of the set): 8-11 % padding on a 600-clip corpus against ~3 % here.
    """

    def __init__(self, lengths, batch_size: int, seed: int = 0, noise: float = 0.03):
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.noise = float(noise)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def order(self, epoch: int | None = None) -> list[int]:
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch)])
        n, size = len(self.lengths), self.batch_size
        if n == 0:
            return []
        keys = self.lengths * (1.0 + rng.uniform(-self.noise, self.noise, n))
        ranked = np.argsort(keys, kind="stable")[::-1]  # longest first, so the partial batch is the shortest
        full = [ranked[i:i + size] for i in range(0, n - n % size, size)]
        rest = ranked[n - n % size:]
        batches = [full[i] for i in rng.permutation(len(full))]
        longest = int(np.argmax(self.lengths))
        first = next((k for k, b in enumerate(batches) if longest in b), None)
        if first:
            batches.insert(0, batches.pop(first))
        return [int(i) for b in batches for i in b] + [int(i) for i in rest]

    def __iter__(self):
        return iter(self.order())


def make_trainer_class():
    from transformers import Trainer

    class CTCTrainer(Trainer):
        """Trainer whose length-grouped batches come from :class:`LengthBucketSampler` over input_length.

        (The column is read once, as a list: transformers 5 reads it item by item through a lazy Column.)
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

    return CTCTrainer


# --------------------------------------------------------------------------------------------------
# curves
# --------------------------------------------------------------------------------------------------
def curve_points(log_history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    points: dict[str, list[tuple[int, float]]] = {"loss": [], "eval_loss": [], "eval_wer": [], "eval_cer": []}
    for entry in log_history:
        step = entry.get("step")
        for key in points:
            if key in entry and step is not None:
                points[key].append((int(step), float(entry[key])))
    return points


def curves_figure(log_history: list[dict]):
    """Loss (train and eval), WER and CER against the training step."""
    import matplotlib

    if "matplotlib_inline" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    points = curve_points(log_history)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for key, label in (("loss", "train"), ("eval_loss", "eval")):
        if points[key]:
            xs, ys = zip(*points[key])
            axes[0].plot(xs, ys, marker="." if key == "eval_loss" else None, label=label)
    axes[0].set_title("CTC loss")
    axes[0].set_yscale("log")
    axes[0].legend()
    for ax, key, title in ((axes[1], "eval_wer", "WER (eval)"), (axes[2], "eval_cer", "CER (eval)")):
        if points[key]:
            xs, ys = zip(*points[key])
            ax.plot(xs, ys, marker="o")
        ax.set_title(title)
        ax.set_ylim(0, max(1.05, max((y for _, y in points[key]), default=1.0) * 1.05))
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def save_curves(log_history: list[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    curves_figure(log_history).savefig(path, dpi=110)
    return path


# --------------------------------------------------------------------------------------------------
# sanity check
# --------------------------------------------------------------------------------------------------
def greedy_texts(model, batch, tokenizer) -> list[str]:
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad():
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        ids = model(**inputs).logits.argmax(dim=-1).cpu().numpy()
    model.train(was_training)
    return decode_predictions(tokenizer, ids)


def example_predictions(model, processor, dataset, n: int = 5) -> list[dict[str, str]]:
    """Greedy transcripts of the first ``n`` rows of a prepared split, next to their references."""
    import torch

    rows = [dataset[i] for i in range(min(n, len(dataset)))]
    if not rows:
        return []
    batch = DataCollatorCTCWithPadding(processor)(rows)
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    predictions = greedy_texts(model, batch, processor.tokenizer)
    references = decode_labels(processor.tokenizer, batch["labels"].cpu().numpy())
    return [{"id": str(r.get("id", i)), "reference": ref, "prediction": pred}
            for i, (r, ref, pred) in enumerate(zip(rows, references, predictions))]


def sanity_check(model, processor, dataset, learning_rate: float, n_clips: int = SANITY_CLIPS,
                 max_steps: int = SANITY_MAX_STEPS, pass_cer: float = SANITY_PASS_CER, log: Callable = log_main,
                 raise_on_failure: bool = True) -> dict[str, Any]:
    """Overfit the ``n_clips`` shortest clips on a copy of the model; the CER on them must drop below
    ``pass_cer`` within ``max_steps`` steps. A setup that cannot learn 8 clips will not learn 80,000.
    The model passed in is not changed."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    lengths = dataset.select_columns([LENGTH_COLUMN]).with_format(None)[:][LENGTH_COLUMN]
    rows = [int(i) for i in np.argsort(lengths, kind="stable")[:n_clips]]
    collator = DataCollatorCTCWithPadding(processor)
    batch = collator([dataset[i] for i in rows])
    batch = {k: v.to(device) for k, v in batch.items()}
    references = decode_labels(processor.tokenizer, batch["labels"].cpu().numpy())
    probe = copy.deepcopy(model).to(device)
    probe.config.mask_time_prob = 0.0
    probe.config.layerdrop = 0.0
    probe.train()
    optimizer = torch.optim.AdamW([p for p in probe.parameters() if p.requires_grad], lr=learning_rate)
    warmup = max(1, max_steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    before = error_rates(references, greedy_texts(probe, batch, processor.tokenizer))
    first_loss = last_loss = None
    after = before
    started = time.perf_counter()
    step = 0
    for step in range(1, max_steps + 1):
        loss = probe(**batch).loss
        if not torch.isfinite(loss):
            last_loss = float(loss.detach())
            break
        loss.backward()
        torch.nn.utils.clip_grad_norm_(probe.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        last_loss = float(loss.detach())
        first_loss = last_loss if first_loss is None else first_loss
        if step % 25 == 0 or step == max_steps:
            after = error_rates(references, greedy_texts(probe, batch, processor.tokenizer))
            if after["cer"] < pass_cer:
                break
    passed = after["cer"] < pass_cer and last_loss is not None and math.isfinite(last_loss)
    result = {"passed": bool(passed), "clips": len(rows), "steps": step, "seconds": round(time.perf_counter() - started, 1),
              "learning_rate": learning_rate, "cer_before": before["cer"], "cer_after": after["cer"],
              "loss_first": first_loss, "loss_last": last_loss, "pass_cer": pass_cer}
    del probe, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    log(f"Sanity check: CER on {len(rows)} clips {before['cer']:.3f} -> {after['cer']:.3f} after {step} steps "
        f"(loss {first_loss if first_loss is None else round(first_loss, 3)} -> "
        f"{last_loss if last_loss is None else round(last_loss, 3)}): {'passed' if passed else 'FAILED'}")
    if not passed and raise_on_failure:
        raise GuardError(
            f"SANITY_CHECK failed: the model could not overfit {len(rows)} clips (CER {after['cer']:.3f} after "
            f"{step} steps, needs < {pass_cer}). Training would most likely predict nothing (WER 1.0). Check the "
            "learning rate, the vocabulary (03_vocab), the audio (16 kHz, normalized) and, for a custom model, "
            "do_stable_layer_norm/feat_extract_norm.")
    return result


# --------------------------------------------------------------------------------------------------
# the step
# --------------------------------------------------------------------------------------------------
@dataclass
class Training:
    """Step 04, one method per stage (the notebook calls them one by one; :func:`run_train` all at once)."""

    cfg: Config
    log: Callable = log_main
    live: Any = None  # widgets.LiveCurves (or anything with update(figure, line)) for curves during training
    dataset: Any = None
    processor: Any = None
    model: Any = None
    args: Any = None
    prepared: Any = None
    trainer: Any = None
    resume_from: Path | None = None
    report: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.cfg = self.cfg.resolved()
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.train_dir = self.cfg.step_dir(STEP)
        self.model_dir = self.cfg.model_dir
        self._callbacks: dict[str, Any] = {}
        self.report.update({"model": self.cfg.model, "world_size": self.world_size})

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def note(self, message: str) -> None:
        self.notes.append(message)
        self.log(message)

    # 1 ---------------------------------------------------------------------------------------------
    def check_outputs(self) -> Path | None:
        """Refuse to replace a finished model; find the checkpoint to resume from."""
        from .colab import ensure_drive

        ensure_drive(self.cfg.run_path)
        if self.model_dir.exists() and any(self.model_dir.iterdir()) and not self.cfg.overwrite_model:
            raise ModelExistsError(
                f"{self.model_dir} already holds a trained model. Set OVERWRITE_MODEL=True to train again and "
                "replace it, or use another RUN_DIR.")
        resume = (self.cfg.resume or "auto").strip()
        self.resume_from = find_resume_checkpoint(self.train_dir, resume)
        checkpoints = list_checkpoints(self.train_dir)
        partial = [p.name for _, p in checkpoints if not is_complete_checkpoint(p)]
        if partial:
            self.note(f"Ignoring partly written checkpoint(s): {', '.join(partial)}")
        if resume.lower() == "never" and checkpoints and self.is_main:
            for _, path in checkpoints:
                shutil.rmtree(path, ignore_errors=True)
            self.note(f"RESUME=never: removed {len(checkpoints)} old checkpoint(s) of an earlier run.")
        if self.resume_from is not None:
            self.note(f"Resuming from {self.resume_from}")
        self.report["resumed_from"] = str(self.resume_from) if self.resume_from else None
        return self.resume_from

    # 2 ---------------------------------------------------------------------------------------------
    def load(self):
        """02_normalize's dataset and 03_vocab's processor."""
        from datasets import load_from_disk
        from transformers import Wav2Vec2Processor

        source = self.cfg.step_dir("02_normalize") / "dataset"
        if not source.exists():
            raise FileNotFoundError(f"{source} does not exist: run 01_load and 02_normalize first.")
        if not any((self.cfg.processor_dir / name).exists()
                   for name in ("processor_config.json", "preprocessor_config.json")):
            raise FileNotFoundError(f"{self.cfg.processor_dir} has no processor: run 03_vocab first.")
        self.dataset = load_from_disk(str(source))
        missing = [s for s in ("train", "eval") if s not in self.dataset]
        if missing:
            raise KeyError(f"{source} lacks the split(s) {missing}")
        self.processor = Wav2Vec2Processor.from_pretrained(str(self.cfg.processor_dir))
        self.report["rows_in"] = {s: len(self.dataset[s]) for s in ("train", "eval")}
        return self.dataset, self.processor

    # 3 ---------------------------------------------------------------------------------------------
    def build_model(self):
        self.model = build_model(self.cfg, self.processor, self.world_size, log=self.note)
        self.report["parameters"] = count_parameters(self.model)
        return self.model

    def check(self) -> list[str]:
        notes = check_model(self.model, self.processor, fix=True, log=self.note)
        self.report["guards"] = {"passed": True, "adjusted": notes}
        return notes

    # 4 ---------------------------------------------------------------------------------------------
    def prepare(self):
        """Audio -> input_values (cached in 04_train/prepared), then the feasibility filter."""
        if self.args is None:
            self.args = training_arguments(self.cfg, self.train_dir)
        with self.args.main_process_first(desc="audio preparation"):
            prepared = prepare_dataset(self.dataset, self.processor, self.train_dir / "prepared",
                                       num_proc=self.cfg.num_proc, splits=("train", "eval"),
                                       progress=self.is_main, log=self.log if self.is_main else (lambda *a: None))
        dropped, examples, kept = {}, {}, {}
        for split in ("train", "eval"):
            ds, counts, ex = feasibility(prepared[split], self.model, max_duration_s=self.cfg.max_duration_s,
                                         check_ctc=split == "train", check_mask=split == "train")
            prepared[split] = ds
            dropped[split], examples[split], kept[split] = counts, ex, len(ds)
            if counts:
                what = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in counts.items())
                self.note(f"{split}: dropped {sum(counts.values())} of {len(ds) + sum(counts.values())} rows ({what})")
        if kept["train"] == 0:
            raise GuardError("No training row is left after the feasibility filter; see report['dropped'].")
        self.prepared = prepared
        lengths = prepared["train"].select_columns([LENGTH_COLUMN]).with_format(None)[:][LENGTH_COLUMN]
        self.report.update({"rows_kept": kept, "dropped": dropped, "dropped_examples": examples,
                            "train_hours": round(float(np.sum(lengths)) / 16000 / 3600, 4)})
        return prepared

    # 5 ---------------------------------------------------------------------------------------------
    def sanity_check(self, **kwargs) -> dict[str, Any]:
        result = sanity_check(self.model, self.processor, self.prepared["train"], self.cfg.learning_rate,
                              log=self.log, **kwargs)
        self.report["sanity_check"] = result
        return result

    # 6 ---------------------------------------------------------------------------------------------
    def make_trainer(self):
        if self.args is None:
            self.args = training_arguments(self.cfg, self.train_dir)
        NonFinite, TimeLimit, DriveFlush, EvalReport = _callbacks()
        self._callbacks = {"non_finite": NonFinite(), "time_limit": TimeLimit(self.cfg.max_train_minutes),
                           "drive": DriveFlush(), "eval": EvalReport(self.live, self.log)}
        Trainer = make_trainer_class()
        self.trainer = Trainer(
            model=self.model, args=self.args, data_collator=DataCollatorCTCWithPadding(self.processor),
            train_dataset=self.prepared["train"], eval_dataset=self.prepared["eval"],
            processing_class=self.processor, compute_metrics=make_compute_metrics(self.processor),
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
            callbacks=list(self._callbacks.values()),
        )
        return self.trainer

    def train(self):
        """trainer.train(), resuming when a checkpoint was found; a non-finite loss raises after stopping."""
        if self.trainer is None:
            self.make_trainer()
        start_step = 0
        if self.resume_from is not None:
            start_step = json.loads((Path(self.resume_from) / "trainer_state.json").read_text())["global_step"]
        if self.cfg.sanity_check and "sanity_check" not in self.report:
            self.sanity_check()
        started = time.perf_counter()
        output = self.trainer.train(resume_from_checkpoint=str(self.resume_from) if self.resume_from else None)
        state = self.trainer.state
        failure = self._callbacks["non_finite"].failure
        stopped_at = self._callbacks["time_limit"].stopped_at
        self.report.update({
            "start_step": start_step, "global_step": state.global_step, "max_steps": state.max_steps,
            "epochs": round(state.epoch or 0.0, 3), "train_seconds": round(time.perf_counter() - started, 1),
            "train_loss": output.training_loss if output is not None else None,
            "stopped_by": "non_finite_loss" if failure else ("time_limit" if stopped_at is not None else "completed"),
            "learning_rate": self.cfg.learning_rate, "batch_size": self.cfg.batch_size,
            "gradient_accumulation_steps": self.cfg.gradient_accumulation_steps,
            "precision": {k: v for k, v in choose_precision(self.cfg.precision).items() if v} or "fp32",
        })
        if stopped_at is not None:
            self.note(f"MAX_TRAIN_MINUTES={self.cfg.max_train_minutes}: stopped at step {stopped_at} of "
                      f"{state.max_steps}.")
        if failure:
            self.report["failure"] = failure
            self._write_report()
            raise NonFiniteLossError(failure)
        return output

    # 7 ---------------------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """Evaluate, save 04_train/model (+ processor), curves.png and report.json."""
        metrics = self.trainer.evaluate()
        self.report["eval"] = {k.replace("eval_", ""): v for k, v in metrics.items()}
        tmp = self.train_dir / "model.tmp"
        if self.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        # Every rank calls save_model (sharded models gather their weights there), but under torchrun the
        # other ranks of transformers 5 still write the processor and training_args.bin: give them a
        # folder of their own, removed once every rank is done, so they never touch the main one.
        target = tmp if self.is_main else self.train_dir / f"model.rank{self.rank}.tmp"
        self.trainer.save_model(str(target))
        self.trainer.accelerator.wait_for_everyone()
        if not self.is_main:
            shutil.rmtree(target, ignore_errors=True)
        if self.is_main:
            self.processor.save_pretrained(str(tmp))
            if self.model_dir.exists():  # only reachable with OVERWRITE_MODEL=True (checked before training)
                shutil.rmtree(self.model_dir)
            os.replace(tmp, self.model_dir)
            self.report["curves"] = str(save_curves(self.trainer.state.log_history, self.train_dir / "curves.png"))
            from .colab import flush_drive

            self._write_report()
            flush_drive()
        return self.report

    def _write_report(self) -> Path | None:
        if not self.is_main:
            return None
        history = self.trainer.state.log_history if self.trainer is not None else []
        self.report["history"] = [
            {k: v for k, v in entry.items() if k in ("step", "epoch", "loss", "eval_loss", "eval_wer", "eval_cer",
                                                     "eval_empty_share", "learning_rate", "grad_norm")}
            for entry in history]
        self.report["notes"] = self.notes
        self.report["model_dir"] = str(self.model_dir)
        path = self.train_dir / "report.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.report, indent=2, ensure_ascii=False, default=_plain) + "\n")
        os.replace(tmp, path)
        return path

    def run(self) -> dict[str, Any]:
        self.check_outputs()
        self.load()
        self.build_model()
        self.check()
        self.prepare()
        self.make_trainer()
        self.train()
        return self.finish()


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def run_train(cfg: Config, live=None, log: Callable = log_main) -> dict[str, Any]:
    """The whole step; returns the report (also written to 04_train/report.json)."""
    return Training(cfg, log=log, live=live).run()


def eval_history(report_or_history) -> list[dict[str, float]]:
    """(step, WER, CER, empty share) of every evaluation, for tables and tests."""
    history = report_or_history.get("history", []) if isinstance(report_or_history, dict) else report_or_history
    by_step = {e["step"]: {"step": e["step"], "wer": e["eval_wer"], "cer": e["eval_cer"],
                           "empty_share": e.get("eval_empty_share")}
               for e in history if "eval_cer" in e}  # the final evaluation repeats the last step's: keep one
    return [by_step[step] for step in sorted(by_step)]


# --------------------------------------------------------------------------------------------------
# command line: xlsr train / torchrun -m xlsr_helpers.train / accelerate launch -m xlsr_helpers.train
# --------------------------------------------------------------------------------------------------
def train_main(argv: list[str] | None = None) -> int:
    """``--run-dir DIR [-p NAME=VALUE ...]``: train step 04 of an existing run folder.

    Parameters not given come from the run folder's run.json (what 01-03 used). Runs unchanged under
    ``torchrun --nproc_per_node N -m xlsr_helpers.train ...`` and
    ``accelerate launch --multi_gpu --num_processes N -m xlsr_helpers.train ...`` (on CPUs use torchrun:
    ``accelerate launch --cpu`` starts a single process).
    """
    from .cli import parse_assignment

    parser = argparse.ArgumentParser(prog="xlsr train", description=train_main.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="the run folder (RUN_DIR) that steps 01-03 filled")
    parser.add_argument("-p", "--param", action="append", type=parse_assignment, default=[], metavar="NAME=VALUE",
                        help="any parameter, e.g. -p MAX_STEPS=200 -p BATCH_SIZE=8")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir).expanduser().resolve()
    params = {"RUN_DIR": str(run_dir), **dict(args.param)}
    if not (run_dir / "run.json").exists():
        print(f"xlsr train: {run_dir} has no run.json; run steps 01-03 first (xlsr run --steps 1-3).",
              file=sys.stderr)
        return 2
    if "LANGUAGE" not in params:
        params["LANGUAGE"] = Config.load(run_dir).language
    cfg = Config.from_params(params, step=STEP, save=int(os.environ.get("RANK", "0")) == 0)
    try:
        report = run_train(cfg)
    except (GuardError, ModelExistsError, NonFiniteLossError, FileNotFoundError) as error:
        print(f"xlsr train: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        ev = report.get("eval", {})
        print(f"Done: step {report.get('global_step')}, eval WER {ev.get('wer', float('nan')):.3f}, "
              f"CER {ev.get('cer', float('nan')):.3f}; model in {report.get('model_dir')}")
    return 0


if __name__ == "__main__":
    sys.exit(train_main(sys.argv[1:]))
