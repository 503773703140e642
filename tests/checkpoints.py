"""Tiny random-weight checkpoints in the on-disk layout of real Hub repositories.

No machine of this project reaches the Hugging Face Hub, so the tests load these instead. Each writer
imitates one real repository: the same files, the same config values except the sizes, the same state-dict
key names (including legacy ones such as weight-norm's `weight_g` / `weight_v` and the missing `hubert.`
prefix of a bare `HubertModel`), the same weights file format. Only the sizes shrink (hidden size 32, two
layers, two heads, 32 channels per conv layer), so a checkpoint is written in about a second and is well
under 2 MB. The frame arithmetic is kept: the seven conv layers of wav2vec2 / HuBERT / WavLM / data2vec
(320 samples a frame), and w2v-BERT's 160-dim stacked filter banks.

    from checkpoints import build, INFO, KINDS, encoder_tensors
    folder = build("xlsr53_pretrained", tmp_path_factory.mktemp("ckpt"))   # written once, then reused
    INFO["xlsr53_pretrained"].encoder_prefix                                  # "wav2vec2."

Where a value could not be checked against the real repository it is marked "guess" in the comment
above its writer. The config keys not named in a writer are the family's transformers defaults, which are
the values of the repository that each family's configuration documents.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors

# ---------------------------------------------------------------------------------------------------------
# What each kind is
# ---------------------------------------------------------------------------------------------------------

# Tokens of the real English character vocabulary of facebook/wav2vec2-base-960h and
# facebook/hubert-large-ls960-ft (ids 0..31, in this order).
ENGLISH_VOCAB = {
    token: i
    for i, token in enumerate(
        ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L",
         "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]
    )
}

# facebook/mms-1b-all holds one vocabulary per language in one nested vocab.json; each starts with the same
# five specials. The alphabets here are small stand-ins (the real ones have up to a few hundred symbols),
# of different sizes so that switching language must resize the CTC head.
MMS_ALPHABETS = {
    "eng": "etaoinshrdlcumwfgypbvkjxqz'",
    "tur": "aeiınlrkdmuytsbozşgçğüvhöcpfj",
    "deu": "enisratdhulcgmobwfkzvüpäßöjyxq",
}
MMS_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "|"]
MMS_VOCAB = {
    lang: {token: i for i, token in enumerate(MMS_SPECIALS + list(alphabet))}
    for lang, alphabet in MMS_ALPHABETS.items()
}


@dataclass(frozen=True)
class Info:
    """What a test needs to know about one kind of checkpoint."""

    repo: str                    # the real Hub repository that is imitated
    model_class: str             # config.json "architectures"[0]
    model_type: str              # config.json "model_type"
    ctc_class: str               # the class AutoModelForCTC.from_pretrained(folder, ...) gives
    encoder_prefix: str          # prefix of the encoder tensors in the saved state dict ("" = saved bare)
    main_input: str              # "input_values" (raw audio) or "input_features" (filter banks)
    feature_extractor: str       # the class AutoFeatureExtractor gives
    has_ctc_head: bool           # an lm_head is saved (a fine-tuned model)
    weights_file: str            # "pytorch_model.bin" or "model.safetensors"
    files: tuple[str, ...]       # exactly the files written (the real repo's, less README / .gitattributes)
    vocab: dict | None = None    # the checkpoint's own vocabulary; for mms {lang: {token: id}}
    adapter_langs: tuple[str, ...] = ()
    samples_per_frame: int = 320  # 16 kHz samples per encoder output frame
    extra: dict = field(default_factory=dict)


_FE = "preprocessor_config.json"
_TOKENIZER_FILES = ("vocab.json", "tokenizer_config.json", "special_tokens_map.json")

INFO: dict[str, Info] = {
    "xlsr53_pretrained": Info(
        repo="facebook/wav2vec2-large-xlsr-53", model_class="Wav2Vec2ForPreTraining", model_type="wav2vec2",
        ctc_class="Wav2Vec2ForCTC", encoder_prefix="wav2vec2.", main_input="input_values",
        feature_extractor="Wav2Vec2FeatureExtractor", has_ctc_head=False, weights_file="pytorch_model.bin",
        files=("config.json", _FE, "pytorch_model.bin"),
    ),
    "hubert_base": Info(
        repo="facebook/hubert-base-ls960", model_class="HubertModel", model_type="hubert",
        ctc_class="HubertForCTC", encoder_prefix="", main_input="input_values",
        feature_extractor="Wav2Vec2FeatureExtractor", has_ctc_head=False, weights_file="pytorch_model.bin",
        files=("config.json", _FE, "pytorch_model.bin"),
    ),
    "wavlm_base": Info(
        repo="microsoft/wavlm-base-plus", model_class="WavLMModel", model_type="wavlm",
        ctc_class="WavLMForCTC", encoder_prefix="", main_input="input_values",
        feature_extractor="Wav2Vec2FeatureExtractor", has_ctc_head=False, weights_file="pytorch_model.bin",
        files=("config.json", _FE, "pytorch_model.bin"),
    ),
    "w2v_bert": Info(
        repo="facebook/w2v-bert-2.0", model_class="Wav2Vec2BertModel", model_type="wav2vec2-bert",
        ctc_class="Wav2Vec2BertForCTC", encoder_prefix="", main_input="input_features",
        feature_extractor="SeamlessM4TFeatureExtractor", has_ctc_head=False, weights_file="model.safetensors",
        files=("config.json", _FE, "model.safetensors"),
        samples_per_frame=320,  # 10 ms filter-bank hop (160 samples), two frames stacked (stride 2)
    ),
    "mms_all": Info(
        repo="facebook/mms-1b-all", model_class="Wav2Vec2ForCTC", model_type="wav2vec2",
        ctc_class="Wav2Vec2ForCTC", encoder_prefix="wav2vec2.", main_input="input_values",
        feature_extractor="Wav2Vec2FeatureExtractor", has_ctc_head=True, weights_file="model.safetensors",
        files=("config.json", _FE, "model.safetensors", *_TOKENIZER_FILES,
               *(f"adapter.{lang}.safetensors" for lang in MMS_VOCAB)),
        vocab=MMS_VOCAB, adapter_langs=tuple(MMS_VOCAB), extra={"default_lang": "eng"},
    ),
    "hubert_ctc_finetuned": Info(
        repo="facebook/hubert-large-ls960-ft", model_class="HubertForCTC", model_type="hubert",
        ctc_class="HubertForCTC", encoder_prefix="hubert.", main_input="input_values",
        feature_extractor="Wav2Vec2FeatureExtractor", has_ctc_head=True, weights_file="pytorch_model.bin",
        files=("config.json", _FE, "pytorch_model.bin", *_TOKENIZER_FILES),
        vocab=ENGLISH_VOCAB,
    ),
    "data2vec_audio": Info(
        repo="facebook/data2vec-audio-base", model_class="Data2VecAudioModel", model_type="data2vec-audio",
        ctc_class="Data2VecAudioForCTC", encoder_prefix="", main_input="input_values",
        feature_extractor="Wav2Vec2FeatureExtractor", has_ctc_head=False, weights_file="pytorch_model.bin",
        files=("config.json", _FE, "pytorch_model.bin"),
    ),
}
KINDS: tuple[str, ...] = tuple(INFO)

# ---------------------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------------------

# The sizes that shrink. Everything else is the real repository's value.
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)

# The real seven-layer feature encoder of wav2vec2 / HuBERT / WavLM / data2vec-audio (320 samples a frame),
# with 32 channels per layer instead of 512.
CONV = dict(conv_dim=[32] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2])

# The preprocessor_config.json of a raw-audio model, as the 2021 conversion scripts wrote it.
def _wav2vec2_feature_extractor(do_normalize: bool, return_attention_mask: bool) -> dict:
    return {
        "do_normalize": do_normalize,
        "feature_extractor_type": "Wav2Vec2FeatureExtractor",
        "feature_size": 1,
        "padding_side": "right",
        "padding_value": 0,
        "return_attention_mask": return_attention_mask,
        "sampling_rate": 16000,
    }


# tokenizer_config.json / special_tokens_map.json of a Wav2Vec2CTCTokenizer with <pad>=0 <s>=1 </s>=2 <unk>=3.
SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_config(folder: Path, config, architecture: str, **extra) -> None:
    """config.json as a full dump (as the real repositories have), with the real "architectures"."""
    d = config.to_dict()
    for key in ("_name_or_path", "dtype"):
        d.pop(key, None)
    d["architectures"] = [architecture]
    d["torch_dtype"] = "float32"
    d.update(extra)
    _write_json(folder / "config.json", d)


def _new_model(model_cls, config, seed: int):
    """The model with deterministic random weights."""
    torch.manual_seed(seed)
    model = model_cls(config)
    model.eval()
    return model


def _legacy_state_dict(model) -> dict[str, torch.Tensor]:
    """The state dict as the real (pre-2024) checkpoints store it: the positional convolution's weight norm
    as `weight_g` / `weight_v` (torch's old weight_norm), not `parametrizations.weight.original0/1`."""
    out = {}
    for key, tensor in model.state_dict().items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        out[key] = tensor.detach().clone().contiguous()
    return out


def _save_weights(folder: Path, state_dict: dict[str, torch.Tensor], filename: str) -> None:
    if filename.endswith(".safetensors"):
        save_safetensors(state_dict, str(folder / filename), metadata={"format": "pt"})
    else:
        torch.save(state_dict, folder / filename)


def _prepare(folder) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---------------------------------------------------------------------------------------------------------
# The writers, one per real repository
# ---------------------------------------------------------------------------------------------------------

# facebook/wav2vec2-large-xlsr-53: Wav2Vec2ForPreTraining, large (layer-norm, stable-layer-norm, conv bias),
# quantizer of 2 groups x 320 codevectors, pytorch_model.bin only, no tokenizer. Shrunk: codevector_dim and
# proj_codevector_dim 768 -> 32. Dropouts / masking from memory of the real config.json (guess: exact values).
def write_xlsr53_pretrained(folder, seed: int = 0) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

    folder = _prepare(folder)
    config = Wav2Vec2Config(
        **TINY, **CONV,
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
        feat_extract_activation="gelu", hidden_act="gelu",
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
        num_codevector_groups=2, num_codevectors_per_group=320, codevector_dim=32, proj_codevector_dim=32,
        attention_dropout=0.1, hidden_dropout=0.1, feat_proj_dropout=0.1, activation_dropout=0.0,
        final_dropout=0.0, layerdrop=0.1, mask_time_prob=0.075, mask_time_length=10,
        vocab_size=32, pad_token_id=0, bos_token_id=1, eos_token_id=2, ctc_loss_reduction="sum",
    )
    model = _new_model(Wav2Vec2ForPreTraining, config, seed)
    _write_config(folder, config, "Wav2Vec2ForPreTraining", transformers_version="4.7.0.dev0")  # guess
    _write_json(folder / _FE, _wav2vec2_feature_extractor(do_normalize=True, return_attention_mask=True))
    _save_weights(folder, _legacy_state_dict(model), "pytorch_model.bin")
    return folder


# facebook/hubert-base-ls960: bare HubertModel (keys without "hubert."), base (group norm, no conv bias,
# post-layer-norm). preprocessor_config.json: do_normalize true / return_attention_mask false (guess: from
# memory; the fairseq base model was trained on unnormalized audio, the HF file may say otherwise).
def write_hubert_base(folder, seed: int = 0) -> Path:
    from transformers import HubertConfig, HubertModel

    folder = _prepare(folder)
    config = HubertConfig(
        **TINY, **CONV,
        feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False, feat_proj_layer_norm=True,
        feat_extract_activation="gelu", hidden_act="gelu",
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
        attention_dropout=0.1, hidden_dropout=0.1, feat_proj_dropout=0.1, activation_dropout=0.1,
        final_dropout=0.1, layerdrop=0.1, mask_time_prob=0.05,
        vocab_size=32, pad_token_id=0, bos_token_id=1, eos_token_id=2, ctc_loss_reduction="sum",
    )
    model = _new_model(HubertModel, config, seed)
    _write_config(folder, config, "HubertModel", transformers_version="4.10.0.dev0")  # guess
    _write_json(folder / _FE, _wav2vec2_feature_extractor(do_normalize=True, return_attention_mask=False))
    _save_weights(folder, _legacy_state_dict(model), "pytorch_model.bin")
    return folder


# microsoft/wavlm-base-plus: bare WavLMModel, base (group norm, no conv bias), gated relative position bias
# with 320 buckets / max distance 800. preprocessor_config.json: do_normalize false (the released base models
# were trained on unnormalized audio; see ASR-project/Multilingual-PR#1), return_attention_mask true (guess).
def write_wavlm_base(folder, seed: int = 0) -> Path:
    from transformers import WavLMConfig, WavLMModel

    folder = _prepare(folder)
    config = WavLMConfig(
        **TINY, **CONV,
        feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False,
        feat_extract_activation="gelu", hidden_act="gelu",
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
        num_buckets=320, max_bucket_distance=800,
        attention_dropout=0.1, hidden_dropout=0.1, feat_proj_dropout=0.1, activation_dropout=0.0,
        final_dropout=0.0, layerdrop=0.05, mask_time_prob=0.05,
        vocab_size=32, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )
    model = _new_model(WavLMModel, config, seed)
    _write_config(folder, config, "WavLMModel", transformers_version="4.15.0.dev0")  # guess
    _write_json(folder / _FE, _wav2vec2_feature_extractor(do_normalize=False, return_attention_mask=True))
    _save_weights(folder, _legacy_state_dict(model), "pytorch_model.bin")
    return folder


# facebook/w2v-bert-2.0: bare Wav2Vec2BertModel (conformer, relative_key positions, swish, depthwise kernel
# 31, no CTC head, vocab_size null) in model.safetensors; its SeamlessM4TFeatureExtractor preprocessor_config
# (80 mel bins, stride 2 -> 160-dim input, padding_value 1, processor_class Wav2Vec2BertProcessor: checked
# against a public copy of the file). The real repo also holds conformer_shaw.pt (fairseq2), not written.
def write_w2v_bert(folder, seed: int = 0) -> Path:
    from transformers import Wav2Vec2BertConfig, Wav2Vec2BertModel

    folder = _prepare(folder)
    config = Wav2Vec2BertConfig(
        **TINY,
        feature_projection_input_dim=160, hidden_act="swish",
        position_embeddings_type="relative_key", left_max_position_embeddings=64, right_max_position_embeddings=8,
        conv_depthwise_kernel_size=31, add_adapter=False,
        vocab_size=None, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )
    model = _new_model(Wav2Vec2BertModel, config, seed)
    _write_config(folder, config, "Wav2Vec2BertModel", transformers_version="4.37.0.dev0")  # guess
    _write_json(folder / _FE, {
        "feature_extractor_type": "SeamlessM4TFeatureExtractor",
        "feature_size": 80,
        "num_mel_bins": 80,
        "padding_side": "right",
        "padding_value": 1,
        "processor_class": "Wav2Vec2BertProcessor",
        "return_attention_mask": True,
        "sampling_rate": 16000,
        "stride": 2,
    })
    _save_weights(folder, _legacy_state_dict(model), "model.safetensors")
    return folder


# facebook/mms-1b-all: Wav2Vec2ForCTC (large layout, layer norm, stable layer norm) with attention adapters
# (adapter_attn_dim 16) in every layer. model.safetensors holds the base model with the English adapter and
# English lm_head; adapter.<lang>.safetensors holds, per language, every adapter-layer tensor plus
# lm_head.weight / lm_head.bias sized to that language's vocabulary (the key set that
# Wav2Vec2ForCTC.load_adapter checks against _get_adapters()). One nested vocab.json {lang: {token: id}};
# tokenizer_config.json with target_lang "eng". Dropouts 0.05 and the three languages' alphabets: guess.
def write_mms_all(folder, seed: int = 0) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    folder = _prepare(folder)
    config = Wav2Vec2Config(
        **TINY, **CONV,
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
        feat_extract_activation="gelu", hidden_act="gelu",
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
        adapter_attn_dim=16,
        attention_dropout=0.05, hidden_dropout=0.05, feat_proj_dropout=0.05, activation_dropout=0.05,
        final_dropout=0.05, layerdrop=0.0, mask_time_prob=0.05,
        vocab_size=len(MMS_VOCAB["eng"]), pad_token_id=0, bos_token_id=1, eos_token_id=2,
        ctc_loss_reduction="mean",
    )
    model = _new_model(Wav2Vec2ForCTC, config, seed)

    # One adapter per language: random tensors of the adapter layers' shapes, lm_head of that vocab's size.
    adapter_shapes = {name: p.shape for name, p in model._get_adapters().items()}
    for i, (lang, vocab) in enumerate(MMS_VOCAB.items()):
        generator = torch.Generator().manual_seed(seed * 1000 + i + 1)
        adapter = {}
        for name, shape in adapter_shapes.items():
            if name == "lm_head.weight":
                shape = (len(vocab), config.hidden_size)
            elif name == "lm_head.bias":
                shape = (len(vocab),)
            tensor = torch.randn(shape, generator=generator) * 0.02
            if name.endswith("norm.weight"):
                tensor += 1.0
            adapter[name] = tensor.contiguous()
        _save_weights(folder, adapter, f"adapter.{lang}.safetensors")
        if lang == "eng":  # the main weights carry the English adapter and head, as in the real repo
            model.load_state_dict(adapter, strict=False)

    _write_config(folder, config, "Wav2Vec2ForCTC", transformers_version="4.31.0.dev0")  # guess
    _write_json(folder / _FE, _wav2vec2_feature_extractor(do_normalize=True, return_attention_mask=True))
    _save_weights(folder, _legacy_state_dict(model), "model.safetensors")
    _write_json(folder / "vocab.json", MMS_VOCAB)
    _write_json(folder / "special_tokens_map.json", SPECIAL_TOKENS)
    _write_json(folder / "tokenizer_config.json", {
        **SPECIAL_TOKENS,
        "do_lower_case": False,
        "model_max_length": 1000000000000000019884624838656,
        "replace_word_delimiter_char": " ",
        "target_lang": "eng",
        "tokenizer_class": "Wav2Vec2CTCTokenizer",
        "word_delimiter_token": "|",
    })
    return folder


# facebook/hubert-large-ls960-ft: HubertForCTC (keys "hubert.*" and "lm_head.*"), large layout (layer norm,
# stable layer norm, conv bias), the English upper-case letter vocabulary of 32 tokens, pytorch_model.bin.
# Dropout values and the exact tokenizer_config.json keys: guess (as the 2021 conversion script wrote them).
def write_hubert_ctc_finetuned(folder, seed: int = 0) -> Path:
    from transformers import HubertConfig, HubertForCTC

    folder = _prepare(folder)
    config = HubertConfig(
        **TINY, **CONV,
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, feat_proj_layer_norm=True,
        feat_extract_activation="gelu", hidden_act="gelu",
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
        attention_dropout=0.1, hidden_dropout=0.1, feat_proj_dropout=0.1, activation_dropout=0.1,
        final_dropout=0.1, layerdrop=0.1, mask_time_prob=0.05,
        vocab_size=len(ENGLISH_VOCAB), pad_token_id=0, bos_token_id=1, eos_token_id=2,
        ctc_loss_reduction="sum",
    )
    model = _new_model(HubertForCTC, config, seed)
    _write_config(folder, config, "HubertForCTC", transformers_version="4.10.0.dev0")  # guess
    _write_json(folder / _FE, _wav2vec2_feature_extractor(do_normalize=True, return_attention_mask=True))
    _save_weights(folder, _legacy_state_dict(model), "pytorch_model.bin")
    _write_json(folder / "vocab.json", ENGLISH_VOCAB)
    _write_json(folder / "special_tokens_map.json", SPECIAL_TOKENS)
    _write_json(folder / "tokenizer_config.json", {
        **SPECIAL_TOKENS, "do_lower_case": False, "word_delimiter_token": "|",
    })
    return folder


# facebook/data2vec-audio-base: bare Data2VecAudioModel (layer-norm conv encoder with bias, post-layer-norm
# transformer, five stacked positional conv layers of kernel 19 instead of one weight-normed one).
# Dropouts: guess.
def write_data2vec_audio(folder, seed: int = 0) -> Path:
    from transformers import Data2VecAudioConfig, Data2VecAudioModel

    folder = _prepare(folder)
    config = Data2VecAudioConfig(
        **TINY, **CONV,
        conv_bias=True, feat_extract_activation="gelu", hidden_act="gelu",
        num_conv_pos_embeddings=5, conv_pos_kernel_size=19, num_conv_pos_embedding_groups=16,
        attention_dropout=0.1, hidden_dropout=0.1, feat_proj_dropout=0.0, activation_dropout=0.0,
        final_dropout=0.1, layerdrop=0.0, mask_time_prob=0.05,
        vocab_size=32, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )
    model = _new_model(Data2VecAudioModel, config, seed)
    _write_config(folder, config, "Data2VecAudioModel", transformers_version="4.16.0.dev0")  # guess
    _write_json(folder / _FE, _wav2vec2_feature_extractor(do_normalize=True, return_attention_mask=True))
    _save_weights(folder, _legacy_state_dict(model), "pytorch_model.bin")
    return folder


WRITERS = {
    "xlsr53_pretrained": write_xlsr53_pretrained,
    "hubert_base": write_hubert_base,
    "wavlm_base": write_wavlm_base,
    "w2v_bert": write_w2v_bert,
    "mms_all": write_mms_all,
    "hubert_ctc_finetuned": write_hubert_ctc_finetuned,
    "data2vec_audio": write_data2vec_audio,
}
assert tuple(WRITERS) == KINDS


# ---------------------------------------------------------------------------------------------------------
# Building once, reading back
# ---------------------------------------------------------------------------------------------------------

COMPLETE = ".complete"


def build(kind: str, root, seed: int = 0) -> Path:
    """`root/<kind>` (or `root/<kind>-seed<N>`), written once: reused when its `.complete` marker exists.
    Written into a temporary sibling and renamed, so that parallel test workers never see half a folder."""
    if kind not in WRITERS:
        raise KeyError(f"unknown checkpoint kind {kind!r}; one of {', '.join(KINDS)}")
    root = Path(root)
    folder = root / (kind if seed == 0 else f"{kind}-seed{seed}")
    if (folder / COMPLETE).exists():
        return folder
    tmp = root / f".{folder.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    WRITERS[kind](tmp, seed)
    (tmp / COMPLETE).touch()
    shutil.rmtree(folder, ignore_errors=True)  # a half-written folder from an interrupted run
    try:
        tmp.rename(folder)
    except OSError:  # another worker finished first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / COMPLETE).exists():
            raise
    return folder


def checkpoint_files(folder) -> list[str]:
    """The checkpoint's files (without the `.complete` marker), sorted."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name != COMPLETE)


def saved_state_dict(folder, kind: str) -> dict[str, torch.Tensor]:
    """The main weights file's state dict, exactly as saved."""
    path = Path(folder) / INFO[kind].weights_file
    if path.suffix == ".safetensors":
        return load_safetensors(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def _canonical(key: str) -> str:
    """One name for weight norm's two spellings (legacy `weight_g`/`weight_v` and the parametrization)."""
    if key.endswith(".weight_g"):
        return key[: -len("weight_g")] + "parametrizations.weight.original0"
    if key.endswith(".weight_v"):
        return key[: -len("weight_v")] + "parametrizations.weight.original1"
    return key


def encoder_tensors(model_or_state_dict, kind: str, include_adapters: bool = False) -> dict[str, torch.Tensor]:
    """The encoder's tensors under comparable names: without the model's prefix, weight norm spelled one way.

    Takes a loaded model (any head: `AutoModelForCTC`, the bare model, pretraining) or a saved state dict
    (`saved_state_dict(folder, kind)`); heads (lm_head, quantizer, project_*) are left out. MMS's attention
    adapters are language-specific and left out too unless `include_adapters`. So that a test can assert that
    the encoder after loading equals the checkpoint's:

        loaded, saved = encoder_tensors(model, kind), encoder_tensors(saved_state_dict(folder, kind), kind)
        assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)
    """
    if isinstance(model_or_state_dict, torch.nn.Module):
        model = model_or_state_dict
        state_dict = model.state_dict()
        prefix = model.base_model_prefix + "."
        # A bare model (HubertModel, ...) is its own base model: its keys carry no prefix.
        if not any(k.startswith(prefix) for k in state_dict):
            prefix = ""
    else:
        state_dict = model_or_state_dict
        prefix = INFO[kind].encoder_prefix

    out = {}
    for key, tensor in state_dict.items():
        if not key.startswith(prefix):
            continue  # a head: lm_head, quantizer, project_hid, project_q
        name = _canonical(key[len(prefix):])
        if not include_adapters and ".adapter_layer." in name:
            continue
        out[name] = tensor.detach()
    return out
