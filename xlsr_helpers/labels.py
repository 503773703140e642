"""Label ids of sentences for any CTC tokenizer, and the round trip that checks them.

Training learns label ids; evaluation compares text. The two must agree: every sentence encoded and decoded back
(as labels: no merging of repeats) must be itself. This holds for a character vocabulary built by step 03
(``Wav2Vec2CTCTokenizer``) and for a model's own subword tokenizer (SentencePiece pieces of Omnilingual ASR or
Parakeet) alike. Labels never hold special tokens (``add_special_tokens=False``: a CTC target has no <s>).
"""

from __future__ import annotations

import random
from typing import Any

from .chars import contains_any
from .ctc import decode_ids, is_character_tokenizer
from .translate import TranslateTable

ROUND_TRIP_SAMPLE = 2000  # training sentences checked at random, besides the first one with each character
ENCODE_CHECK = 200  # sentences that :func:`encode` checks against the tokenizer before its fast path


def tokenize(tokenizer, texts: list[str]) -> list[list[int]]:
    """The tokenizer's label ids of each text (no special tokens added)."""
    return tokenizer(texts, add_special_tokens=False).input_ids if texts else []


def round_trip_sample(sentences: list[str], size: int = ROUND_TRIP_SAMPLE, seed: int = 0) -> list[str]:
    """The first sentence with each character, then up to ``size`` others at random (seeded), in corpus order."""
    chosen, seen = set(), set()
    for i, sentence in enumerate(sentences):
        if not set(sentence) <= seen:
            chosen.add(i)
            seen |= set(sentence)
    rest = [i for i in range(len(sentences)) if i not in chosen]
    chosen |= set(random.Random(seed).sample(rest, min(size, len(rest))))
    return [sentences[i] for i in sorted(chosen)]


def encode(tokenizer, texts: list[str]):
    """Label ids of many sentences as one Arrow column (``list<int32>``): the ids of :func:`tokenize`.

    Kept by hand because it was measured: a character vocabulary (Wav2Vec2CTCTokenizer: a space becomes the word
    delimiter, every other character its token) encodes as one ``str.translate`` of all the sentences joined, each
    character turned into the character whose code is its id, read back as 32-bit integers: 0.2 s for 100,000
    sentences, against 17 s through the tokenizer (~170 us a sentence) and 0.7 s with a lookup per character.
    Used only when the vocabulary is single characters and the tokenizer does not change case; sentences holding a
    special token's text go through the tokenizer; and the first ``ENCODE_CHECK`` sentences are encoded both ways:
    any difference and the tokenizer encodes everything. A subword tokenizer always encodes through itself (a fast
    tokenizer: ~1 s for 100,000 sentences).
    """
    import numpy as np
    import pyarrow as pa

    column_type = pa.list_(pa.int32())
    if not texts:
        return pa.array([], column_type)
    vocab = tokenizer.get_vocab()
    specials = [t for t in tokenizer.all_special_tokens if t]
    single = all(len(token) == 1 for token in vocab if token not in specials)
    delimiter = getattr(tokenizer, "word_delimiter_token", None)
    if (not is_character_tokenizer(tokenizer) or not single or getattr(tokenizer, "do_lower_case", False)
            or delimiter not in vocab or max(vocab.values()) >= 0xD800):  # ids from 0xD800 are no characters
        return pa.array(tokenize(tokenizer, texts), column_type)
    unknown = chr(tokenizer.unk_token_id)  # a character outside the vocabulary: the unknown token, as the tokenizer
    table = TranslateTable(lambda ch: unknown, {ord(token): chr(i) for token, i in vocab.items() if len(token) == 1})
    table[ord(" ")] = chr(vocab[delimiter])
    ids = np.frombuffer(table.translate("".join(texts)).encode("utf-32-le"), dtype=np.int32)
    offsets = np.zeros(len(texts) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, texts), dtype=np.int32, count=len(texts)), out=offsets[1:])
    labels = pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids))
    sample = texts[:ENCODE_CHECK]
    if labels.slice(0, len(sample)).to_pylist() != tokenize(tokenizer, sample):
        return pa.array(tokenize(tokenizer, texts), column_type)
    holds_special_start = contains_any(t[0] for t in specials)
    odd = [i for i, t in enumerate(texts) if holds_special_start(t) and any(s in t for s in specials)]
    if odd:  # a special token's text in a sentence: the tokenizer's own answer for those
        rows = labels.to_pylist()
        for i in odd:
            rows[i] = tokenize(tokenizer, [texts[i]])[0]
        return pa.array(rows, column_type)
    return labels


def round_trip(tokenizer, sentences: list[str], max_examples: int = 10) -> dict[str, Any]:
    """Encode -> decode as labels (:func:`ctc.decode_ids`, no merging) every sentence; it must come back identical
    and without the unknown token."""
    failures, examples = 0, []
    unk = tokenizer.unk_token_id
    encoded = tokenize(tokenizer, sentences)
    for sentence, ids, back in zip(sentences, encoded, decode_ids(tokenizer, encoded)):
        if back != sentence or unk in ids:
            failures += 1
            if len(examples) < max_examples:
                examples.append({"sentence": sentence, "decoded": back, "has_unk": unk in ids})
    return {"checked": len(sentences), "failures": failures, "ok": failures == 0 and bool(sentences),
            "examples": examples}
