"""A ``str.translate`` table that fills itself: what each character becomes, computed the first time it is seen.

``text.translate(table)`` looks every character up in C, so a per-character rule costs one Python call per
*distinct* character instead of one per character of every sentence (measured in the three places that use it:
the leakage key of step 01, the normalizer of step 02, the label ids of step 04).
"""

from __future__ import annotations

from typing import Callable


class TranslateTable(dict):
    """``{codepoint: replacement}`` for ``str.translate``; a character not in it yet gets ``fate(character)`` (a
    string, or None to delete it), kept for the next time. ``entries`` are known fates to start with."""

    def __init__(self, fate: Callable[[str], str | None], entries: dict[int, str] | None = None):
        super().__init__(entries or {})
        self._fate = fate

    def __missing__(self, codepoint: int) -> str | None:
        value = self[codepoint] = self._fate(chr(codepoint))
        return value
