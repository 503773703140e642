"""Greedy CTC decoding: one implementation, used by training's metrics (step 04) and step 05's transcriber.

Greedy decoding takes the most likely token per frame, merges repeats and drops blanks; frames outside a clip
(marked -100 by the batch padding of the Trainer, or by training's valid-frame mask) count as blanks, so a clip's
text never depends on how it was batched. References are decoded from label ids without merging: "ll" stays "ll".

The blank is the model's: ``config.blank_token_id`` where the config has one (Omnilingual ASR: id 0, its pad token
being another), else the pad token (wav2vec2-style, Parakeet). The merged ids become text through the model's own
tokenizer, so this works for a character vocabulary (``Wav2Vec2CTCTokenizer``: the word delimiter "|" becomes a
space, an unknown character stays ``[UNK]``) and for a subword one (SentencePiece pieces of Omnilingual ASR or
Parakeet, whose "▁" marks a word's start; special tokens are left out, as their processors decode).
"""

from __future__ import annotations

import inspect

import numpy as np

from .metrics import error_rates  # noqa: F401 - WER/CER live in metrics.py; train/ still imports them from here

IGNORED_ID = -100  # label padding (ignored by the CTC loss) and frames outside a clip


def blank_id(tokenizer, config=None) -> int:
    """The CTC blank of a model: its config's ``blank_token_id`` when it has one, else the tokenizer's pad token."""
    blank = getattr(config, "blank_token_id", None) if config is not None else None
    return int(blank) if blank is not None else int(tokenizer.pad_token_id)


def is_character_tokenizer(tokenizer) -> bool:
    """A wav2vec2-style CTC tokenizer: one token per character, the space written as a word delimiter."""
    return getattr(tokenizer, "word_delimiter_token", None) is not None


def _takes_group_tokens(tokenizer) -> bool:
    return "group_tokens" in inspect.signature(tokenizer._decode).parameters


def decode_ids(tokenizer, rows) -> list[str]:
    """Text of each id sequence, every token once (CTC output already merged, or labels): a character tokenizer
    decodes as it always has (``group_tokens=False``); any other without its special tokens."""
    rows = [[int(i) for i in row] for row in rows]
    if is_character_tokenizer(tokenizer):
        return tokenizer.batch_decode(rows, group_tokens=False)
    kwargs = {"group_tokens": False} if _takes_group_tokens(tokenizer) else {}
    return tokenizer.batch_decode(rows, skip_special_tokens=True, **kwargs)


def merge(ids, blank: int) -> np.ndarray:
    """One clip's CTC path to its tokens: -100 frames count as blank, repeats merged, blanks dropped."""
    ids = np.asarray(ids).reshape(-1)
    ids = np.where(ids < 0, blank, ids)
    if ids.size == 0:
        return ids
    keep = np.ones(ids.size, dtype=bool)
    keep[1:] = ids[1:] != ids[:-1]
    ids = ids[keep]
    return ids[ids != blank]


def greedy_decode(tokenizer, frame_ids, blank: int | None = None) -> list[str]:
    """Text of each clip from its per-frame argmax ids (a padded array, or one sequence per clip); ``blank``: the
    model's (:func:`blank_id`), the pad token when not given."""
    blank = int(tokenizer.pad_token_id) if blank is None else int(blank)
    return decode_ids(tokenizer, [merge(ids, blank) for ids in frame_ids])


def decode_labels(tokenizer, label_ids) -> list[str]:
    """References from label ids: -100 left out, and no merging of repeated tokens."""
    return decode_ids(tokenizer, [[i for i in np.asarray(row).reshape(-1).tolist() if i != IGNORED_ID]
                                  for row in label_ids])
