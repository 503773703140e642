"""What the card calls things: language names, the Hub's language tag, the repository name, the base model
and the data sources (local folders shortened, so that no home path reaches a card).

The leaderboard names its languages with ``language_name`` too.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..config import Config
from ..constants import DEFAULT_MODEL

LANGUAGE_NAMES = {
    "ab": "Abkhaz", "ar": "Arabic", "as": "Assamese", "br": "Breton", "ca": "Catalan", "cnh": "Hakha Chin",
    "cs": "Czech", "cv": "Chuvash", "cy": "Welsh", "de": "German", "dv": "Dhivehi", "el": "Greek",
    "en": "English", "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "fy-NL": "Frisian", "ga-IE": "Irish", "hi": "Hindi", "hsb": "Sorbian",
    "hu": "Hungarian", "ia": "Interlingua", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "ka": "Georgian", "ky": "Kyrgyz", "lg": "Luganda", "lt": "Lithuanian", "lv": "Latvian", "mn": "Mongolian",
    "mt": "Maltese", "nl": "Dutch", "or": "Odia", "pa-IN": "Punjabi", "pl": "Polish", "pt": "Portuguese",
    "rm-sursilv": "Romansh Sursilvan", "rm-vallader": "Romansh Vallader", "ro": "Romanian", "ru": "Russian",
    "rw": "Kinyarwanda", "sah": "Sakha", "sl": "Slovenian", "sv-SE": "Swedish", "ta": "Tamil", "th": "Thai",
    "tr": "Turkish", "tt": "Tatar", "uk": "Ukrainian", "vi": "Vietnamese", "zh-CN": "Chinese (China)",
    "zh-HK": "Chinese (Hong Kong)", "zh-TW": "Chinese (Taiwan)",
}


def language_name(language: str) -> str:
    return LANGUAGE_NAMES.get(language, language)


def hub_language(language: str) -> str:
    """The Hub's language tag: ISO 639 code without the Common Voice region (zh-CN -> zh, sv-SE -> sv)."""
    return language.split("-")[0].lower()


def model_name(cfg: Config) -> str:
    """Repository name: wav2vec2-large-xlsr-<language> (the seed's), wav2vec2-tiny-<language> for tiny."""
    if cfg.is_tiny():
        return f"wav2vec2-tiny-{cfg.language}"
    if cfg.model == DEFAULT_MODEL:
        return f"wav2vec2-large-xlsr-{cfg.language}"
    base = Path(str(cfg.model).rstrip("/")).name
    return f"{base}-{cfg.language}"


def repo_id(cfg: Config, user: str | None = None) -> str:
    """HUB_MODEL_ID ("org/name" as given; a bare "name" under ``user``), else <user>/<model name>; just the name
    when it has no namespace and the user is not known."""
    name = cfg.hub_model_id or model_name(cfg)
    return f"{user}/{name}" if user and "/" not in name else name


def base_model_label(cfg: Config) -> str:
    if cfg.is_tiny():
        return "random weights (the curriculum's tiny model)"
    if Path(cfg.model).exists():
        return f"the local checkpoint `{Path(cfg.model).name}`"
    return f"[{cfg.model}](https://huggingface.co/{cfg.model})"


def public_source(spec: str) -> str:
    """A data source with local folders shortened to their last two parts (no home paths in a card)."""
    parts = []
    for item in spec.split("+"):
        kind, _, value = item.strip().partition(":")
        if kind in ("common_voice", "audiofolder") and value:
            tail = "/".join(Path(value).parts[-2:])
            parts.append(f"{kind}:/path/to/{tail}")
        else:
            parts.append(item.strip())
    return "+".join(parts)


def dataset_ids(cfg: Config) -> list[tuple[str, str]]:
    """``(id, pretty name)`` per data source, for the card's ``datasets`` and model-index."""
    out = []
    for item in cfg.data_source.split("+"):
        kind, _, value = item.strip().partition(":")
        if kind == "common_voice":
            match = re.search(r"cv-corpus-(\d+)\.(\d+)", value)
            if match:
                major, minor = match.groups()
                out.append((f"mozilla-foundation/common_voice_{major}_{minor}", f"Common Voice {major}.{minor}"))
            else:
                out.append(("common_voice", "Common Voice"))
        elif kind == "hub":
            out.append((value, value))
        elif kind == "audiofolder":
            out.append(("audiofolder", f"own recordings ({Path(value).name})"))
        elif kind == "mdc":  # the Collective's dataset id: the one place this release can be fetched from now
            out.append((f"mozilla-data-collective/{value}", f"Common Voice (Mozilla Data Collective, {value})"))
        elif kind == "synthetic":
            out.append(("synthetic-espeak-ng", "synthetic speech (espeak-ng, Common Voice layout)"))
        else:
            out.append((item.strip(), item.strip()))
    return out


def is_synthetic(cfg: Config) -> bool:
    return any(s.strip().split(":")[0] == "synthetic" for s in cfg.data_source.split("+"))
