"""Sentences: random 2-5 word sentences from a language's closed vocabulary, each new.

Learnability comes first: about 30 common words read in random sentences let a 0.5M-parameter CTC model
learn in minutes on a CPU. Text normalization still has real work to do: sentence-initial capitals and
proper nouns (Turkish İ and I), punctuation (with the language's own marks and spacing), apostrophes
(straight and typographic), hyphens, quotes (some sentences start with a straight double quote), rare
digits, and spelling variants that are spoken alike (Russian ё/е, Arabic harakat, Hindi nukta forms).
Each sentence comes as a pair: the written form, and the text espeak-ng is given to read.
"""

from __future__ import annotations

import random

from .lexicon import LanguageSpec


def lower(s: str, locale: str) -> str:
    """Lower case, with Turkish and Azerbaijani dotted and dotless i."""
    if locale in ("tr", "az"):
        s = s.replace("I", "ı").replace("İ", "i")
    return s.lower()


def capitalize(s: str, spec: LanguageSpec) -> str:
    """The first letter in upper case (where the script has cases; Turkish i -> İ)."""
    if not spec.cased or not s or not s[0].isalpha():
        return s
    first = s[0]
    if spec.locale in ("tr", "az"):
        up = {"i": "İ", "ı": "I"}.get(first, first.upper())
    else:
        up = first.upper()
    return (up if len(up) == 1 else first) + s[1:]


class SentenceMaker:
    """Random sentences of 2-5 words from the closed vocabulary; every sentence is new (by key)."""

    P_SPECIAL = 0.3  # one proper noun / apostrophe / hyphen word
    P_NUMBER = 0.03  # one number written in digits
    P_QUOTE = 0.15  # quoted speech; two thirds of those start with a straight double quote
    P_VARIANT = 0.3  # spelling variant of a word that has one
    P_TYPO_APOSTROPHE = 0.25  # ’ instead of '

    def __init__(self, spec: LanguageSpec, rng: random.Random):
        self.spec, self.rng = spec, rng
        self.used: set[tuple[str, ...]] = set()

    def _surface(self, w: str) -> str:
        rng = self.rng
        v = self.spec.variants.get(w)
        if v and rng.random() < self.P_VARIANT:
            w = rng.choice(v)
        if "'" in w and rng.random() < self.P_TYPO_APOSTROPHE:
            w = w.replace("'", "’")
        return w

    def _say(self, w: str) -> str:
        return self.spec.say.get(w, w)

    def _words(self, n: int) -> list[str]:
        rng, spec = self.rng, self.spec
        words = [rng.choice(spec.words) for _ in range(n)]
        if spec.specials and rng.random() < self.P_SPECIAL:
            words[rng.randrange(n)] = rng.choice(spec.specials)
        if spec.numbers and rng.random() < self.P_NUMBER:
            words[rng.randrange(n)] = rng.choice(spec.numbers)
        return words

    def _attach(self, text: str, mark: str) -> str:
        """Append a punctuation mark, with the language's space before it where that is the custom."""
        spec, rng = self.spec, self.rng
        p = spec.space_before.get(mark, 0.0)
        if p and rng.random() < p:
            text += "\u00a0" if rng.random() < spec.nbsp else " "
        return text + spec.mark(mark)

    def _clause(self, words: list[str], end: str) -> tuple[str, str]:
        """Written and spoken form of a word list with inner punctuation and an end mark."""
        spec, rng = self.spec, self.rng
        text, say = "", ""
        n = len(words)
        for i, w in enumerate(words):
            surface = self._surface(w)
            if i == 0:
                surface = capitalize(surface, spec)
            text += (spec.space if i else "") + surface
            say += (" " if i else "") + self._say(w)
            if 0 < i < n - 1:
                r = rng.random()
                mark = "," if r < 0.10 else ":" if r < 0.12 else ";" if r < 0.14 else ""
                if mark:
                    text = self._attach(text, mark)
                    say += ","
        if end:
            if end in spec.open:
                text = spec.open[end] + text
            text = self._attach(text, end)
            say += "." if end == "..." else end
        return text, say

    def new(self) -> tuple[str, str]:
        """A new (written sentence, text given to espeak-ng) pair."""
        rng = self.rng
        for _ in range(10_000):
            words = self._words(rng.randint(2, 5))
            key = tuple(lower(w, self.spec.locale) for w in words)
            if key in self.used:
                continue
            self.used.add(key)
            if self.spec.quote_templates and rng.random() < self.P_QUOTE:
                inner_end = rng.choices(["!", "?", ",", ""], weights=(3, 2, 2, 1))[0]
                q_text, q_say = self._clause(words, inner_end)
                tpls = self.spec.quote_templates
                tpl = rng.choices(tpls, weights=[2] + [1] * (len(tpls) - 1))[0]
                return tpl["text"].replace("{q}", q_text), tpl["say"].replace("{q}", q_say.rstrip(","))
            end = rng.choices([".", "?", "!", "", "..."], weights=(55, 15, 12, 13, 5))[0]
            return self._clause(words, end)
        raise RuntimeError(f"could not make enough distinct sentences for {self.spec.locale}")
