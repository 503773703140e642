"""Step 02: text normalization per language, character inventory, the saved normalizer.

- :mod:`.profiles`    how each language is normalized (:data:`PROFILES`), and which metric to read (WER or CER)
- :mod:`.rules`       the characters the rules work with, and what the language's alphabet changes in them
- :mod:`.normalizer`  :class:`Normalizer` (``normalizer(text) -> str``, its steps in order), ``normalizer.json``
- :mod:`.omnilingual` ``NORMALIZER="omnilingual"``: the text as Omnilingual ASR's training text was written
- :mod:`.choice`      ``NORMALIZER="auto"``: omnilingual for an Omnilingual ASR MODEL, else profile
- :mod:`.reports`     the character inventory before/after and the characters outside the alphabet, as tables
- :mod:`.step`        :func:`run_normalize`, the step: ``02_normalize/`` (dataset, normalizer.json, report.json)

The names that other modules, the notebooks and a model's users import are here:
``from xlsr_helpers.normalize import load_normalizer``.
"""

from .choice import choose_mode, is_omnilingual
from .normalizer import FILE_NAME, FORMAT, FORMAT_VERSION, MODES, TEXT_SEPARATOR, Normalizer, load_normalizer
from .profiles import NO_SPACE_LANGUAGES, PROFILES, Profile, primary_metric, profile_for
from .reports import (EXAMPLES_PER_CHARACTER, alphabet_report, char_info, char_inventory, first_examples,
                      inventory_report, inventory_table, outside_alphabet_table, removed_table)
from .rules import (APOSTROPHE, APOSTROPHES, DASHES, DELIMITER_STAND_IN, DOUBLE_QUOTES, SEED_CHARS, WORD_DELIMITER,
                    AlphabetRules)
from .step import NormalizeResult, run_normalize

__all__ = [
    "APOSTROPHE", "APOSTROPHES", "DASHES", "DELIMITER_STAND_IN", "DOUBLE_QUOTES", "EXAMPLES_PER_CHARACTER",
    "FILE_NAME", "FORMAT", "FORMAT_VERSION", "MODES", "NO_SPACE_LANGUAGES", "PROFILES", "SEED_CHARS", "TEXT_SEPARATOR",
    "WORD_DELIMITER", "AlphabetRules", "NormalizeResult", "Normalizer", "Profile", "alphabet_report", "char_info",
    "char_inventory", "choose_mode",
    "first_examples", "inventory_report", "inventory_table", "is_omnilingual", "load_normalizer",
    "outside_alphabet_table", "primary_metric", "profile_for", "removed_table", "run_normalize",
]
