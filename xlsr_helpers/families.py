"""Model families: one recipe per family, which family a checkpoint is, and the run's recipe, resolved once per step.

Every checkpoint that ``AutoModelForCTC`` can fine-tune goes through the same code; what differs between
families lives here and nowhere else:

- what is frozen and what is trained (the feature encoder, or the whole base model for MMS adapters);
- the training values (learning rate, warm-up, epochs, batch, dropouts, masking, LayerDrop) that :func:`resolve`
  puts into every parameter left at ``None`` (``config.RECIPE_FIELDS``);
- settings of the model's config (``add_adapter=True`` for w2v-BERT 2.0);
- the feature extractor to use when a checkpoint has no ``preprocessor_config.json`` (``models.py`` builds it).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import RECIPE_FIELDS, Config, Resolution, resolve_run_dir
from .constants import TINY_MODEL

# The seed notebook's values (the 2021 XLSR fine-tuning week), for wav2vec2-style encoders.
# Augmentation beyond the time mask is off in every recipe: SpecAugment's frequency mask (mask_feature_prob 0.0,
# as the seed left it and XLSR-53's config has it) and SPEED_PERTURBATION (""). Measured (benchmarks/augmentation.py,
# held-out CER on the synthetic tr corpus's unseen test speakers, equal updates, seeds 42/1/2): speed perturbation
# 0.9/1.0/1.1 made every run worse: tiny from scratch (the demo's 1,000 updates) mean CER 0.205 -> 0.281, the
# learning proof's pretrained encoder (300 updates) 0.442 -> 0.523 (900 updates, seed 42: 0.116 -> 0.141). It remains
# a parameter for long real runs.
SEED_TRAINING = dict(
    batch_size=16, gradient_accumulation_steps=2, learning_rate=3e-4, warmup_steps=500, num_train_epochs=30.0,
    eval_steps=400, save_steps=400, logging_steps=400, layerdrop=0.1, mask_time_prob=0.05,
    gradient_checkpointing="auto", attention_dropout=0.1, hidden_dropout=0.1, feat_proj_dropout=0.0,
    freeze_feature_encoder=True, freeze_encoder_steps=0,
    mask_feature_prob=0.0, mask_feature_length=10, speed_perturbation="",
)
# The measured CPU recipe for `tiny` (0.6M parameters: batches of 8 without accumulation, lr 5e-3 with 8 %
# warm-up, 30 epochs of the demo corpus = 2,250 updates, ~4 min on 2 CPU cores; held-out CER 0.2 after ~500
# updates, 0.04 after 2,250; 3e-4 or batches of 32 stay all-blank). An update of 8 took ~0.35 CPU-s on a
# 2-core AMD EPYC VM (1 thread): 2,250 of them ~13 minutes there. `make demo` therefore trains its own fixed
# budget (pipeline.DEMO_PARAMETERS: 1,000 updates of 4, no time limit), not these 30 epochs.
TINY_TRAINING = dict(
    SEED_TRAINING, batch_size=8, gradient_accumulation_steps=1, learning_rate=5e-3, warmup_steps=-1,
    eval_steps=100, save_steps=100, logging_steps=20, layerdrop=0.0, gradient_checkpointing=False,
)
# Hugging Face's w2v-BERT 2.0 fine-tuning write-up (Lacombe, 2024): no dropout, no masking, no LayerDrop,
# an adapter on top of the encoder (halves the frame rate), lr 5e-5, 10 epochs.
W2V_BERT_TRAINING = dict(
    batch_size=16, gradient_accumulation_steps=2, learning_rate=5e-5, warmup_steps=500, num_train_epochs=10.0,
    eval_steps=300, save_steps=600, logging_steps=300, layerdrop=0.0, mask_time_prob=0.0,
    gradient_checkpointing="auto", attention_dropout=0.0, hidden_dropout=0.0, feat_proj_dropout=0.0,
    freeze_feature_encoder=False, freeze_encoder_steps=0,
    mask_feature_prob=0.0, mask_feature_length=10, speed_perturbation="",
)
# Hugging Face's MMS adapter write-up (von Platen, 2023): the 1B base model frozen, only the adapter layers
# (~2.5M weights) and the head trained, lr 1e-3, 4 epochs, batches of 32.
MMS_ADAPTER_TRAINING = dict(
    batch_size=32, gradient_accumulation_steps=1, learning_rate=1e-3, warmup_steps=100, num_train_epochs=4.0,
    eval_steps=100, save_steps=200, logging_steps=100, layerdrop=0.0, mask_time_prob=0.05,
    gradient_checkpointing="auto", attention_dropout=0.0, hidden_dropout=0.0, feat_proj_dropout=0.0,
    freeze_feature_encoder=True, freeze_encoder_steps=0,
    mask_feature_prob=0.0, mask_feature_length=10, speed_perturbation="",
)


@dataclass(frozen=True)
class Recipe:
    """How one family of checkpoints is fine-tuned."""

    family: str  # the MODEL_FAMILY value
    title: str
    model_types: tuple[str, ...]  # config.json model_type values of the family
    examples: tuple[str, ...]  # Hub ids
    freeze: str  # "feature_encoder" (the CNN stays as pretrained) | "base_model" (only adapters + head train) | "nothing"
    training: dict = field(default_factory=dict)  # Config field -> value, for fields left at None
    model_config: dict = field(default_factory=dict)  # set on the model's config when it is built
    feature_extractor: str = "wav2vec2"  # family default when the checkpoint has none: wav2vec2 | seamless_m4t
    source: str = ""  # where the training values come from


RECIPES: dict[str, Recipe] = {r.family: r for r in (
    Recipe("wav2vec2", "wav2vec 2.0 / XLSR / XLS-R / MMS pretrained",
           ("wav2vec2", "wav2vec2-conformer", "unispeech", "unispeech-sat", "sew", "sew-d"),
           ("facebook/wav2vec2-large-xlsr-53", "facebook/wav2vec2-xls-r-300m", "facebook/wav2vec2-xls-r-1b",
            "facebook/mms-300m", "facebook/mms-1b"),
           "feature_encoder", SEED_TRAINING, source="the 2021 XLSR fine-tuning week notebook"),
    Recipe("hubert", "HuBERT", ("hubert",), ("facebook/hubert-large-ll60k", "facebook/hubert-base-ls960"),
           "feature_encoder", SEED_TRAINING, source="the seed's values (same encoder family)"),
    Recipe("wavlm", "WavLM", ("wavlm",), ("microsoft/wavlm-large", "microsoft/wavlm-base-plus"),
           "feature_encoder", SEED_TRAINING, source="the seed's values (same encoder family)"),
    Recipe("data2vec-audio", "data2vec-audio", ("data2vec-audio",),
           ("facebook/data2vec-audio-large", "facebook/data2vec-audio-base"),
           "feature_encoder", SEED_TRAINING, source="the seed's values (same encoder family)"),
    Recipe("w2v-bert", "w2v-BERT 2.0", ("wav2vec2-bert",), ("facebook/w2v-bert-2.0",),
           "nothing", W2V_BERT_TRAINING, model_config=dict(add_adapter=True), feature_extractor="seamless_m4t",
           source="Hugging Face's w2v-BERT 2.0 fine-tuning write-up (2024)"),
    Recipe("mms-adapter", "MMS-1b-all language adapters", (), ("facebook/mms-1b-all",),
           "base_model", MMS_ADAPTER_TRAINING, source="Hugging Face's MMS adapter write-up (2023)"),
    Recipe("tiny", "tiny (random weights, CPU rehearsal)", (), (TINY_MODEL,),
           "feature_encoder", TINY_TRAINING, source="measured on the demo corpus, 2 CPU cores"),
)}
# Name fragments of well-known Hub ids, for when no config.json can be read (no network, nothing cached).
# The first match wins, so the more specific fragments come first.
NAME_HINTS = (("mms-1b-all", "mms-adapter"), ("mms-1b-fl102", "mms-adapter"), ("mms-1b-l1107", "mms-adapter"),
              ("w2v-bert", "w2v-bert"), ("hubert", "hubert"), ("wavlm", "wavlm"),
              ("data2vec-audio", "data2vec-audio"), ("xlsr", "wav2vec2"), ("xls-r", "wav2vec2"),
              ("wav2vec2", "wav2vec2"), ("mms-", "wav2vec2"))
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
    """The family of a config.json: by ``model_type``; wav2vec2 with ``adapter_attn_dim`` is MMS adapters."""
    model_type = config.get("model_type")
    if model_type == "wav2vec2" and config.get("adapter_attn_dim"):
        return "mms-adapter"
    for recipe in RECIPES.values():
        if model_type in recipe.model_types:
            return recipe.family
    known = sorted(t for r in RECIPES.values() for t in r.model_types)
    raise FamilyError(f"model_type {model_type!r} is not a CTC speech encoder this curriculum knows ({known}). "
                      "Set MODEL_FAMILY to the family whose recipe fits it, or pick another MODEL.")


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
    if config.get("adapter_attn_dim"):
        how += f", adapter_attn_dim={config['adapter_attn_dim']}"
    return Resolution(family_of_config(config), how, model, config_sha256=sha, step=step)


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
