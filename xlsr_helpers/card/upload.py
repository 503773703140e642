"""The upload folder ``06_model_card/upload/``: every file that defines the model, and nothing else.

The model and processor are loaded and saved again (safetensors, the file names of the installed
transformers; a tokenizer kept from the base model keeps its own files, byte for byte),
with the run's ``normalizer.json``, for MMS the ``adapter.<lang>.safetensors`` file, and when
step 05 decoded with an n-gram LM, that LM in pyctcdecode's layout (``alphabet.json`` + ``language_model/``,
which ``BeamSearchDecoderCTC.load_from_dir`` loads, as the card's code does). The folder is built beside its
place and moved there when complete; a file that ``save_pretrained`` writes and this module does not know
stops the step.

An adapter-only 04_train/model (MMS adapters: the adapter, the head and ``base_model.json``, no base weights) is
assembled here into a whole model — the base it names with the trained adapter and head — so that the upload loads
with ``AutoModelForCTC.from_pretrained(upload, target_lang=...)`` alone. With the run folder on Google Drive the
upload folder is on the local disk (``Config.upload_dir``): it is the one copy of the whole model, for the Hub.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..config import Config
from ..inference import LM, check_model_folder
from ..lm import LM_ALPHABET_FILE, LM_FOLDER, build_lm_decoder, is_hub_id
from ..model_vocab import TOKENIZER_FILES, copy_tokenizer_files
from ..models import adapter_weights_file, load_ctc_model
from ..normalize import FILE_NAME as NORMALIZER_FILE
from .run_info import ModelCardError, RunInfo

CARD_FILE = "README.md"
# Files a saved CTC model + processor may consist of (transformers 4.x and 5.x names).
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json", *TOKENIZER_FILES)
FILE_ROLES = {
    "config.json": "model architecture (its family's config class)", "model.safetensors": "weights (safetensors)",
    "generation_config.json": "generation defaults", "model.safetensors.index.json": "weight shards index",
    "preprocessor_config.json": "feature extractor (16 kHz, normalization, attention mask)",
    "processor_config.json": "processor: feature extractor (16 kHz, normalization, attention mask)",
    "tokenizer_config.json": "CTC tokenizer settings (special tokens, word delimiter)",
    "vocab.json": "CTC vocabulary (one output per character; the base model's own when it was kept)",
    "tokenizer.json": "tokenizer (the base model's own, unchanged, when its vocabulary was kept)",
    "merges.txt": "tokenizer merges", "tokenizer.model": "SentencePiece model", "spiece.model": "SentencePiece model",
    "sentencepiece.bpe.model": "SentencePiece model",
    "special_tokens_map.json": "special tokens", "added_tokens.json": "added special tokens",
    NORMALIZER_FILE: "text normalization of the references (xlsr_helpers.normalize)",
    CARD_FILE: "this model card",
    LM_ALPHABET_FILE: "n-gram LM decoding: the CTC vocabulary as pyctcdecode reads it",
    LM_FOLDER + "/": "n-gram LM decoding: KenLM model, unigrams.txt, attrs.json (alpha, beta)",
}


def model_source(cfg: Config) -> Path:
    """The model the card describes: EVAL_MODEL when it is a local folder, else 04_train/model."""
    if cfg.eval_model and Path(cfg.eval_model).is_dir():
        return Path(cfg.eval_model)
    if cfg.eval_model:
        raise ModelCardError(
            f"EVAL_MODEL={cfg.eval_model!r} is not a local folder: a card and upload folder are made for "
            "a model of this run (leave EVAL_MODEL empty) or a local model folder."
        )
    return Path(cfg.model_dir)


def lm_source(info: RunInfo) -> str | None:
    """The n-gram LM that step 05 decoded with (its ``metrics.json``), to ship with the model; None without one."""
    if info.metrics.get(LM) is None:
        return None
    lm_path = info.metrics[LM].get("lm_path")
    if not lm_path or not (Path(lm_path).exists() or is_hub_id(lm_path)):
        raise ModelCardError(
            f"Step 05 decoded with the n-gram LM {lm_path!r}, which is not there any more: put it back, or run "
            "05_evaluate again without LM_PATH (the card reports only what its upload folder can reproduce)."
        )
    return lm_path


def prepare_upload(model_dir: str | Path, upload_dir: str | Path, normalizer_path: str | Path | None = None,
                   lm_path: str | Path | None = None, keep_tokenizer_files: bool = False) -> list[str]:
    """Fill ``upload_dir`` with the model and processor (re-saved: safetensors, current file names), the run's
    normalizer.json and, with ``lm_path`` (``lm_source(info)``), the n-gram LM in pyctcdecode's layout
    (``alphabet.json`` + ``language_model/``); anything else in the folder (optimizer states, old files) is
    removed. ``keep_tokenizer_files`` (the run kept the base model's vocabulary): the tokenizer files are the model
    folder's, byte for byte (the base model's own), not re-saved. Returns the file and folder names."""
    from transformers import AutoProcessor

    model_dir, upload_dir = Path(model_dir), Path(upload_dir)
    if not model_dir.exists():
        raise ModelCardError(f"No model at {model_dir}: run 04_train first.")
    check_model_folder(model_dir)
    model = load_ctc_model(model_dir)  # an adapter-only folder: the base it names + the adapter and head
    processor = AutoProcessor.from_pretrained(str(model_dir))
    tmp = upload_dir.with_name(upload_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    processor.save_pretrained(str(tmp))
    if keep_tokenizer_files:
        copy_tokenizer_files(model_dir, tmp)
    if normalizer_path is not None and Path(normalizer_path).exists():
        shutil.copy(normalizer_path, tmp / NORMALIZER_FILE)
    for adapter in model_dir.glob(adapter_weights_file("*")):  # MMS: the language adapter beside the model
        shutil.copy(adapter, tmp / adapter.name)
    if lm_path:  # the processor stays the plain one: AutoProcessor and the pipeline need no pyctcdecode
        build_lm_decoder(processor, lm_path).save_to_dir(str(tmp))
    known = MODEL_FILES + PROCESSOR_FILES + (NORMALIZER_FILE, LM_ALPHABET_FILE, LM_FOLDER)
    unexpected = [p.name for p in tmp.iterdir() if p.name not in known
                  and not re.fullmatch(r"model-\d+-of-\d+\.safetensors", p.name)
                  and not re.fullmatch(r"adapter\.[\w-]+\.safetensors", p.name)]
    if unexpected:
        raise ModelCardError(f"save_pretrained wrote files this step does not know: {unexpected}")
    shutil.rmtree(upload_dir, ignore_errors=True)
    tmp.rename(upload_dir)
    return sorted(p.name for p in upload_dir.iterdir())


def upload_files_table(upload_dir: str | Path) -> list[dict]:
    """Name, size and role of every file in the upload folder."""
    rows = []
    for path in sorted(Path(upload_dir).iterdir()):
        name = path.name + "/" if path.is_dir() else path.name
        role = FILE_ROLES.get(name, "")
        if not role and path.name.startswith("adapter."):
            role = "language adapter + CTC head (loaded by target_lang)"
        elif not role and path.suffix == ".safetensors":
            role = "weights shard"
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        rows.append({"file": name, "bytes": size, "role": role})
    return rows


def adapter_language(folder: str | Path) -> str | None:
    """The language of an MMS adapter saved in a model folder (``adapter.<lang>.safetensors``), or None."""
    found = sorted(Path(folder).glob(adapter_weights_file("*"))) if Path(folder).is_dir() else []
    return found[0].name[len("adapter."):-len(".safetensors")] if found else None
