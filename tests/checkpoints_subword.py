"""Tiny random-weight checkpoints that already write text with a SentencePiece vocabulary and a CTC head:
Meta's Omnilingual ASR CTC models (``hf-audio/omniasr-ctc-300m-v2``) and NVIDIA's Parakeet CTC models
(``nvidia/parakeet-ctc-0.6b`` / ``-1.1b``), in the layouts that transformers' own conversion scripts write.

Each writer follows its conversion script step by step (``models/omniasr_ctc/convert_omniasr_ctc_to_hf.py``
with ``models/omniasr/convert_omniasr_to_hf.py``; ``models/parakeet/convert_nemo_to_hf.py``): the same config
class and special-token ids, the same feature extractor arguments, the tokenizer converted from a SentencePiece
model by the same converter class (``OmniASRConverter`` / ``ParakeetConverter``) into a ``ParakeetTokenizer``,
and ``model.save_pretrained`` + ``processor.save_pretrained``, which write the files the Hub repositories hold
(their README.md and .gitattributes aside). The Hub repositories themselves could not be read from here: the
file lists are what those save calls write with the installed transformers.

Only the sizes shrink (hidden size 32, two layers, two heads) and the vocabularies: a SentencePiece model
trained here, in a second, on a few hundred sentences of the synthetic corpus's languages (Turkish, German,
French, Spanish, Italian), lower-cased with the punctuation but apostrophes removed (a guess for Omnilingual's
text; Parakeet CTC writes lower case with apostrophes), instead of Meta's ~10,000 and NVIDIA's 1,024 pieces.

- Omnilingual: fairseq2's special ids ``<s>`` 0 (the CTC blank: ``blank_token_id`` 0), ``<pad>`` 1, ``</s>`` 2,
  ``<unk>`` 3; pieces spell the space as a space, not "▁" (``OmniASRConverter`` splits before each space and
  fuses the pieces back, with no Metaspace step: the pieces of the real model must hold plain spaces).
- Parakeet (NeMo): a BPE SentencePiece model with ``<unk>`` 0 and no other specials; the conversion appends
  ``<pad>`` as the last id, which is the CTC blank (``pad_token_id`` = vocab_size - 1).

``ParakeetTokenizer.decode`` collapses repeated ids (CTC) unless ``group_tokens=False``: decoding *labels*
needs ``group_tokens=False``, or "okul okul" comes back as "okul".
"""

from __future__ import annotations

import functools
import random
import re
import tempfile
from pathlib import Path

import torch

# The languages of the tokenizers' training text: Latin-script languages of the synthetic corpus, Turkish first.
LANGUAGES = ("tr", "de", "fr", "es", "it")
SENTENCES_PER_LANGUAGE = 80
OMNIASR_VOCAB = 300  # a SentencePiece unigram model; Meta's omniASR_tokenizer_written_v2 has 10,288 entries
PARAKEET_VOCAB = 160  # a SentencePiece BPE model; NVIDIA's parakeet-ctc models have 1,024 (+ <pad>)

# The sizes that shrink; everything else is the conversion script's value.
OMNIASR_AUDIO = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     conv_dim=[32] * 7)  # the real 7-layer feature encoder (320 samples a frame), 32 channels
# NeMo's parakeet-ctc-1.1b encoder (d_model 1024, 42 layers, 8 heads, 256 subsampling channels) shrunk; the
# rest as the conversion maps it: feat_in 80, conv_kernel_size 9, subsampling_factor 8, xscaling, dropout 0.1,
# dropout_att 0.1, dropout_emb 0.0, no stochastic depth (layerdrop 0.0, "NeMo's default").
PARAKEET_ENCODER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                        subsampling_conv_channels=16, num_mel_bins=80, conv_kernel_size=9, subsampling_factor=8,
                        dropout=0.1, attention_dropout=0.1, dropout_positions=0.0, scale_input=True,
                        layerdrop=0.0)


def training_sentences(languages=LANGUAGES, per_language: int = SENTENCES_PER_LANGUAGE) -> list[str]:
    """Sentences of the synthetic corpus's languages, lower-cased, only letters, digits, apostrophes and spaces."""
    from xlsr_helpers.synthetic.languages import resolve
    from xlsr_helpers.synthetic.sentences import SentenceMaker, lower

    sentences = []
    for language in languages:
        maker = SentenceMaker(resolve(language), random.Random(0))
        for _ in range(per_language):
            text = lower(maker.new()[0], language).replace("’", "'")
            sentences.append(" ".join(re.sub(r"[^\w' ]+", " ", text).split()))
    return sentences


def _train(sentences: list[str], **options) -> bytes:
    """A SentencePiece model (its serialized ModelProto), trained deterministically on one thread."""
    import io

    import sentencepiece as spm

    spm.set_random_generator_seed(1)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, character_coverage=1.0,
                                   num_threads=1, hard_vocab_limit=False, minloglevel=2, **options)
    return model.getvalue()


@functools.lru_cache(maxsize=4)
def omniasr_sentencepiece(vocab_size: int = OMNIASR_VOCAB, languages=LANGUAGES) -> bytes:
    """A SentencePiece model in the form of Omnilingual's: fairseq2's ids (<s> 0, <pad> 1, </s> 2, <unk> 3),
    pieces with plain spaces (SentencePiece trains with "▁", then the pieces are respelled and
    escape_whitespaces is turned off, which is what OmniASRConverter's space-splitting reads)."""
    return omniasr_sentencepiece_of(training_sentences(languages), vocab_size)


def omniasr_sentencepiece_of(sentences: list[str], vocab_size: int = OMNIASR_VOCAB) -> bytes:
    """:func:`omniasr_sentencepiece` trained on ``sentences`` (the learning proof: a run's normalized training text)."""
    from sentencepiece import sentencepiece_model_pb2

    trained = _train(sentences, vocab_size=vocab_size, model_type="unigram",
                     bos_id=0, pad_id=1, eos_id=2, unk_id=3, add_dummy_prefix=False)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(trained)
    for piece in proto.pieces:
        piece.piece = piece.piece.replace("▁", " ")
    proto.normalizer_spec.escape_whitespaces = False
    return proto.SerializeToString()


@functools.lru_cache(maxsize=4)
def parakeet_sentencepiece(vocab_size: int = PARAKEET_VOCAB, languages=LANGUAGES) -> bytes:
    """A SentencePiece BPE model as NeMo trains one for its CTC models: <unk> 0, no <s>, </s> or <pad>."""
    return _train(training_sentences(languages), vocab_size=vocab_size, model_type="bpe",
                  unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1)


def _converted(converter_class, model: bytes):
    """converter_class(path).converted() and the converter (the converters read a file)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokenizer.model"
        path.write_bytes(model)
        converter = converter_class(str(path))
        return converter, converter.converted()


def omniasr_tokenizer(model: bytes | None = None):
    """The ``ParakeetTokenizer`` that convert_omniasr_to_hf.convert_tokenizer makes of a SentencePiece model."""
    from transformers import ParakeetTokenizer
    from transformers.convert_slow_tokenizer import OmniASRConverter

    converter, converted = _converted(OmniASRConverter, model or omniasr_sentencepiece())
    spec = converter.proto.trainer_spec
    return ParakeetTokenizer(tokenizer_object=converted, bos_token=spec.bos_piece, eos_token=spec.eos_piece,
                             unk_token=spec.unk_piece, pad_token=spec.pad_piece, clean_up_tokenization_spaces=False,
                             padding_side="right")


def parakeet_tokenizer(model: bytes | None = None):
    """The ``ParakeetTokenizer`` that convert_nemo_to_hf.write_processor makes of NeMo's SentencePiece model
    (for CTC: <pad> appended as the last id, the blank)."""
    from tokenizers import AddedToken
    from transformers import ParakeetTokenizer
    from transformers.convert_slow_tokenizer import ParakeetConverter

    _, converted = _converted(ParakeetConverter, model or parakeet_sentencepiece())
    tokenizer = ParakeetTokenizer(tokenizer_object=converted, clean_up_tokenization_spaces=False)
    if tokenizer.convert_tokens_to_ids("<pad>") is None:
        tokenizer.add_tokens([AddedToken("<pad>", normalized=False, special=True)])
    tokenizer.add_special_tokens({"pad_token": AddedToken("<pad>", normalized=False, special=True),
                                  "unk_token": AddedToken("<unk>", normalized=False, special=True)})
    return tokenizer


def _seeded(model_class, config, seed: int):
    torch.manual_seed(seed)
    model = model_class(config)
    model.eval()
    return model


def save_omniasr_ctc(folder, model, tokenizer=None) -> Path:
    """An ``OmniASRForCTC`` (any weights: random here, pre-trained in the learning proof) with its processor in
    the layout of hf-audio/omniasr-ctc-300m-v2: what the conversion script's two save calls write."""
    from transformers import OmniASRCTCProcessor, OmniASRFeatureExtractor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer or omniasr_tokenizer()
    # convert_omniasr_to_hf.get_feature_extractor()
    extractor = OmniASRFeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0, do_normalize=True,
                                        return_attention_mask=True)
    model.save_pretrained(folder)
    OmniASRCTCProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def omniasr_ctc_model(tokenizer, seed: int = 0, **audio):
    """A random ``OmniASRForCTC`` with the conversion script's config for ``tokenizer``'s vocabulary: the
    encoder's dropouts as get_original_encoder_config sets them (attention 0.0, hidden/activation 0.1,
    LayerDrop 0.1), vocab_size and the special ids from the tokenizer (blank_token_id stays 0, <s>)."""
    from transformers import OmniASRAudioConfig, OmniASRCTCConfig, OmniASRForCTC

    audio_config = OmniASRAudioConfig(**{**OMNIASR_AUDIO, "attention_dropout": 0.0, "hidden_dropout": 0.1,
                                         "activation_dropout": 0.1, "layerdrop": 0.1, **audio})
    config = OmniASRCTCConfig(audio_config=audio_config, vocab_size=len(tokenizer),
                              pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id)
    return _seeded(OmniASRForCTC, config, seed)


# hf-audio/omniasr-ctc-300m-v2 (converted from fairseq2's omniASR_CTC_300M_v2): OmniASRForCTC, encoder
# "large_lv60k" (24 layers, 1024 wide: shrunk), layer-normed conv feature encoder with bias, CTC head
# `ctc_head` over the SentencePiece vocabulary, blank 0; OmniASRFeatureExtractor (input_values + padding_mask).
def write_omniasr_ctc(folder, seed: int = 0) -> Path:
    tokenizer = omniasr_tokenizer()
    return save_omniasr_ctc(folder, omniasr_ctc_model(tokenizer, seed), tokenizer)


# nvidia/parakeet-ctc-0.6b / -1.1b as convert_nemo_to_hf.py writes them: ParakeetForCTC (FastConformer encoder,
# 8x subsampling: one frame per 80 ms), its `ctc_head` over NeMo's SentencePiece BPE vocabulary + <pad> (the
# blank); ParakeetFeatureExtractor from NeMo's preprocessor (16 kHz, 25 ms windows every 10 ms, 80 mel bins,
# n_fft 512); ParakeetProcessor with decoder_type "ctc".
def write_parakeet_ctc(folder, seed: int = 0) -> Path:
    from transformers import (ParakeetCTCConfig, ParakeetEncoderConfig, ParakeetFeatureExtractor, ParakeetForCTC,
                              ParakeetProcessor)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = parakeet_tokenizer()
    config = ParakeetCTCConfig(encoder_config=ParakeetEncoderConfig(**PARAKEET_ENCODER), vocab_size=len(tokenizer),
                               pad_token_id=tokenizer.pad_token_id)
    model = _seeded(ParakeetForCTC, config, seed)
    del model.config._name_or_path  # as the conversion script does
    model.save_pretrained(folder)
    extractor = ParakeetFeatureExtractor(sampling_rate=16000, win_length=400, hop_length=160, feature_size=80,
                                         n_fft=512, padding_value=0.0)
    ParakeetProcessor(feature_extractor=extractor, tokenizer=tokenizer, decoder_type="ctc").save_pretrained(folder)
    return folder


def missing(kind: str) -> str:
    """Why ``kind`` cannot be written with the installed packages ("" when it can)."""
    import importlib.util

    import transformers

    needed = {"omniasr_ctc": "OmniASRForCTC", "parakeet_ctc": "ParakeetForCTC"}[kind]
    if not hasattr(transformers, needed):
        return f"transformers {transformers.__version__} has no {needed} (omniasr_ctc: 5.25 and later)"
    version = tuple(int(part) for part in transformers.__version__.split(".")[:2])
    if version < (5, 25):  # the fixtures' tokenizers are converted with 5.25's SentencePiece extractor (5.2's differs)
        return f"transformers {transformers.__version__}: the subword fixtures are written with 5.25's converters"
    if importlib.util.find_spec("sentencepiece") is None:
        return "the sentencepiece package (the dev extra) trains the fixture's tokenizer"
    return ""
