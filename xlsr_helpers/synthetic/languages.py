"""Which languages the synthetic corpus offers, and a language code resolved to its :class:`LanguageSpec`.

Bundled sentence sets (:data:`BUNDLED_LANGUAGES`, from data/synthetic_sentences.json) come first; any
other language that the installed espeak-ng speaks gets a pseudo-lexicon (``lexicon.pseudo_language``).
Codes are Common Voice's (``sv-SE``, ``zh-CN``), mapped to espeak-ng's where they differ. Mandarin is
read from pinyin by espeak-ng's ``cmn-latn-pinyin`` voice: this espeak-ng's ``cmn`` voice turns most hanzi
into pinyin with tone digits and then reads those as English ("men five").
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from .lexicon import LanguageSpec, pseudo_language
from .synthesis import espeak_languages

DATA_FILE = "synthetic_sentences.json"

# Common Voice locale -> espeak-ng language, where the codes differ (others are used as they are).
CV_TO_ESPEAK = {
    "en": "en-us", "zh-HK": "yue", "sv-SE": "sv", "hy-AM": "hy", "ga-IE": "ga", "pa-IN": "pa",
    "ne-NP": "ne", "nb-NO": "nb", "kmr": "ku", "es-419": "es-419",
}
# espeak-ng languages not offered: no usable reading of their script (chr, my), Hakka's romanisation
# (hak), constructed languages of fiction; cmn is offered as the bundled zh-CN.
ESPEAK_SKIP = {"chr", "my", "hak", "piqd", "qya", "sjn", "py", "qdb", "cmn", "cmn-latn-pinyin"}


@functools.lru_cache(maxsize=1)
def bundled_data() -> dict:
    """The bundled sentence sets, by locale (keys starting with ``_`` are comments of the file)."""
    text = resources.files("xlsr_helpers").joinpath("data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


BUNDLED_LANGUAGES: tuple[str, ...] = tuple(sorted(bundled_data()))


def fallback_languages() -> dict[str, str]:
    """Common Voice-style code -> espeak-ng language, for languages without a bundled sentence set."""
    espeak = set(espeak_languages())
    bundled_lower = {b.lower() for b in BUNDLED_LANGUAGES}
    out = {}
    for code in sorted(espeak):
        if "-" in code or code in ESPEAK_SKIP or code.lower() in bundled_lower:
            continue
        out[code] = code
    for cv, es in CV_TO_ESPEAK.items():
        if es in espeak and cv.lower() not in bundled_lower:
            out[cv] = es
    return out


def available_languages() -> list[str]:
    """Every language ``make_corpus`` accepts: the bundled sentence sets, then (if espeak-ng is
    installed) every other espeak-ng language, as Common Voice-style codes. Any espeak-ng language
    code (``en-gb``, ``pt-br``) is accepted too, although only codes without a region are listed."""
    return sorted(set(BUNDLED_LANGUAGES) | set(fallback_languages()), key=str.lower)


def unknown_language(language: str) -> ValueError:
    """The error for a language the corpus cannot speak; it lists the ones it can."""
    fallback = sorted(fallback_languages(), key=str.lower)
    msg = (f"Unknown language {language!r} for the synthetic corpus. "
           f"Bundled sentence sets: {', '.join(BUNDLED_LANGUAGES)}. ")
    if fallback:
        msg += f"Other languages spoken by espeak-ng (pseudo-words): {', '.join(fallback)}."
    else:
        msg += "espeak-ng is not installed, so no other language is available (apt-get install espeak-ng)."
    return ValueError(msg)


def resolve(language: str, check: bool = False) -> LanguageSpec:
    """The :class:`LanguageSpec` of a language code (any case; ``zh`` and ``cmn`` mean ``zh-CN``).

    ``check``: for a pseudo-word language, keep only the words that espeak-ng reads in it (slower)."""
    if not isinstance(language, str) or not language.strip():
        raise unknown_language(str(language))
    lang = language.strip()
    low = lang.lower()
    bundled = {b.lower(): b for b in BUNDLED_LANGUAGES}
    if low in ("cmn", "zh"):
        low = "zh-cn"
    if low in bundled:
        locale = bundled[low]
        d = bundled_data()[locale]
        return LanguageSpec(
            locale=locale, name=d["name"], voice=d["voice"], bundled=True, words=list(d["words"]),
            specials=list(d["specials"]), numbers=list(d["numbers"]), cased=d.get("cased", True),
            space=d.get("space", " "), variants=dict(d.get("variants", {})), say=dict(d.get("say", {})),
            punct=dict(d.get("punct", {})), open=dict(d.get("open", {})),
            space_before=dict(d.get("space_before", {})), nbsp=float(d.get("nbsp", 0.0)),
            quote_templates=list(d["quote_templates"]),
        )
    espeak = {c.lower(): c for c in espeak_languages()}
    fallback = {c.lower(): (c, v) for c, v in fallback_languages().items()}
    if low in fallback:
        locale, voice = fallback[low]
    elif low in espeak and espeak[low] not in ESPEAK_SKIP and espeak[low].split("-")[0] not in ESPEAK_SKIP:
        locale = voice = espeak[low]
    else:
        raise unknown_language(language)
    return pseudo_language(locale, voice, check=check)


def language_info(language: str) -> dict:
    """The resolved language: locale, espeak-ng voice, whether sentences are bundled, the vocabulary
    (for pseudo-word languages as built: checked against espeak-ng, which takes a moment)."""
    s = resolve(language, check=True)
    return dict(locale=s.locale, name=s.name, voice=s.voice, bundled=s.bundled, words=list(s.words),
                specials=list(s.specials), numbers=list(s.numbers))
