"""The passes that run over many sentences at once give what the one-sentence versions give."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from xlsr_helpers.chars import count_chars
from xlsr_helpers.leakage import sentence_key, sentence_keys
from xlsr_helpers.normalize import Normalizer
from xlsr_helpers.translate import NUMPY_FROM_CHARS, TranslateTable

ODD = ["Çiçek dağı", "e\u0301 İi ı", "", "𝔘 🙂🙂 \ud800", "ΟΔΟΣ ΣΑ", "l·l o'g' tog‘", "|a|  b\u00a0 c\u2003",
       "  leading and trailing  ", "Don’t — «quoted»", "３４５ ｆｕｌｌ", "a\nb"]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pool = "".join(set("".join(ODD))) + "abcdefghij .,!?-'’\"«»0123\t"
    return ODD + ["".join(rng.choice(pool) for _ in range(rng.randrange(0, 60))) for _ in range(n)]


def test_count_chars_counts_like_counter():
    texts = _texts(200)
    assert count_chars(texts) == Counter("".join(texts))
    assert count_chars([]) == Counter()
    assert count_chars("aab") == Counter("aab")


@pytest.mark.parametrize("fate", [
    lambda ch: ch.upper() if len(ch.upper()) == 1 else ch,  # one character each
    lambda ch: None if ch in "aeiou ’" else ch,  # deletions
    lambda ch: "" if ch.isspace() else ch,  # "" deletes too
    lambda ch: "ss" if ch == "ß" else ch,  # a character that becomes two: str.translate's path
])
def test_long_text_translates_like_str_translate(fate):
    text = "ß".join(_texts(2000))
    assert len(text) > NUMPY_FROM_CHARS  # the numpy path
    assert TranslateTable(fate).translate(text) == text.translate(TranslateTable(fate))


def test_sentence_keys_are_the_sentence_key_of_each():
    texts = _texts(3000)
    assert sentence_keys(texts) == [sentence_key(t) for t in texts]  # "a\nb" is in: one by one
    without_newline = [t for t in texts if "\n" not in t]
    assert sentence_keys(without_newline) == [sentence_key(t) for t in without_newline]
    assert sentence_keys([]) == []


@pytest.mark.parametrize("language,options", [
    ("tr", {}), ("uz", {}), ("ca", {}), ("fr", {"keep_chars": "-'"}), ("de", {"chars_to_ignore": "'"}),
    ("el", {}), ("fa", {}), ("ja", {}), ("en", {"keep_chars": "\u00a0|"}), ("tr", {"chars_to_ignore": "\x00"}),
])
def test_normalize_many_is_the_normalizer_of_each(language, options):
    texts = _texts(3000) + [None]
    normalizer = Normalizer(language, **options)
    one_by_one = [normalizer(t) for t in texts]
    assert normalizer.normalize_many(texts) == one_by_one
    assert normalizer.normalize_many(texts + ["a\x00b"])[:-1] == one_by_one  # the separator in a text: one by one
    assert Normalizer(language, mode="seed_regex").normalize_many(texts[:50]) == \
        [Normalizer(language, mode="seed_regex")(t) for t in texts[:50]]


def test_contains_any_finds_what_isdisjoint_finds():
    from xlsr_helpers.chars import contains_any

    texts = _texts(500)
    for chars in ({"'"}, {"a", "]", "\\", "^", "-"}, {"🙂", "\ud800"}, set()):
        holds = contains_any(chars)
        assert [bool(holds(t)) for t in texts] == [not chars.isdisjoint(t) for t in texts]
