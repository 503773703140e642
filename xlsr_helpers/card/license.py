"""The license of the fine-tuned model: the base checkpoint's, unless the run states another it may use.

A fine-tuned model is a derivative of its base checkpoint, whose license still applies: ``facebook/mms-1b-all``,
``mms-1b`` and ``mms-300m`` are CC-BY-NC-4.0, so their fine-tunes may not be published as ``apache-2.0``.
``LICENSE = ""`` (notebook 06) takes the base model's license: from its model card's YAML header (``license:``
of README.md, in the checkpoint's folder or the Hub cache), else from :data:`KNOWN_LICENSES` for well-known ids;
when neither says, ``apache-2.0`` (the curriculum's own) with a note in the card to check it. A ``LICENSE`` that
grants what the base's does not (commercial use of a non-commercial base, another license for a share-alike
one, any derivative of a no-derivatives one) is refused with a message, unless ``LICENSE_CONFIRMED = True``
states that the run may relicense (e.g. its author holds the base model's rights).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..constants import TINY_MODEL

DEFAULT_LICENSE = "apache-2.0"  # the curriculum's, for a base whose license nothing says (tiny, a bare folder)
# The licenses of well-known base checkpoints, for when their model card is not at hand (offline, not cached).
# Checked against the Hub's model pages (2026): mms-300m cc-by-nc-4.0, w2v-bert-2.0 mit, parakeet-ctc-1.1b cc-by-4.0;
# the others as their model cards and release notes state them (Omnilingual ASR: Apache-2.0 code and models).
KNOWN_LICENSES = (
    ("facebook/mms-1b-all", "cc-by-nc-4.0"), ("facebook/mms-1b-fl102", "cc-by-nc-4.0"),
    ("facebook/mms-1b-l1107", "cc-by-nc-4.0"), ("facebook/mms-1b", "cc-by-nc-4.0"),
    ("facebook/mms-300m", "cc-by-nc-4.0"),
    ("facebook/wav2vec2-large-xlsr-53", "apache-2.0"), ("facebook/wav2vec2-xls-r-*", "apache-2.0"),
    ("hf-audio/omniasr-*", "apache-2.0"), ("facebook/omniASR*", "apache-2.0"),
    ("facebook/w2v-bert-2.0", "mit"),
    ("nvidia/parakeet-ctc-*", "cc-by-4.0"),
    ("facebook/hubert-*", "apache-2.0"), ("facebook/data2vec-audio-*", "apache-2.0"),
)


class LicenseError(ValueError):
    """LICENSE grants what the base model's license does not; the message says what to do."""


@dataclass(frozen=True)
class CardLicense:
    license: str  # the Hub license identifier in the card's YAML header
    base: str | None  # the base checkpoint's license, when known
    source: str  # where the base's license was read
    note: str  # one sentence for the card

    @property
    def text(self) -> str:
        return f"license: {self.license} — {self.note}"


def read_card_license(model: str) -> str | None:
    """``license:`` of the model card (README.md's YAML header) in MODEL's folder or the Hub cache."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        readme = folder / "README.md"
    else:
        from huggingface_hub import try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(model, "README.md")
        except ValueError:  # not a Hub id
            return None
        if not isinstance(cached, str):
            return None
        readme = Path(cached)
    if not readme.is_file():
        return None
    from huggingface_hub import ModelCard

    value = ModelCard(readme.read_text(encoding="utf-8")).data.to_dict().get("license")
    return str(value).strip().lower() if value else None


def base_license(model: str) -> tuple[str | None, str]:
    """(the base checkpoint's license or None, where it was found)."""
    if model == TINY_MODEL:
        return None, "MODEL='tiny' (random weights, no base model)"
    found = read_card_license(model)
    if found:
        return found, f"the model card of {model}"
    for pattern, license in KNOWN_LICENSES:
        if fnmatch.fnmatch(model.lower(), pattern.lower()):
            return license, f"the license of {pattern} (xlsr_helpers/card/license.py)"
    return None, f"nothing says {model}'s license (no model card with a license: field at hand)"


def restriction(base: str, chosen: str) -> str:
    """Why ``chosen`` may not be the license of a derivative of a ``base``-licensed model; "" when it may."""
    base, chosen = base.lower(), chosen.lower()
    if base == chosen:
        return ""
    if "-nd" in base:
        return f"{base} allows no derivatives (a fine-tune is one)"
    if "-nc" in base and "-nc" not in chosen:
        return f"{base} is non-commercial, {chosen} would allow commercial use"
    if "-sa" in base:
        return f"{base} is share-alike: derivatives keep {base}"
    return ""


def card_license(cfg: Config) -> CardLicense:
    """The card's license: LICENSE, or ("") the base model's; refused (:class:`LicenseError`) when LICENSE grants
    what the base's does not, unless LICENSE_CONFIRMED."""
    base, source = base_license(cfg.model)
    chosen = (cfg.license or "").strip()
    if not chosen:
        if base:
            return CardLicense(base, base, source, f"the base model's license ({source}).")
        return CardLicense(DEFAULT_LICENSE, None, source,
                           f"the curriculum's default: {source}; check the base model's terms before publishing.")
    why = restriction(base, chosen) if base else ""
    if why and not cfg.license_confirmed:
        raise LicenseError(
            f"LICENSE={chosen!r} cannot be the license of a fine-tune of {cfg.model}: {why} ({source}). Leave "
            f"LICENSE empty to publish under the base model's {base!r}, or set LICENSE_CONFIRMED=True if you may "
            "relicense it (for example, you hold the base model's rights).")
    if why:
        return CardLicense(chosen, base, source, f"set by the author, who states (LICENSE_CONFIRMED) that they may "
                                                 f"relicense the base model ({base}, {source}).")
    if base:
        return CardLicense(chosen, base, source, f"set by the author; the base model is {base} ({source}).")
    return CardLicense(chosen, None, source, f"set by the author; {source}.")
