"""Step 05: transcribe the test split, score it (WER/CER with a confidence interval), explain the errors.

What the seed got wrong, and what this module does instead:

* The seed padded batches in dataset order and decoded the padded frames too, so a clip's text (and the
  WER) changed with the batch size. Here every clip is decoded from its own frames only, and the
  attention mask is used exactly as the architecture needs it:

  - layer-norm feature encoders (``feat_extract_norm="layer"``: XLSR-53, XLS-R, large-lv60 ...) are
    padded and given the attention mask; padding then changes nothing but float rounding (~1e-7 on the
    logits), so the text is the same for batch sizes 1, 8 and 32 (tested);
  - group-norm feature encoders (``feat_extract_norm="group"``: wav2vec2-base) normalize over time, so
    *any* padding changes the result, with or without a mask. They are never padded: a batch holds only
    clips of exactly the same length (in practice batch size 1). Exact, slower.
* Clips are batched longest first (least padding, and an out-of-memory error shows up at once).
* Clips longer than ``chunk_length_s`` are transcribed in overlapping windows (chunk and stride, the
  algorithm of transformers' ASR pipeline), so one very long clip cannot exhaust memory.
* Only the text of each clip is kept, never the logits of the whole split.
* References are normalized by the run's own saved normalizer (02_normalize), as in training.
* WER and CER come from jiwer, with a 95 % bootstrap confidence interval over utterances.
* Optional beam search with an n-gram LM (pyctcdecode + KenLM, see ``LM_INSTALL_HINT``), off by default.
  With an LM, the same logits are decoded both ways (the model runs once): greedy stays the main figure
  of ``metrics.json`` (what the model alone gives), the LM's figures are its ``"lm"`` section.

Outputs in ``<RUN_DIR>/05_evaluate/``: ``predictions.tsv``, ``metrics.json``, ``errors.json``, and with an
LM ``predictions_lm.tsv``.
"""

from __future__ import annotations

import csv
import json
import re
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .audio import model_inputs, output_frames, samples_per_frame, with_audio_feature
from .constants import SAMPLING_RATE
from .ctc import error_rates, greedy_decode
from .models import padding_changes_outputs

STEP = "05_evaluate"
# The decodings step 05 reports: greedy always, beam search with an n-gram LM when LM_PATH is set. The names
# key Transcriber.transcriptions(), metrics.json (its "lm" section) and the predictions files.
GREEDY, LM = "greedy", "lm"
DECODINGS = {GREEDY: "greedy CTC", LM: "beam search + n-gram LM (pyctcdecode)"}
PREDICTIONS_FILES = {GREEDY: "predictions.tsv", LM: "predictions_lm.tsv"}
METRIC_SUFFIX = {GREEDY: "", LM: " (n-gram LM)"}  # "Test WER" / "Test WER (n-gram LM)": summary, notebook, card
METRICS_FILE = "metrics.json"
ERRORS_FILE = "errors.json"
COMPARISON_FILE = "comparison.json"  # other models on the same clips (xlsr_helpers.compare)
# Files that say how raw audio and text become model inputs (one of each group must exist).
FEATURE_EXTRACTOR_FILES = ("preprocessor_config.json", "processor_config.json")
TOKENIZER_FILES = ("vocab.json", "tokenizer.json")
# pyctcdecode 0.5 declares numpy<2 but runs on numpy 2: installed with its dependencies, it would downgrade
# numpy and break pandas (on Colab: half the preinstalled packages). So its two real dependencies first.
LM_INSTALL_HINT = 'pip install kenlm "pygtrie>=2.1" && pip install --no-deps "pyctcdecode>=0.5"'
# How pyctcdecode saves a decoder (BeamSearchDecoderCTC.save_to_dir), which Wav2Vec2ProcessorWithLM loads too:
# the alphabet, and a folder with the KenLM file, attrs.json (alpha, beta, ...) and unigrams.txt.
LM_ALPHABET_FILE = "alphabet.json"
LM_FOLDER = "language_model"
KENLM_SUFFIXES = (".arpa", ".bin", ".binary")


class EvaluationError(ValueError):
    """A problem with the model, the data or the settings of an evaluation, said in plain words."""


# ------------------------------------------------------------------------------------------------
# Model and device
# ------------------------------------------------------------------------------------------------
def resolve_model_path(cfg) -> str:
    """``EVAL_MODEL`` when set (local folder or Hub id), else the run's ``04_train/model``."""
    if cfg.eval_model:
        return str(cfg.eval_model)
    model_dir = Path(cfg.model_dir)
    if not model_dir.exists():
        raise EvaluationError(
            f"No trained model at {model_dir}: run 04_train first, or set EVAL_MODEL to a model folder "
            "or Hub id (it must hold the processor too)."
        )
    return str(model_dir)


def check_model_folder(path: str | Path) -> None:
    """A local model folder must hold the processor (feature extractor + tokenizer) next to the weights."""
    folder = Path(path)
    if not folder.is_dir():
        return  # a Hub id: transformers says what is missing
    names = {p.name for p in folder.iterdir()}
    missing = []
    if "config.json" not in names:
        missing.append("config.json")
    if not any(n.endswith(".safetensors") or n.endswith(".bin") for n in names):
        missing.append("model weights (model.safetensors)")
    if not names & set(FEATURE_EXTRACTOR_FILES):
        missing.append("feature extractor (preprocessor_config.json or processor_config.json)")
    if not names & set(TOKENIZER_FILES):
        missing.append("tokenizer (vocab.json)")
    if missing:
        raise EvaluationError(
            f"{folder} is not a complete model folder; missing: {', '.join(missing)}. A fine-tuned CTC "
            "model needs its processor saved beside it: processor.save_pretrained(folder) (04_train/model "
            "and every 04_train/checkpoint-* have it)."
        )


def pick_device(device: str | None = None):
    """``device`` if given, else CUDA when available, else CPU."""
    import torch

    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(device, precision: str = "auto"):
    """The dtype the model computes in: float32 on CPU; on CUDA the precision of training (the same rule as step
    04's: "auto" is bfloat16 where the GPU has it, else float16), applied by autocast over float32 weights."""
    import torch

    precision = (precision or "auto").lower()
    if precision not in {"auto", "fp32", "fp16", "bf16"}:
        raise EvaluationError(f"precision must be auto, fp32, fp16 or bf16, not {precision!r}")
    if torch.device(device).type != "cuda":
        if precision in {"fp16", "bf16"}:
            warnings.warn(f"precision={precision} is only used on CUDA; evaluating in float32 on {device}.")
        return torch.float32
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]


def load_model(path_or_id: str | Path, device: str | None = None, precision: str = "auto"):
    """``(model, processor)`` of a CTC checkpoint, in eval mode on the chosen device, its weights in float32
    (the Transcriber computes in the precision of training under autocast: a blanket ``.half()`` of weights
    trained in bf16 or fp32 can overflow where autocast keeps the sensitive operations in float32)."""
    from transformers import AutoModelForCTC, AutoProcessor

    check_model_folder(path_or_id)
    device = pick_device(device)
    pick_dtype(device, precision)  # refuses an unknown precision before anything is loaded
    try:
        processor = AutoProcessor.from_pretrained(str(path_or_id))
    except (OSError, ValueError, TypeError) as error:
        raise EvaluationError(f"Could not load a processor from {path_or_id}: {error}") from error
    if not hasattr(processor, "tokenizer") or not hasattr(processor, "feature_extractor"):
        raise EvaluationError(
            f"{path_or_id} has no complete processor (feature extractor + tokenizer); found "
            f"{type(processor).__name__}. Save the processor (processor.save_pretrained) beside the model."
        )
    model = AutoModelForCTC.from_pretrained(str(path_or_id))
    model.to(device=device).eval()
    model.xlsr_precision = precision  # the Transcriber's default: what the caller asked for here
    return model, processor


def uses_attention_mask(model) -> bool:
    """True for layer-norm feature encoders (pad + mask is exact); False for group-norm ones (never pad)."""
    return getattr(model.config, "feat_extract_norm", "layer") != "group"


# ------------------------------------------------------------------------------------------------
# Audio
# ------------------------------------------------------------------------------------------------
def audio_array(value: Any, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """A decoded clip as float32 mono at ``sampling_rate``, whatever form it comes in.

    Accepts a torchcodec ``AudioDecoder`` (datasets >= 4 ``Audio`` column), a dict with ``array`` and
    ``sampling_rate`` (older datasets, user data), a dict with ``path``/``bytes`` (``decode=False``),
    a file path, or an array already at ``sampling_rate``.
    """
    if isinstance(value, np.ndarray):
        return _mono(value)
    if hasattr(value, "get_all_samples"):  # torchcodec AudioDecoder
        samples = value.get_all_samples()
        return _resample(_mono(samples.data.numpy()), int(samples.sample_rate), sampling_rate)
    if isinstance(value, dict):
        if value.get("array") is not None:
            rate = int(value.get("sampling_rate") or sampling_rate)
            return _resample(_mono(np.asarray(value["array"])), rate, sampling_rate)
        source = value.get("bytes") or value.get("path")
        if source is None:
            raise EvaluationError(f"Audio item has neither array, bytes nor path: {sorted(value)}")
        return audio_array(source, sampling_rate)
    if isinstance(value, (str, Path, bytes)):
        from torchcodec.decoders import AudioDecoder

        source = str(value) if isinstance(value, Path) else value
        samples = AudioDecoder(source, sample_rate=sampling_rate).get_all_samples()
        return _mono(samples.data.numpy())
    if hasattr(value, "numpy"):  # torch tensor
        return _mono(value.detach().cpu().numpy())
    raise EvaluationError(f"Cannot read audio from {type(value).__name__}")


def _mono(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:  # (channels, samples), torchcodec's layout; (samples, channels) if wider
        array = array.mean(axis=0 if array.shape[0] <= array.shape[1] else 1)
    return np.ascontiguousarray(array.reshape(-1))


def _resample(array: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return array
    import torch
    import torchaudio.functional as F

    return F.resample(torch.from_numpy(array), rate, target).numpy()


def audio_duration(value: Any, sampling_rate: int = SAMPLING_RATE) -> float:
    """Duration in seconds, from the container header when possible (no decoding)."""
    if isinstance(value, np.ndarray):
        return len(value) / sampling_rate
    metadata = getattr(value, "metadata", None)
    if metadata is not None:
        for name in ("duration_seconds", "duration_seconds_from_header"):
            seconds = getattr(metadata, name, None)
            if seconds:
                return float(seconds)
    return len(audio_array(value, sampling_rate)) / sampling_rate


class _Clips:
    """Index access to the audio of a Dataset (only its audio column is read) or of a plain list."""

    def __init__(self, audio: Any, column: str = "audio", durations: Sequence[float] | None = None):
        self._dataset = None
        if hasattr(audio, "column_names"):  # datasets.Dataset
            if column not in audio.column_names:
                raise EvaluationError(f"The dataset has no {column!r} column (columns: {audio.column_names})")
            if durations is None and "duration" in audio.column_names:
                durations = audio["duration"]
            self._dataset = audio.select_columns([column])
            self._column = column
            self._n = len(audio)
        else:
            self._items = list(audio)
            self._n = len(self._items)
        self.durations = None if durations is None else [float(d) for d in durations]

    def __len__(self) -> int:
        return self._n

    def raw(self, indices: Sequence[int]) -> list:
        if self._dataset is not None:
            return self._dataset[list(indices)][self._column] if indices else []
        return [self._items[i] for i in indices]

    def arrays(self, indices: Sequence[int]) -> list[np.ndarray]:
        return [audio_array(item) for item in self.raw(indices)]

    def lengths_s(self) -> list[float]:
        if self.durations is not None:
            return self.durations
        out = []
        for start in range(0, self._n, 64):
            out += [audio_duration(item) for item in self.raw(range(start, min(start + 64, self._n)))]
        return out


# ------------------------------------------------------------------------------------------------
# Decoding (greedy CTC, and beam search with an n-gram LM)
# ------------------------------------------------------------------------------------------------
def build_lm_decoder(processor, lm_path: str | Path | None):
    """A pyctcdecode beam-search decoder with a KenLM n-gram model; None when no LM is asked for.

    ``lm_path``: a KenLM file (.arpa or .bin), or a model folder or Hub id that ships its LM the way step 06's
    upload does (``alphabet.json`` + ``language_model/``); that alphabet must be the tokenizer's.
    """
    if not lm_path:
        return None
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


class _Decoder:
    """Turns per-clip logits (only the clip's own frames) into text: greedy, and with the LM when there is one."""

    def __init__(self, processor, lm_decoder=None):
        self.processor = processor
        self.lm = lm_decoder
        self.lm_seconds = 0.0

    def __call__(self, frames: list) -> list[dict[str, str]]:
        """``frames``: per clip a (T, V) float32 tensor of logits. Per clip: {decoding: text}."""
        greedy = greedy_decode(self.processor.tokenizer, [f.argmax(-1).numpy() for f in frames])
        if self.lm is None:
            return [{GREEDY: text} for text in greedy]
        started = time.perf_counter()
        # The raw logits, as the card's code and Wav2Vec2ProcessorWithLM pass them (pyctcdecode normalizes them).
        lm = [self.lm.decode(f.numpy()) for f in frames]
        self.lm_seconds += time.perf_counter() - started
        return [{GREEDY: g, LM: t} for g, t in zip(greedy, lm)]


# ------------------------------------------------------------------------------------------------
# Inference
# ------------------------------------------------------------------------------------------------
def chunk_windows(n_samples: int, chunk_len: int, stride_left: int, stride_right: int):
    """Windows ``(start, end, left, right)`` over a long clip, as transformers' ASR pipeline cuts them.

    Each window is ``chunk_len`` samples (the last may be shorter); ``left``/``right`` samples at its
    edges are context whose logits are dropped, so the kept parts tile the clip.
    """
    if chunk_len <= stride_left + stride_right:
        raise EvaluationError("chunk length must be longer than the two strides together")
    step = chunk_len - stride_left - stride_right
    windows = []
    for start in range(0, n_samples, step):
        end = min(start + chunk_len, n_samples)
        left = 0 if start == 0 else stride_left
        is_last = start + chunk_len >= n_samples
        right = 0 if is_last else stride_right
        if end - start > left:
            windows.append((start, end, left, right))
        if is_last:
            break
    return windows


@dataclass
class Transcriber:
    """Batched, length-sorted, batch-size-invariant CTC inference (see the module docstring)."""

    model: Any
    processor: Any
    batch_size: int = 8
    chunk_length_s: float = 20.0  # clips longer than this are cut in windows; 0 = never
    stride_length_s: float | None = None  # context on each side of a window; None = chunk_length_s / 6
    lm_decoder: Any = None
    progress: bool = True
    prefetch: bool = True  # decode the next batch's audio while the model runs
    precision: str | None = None  # auto | fp32 | fp16 | bf16 (CUDA only); None: what load_model was given, else auto

    def __post_init__(self):
        import torch

        if self.batch_size < 1:
            raise EvaluationError(f"batch size must be >= 1, not {self.batch_size}")
        self.decoder = _Decoder(self.processor, self.lm_decoder)
        self.decodings = [GREEDY] if self.lm_decoder is None else [GREEDY, LM]
        self.masked = uses_attention_mask(self.model)
        self.pads = not padding_changes_outputs(self.model)  # else: only clips of one length share a batch
        self.extractor = self.processor.feature_extractor
        self.align = samples_per_frame(self.model, self.extractor)
        self.device = next(self.model.parameters()).device
        self.weights_dtype = next(self.model.parameters()).dtype
        precision = self.precision or getattr(self.model, "xlsr_precision", "auto")
        self.dtype = pick_dtype(self.device, precision) if self.weights_dtype == torch.float32 else self.weights_dtype
        self.min_samples = self._min_samples()
        self.stats = Counter()

    # --- public -----------------------------------------------------------------------------
    def transcribe(self, audio: Any, durations: Sequence[float] | None = None, column: str = "audio") -> list[str]:
        """Text of every clip, in input order: greedy, or with the LM when there is one. ``audio``: a Dataset
        with an audio column, or a list."""
        return self.transcriptions(audio, durations, column)[self.decodings[-1]]

    def transcriptions(self, audio: Any, durations: Sequence[float] | None = None,
                       column: str = "audio") -> dict[str, list[str]]:
        """Text of every clip per decoding, ``{"greedy": [...], "lm": [...]}`` ("lm" only with an LM): the model
        runs once, and each decoding reads the same logits."""
        from tqdm.auto import tqdm

        clips = _Clips(audio, column, durations)
        n = len(clips)
        lengths = clips.lengths_s() if n else []
        order = sorted(range(n), key=lambda i: -lengths[i])  # longest first; stable, so ties keep order
        batches = [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        texts: list[dict | None] = [None] * n
        bar = tqdm(total=n, desc="transcribing", unit="clip", disable=not self.progress)
        pool = ThreadPoolExecutor(max_workers=1) if self.prefetch and len(batches) > 1 else None
        try:
            pending = pool.submit(clips.arrays, batches[0]) if pool and batches else None
            for k, indices in enumerate(batches):
                arrays = pending.result() if pending else clips.arrays(indices)
                if pool and k + 1 < len(batches):
                    pending = pool.submit(clips.arrays, batches[k + 1])
                else:
                    pending = None
                for index, text in zip(indices, self._decode_arrays(arrays)):
                    texts[index] = text
                bar.update(len(indices))
        finally:
            bar.close()
            if pool:
                pool.shutdown(wait=True, cancel_futures=True)
        return {d: [t[d] if t is not None else "" for t in texts] for d in self.decodings}

    def transcribe_arrays(self, arrays: list[np.ndarray]) -> list[str]:
        """Text of decoded 16 kHz clips (one batch), as ``transcribe``."""
        return [texts[self.decodings[-1]] for texts in self._decode_arrays(arrays)]

    def _decode_arrays(self, arrays: list[np.ndarray]) -> list[dict[str, str]]:
        """Per clip {decoding: text} (one batch): long clips in windows, the rest padded or grouped."""
        texts = [dict.fromkeys(self.decodings, "") for _ in arrays]
        short, long = [], []
        for i, array in enumerate(arrays):
            if len(array) < self.min_samples:
                self.stats["too_short"] += 1  # fewer samples than one output frame: nothing to decode
            elif self.chunk_length_s and len(array) > self._chunk_len():
                long.append(i)
            else:
                short.append(i)
        for group in self._groups([arrays[i] for i in short], short):
            frames = self._forward([arrays[i] for i in group])
            for i, text in zip(group, self.decoder(frames)):
                texts[i] = text
        for i in long:
            texts[i] = self._transcribe_long(arrays[i])
        return texts

    # --- internals ----------------------------------------------------------------------------
    def _groups(self, arrays: list[np.ndarray], indices: list[int]) -> list[list[int]]:
        """One padded batch where padding changes nothing (layer-norm encoders); else batches of equal length,
        never padded (group-norm encoders, data2vec-audio, w2v-BERT: models.padding_changes_outputs), so that a
        clip's text is what the card's code and the pipeline give for it alone."""
        if not indices:
            return []
        if self.pads:
            return [indices]
        by_length: dict[int, list[int]] = {}
        for i, array in zip(indices, arrays):
            by_length.setdefault(len(array), []).append(i)
        return list(by_length.values())

    def _forward(self, arrays: list[np.ndarray]) -> list:
        """Logits of each clip's own frames (float32 on CPU), padded frames dropped."""
        import torch

        inputs = model_inputs(self.extractor, arrays, attention_mask=self.masked)
        name = self.model.main_input_name
        values = inputs[name].to(self.device, dtype=self.weights_dtype)
        kwargs = {name: values}
        if self.masked:
            kwargs["attention_mask"] = inputs["attention_mask"].to(self.device)
        autocast = self.dtype != self.weights_dtype and self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast("cuda", dtype=self.dtype, enabled=autocast):
            logits = self.model(**kwargs).logits.float().cpu()
        lengths = output_frames(self.model, self.extractor, [len(a) for a in arrays])
        self.stats["batches"] += 1
        self.stats["padded_samples"] += int(len(arrays) * max(len(a) for a in arrays) - sum(len(a) for a in arrays))
        return [logits[j, : int(lengths[j])] for j in range(len(arrays))]

    def _min_samples(self) -> int:
        """Fewest samples that give one output frame (the model's own arithmetic)."""
        candidates = np.arange(1, 4 * self.align + 1)
        frames = output_frames(self.model, self.extractor, candidates)
        return int(candidates[np.argmax(frames >= 1)]) if (frames >= 1).any() else int(candidates[-1])

    def _chunk_len(self) -> int:
        return int(round(self.chunk_length_s * SAMPLING_RATE / self.align) * self.align)

    def _transcribe_long(self, array: np.ndarray) -> dict[str, str]:
        """Overlapping windows; each window's context frames are dropped and the rest concatenated."""
        import torch

        stride_s = self.chunk_length_s / 6 if self.stride_length_s is None else self.stride_length_s
        stride = int(round(stride_s * SAMPLING_RATE / self.align) * self.align)
        windows = [w for w in chunk_windows(len(array), self._chunk_len(), stride, stride)
                   if w[1] - w[0] >= self.min_samples]
        pieces = [array[start:end] for start, end, _, _ in windows]
        kept = []
        for first in range(0, len(pieces), self.batch_size):
            batch = list(range(first, min(len(pieces), first + self.batch_size)))
            for group in self._groups([pieces[i] for i in batch], batch):
                for i, frames in zip(group, self._forward([pieces[i] for i in group])):
                    kept.append((i, frames))
        kept.sort(key=lambda item: item[0])
        parts = []
        for i, frames in kept:
            start, end, left, right = windows[i]
            # Same arithmetic as transformers' rescale_stride, so the text equals the pipeline's.
            token_n = int(round((end - start) / self.align))
            left_n = int(round(left / (end - start) * token_n))
            right_n = int(round(right / (end - start) * token_n))
            parts.append(frames[left_n : token_n - right_n])
        self.stats["chunked_clips"] += 1
        return self.decoder([torch.cat(parts)])[0]


# ------------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------------
def utterance_errors(references: Sequence[str], predictions: Sequence[str]) -> dict[str, np.ndarray]:
    """Per utterance: word errors, reference words, character errors, reference characters (jiwer)."""
    import jiwer

    _check_pairs(references, predictions)
    words = jiwer.process_words(list(references), list(predictions))
    chars = jiwer.process_characters(list(references), list(predictions))
    return {
        "word_errors": np.array([_chunk_errors(a) for a in words.alignments], dtype=np.int64),
        "words": np.array([len(r) for r in words.references], dtype=np.int64),
        "char_errors": np.array([_chunk_errors(a) for a in chars.alignments], dtype=np.int64),
        "chars": np.array([len(r) for r in chars.references], dtype=np.int64),
    }


def _check_pairs(references: Sequence[str], predictions: Sequence[str]) -> None:
    if len(references) != len(predictions):
        raise EvaluationError(f"{len(references)} references but {len(predictions)} predictions")
    if not references:
        raise EvaluationError("Nothing to score: the test split is empty.")
    if not any(r.strip() for r in references):
        raise EvaluationError("Every reference is empty after normalization: nothing to score.")


def _chunk_errors(alignment) -> int:
    errors = 0
    for chunk in alignment:
        if chunk.type == "insert":
            errors += chunk.hyp_end_idx - chunk.hyp_start_idx
        elif chunk.type in ("delete", "substitute"):
            errors += chunk.ref_end_idx - chunk.ref_start_idx
    return errors


def bootstrap_ci(errors: np.ndarray, totals: np.ndarray, n_resamples: int = 1000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of sum(errors)/sum(totals), resampling utterances with replacement."""
    n = len(errors)
    if n == 0:
        raise EvaluationError("No utterances to bootstrap")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_resamples, n))
    denominators = totals[draws].sum(axis=1)
    rates = errors[draws].sum(axis=1) / np.maximum(denominators, 1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(rates, [tail, 100 - tail])
    return float(low), float(high)


def compute_metrics(references: Sequence[str], predictions: Sequence[str], n_resamples: int = 1000,
                    level: float = 0.95, seed: int = 0) -> dict:
    """Corpus WER and CER (jiwer's definitions), with bootstrap confidence intervals over utterances."""
    counts = utterance_errors(references, predictions)
    rates = error_rates(references, predictions)
    wer, cer = rates["wer"], rates["cer"]
    ci = {
        "level": level, "n_resamples": n_resamples, "seed": seed,
        "wer": list(bootstrap_ci(counts["word_errors"], counts["words"], n_resamples, level, seed)),
        "cer": list(bootstrap_ci(counts["char_errors"], counts["chars"], n_resamples, level, seed)),
    }
    return {
        "wer": wer, "cer": cer, "ci": ci, "n": len(references),
        "reference_words": int(counts["words"].sum()), "word_errors": int(counts["word_errors"].sum()),
        "reference_chars": int(counts["chars"].sum()), "char_errors": int(counts["char_errors"].sum()),
        "empty_references": int(sum(1 for r in references if not r.strip())),
    }


def metrics_by_decoding(metrics: dict) -> dict[str, dict]:
    """The figures of each decoding in a ``metrics.json``: greedy (the top level), and "lm" when there is one."""
    return {GREEDY: metrics} | ({LM: metrics[LM]} if metrics.get(LM) else {})


def format_percent(value: float) -> str:
    """0.2512 -> '25.12' (the seed printed WER this way)."""
    return f"{100 * value:.2f}"


# ------------------------------------------------------------------------------------------------
# Error analysis
# ------------------------------------------------------------------------------------------------
def error_analysis(ids: Sequence[str], references: Sequence[str], predictions: Sequence[str],
                   top: int = 20) -> dict:
    """Worst utterances, most frequent word substitutions/deletions/insertions, character confusions."""
    import jiwer

    _check_pairs(references, predictions)
    words = jiwer.process_words(list(references), list(predictions))
    chars = jiwer.process_characters(list(references), list(predictions))
    substitutions, deletions, insertions = Counter(), Counter(), Counter()
    for ref, hyp, alignment in zip(words.references, words.hypotheses, words.alignments):
        _count_chunks(ref, hyp, alignment, substitutions, deletions, insertions)
    confusions, char_deletions, char_insertions = Counter(), Counter(), Counter()
    for ref, hyp, alignment in zip(chars.references, chars.hypotheses, chars.alignments):
        _count_chunks(ref, hyp, alignment, confusions, char_deletions, char_insertions)

    per_utterance = []
    for i, (ref_words, alignment) in enumerate(zip(words.references, words.alignments)):
        errors = _chunk_errors(alignment)
        per_utterance.append({
            "path": str(ids[i]), "reference": references[i], "prediction": predictions[i], "errors": errors,
            "words": len(ref_words), "wer": errors / max(len(ref_words), 1),
        })
    worst = sorted(per_utterance, key=lambda r: (-r["wer"], -r["errors"], r["path"]))[:top]

    def table(counter: Counter, keys: tuple[str, ...]) -> list[dict]:
        rows = []
        for key, count in counter.most_common(top):
            key = key if isinstance(key, tuple) else (key,)
            rows.append({**dict(zip(keys, key)), "count": count})
        return rows

    return {
        "worst_utterances": worst,
        "word_substitutions": table(substitutions, ("reference", "prediction")),
        "word_deletions": table(deletions, ("word",)),
        "word_insertions": table(insertions, ("word",)),
        "char_confusions": table(confusions, ("reference", "prediction")),
        "char_deletions": table(char_deletions, ("char",)),
        "char_insertions": table(char_insertions, ("char",)),
    }


def _count_chunks(ref, hyp, alignment, substitutions: Counter, deletions: Counter, insertions: Counter) -> None:
    for chunk in alignment:
        if chunk.type == "substitute":  # a chunk may span several tokens: count them pairwise
            for r, h in zip(ref[chunk.ref_start_idx : chunk.ref_end_idx], hyp[chunk.hyp_start_idx : chunk.hyp_end_idx]):
                substitutions[(r, h)] += 1
        elif chunk.type == "delete":
            for r in ref[chunk.ref_start_idx : chunk.ref_end_idx]:
                deletions[r] += 1
        elif chunk.type == "insert":
            for h in hyp[chunk.hyp_start_idx : chunk.hyp_end_idx]:
                insertions[h] += 1


# ------------------------------------------------------------------------------------------------
# The step
# ------------------------------------------------------------------------------------------------
@dataclass
class EvaluationResult:
    metrics: dict
    errors: dict
    rows: list[dict]  # per clip: path, reference, prediction, errors, words (greedy)
    lm_rows: list[dict] | None = None  # the same with the n-gram LM's predictions; None without LM_PATH
    out_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        """One line per decoding (greedy first), and a warning when greedy predictions are empty."""
        lines = []
        for decoding, m in metrics_by_decoding(self.metrics).items():
            ci, suffix = m["ci"], METRIC_SUFFIX[decoding]
            lines.append(
                f"Test WER{suffix}: {format_percent(m['wer'])} "
                f"(95% CI {format_percent(ci['wer'][0])}-{format_percent(ci['wer'][1])})  "
                f"CER{suffix}: {format_percent(m['cer'])} "
                f"(95% CI {format_percent(ci['cer'][0])}-{format_percent(ci['cer'][1])})  on {m['n']} clips"
            )
        empty = self.metrics.get("empty_predictions", 0)
        if empty:
            lines.append(f"{empty} of {self.metrics['n']} predictions are empty: the model has not learned to emit "
                         "characters yet (train longer, or check 04_train's curves)")
        return "\n".join(lines)


def load_test_split(cfg, split: str = "test"):
    """The run's normalized split (``02_normalize/dataset``, clips as a 16 kHz ``Audio`` column); a clear error
    when missing or empty."""
    from datasets import Dataset

    folder = Path(cfg.step_dir("02_normalize")) / "dataset"
    if not folder.exists():
        raise EvaluationError(f"No normalized dataset at {folder}: run 01_load and 02_normalize first.")
    split_dir = folder / split
    if not split_dir.is_dir():
        splits = json.loads((folder / "dataset_dict.json").read_text()).get("splits", []) \
            if (folder / "dataset_dict.json").exists() else []
        raise EvaluationError(f"The run's dataset has no {split!r} split (it has {splits}).")
    empty_message = (
        f"The {split!r} split at {folder} is empty: nothing to evaluate. Check 01_load's report "
        "(filters such as MIN_DURATION_S / MAX_DURATION_S may have dropped every test clip)."
    )
    state = split_dir / "state.json"
    # datasets saves an empty split without data files and cannot load it back (IndexError): say why.
    if state.exists() and not json.loads(state.read_text()).get("_data_files"):
        raise EvaluationError(empty_message)
    dataset = Dataset.load_from_disk(str(split_dir))  # only this split: another empty split cannot break it
    if len(dataset) == 0:
        raise EvaluationError(empty_message)
    return with_audio_feature(dataset)


def run_normalizer(cfg) -> Callable[[str], str]:
    """The normalizer saved by 02_normalize, so that references are normalized exactly as in training."""
    from .normalize import load_normalizer

    return load_normalizer(cfg.run_path)


def references_of(dataset, normalizer: Callable[[str], str]) -> list[str]:
    """Normalized references: the raw sentence through the run's normalizer (``sentence`` if no raw)."""
    column = "raw_sentence" if "raw_sentence" in dataset.column_names else "sentence"
    if column not in dataset.column_names:
        raise EvaluationError(f"The test split has no sentence column (columns: {dataset.column_names})")
    return [normalizer(text or "") for text in dataset[column]]


def evaluate(model, processor, dataset, normalizer: Callable[[str], str], *, batch_size: int = 8,
             chunk_length_s: float = 20.0, lm_decoder=None, lm_path: str | Path | None = None,
             out_dir: str | Path | None = None, progress: bool = True, seed: int = 0, n_resamples: int = 1000,
             top: int = 20, extra_metrics: dict | None = None) -> EvaluationResult:
    """Transcribe ``dataset`` (audio + sentence columns), score it, and write the files to ``out_dir``.

    With ``lm_decoder`` (``build_lm_decoder(processor, lm_path)``) the same logits are also decoded with the LM:
    its figures go to ``metrics["lm"]`` (with ``lm_path``, which step 06 ships), its texts to ``lm_rows``."""
    if len(dataset) == 0:
        raise EvaluationError("The test split is empty: nothing to evaluate.")
    references = references_of(dataset, normalizer)
    ids = dataset["id"] if "id" in dataset.column_names else [str(i) for i in range(len(dataset))]
    transcriber = Transcriber(model, processor, batch_size=batch_size, chunk_length_s=chunk_length_s,
                              lm_decoder=lm_decoder, progress=progress)
    started = time.perf_counter()
    texts = transcriber.transcriptions(dataset)  # one forward pass; greedy and (with an LM) beam search
    seconds = time.perf_counter() - started
    predictions = texts[GREEDY]

    metrics = compute_metrics(references, predictions, n_resamples=n_resamples, seed=seed)
    durations = dataset["duration"] if "duration" in dataset.column_names else None
    metrics.update({
        "decoding": DECODINGS[GREEDY],
        "batch_size": batch_size, "chunk_length_s": chunk_length_s,
        "attention_mask": transcriber.masked, "padded_batches": transcriber.pads, "device": str(transcriber.device),
        "dtype": str(transcriber.dtype).replace("torch.", ""), "seconds": round(seconds, 3),
        "clips_per_second": round(len(dataset) / seconds, 3) if seconds > 0 else None,
        "audio_hours": round(sum(durations) / 3600, 4) if durations is not None else None,
        "chunked_clips": int(transcriber.stats["chunked_clips"]),
        "too_short_clips": int(transcriber.stats["too_short"]),
        "empty_predictions": sum(1 for p in predictions if not p.strip()),
        **(extra_metrics or {}),
    })
    lm_rows = None
    if LM in texts:
        metrics[LM] = {
            **compute_metrics(references, texts[LM], n_resamples=n_resamples, seed=seed),
            "decoding": DECODINGS[LM], "lm_path": str(lm_path or ""),
            "beam_search_seconds": round(transcriber.decoder.lm_seconds, 3),
            "empty_predictions": sum(1 for p in texts[LM] if not p.strip()),
        }
        lm_rows = prediction_rows(ids, references, texts[LM])
    errors = error_analysis(ids, references, predictions, top=top)
    result = EvaluationResult(metrics=metrics, errors=errors, rows=prediction_rows(ids, references, predictions),
                              lm_rows=lm_rows)
    if out_dir is not None:
        result.out_dir = Path(out_dir)
        result.files = write_outputs(result, result.out_dir)
    return result


def prediction_rows(ids: Sequence[str], references: Sequence[str], predictions: Sequence[str]) -> list[dict]:
    """Per clip: path, reference, prediction, word errors, reference words (the columns of predictions.tsv)."""
    counts = utterance_errors(references, predictions)
    return [
        {"path": str(ids[i]), "reference": references[i], "prediction": predictions[i],
         "errors": int(counts["word_errors"][i]), "words": int(counts["words"][i])}
        for i in range(len(references))
    ]


def run_evaluation(cfg, dataset=None, normalizer=None, progress: bool = True) -> EvaluationResult:
    """Step 05 for a run: model (EVAL_MODEL or 04_train/model), the run's test split and normalizer."""
    model_path = resolve_model_path(cfg)
    model, processor = load_model(model_path, precision=getattr(cfg, "precision", "auto"))
    lm_decoder = build_lm_decoder(processor, cfg.lm_path)
    dataset = load_test_split(cfg) if dataset is None else dataset
    normalizer = run_normalizer(cfg) if normalizer is None else normalizer
    return evaluate(
        model, processor, dataset, normalizer, batch_size=cfg.eval_batch_size,
        chunk_length_s=cfg.chunk_length_s, lm_decoder=lm_decoder, lm_path=cfg.lm_path, out_dir=cfg.step_dir(STEP),
        progress=progress, seed=cfg.seed, extra_metrics={"model": model_path, "split": "test"},
    )


def write_outputs(result: EvaluationResult, out_dir: Path) -> dict[str, Path]:
    """``predictions.tsv`` (+ ``predictions_lm.tsv`` with an LM), ``metrics.json``, ``errors.json`` (written
    atomically). A ``predictions_lm.tsv`` of an earlier run with an LM is removed when this one has none, and so
    is a comparison written with an earlier evaluation (the card must not show it next to these numbers)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / COMPARISON_FILE).unlink(missing_ok=True)
    files = {"metrics": out_dir / METRICS_FILE, "errors": out_dir / ERRORS_FILE}
    for decoding, rows in ((GREEDY, result.rows), (LM, result.lm_rows)):
        path = out_dir / PREDICTIONS_FILES[decoding]
        if rows is None:
            path.unlink(missing_ok=True)
            continue
        tmp = path.with_suffix(".tsv.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["path", "reference", "prediction", "errors", "words"],
                                    delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(path)
        files[path.stem] = path  # "predictions", "predictions_lm"
    for key, payload in (("metrics", result.metrics), ("errors", result.errors)):
        tmp = files[key].with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(files[key])
    return files


def read_predictions(path: str | Path) -> list[dict]:
    """Rows of a ``predictions.tsv`` (errors and words as int)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        row["errors"], row["words"] = int(row["errors"]), int(row["words"])
    return rows


def read_transcriptions(out_dir: str | Path) -> dict[str, dict[str, str]]:
    """Step 05's text of every clip per decoding it reported: ``{"greedy": {path: text}, "lm": {...}}``."""
    out = {}
    for decoding, name in PREDICTIONS_FILES.items():
        if (Path(out_dir) / name).exists():
            out[decoding] = {row["path"]: row["prediction"] for row in read_predictions(Path(out_dir) / name)}
    return out


# ------------------------------------------------------------------------------------------------
# Notebook helpers
# ------------------------------------------------------------------------------------------------
def metrics_table(metrics: dict):
    """WER and CER with their confidence intervals (and with the n-gram LM, when step 05 had one)."""
    import pandas as pd

    rows = []
    for decoding, m in metrics_by_decoding(metrics).items():
        ci, suffix = m["ci"], METRIC_SUFFIX[decoding]
        interval = f"{int(ci['level'] * 100)}% CI (%)"
        for key, units, total, unit in (("wer", "word_errors", "reference_words", "words"),
                                        ("cer", "char_errors", "reference_chars", "characters")):
            rows.append({"metric": key.upper() + suffix, "value (%)": format_percent(m[key]),
                         interval: f"{format_percent(ci[key][0])} – {format_percent(ci[key][1])}",
                         "errors / reference units": f"{m[units]} / {m[total]} {unit}"})
    return pd.DataFrame(rows).set_index("metric")


def decoding_differences(result: EvaluationResult):
    """Every clip whose text the n-gram LM changed, most improved first: reference, greedy, with the LM, and the
    word errors of each (a DataFrame; empty without an LM)."""
    import pandas as pd

    columns = ["path", "reference", "greedy", "with the LM", "errors greedy", "errors with the LM"]
    rows = [
        {"path": g["path"], "reference": g["reference"], "greedy": g["prediction"], "with the LM": l["prediction"],
         "errors greedy": g["errors"], "errors with the LM": l["errors"]}
        for g, l in zip(result.rows, result.lm_rows or []) if g["prediction"] != l["prediction"]
    ]
    rows.sort(key=lambda r: r["errors with the LM"] - r["errors greedy"])
    return pd.DataFrame(rows, columns=columns)


def error_tables(errors: dict) -> dict:
    """Each list of ``errors.json`` as a DataFrame (empty tables keep their columns)."""
    import pandas as pd

    columns = {
        "worst_utterances": ["path", "reference", "prediction", "errors", "words", "wer"],
        "word_substitutions": ["reference", "prediction", "count"], "word_deletions": ["word", "count"],
        "word_insertions": ["word", "count"], "char_confusions": ["reference", "prediction", "count"],
        "char_deletions": ["char", "count"], "char_insertions": ["char", "count"],
    }
    return {name: pd.DataFrame(errors.get(name, []), columns=cols) for name, cols in columns.items()}


def plot_errors(rows: list[dict], durations: Sequence[float] | None = None):
    """Left: per-utterance WER histogram. Right: WER against clip duration (or reference length)."""
    import matplotlib.pyplot as plt

    wers = [r["errors"] / max(r["words"], 1) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.hist(np.clip(wers, 0, 2), bins=20, color="tab:blue")
    left.set_xlabel("utterance WER (clipped at 2)")
    left.set_ylabel("clips")
    x = list(durations) if durations is not None else [r["words"] for r in rows]
    right.scatter(x, wers, s=12, alpha=0.7, color="tab:orange")
    right.set_xlabel("duration (s)" if durations is not None else "reference words")
    right.set_ylabel("utterance WER")
    fig.tight_layout()
    return fig


def show_predictions(rows: list[dict], dataset=None, n: int = 10, order: str = "worst") -> list[dict]:
    """Predictions next to references, word errors marked (``widgets.prediction_browser``)."""
    from .widgets import prediction_browser

    return prediction_browser(rows, dataset=dataset, n=n, order=order)
