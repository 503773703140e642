"""Step 02's language profiles: how each Common Voice language is normalized, as data, not as if-chains.

A :class:`Profile` says the casing (Turkic I/ı), the Unicode form (NFKC for Chinese/Japanese), whether apostrophes
stay inside words, what hyphens become, whether the script is written without spaces (read CER, not WER:
:func:`primary_metric`), and the language's own keeps, removals and mappings. A language without a row gets
``PROFILES["default"]``. What the normalizer does with a profile: :mod:`.normalizer`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """How one language is normalized (see :mod:`.normalizer` for the order of the steps)."""

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


# Languages written without spaces between words (the char_based profiles above, and scripts that space
# phrases, not words): a whole sentence counts as one "word" for the WER, so the CER is their metric.
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "km", "yue", "bo", "dz"})


def primary_metric(language: str) -> str:
    """"cer" for languages written without spaces between words, "wer" otherwise."""
    base = language.replace("_", "-").split("-")[0]
    return "cer" if profile_for(language)[1].char_based or base in NO_SPACE_LANGUAGES else "wer"
