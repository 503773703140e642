"""Audio for training: decode + resample to 16 kHz, training rows, model inputs, frame lengths.

Nothing decoded is stored. Steps 01 and 02 keep each clip as its path (the ``audio`` column, a string), or, for a
``hub:`` source, as a reference to its row in datasets' cache (:mod:`xlsr_helpers.arrow_clips`), and
training reads the clips lazily: ``train/data.py``'s ``training_rows`` makes the rows (clip, label ids, length in samples from
the ``duration`` metadata, no decoding), and its collator decodes each clip of a batch with
:func:`decode_audio` in the data-loader workers. torchcodec's ``AudioDecoder(source, sample_rate=16000)``
lets FFmpeg decode and resample in one pass (~5 ms for a 4 s mp3 on one core, ~200 clips/s per worker).
The run folder therefore does not grow with the hours of a language, and the first training step does not wait
for a decode pass over the corpus (issue 14: 10,000 clips made 1.2 GB of decoded copies before).

Every family turns the 16 kHz audio into its own input in the collator (:func:`model_inputs`: normalized
``input_values`` for wav2vec2-style encoders, log-mel ``input_features`` for w2v-BERT).

Frame arithmetic (:func:`output_frames`) is the model's own: samples -> the feature extractor's frames ->
the model's ``_get_feat_extract_output_lengths``; nothing here assumes 320 samples per frame.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .arrow_clips import PREFIX as REFERENCE_PREFIX
from .arrow_clips import clip_source
from .constants import SAMPLING_RATE

AUDIO_COLUMN = "audio"  # the clip: a path (string column) as steps 01/02 store it, or an Audio feature
LENGTH_COLUMN = "input_length"
SAMPLES_COLUMN = "samples"
INT16_SCALE = 32767.0


# --- decoding ------------------------------------------------------------------------------------
def decode_audio(item: Any, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """One clip as mono float32 at ``sampling_rate``.

    ``item`` may be a path, a reference to a row of datasets' cache (:func:`~xlsr_helpers.arrow_clips.clip_source`),
    raw bytes, a datasets ``Audio`` value undecoded (``{"bytes", "path"}``), decoded (a torchcodec ``AudioDecoder``)
    or in the older ``{"array", "sampling_rate"}`` form.
    """
    from torchcodec.decoders import AudioDecoder

    decoded = decoded_samples(item, sampling_rate)
    if decoded is not None:
        array, rate = decoded
        return array if rate == sampling_rate else _resample(array, rate, sampling_rate)
    if isinstance(item, dict):
        source = item.get("bytes") or item.get("path")
    else:
        source = item
    if source is None or source == "":
        raise ValueError("audio value has neither bytes nor a path")
    source = clip_source(source)
    if isinstance(source, (str, os.PathLike)):
        source = str(source)
        if not os.path.exists(source):
            raise FileNotFoundError(f"audio file not found: {source}")
    decoder = AudioDecoder(source, sample_rate=sampling_rate, num_channels=1)
    return decoder.get_all_samples().data[0].numpy()


def audio_array(value: Any, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """A clip in any form as mono float32 at ``sampling_rate``: samples already in memory at that rate (a numpy
    array or torch tensor, channels averaged: ``(channels, samples)``, or ``(samples, channels)`` when wider),
    or anything :func:`decode_audio` reads (step 05's transcriber and the upload check take either)."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        return decode_audio(value, sampling_rate)
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 2:
        array = array.mean(axis=0 if array.shape[0] <= array.shape[1] else 1)
    return np.ascontiguousarray(array.reshape(-1))


def decoded_samples(item: Any, default_rate: int = SAMPLING_RATE) -> tuple[np.ndarray, int] | None:
    """(mono float32 samples, their sampling rate) of an audio value that datasets has decoded already: a torchcodec
    ``AudioDecoder`` (datasets >= 4; at the column's rate) or the older ``{"array", "sampling_rate"}`` form
    (``default_rate`` when it names none). None for anything else (a path, bytes): :func:`decode_audio` decodes those.
    """
    if isinstance(item, dict) and "array" in item:
        array = np.asarray(item["array"], dtype=np.float32)
        if array.ndim > 1:
            array = array.mean(axis=0)
        return array, int(item.get("sampling_rate", default_rate))
    if hasattr(item, "get_all_samples"):
        samples = item.get_all_samples()
        return samples.data.mean(dim=0).numpy().astype(np.float32, copy=False), int(samples.sample_rate)
    return None


def _resample(array: np.ndarray, orig: int, target: int) -> np.ndarray:
    import torch
    import torchaudio.functional as F

    return F.resample(torch.from_numpy(np.ascontiguousarray(array)), orig, target).numpy()


def to_int16(array: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] as int16 (clipped): half the bytes of float32, the resolution of the source."""
    return np.clip(np.rint(np.asarray(array, dtype=np.float32) * INT16_SCALE), -INT16_SCALE, INT16_SCALE).astype(np.int16)


def from_int16(samples) -> np.ndarray:
    return np.asarray(samples, dtype=np.float32) / INT16_SCALE


# --- clips stored as paths, read lazily --------------------------------------------------------------
def stores_paths(dataset) -> bool:
    """True when the ``audio`` column holds strings: file paths, or references to rows of datasets' cache (what steps
    01 and 02 save by default; :func:`decode_audio` reads either)."""
    from datasets import Value

    feature = dataset.features.get(AUDIO_COLUMN)
    return isinstance(feature, Value) and feature.dtype in ("string", "large_string")


def dataset_from_columns(columns: dict[str, list], features):
    """A datasets ``Dataset`` from plain columns, converted by Arrow at once: ``Dataset.from_dict(features=...)``
    encodes row by row (3.5 s for 100,000 rows of paths and sentences, against 0.2 s here). Not for an ``Audio``
    column holding file paths, which only datasets' encoding turns into audio."""
    import pyarrow as pa
    from datasets import Dataset
    from datasets.table import InMemoryTable

    return Dataset(InMemoryTable(pa.Table.from_pydict(columns, schema=features.arrow_schema)))


def with_audio_feature(dataset):
    """The dataset (or DatasetDict) with a path column turned into a datasets ``Audio`` column at 16 kHz, for
    code that plays or decodes clips (widgets, evaluation); an ``Audio`` column is left as it is, and so is a column
    that refers to rows of datasets' cache (datasets cannot open those: :func:`audio_array` reads them)."""
    from datasets import Audio, DatasetDict

    if isinstance(dataset, DatasetDict):
        return DatasetDict({name: with_audio_feature(split) for name, split in dataset.items()})
    if AUDIO_COLUMN in dataset.column_names and stores_paths(dataset) and not holds_references(dataset):
        return dataset.cast_column(AUDIO_COLUMN, Audio(sampling_rate=SAMPLING_RATE))
    return dataset


def holds_references(dataset) -> bool:
    """Whether a string ``audio`` column refers to any row of datasets' cache (one Arrow pass over the column)."""
    import pyarrow.compute as pc

    column = dataset.data.column(AUDIO_COLUMN)
    return len(column) > 0 and bool(pc.any(pc.starts_with(column, REFERENCE_PREFIX)).as_py())


def header_seconds(source) -> float:
    """A clip's duration from its container header (no decoding; 0.0 when the header does not say)."""
    from torchcodec.decoders import AudioDecoder

    metadata = AudioDecoder(clip_source(source)).metadata
    return float(metadata.duration_seconds or metadata.duration_seconds_from_header or 0.0)


# --- model inputs and frame lengths --------------------------------------------------------------
def model_inputs(extractor, arrays: list[np.ndarray], attention_mask: bool | None = None):
    """A padded batch of the model's main input (``input_values`` or ``input_features``) from 16 kHz clips,
    each normalized on its own samples, with an attention mask when the extractor gives one.

    Extractors that return a mask normalize each clip over its own (unpadded) part; a wav2vec2 extractor
    without a mask (group-norm encoders) would normalize over the zero padding too, so its clips are
    normalized one by one before they are padded.
    """
    mask = bool(extractor.return_attention_mask) if attention_mask is None else attention_mask
    if mask:
        return extractor(arrays, sampling_rate=SAMPLING_RATE, padding=True, return_attention_mask=True,
                         return_tensors="pt")
    name = extractor.model_input_names[0]
    features = [extractor(array, sampling_rate=SAMPLING_RATE)[name][0] for array in arrays]
    return extractor.pad({name: features}, padding=True, return_attention_mask=False, return_tensors="pt")


def feature_frames(extractor, input_lengths) -> np.ndarray:
    """Input frames the feature extractor makes of clips of ``input_lengths`` samples.

    wav2vec2-style extractors pass samples through (one per sample). SeamlessM4T's (w2v-BERT 2.0) makes a
    25 ms / 10 ms filterbank (400-sample windows, 160-sample hop, no centering) and stacks ``stride`` frames;
    a last, half-filled group is padding by its attention mask: floor(frames / stride) valid frames (counting
    it made decoding read one frame of padding, whose text changed with the batch). tests/test_audio.py
    checks this against the extractor's attention mask.
    """
    lengths = np.asarray(input_lengths, dtype=np.int64)
    if extractor is None or extractor.model_input_names[0] == "input_values":
        return lengths
    if type(extractor).__name__ == "SeamlessM4TFeatureExtractor":
        frames = np.where(lengths >= 400, 1 + (lengths - 400) // 160, 0)
        stride = int(getattr(extractor, "stride", 1))
        return frames // stride
    if type(extractor).__name__ == "ParakeetFeatureExtractor":
        # its attention mask (transformers 5.25, measured on clips of 400 to 24,000 samples): one valid frame per
        # whole hop of 160 samples (the centred STFT's extra frame is padding)
        return lengths // int(extractor.hop_length)
    raise ValueError(f"Unknown feature extractor {type(extractor).__name__}: its frame arithmetic is not known here.")


def output_frames(model, extractor, input_lengths) -> np.ndarray:
    """Number of CTC output frames for clips of ``input_lengths`` samples, by the model's own arithmetic
    (the extractor's frames, then the model's ``_get_feat_extract_output_lengths``, or
    ``_get_subsampling_output_length`` for Omnilingual ASR and Parakeet)."""
    import torch

    frames = torch.as_tensor(feature_frames(extractor, input_lengths))
    lengths_of = getattr(model, "_get_feat_extract_output_lengths", None) or model._get_subsampling_output_length
    with torch.no_grad():
        out = lengths_of(frames)
    return np.maximum(np.asarray(out, dtype=np.int64), 0)


def samples_per_frame(model, extractor, seconds: float = 60.0) -> int:
    """Audio samples per output frame (320 for XLSR, 640 for w2v-BERT with its adapter), measured by
    :func:`output_frames` on a long clip."""
    n = int(seconds * SAMPLING_RATE)
    return int(round(n / max(1, int(output_frames(model, extractor, [n])[0]))))


def ctc_min_frames(labels) -> int:
    """Frames CTC needs for a label sequence: one per label plus a blank between each adjacent repeat."""
    labels = list(labels)
    repeats = sum(1 for a, b in zip(labels, labels[1:]) if a == b)
    return len(labels) + repeats
