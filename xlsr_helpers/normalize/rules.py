"""The characters step 02's rules work with, and what a language's alphabet changes in them.

The 2021 notebook's characters (:data:`SEED_CHARS`), the word delimiter of every Wav2Vec2 vocabulary and what a
literal one becomes, the typographic variants unified before the punctuation rule (apostrophes, quotes, dashes),
and :class:`AlphabetRules`: the exceptions that the language's alphabet (Unicode CLDR's exemplar characters,
:mod:`xlsr_helpers.alphabets`) makes to "punctuation and symbols go" (saved in normalizer.json).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from ..alphabets import ITEM_SEPARATOR, Alphabet
from .profiles import Profile

SEED_CHARS = ',?.!-;:"“%‘”�'  # the 2021 notebook's chars_to_ignore_regex, as characters
# "|" is the CTC word delimiter of every Wav2Vec2 vocabulary; text must never contain it. (The delimiter
# cannot be another character: transformers 5 reloads Wav2Vec2CTCTokenizer with "|" whatever was saved.)
WORD_DELIMITER = "|"
DELIMITER_STAND_IN = "¦"  # what a "|" that survives normalization (KEEP_CHARS, seed regex) becomes

APOSTROPHES = "’‘‛´`′ʼ＇"  # -> '   (ʻ U+02BB is left alone: a letter in Uzbek, Hawaiian, Tongan)
DOUBLE_QUOTES = "“”„‟«»‹›″〝〞＂"  # -> "
DASHES = "‐‑‒–—―−﹘﹣－"  # -> -
APOSTROPHE = "'"  # what the APOSTROPHES become in step 3


@dataclass(frozen=True)
class AlphabetRules:
    """What the language's alphabet changes in the punctuation rule (saved in normalizer.json)."""

    locale: str  # the CLDR locale of the alphabet
    cldr_version: str
    word_marks: str = ""  # letters that Unicode calls punctuation/symbols (Catalan ·): kept inside words
    new_letters: str = ""  # letters this Python's Unicode database does not know yet (category Cn): kept
    apostrophe: str = ""  # the alphabet's apostrophe (ʼ): the APOSTROPHES inside a word become it
    # clusters that end in an apostrophe or a word mark (Uzbek oʻ gʻ, Navajo ch’): that last character is
    # kept at the end of a word too (togʻ, "mountain"); joined by ITEM_SEPARATOR
    mark_clusters: str = ""

    @classmethod
    def of(cls, alphabet: Alphabet, profile: Profile) -> "AlphabetRules":
        characters = alphabet.characters()
        ordered = sorted(characters)
        apostrophes = [ch for ch in ordered if ch in APOSTROPHES + APOSTROPHE]
        profile_maps_apostrophes = any(APOSTROPHE in new or set(old) & set(APOSTROPHES) for old, new in profile.mapping)
        apostrophe = ""
        apostrophe_like = set(APOSTROPHES + APOSTROPHE) | {old for old, new in profile.mapping if new == APOSTROPHE}
        if apostrophes and not profile_maps_apostrophes:  # the form most of the alphabet's items use (kek: ’)
            apostrophe = max(apostrophes, key=lambda a: sum(a in item for item in alphabet.items))
        return cls(
            locale=alphabet.locale, cldr_version=alphabet.cldr_version,
            word_marks="".join(ch for ch in ordered if unicodedata.category(ch)[0] in "PS"
                               and (ch == apostrophe or ch not in APOSTROPHES + APOSTROPHE)),
            new_letters="".join(ch for ch in ordered if unicodedata.category(ch) == "Cn"),
            apostrophe=apostrophe,
            mark_clusters=ITEM_SEPARATOR.join(
                item for item in alphabet.items
                if len(item) > 1 and (item[-1] in apostrophe_like or unicodedata.category(item[-1])[0] in "PS")),
        )
