"""Model families: one recipe per family, which family a checkpoint is, and the run's recipe, resolved once per step.

Every checkpoint that ``AutoModelForCTC`` can fine-tune goes through the same code; what differs between
families lives here and nowhere else:

- what is frozen and what is trained (the feature encoder, or the whole base model for MMS adapters);
- the training values (learning rate, warm-up, epochs, batch, dropouts, masking, LayerDrop) that :func:`resolve`
  puts into every parameter left at ``None`` (``config.RECIPE_FIELDS``);
- settings of the model's config (``add_adapter=True`` for w2v-BERT 2.0);
- the feature extractor to use when a checkpoint has no ``preprocessor_config.json`` (``models.py`` builds it).

The recipes themselves, with their sources, are in ``recipes.py``; this module decides which one a checkpoint
follows. Any ``model_type`` of transformers' ``AutoModelForCTC`` without a recipe of its own gets the generic one,
marked unvalidated. :func:`ready_to_transcribe` says whether a checkpoint already writes text (a CTC head and a
tokenizer, for MMS the adapter of the language), which step 03 uses to choose between keeping the model's
vocabulary and training a new one.

The family is read from the checkpoint's ``config.json`` (``model_type``, and ``adapter_attn_dim`` for MMS
adapter models), never guessed from the class a loader happens to produce: a WavLM or HuBERT checkpoint
loaded as ``Wav2Vec2ForCTC`` silently loses its encoder. ``MODEL_FAMILY`` overrides the detection. The file is
read as plain JSON (from a folder, the Hub cache, or the Hub): deciding a family imports no transformers, so
that steps 01 and 02, which need no model, do not load it.

:func:`resolve` decides once per step (``run_config.from_params``) and records the decision in the config
(``config.Resolution``: the family, how it was found, a hash of the config.json it read), which run.json keeps:
a later step with the same MODEL reads that decision instead of deciding again, and says so when MODEL's
config.json has changed since.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from .config import RECIPE_FIELDS, Config, Resolution, resolve_run_dir
from .constants import TINY_MODEL
from .recipes import (  # noqa: F401  (the recipes, and their training values, are read as families.*)
    GENERIC, MMS_ADAPTER_TRAINING, RECIPES, SEED_TRAINING, TINY_TRAINING, W2V_BERT_TRAINING, Recipe)

# Name fragments of well-known Hub ids, for when no config.json can be read (no network, nothing cached).
# The first match wins, so the more specific fragments come first.
NAME_HINTS = (("mms-1b-all", "mms-adapter"), ("mms-1b-fl102", "mms-adapter"), ("mms-1b-l1107", "mms-adapter"),
              ("omniasr-ctc", "omniasr-ctc"), ("omniasr_ctc", "omniasr-ctc"), ("parakeet-ctc", "parakeet-ctc"),
              ("w2v-bert", "w2v-bert"), ("hubert", "hubert"), ("wavlm", "wavlm"),
              ("data2vec-audio", "data2vec-audio"), ("xls-r-1b", "wav2vec2-1b"), ("xls-r-2b", "wav2vec2-1b"),
              ("mms-1b", "wav2vec2-1b"), ("xlsr", "wav2vec2"), ("xls-r", "wav2vec2"),
              ("wav2vec2", "wav2vec2"), ("mms-", "wav2vec2"))
# wav2vec2 checkpoints this wide or wider are the 1B / 2B models (XLS-R 1B and MMS-1b: 1280, XLS-R 2B: 1920).
LARGE_HIDDEN_SIZE = 1280
# Common Voice locale -> ISO 639-3 code, the adapter names of MMS (its tokenizer's vocab.json keys). A new
# adapter can have any name; these are the ones MMS itself uses, so that a card says which language it is.
MMS_LANGUAGE_CODES = {
    "ar": "ara", "be": "bel", "bg": "bul", "bn": "ben", "ca": "cat", "cs": "ces", "cy": "cym", "da": "dan",
    "de": "deu", "el": "ell", "en": "eng", "eo": "epo", "es": "spa", "et": "est", "eu": "eus", "fa": "fas",
    "fi": "fin", "fr": "fra", "fy-NL": "fry", "ga-IE": "gle", "gl": "glg", "ha": "hau", "he": "heb",
    "hi": "hin", "hu": "hun", "hy-AM": "hye", "id": "ind", "it": "ita", "ja": "jpn", "ka": "kat", "kk": "kaz",
    "ko": "kor", "ky": "kir", "lg": "lug", "lt": "lit", "lv": "lav", "mk": "mkd", "ml": "mal", "mn": "mon",
    "mr": "mar", "mt": "mlt", "nl": "nld", "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "rw": "kin",
    "sk": "slk", "sl": "slv", "sv-SE": "swe", "sw": "swh", "ta": "tam", "te": "tel", "th": "tha", "tr": "tur",
    "tt": "tat", "uk": "ukr", "vi": "vie", "yo": "yor", "zh-CN": "cmn-script_simplified",
}


class FamilyError(ValueError):
    """The model's family is unknown or contradicts MODEL_FAMILY; the message says what to do."""


# --------------------------------------------------------------------------------------------------
# which family
# --------------------------------------------------------------------------------------------------
def read_config_json(model: str, download: bool = False) -> tuple[dict | None, str]:
    """(MODEL's config.json as a dict, its SHA-256) from a local folder, the Hub cache, or (``download``) the
    Hub; (None, "") for ``tiny`` and when it cannot be read without the network."""
    if model == TINY_MODEL:
        return None, ""
    path = Path(model).expanduser()
    if path.is_dir():
        path = path / "config.json"
        if not path.is_file():
            raise FamilyError(f"MODEL={model!r} is a folder without config.json: not a model checkpoint.")
    else:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache

        try:
            cached = try_to_load_from_cache(model, "config.json")
        except ValueError:  # not a Hub id (e.g. a folder that does not exist)
            cached = None
        if isinstance(cached, str):
            path = Path(cached)
        elif download:
            path = Path(hf_hub_download(model, "config.json"))
        else:
            return None, ""
    data = path.read_bytes()
    return json.loads(data), hashlib.sha256(data).hexdigest()


def family_of_config(config: dict) -> str:
    """The family of a config.json: by ``model_type``; wav2vec2 with ``adapter_attn_dim`` is MMS adapters, wav2vec2
    of hidden size >= 1280 the 1B/2B recipe; another ``model_type`` of ``AutoModelForCTC`` the generic recipe."""
    model_type = config.get("model_type")
    if model_type == "wav2vec2" and config.get("adapter_attn_dim"):
        return "mms-adapter"
    if model_type == "wav2vec2" and (config.get("hidden_size") or 0) >= LARGE_HIDDEN_SIZE:
        return "wav2vec2-1b"
    for recipe in RECIPES.values():
        if model_type in recipe.model_types:
            return recipe.family
    if model_type in ctc_model_types():
        return GENERIC
    known = sorted(t for r in RECIPES.values() for t in r.model_types)
    raise FamilyError(f"model_type {model_type!r} is not a CTC speech model: neither a family of this curriculum "
                      f"({known}) nor an architecture of transformers' AutoModelForCTC. Set MODEL_FAMILY to the "
                      "family whose recipe fits it, or pick another MODEL.")


def ctc_model_types() -> tuple[str, ...]:
    """The model_types of transformers' ``AutoModelForCTC`` (imports transformers' auto mapping: only asked for a
    model_type without a recipe)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CTC_MAPPING_NAMES

    return tuple(MODEL_FOR_CTC_MAPPING_NAMES)


def decide(model: str, override: str = "", download: bool = False, step: str = "") -> Resolution:
    """The family of MODEL: MODEL_FAMILY if given, else the checkpoint's config.json (local folder or Hub cache;
    the Hub itself with ``download``), else the name of a well-known Hub id."""
    if override:
        if override not in RECIPES:
            raise FamilyError(f"MODEL_FAMILY={override!r} is not one of {sorted(RECIPES)}.")
        return Resolution(override, f"MODEL_FAMILY={override!r}", model, override, step=step)
    if model == TINY_MODEL:
        return Resolution("tiny", "MODEL='tiny'", model, step=step)
    config, sha = read_config_json(model, download=download)
    if config is not None:
        return by_config(model, config, sha, step)
    lowered = model.lower()
    for fragment, family in NAME_HINTS:
        if fragment in lowered:
            return Resolution(family, f"the name {model!r} (config.json not available offline)", model, step=step)
    return Resolution("wav2vec2", f"assumed: {model!r} has no readable config.json yet and an unknown name", model,
                      step=step)


def by_config(model: str, config: dict, sha: str, step: str = "") -> Resolution:
    """The decision that a read config.json makes."""
    how = f"config.json: model_type={config.get('model_type')!r}"
    family = family_of_config(config)
    if config.get("adapter_attn_dim"):
        how += f", adapter_attn_dim={config['adapter_attn_dim']}"
    elif family == "wav2vec2-1b":
        how += f", hidden_size={config.get('hidden_size')}"
    elif family == GENERIC:
        how += " (an AutoModelForCTC architecture without a recipe: the generic, unvalidated one)"
    return Resolution(family, how, model, config_sha256=sha, step=step)


def detect_family(model: str, override: str = "", download: bool = False) -> tuple[str, str]:
    """(family, how it was found) for MODEL (see :func:`decide`)."""
    resolution = decide(model, override, download)
    return resolution.family, resolution.how


def decided(cfg: Config) -> Resolution:
    """The run's family: what :func:`resolve` recorded for this MODEL and MODEL_FAMILY, else decided now."""
    resolution = cfg.resolution
    if resolution is not None and (resolution.model, resolution.model_family) == (cfg.model, cfg.model_family):
        return resolution
    return decide(cfg.model, cfg.model_family)


def recipe_for(cfg: Config) -> Recipe:
    return RECIPES[decided(cfg).family]


# --------------------------------------------------------------------------------------------------
# the run's recipe, resolved once per step
# --------------------------------------------------------------------------------------------------
def resolve(cfg: Config, step: str = "", download: bool = False, log: Callable = print) -> Config:
    """A copy of ``cfg`` with every recipe field it leaves open filled from its family's recipe, ``run_dir``
    absolute, and the decision in ``cfg.resolution``.

    A config resolved for the same MODEL and MODEL_FAMILY keeps its family (another MODEL decides again, and the
    fields that followed the old recipe follow the new one). Given a ``step`` (the start of a step:
    ``run_config.from_params``), the earlier decision is checked against MODEL's config.json (:func:`recheck`).
    ``download``: fetch config.json from the Hub when it is not at hand (the steps that load MODEL).
    """
    earlier = cfg.resolution
    if earlier is None or (earlier.model, earlier.model_family) != (cfg.model, cfg.model_family):
        resolution = decide(cfg.model, cfg.model_family, download, step)
    elif step:
        resolution = recheck(earlier, step, download, log)
    else:
        resolution = earlier
    following = earlier.from_recipe if earlier is not None else ()
    open_fields = tuple(name for name in RECIPE_FIELDS if getattr(cfg, name) is None or name in following)
    recipe = RECIPES[resolution.family].training
    return dataclasses.replace(cfg, **{name: recipe[name] for name in open_fields},
                               run_dir=str(resolve_run_dir(cfg.run_dir, cfg.language)),
                               resolution=dataclasses.replace(resolution, from_recipe=open_fields))


def recheck(earlier: Resolution, step: str, download: bool = False, log: Callable = print) -> Resolution:
    """The earlier decision, unless MODEL's config.json now says more: it changed since it was read (said in
    any case), or it could not be read then and now gives another family (said) or the same (a silent
    confirmation). A config.json that cannot be read now (offline, cache cleared) keeps the decision."""
    if earlier.model_family or earlier.model == TINY_MODEL:
        return earlier
    config, sha = read_config_json(earlier.model, download=download and not earlier.config_sha256)
    if config is None or sha == earlier.config_sha256:
        return earlier
    now = by_config(earlier.model, config, sha, step)
    since = earlier.step or "an earlier step"
    if earlier.config_sha256:
        message = (f"MODEL's config.json has changed since {since} chose the {earlier.family!r} recipe "
                   f"({earlier.how}); now {now.how}.")
    elif now.family != earlier.family:
        message = (f"{since} chose the {earlier.family!r} recipe from {earlier.how}; MODEL's config.json, "
                   f"at hand now, says {now.how}.")
    else:
        return now
    if now.family == earlier.family:
        message += f" The family, and its recipe, stay {now.family!r}."
    else:
        message += (f" From this step on the run follows the {now.family!r} recipe: run again the steps from 03_vocab "
                    f"on that were made for {earlier.family!r}, or set MODEL_FAMILY={earlier.family!r} to keep it.")
    log(message)
    return now


def recipe_table(cfg: Config) -> list[dict[str, Any]]:
    """The resolved recipe as rows (parameter, value, from the recipe or set by the run), for notebook 04."""
    cfg = resolve(cfg)
    resolution = cfg.resolution
    recipe = RECIPES[resolution.family]
    rows = [{"parameter": "family", "value": f"{recipe.title} ({recipe.family})", "from": resolution.how},
            {"parameter": "recipe", "value": recipe.status, "from": recipe.source},
            {"parameter": "trained", "value": {"feature_encoder": "everything but the CNN feature encoder",
                                               "base_model": "adapter layers and the CTC head only",
                                               "nothing": "everything"}[recipe.freeze], "from": "recipe"}]
    for name, value in recipe.model_config.items():
        rows.append({"parameter": name, "value": value, "from": "recipe (model config)"})
    for name in RECIPE_FIELDS:
        rows.append({"parameter": name.upper(), "value": getattr(cfg, name),
                     "from": "recipe" if name in resolution.from_recipe else "set by the run"})
    return rows


# --------------------------------------------------------------------------------------------------
# MMS adapters: the adapter's language
# --------------------------------------------------------------------------------------------------
def mms_language_code(language: str) -> str:
    """TARGET_LANG for a Common Voice locale: MMS's ISO 639-3 code where known, else the locale itself."""
    return MMS_LANGUAGE_CODES.get(language, MMS_LANGUAGE_CODES.get(language.split("-")[0], language))


def target_lang(cfg: Config) -> str | None:
    """The adapter language of an MMS-adapter run (TARGET_LANG, or mapped from LANGUAGE); None otherwise."""
    if recipe_for(cfg).family != "mms-adapter":
        return None
    return cfg.target_lang or mms_language_code(cfg.language)


# --------------------------------------------------------------------------------------------------
# does the checkpoint already write text?
# --------------------------------------------------------------------------------------------------
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model")  # a tokenizer's vocabulary, in any format


def checkpoint_file(model: str, name: str, download: bool = False) -> tuple[Path | None, bool]:
    """(path, known): MODEL's file ``name`` from its folder or the Hub cache (with ``download``: the Hub). ``known``
    is False when it could not be told whether the file exists (a Hub id, offline, not cached)."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        path = folder / name
        return (path if path.is_file() else None), True
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(model, name)
    except ValueError:  # not a Hub id
        return None, True
    if isinstance(cached, str):
        return Path(cached), True
    if cached is not None:  # the cache knows that the repository has no such file
        return None, True
    if not download:
        return None, False
    try:
        return Path(hf_hub_download(model, name)), True
    except Exception as error:  # noqa: BLE001  (EntryNotFoundError, or the network)
        return None, type(error).__name__ in ("EntryNotFoundError", "RemoteEntryNotFoundError")


def has_adapter(model: str, language: str, download: bool = False) -> bool:
    """MODEL ships MMS adapter weights for ``language`` (``adapter.<language>.safetensors``: MMS-1b-all's own
    languages, or a model this curriculum fine-tuned)."""
    path, _ = checkpoint_file(model, f"adapter.{language}.safetensors", download)
    return path is not None


def ready_to_transcribe(model: str, language: str = "", download: bool = False) -> tuple[bool, str]:
    """(True, why) when MODEL already writes text: a CTC head saved with it (config.json's architecture is a
    ``...ForCTC``), a tokenizer beside it, and for an MMS adapter model the adapter and vocabulary of ``language``
    (TARGET_LANG, e.g. "tur"); else (False, why not). Read from the checkpoint's files (folder, Hub cache, or with
    ``download`` the Hub), without loading it. Whether that tokenizer can write the training text is step 03's
    coverage report, not this."""
    if model == TINY_MODEL:
        return False, "MODEL='tiny' is a random model without a vocabulary"
    config, _ = read_config_json(model, download=download)
    if config is None:
        return False, f"{model}'s config.json is not at hand (offline and not cached): it cannot be read yet"
    architectures = config.get("architectures") or []
    if not any(str(name).endswith("ForCTC") for name in architectures):
        what = architectures[0] if architectures else f"model_type {config.get('model_type')!r}"
        return False, f"no CTC head: {what} is a pre-trained encoder (a new head and vocabulary are needed)"
    tokenizer, unknown = None, False
    for name in TOKENIZER_FILES:
        path, known = checkpoint_file(model, name, download)
        tokenizer, unknown = tokenizer or path, unknown or not known
    if tokenizer is None:
        if unknown:
            return False, f"{model}'s tokenizer files are not at hand (offline and not cached)"
        return False, f"{architectures[0]} has a CTC head but no tokenizer ({', '.join(TOKENIZER_FILES)})"
    what = f"{architectures[0]} with its CTC head ({config.get('vocab_size')} outputs) and tokenizer ({tokenizer.name})"
    if config.get("adapter_attn_dim"):  # MMS: one adapter, head and vocabulary per language
        what = f"{architectures[0]} with language adapters, their CTC heads and tokenizer ({tokenizer.name})"
        if not language:
            return False, f"{what}, but an MMS adapter model writes a language only with its TARGET_LANG"
        vocab = json.loads(tokenizer.read_text(encoding="utf-8")) if tokenizer.name == "vocab.json" else {}
        if language not in vocab or not has_adapter(model, language, download):
            return False, f"{what}, but no adapter and vocabulary for {language!r} (adapter.{language}.safetensors)"
        return True, f"{what}; the adapter and vocabulary of {language!r}"
    return True, what
