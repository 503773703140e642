"""The leakage guard of step 01: what counts as "test", and the proof that none of it reached train or eval.

The event's one hard rule: test clips and test sentences never reach train or eval. Every test row of every
source, before any filter, defines what is "test" (:func:`known_test`): its clip ids, and its sentences under a
loose comparison key (:func:`sentence_key`). Step 01's filters drop a train/eval row whose clip or key is in
there (reasons ``leak_path`` and ``leak_sentence``), and :func:`leakage_report` counts what is left (nothing)
and the speakers that splits share; :func:`leakage_table` shows that report in notebook 01.

This module must not import later steps (normalize, vocab, train): the key is its own simple one, looser than
any normalizer; 02_normalize checks again after the real normalization.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Iterable

from .translate import TranslateTable


# --------------------------------------------------------------------------------------------------
# the comparison key
# --------------------------------------------------------------------------------------------------
def sentence_key(text: str) -> str:
    """A loose comparison key for the leakage guard: NFKC, casefolded, letters/marks/digits only.

    Deliberately looser than any normalizer (spaces, punctuation and symbols are ignored, Turkish
    dotted/dotless i are one letter), so that a test sentence is caught whatever 02_normalize later
    does to it.
    """
    return _folded(text).translate(_KEY_CHARS)


def sentence_keys(texts: list[str]) -> list[str]:
    """``[sentence_key(text) for text in texts]``: the Unicode passes text by text (on short texts they take their
    ASCII and Latin-1 shortcuts: on the joined texts they took 2.5x as long), the character filter once over the
    texts joined by a newline (100,000 sentences: 0.2 s instead of 0.4 s). A text with a newline of its own: one
    by one."""
    folded = [_folded(text) for text in texts]
    joined = "\n".join(folded)
    if joined.count("\n") != len(texts) - 1:
        return [text.translate(_KEY_CHARS) for text in folded]
    return _KEY_CHARS_JOINED.translate(joined).split("\n")


def _folded(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return unicodedata.normalize("NFKC", text.replace("i\u0307", "i").replace("ı", "i"))  # Turkish İ/I/ı


def _key_char(ch: str) -> str | None:
    """Letters, marks and digits stay in a :func:`sentence_key`, any other character goes."""
    return ch if unicodedata.category(ch)[0] in "LMN" else None


# a Python loop over the characters with unicodedata.category took 10 us a sentence (1 s per 100,000); this 3.4 us
_KEY_CHARS = TranslateTable(_key_char)
_KEY_CHARS_JOINED = TranslateTable(_key_char, {ord("\n"): "\n"})  # sentence_keys' separator stays


# --------------------------------------------------------------------------------------------------
# what is "test", and what the guard left
# --------------------------------------------------------------------------------------------------
def known_test(test_rows: Iterable[Any], sources: Iterable[Any]) -> tuple[set[str], set[str]]:
    """(clip ids, sentence keys) that are "test": the test rows (before any filter, each with its ``key``), and the
    test clips and sentences that a source knows without yielding them as rows (a limit, a stream)."""
    test_rows, sources = list(test_rows), list(sources)
    ids = {r.id for r in test_rows} | {i for s in sources for i in s.test_ids}
    keys = {r.key for r in test_rows if r.key}
    keys |= {k for s in sources for k in map(sentence_key, s.test_sentences) if k}
    return ids, keys


def leakage_report(final: dict[str, list[Any]], ids: set[str], keys: set[str], removed: dict[str, int],
                   keep_test_speakers: bool = False) -> dict[str, Any]:
    """The report's ``leakage`` section: what was known as test, what the guard removed (``removed``: leak_path and
    leak_sentence counts, and test_speaker / eval_speaker: validated/other rows of those speakers kept out of train),
    what of it is left in train or eval (0 by construction), and the speakers splits share — what the model card
    says about speakers (``keep_test_speakers``: KEEP_TEST_SPEAKERS_IN_TRAIN let validated/other rows of test and
    eval speakers into train). ``speakers`` counts each split's speakers; ``rows_without_speaker`` its rows whose
    source names none (then nobody can say whether those clips share a voice with another split)."""
    speakers = {split: {r.speaker for r in rows if r.speaker} for split, rows in final.items()}
    train_speakers, eval_speakers, test_speakers = speakers["train"], speakers["eval"], speakers["test"]
    return {
        "test_keys_known": {"sentences": len(keys), "clips": len(ids)},
        "removed_by_path": removed["leak_path"],
        "removed_by_sentence": removed["leak_sentence"],
        "removed_test_speaker_rows": removed.get("test_speaker", 0),
        "removed_eval_speaker_rows": removed.get("eval_speaker", 0),
        "test_speakers_kept_in_train": keep_test_speakers,
        "test_clips_in_train_or_eval": len(ids & {r.id for s in ("train", "eval") for r in final[s]}),
        "test_sentences_in_train_or_eval": len(keys & {r.key for s in ("train", "eval") for r in final[s]}),
        "speakers": {split: len(names) for split, names in speakers.items()},
        "rows_without_speaker": {split: sum(1 for r in rows if not r.speaker) for split, rows in final.items()},
        "speaker_overlap_train_test": len(train_speakers & test_speakers),
        "speaker_overlap_eval_test": len(eval_speakers & test_speakers),
        "speaker_overlap_train_eval": len(train_speakers & eval_speakers),
    }


def leakage_table(report: dict[str, Any]):
    """The leakage section of the report as one column of numbers (speaker counts by split flattened)."""
    import pandas as pd

    flat: dict[str, Any] = {}
    for key, value in report["leakage"].items():
        if isinstance(value, dict):
            flat.update({f"{key}: {name}": n for name, n in value.items()})
        else:
            flat[key] = value
    return pd.Series(flat, name="value").to_frame()
