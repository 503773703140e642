"""Model families: one recipe record per family, how a checkpoint's family is found, and the model itself.

Every checkpoint that ``AutoModelForCTC`` can fine-tune goes through the same code; what differs between
families lives here and nowhere else:

- what is frozen and what is trained (the feature encoder, or the whole base model for MMS adapters);
- the training values (learning rate, warm-up, epochs, batch, dropouts, masking, LayerDrop) that
  :meth:`Config.resolved` puts into every parameter left at ``None``;
- settings of the model's config (``add_adapter=True`` for w2v-BERT 2.0);
- the feature extractor to use when a checkpoint has no ``preprocessor_config.json``.

The family is read from the checkpoint's ``config.json`` (``model_type``, and ``adapter_attn_dim`` for MMS
adapter models), never guessed from the class a loader happens to produce: a WavLM or HuBERT checkpoint
loaded as ``Wav2Vec2ForCTC`` silently loses its encoder. ``MODEL_FAMILY`` overrides the detection.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .config import SAMPLING_RATE, TINY_MODEL

if TYPE_CHECKING:
    from .config import Config

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
RECIPE_FIELDS = tuple(SEED_TRAINING)  # the Config fields a recipe fills when they are None


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

# The tiny model: XLSR's transformer (pre-LN "stable layer norm", conv positional embedding, CTC head) scaled
# down to hidden 128 x 3 layers (~0.5M trained parameters), on a fixed filterbank front-end instead of a random
# 7-layer CNN. The feature encoder keeps XLSR's frame arithmetic (400-sample receptive field, 320-sample hop:
# 20 ms frames, the same output lengths) in two conv layers: 256 Hann-windowed cosine/sine filters at 64
# mel-spaced frequencies (+/- pairs), layer norm and GELU (a smooth magnitude), then a 1x1 conv that sums each
# band's four filters. Frozen like a pretrained encoder, it hands the transformer a spectrogram. Measured on
# the demo corpus (600 clips, 2 CPU cores): with XLSR's random 7-layer CNN (64 channels, frozen or trained)
# the model was still at CER ~0.8 after 800 updates of 8 clips; with the filterbank it passes CER 0.2 after
# ~500 (see tiny_filterbank_).
TINY_ARCHITECTURE = dict(
    hidden_size=128, num_hidden_layers=3, num_attention_heads=4, intermediate_size=256,
    conv_dim=(256, 64), conv_kernel=(400, 1), conv_stride=(320, 1),
    feat_extract_norm="layer", do_stable_layer_norm=True, num_conv_pos_embeddings=64,
    num_conv_pos_embedding_groups=16, feat_extract_activation="gelu", conv_bias=True,
)


class FamilyError(ValueError):
    """The model's family is unknown or contradicts MODEL_FAMILY; the message says what to do."""


# --------------------------------------------------------------------------------------------------
# which family
# --------------------------------------------------------------------------------------------------
def read_model_config(model: str, download: bool = False):
    """The checkpoint's ``PretrainedConfig``: from a local folder, the Hub cache, or (``download``) the Hub.
    None when it cannot be read without the network."""
    from transformers import AutoConfig

    if model == TINY_MODEL:
        return None
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FamilyError(f"MODEL={model!r} is a folder without config.json: not a model checkpoint.")
        return AutoConfig.from_pretrained(str(path))
    try:
        return AutoConfig.from_pretrained(model, local_files_only=not download)
    except (OSError, ValueError):
        if download:
            raise
        return None


def family_of_config(config) -> str:
    """The family of a loaded config: by ``model_type``; wav2vec2 with ``adapter_attn_dim`` is MMS adapters."""
    model_type = getattr(config, "model_type", None)
    if model_type == "wav2vec2" and getattr(config, "adapter_attn_dim", None):
        return "mms-adapter"
    for recipe in RECIPES.values():
        if model_type in recipe.model_types:
            return recipe.family
    known = sorted(t for r in RECIPES.values() for t in r.model_types)
    raise FamilyError(f"model_type {model_type!r} is not a CTC speech encoder this curriculum knows ({known}). "
                      "Set MODEL_FAMILY to the family whose recipe fits it, or pick another MODEL.")


def detect_family(model: str, override: str = "", download: bool = False) -> tuple[str, str]:
    """(family, how it was found) for MODEL: MODEL_FAMILY if given, else the checkpoint's config (local
    folder or Hub cache; the Hub itself with ``download``), else the name of a well-known Hub id."""
    if override:
        if override not in RECIPES:
            raise FamilyError(f"MODEL_FAMILY={override!r} is not one of {sorted(RECIPES)}.")
        return override, f"MODEL_FAMILY={override!r}"
    if model == TINY_MODEL:
        return "tiny", "MODEL='tiny'"
    config = read_model_config(model, download=download)
    if config is not None:
        reason = f"config.json: model_type={config.model_type!r}"
        if getattr(config, "adapter_attn_dim", None):
            reason += f", adapter_attn_dim={config.adapter_attn_dim}"
        return family_of_config(config), reason
    lowered = model.lower()
    for fragment, family in NAME_HINTS:
        if fragment in lowered:
            return family, f"the name {model!r} (config.json not available offline)"
    return "wav2vec2", f"assumed: {model!r} has no readable config.json yet and an unknown name"


def recipe_for(cfg: "Config") -> Recipe:
    return RECIPES[detect_family(cfg.model, cfg.model_family)[0]]


def mms_language_code(language: str) -> str:
    """TARGET_LANG for a Common Voice locale: MMS's ISO 639-3 code where known, else the locale itself."""
    return MMS_LANGUAGE_CODES.get(language, MMS_LANGUAGE_CODES.get(language.split("-")[0], language))


def target_lang(cfg: "Config") -> str | None:
    """The adapter language of an MMS-adapter run (TARGET_LANG, or mapped from LANGUAGE); None otherwise."""
    if recipe_for(cfg).family != "mms-adapter":
        return None
    return cfg.target_lang or mms_language_code(cfg.language)


# --------------------------------------------------------------------------------------------------
# feature extractor (step 03 builds the processor around it)
# --------------------------------------------------------------------------------------------------
def family_feature_extractor(recipe: Recipe, config=None):
    """The family's feature extractor for a checkpoint without ``preprocessor_config.json``.

    wav2vec2-style: 16 kHz, zero mean / unit variance per clip, and an attention mask exactly when the CNN
    uses layer norm (group-norm encoders were pre-trained on unpadded audio and must see zero padding).
    w2v-BERT: ``SeamlessM4TFeatureExtractor`` (80 log-mel bins, two frames stacked: 160 values per 20 ms).
    """
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2FeatureExtractor

    if recipe.feature_extractor == "seamless_m4t":
        return SeamlessM4TFeatureExtractor(sampling_rate=SAMPLING_RATE)
    mask = getattr(config, "feat_extract_norm", None) != "group"
    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLING_RATE, padding_value=0.0,
                                    do_normalize=True, return_attention_mask=mask)


def feature_extractor_for(cfg: "Config") -> tuple[Any, str]:
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
def model_overrides(cfg: "Config", processor, world_size: int = 1, log: Callable = print) -> dict[str, Any]:
    """Config values set on every model: the recipe's, the run's dropouts and masking, the vocabulary."""
    cfg = cfg.resolved()
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


def tiny_config(vocab_size: int, pad_token_id: int, **overrides):
    """Wav2Vec2Config of the ``tiny`` model (see TINY_ARCHITECTURE)."""
    from transformers import Wav2Vec2Config

    values = dict(TINY_ARCHITECTURE, vocab_size=vocab_size, pad_token_id=pad_token_id,
                  ctc_loss_reduction="mean", ctc_zero_infinity=True)
    values.update(overrides)
    return Wav2Vec2Config(**values)


def tiny_filterbank_(model, fmin: float = 80.0, fmax: float = 7600.0, sampling_rate: int = SAMPLING_RATE):
    """Set the tiny model's feature encoder to a fixed filterbank (in place; returns the model).

    Layer 0 (kernel 400 = 25 ms, hop 320 = 20 ms): for each of ``conv_dim[1]`` mel-spaced frequencies a
    Hann-windowed cosine and sine and their negatives, unit norm. Layer norm across the filters and GELU make
    GELU(x) + GELU(-x) ~ |x|. Layer 1 (1x1) adds each band's four outputs: a magnitude spectrum per frame.
    """
    import torch

    layers = model.wav2vec2.feature_extractor.conv_layers
    conv0, conv1 = layers[0].conv, layers[1].conv
    bands = conv1.out_channels
    if conv0.out_channels != 4 * bands or conv1.kernel_size[0] != 1 or len(layers) != 2:
        raise ValueError("tiny_filterbank_ needs conv_dim=(4*bands, bands), conv_kernel=(k, 1): the tiny layout")
    size = conv0.kernel_size[0]
    t = np.arange(size) / sampling_rate
    window = np.hanning(size)
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    centers = 700.0 * (10 ** (np.linspace(mel(fmin), mel(fmax), bands) / 2595.0) - 1.0)
    filters = []
    for f in centers:
        for wave in (np.cos(2 * np.pi * f * t) * window, np.sin(2 * np.pi * f * t) * window):
            wave = wave / np.linalg.norm(wave)
            filters += [wave, -wave]
    with torch.no_grad():
        conv0.weight.copy_(torch.tensor(np.array(filters), dtype=conv0.weight.dtype).unsqueeze(1))
        conv0.bias.zero_()
        conv1.weight.zero_()
        conv1.bias.zero_()
        for band in range(bands):
            conv1.weight[band, 4 * band:4 * band + 4, 0] = 0.5
    return model


@functools.lru_cache(maxsize=None)
def _thread_independent_modules():
    """(weight norm, layer norm) module classes of :func:`tiny_thread_independent_` (made once, on first use)."""
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.parametrizations import _WeightNorm

    class Float64WeightNorm(_WeightNorm):
        """g * v / ||v|| in float64, rounded to float32 once."""

        def forward(self, weight_g, weight_v):
            v = weight_v.double()
            others = [d for d in range(v.dim()) if d != self.dim % v.dim()]
            norm = torch.linalg.vector_norm(v, dim=others, keepdim=True)
            return (v * (weight_g.double() / norm)).to(weight_v.dtype)

    class AffineAfterLayerNorm(torch.nn.LayerNorm):
        """Layer norm, then its scale and shift as two ops of their own (the same function, the same weights)."""

        def forward(self, x):
            return F.layer_norm(x, self.normalized_shape, None, None, self.eps) * self.weight + self.bias

    return Float64WeightNorm, AffineAfterLayerNorm


def tiny_thread_independent_(model):
    """Make the tiny model's training give the same numbers whatever the number of CPU threads (in place).

    Measured (torch 2.14, CPU, forward and backward of the tiny model at 1 and 2 threads, every activation and
    gradient compared bit for bit): two of its ops depended on the thread count, because torch's fused CPU
    kernels sum in one part per thread; all the others (linear layers, attention, convolutions, CTC loss,
    dropout masks, gradient clipping, AdamW) gave identical bits.

    - the conv positional embedding's weight, g * v / ||v|| (weight_norm over dim 2; ``_weight_norm_interface``):
      2e-8 apart. Here the same formula in float64, rounded once: the same bits, and through autograd the same
      gradients of g and v (65,536 values: well under a millisecond per update);
    - the gradients of every layer norm's scale and shift (``native_layer_norm_backward``): up to 3e-4 apart.
      Here the layer norm runs without them and the scale and shift follow as a multiply and an add, whose
      gradients sum over the rows in a fixed order: identical bits.

    Without this, the demo's training drifted apart from its 3rd update on, and its test WER was 67.9 with
    OMP_NUM_THREADS=1 and 65.8 with 2 (CER 18.1 and 17.5). The saved checkpoint is unchanged (the same
    parameters under the same names, which any Wav2Vec2 loader reads); this applies while this process trains.
    It covers training with the fixed filterbank frozen (the recipe): its convolutions' own weight gradients
    (FREEZE_FEATURE_ENCODER=False) also vary with the thread count. Another processor's arithmetic (other
    BLAS kernels) can still round differently.
    """
    import torch
    from torch.nn.utils.parametrizations import _WeightNorm

    weight_norm, layer_norm = _thread_independent_modules()
    conv = model.wav2vec2.encoder.pos_conv_embed.conv
    norms = getattr(getattr(conv, "parametrizations", None), "weight", None)
    if norms is None or not isinstance(norms[0], _WeightNorm):
        raise ValueError("tiny_thread_independent_ needs the conv positional embedding with torch's weight_norm "
                         "parametrization (the tiny layout)")
    norms[0] = weight_norm(norms[0].dim)
    for module in model.modules():
        if type(module) is torch.nn.LayerNorm and module.elementwise_affine and module.bias is not None:
            module.__class__ = layer_norm
    return model


def build_model(cfg: "Config", processor, world_size: int = 1, log: Callable = print):
    """The CTC model for MODEL, through ``AutoModelForCTC`` (the checkpoint's own architecture), set up
    as its family's recipe says.

    A checkpoint without a CTC head (pre-trained only) gets a new one; one whose head has another size
    (another language's fine-tuned model) has it replaced (``ignore_mismatched_sizes``); the encoder is
    kept either way. MMS adapters: new adapter layers, the base model frozen, adapters + head trained.
    """
    from transformers import AutoModelForCTC, Wav2Vec2ForCTC, set_seed

    cfg = cfg.resolved()
    recipe = recipe_for(cfg)
    overrides = model_overrides(cfg, processor, world_size, log)
    # The new weights (a CTC head, adapter layers, all of tiny) are drawn from SEED, whatever ran before in the
    # process: without it, preparing the audio (or not, when it is reused) changed the head, and with it the run.
    set_seed(cfg.seed)
    if cfg.is_tiny():
        model = tiny_thread_independent_(tiny_filterbank_(Wav2Vec2ForCTC(tiny_config(**overrides))))
    else:
        config = read_model_config(cfg.model, download=True)
        found = family_of_config(config)
        if cfg.model_family and found != recipe.family:
            log(f"MODEL_FAMILY={recipe.family!r} overrides the checkpoint's own family {found!r}.")
        model = AutoModelForCTC.from_pretrained(cfg.model, ignore_mismatched_sizes=True, **overrides)
    freeze(model, recipe, cfg.freeze_feature_encoder)
    return model


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
    (they normalize over the padded length) and the architectures of PADDING_LEAKS."""
    config = model.config
    return getattr(config, "feat_extract_norm", None) == "group" or config.model_type in PADDING_LEAKS


def freeze(model, recipe: Recipe, freeze_feature_encoder: bool = True) -> None:
    """Set ``requires_grad`` as the recipe says (in place)."""
    if recipe.freeze == "base_model":
        model.init_adapter_layers()  # new adapter weights for the new language, as in the MMS write-up
        model.freeze_base_model()
        for parameter in model._get_adapters().values():  # adapter layers and the CTC head
            parameter.requires_grad = True
    elif recipe.freeze == "feature_encoder" and freeze_feature_encoder and hasattr(model, "freeze_feature_encoder"):
        model.freeze_feature_encoder()


def count_parameters(model) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}


def recipe_table(cfg: "Config") -> list[dict[str, Any]]:
    """The resolved recipe as rows (parameter, value, from the recipe or set by the run), for notebook 04."""
    cfg_resolved = cfg.resolved()
    family, how = detect_family(cfg.model, cfg.model_family)
    recipe = RECIPES[family]
    rows = [{"parameter": "family", "value": f"{recipe.title} ({family})", "from": how},
            {"parameter": "trained", "value": {"feature_encoder": "everything but the CNN feature encoder",
                                               "base_model": "adapter layers and the CTC head only",
                                               "nothing": "everything"}[recipe.freeze], "from": "recipe"}]
    for name, value in recipe.model_config.items():
        rows.append({"parameter": name, "value": value, "from": "recipe (model config)"})
    for name in RECIPE_FIELDS:
        given = getattr(cfg, name)
        rows.append({"parameter": name.upper(), "value": getattr(cfg_resolved, name),
                     "from": "recipe" if given is None else "set by the run"})
    return rows


def adapter_weights_file(language: str) -> str:
    """``adapter.<lang>.safetensors``: the file name ``Wav2Vec2ForCTC.load_adapter`` looks for."""
    from transformers.models.wav2vec2.modeling_wav2vec2 import WAV2VEC2_ADAPTER_SAFE_FILE

    return WAV2VEC2_ADAPTER_SAFE_FILE.format(language)


def save_adapter(model, folder: str | Path, language: str) -> Path:
    """Write the adapter weights (adapter layers + CTC head) of ``language`` beside the model."""
    from safetensors.torch import save_file

    path = Path(folder) / adapter_weights_file(language)
    tensors = {name: p.detach().cpu().contiguous() for name, p in model._get_adapters().items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path
