"""Greedy CTC decoding: one implementation, used by training's metrics (step 04) and step 05's transcriber.

Greedy decoding takes the most likely token per frame, merges repeats and drops blanks (the pad token);
frames outside a clip (marked -100 by the batch padding of the Trainer, or by training's valid-frame mask)
count as blanks, so a clip's text never depends on how it was batched. References are decoded from label
ids without merging (``group_tokens=False``): "ll" stays "ll".
"""

from __future__ import annotations

import numpy as np

from .metrics import error_rates  # noqa: F401 - WER/CER live in metrics.py; train/ still imports them from here

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
