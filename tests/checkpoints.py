"""Tiny random-weight checkpoints in the on-disk layout of real Hub repositories.

No machine of this project reaches the Hugging Face Hub, so the tests load these instead. Each writer
imitates one real repository: the same files, the same config values except the sizes, the same state-dict
key names (including legacy ones such as weight-norm's `weight_g` / `weight_v` and the missing `hubert.`
prefix of a bare `HubertModel`), the same weights file format. Only the sizes shrink (hidden size 32, two
layers, two heads, 32 channels per conv layer), so a checkpoint is written in about a second and is well
under 2 MB. The frame arithmetic is kept: the seven conv layers of wav2vec2 / HuBERT / WavLM / data2vec
(320 samples a frame), and w2v-BERT's 160-dim stacked filter banks.

Two kinds already write text with a SentencePiece vocabulary and their own CTC head (``omniasr_ctc``:
Meta's Omnilingual ASR; ``parakeet_ctc``: NVIDIA's Parakeet CTC): tests/checkpoints_subword.py writes them,
tests/checkpoints_encoders.py the others. ``missing(kind)`` says why a kind cannot be written with the
installed packages (omniasr_ctc needs transformers 5.25; both need sentencepiece, of the dev extra).

    from checkpoints import build, INFO, KINDS, encoder_tensors
    folder = build("xlsr53_pretrained", tmp_path_factory.mktemp("ckpt"))   # written once, then reused
    INFO["xlsr53_pretrained"].encoder_prefix                                  # "wav2vec2."

Where a value could not be checked against the real repository it is marked "guess" in the comment
above its writer.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file as load_safetensors

import checkpoints_subword as subword
from checkpoints_encoders import (  # noqa: F401  (tests and tests/pretrained.py import them from here)
    _FE, _TOKENIZER_FILES, CONV, ENGLISH_VOCAB, MMS_ALPHABETS, MMS_SPECIALS, MMS_VOCAB, SPECIAL_TOKENS, TINY,
    _legacy_state_dict, _new_model, _save_weights, _wav2vec2_feature_extractor, _write_config, _write_json,
    write_data2vec_audio, write_hubert_base, write_hubert_ctc_finetuned, write_mms_all, write_w2v_bert,
    write_wavlm_base, write_xlsr53_pretrained)

# ---------------------------------------------------------------------------------------------------------
# What each kind is
# ---------------------------------------------------------------------------------------------------------
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
    frames_in_1s: int = 49       # output frames of one second of audio
    tokenizer: str = ""          # the class AutoTokenizer gives ("" = no tokenizer)
    processor: str = ""          # the class AutoProcessor gives, where the checkpoint saved a processor
    extra: dict = field(default_factory=dict)


# What model.save_pretrained + processor.save_pretrained write for a checkpoint with its own processor.
_SUBWORD_FILES = ("config.json", "generation_config.json", "model.safetensors", "processor_config.json",
                  "tokenizer.json", "tokenizer_config.json")

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
    # The feature extractor is saved inside processor_config.json (transformers 5), not preprocessor_config.json.
    "omniasr_ctc": Info(
        repo="hf-audio/omniasr-ctc-300m-v2", model_class="OmniASRForCTC", model_type="omniasr_ctc",
        ctc_class="OmniASRForCTC", encoder_prefix="model.", main_input="input_values",
        feature_extractor="OmniASRFeatureExtractor", has_ctc_head=True, weights_file="model.safetensors",
        files=_SUBWORD_FILES, tokenizer="ParakeetTokenizer", processor="OmniASRCTCProcessor",
        extra={"head": "ctc_head", "blank_token_id": 0, "pad_token_id": 1, "mask": "padding_mask"},
    ),
    "parakeet_ctc": Info(
        repo="nvidia/parakeet-ctc-1.1b", model_class="ParakeetForCTC", model_type="parakeet_ctc",
        ctc_class="ParakeetForCTC", encoder_prefix="encoder.", main_input="input_features",
        feature_extractor="ParakeetFeatureExtractor", has_ctc_head=True, weights_file="model.safetensors",
        files=_SUBWORD_FILES, tokenizer="ParakeetTokenizer", processor="ParakeetProcessor",
        samples_per_frame=1280, frames_in_1s=13,  # 10 ms filter-bank hop, 8x subsampling (three stride-2 convs)
        extra={"head": "ctc_head", "blank_token_id": subword.PARAKEET_VOCAB, "pad_token_id": subword.PARAKEET_VOCAB,
               "mask": "attention_mask"},
    ),
}
KINDS: tuple[str, ...] = tuple(INFO)

WRITERS = {
    "xlsr53_pretrained": write_xlsr53_pretrained,
    "hubert_base": write_hubert_base,
    "wavlm_base": write_wavlm_base,
    "w2v_bert": write_w2v_bert,
    "mms_all": write_mms_all,
    "hubert_ctc_finetuned": write_hubert_ctc_finetuned,
    "data2vec_audio": write_data2vec_audio,
    "omniasr_ctc": subword.write_omniasr_ctc,
    "parakeet_ctc": subword.write_parakeet_ctc,
}
assert tuple(WRITERS) == KINDS
SUBWORD_KINDS = ("omniasr_ctc", "parakeet_ctc")


def missing(kind: str) -> str:
    """Why ``kind`` cannot be written with the installed packages; "" when it can."""
    return subword.missing(kind) if kind in SUBWORD_KINDS else ""


# ---------------------------------------------------------------------------------------------------------
# Building once, reading back
# ---------------------------------------------------------------------------------------------------------

COMPLETE = ".complete"


def build(kind: str, root, seed: int = 0) -> Path:
    """`root/<kind>` (or `root/<kind>-seed<N>`), written once: reused when its `.complete` marker exists.
    Written into a temporary sibling and renamed, so that parallel test workers never see half a folder."""
    if kind not in WRITERS:
        raise KeyError(f"unknown checkpoint kind {kind!r}; one of {', '.join(KINDS)}")
    if missing(kind):
        raise RuntimeError(f"cannot write {kind}: {missing(kind)}")
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
        if not any(k.startswith(prefix) for k in state_dict) and INFO[kind].encoder_prefix:
            prefix = INFO[kind].encoder_prefix  # ParakeetForCTC: "encoder." beside "ctc_head.", prefix "model"
        # A bare model (HubertModel, ...) is its own base model: its keys carry no prefix.
        if not any(k.startswith(prefix) for k in state_dict):
            prefix = ""
    else:
        state_dict = model_or_state_dict
        prefix = INFO[kind].encoder_prefix

    out = {}
    for key, tensor in state_dict.items():
        if not key.startswith(prefix):
            continue  # a head: lm_head, ctc_head, quantizer, project_hid, project_q
        name = _canonical(key[len(prefix):])
        if not include_adapters and ".adapter_layer." in name:
            continue
        out[name] = tensor.detach()
    return out
