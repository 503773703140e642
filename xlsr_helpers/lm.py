"""Beam search with an n-gram language model (pyctcdecode + KenLM): optional, off by default (``LM_PATH``).

``LM_PATH`` names a KenLM file (``.arpa`` or ``.bin``), or a model folder or Hub id that ships its LM in the
layout pyctcdecode saves (``BeamSearchDecoderCTC.save_to_dir``) and ``Wav2Vec2ProcessorWithLM`` loads: the
decoder's alphabet (``alphabet.json``) and a ``language_model/`` folder with the KenLM file, ``attrs.json``
(alpha, beta, ...) and ``unigrams.txt``. Step 05 decodes the model's logits with it next to greedy decoding,
and step 06 ships the same files in the upload.
"""

from __future__ import annotations

import re
from pathlib import Path

from .ctc import is_character_tokenizer
from .metrics import EvaluationError

# pyctcdecode 0.5 declares numpy<2 but runs on numpy 2: installed with its dependencies, it would downgrade
# numpy and break pandas (on Colab: half the preinstalled packages). So its two real dependencies first.
LM_INSTALL_HINT = 'pip install kenlm "pygtrie>=2.1" && pip install --no-deps "pyctcdecode>=0.5"'
# How pyctcdecode saves a decoder (BeamSearchDecoderCTC.save_to_dir; load_from_dir reads it back):
# the alphabet, and a folder with the KenLM file, attrs.json (alpha, beta, ...) and unigrams.txt.
LM_ALPHABET_FILE = "alphabet.json"
LM_FOLDER = "language_model"
KENLM_SUFFIXES = (".arpa", ".bin", ".binary")


def build_lm_decoder(processor, lm_path: str | Path | None):
    """A pyctcdecode beam-search decoder with a KenLM n-gram model; None when no LM is asked for.

    ``lm_path``: a KenLM file (.arpa or .bin), or a model folder or Hub id that ships its LM the way step 06's
    upload does (``alphabet.json`` + ``language_model/``); that alphabet must be the tokenizer's.
    """
    if not lm_path:
        return None
    if not is_character_tokenizer(processor.tokenizer):
        raise EvaluationError(
            f"LM_PATH is set ({lm_path}), but this model writes with its own subword tokenizer "
            f"({type(processor.tokenizer).__name__}, kept by step 03's VOCABULARY): the n-gram LM decoding here reads "
            'a character vocabulary. Set LM_PATH = "" (greedy decoding).')
    try:
        import pyctcdecode
    except ImportError as error:
        raise ImportError(
            f"LM_PATH is set ({lm_path}) but pyctcdecode is not installed. Install the LM extra: "
            f'{LM_INSTALL_HINT}  (or set LM_PATH = "" for greedy decoding).'
        ) from error
    labels = ctc_labels(processor.tokenizer)
    path = Path(lm_path)
    if is_hub_id(lm_path):
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(str(lm_path), allow_patterns=[LM_ALPHABET_FILE, f"{LM_FOLDER}/*"]))
    if path.is_dir():
        check_lm_folder(path)
        decoder = pyctcdecode.BeamSearchDecoderCTC.load_from_dir(str(path))
        if decoder._alphabet.labels != pyctcdecode.Alphabet.build_alphabet(labels).labels:
            raise EvaluationError(f"The n-gram LM's {path / LM_ALPHABET_FILE} is not this model's vocabulary: "
                                  "it was saved for another model.")
        return decoder
    if not path.exists():
        raise FileNotFoundError(f"LM_PATH {lm_path} does not exist (a KenLM .arpa or .bin file, or a folder "
                                f"with {LM_ALPHABET_FILE} and {LM_FOLDER}/).")
    return pyctcdecode.build_ctcdecoder(labels, kenlm_model_path=str(path))


def is_hub_id(value: str | Path) -> bool:
    """True for ``owner/name`` that is no local path nor a KenLM file name: a Hub repository."""
    path = Path(value)
    owner_name = re.fullmatch(r"[\w.-]+/[\w.-]+", str(value)) is not None
    return owner_name and not path.exists() and path.suffix not in KENLM_SUFFIXES


def check_lm_folder(folder: str | Path) -> None:
    """A folder that ships an n-gram LM must hold the decoder's alphabet and the KenLM file: say what is missing."""
    folder = Path(folder)
    lm_dir = folder / LM_FOLDER
    missing = [name for name in (LM_ALPHABET_FILE, LM_FOLDER) if not (folder / name).exists()]
    if not missing and not any(p.suffix in KENLM_SUFFIXES for p in lm_dir.iterdir()):
        missing.append(f"the KenLM file ({' or '.join(KENLM_SUFFIXES)}) in {LM_FOLDER}/")
    if missing:
        raise EvaluationError(
            f"{folder} has no complete n-gram LM; missing: {', '.join(missing)}. pyctcdecode's "
            f"BeamSearchDecoderCTC.save_to_dir writes them (step 06 does, when step 05 used LM_PATH)."
        )


def has_lm(folder: str | Path) -> bool:
    """True when a model folder offers an n-gram LM (any part of pyctcdecode's layout is there)."""
    return any((Path(folder) / name).exists() for name in (LM_ALPHABET_FILE, LM_FOLDER))


def ctc_labels(tokenizer) -> list[str]:
    """The tokenizer's vocabulary in id order, as pyctcdecode wants it: blank "" and word delimiter " "."""
    vocab = tokenizer.get_vocab()
    labels = [""] * (max(vocab.values()) + 1)
    for token, index in vocab.items():
        labels[index] = token
    delimiter = getattr(tokenizer, "word_delimiter_token", "|")
    return ["" if t == tokenizer.pad_token else " " if t == delimiter else t for t in labels]
