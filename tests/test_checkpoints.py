"""The tiny checkpoints of tests/checkpoints.py have the real repositories' layout and load as they do."""

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import checkpoints as C

# The real repositories' non-size settings that the project's code depends on.
EXPECTED_CONFIG = {
    "xlsr53_pretrained": dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
                              num_codevector_groups=2, num_codevectors_per_group=320, vocab_size=32),
    "hubert_base": dict(feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False),
    "wavlm_base": dict(feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False,
                       num_buckets=320, max_bucket_distance=800),
    "w2v_bert": dict(feature_projection_input_dim=160, position_embeddings_type="relative_key",
                     hidden_act="swish", conv_depthwise_kernel_size=31, add_adapter=False, vocab_size=None),
    "mms_all": dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, adapter_attn_dim=16,
                    vocab_size=len(C.MMS_VOCAB["eng"])),
    "hubert_ctc_finetuned": dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
                                 vocab_size=32, pad_token_id=0),
    "data2vec_audio": dict(conv_bias=True, num_conv_pos_embeddings=5, conv_pos_kernel_size=19),
    # The encoder's settings are in the config's audio_config / encoder_config.
    "omniasr_ctc": dict(conv_bias=True, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
                        attention_dropout=0.0, hidden_dropout=0.1, layerdrop=0.1),
    "parakeet_ctc": dict(num_mel_bins=80, conv_kernel_size=9, subsampling_factor=8, scale_input=True,
                         layerdrop=0.0),
}
# The top-level config of the kinds that write text: their special ids (the CTC blank above all).
EXPECTED_IDS = {
    "omniasr_ctc": dict(blank_token_id=0, bos_token_id=0, pad_token_id=1, eos_token_id=2, ctc_loss_reduction="mean"),
    "parakeet_ctc": dict(pad_token_id=C.subword.PARAKEET_VOCAB, ctc_loss_reduction="mean", ctc_zero_infinity=True),
}

# preprocessor_config.json values that decide what the model is fed.
EXPECTED_PREPROCESSOR = {
    "xlsr53_pretrained": dict(do_normalize=True, return_attention_mask=True),
    "hubert_base": dict(return_attention_mask=False),
    "wavlm_base": dict(do_normalize=False, return_attention_mask=True),
    "w2v_bert": dict(feature_size=80, num_mel_bins=80, stride=2, padding_value=1, return_attention_mask=True),
    "mms_all": dict(do_normalize=True, return_attention_mask=True),
    "hubert_ctc_finetuned": dict(do_normalize=True, return_attention_mask=True),
    "data2vec_audio": dict(do_normalize=True, return_attention_mask=True),
    "omniasr_ctc": dict(do_normalize=True, return_attention_mask=True, padding_value=0, feature_size=1),
    "parakeet_ctc": dict(feature_size=80, hop_length=160, win_length=400, n_fft=512, preemphasis=0.97),
}

NEW_VOCAB = 40  # the vocabulary size a fine-tuning run would pass


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="module")
def folders(root):
    """Every kind the installed packages can write (the others' tests skip, saying why)."""
    return {kind: C.build(kind, root) for kind in C.KINDS if not C.missing(kind)}


@pytest.fixture
def folder_of(folders):
    def get(kind):
        if C.missing(kind):
            pytest.skip(C.missing(kind))
        return folders[kind]
    return get


def read_json(folder, name):
    return json.loads((folder / name).read_text(encoding="utf-8"))


def preprocessor_config(folder) -> dict:
    """The feature extractor's saved values: preprocessor_config.json, or (a processor saved by transformers 5)
    the "feature_extractor" of processor_config.json."""
    if (folder / "preprocessor_config.json").exists():
        return read_json(folder, "preprocessor_config.json")
    return read_json(folder, "processor_config.json")["feature_extractor"]


def encoder_config(config):
    """The encoder's part of a config: itself, or its audio_config (Omnilingual) / encoder_config (Parakeet)."""
    return getattr(config, "audio_config", None) or getattr(config, "encoder_config", None) or config


# --- layout ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", C.KINDS)
def test_files_are_the_real_layout_and_small(folder_of, kind):
    folder = folder_of(kind)
    assert C.checkpoint_files(folder) == sorted(C.INFO[kind].files)
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 2_000_000, f"{kind} is {size} bytes"


@pytest.mark.parametrize("kind", C.KINDS)
def test_config_keeps_the_real_settings_with_tiny_sizes(folder_of, kind):
    from transformers import AutoConfig

    info, folder = C.INFO[kind], folder_of(kind)
    raw = read_json(folder, "config.json")
    assert raw["architectures"] == [info.model_class]
    assert raw["model_type"] == info.model_type
    config = AutoConfig.from_pretrained(folder)
    encoder = encoder_config(config)
    for key, value in EXPECTED_CONFIG[kind].items():
        assert getattr(encoder, key) == value, key
    for key, value in EXPECTED_IDS.get(kind, {}).items():
        assert getattr(config, key) == value, key
    assert encoder.hidden_size <= 64 and encoder.num_hidden_layers == 2
    if kind not in ("w2v_bert", "parakeet_ctc"):  # the real 7-layer conv encoder, fewer channels
        assert list(encoder.conv_kernel) == [10, 3, 3, 3, 3, 2, 2]
        assert list(encoder.conv_stride) == [5, 2, 2, 2, 2, 2, 2]
        assert max(encoder.conv_dim) <= 64


@pytest.mark.parametrize("kind", C.KINDS)
def test_state_dict_key_prefixes(folder_of, kind):
    keys = set(C.saved_state_dict(folder_of(kind), kind))
    prefix = C.INFO[kind].encoder_prefix
    heads = {k.split(".")[0] for k in keys if not k.startswith(prefix)} if prefix else set()
    if kind in C.SUBWORD_KINDS:  # the conversion scripts' names: ctc_head beside the encoder
        assert heads == {"ctc_head"}
        inner = {"omniasr_ctc": "model.audio_tower.layers.0.attention.q_proj.weight",
                 "parakeet_ctc": "encoder.layers.0.self_attn.q_proj.weight"}[kind]
        assert inner in keys
        return
    if kind == "xlsr53_pretrained":
        assert heads == {"quantizer", "project_hid", "project_q"}
    elif C.INFO[kind].has_ctc_head:
        assert heads == {"lm_head"}
    else:
        assert heads == set()
    # A bare model is saved without its prefix, as HubertModel.save_pretrained writes it.
    bare = kind in ("hubert_base", "wavlm_base", "w2v_bert", "data2vec_audio")
    assert (prefix == "") == bare
    if bare:
        assert not any(k.startswith(("hubert.", "wavlm.", "wav2vec2", "data2vec_audio.")) for k in keys)
        assert "feature_projection.projection.weight" in keys
    else:
        assert f"{prefix}feature_projection.projection.weight" in keys
    assert any(".layers.0." in k for k in keys)
    # Weight norm in the legacy spelling of the real (pre-2024) checkpoints.
    if kind in ("xlsr53_pretrained", "hubert_base", "wavlm_base", "mms_all", "hubert_ctc_finetuned"):
        assert f"{prefix}encoder.pos_conv_embed.conv.weight_g" in keys
        assert not any("parametrizations" in k for k in keys)


# --- loading as the project loads a base model --------------------------------------------------------------

@pytest.mark.parametrize("kind", C.KINDS)
def test_feature_extractor_and_ctc_model_load_the_saved_encoder(folder_of, kind):
    from transformers import AutoFeatureExtractor, AutoModelForCTC

    info, folder = C.INFO[kind], folder_of(kind)
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    assert type(extractor).__name__ == info.feature_extractor
    raw = preprocessor_config(folder)
    assert raw["sampling_rate"] == 16000
    for key, value in EXPECTED_PREPROCESSOR[kind].items():
        assert raw[key] == value, key

    model = AutoModelForCTC.from_pretrained(folder, vocab_size=NEW_VOCAB, pad_token_id=0,
                                            ignore_mismatched_sizes=True)
    assert type(model).__name__ == info.ctc_class
    assert model.main_input_name == info.main_input

    loaded = C.encoder_tensors(model, kind)
    saved = C.encoder_tensors(C.saved_state_dict(folder, kind), kind)
    assert loaded.keys() == saved.keys() and len(saved) > 20
    assert [k for k in saved if not torch.equal(loaded[k], saved[k])] == []
    q_proj = next(k for k in saved if k.startswith(("encoder.layers.0.", "audio_tower.layers.0.", "layers.0."))
                  and k.endswith(("attention.q_proj.weight", "self_attn.linear_q.weight", "self_attn.q_proj.weight")))
    assert torch.equal(loaded[q_proj], saved[q_proj])

    # One second of audio through the real front end: 49 frames (320 samples a frame; Parakeet: 13), NEW_VOCAB
    # logits.
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    inputs = extractor(audio, sampling_rate=16000, return_tensors="pt")
    assert info.main_input in inputs
    with torch.no_grad():
        logits = model(**inputs).logits
    assert tuple(logits.shape) == (1, info.frames_in_1s, NEW_VOCAB)


def test_pretraining_checkpoint_loads_as_itself(folders):
    from transformers import Wav2Vec2ForPreTraining

    model = Wav2Vec2ForPreTraining.from_pretrained(folders["xlsr53_pretrained"])
    saved = C.saved_state_dict(folders["xlsr53_pretrained"], "xlsr53_pretrained")
    assert torch.equal(model.quantizer.codevectors, saved["quantizer.codevectors"])
    assert not hasattr(model, "lm_head")


# --- the checkpoints' own vocabularies ---------------------------------------------------------------------

def test_finetuned_hubert_keeps_its_english_head_and_tokenizer(folders):
    from transformers import AutoModelForCTC, AutoTokenizer

    folder = folders["hubert_ctc_finetuned"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert type(tokenizer).__name__ == "Wav2Vec2CTCTokenizer"
    assert tokenizer.get_vocab() == C.ENGLISH_VOCAB == read_json(folder, "vocab.json")
    assert tokenizer.decode(tokenizer("THE CAT").input_ids) == "THE CAT"
    model = AutoModelForCTC.from_pretrained(folder)  # no new vocabulary: the saved head is used
    saved = C.saved_state_dict(folder, "hubert_ctc_finetuned")
    assert torch.equal(model.lm_head.weight, saved["lm_head.weight"])


@pytest.mark.parametrize("kind", ["xlsr53_pretrained", "hubert_base", "wavlm_base", "w2v_bert"])
def test_base_checkpoints_have_no_tokenizer(folders, kind):
    assert not (folders[kind] / "vocab.json").exists()
    assert C.INFO[kind].vocab is None and not C.INFO[kind].has_ctc_head


def test_mms_adapters_load_per_language(folders):
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC

    folder = folders["mms_all"]
    assert read_json(folder, "vocab.json") == C.MMS_VOCAB
    assert read_json(folder, "tokenizer_config.json")["target_lang"] == "eng"
    adapters = {lang: load_file(str(folder / f"adapter.{lang}.safetensors")) for lang in C.INFO["mms_all"].adapter_langs}
    assert set(adapters) >= {"eng", "tur", "deu"}

    # model.safetensors carries the English adapter and head.
    main = C.saved_state_dict(folder, "mms_all")
    assert all(torch.equal(main[k], v) for k, v in adapters["eng"].items())

    def holds(model, lang):
        state = model.state_dict()
        return all(torch.equal(state[k], v) for k, v in adapters[lang].items())

    model = Wav2Vec2ForCTC.from_pretrained(folder, target_lang="tur", ignore_mismatched_sizes=True)
    assert model.target_lang == "tur" and holds(model, "tur")
    assert model.lm_head.out_features == model.config.vocab_size == len(C.MMS_VOCAB["tur"])
    # The encoder (adapters aside) is the saved one.
    loaded, saved = C.encoder_tensors(model, "mms_all"), C.encoder_tensors(main, "mms_all")
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert C.encoder_tensors(model, "mms_all", include_adapters=True).keys() > loaded.keys()

    model.load_adapter("deu")
    assert model.target_lang == "deu" and holds(model, "deu")
    assert model.lm_head.out_features == len(C.MMS_VOCAB["deu"])

    tokenizer = Wav2Vec2CTCTokenizer.from_pretrained(folder, target_lang="tur")
    assert tokenizer.encoder == C.MMS_VOCAB["tur"] and len(tokenizer) == len(C.MMS_VOCAB["tur"])
    assert tokenizer.decode(tokenizer("çağ şu").input_ids) == "çağ şu"


# --- the checkpoints that already write text (a SentencePiece tokenizer and a CTC head) ----------------------

@pytest.mark.parametrize("kind", C.SUBWORD_KINDS)
def test_subword_checkpoints_load_with_the_auto_classes_and_train(folder_of, kind):
    from transformers import AutoModelForCTC, AutoProcessor, AutoTokenizer

    info, folder = C.INFO[kind], folder_of(kind)
    tokenizer, processor = AutoTokenizer.from_pretrained(folder), AutoProcessor.from_pretrained(folder)
    assert type(tokenizer).__name__ == info.tokenizer and type(processor).__name__ == info.processor
    model = AutoModelForCTC.from_pretrained(folder)  # no new vocabulary: the saved head is used
    saved = C.saved_state_dict(folder, kind)
    assert torch.equal(model.ctc_head.weight, saved["ctc_head.weight"])
    assert model.config.vocab_size == len(tokenizer) == saved["ctc_head.weight"].shape[0]
    assert tokenizer.pad_token_id == model.config.pad_token_id == info.extra["pad_token_id"]
    blank = getattr(model.config, "blank_token_id", model.config.pad_token_id)  # Parakeet: the blank is <pad>
    assert blank == info.extra["blank_token_id"]

    audio = np.random.default_rng(0).standard_normal(24000).astype(np.float32) * 0.1
    text = "kedi okul dedi"
    # return_tensors="pt": without it, OmniASRCTCProcessor's label masking indexes a list with a bool and
    # overwrites the first label with -100 (transformers 5.25)
    batch = processor(audio, text=text, sampling_rate=16000, return_tensors="pt")
    assert info.main_input in batch and info.extra["mask"] in batch
    assert batch["labels"][0].tolist() == tokenizer(text, add_special_tokens=False).input_ids
    model.train()
    loss = model(**{k: v for k, v in batch.items() if k != "decoder_input_ids"}).loss
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert model.ctc_head.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        ids = model(**{k: batch[k] for k in (info.main_input, info.extra["mask"])}).logits.argmax(-1)[0]
    assert isinstance(processor.decode(ids, skip_special_tokens=True), str)


@pytest.mark.parametrize("kind", C.SUBWORD_KINDS)
def test_fixture_tokenizers_write_the_training_languages_in_subwords(folder_of, kind):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder_of(kind))
    sentences = C.subword.training_sentences()
    assert any("ş" in s for s in sentences) and any("ß" in s or "ü" in s for s in sentences)
    encoded = [tokenizer(s, add_special_tokens=False).input_ids for s in sentences]
    assert all(tokenizer.unk_token_id not in ids for ids in encoded)
    # Labels decode exactly only without CTC's collapsing of repeats (group_tokens=False).
    assert [tokenizer.decode(ids, group_tokens=False) for ids in encoded] == sentences
    doubled = next(ids for ids in encoded if any(a == b for a, b in zip(ids, ids[1:])))
    assert len(tokenizer.decode(doubled)) < len(tokenizer.decode(doubled, group_tokens=False))
    # Subwords: fewer labels than characters.
    assert sum(map(len, encoded)) < 0.6 * sum(map(len, sentences))
    # A lower-case vocabulary: capitals (and digits it never saw) are unknown.
    assert tokenizer.unk_token_id in tokenizer("Kedi", add_special_tokens=False).input_ids


def test_omniasr_tokenizer_is_its_sentencepiece_models_segmentation(folder_of):
    """fairseq2's ids (<s> 0 is the CTC blank), pieces with plain spaces, and exactly SentencePiece's
    segmentation after OmniASRConverter."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder_of("omniasr_ctc"))
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    assert not any("▁" in p for p in pieces) and sum(p.startswith(" ") for p in pieces) > 50
    reference = spm.SentencePieceProcessor(model_proto=C.subword.omniasr_sentencepiece())
    sentences = C.subword.training_sentences()
    assert [tokenizer(s, add_special_tokens=False).input_ids for s in sentences] == reference.encode(sentences)


def test_parakeet_tokenizer_has_nemos_ids(folder_of):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder_of("parakeet_ctc"))
    assert tokenizer.unk_token_id == 0 and tokenizer.bos_token_id is None
    assert tokenizer.pad_token_id == len(tokenizer) - 1 == C.subword.PARAKEET_VOCAB  # <pad> appended: the blank
    assert tokenizer.convert_ids_to_tokens(tokenizer("okul dedi", add_special_tokens=False).input_ids)[0][0] == "▁"


# --- determinism and caching ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", C.KINDS)
def test_same_seed_same_bytes(folder_of, tmp_path, kind):
    folder = folder_of(kind)
    again = C.WRITERS[kind](tmp_path / "again", seed=0)
    for name in C.INFO[kind].files:
        assert (again / name).read_bytes() == (folder / name).read_bytes(), name
    other = C.WRITERS[kind](tmp_path / "other", seed=1)
    weights = C.INFO[kind].weights_file
    assert (other / weights).read_bytes() != (again / weights).read_bytes()


def test_build_writes_once(root, folders):
    kind = "hubert_base"
    weights = folders[kind] / C.INFO[kind].weights_file
    stamp = weights.stat().st_mtime_ns
    os.utime(weights, ns=(stamp - 10**9, stamp - 10**9))  # any rewrite would move the mtime
    assert C.build(kind, root) == folders[kind]
    assert weights.stat().st_mtime_ns == stamp - 10**9
    assert not [p for p in root.iterdir() if ".tmp" in p.name]

    (folders[kind] / C.COMPLETE).unlink()  # an interrupted write is redone
    assert C.build(kind, root) == folders[kind]
    assert (folders[kind] / C.COMPLETE).exists() and C.checkpoint_files(folders[kind]) == sorted(C.INFO[kind].files)

    with pytest.raises(KeyError):
        C.build("no_such_kind", root)
