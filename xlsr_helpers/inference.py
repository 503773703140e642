"""Inference with a CTC checkpoint: loading it, its device and precision, and the batch-invariant transcriber.

What the seed got wrong, and what the :class:`Transcriber` does instead:

* The seed padded batches in dataset order and decoded the padded frames too, so a clip's text (and the
  WER) changed with the batch size. Here every clip is decoded from its own frames only, and the
  attention mask is used exactly as the architecture needs it:

  - layer-norm feature encoders (``feat_extract_norm="layer"``: XLSR-53, XLS-R, large-lv60 ...) are
    padded and given the attention mask; padding then changes nothing but float rounding (~1e-7 on the
    logits), so the text is the same for batch sizes 1, 8 and 32 (tested);
  - group-norm feature encoders (``feat_extract_norm="group"``: wav2vec2-base) normalize over time, so
    *any* padding changes the result, with or without a mask. They are never padded: a batch holds only
    clips of exactly the same length (in practice batch size 1). Exact, slower. Which models these are is
    ``models.padding_changes_outputs`` (data2vec-audio and w2v-BERT too).
* Clips are batched longest first (least padding, and an out-of-memory error shows up at once).
* Clips longer than ``chunk_length_s`` are transcribed in overlapping windows (chunk and stride, the
  algorithm of transformers' ASR pipeline), so one very long clip cannot exhaust memory.
* Only the text of each clip is kept, never the logits of the whole split.
* With an n-gram LM (``lm.build_lm_decoder``) the same logits are decoded both ways: the model runs once.

The weights stay float32; on CUDA the model computes under autocast in the precision of training, chosen by
``precision.resolve_precision`` (the one rule: bf16 only where the GPU has it natively).
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .audio import audio_array, model_inputs, output_frames, samples_per_frame
from .constants import SAMPLING_RATE
from .ctc import blank_id, greedy_decode
from .metrics import EvaluationError
from .models import load_ctc_model, padding_changes_outputs, processor_class
from .precision import PrecisionError, resolve_precision, torch_dtype

# The decodings: greedy always, beam search with an n-gram LM when there is one. The names key
# Transcriber.transcriptions(), and step 05's metrics.json (its "lm" section) and predictions files.
GREEDY, LM = "greedy", "lm"
# Files that say how raw audio and text become model inputs (one of each group must exist).
FEATURE_EXTRACTOR_FILES = ("preprocessor_config.json", "processor_config.json")
TOKENIZER_FILES = ("vocab.json", "tokenizer.json")
MASK_NAMES = ("attention_mask", "padding_mask")  # what a feature extractor calls the mask of a padded batch


# ------------------------------------------------------------------------------------------------
# Model, device, precision
# ------------------------------------------------------------------------------------------------
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
    """The dtype the model computes in: the precision of training on CUDA (``precision.resolve_precision``:
    "auto" is bf16 where the GPU has it natively, else fp16), applied by autocast over float32 weights; float32
    elsewhere (a model trained in fp16 or bf16 on a GPU is evaluated in float32 on a CPU, with a warning)."""
    import torch

    device_type = torch.device(device).type
    precision = (precision or "auto").lower()
    if device_type != "cuda" and precision in {"fp16", "bf16"}:
        warnings.warn(f"precision={precision} is only used on CUDA; evaluating in float32 on {device}.")
        precision = "fp32"
    try:
        return torch_dtype(resolve_precision(precision, device_type))
    except PrecisionError as error:
        raise EvaluationError(str(error)) from error


def plain_processor(path_or_id: str | Path):
    """The processor of a checkpoint from its feature extractor and tokenizer alone: for one that ships a
    ``Wav2Vec2ProcessorWithLM`` while pyctcdecode/kenlm are not installed (greedy decoding needs neither)."""
    from transformers import AutoFeatureExtractor, AutoTokenizer

    extractor = AutoFeatureExtractor.from_pretrained(str(path_or_id))
    tokenizer = AutoTokenizer.from_pretrained(str(path_or_id))
    return processor_class(extractor)(feature_extractor=extractor, tokenizer=tokenizer)


def load_model(path_or_id: str | Path, device: str | None = None, precision: str = "auto",
               target_lang: str | None = None):
    """``(model, processor)`` of a CTC checkpoint, in eval mode on the chosen device, its weights in float32
    (the Transcriber computes in the precision of training under autocast: a blanket ``.half()`` of weights
    trained in bf16 or fp32 can overflow where autocast keeps the sensitive operations in float32).
    ``target_lang``: an MMS adapter model's language (its adapter and its vocabulary). A processor that needs the
    n-gram LM packages without them is replaced by the plain one (:func:`plain_processor`): greedy decoding."""
    from transformers import AutoModelForCTC, AutoProcessor

    check_model_folder(path_or_id)
    device = pick_device(device)
    pick_dtype(device, precision)  # refuses an unknown precision before anything is loaded
    try:
        processor = AutoProcessor.from_pretrained(str(path_or_id))
    except (ImportError, AttributeError):  # Wav2Vec2ProcessorWithLM: without pyctcdecode and kenlm an ImportError;
        # with them, transformers 5.25's from_pretrained of it fails (AttributeError: _get_arguments_from_pretrained)
        processor = plain_processor(path_or_id)
    except (OSError, ValueError, TypeError) as error:
        raise EvaluationError(f"Could not load a processor from {path_or_id}: {error}") from error
    if not hasattr(processor, "tokenizer") or not hasattr(processor, "feature_extractor"):
        raise EvaluationError(
            f"{path_or_id} has no complete processor (feature extractor + tokenizer); found "
            f"{type(processor).__name__}. Save the processor (processor.save_pretrained) beside the model."
        )
    if target_lang:
        try:
            processor.tokenizer.set_target_lang(target_lang)
        except (AttributeError, ValueError) as error:
            raise EvaluationError(f"{path_or_id}'s tokenizer has no vocabulary for {target_lang!r}: {error}") from error
        model = AutoModelForCTC.from_pretrained(str(path_or_id), target_lang=target_lang, ignore_mismatched_sizes=True)
    else:
        model = load_ctc_model(path_or_id)  # an adapter-only folder (MMS adapters): its base + the adapter
    model.to(device=device).eval()
    model.xlsr_precision = precision  # the Transcriber's default: what the caller asked for here
    return model, processor


def uses_attention_mask(model) -> bool:
    """True for layer-norm feature encoders (pad + mask is exact); False for group-norm ones (never pad). Whether
    padding changes a clip's logits even with the mask is ``models.padding_changes_outputs``."""
    return getattr(model.config, "feat_extract_norm", "layer") != "group"


# ------------------------------------------------------------------------------------------------
# Clips
# ------------------------------------------------------------------------------------------------
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
# Decoding and the transcriber
# ------------------------------------------------------------------------------------------------
class _Decoder:
    """Turns per-clip logits (only the clip's own frames) into text: greedy, and with the LM when there is one."""

    def __init__(self, processor, lm_decoder=None, blank: int | None = None):
        self.processor = processor
        self.blank = blank
        self.lm = lm_decoder
        self.lm_seconds = 0.0

    def __call__(self, frames: list) -> list[dict[str, str]]:
        """``frames``: per clip a (T, V) float32 tensor of logits. Per clip: {decoding: text}."""
        greedy = greedy_decode(self.processor.tokenizer, [f.argmax(-1).numpy() for f in frames], self.blank)
        if self.lm is None:
            return [{GREEDY: text} for text in greedy]
        started = time.perf_counter()
        # The raw logits, as the card's code passes them to pyctcdecode (which normalizes them).
        lm = [self.lm.decode(f.numpy()) for f in frames]
        self.lm_seconds += time.perf_counter() - started
        return [{GREEDY: g, LM: t} for g, t in zip(greedy, lm)]


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
        self.decoder = _Decoder(self.processor, self.lm_decoder, blank_id(self.processor.tokenizer, self.model.config))
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
        if self.masked:  # attention_mask, or Omnilingual ASR's padding_mask: what the extractor calls it
            kwargs.update({key: inputs[key].to(self.device) for key in MASK_NAMES if key in inputs})
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

