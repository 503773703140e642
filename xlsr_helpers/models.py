"""The model of a run: its feature extractor, the CTC model built as its family's recipe says, what padding does
to it, and the adapter files of MMS (an adapter-only model folder: the trained tensors, and the base they go on).

What differs between families (the recipes, and which family a checkpoint is) is in ``families.py``; the tiny
CPU model's architecture in ``tiny.py``. Everything here works from the run's resolved config
(``families.resolve``) and the checkpoint's own config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .config import Config
from .constants import SAMPLING_RATE, TINY_MODEL
from .families import FamilyError, Recipe, decide, read_config_json, recipe_for, resolve, target_lang
from .model_vocab import keeps_model_vocabulary


def read_model_config(model: str):
    """The checkpoint's ``PretrainedConfig`` (its class's defaults filled in, which config.json may leave out)
    from a local folder or the Hub cache; None for ``tiny`` and when it is not at hand."""
    from transformers import AutoConfig

    if model == TINY_MODEL:
        return None
    path = Path(model).expanduser()
    try:
        return AutoConfig.from_pretrained(str(path) if path.is_dir() else model, local_files_only=True)
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------------------
# feature extractor (step 03 builds the processor around it)
# --------------------------------------------------------------------------------------------------
def family_feature_extractor(recipe: Recipe, config=None):
    """The family's feature extractor for a checkpoint without ``preprocessor_config.json``.

    wav2vec2-style: 16 kHz, zero mean / unit variance per clip, and an attention mask exactly when the CNN
    uses layer norm (:func:`takes_attention_mask`).
    w2v-BERT: ``SeamlessM4TFeatureExtractor`` (80 log-mel bins, two frames stacked: 160 values per 20 ms).
    """
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2FeatureExtractor

    if recipe.feature_extractor == "seamless_m4t":
        return SeamlessM4TFeatureExtractor(sampling_rate=SAMPLING_RATE)
    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLING_RATE, padding_value=0.0,
                                    do_normalize=True, return_attention_mask=takes_attention_mask(config))


def feature_extractor_for(cfg: Config) -> tuple[Any, str]:
    """(feature extractor, where it comes from) for MODEL: its own ``preprocessor_config.json``, else the
    family default."""
    from transformers import AutoFeatureExtractor

    recipe = recipe_for(cfg)
    if cfg.is_tiny():
        return family_feature_extractor(recipe), "tiny: the wav2vec2 feature extractor (layer-norm encoder)"
    try:
        extractor = AutoFeatureExtractor.from_pretrained(cfg.model)
        if getattr(extractor, "sampling_rate", SAMPLING_RATE) != SAMPLING_RATE:
            raise FamilyError(f"{cfg.model}'s feature extractor expects {extractor.sampling_rate} Hz audio; this "
                              f"curriculum prepares {SAMPLING_RATE} Hz.")
        return extractor, f"{cfg.model}: its own preprocessor_config.json"
    except (OSError, ValueError) as error:
        if isinstance(error, FamilyError):
            raise
        config = read_model_config(cfg.model)
        return (family_feature_extractor(recipe, config),
                f"{recipe.title} default ({cfg.model} has no readable preprocessor_config.json)")


def processor_class(extractor):
    """The processor class that pairs ``extractor`` with a CTC tokenizer (what AutoProcessor reloads)."""
    from transformers import Wav2Vec2BertProcessor, Wav2Vec2Processor

    return Wav2Vec2BertProcessor if type(extractor).__name__ == "SeamlessM4TFeatureExtractor" else Wav2Vec2Processor


# --------------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------------
# What model_overrides sets from a new vocabulary: a kept head keeps the checkpoint's own.
VOCABULARY_KEYS = ("pad_token_id", "vocab_size", "bos_token_id", "eos_token_id")


def model_overrides(cfg: Config, processor, world_size: int = 1, log: Callable = print) -> dict[str, Any]:
    """Config values set on every model: the recipe's, the run's dropouts and masking, the vocabulary."""
    cfg = resolve(cfg)
    layerdrop = float(cfg.layerdrop or 0.0)
    if world_size > 1 and layerdrop > 0:
        log(f"LayerDrop {layerdrop} skips random layers, which DistributedDataParallel cannot handle "
            f"(their parameters get no gradient): LAYERDROP is set to 0.0 for this {world_size}-process run.")
        layerdrop = 0.0
    tokenizer = processor.tokenizer
    values = dict(
        recipe_for(cfg).model_config,
        attention_dropout=cfg.attention_dropout, hidden_dropout=cfg.hidden_dropout,
        feat_proj_dropout=cfg.feat_proj_dropout, mask_time_prob=float(cfg.mask_time_prob or 0.0),
        mask_feature_prob=float(cfg.mask_feature_prob or 0.0), mask_feature_length=int(cfg.mask_feature_length),
        layerdrop=layerdrop, ctc_loss_reduction="mean", ctc_zero_infinity=True,
        pad_token_id=tokenizer.pad_token_id, vocab_size=len(tokenizer),
    )
    for name in ("bos_token_id", "eos_token_id"):  # keeps transformers from "aligning" them with a warning
        if getattr(tokenizer, name, None) is not None:
            values[name] = getattr(tokenizer, name)
    return values


# Configs that nest their encoder's settings (Omnilingual: audio_config, Parakeet: encoder_config) get the run's
# dropouts, masking and LayerDrop there, under their names; the vocabulary and the CTC loss stay at the top.
NESTED_CONFIGS = ("audio_config", "encoder_config")
TOP_LEVEL_VALUES = ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id", "ctc_loss_reduction",
                    "ctc_zero_infinity")
NESTED_NAMES = {"hidden_dropout": ("hidden_dropout", "dropout")}  # ParakeetEncoderConfig.dropout


def checkpoint_config(model: str, overrides: dict[str, Any], log: Callable = print):
    """MODEL's config with ``overrides`` set (what ``from_pretrained(model, **overrides)`` does for a flat config).
    A nested config takes each value where its class has it; a value it has no place for (Omnilingual has no
    SpecAugment: MASK_TIME_PROB) is said when it is not 0."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model)
    nested = [getattr(config, name) for name in NESTED_CONFIGS if getattr(config, name, None) is not None]
    unused = []
    for name, value in overrides.items():
        if not nested or name in TOP_LEVEL_VALUES:
            setattr(config, name, value)
            continue
        places = [(inner, alias) for inner in nested for alias in NESTED_NAMES.get(name, (name,))
                  if hasattr(inner, alias)]
        for inner, alias in places[:1]:
            setattr(inner, alias, value)
        if not places and value not in (0, 0.0, None, False) and not name.endswith("_length"):  # a mask's width
            unused.append(f"{name.upper()}={value}")
    if unused:
        log(f"{type(config).__name__} has no setting for {', '.join(unused)}: not applied.")
    return config


def build_model(cfg: Config, processor, world_size: int = 1, log: Callable = print):
    """The CTC model for MODEL, through ``AutoModelForCTC`` (the checkpoint's own architecture), set up
    as its family's recipe says.

    A checkpoint without a CTC head (pre-trained only) gets a new one; one whose head has another size
    (another language's fine-tuned model) has it replaced (``ignore_mismatched_sizes``); the encoder is
    kept either way. MMS adapters: new adapter layers, the base model frozen, adapters + head trained.
    With VOCABULARY "model" (step 03's decision, :func:`model_vocab.keeps_model_vocabulary`) the checkpoint's head
    is kept as it is, with its own vocabulary size and special ids (and, for MMS, the language's own adapter).
    """
    from transformers import AutoModelForCTC, Wav2Vec2ForCTC, set_seed

    from .tiny import tiny_config, tiny_filterbank_, tiny_thread_independent_  # imports torch: only when building

    cfg = resolve(cfg)
    recipe = recipe_for(cfg)
    overrides = model_overrides(cfg, processor, world_size, log)
    kept = keeps_model_vocabulary(cfg)
    # The new weights (a CTC head, adapter layers, all of tiny) are drawn from SEED, whatever ran before in the
    # process: without it, preparing the audio (or not, when it is reused) changed the head, and with it the run.
    set_seed(cfg.seed)
    if cfg.is_tiny():
        model = tiny_thread_independent_(tiny_filterbank_(Wav2Vec2ForCTC(tiny_config(**overrides))))
    else:
        found = decide(cfg.model, download=True).family if cfg.model_family else recipe.family
        if found != recipe.family:
            log(f"MODEL_FAMILY={recipe.family!r} overrides the checkpoint's own family {found!r}.")
        if kept:  # VOCABULARY "model": the checkpoint's own head (an MMS adapter model: its language's adapter)
            overrides = {k: v for k, v in overrides.items() if k not in VOCABULARY_KEYS}
            language = target_lang(cfg)
            extra = {"target_lang": language, "ignore_mismatched_sizes": True} if language else {}
            model = AutoModelForCTC.from_pretrained(cfg.model, config=checkpoint_config(cfg.model, overrides, log),
                                                    **extra)
        else:
            _say_when_a_head_is_replaced(cfg.model, overrides["vocab_size"], log)
            config = checkpoint_config(cfg.model, overrides, log)
            if getattr(config, "blank_token_id", None) is not None:  # Omnilingual's blank is its <s> (id 0); a new
                config.blank_token_id = overrides["pad_token_id"]  # vocabulary's is [PAD], as for every other family
            model = AutoModelForCTC.from_pretrained(cfg.model, config=config, ignore_mismatched_sizes=True)
    adapter_kept = False
    if recipe.freeze == "base_model" and not cfg.is_tiny():
        # a kept vocabulary loaded the language's adapter and head with target_lang; a new one keeps the adapter layers
        adapter_kept = kept or load_adapter_layers(model, cfg.model, target_lang(cfg))
        if adapter_kept:
            log(f"{cfg.model} has an adapter for {target_lang(cfg)!r} (adapter.{target_lang(cfg)}.safetensors): "
                "training continues from it instead of new adapter layers"
                + (", with its own CTC head and vocabulary." if kept else "."))
    freeze(model, recipe, cfg.freeze_feature_encoder, keep_adapter=adapter_kept)
    return model


def _say_when_a_head_is_replaced(model: str, vocab_size: int, log: Callable) -> None:
    """A checkpoint's own CTC head of another size is replaced (VOCABULARY "train"): say so before transformers'
    load report calls its weights a MISMATCH, which reads like an error to a learner."""
    config, _ = read_config_json(model)
    if not config or not any(str(a).endswith("ForCTC") for a in config.get("architectures") or []):
        return
    if config.get("vocab_size") != vocab_size:
        log(f"{model} has a CTC head of {config.get('vocab_size')} outputs; this run's vocabulary has {vocab_size} "
            "tokens (VOCABULARY='train'), so a new head replaces it: the MISMATCH that transformers reports while "
            "loading names that head, as expected; the encoder is kept.")


def freeze(model, recipe: Recipe, freeze_feature_encoder: bool = True, keep_adapter: bool = False) -> None:
    """Set ``requires_grad`` as the recipe says (in place). MMS adapters: new adapter layers (as in the MMS
    write-up) unless ``keep_adapter`` (the checkpoint's own adapter of the language was loaded)."""
    if recipe.freeze == "base_model":
        if not keep_adapter:
            model.init_adapter_layers()
        model.freeze_base_model()
        for parameter in model._get_adapters().values():  # adapter layers and the CTC head
            parameter.requires_grad = True
    elif recipe.freeze == "feature_encoder" and freeze_feature_encoder:
        if hasattr(model, "freeze_feature_encoder"):
            model.freeze_feature_encoder()
        elif recipe.feature_encoder_module:  # e.g. Omnilingual's CNN: model.audio_tower.subsampling.conv_layers
            model.get_submodule(recipe.feature_encoder_module).requires_grad_(False)


def count_parameters(model) -> dict[str, int]:
    return {"total": model.num_parameters(), "trainable": model.num_parameters(only_trainable=True)}


# --------------------------------------------------------------------------------------------------
# padding: the attention mask, and the architectures that padding changes anyway
# --------------------------------------------------------------------------------------------------
def takes_attention_mask(config) -> bool:
    """The one attention-mask rule: a model gets an attention mask with padded batches, but for a group-norm CNN
    feature encoder (wav2vec2-base and kin; ``feat_extract_norm="group"``), which was pre-trained on unpadded
    audio and must see zero padding instead. ``config`` may be None (no checkpoint config: a mask)."""
    return getattr(config, "feat_extract_norm", None) != "group"


# Architectures whose outputs on a clip change when it is padded, even with the attention mask: the
# evaluation never pads them (it batches only clips of the same length). Measured on the test checkpoints.
PADDING_LEAKS = {
    "data2vec-audio": "its positional embedding is 5 stacked convolutions (kernel 19) that are not re-masked: "
                      "padding reached the last ~20 letters of a clip",
    "wav2vec2-bert": "its adapter (add_adapter=True) subsamples with stride-2 convolutions whose input is not "
                     "masked: the frame after a clip's end (padding, or the half-filled last stack of two "
                     "filterbank frames, which even a clip alone has) moved its last logits by up to 0.13",
}


def padding_changes_outputs(model) -> bool:
    """True when padding a clip changes its logits whatever the attention mask: group-norm CNN encoders
    (they take no mask and normalize over the padded length: :func:`takes_attention_mask`) and the
    architectures of PADDING_LEAKS."""
    return not takes_attention_mask(model.config) or model.config.model_type in PADDING_LEAKS


# --------------------------------------------------------------------------------------------------
# MMS adapter files
# --------------------------------------------------------------------------------------------------
def adapter_weights_file(language: str) -> str:
    """``adapter.<lang>.safetensors``: the file name ``Wav2Vec2ForCTC.load_adapter`` looks for."""
    from transformers.models.wav2vec2.modeling_wav2vec2 import WAV2VEC2_ADAPTER_SAFE_FILE

    return WAV2VEC2_ADAPTER_SAFE_FILE.format(language)


def load_adapter_layers(model, checkpoint: str, language: str | None) -> bool:
    """Load the adapter layers of ``language`` from the checkpoint's ``adapter.<language>.safetensors`` into
    ``model`` (not its CTC head, which belongs to the run's vocabulary); False when the checkpoint has none."""
    if not language or getattr(model.config, "adapter_attn_dim", None) is None:
        return False
    from safetensors.torch import load_file
    from transformers.utils import cached_file

    try:
        path = cached_file(checkpoint, adapter_weights_file(language), _raise_exceptions_for_missing_entries=False)
    except OSError:
        path = None
    if path is None:
        return False
    layers = {name: tensor for name, tensor in load_file(path).items() if not name.startswith("lm_head.")}
    expected = {name for name in model._get_adapters() if not name.startswith("lm_head.")}
    if set(layers) != expected:
        raise FamilyError(f"{checkpoint}'s {adapter_weights_file(language)} holds other adapter layers than "
                          f"{type(model).__name__} has ({len(layers)} tensors, {len(expected)} expected).")
    model.load_state_dict(layers, strict=False)
    return True


def save_adapter(model, folder: str | Path, language: str) -> Path:
    """Write the adapter weights (adapter layers + CTC head) of ``language`` beside the model."""
    from safetensors.torch import save_file

    path = Path(folder) / adapter_weights_file(language)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: p.detach().cpu().contiguous() for name, p in model._get_adapters().items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path


# An adapter-only model folder (a frozen-base run: MMS adapters) holds the trained tensors, not the base's ~1B
# weights: adapter.<lang>.safetensors (adapter layers + CTC head), config.json (the run's: its vocabulary, the
# adapter's size) and BASE_MODEL_FILE, which names the checkpoint the adapter goes on. Checkpoints of such a run
# and 04_train/model are such folders; load_ctc_model() puts base and adapter together again.
BASE_MODEL_FILE = "base_model.json"


def trains_adapters_only(model) -> bool:
    """True when every weight that trains is an adapter layer or the CTC head (a frozen base: MMS adapters),
    so that those tensors alone are what training changed."""
    if getattr(model.config, "adapter_attn_dim", None) is None or not hasattr(model, "_get_adapters"):
        return False
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    return bool(trained) and trained <= set(model._get_adapters())


def base_model_id(model: str) -> str:
    """MODEL as the base of an adapter-only folder names it: a Hub id as it is, a local folder as an absolute path."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def save_adapter_model(model, folder: str | Path, language: str, base_model: str) -> list[Path]:
    """An adapter-only model folder: ``adapter.<language>.safetensors`` (the trained tensors), the model's
    ``config.json`` and ``base_model.json`` (``base_model``: the Hub id or folder of the frozen base, and its
    revision when the config was read from the Hub). Returns the files written."""
    from .files import write_json_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(folder))
    adapter = save_adapter(model, folder, language)
    record = {"base_model": base_model_id(base_model), "target_lang": language,
              "revision": getattr(model.config, "_commit_hash", None),
              "trained": "adapter layers and the CTC head (the base model's other weights are unchanged)"}
    return [folder / "config.json", adapter, write_json_atomic(folder / BASE_MODEL_FILE, record)]


def adapter_only_record(folder: str | Path) -> dict | None:
    """``base_model.json`` of an adapter-only model folder (``base_model``, ``target_lang``, ``revision``), or
    None for a folder with the whole model (or a Hub id)."""
    import json

    path = Path(folder) / BASE_MODEL_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def load_adapter_file(model, path: str | Path) -> None:
    """Load an ``adapter.<lang>.safetensors`` written by :func:`save_adapter` into ``model`` (adapter layers and
    CTC head: exactly the tensors ``model._get_adapters()`` names, or :class:`FamilyError`)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    expected = set(model._get_adapters())
    if set(tensors) != expected:
        raise FamilyError(f"{path} holds other tensors than the adapter layers and head of {type(model).__name__} "
                          f"({sorted(set(tensors) ^ expected)[:4]} ...).")
    model.load_state_dict(tensors, strict=False)


def load_ctc_model(folder: str | Path):
    """The CTC model of a model folder (or Hub id): ``AutoModelForCTC.from_pretrained`` for a whole model; for an
    adapter-only folder (:data:`BASE_MODEL_FILE`) the base checkpoint it names, with the folder's config (its
    vocabulary: a head of another size is made new), then the folder's adapter layers and head."""
    from transformers import AutoConfig, AutoModelForCTC

    record = adapter_only_record(folder) if Path(folder).is_dir() else None
    if record is None:
        return AutoModelForCTC.from_pretrained(str(folder))
    config = AutoConfig.from_pretrained(str(folder))
    revision = {"revision": record["revision"]} if record.get("revision") else {}
    model = AutoModelForCTC.from_pretrained(record["base_model"], config=config, ignore_mismatched_sizes=True,
                                            **revision)
    load_adapter_file(model, Path(folder) / adapter_weights_file(record["target_lang"]))
    model.target_lang = record["target_lang"]
    return model
