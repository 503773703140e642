"""``NORMALIZER="auto"``: which normalization step 02 uses, decided before any model is loaded.

The text a model learns must be written the way it writes. A checkpoint that keeps its own vocabulary
(``VOCABULARY``, decided by step 03) was trained on text of one form: for Meta's Omnilingual ASR that is lower
case without punctuation and without digit-only words (:mod:`.omnilingual`). Step 02 runs before step 03, so it
cannot wait for that decision; it reads MODEL instead (this notebook's ``MODEL``, or run.json's): an Omnilingual
ASR checkpoint (``model_type`` "omniasr_ctc" or "omniasr" in its ``config.json``, read as plain JSON from a folder
or the Hub cache; else its name) gets ``omnilingual``, every other MODEL ``profile``. The omnilingual form suits a
new character vocabulary too (``VOCABULARY="train"``), and it is the form in which that model's zero-shot baseline
is scored, so the choice does not depend on VOCABULARY. Step 03 says so when the two disagree (02 ran for another
MODEL).
"""

from __future__ import annotations

from ..config import Config
from ..families import FamilyError, read_config_json
from .omnilingual import MODE as OMNILINGUAL

OMNILINGUAL_MODEL_TYPES = ("omniasr_ctc", "omniasr")
OMNILINGUAL_NAME_HINTS = ("omniasr", "omnilingual")


def is_omnilingual(model: str) -> tuple[bool, str]:
    """(whether MODEL is an Omnilingual ASR checkpoint, how that was read), without the network."""
    try:
        config, _ = read_config_json(model, download=False)
    except (FamilyError, OSError, ValueError):
        config = None
    if config is not None:
        model_type = config.get("model_type")
        return model_type in OMNILINGUAL_MODEL_TYPES, f"its config.json says model_type={model_type!r}"
    named = any(hint in str(model).lower() for hint in OMNILINGUAL_NAME_HINTS)
    return named, "its name (config.json not at hand)"


def choose_mode(cfg: Config) -> tuple[str, str]:
    """(normalizer mode, why) for ``cfg.normalizer``; "auto" is resolved from MODEL."""
    if cfg.normalizer != "auto":
        return cfg.normalizer, f"NORMALIZER={cfg.normalizer!r}"
    omni, how = is_omnilingual(cfg.model)
    if omni:
        return OMNILINGUAL, (f"NORMALIZER='auto' and MODEL={cfg.model!r} is an Omnilingual ASR checkpoint ({how}): "
                             "its training text was lower case without punctuation or digit-only words")
    return "profile", f"NORMALIZER='auto': the language profile (MODEL={cfg.model!r} is no Omnilingual ASR model)"
