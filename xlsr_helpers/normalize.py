"""Step 02: text normalization per language, character inventory, the saved normalizer.

The normalizer decides what the model learns to write, so it is part of the model: it is saved as
``02_normalize/normalizer.json`` and reused by evaluation (references) and the model card
(:func:`load_normalizer`). Languages differ as *data* (:data:`PROFILES`), not as if-chains.

What the ``profile`` normalizer does, in order:

1. Unicode normalization (NFC; NFKC for Chinese/Japanese, where full-width Latin letters and digits
   and half-width katakana are variants of the same character). NFD input becomes NFC, so one letter
   is never two vocabulary entries.
2. ``CHARS_TO_IGNORE`` removed.
3. Typographic variants unified: ’ ‘ ‛ ´ ` ′ ʼ ＇ -> ' ; “ ” „ « » -> " ; ‐ ‑ ‒ – — ― − -> - ;
   every kind of space -> " ". (Then the language's rules decide whether ' and - stay.)
4. The language's own mappings (e.g. Persian: Arabic yeh/kaf -> Persian forms).
5. Lower case, locale-aware: Turkish/Azeri/Crimean Tatar/Gagauz map I -> ı and İ -> i (Python's
   ``"İ".lower()`` gives i + U+0307 COMBINING DOT ABOVE, a spurious vocabulary entry). A leftover
   i + U+0307 becomes i in every language.
6. Characters removed by Unicode category, not by a hand list: punctuation (P*), symbols (S*),
   control/format characters (C*), except the ones the language keeps (``KEEP_CHARS`` too). The
   seed's golden rule: never remove a character whose removal turns a word into another word.
   Apostrophes inside words stay in English, French, Italian, Catalan, Dutch, Welsh, Breton,
   Ukrainian, Belarusian, Uzbek, ... (it's / its, l'eau, zo'n / zon, мʼясо); elsewhere they go
   (Turkish ``Hasan'ın`` -> ``hasanın``). Hyphens join (``fine-tuning`` -> ``finetuning``).
   Letters, combining marks and digits stay; digits are reported (spell them out or drop the rows).
   The language's alphabet (Unicode CLDR's exemplar characters, :mod:`xlsr_helpers.alphabets`)
   decides what is a letter (:class:`AlphabetRules`): a character of the alphabet that Unicode calls
   punctuation or a symbol (Catalan ``col·lecció``) is kept inside words (removed where it stands
   alone or ends a sentence: CLDR lists Ethiopic and Syriac punctuation too); where the alphabet writes
   an apostrophe as a letter (``ʼ`` in Ukrainian, Hausa, Guarani, Breton ``cʼh``), the apostrophe
   look-alikes of step 3 inside a word become that letter (``м'ясо`` -> ``мʼясо``), in languages whose
   profile removed apostrophes too; and an apostrophe or mark that closes a cluster of the alphabet is
   kept at the end of a word (Uzbek ``togʻ``). A profile that maps apostrophes itself (Uzbek) keeps its
   form; the profile's removals (Arabic tashkeel) win over the alphabet; invisible format characters that
   CLDR lists (ZWNJ, ZWJ, LRM) are removed unless the profile keeps them (Persian ZWNJ). Languages
   without CLDR data are normalized as before.
7. A ``|`` that is still there (``KEEP_CHARS``, or the seed regex) becomes ``¦``: ``|`` is the
   tokenizer's word delimiter, and a literal one (a Hindi danda look-alike) would silently turn into a
   word boundary in the labels. (The delimiter itself cannot be changed instead: transformers 5 reloads
   a Wav2Vec2CTCTokenizer with ``word_delimiter_token="|"`` whatever was saved.)
8. Spaces collapsed. Character-based scripts (zh, ja, yue, th): spaces are removed except between
   two non-CJK words, so the labels are a plain sequence of characters: no "|" between hanzi that
   the speaker never paused at, and CER (the metric to read for these languages) compares
   characters; WER on unsegmented text would count whole sentences.

``NORMALIZER="seed_regex"`` reproduces the 2021 notebook exactly:
``re.sub('[\\,\\?\\.\\!\\-\\;\\:\\"\\“\\%\\‘\\”\\�]', '', text).lower()`` (``CHARS_TO_IGNORE`` extends the
class, ``KEEP_CHARS`` shrinks it), to show what it leaves behind; only ``|`` -> ``¦`` is added.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import random
import re
import shutil
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .alphabets import ITEM_SEPARATOR, Alphabet, alphabet_for
from .audio import stores_paths, with_audio_feature
from .chars import contains_any, count_chars
from .config import Config
from .constants import SPLITS
from .translate import TranslateTable

FORMAT = "xlsr-normalizer"
FORMAT_VERSION = 2  # 2: the alphabet's rules ("alphabet"); a file without them is read as version 1 behaved
FILE_NAME = "normalizer.json"
SEED_CHARS = ',?.!-;:"“%‘”�'  # the 2021 notebook's chars_to_ignore_regex, as characters
# "|" is the CTC word delimiter of every Wav2Vec2 vocabulary; text must never contain it. (The delimiter
# cannot be another character: transformers 5 reloads Wav2Vec2CTCTokenizer with "|" whatever was saved.)
WORD_DELIMITER = "|"
DELIMITER_STAND_IN = "¦"  # what a "|" that survives normalization (KEEP_CHARS, seed regex) becomes
TEXT_SEPARATOR = "\x00"  # what Normalizer.normalize_many joins the texts with: in no sentence, and no white space

APOSTROPHES = "’‘‛´`′ʼ＇"  # -> '   (ʻ U+02BB is left alone: a letter in Uzbek, Hawaiian, Tongan)
DOUBLE_QUOTES = "“”„‟«»‹›″〝〞＂"  # -> "
DASHES = "‐‑‒–—―−﹘﹣－"  # -> -
APOSTROPHE = "'"  # what the APOSTROPHES become in step 3
EXAMPLES_PER_CHARACTER = 3  # example sentences per character outside the alphabet in the report
CLIPS_EXIST_SAMPLE = 1000  # clip paths per split checked for existence (a stat each)


@dataclass(frozen=True)
class Profile:
    """How one language is normalized (see the module docstring for the order of the steps)."""

    casing: str = "lower"  # lower | turkic (I->ı, İ->i, then lower) | none
    form: str = "NFC"  # NFC | NFKC
    apostrophe: str = "remove"  # keep (inside words only) | remove
    hyphen: str = "remove"  # remove (joins the parts) | space
    char_based: bool = False  # no spaces between CJK/Thai characters; read CER, not WER
    keep: str = ""  # punctuation/symbol/format characters this language keeps
    remove: str = ""  # letters/marks removed anyway (Arabic tashkeel, tatweel)
    mapping: tuple[tuple[str, str], ...] = ()  # (from, to) replacements
    note: str = ""


# Apostrophe inside a word changes the word (it's/its, zo'n/zon, м'ясо) or is a letter.
_KEEP_APOSTROPHE = Profile(apostrophe="keep", note="apostrophes inside words kept (golden rule)")
_TURKIC = Profile(casing="turkic", note="Turkic casing: I->ı, İ->i; apostrophe before suffixes removed")
_CJK = Profile(form="NFKC", char_based=True,
               note="character-based: NFKC (full-width forms), no spaces between characters; use CER")
_TASHKEEL = "".join(chr(c) for c in range(0x064B, 0x0660)) + "\u0670\u0640"
_ARABIC = Profile(remove=_TASHKEEL,
                  note="tashkeel (harakat) and tatweel removed: written only in some sentences")

PROFILES: dict[str, Profile] = {
    "default": Profile(note="lower case, NFC, punctuation and symbols removed, hyphens join"),
    "en": _KEEP_APOSTROPHE, "fr": _KEEP_APOSTROPHE, "it": _KEEP_APOSTROPHE, "ca": _KEEP_APOSTROPHE,
    "nl": _KEEP_APOSTROPHE, "cy": _KEEP_APOSTROPHE, "br": _KEEP_APOSTROPHE, "eo": _KEEP_APOSTROPHE,
    "ia": _KEEP_APOSTROPHE, "oc": _KEEP_APOSTROPHE, "lb": _KEEP_APOSTROPHE, "rw": _KEEP_APOSTROPHE,
    "ga-IE": _KEEP_APOSTROPHE, "rm-sursilv": _KEEP_APOSTROPHE, "rm-vallader": _KEEP_APOSTROPHE,
    "fy-NL": _KEEP_APOSTROPHE,
    "uk": Profile(apostrophe="keep", note="the apostrophe is part of Ukrainian spelling (м'ясо)"),
    "be": Profile(apostrophe="keep", note="the apostrophe is part of Belarusian spelling"),
    "uz": Profile(apostrophe="keep", mapping=(("ʻ", "'"),),
                  note="o' and g' are letters: ʻ and ' unified, kept inside words"),
    "tr": _TURKIC, "az": _TURKIC, "crh": _TURKIC, "gag": _TURKIC,
    "zh-CN": _CJK, "zh-TW": _CJK, "zh-HK": _CJK, "yue": _CJK, "ja": _CJK, "zh": _CJK,
    "th": Profile(char_based=True, note="Thai: no spaces between words; spaces removed, use CER"),
    "ar": _ARABIC,
    "fa": Profile(remove=_TASHKEEL, keep="\u200c", mapping=(("ي", "ی"), ("ك", "ک"), ("ى", "ی")),
                  note="Persian: Arabic yeh/kaf -> Persian forms, ZWNJ kept, tashkeel removed"),
    "ur": _ARABIC,
}


def profile_for(language: str) -> tuple[str, Profile]:
    """(key, profile) for a Common Voice locale: exact match, then the part before '-', else default."""
    for key in (language, language.split("-")[0], language.split("_")[0]):
        if key in PROFILES:
            return key, PROFILES[key]
    return "default", PROFILES["default"]


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


# Languages written without spaces between words (the char_based profiles above, and scripts that space
# phrases, not words): a whole sentence counts as one "word" for the WER, so the CER is their metric.
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "km", "yue", "bo", "dz"})


def primary_metric(language: str) -> str:
    """"cer" for languages written without spaces between words, "wer" otherwise."""
    base = language.replace("_", "-").split("-")[0]
    return "cer" if profile_for(language)[1].char_based or base in NO_SPACE_LANGUAGES else "wer"


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF
            or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3134F or 0x0E00 <= o <= 0x0E7F or o == 0x3005)


def _chars(value: str) -> str:
    """A CHARS_TO_IGNORE / KEEP_CHARS value as a set of characters (spaces ignored), NFC."""
    return "".join(dict.fromkeys(unicodedata.normalize("NFC", value or "").replace(" ", "")))


class Normalizer:
    """``normalizer(text) -> str``; everything it does is in its JSON (``to_dict``)."""

    def __init__(self, language: str = "default", mode: str = "profile", chars_to_ignore: str = "",
                 keep_chars: str = "", profile: Profile | None = None, profile_name: str | None = None,
                 alphabet: AlphabetRules | None | str = "cldr"):
        """``alphabet``: "cldr" derives the rules from the language's CLDR alphabet (None where CLDR has
        none); a saved normalizer passes its own rules, or None (a file written before there were any)."""
        if mode not in ("profile", "seed_regex"):
            raise ValueError(f"NORMALIZER must be 'profile' or 'seed_regex', not {mode!r}")
        self.language = language
        self.mode = mode
        self.chars_to_ignore = _chars(chars_to_ignore)
        self.keep_chars = _chars(keep_chars)
        both = set(self.chars_to_ignore) & set(self.keep_chars)
        if both:
            raise ValueError(f"characters in both CHARS_TO_IGNORE and KEEP_CHARS: {''.join(sorted(both))!r}")
        if profile is None:
            profile_name, profile = profile_for(language)
        self.profile = profile
        self.profile_name = profile_name or language
        if alphabet == "cldr":
            found = alphabet_for(language) if mode == "profile" else None
            alphabet = AlphabetRules.of(found, profile) if found else None
        self.alphabet: AlphabetRules | None = alphabet  # type: ignore[assignment]
        rules = self.alphabet or AlphabetRules(locale="", cldr_version="")
        self._word_marks = set(rules.word_marks)
        self._new_letters = set(rules.new_letters)
        self._apostrophe = rules.apostrophe or (APOSTROPHE if profile.apostrophe == "keep" else "")
        seed = "".join(c for c in SEED_CHARS + self.chars_to_ignore if c not in self.keep_chars)
        self.seed_regex = "[" + "".join("\\" + c for c in dict.fromkeys(seed)) + "]" if seed else ""
        self._seed_re = re.compile(self.seed_regex) if self.seed_regex else None
        self._ignore = set(self.chars_to_ignore)
        self._ignore_table = TranslateTable(str, {ord(c): None for c in self._ignore})
        self._keep = set(self.keep_chars) | set(profile.keep)
        if WORD_DELIMITER in self._keep:
            self._keep.add(DELIMITER_STAND_IN)  # what "|" becomes must survive a second pass (idempotent)
        self._remove = set(profile.remove)
        table = {**{c: APOSTROPHE for c in APOSTROPHES}, **{c: '"' for c in DOUBLE_QUOTES}, **{c: "-" for c in DASHES}}
        letters = self._keep | self._word_marks | self._new_letters | set(rules.apostrophe)
        self._typo = TranslateTable(str, str.maketrans({k: v for k, v in table.items() if k not in letters}))
        # what precedes a word-final apostrophe or mark that is part of a letter (Uzbek: "o", "g" of o' g')
        kept_forms = ({APOSTROPHE, self._apostrophe} if self._apostrophe else set()) | self._word_marks
        self._cluster_prefixes = {
            form[:-1] for form in map(self.transform, rules.mark_clusters.split(ITEM_SEPARATOR))
            if len(form) > 1 and form[-1] in kept_forms}
        # Each character's fate, looked up in C by str.translate: a character that no neighbour can change (all but
        # the apostrophe and the word marks) maps to itself, a space or nothing. Measured on the sentences of
        # benchmarks/scale.py: 16 us a sentence with a Python loop over every character, 12 us with the table (the
        # rest is transform's Unicode passes); the same output for 14,000 sentences in 35 languages.
        self._context = (({APOSTROPHE} if self._apostrophe else set()) | self._word_marks) - self._ignore - self._keep
        self._fate = TranslateTable(self._context_free_fate)
        # normalize_many joins the texts with TEXT_SEPARATOR: only where no rule can see it, move it, or make one
        self._fate_joined = TranslateTable(self._context_free_fate, {ord(TEXT_SEPARATOR): TEXT_SEPARATOR})
        self._joinable = (mode == "profile" and not profile.char_based and TEXT_SEPARATOR not in self._ignore
                          and ord(TEXT_SEPARATOR) not in self._typo
                          and not any(TEXT_SEPARATOR in old + new for old, new in profile.mapping))

    # --- the function --------------------------------------------------------------------------
    def __call__(self, text: str) -> str:
        text = text or ""
        if self.mode == "seed_regex":
            text = (self._seed_re.sub("", text) if self._seed_re else text).lower()
            return text.replace(WORD_DELIMITER, DELIMITER_STAND_IN)
        p = self.profile
        text = self.transform(text)
        text = text.translate(self._fate) if self._context.isdisjoint(text) else self._apply_rules(text)
        text = " ".join(text.split())
        if p.char_based and " " in text:
            text = "".join(
                ch for i, ch in enumerate(text)
                if ch != " " or not (_is_cjk(text[i - 1]) or _is_cjk(text[i + 1]))
            )
        return unicodedata.normalize(p.form, text).replace(WORD_DELIMITER, DELIMITER_STAND_IN)

    def normalize_many(self, texts: Iterable[str]) -> list[str]:
        """``[self(text) for text in texts]``, with each character pass run once over the texts joined by
        :data:`TEXT_SEPARATOR` instead of once a text: 0.4 s instead of 1.0 s for 90,000 sentences of
        ``benchmarks/scale.py``; the same output for 14,000 texts in 35 languages and five settings each. Texts that
        hold the separator themselves, and the character-based profiles (spaces removed between CJK characters), go
        one by one."""
        texts = [text or "" for text in texts]
        joined = TEXT_SEPARATOR.join(texts)
        if not self._joinable or joined.count(TEXT_SEPARATOR) != len(texts) - 1:
            return [self(text) for text in texts]
        transformed = self.transform(joined)
        fated = self._fate_joined.translate(transformed)
        holds_context = contains_any(self._context)
        if holds_context(transformed):  # the apostrophe and word marks: decided text by text
            fated = TEXT_SEPARATOR.join(self._apply_rules(text) if holds_context(text) else done for text, done
                                        in zip(transformed.split(TEXT_SEPARATOR), fated.split(TEXT_SEPARATOR)))
        # white space collapsed at once: the separator is no white space, so only the spaces beside it are left over
        collapsed = " ".join(fated.split()).replace(" " + TEXT_SEPARATOR, TEXT_SEPARATOR)
        collapsed = collapsed.replace(TEXT_SEPARATOR + " ", TEXT_SEPARATOR)
        normalized = unicodedata.normalize(self.profile.form, collapsed).replace(WORD_DELIMITER, DELIMITER_STAND_IN)
        return normalized.split(TEXT_SEPARATOR)

    def _context_free_fate(self, ch: str) -> str:
        """What ``ch`` becomes whatever its neighbours: itself, a space or "" (removed); not for the apostrophe and
        the word marks (see :meth:`_apply_rules`). The rules in their order: characters to ignore, KEEP_CHARS, the
        alphabet's letters, the hyphen, the profile's removals, white space, punctuation/symbols/controls."""
        if ch in self._ignore:
            return ""
        if ch in self._keep or ch in self._new_letters:
            return ch
        if ch == "-" and self.profile.hyphen == "space":
            return " "
        if ch in self._remove:
            return ""
        if ch.isspace():
            return " "
        return "" if unicodedata.category(ch)[0] in "PSCZ" else ch

    def _apply_rules(self, text: str) -> str:
        """A text with an apostrophe or a word mark: those two kept or removed by their neighbours, every other
        character by its context-free fate."""
        out: list[str] = []
        n = len(text)
        for i, ch in enumerate(text):
            if ch not in self._context:
                out.append(self._fate[ord(ch)])
                continue
            before = text[i - 1] if i else ""
            after = text[i + 1] if i + 1 < n else ""
            if ch == APOSTROPHE and self._apostrophe:
                if before.isalpha() and (after.isalpha() or self._ends_cluster(text, i)):
                    out.append(self._apostrophe)
            elif (self._in_word(before) and self._in_word(after)) or self._ends_cluster(text, i):
                out.append(ch)  # a word mark inside a word, or closing a letter of the alphabet
        return "".join(out)

    def transform(self, text: str) -> str:
        """Steps 1-5 (Unicode form, CHARS_TO_IGNORE, typographic variants, the profile's mappings, case):
        what every character becomes before the punctuation rule decides what stays."""
        p = self.profile
        if self.mode == "seed_regex":
            return text.lower()
        text = unicodedata.normalize(p.form, text)
        if self._ignore:
            text = self._ignore_table.translate(text)
        text = self._typo.translate(text)
        for old, new in p.mapping:
            text = text.replace(old, new)
        if p.casing == "turkic":
            text = text.replace("I", "ı").replace("İ", "i").lower()
        elif p.casing == "lower":
            text = text.lower()
        text = text.replace("i\u0307", "i")
        return unicodedata.normalize(p.form, text)

    def _ends_cluster(self, text: str, i: int) -> bool:
        """Whether the apostrophe or mark at ``text[i]`` closes a letter of the alphabet (Uzbek togʻ)."""
        return any(text[max(0, i - len(prefix)):i] == prefix for prefix in self._cluster_prefixes)

    def _in_word(self, ch: str) -> bool:
        """A letter or combining mark: a word mark (Catalan ·) between two is part of the word."""
        return bool(ch) and (ch.isalpha() or unicodedata.category(ch)[0] == "M" or ch in self._new_letters)

    def alphabet_characters(self, alphabet: Alphabet) -> set[str]:
        """What the letters of ``alphabet`` become after normalization, with what the normalizer keeps by
        its own rules (the profile's apostrophe, KEEP_CHARS) and the space: characters that are expected."""
        expected = {" "} | self._keep | set(self._apostrophe)
        for item in alphabet.items:
            expected |= set(self.transform(item))
        return expected

    # --- what it does to one character ---------------------------------------------------------
    def explain(self, ch: str) -> str:
        """What the normalizer does to ``ch`` on its own: kept, removed (why) or mapped (to what)."""
        if self.mode == "seed_regex":
            if self._seed_re and self._seed_re.fullmatch(ch):
                return "removed (seed regex)"
            if ch == WORD_DELIMITER:
                return f"mapped to {DELIMITER_STAND_IN!r} ('|' is the word delimiter)"
            low = ch.lower()
            return "kept" if low == ch else f"mapped to {low!r} (lower case)"
        if ch in self._ignore:
            return "removed (CHARS_TO_IGNORE)"
        if ch in self._keep:
            return "kept (KEEP_CHARS)" if ch in self.keep_chars else "kept (language profile)"
        if ch in self._new_letters:
            return "kept (a letter of the alphabet unknown to this Python's Unicode database)"
        if ch in self._word_marks:
            return f"kept inside words{self._cluster_note()}, removed elsewhere (a letter of the {self._alphabet_name()})"
        if self.transform(ch) == APOSTROPHE and self._apostrophe and self._apostrophe != APOSTROPHE:
            return (f"mapped to {self._apostrophe!r} inside words{self._cluster_note()}, removed elsewhere "
                    f"(the apostrophe of the {self._alphabet_name()})")
        if ch == APOSTROPHE and self._apostrophe:
            return f"kept inside words{self._cluster_note()}, removed elsewhere (golden rule)"
        if ch == " ":
            return "word separator" + (" (removed between CJK characters)" if self.profile.char_based else "")
        if ch.isspace():
            return "mapped to ' ' (space)"
        if unicodedata.category(ch)[0] == "M":
            return "removed (language profile)" if ch in self._remove else "kept (combining mark)"
        if _is_cjk(ch):
            result = self(ch)
        else:  # between letters, so that context rules (apostrophes) apply as inside a word
            result = self(f"a{ch}a")
            result = result[1:-1] if result.startswith("a") and result.endswith("a") else result
        if result == "":
            cat = unicodedata.category(ch)
            why = {"P": "punctuation", "S": "symbol", "C": "control/format", "Z": "separator"}.get(cat[0])
            if ch in self._remove:
                why = "removed by the language profile"
            if ch in APOSTROPHES + "'":
                why = "apostrophe"
            if ch in DASHES + "-":
                why = "hyphen/dash (joins the parts)"
            return f"removed ({why or cat}, {cat})"
        if result == ch:
            return "kept"
        if ch == WORD_DELIMITER:
            return f"mapped to {DELIMITER_STAND_IN!r} ('|' is the word delimiter)"
        return f"mapped to {result!r}"

    def _cluster_note(self) -> str:
        after = " ".join(sorted(self._cluster_prefixes))
        return f" and at the end of a word after {after} (letters of the alphabet)" if after else ""

    def _alphabet_name(self) -> str:
        return f"CLDR {self.alphabet.cldr_version} alphabet of {self.alphabet.locale!r}" if self.alphabet else "alphabet"

    # --- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "mode": self.mode, "language": self.language,
            "profile_name": self.profile_name, "profile": dataclasses.asdict(self.profile),
            "chars_to_ignore": self.chars_to_ignore, "keep_chars": self.keep_chars,
            "seed_regex": self.seed_regex if self.mode == "seed_regex" else None,
            "alphabet": dataclasses.asdict(self.alphabet) if self.alphabet else None,
            "unicode_version": unicodedata.unidata_version,
            "usage": "from xlsr_helpers.normalize import load_normalizer; normalize = load_normalizer(path); "
                     "normalize(text)",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Normalizer":
        if data.get("format") != FORMAT:
            raise ValueError("not a normalizer.json written by xlsr_helpers.normalize")
        if data.get("version", 1) > FORMAT_VERSION:
            raise ValueError(f"normalizer.json of version {data['version']}: written by a newer xlsr_helpers "
                             f"(this one reads up to {FORMAT_VERSION}); upgrade xlsr_helpers")
        raw = dict(data["profile"])
        raw["mapping"] = tuple(tuple(pair) for pair in raw.get("mapping", ()))
        alphabet = AlphabetRules(**data["alphabet"]) if data.get("alphabet") else None  # none before version 2
        return cls(language=data["language"], mode=data["mode"], chars_to_ignore=data["chars_to_ignore"],
                   keep_chars=data["keep_chars"], profile=Profile(**raw), profile_name=data.get("profile_name"),
                   alphabet=alphabet)

    @classmethod
    def from_config(cls, cfg: Config) -> "Normalizer":
        return cls(cfg.language, cfg.normalizer, cfg.chars_to_ignore, cfg.keep_chars)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.is_dir() or path.suffix != ".json":
            path = path / FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return (f"Normalizer(language={self.language!r}, mode={self.mode!r}, profile={self.profile_name!r}, "
                f"chars_to_ignore={self.chars_to_ignore!r}, keep_chars={self.keep_chars!r})")


def load_normalizer(path: str | Path) -> Normalizer:
    """The normalizer of a run: ``path`` is the run folder, ``02_normalize/``, a folder holding
    ``normalizer.json`` (e.g. a model's upload folder), or the JSON file itself."""
    path = Path(path)
    for candidate in (path, path / FILE_NAME, path / "02_normalize" / FILE_NAME):
        if candidate.is_file():
            return Normalizer.from_dict(json.loads(candidate.read_text(encoding="utf-8")))
    raise FileNotFoundError(f"No {FILE_NAME} at {path} (nor in {path}/02_normalize): run 02_normalize first.")


# --------------------------------------------------------------------------------------------------
# inventory
# --------------------------------------------------------------------------------------------------
def char_inventory(texts: Iterable[str]) -> Counter:
    return count_chars(texts)


def char_info(ch: str) -> dict[str, str]:
    return {"char": ch, "codepoint": f"U+{ord(ch):04X}", "name": unicodedata.name(ch, "?"),
            "category": unicodedata.category(ch)}


def first_examples(texts: Iterable[str], chars: set[str], limit: int = 120) -> dict[str, str]:
    """{character: the first text that holds it (cut at ``limit``)} for each of ``chars`` that some text holds."""
    found: dict[str, str] = {}
    missing = set(chars)
    holds_missing = contains_any(missing)
    for text in texts:
        if not missing:
            break
        if holds_missing(text):
            for ch in missing.intersection(text):
                found[ch] = text if len(text) <= limit else text[:limit] + "…"
            missing -= found.keys()
            holds_missing = contains_any(missing)
    return found


def inventory_report(raw: list[str], normalized: list[str], normalizer: Normalizer) -> dict[str, Any]:
    """Characters before and after, every removed/mapped character with count and example, digits."""
    before, after = char_inventory(raw), char_inventory(normalized)
    examples = first_examples(raw, set(before))
    removed, mapped, context = [], [], []
    for ch, count in before.most_common():
        what = normalizer.explain(ch)
        entry = {**char_info(ch), "count": count, "after": after.get(ch, 0), "action": what,
                 "example": examples.get(ch, "")}
        if what.startswith("removed"):
            removed.append(entry)
        elif what.startswith("mapped"):
            mapped.append(entry)
        elif after.get(ch, 0) != count and ch != " ":
            context.append(entry)
    digits = {ch: n for ch, n in after.items() if unicodedata.category(ch)[0] == "N"}
    digit_chars = set(digits)
    digit_examples = first_examples(normalized, digit_chars)
    holds_digit = contains_any(digit_chars)
    return {
        "before": dict(before.most_common()),
        "after": dict(after.most_common()),
        "removed": removed,
        "mapped": mapped,
        "changed_in_context": context,
        "digits": [{**char_info(ch), "count": n, "example": digit_examples.get(ch, "")}
                   for ch, n in sorted(digits.items())],
        "sentences_with_digits": sum(1 for t in normalized if holds_digit(t)),
    }


def alphabet_report(raw: list[str], normalized: list[str], normalizer: Normalizer,
                    examples: int = EXAMPLES_PER_CHARACTER, after: dict[str, int] | None = None) -> dict[str, Any]:
    """Characters of the normalized text that are not in the language's alphabet (CLDR main + auxiliary
    letters, as the normalizer writes them): likely noise, foreign words or digits. Each with its count
    and the first ``examples`` sentences (as they were before normalization) that have it."""
    alphabet = alphabet_for(normalizer.language)
    if alphabet is None:
        return {"available": False, "locale": None, "cldr_version": None, "outside": [], "outside_count": None,
                "outside_distinct": None,
                "message": f"no alphabet available for {normalizer.language!r} (Unicode CLDR has none): "
                           "nothing checked; normalized by the language profile alone"}
    expected = normalizer.alphabet_characters(alphabet)
    after = char_inventory(normalized) if after is None else after  # the inventory's count, when it has one
    counts = Counter({ch: n for ch, n in after.items() if ch not in expected})
    found: dict[str, list[str]] = {ch: [] for ch in counts}
    wanted = set(found) if examples > 0 else set()  # characters that still want examples
    holds_wanted = contains_any(wanted)
    for before, after in zip(raw, normalized):
        if not wanted:
            break
        if not holds_wanted(after):
            continue
        for ch in dict.fromkeys(after):
            if ch in wanted:
                found[ch].append(before)
                if len(found[ch]) == examples:
                    wanted.discard(ch)
                    holds_wanted = contains_any(wanted)
    return {
        "available": True, "locale": alphabet.locale, "cldr_version": alphabet.cldr_version,
        "outside": [{**char_info(ch), "count": n, "examples": found[ch]} for ch, n in counts.most_common()],
        "outside_count": sum(counts.values()), "outside_distinct": len(counts),
        "message": f"{len(counts)} characters outside the CLDR {alphabet.cldr_version} alphabet of "
                   f"{alphabet.locale!r}, {sum(counts.values())} times",
    }


# --------------------------------------------------------------------------------------------------
# the step
# --------------------------------------------------------------------------------------------------
@dataclass
class NormalizeResult:
    dataset: Any
    report: dict[str, Any]
    normalizer: Normalizer
    dataset_dir: Path
    report_path: Path
    normalizer_path: Path
    examples: list[dict[str, str]] = field(default_factory=list)


def run_normalize(cfg: Config) -> NormalizeResult:
    """Normalize every split of ``01_load/dataset``; save dataset, normalizer.json and report.json."""
    from .load import quiet_progress

    with quiet_progress():
        return _run_normalize(cfg)


def _check_clips_exist(dataset, sample: int = CLIPS_EXIST_SAMPLE) -> None:
    """The clips that 01_load's rows point to must still be there: a moved or deleted clips folder (Colab's
    /content after a disconnect) fails here with its cause. A seeded sample of ``sample`` paths per split is
    enough for a folder; a single clip deleted since is skipped and counted at training time."""
    for name, split in dataset.items():
        if "audio" not in split.column_names or not stores_paths(split):
            continue
        paths = split["audio"][:]
        if len(paths) > sample:
            paths = random.Random(name).sample(paths, sample)
        missing = next((path for path in paths if not os.path.exists(path)), None)
        if missing is not None:
            raise FileNotFoundError(
                f"An audio file of 01_load's dataset is gone ({missing}): the clips folder was moved or deleted "
                "(on Colab, /content is forgotten after a disconnect). Run 01_load again, or with EMBED_AUDIO=True "
                "so that the run folder keeps the audio itself.")


def _run_normalize(cfg: Config) -> NormalizeResult:
    from datasets import DatasetDict, load_from_disk

    source = cfg.step_dir("01_load") / "dataset"
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: run 01_load first.")
    loaded = load_from_disk(str(source))
    normalizer = Normalizer.from_config(cfg)
    step_dir = cfg.step_dir("02_normalize")
    step_dir.mkdir(parents=True, exist_ok=True)

    raw_all: list[str] = []
    norm_all: list[str] = []
    per_split: dict[str, Any] = {}
    emptied_examples: list[str] = []
    normalized = {}
    rules_key = hashlib.sha256(json.dumps(normalizer.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]
    for split in SPLITS:
        ds = loaded[split]
        raw = ds["sentence"][:]  # [:] reads the column at once; iterating it went row by row (100x slower)
        norm = normalizer.normalize_many(raw)
        raw_all += raw
        norm_all += norm
        # fingerprints given: datasets would otherwise hash each 100,000-sentence list (4 s)
        ds = (ds.add_column("raw_sentence", raw, new_fingerprint=f"{ds._fingerprint}-raw").remove_columns("sentence")
              .add_column("sentence", norm, new_fingerprint=f"{ds._fingerprint}-{rules_key}"))
        empty = [i for i, t in enumerate(norm) if not t]
        emptied_examples += [raw[i] for i in empty[: max(0, 10 - len(emptied_examples))]]
        if empty:
            keep = sorted(set(range(len(norm))) - set(empty))
            ds = ds.select(keep)
        normalized[split] = ds
        per_split[split] = {"rows_in": len(raw), "emptied": len(empty),
                            "changed": sum(1 for a, b in zip(raw, norm) if a != b)}

    # Leakage re-check after the real normalization (01_load compared a looser key).
    test_sentences = set(normalized["test"]["sentence"][:])
    leaks = {}
    for split in ("train", "eval"):
        ds = normalized[split]
        bad = [i for i, t in enumerate(ds["sentence"][:]) if t in test_sentences]
        if bad:
            ds = ds.select(sorted(set(range(len(ds))) - set(bad)))
        normalized[split] = ds
        leaks[split] = len(bad)
    for split in SPLITS:
        per_split[split]["rows_out"] = len(normalized[split])
        per_split[split]["leak_removed"] = leaks.get(split, 0)

    columns = ["id", "audio", "sentence", "raw_sentence", "speaker", "duration", "source"]
    dataset = DatasetDict({s: normalized[s].select_columns([c for c in columns if c in normalized[s].column_names])
                           for s in SPLITS})
    _check_clips_exist(dataset)
    tmp = step_dir / "dataset.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    dataset.save_to_disk(str(tmp))
    final = step_dir / "dataset"
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    normalizer_path = normalizer.save(step_dir / FILE_NAME)

    inv = inventory_report(raw_all, norm_all, normalizer)
    report = {
        "normalizer": normalizer.to_dict(),
        "profile_note": normalizer.profile.note,
        "splits": per_split,
        "emptied_total": sum(p["emptied"] for p in per_split.values()),
        "emptied_examples": emptied_examples,
        "leak_removed_after_normalization": sum(leaks.values()),
        "inventory": inv,
        "alphabet": alphabet_report(raw_all, norm_all, normalizer, after=inv["after"]),
    }
    report["chars_before"] = len(inv["before"])
    report["chars_after"] = len(inv["after"])
    report["removed_chars"] = "".join(e["char"] for e in inv["removed"])
    report["removed_count"] = sum(e["count"] for e in inv["removed"])
    report_path = step_dir / "report.json"
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    changed = ((a, b) for a, b in zip(raw_all, norm_all) if a != b)
    pairs = [{"before": a, "after": b} for a, b in itertools.islice(changed, 10)]
    return NormalizeResult(with_audio_feature(load_from_disk(str(final))), report, normalizer, final, report_path, normalizer_path,
                           pairs)


# --------------------------------------------------------------------------------------------------
# what the notebook shows
# --------------------------------------------------------------------------------------------------
def inventory_table(report: dict[str, Any], limit: int | None = None):
    """Every character before normalization: count before/after and what happened to it."""
    import pandas as pd

    inv = report["inventory"]
    actions = {e["char"]: e["action"] for e in inv["removed"] + inv["mapped"] + inv["changed_in_context"]}
    rows = []
    for ch, count in list(inv["before"].items())[:limit]:
        rows.append({**char_info(ch), "before": count, "after": inv["after"].get(ch, 0),
                     "action": actions.get(ch, "kept")})
    for ch, count in inv["after"].items():
        if ch not in inv["before"]:
            rows.append({**char_info(ch), "before": 0, "after": count, "action": "produced by mapping"})
    return pd.DataFrame(rows)


def outside_alphabet_table(report: dict[str, Any]):
    """Characters outside the language's alphabet: count and example sentences (empty without an alphabet)."""
    import pandas as pd

    cols = ["char", "codepoint", "name", "category", "count", "examples"]
    rows = [{**entry, "examples": " | ".join(entry["examples"])} for entry in report["alphabet"]["outside"]]
    return pd.DataFrame(rows, columns=cols)


def removed_table(report: dict[str, Any]):
    import pandas as pd

    cols = ["char", "codepoint", "name", "category", "count", "action", "example"]
    return pd.DataFrame(report["inventory"]["removed"], columns=cols)
