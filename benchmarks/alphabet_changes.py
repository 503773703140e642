"""Which languages does the alphabet (CLDR exemplar characters) change in step 02's normalization?

    python benchmarks/alphabet_changes.py [--before d387b0d]

For every locale of ``xlsr_helpers/data/alphabets.json``, one sentence is made of the alphabet's own
letters (every main and auxiliary item inside a word, every cluster at the end of one) with common punctuation and apostrophes around and
inside words, and normalized twice: by ``xlsr_helpers/normalize.py`` as it was at commit ``--before``
(read with ``git show``) and as it is now. Printed: the locales whose output differs, each with the first
word that differs (before -> now), then how many Common Voice locales have an alphabet and which have none.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xlsr_helpers.alphabets import alphabet_for, available_locales, cldr_locale  # noqa: E402
from xlsr_helpers.normalize import Normalizer  # noqa: E402

# Common Voice 17.0's locales (the release the figures below are counted on)
COMMON_VOICE_LOCALES = (
    "ab af am an ar as ast az ba bas be bg bn br ca ckb cnh cs cv cy da de dv dyu el en eo es et eu fa fi fr "
    "fy-NL ga-IE gl gn ha he hi hsb ht hu hy-AM ia id ig is it ja ka kab kk kmr ko ky lg lij lo lt ltg lv mdf "
    "mhr mk ml mn mr mrj mt myv nan-tw ne-NP nhi nl nn-NO nso oc or os pa-IN pl ps pt quy rm-sursilv "
    "rm-vallader ro ru rw sah sat sc sk skr sl sq sr sv-SE sw ta te th ti tig tk tok tr tt tw ug uk ur uz vi "
    "vot yi yo yue zgh zh-CN zh-HK zh-TW zu zza"
).split()


def normalizer_class_before(commit: str):
    """``Normalizer`` of xlsr_helpers/normalize.py at ``commit``, imported beside today's package."""
    source = subprocess.run(["git", "show", f"{commit}:xlsr_helpers/normalize.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("xlsr_helpers.normalize_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "xlsr_helpers"
    sys.modules[spec.name] = module  # dataclasses look their module up there
    exec(compile(source, f"{commit}:xlsr_helpers/normalize.py", "exec"), module.__dict__)
    return module.Normalizer


def sentence_of(locale: str) -> str:
    """The alphabet's items inside words, with punctuation and apostrophes (typed ', typographic ’)."""
    alphabet = alphabet_for(locale)
    letter = next((item for item in alphabet.main if item.isalpha()), alphabet.main[0])
    words = [f"{letter}{item}{letter}" for item in alphabet.items]  # each letter inside a word
    words += [f"{letter}{item}" for item in alphabet.items if len(item) > 1]  # each cluster at a word's end
    return (f"«{words[0].capitalize()}», {' '.join(words[1:])}. {letter}'{letter} {letter}’{letter} "
            f"'{letter}' – {letter}-{letter}?")


def changed_words(before: str, now: str) -> tuple[str, str]:
    """The first word that differs (the whole texts where the words do not line up)."""
    old, new = before.split(), now.split()
    if len(old) == len(new):
        for a, b in zip(old, new):
            if a != b:
                return a, b
    return before, now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="d387b0d", help="the commit to compare with")
    args = parser.parse_args()
    Before = normalizer_class_before(args.before)
    changed = []
    for locale in available_locales():
        text = sentence_of(locale)
        old, new = Before(locale)(text), Normalizer(locale)(text)
        if old != new:
            changed.append((locale, *changed_words(old, new), Normalizer(locale).alphabet))
    print(f"{len(changed)} of {len(available_locales())} CLDR locales normalize differently from {args.before}:")
    for locale, old, new, rules in changed:
        print(f"  {locale:10} {old!r} -> {new!r}   ({rules.word_marks=!s} {rules.apostrophe=!s} "
              f"{rules.mark_clusters=!s})")
    in_cv = {locale for locale, *_ in changed}
    print("of them Common Voice locales:", ", ".join(cv for cv in COMMON_VOICE_LOCALES if cldr_locale(cv) in in_cv))
    covered = [cv for cv in COMMON_VOICE_LOCALES if alphabet_for(cv)]
    missing = [cv for cv in COMMON_VOICE_LOCALES if not alphabet_for(cv)]
    print(f"\nCommon Voice 17.0: {len(covered)} of {len(COMMON_VOICE_LOCALES)} locales have a CLDR alphabet; "
          f"none for {len(missing)}: {' '.join(missing)}")


if __name__ == "__main__":
    main()
