"""The writers of tests/checkpoints.py for speech encoders with character vocabularies (or none): wav2vec2 /
XLSR-53, HuBERT, WavLM, data2vec-audio, w2v-BERT 2.0, MMS-1b-all, a fine-tuned HuBERT CTC model; one function per
real Hub repository, and the pieces they share. Tests use them through ``checkpoints.build``.

Where a value could not be checked against the real repository it is marked "guess" in the comment
above its writer. The config keys not named in a writer are the family's transformers defaults, which are
the values of the repository that each family's configuration documents.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file as save_safetensors

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


_FE = "preprocessor_config.json"
_TOKENIZER_FILES = ("vocab.json", "tokenizer_config.json", "special_tokens_map.json")

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
XLSR53_CONFIG = dict(
    feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
    feat_extract_activation="gelu", hidden_act="gelu",
    num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
    num_codevector_groups=2, num_codevectors_per_group=320, codevector_dim=32, proj_codevector_dim=32,
    attention_dropout=0.1, hidden_dropout=0.1, feat_proj_dropout=0.1, activation_dropout=0.0,
    final_dropout=0.0, layerdrop=0.1, mask_time_prob=0.075, mask_time_length=10,
    vocab_size=32, pad_token_id=0, bos_token_id=1, eos_token_id=2, ctc_loss_reduction="sum",
)


def write_xlsr53_pretrained(folder, seed: int = 0) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

    folder = _prepare(folder)
    config = Wav2Vec2Config(**TINY, **CONV, **XLSR53_CONFIG)
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
