"""Step 02's reports: the character inventory before and after normalization, and the characters outside the
language's alphabet, each character with its count, its Unicode name and example sentences; and the tables the
notebook shows of them.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Any, Iterable

from ..alphabets import alphabet_for
from ..chars import contains_any, count_chars
from .normalizer import Normalizer

EXAMPLES_PER_CHARACTER = 3  # example sentences per character outside the alphabet in the report


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
