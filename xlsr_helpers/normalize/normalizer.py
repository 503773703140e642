"""The normalizer of step 02: ``normalizer(text) -> str``, saved as ``normalizer.json`` and loaded back.

The normalizer decides what the model learns to write, so it is part of the model: it is saved as
``02_normalize/normalizer.json`` and reused by evaluation (references) and the model card
(:func:`load_normalizer`). Languages differ as *data* (:data:`.profiles.PROFILES`), not as if-chains.

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
   decides what is a letter (:class:`.rules.AlphabetRules`): a character of the alphabet that Unicode calls
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

``NORMALIZER="omnilingual"`` writes the text as Meta's Omnilingual ASR models were trained to write it (lower case, no
punctuation, digit-only words dropped; :mod:`.omnilingual` has the rules and their source), for a run that keeps
that model's own vocabulary. ``NORMALIZER="auto"`` (the default) is resolved by step 02 (:func:`.step.choose_mode`).

``NORMALIZER="seed_regex"`` reproduces the 2021 notebook exactly:
``re.sub('[\\,\\?\\.\\!\\-\\;\\:\\"\\“\\%\\‘\\”\\�]', '', text).lower()`` (``CHARS_TO_IGNORE`` extends the
class, ``KEEP_CHARS`` shrinks it), to show what it leaves behind; only ``|`` -> ``¦`` is added.
"""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
from pathlib import Path
from typing import Any, Iterable

from ..alphabets import ITEM_SEPARATOR, Alphabet, alphabet_for
from ..chars import contains_any
from ..config import Config
from ..files import write_json_atomic
from ..translate import TranslateTable
from . import omnilingual
from .profiles import Profile, profile_for
from .rules import (APOSTROPHE, APOSTROPHES, DASHES, DELIMITER_STAND_IN, DOUBLE_QUOTES, SEED_CHARS, WORD_DELIMITER,
                    AlphabetRules)

FORMAT = "xlsr-normalizer"
FORMAT_VERSION = 2  # 2: the alphabet's rules ("alphabet"); a file without them is read as version 1 behaved
FILE_NAME = "normalizer.json"
MODES = ("profile", omnilingual.MODE, "seed_regex")  # what a Normalizer does; NORMALIZER="auto" picks one (step 02)
TEXT_SEPARATOR = "\x00"  # what Normalizer.normalize_many joins the texts with: in no sentence, and no white space


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
        if mode not in MODES:
            raise ValueError(f"NORMALIZER must be one of {', '.join(MODES)} ('auto' is resolved by step 02), "
                             f"not {mode!r}")
        self.language = language
        self.mode = mode
        self.chars_to_ignore = _chars(chars_to_ignore)
        self.keep_chars = _chars(keep_chars)
        if mode == omnilingual.MODE and self.keep_chars:
            raise ValueError("KEEP_CHARS does not apply to NORMALIZER='omnilingual': the model was trained on text "
                             "without those characters. Leave KEEP_CHARS empty, or use NORMALIZER='profile'.")
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
        if self.mode == omnilingual.MODE:  # "|" is in its punctuation list: none is left
            return omnilingual.normalize(self._ignore_table.translate(text) if self._ignore else text)
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
        if self.mode == omnilingual.MODE:
            return omnilingual.transform(self._ignore_table.translate(text) if self._ignore else text)
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
        if self.mode == omnilingual.MODE:
            return omnilingual.explain(ch)
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
        """The run's normalizer; ``NORMALIZER="auto"`` resolved from MODEL (:func:`.choice.choose_mode`)."""
        from .choice import choose_mode

        return cls(cfg.language, choose_mode(cfg)[0], cfg.chars_to_ignore, cfg.keep_chars)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        if path.is_dir() or path.suffix != ".json":
            path = path / FILE_NAME
        return write_json_atomic(path, self.to_dict())

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
