"""A ``str.translate`` table that fills itself: what each character becomes, computed the first time it is seen.

``text.translate(table)`` looks every character up in C, so a per-character rule costs one Python call per
*distinct* character instead of one per character of every sentence (measured in the three places that use it:
the leakage key of step 01, the normalizer of step 02, the label ids of step 04).

A long text (many sentences joined) goes through :meth:`TranslateTable.translate`: ``str.translate`` still costs
~90 ns a character here (a dict lookup and an int object per character); as an array of code points mapped by
numpy, 2.3 million characters took 0.11 s instead of 0.22 s (measured on the ``benchmarks/scale.py`` sentences).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

NUMPY_FROM_CHARS = 20_000  # shorter texts: str.translate (numpy's fixed cost is ~50 us)


class TranslateTable(dict):
    """``{codepoint: replacement}`` for ``str.translate``; a character not in it yet gets ``fate(character)`` (a
    string, or None to delete it), kept for the next time. ``entries`` are known fates to start with."""

    def __init__(self, fate: Callable[[str], str | None], entries: dict[int, str | None] | None = None):
        super().__init__(entries or {})
        self._fate = fate

    def __missing__(self, codepoint: int) -> str | None:
        value = self[codepoint] = self._fate(chr(codepoint))
        return value

    def translate(self, text: str) -> str:
        """``text.translate(self)``; a long text whose characters each become one character or none, with numpy."""
        if len(text) < NUMPY_FROM_CHARS:
            return text.translate(self)
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        present = np.flatnonzero(np.bincount(codes))
        fates = [self[c] for c in present.tolist()]
        if any(f is not None and len(f) > 1 for f in fates):  # a character that becomes two: str.translate
            return text.translate(self)
        becomes = np.arange(int(present[-1]) + 1, dtype=np.uint32)
        kept = np.ones(len(becomes), dtype=bool)
        for code, fate in zip(present.tolist(), fates):
            if fate:
                becomes[code] = ord(fate)
            else:
                kept[code] = False
        mapped = becomes[codes]
        if not kept.all():
            mapped = mapped[kept[codes]]
        return mapped.tobytes().decode("utf-32-le", "surrogatepass")
