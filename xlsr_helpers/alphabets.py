"""The alphabet of a language: Unicode CLDR's exemplar characters, for a Common Voice locale.

Which characters are letters of a language is data, not code: ``data/alphabets.json`` holds, for about
360 CLDR locales, the *main* letters (``exemplarCharacters``) and the *auxiliary* ones (letters of
loanwords and foreign names), written by ``data/make_alphabets.py`` from Unicode CLDR (Unicode License
v3; the notice is in the JSON file). Some letters are characters that Unicode calls punctuation
(Catalan ``l·l``, the Ukrainian apostrophe ``ʼ`` of ``мʼясо``) or clusters of several characters
(Breton ``cʼh``, Uzbek ``oʻ``): step 02 must not remove them, and reports the characters that are *not*
in the alphabet (noise, foreign words, digits).

``alphabet_for("sv-SE")`` maps the Common Voice locale to CLDR's (``sv``) and returns an
:class:`Alphabet`, or None where CLDR has no data for the language.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).with_name("data") / "alphabets.json"
ITEM_SEPARATOR = " "  # between the items of a set in the data file (no item contains a space)

# Common Voice locales whose CLDR locale is not found by dropping the region: a different script or
# language. (Others: exact match, else the part before "-": sv-SE -> sv, rm-sursilv -> rm.)
CV_TO_CLDR = {
    "zh-TW": "zh-Hant",  # Chinese (Taiwan): traditional characters
    "zh-HK": "yue",  # Common Voice's zh-HK is Cantonese, written in traditional characters
    "kmr": "ku",  # Kurmanji Kurdish: CLDR's ku (Latin script)
}


@dataclass(frozen=True)
class Alphabet:
    """The letters of one language; an item of several characters is a cluster (``cʼh``, ``oʻ``)."""

    locale: str  # the CLDR locale it comes from
    main: tuple[str, ...]  # the letters of the language (CLDR exemplarCharacters), as CLDR writes them
    auxiliary: tuple[str, ...]  # letters of loanwords and foreign names (CLDR auxiliary)
    cldr_version: str

    @property
    def items(self) -> tuple[str, ...]:
        """Main letters, then auxiliary ones."""
        return self.main + self.auxiliary

    def characters(self) -> set[str]:
        """Every character of every item, clusters taken apart (``cʼh`` -> c, ʼ, h), as CLDR writes them."""
        return {ch for item in self.items for ch in item}


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def cldr_version() -> str:
    return _data()["cldr_version"]


def cldr_locale(language: str) -> str | None:
    """The CLDR locale of a Common Voice locale (``sv-SE`` -> ``sv``), or None where CLDR has none."""
    locales = _data()["locales"]
    language = language.replace("_", "-")
    for candidate in (CV_TO_CLDR.get(language), language, language.split("-")[0]):
        if candidate and candidate in locales:
            return candidate
    return None


@lru_cache(maxsize=None)
def alphabet_for(language: str) -> Alphabet | None:
    """The alphabet of a Common Voice locale (or a CLDR one), or None where CLDR has no data for it."""
    locale = cldr_locale(language)
    if locale is None:
        return None
    sets = _data()["locales"][locale]
    main, auxiliary = (tuple(item for item in sets[key].split(ITEM_SEPARATOR) if item) for key in ("main", "auxiliary"))
    return Alphabet(locale=locale, main=main, auxiliary=auxiliary, cldr_version=cldr_version())


def available_locales() -> list[str]:
    """Every CLDR locale in the data file."""
    return list(_data()["locales"])
