"""Character counts of many sentences at once (the inventories of steps 02 and 03).

``Counter("".join(texts))`` counts in C, but hashes every character: 0.22 s for the 2.3 million characters of
100,000 sentences. Counting their code points with numpy (``bincount`` of the UTF-32 array) took 0.03 s for the
same, identical counts (measured on the ``benchmarks/scale.py`` corpus).
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np


def count_chars(texts: Iterable[str] | str) -> Counter:
    """{character: count} over all ``texts`` (or one string); ties in ``most_common`` come in code-point order."""
    joined = texts if isinstance(texts, str) else "".join(texts)
    if not joined:
        return Counter()
    codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    counts = np.bincount(codes)
    present = np.flatnonzero(counts)
    return Counter(dict(zip(map(chr, present.tolist()), counts[present].tolist())))
