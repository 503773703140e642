"""Settings that are known to make training fail (or silently learn nothing), refused before step 1 with a
message that says what to do; and the optional check that the setup can overfit a few clips."""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..audio import LENGTH_COLUMN
from ..ctc import blank_id, decode_labels, error_rates, greedy_decode
from .data import DataCollatorCTCWithPadding, split_batch
from .distributed import log_main

SANITY_CLIPS = 8
SANITY_MAX_STEPS = 300
SANITY_PASS_CER = 0.5


class GuardError(ValueError):
    """A setting that is known to make training fail (or silently learn nothing); the message says what to do."""


def check_same_model(model: str, vocab_report_path: str | Path) -> None:
    """Step 03 built the processor (feature extractor, vocabulary layout) for one MODEL: training another
    would feed it inputs of the wrong kind (raw audio to w2v-BERT) or the wrong normalization."""
    path = Path(vocab_report_path)
    built_for = json.loads(path.read_text()).get("model") if path.exists() else None
    same = lambda a, b: a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())  # noqa: E731
    if built_for is not None and not same(built_for, model):
        raise GuardError(
            f"03_vocab built the processor for MODEL={built_for!r}, but this step trains MODEL={model!r}. "
            f"Run 03_vocab again with MODEL={model!r} (e.g. `xlsr run --steps 3-4 -p MODEL={model}`), "
            f"or set MODEL={built_for!r} here.")


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
                         "vocab_size=len(tokenizer) (models.build_model does), and use 03_vocab's processor.")


def check_loss_reduction(model) -> None:
    if model.config.ctc_loss_reduction != "mean":
        raise GuardError(f"ctc_loss_reduction={model.config.ctc_loss_reduction!r}: with 'sum' the loss (and the "
                         "gradient) grows with the batch and clip length, and the seed's learning rate diverges. "
                         "Use ctc_loss_reduction='mean'.")


def check_input_kind(model, processor) -> None:
    """The feature extractor makes the input the model reads (raw samples vs filterbank features)."""
    made = processor.feature_extractor.model_input_names[0]
    if made != model.main_input_name:
        raise GuardError(f"The feature extractor makes {made!r} but the model reads {model.main_input_name!r}: "
                         "03_vocab built the processor for another model family. Run 03_vocab with this MODEL.")


def check_attention_mask(model, processor, fix: bool = True, log: Callable = log_main) -> bool:
    """A layer-norm feature encoder (XLSR, XLS-R, MMS, lv60), or a model without one (w2v-BERT), needs the
    attention mask: without it, the zero padding of shorter clips is read as signal and changes every frame.

    Group-norm encoders (wav2vec2-base, HuBERT/WavLM base) normalize over the padded length whether or not
    a mask is given; their checkpoint's own preprocessor_config.json is kept as it is (evaluation never
    pads them). With ``fix`` a missing mask is switched on in the processor (saved with every checkpoint);
    else it raises. Returns True when something was changed.
    """
    norm = getattr(model.config, "feat_extract_norm", "layer")
    extractor = processor.feature_extractor
    if norm == "group" or extractor.return_attention_mask:
        return False
    message = (f"The model's feature encoder uses {norm!r} norm, which needs the attention mask, but the feature "
               "extractor has return_attention_mask=False.")
    if not fix:
        raise GuardError(message + " Rebuild 03_vocab with the same MODEL as training.")
    extractor.return_attention_mask = True
    log(message + " Set to True for training; the processor saved with the model carries the fix.")
    return True


def check_model(model, processor, fix: bool = True, log: Callable = log_main) -> list[str]:
    """Every guard on a built model; returns notes about what was adjusted."""
    notes = []
    check_vocabulary(model, processor)
    check_loss_reduction(model)
    check_input_kind(model, processor)
    if check_attention_mask(model, processor, fix=fix, log=log):
        notes.append(f"return_attention_mask set to {processor.feature_extractor.return_attention_mask}")
    return notes


# --------------------------------------------------------------------------------------------------
# can this setup learn at all?
# --------------------------------------------------------------------------------------------------
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
    batch = DataCollatorCTCWithPadding(processor)([dataset[i] for i in rows])
    batch = {k: v.to(device) for k, v in batch.items()}
    inputs, _ = split_batch(batch)
    references = decode_labels(processor.tokenizer, batch["labels"].cpu().numpy())
    probe = copy.deepcopy(model).to(device)
    probe.config.mask_time_prob = 0.0
    probe.config.layerdrop = 0.0
    probe.train()
    optimizer = torch.optim.AdamW([p for p in probe.parameters() if p.requires_grad], lr=learning_rate)
    warmup = max(1, max_steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    texts = lambda: transcripts(probe, processor, batch)  # noqa: E731
    before = error_rates(references, texts())
    first_loss = last_loss = None
    after = before
    started = time.perf_counter()
    step = 0
    for step in range(1, max_steps + 1):
        loss = probe(**inputs).loss
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
            after = error_rates(references, texts())
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


def transcripts(model, processor, batch) -> list[str]:
    """Greedy transcripts of a collated batch (on the model's device), each clip from its own frames only."""
    import torch

    from ..audio import output_frames

    inputs, lengths = split_batch(batch)
    inputs = {k: v for k, v in inputs.items() if k != "labels"}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        ids = model(**inputs).logits.argmax(dim=-1).cpu().numpy()
    model.train(was_training)
    frames = output_frames(model, processor.feature_extractor, lengths.cpu().numpy())
    return greedy_decode(processor.tokenizer, [row[:n] for row, n in zip(ids, frames)],
                         blank_id(processor.tokenizer, model.config))
