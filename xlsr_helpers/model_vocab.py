"""Step 03's other vocabulary: the checkpoint's own tokenizer and CTC head, kept (``VOCABULARY``).

A model that already writes the language — Omnilingual ASR, Parakeet CTC, MMS-1b-all with the language's adapter,
a fine-tuned model of the same language — starts from a working model when it keeps its tokenizer and head,
instead of the all-blank plateau of a new random head. ``VOCABULARY``:

- ``"model"``: keep MODEL's tokenizer and CTC head (refused when MODEL has no CTC head or no tokenizer, or, for
  MMS adapters, no vocabulary for the language);
- ``"train"``: a new character vocabulary from the training text and a new head (:mod:`.vocab`);
- ``"auto"`` (default): ``"model"`` when MODEL has a CTC head and a tokenizer that writes the training text —
  at least :data:`COVERAGE_THRESHOLD` of its characters, and labels that fit the model's frames in at least
  :data:`FEASIBLE_THRESHOLD` of the clips — else ``"train"``.

The decision is taken here, once, with its reason; step 03's report and run.json record it
(``{"vocabulary": {"setting", "mode", "reason"}}``), and steps 04-06 read it (:func:`decision`), never decide again.

The coverage report says how well the model's tokenizer writes the training text: the characters and words it
cannot write (encoded and decoded back, they are not themselves, or hold the unknown token), the unknown-token
rate of the encoded text, the labels per second of audio against the model's output frames per second (CTC needs
a frame per label, and one more between two equal labels: a subword vocabulary needs fewer labels than characters,
a model with 80 ms frames such as Parakeet more care), and the share of clips whose labels do not fit.

The kept tokenizer's files are copied byte for byte (:data:`TOKENIZER_FILES`) into ``03_vocab/processor``, the
trained model and the upload folder (:func:`copy_tokenizer_files`): what is published is the model's tokenizer,
unchanged. The one exception is an MMS adapter's ``tokenizer_config.json``, which must name the adapter's language
(``target_lang``); that file is written by ``save_pretrained``, its ``vocab.json`` is the checkpoint's. (A
tokenizer_config.json that does not name its class is the checkpoint's only beside a config.json: in the model and
the upload, not in ``03_vocab/processor``.)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .config import Config, read_run_record
from .constants import RUN_FILE, SAMPLING_RATE
from .ctc import decode_ids
from .families import ready_to_transcribe
from .files import write_json_atomic
from .labels import encode, tokenize

SETTINGS = ("auto", "model", "train")
COVERAGE_THRESHOLD = 0.995  # share of the training text's characters (spaces aside) the kept tokenizer must write
FEASIBLE_THRESHOLD = 0.99  # share of training clips whose labels must fit the model's output frames
# The files a tokenizer is saved as (transformers 4 and 5 names, SentencePiece models): what is copied unchanged.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "special_tokens_map.json",
                   "added_tokens.json", "merges.txt", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model")
EXAMPLES = 20  # characters and words listed in the coverage report


class VocabularyError(ValueError):
    """VOCABULARY="model" asked for a MODEL whose vocabulary cannot be kept; the message says why."""


# --------------------------------------------------------------------------------------------------
# what MODEL has
# --------------------------------------------------------------------------------------------------
def model_processor(model: str, language: str | None = None):
    """MODEL's own processor (feature extractor + tokenizer); for an MMS adapter model its tokenizer set to
    ``language``. Raises VocabularyError when there is none."""
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(model)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise VocabularyError(f"{model} has no processor that loads: {str(error)[:300]}") from error
    if not hasattr(processor, "tokenizer") or not hasattr(processor, "feature_extractor"):
        raise VocabularyError(f"{model} has no tokenizer (AutoProcessor gives {type(processor).__name__}).")
    if language:
        try:
            processor.tokenizer.set_target_lang(language)
        except (ValueError, AttributeError) as error:
            raise VocabularyError(f"{model}'s tokenizer has no vocabulary for {language!r}: {error}") from error
    return processor


def source_folder(model: str) -> Path:
    """A folder holding MODEL's tokenizer files: MODEL itself, or their copy in the Hub cache."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model, allow_patterns=list(TOKENIZER_FILES)))


def tokenizer_files(folder: str | Path) -> list[str]:
    """The tokenizer files a folder holds (:data:`TOKENIZER_FILES`)."""
    return [name for name in TOKENIZER_FILES if (Path(folder) / name).is_file()]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def copy_tokenizer_files(source: str | Path, target: str | Path, keep_config: bool = False) -> dict[str, str]:
    """Copy the tokenizer files of ``source`` into ``target`` byte for byte (over what ``save_pretrained`` wrote);
    ``keep_config``: leave ``target``'s tokenizer_config.json (an MMS adapter's, which names target_lang).
    Returns {file: SHA-256} of the files copied."""
    copied = {}
    for name in tokenizer_files(source):
        if keep_config and name == "tokenizer_config.json":
            continue
        shutil.copyfile(Path(source) / name, Path(target) / name)
        copied[name] = sha256(Path(target) / name)
    return copied


# --------------------------------------------------------------------------------------------------
# coverage: how well the model's tokenizer writes the training text
# --------------------------------------------------------------------------------------------------
def writes(tokenizer, pieces: list[str]) -> list[bool]:
    """Whether the tokenizer writes each piece (a character or a word): encoded and decoded as labels, it comes
    back itself, without the unknown token."""
    if not pieces:
        return []
    unk = tokenizer.unk_token_id
    encoded = tokenize(tokenizer, pieces)
    return [bool(ids) and unk not in ids and back == piece
            for piece, ids, back in zip(pieces, encoded, decode_ids(tokenizer, encoded))]


def _char_row(ch: str, count: int, total: int, example: str) -> dict[str, Any]:
    return {"char": ch, "codepoint": f"U+{ord(ch):04X}", "name": unicodedata.name(ch, "?"), "count": count,
            "share": round(count / max(1, total), 6), "example": example[:120]}


def coverage(tokenizer, sentences: list[str], seconds: list[float] | None = None,
             frames: Callable[[list[int]], list[int]] | None = None) -> dict[str, Any]:
    """What the tokenizer can and cannot write of ``sentences``; with ``seconds`` (each sentence's clip) and
    ``frames`` (output frames of clips of so many samples, the model's arithmetic), CTC feasibility too."""
    import numpy as np

    from .audio import ctc_min_frames

    chars = Counter("".join(sentences))
    chars.pop(" ", None)
    total_chars = sum(chars.values())
    ordered = sorted(chars)
    missing = {ch for ch, ok in zip(ordered, writes(tokenizer, ordered)) if not ok}
    examples = {}
    for sentence in sentences if missing else ():
        for ch in missing.intersection(sentence) - examples.keys():
            examples[ch] = sentence
        if len(examples) == len(missing):
            break
    unwritable_chars = sorted((_char_row(ch, chars[ch], total_chars, examples.get(ch, "")) for ch in missing),
                              key=lambda row: (-row["count"], row["char"]))
    words = Counter(word for sentence in sentences for word in sentence.split())
    word_list = sorted(words)
    bad_words = [w for w, ok in zip(word_list, writes(tokenizer, word_list)) if not ok]
    bad_words.sort(key=lambda w: (-words[w], w))
    labels = encode(tokenizer, sentences)
    lengths = np.asarray([len(x) for x in labels.to_pylist()], dtype=np.int64) if len(labels) else np.zeros(0, int)
    flat = labels.flatten().to_numpy(zero_copy_only=False) if len(labels) else np.zeros(0, int)
    unk_count = int((flat == tokenizer.unk_token_id).sum()) if tokenizer.unk_token_id is not None else 0
    char_share = 1.0 - sum(chars[ch] for ch in missing) / max(1, total_chars)
    report: dict[str, Any] = {
        "tokenizer_class": type(tokenizer).__name__, "tokenizer_size": len(tokenizer),
        "sentences": len(sentences), "characters": len(chars), "character_occurrences": total_chars,
        "unwritable_characters": unwritable_chars[:EXAMPLES], "unwritable_character_count": len(missing),
        "unwritable": "".join(row["char"] for row in unwritable_chars),
        "character_coverage": round(char_share, 6),
        "words": len(words), "unwritable_word_count": len(bad_words),
        "unwritable_word_share": round(sum(words[w] for w in bad_words) / max(1, sum(words.values())), 6),
        "unwritable_words": [{"word": w, "count": words[w]} for w in bad_words[:EXAMPLES]],
        "labels": int(lengths.sum()), "unknown_tokens": unk_count,
        "unknown_token_rate": round(unk_count / max(1, int(lengths.sum())), 6),
        "labels_per_sentence": round(float(lengths.mean()), 3) if len(lengths) else 0.0,
        "characters_per_label": round((total_chars + sum(s.count(" ") for s in sentences))
                                      / max(1, int(lengths.sum())), 3),
    }
    if seconds is not None and frames is not None and len(sentences):
        seconds_arr = np.asarray(seconds, dtype=np.float64)
        samples = np.rint(seconds_arr * SAMPLING_RATE).astype(np.int64)
        available = np.asarray(frames(samples.tolist()), dtype=np.int64)
        needed = np.asarray([ctc_min_frames(row) for row in labels.to_pylist()], dtype=np.int64)
        minute = int(frames([60 * SAMPLING_RATE])[0])
        infeasible = int((needed > available).sum())
        report.update({
            "audio_seconds": round(float(seconds_arr.sum()), 2),
            "labels_per_second": round(float(lengths.sum() / max(seconds_arr.sum(), 1e-9)), 3),
            "frames_per_second": round(minute / 60.0, 3),
            "max_labels_per_frame": round(float((needed / np.maximum(available, 1)).max()), 3),
            "infeasible_clips": infeasible, "feasible_share": round(1.0 - infeasible / len(sentences), 6),
        })
    return report


def frame_counter(model: str, extractor) -> Callable[[list[int]], list[int]]:
    """Output frames of clips of so many samples, by MODEL's own arithmetic (``audio.output_frames``), from its
    config alone: the model is built on the meta device (no weights are read)."""
    import torch
    from transformers import AutoConfig, AutoModelForCTC

    from .audio import output_frames

    config = AutoConfig.from_pretrained(model)
    with torch.device("meta"):
        skeleton = AutoModelForCTC.from_config(config)
    return lambda lengths: output_frames(skeleton, extractor, lengths).tolist()


# --------------------------------------------------------------------------------------------------
# the decision
# --------------------------------------------------------------------------------------------------
@dataclass
class Decision:
    setting: str  # VOCABULARY as given
    mode: str  # "model" | "train"
    reason: str
    processor: Any = None  # MODEL's own processor, when it has one for the language
    coverage: dict | None = None  # coverage of the training text by MODEL's tokenizer, when it has one

    def as_dict(self) -> dict[str, str]:
        return {"setting": self.setting, "mode": self.mode, "reason": self.reason}


def decide(cfg: Config, sentences: list[str], seconds: list[float] | None, language: str | None,
           log: Callable = print) -> Decision:
    """VOCABULARY for this run, with its reason (the module docstring's rules); MODEL's tokenizer is measured on
    the training ``sentences`` whenever MODEL has one, also when the answer is "train" (the report shows why)."""
    setting = (cfg.vocabulary or "auto").strip().lower()
    if setting not in SETTINGS:
        raise VocabularyError(f"VOCABULARY={cfg.vocabulary!r} is not one of {', '.join(SETTINGS)}.")
    forced = "VOCABULARY='train': a new character vocabulary and CTC head"
    ready, how = ready_to_transcribe(cfg.model, language or "", download=True)
    if not ready:
        if setting == "model":
            raise VocabularyError(f"VOCABULARY='model' keeps MODEL's tokenizer and CTC head, but {cfg.model!r} "
                                  f"cannot: {how}. Use VOCABULARY='train' (or 'auto').")
        return Decision(setting, "train", forced if setting == "train" else f"MODEL has no vocabulary to keep: {how}")
    try:
        processor = model_processor(cfg.model, language)
    except VocabularyError as error:
        if setting == "model":
            raise
        why = forced if setting == "train" else f"MODEL's tokenizer cannot be kept: {error}"
        return Decision(setting, "train", why)
    try:
        counter = frame_counter(cfg.model, processor.feature_extractor)
    except Exception as error:  # noqa: BLE001 - an architecture whose frame arithmetic is unknown here: reported
        log(f"The output frames of {cfg.model} could not be computed ({type(error).__name__}: {error}); CTC "
            "feasibility is not measured.")
        counter = None
    measured = coverage(processor.tokenizer, sentences, seconds, counter)
    share, feasible = measured["character_coverage"], measured.get("feasible_share", 1.0)
    summary = (f"{how}; its tokenizer writes {share:.2%} of the training text's characters "
               f"({measured['unwritable_character_count']} character(s) it cannot write), and the labels of "
               f"{feasible:.2%} of the training clips fit its frames")
    if setting != "auto":
        return Decision(setting, setting, f"VOCABULARY={setting!r} (MODEL is {summary})", processor, measured)
    if share >= COVERAGE_THRESHOLD and feasible >= FEASIBLE_THRESHOLD:
        return Decision(setting, "model", f"MODEL is {summary} (at least {COVERAGE_THRESHOLD:.1%} and "
                        f"{FEASIBLE_THRESHOLD:.0%} are needed)", processor, measured)
    return Decision(setting, "train", f"MODEL is {summary}, but at least {COVERAGE_THRESHOLD:.1%} and "
                    f"{FEASIBLE_THRESHOLD:.0%} are needed: a new character vocabulary is built", processor, measured)


def record(cfg: Config, decision: Decision) -> None:
    """The decision in run.json (``"vocabulary"``, beside the config), for steps 04-06 and the reader."""
    run_record = read_run_record(cfg.run_path)
    run_record["vocabulary"] = {**decision.as_dict(), "model": cfg.model}
    write_json_atomic(cfg.run_path / RUN_FILE, run_record)


def decision(cfg: Config) -> dict[str, str]:
    """What step 03 decided for this run (its report.json; run.json holds the same): ``{"mode": "model" | "train",
    ...}``; a run folder of before this parameter, or without step 03, had "train"."""
    path = cfg.step_dir("03_vocab") / "report.json"
    if path.exists():
        found = json.loads(path.read_text(encoding="utf-8")).get("vocabulary")
        if found:
            return found
    return {"setting": "train", "mode": "train", "reason": "no VOCABULARY decision recorded (step 03 predates it)"}


def keeps_model_vocabulary(cfg: Config) -> bool:
    return decision(cfg).get("mode") == "model"


# --------------------------------------------------------------------------------------------------
# the kept processor, saved
# --------------------------------------------------------------------------------------------------
def stands_alone(folder: Path) -> bool:
    """Whether a checkpoint's tokenizer_config.json names its tokenizer class: one that does not (the 2021 wav2vec2
    and HuBERT fine-tunes) is found through config.json's model_type, which a processor folder does not have."""
    path = Path(folder) / "tokenizer_config.json"
    return not path.is_file() or "tokenizer_class" in json.loads(path.read_text(encoding="utf-8"))


def save_processor(processor, model: str, target: Path, language: str | None = None) -> dict[str, str]:
    """``processor.save_pretrained(target)``, then the checkpoint's own tokenizer files over what it wrote,
    byte-identical; the saved tokenizer_config.json stays for an MMS adapter (it names ``language``) and where the
    checkpoint's does not name its class (:func:`stands_alone`: beside the model's config.json, in 04_train/model and
    the upload, the checkpoint's own is used). Returns {file: SHA-256} of the files kept from the checkpoint."""
    target.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(str(target))
    source = source_folder(model)
    return copy_tokenizer_files(source, target, keep_config=bool(language) or not stands_alone(source))
