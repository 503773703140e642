"""Greedy CTC decoding and WER/CER: one implementation, used by training's metrics (step 04) and step 05.

Greedy decoding takes the most likely token per frame, merges repeats and drops blanks (the pad token);
frames outside a clip (marked -100 by the batch padding of the Trainer, or by training's valid-frame mask)
count as blanks, so a clip's text never depends on how it was batched. References are decoded from label
ids without merging (``group_tokens=False``): "ll" stays "ll".
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

IGNORED_ID = -100  # label padding (ignored by the CTC loss) and frames outside a clip


def greedy_decode(tokenizer, frame_ids) -> list[str]:
    """Text of each clip from its per-frame argmax ids (a padded array, or one sequence per clip)."""
    pad = tokenizer.pad_token_id
    rows = [np.where(np.asarray(ids) < 0, pad, np.asarray(ids)) for ids in frame_ids]
    return tokenizer.batch_decode([row.tolist() for row in rows])


def decode_labels(tokenizer, label_ids) -> list[str]:
    """References from label ids: -100 -> pad, and no merging of repeated letters (group_tokens=False)."""
    ids = np.asarray(label_ids).copy()
    ids[ids == IGNORED_ID] = tokenizer.pad_token_id
    return tokenizer.batch_decode(ids, group_tokens=False)


def error_rates(references: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
    """Corpus WER and CER (jiwer: errors over all pairs / reference words or characters) and the share of
    empty predictions; NaN when no reference has a word."""
    import jiwer

    refs, preds = list(references), list(predictions)
    if len(refs) != len(preds):
        raise ValueError(f"{len(refs)} references but {len(preds)} predictions")
    if not any(r.strip() for r in refs):
        return {"wer": float("nan"), "cer": float("nan"), "empty_share": float("nan")}
    return {
        "wer": float(jiwer.wer(refs, preds)),
        "cer": float(jiwer.cer(refs, preds)),
        "empty_share": sum(1 for p in preds if not p.strip()) / len(preds),
    }
