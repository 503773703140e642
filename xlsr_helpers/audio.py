"""Audio for training: decode + resample to 16 kHz, labels, model inputs, frame lengths.

The fast path decodes each clip once with torchcodec (``AudioDecoder(source, sample_rate=16000)``), which
lets FFmpeg decode and resample in one pass. The result of every split is written by ``Dataset.map``
(batched, clips decoded in threads, ``num_proc`` worker processes, a progress bar) as Arrow files in
``<RUN_DIR>/04_train/prepared/``: memory stays bounded by the batch size whatever the size of the language,
and a second run (or a resumed one) reuses the files when neither the dataset nor the tokenizer changed.

What is stored is the 16 kHz audio itself (int16), not a model's input: every family turns it into its own
input in the collator (:func:`model_inputs`: normalized ``input_values`` for wav2vec2-style encoders,
log-mel ``input_features`` for w2v-BERT), so a change of MODEL can never reuse another family's features,
and one prepared copy serves every model. Measured (notes of issue 9): int16 audio is 115 MB per hour of
audio for every family; stored features would be 230 MB/h for wav2vec2 (float32 samples) and 115 MB/h
for w2v-BERT (160 floats per 20 ms), and differ per family. The price is computing the features once per
epoch: ~25 ms per batch of 16 five-second clips for wav2vec2, ~300 ms for w2v-BERT's filterbank (numpy;
a data-loader worker hides it behind the GPU step).

Columns of a prepared split: ``id``, ``samples`` (int16, 16 kHz), ``labels`` (token ids), ``input_length``
(samples; the length column of length-grouped batching) and ``problem`` ("" when the row is usable, else why
not: the clip could not be decoded, or the transcript is empty).

Frame arithmetic (:func:`output_frames`) is the model's own: samples -> the feature extractor's frames ->
the model's ``_get_feat_extract_output_lengths``; nothing here assumes 320 samples per frame.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .config import SAMPLING_RATE

PREPARED_VERSION = 2  # bump when the content of prepared files changes (2: int16 audio instead of features)
MANIFEST = "manifest.json"
AUDIO_COLUMN = "audio"  # the clip: a path (string column) as steps 01/02 store it, or an Audio feature
LENGTH_COLUMN = "input_length"
SAMPLES_COLUMN = "samples"
INT16_SCALE = 32767.0


# --- decoding ------------------------------------------------------------------------------------
def decode_audio(item: Any, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """One clip as mono float32 at ``sampling_rate``.

    ``item`` may be a path, raw bytes, a datasets ``Audio`` value undecoded (``{"bytes", "path"}``),
    decoded (a torchcodec ``AudioDecoder``) or in the older ``{"array", "sampling_rate"}`` form.
    """
    from torchcodec.decoders import AudioDecoder

    if isinstance(item, dict) and "array" in item:
        array = np.asarray(item["array"], dtype=np.float32)
        if array.ndim > 1:
            array = array.mean(axis=0)
        if item.get("sampling_rate", sampling_rate) != sampling_rate:
            return _resample(array, int(item["sampling_rate"]), sampling_rate)
        return array
    if hasattr(item, "get_all_samples"):  # datasets' decoded AudioDecoder (already at the column's rate)
        samples = item.get_all_samples()
        array = samples.data.mean(dim=0).numpy().astype(np.float32, copy=False)
        if samples.sample_rate != sampling_rate:
            return _resample(array, int(samples.sample_rate), sampling_rate)
        return array
    if isinstance(item, dict):
        source = item.get("bytes") or item.get("path")
    else:
        source = item
    if source is None or source == "":
        raise ValueError("audio value has neither bytes nor a path")
    if isinstance(source, (str, os.PathLike)):
        source = str(source)
        if not os.path.exists(source):
            raise FileNotFoundError(f"audio file not found: {source}")
    decoder = AudioDecoder(source, sample_rate=sampling_rate, num_channels=1)
    return decoder.get_all_samples().data[0].numpy()


def _resample(array: np.ndarray, orig: int, target: int) -> np.ndarray:
    import torch
    import torchaudio.functional as F

    return F.resample(torch.from_numpy(np.ascontiguousarray(array)), orig, target).numpy()


# --- one batch -----------------------------------------------------------------------------------
def _decode_or_problem(item: Any, sampling_rate: int) -> tuple[np.ndarray | None, str]:
    """(samples, "") or (None, why): a broken clip must not stop a 100-hour preparation."""
    try:
        array = decode_audio(item, sampling_rate)
        if array.size == 0:
            raise ValueError("no samples")
        return array, ""
    except Exception as error:
        return None, f"undecodable: {type(error).__name__}: {str(error)[:200]}"


def to_int16(array: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] as int16 (clipped): half the bytes of float32, the resolution of the source."""
    return np.clip(np.rint(np.asarray(array, dtype=np.float32) * INT16_SCALE), -INT16_SCALE, INT16_SCALE).astype(np.int16)


def from_int16(samples) -> np.ndarray:
    return np.asarray(samples, dtype=np.float32) / INT16_SCALE


def prepare_batch(batch: dict[str, list], tokenizer, audio_column: str = "audio", text_column: str = "sentence",
                  sampling_rate: int = SAMPLING_RATE, decode_threads: int = 1) -> dict[str, list]:
    """``Dataset.map(batched=True)`` function: audio + text -> samples, labels, input_length, problem.

    ``decode_threads`` > 1 decodes the batch's clips in that many threads (FFmpeg runs without the GIL).
    """
    n = len(batch[audio_column])
    decode = functools.partial(_decode_or_problem, sampling_rate=sampling_rate)
    if decode_threads > 1 and n > 1:
        with ThreadPoolExecutor(max_workers=min(decode_threads, n)) as pool:
            decoded = list(pool.map(decode, batch[audio_column]))
    else:
        decoded = [decode(item) for item in batch[audio_column]]
    samples = [to_int16(array) if array is not None else np.zeros(0, dtype=np.int16) for array, _ in decoded]
    problems = [problem for _, problem in decoded]
    texts = [t if isinstance(t, str) else "" for t in batch[text_column]]
    labels = tokenizer(texts).input_ids
    for i, text in enumerate(texts):
        if not problems[i] and not text.strip():
            problems[i] = "empty transcript"
    return {
        SAMPLES_COLUMN: samples,
        "labels": [list(map(int, l)) for l in labels],
        LENGTH_COLUMN: [int(v.shape[0]) for v in samples],
        "problem": problems,
    }


def prepared_features():
    from datasets import Features, List, Value

    return Features({
        "id": Value("string"),
        SAMPLES_COLUMN: List(Value("int16")),
        "labels": List(Value("int32")),
        LENGTH_COLUMN: Value("int32"),
        "problem": Value("string"),
    })


# --- a whole DatasetDict, cached in the run folder -----------------------------------------------
def tokenizer_fingerprint(tokenizer) -> str:
    """What the prepared labels depend on (the audio depends on nothing but the sampling rate)."""
    state = {
        "vocab": tokenizer.get_vocab(),
        "tokenizer": {k: str(getattr(tokenizer, k, None)) for k in
                      ("pad_token", "unk_token", "word_delimiter_token", "do_lower_case", "target_lang")},
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cpu_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


def preparation_workers(num_proc: int, rows: int, batch_size: int) -> tuple[int, int]:
    """(processes, decode threads per process) for preparing ``rows`` clips.

    Decoding runs in threads (FFmpeg works without the GIL) and a worker process costs seconds to start, so
    ``num_proc=0`` (auto) uses one process per 4 cores. Measured on 2 cores, 400 clips: 1 process x 2
    threads 424 clips/s, 2 processes x 1 thread 357, 1 x 1 314.
    """
    cores = cpu_cores()
    processes = num_proc if num_proc > 0 else max(1, cores // 4)
    processes = max(1, min(processes, rows // batch_size))
    return processes, max(2, cores // processes)


def prepare_dataset(dataset_dict, tokenizer, cache_dir: str | Path, num_proc: int = 0,
                    splits: Iterable[str] | None = None, audio_column: str = "audio",
                    text_column: str = "sentence", batch_size: int = 32, progress: bool = True,
                    sampling_rate: int = SAMPLING_RATE, log=print):
    """Prepare every split (or ``splits``) of ``dataset_dict``; reuse ``cache_dir`` when still valid.

    Returns a ``DatasetDict`` of memory-mapped Arrow files under ``cache_dir`` (numpy format).
    """
    import datasets
    from datasets import Audio, DatasetDict

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = cache_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    proc_key = tokenizer_fingerprint(tokenizer)
    result = {}
    bars_were_on = datasets.is_progress_bar_enabled()
    if not progress and bars_were_on:
        datasets.disable_progress_bars()
    try:
        for split in (list(splits) if splits is not None else list(dataset_dict.keys())):
            source = dataset_dict[split]
            for column in (audio_column, text_column):
                if column not in source.column_names:
                    raise KeyError(f"split {split!r} has no {column!r} column (columns: {source.column_names})")
            key = hashlib.sha256(json.dumps([PREPARED_VERSION, source._fingerprint, len(source), proc_key,
                                             audio_column, text_column, sampling_rate]).encode()).hexdigest()[:20]
            entry = manifest.get(split)
            if entry and entry.get("key") == key and all((cache_dir / f).exists() for f in entry["files"]):
                log(f"{split}: reusing prepared audio in {cache_dir} ({entry['rows']} rows)")
                result[split] = _open(cache_dir, entry["files"])
                continue
            if entry:  # stale: the dataset or the tokenizer changed
                for name in entry.get("files", []):
                    (cache_dir / name).unlink(missing_ok=True)
                manifest.pop(split, None)
                _write_manifest(manifest_path, manifest)
            if isinstance(source.features.get(audio_column), Audio):
                source = source.cast_column(audio_column, Audio(decode=False))
            if "id" not in source.column_names:
                source = source.add_column("id", [str(i) for i in range(len(source))])
            workers, decode_threads = preparation_workers(num_proc, len(source), batch_size)
            prepared = source.map(
                prepare_batch, batched=True, batch_size=batch_size, writer_batch_size=batch_size,
                fn_kwargs=dict(tokenizer=tokenizer, audio_column=audio_column, text_column=text_column,
                               sampling_rate=sampling_rate, decode_threads=decode_threads),
                remove_columns=[c for c in source.column_names if c != "id"],
                features=prepared_features(), num_proc=workers if workers > 1 else None,
                cache_file_name=str(cache_dir / f"{split}.arrow"), load_from_cache_file=False,
                desc=f"Preparing {split} audio",
            )
            files = [Path(f["filename"]).name for f in prepared.cache_files]
            manifest[split] = {"key": key, "files": files, "rows": len(prepared)}
            _write_manifest(manifest_path, manifest)
            result[split] = prepared.with_format("numpy")
    finally:
        if not progress and bars_were_on:
            datasets.enable_progress_bars()
    return DatasetDict(result)


def _open(cache_dir: Path, files: list[str]):
    from datasets import Dataset, concatenate_datasets

    parts = [Dataset.from_file(str(cache_dir / f)) for f in files]
    dataset = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    return dataset.with_format("numpy")


def _write_manifest(path: Path, manifest: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, path)


def clear_prepared(cache_dir: str | Path) -> None:
    shutil.rmtree(cache_dir, ignore_errors=True)


# --- clips stored as paths, read lazily --------------------------------------------------------------
def stores_paths(dataset) -> bool:
    """True when the ``audio`` column holds file paths (strings): what steps 01 and 02 save by default."""
    from datasets import Value

    feature = dataset.features.get(AUDIO_COLUMN)
    return isinstance(feature, Value) and feature.dtype in ("string", "large_string")


def with_audio_feature(dataset):
    """The dataset (or DatasetDict) with a path column turned into a datasets ``Audio`` column at 16 kHz, for
    code that plays or decodes clips (widgets, evaluation); an ``Audio`` column is left as it is."""
    from datasets import Audio, DatasetDict

    if isinstance(dataset, DatasetDict):
        return DatasetDict({name: with_audio_feature(split) for name, split in dataset.items()})
    if AUDIO_COLUMN in dataset.column_names and stores_paths(dataset):
        return dataset.cast_column(AUDIO_COLUMN, Audio(sampling_rate=SAMPLING_RATE))
    return dataset


def header_seconds(source) -> float:
    """A clip's duration from its container header (no decoding; 0.0 when the header does not say)."""
    from torchcodec.decoders import AudioDecoder

    metadata = AudioDecoder(source).metadata
    return float(metadata.duration_seconds or metadata.duration_seconds_from_header or 0.0)


def training_rows(dataset, tokenizer, text_column: str = "sentence"):
    """Rows to train on without a decoded copy of the corpus: ``id``, ``audio`` (the path or the bytes; the
    collator decodes it), ``labels`` (token ids), ``input_length`` (samples at 16 kHz, from the ``duration``
    column that step 01 took from the source's metadata: ``clip_durations.tsv`` or the clip's header) and
    ``problem`` ("" or why the row cannot be used: the feasibility filter drops it).

    Nothing is decoded here: the cost is the tokenizer's (~170 us a sentence) and memory is a few ints a row.
    """
    from datasets import Dataset, Features, List, Value

    if AUDIO_COLUMN not in dataset.column_names or text_column not in dataset.column_names:
        raise KeyError(f"the dataset needs {AUDIO_COLUMN!r} and {text_column!r} columns (columns: {dataset.column_names})")
    ids = list(dataset["id"]) if "id" in dataset.column_names else [str(i) for i in range(len(dataset))]
    texts = [t if isinstance(t, str) else "" for t in dataset[text_column]]
    seconds = list(dataset["duration"]) if "duration" in dataset.column_names else [0.0] * len(dataset)
    audio = dataset.select_columns([AUDIO_COLUMN])
    if not stores_paths(dataset):
        from datasets import Audio

        audio = audio.cast_column(AUDIO_COLUMN, Audio(decode=False))
    clips = list(audio[AUDIO_COLUMN])
    problems = ["" if t.strip() else "empty transcript" for t in texts]
    lengths = []
    for i, s in enumerate(seconds):
        if not s or s <= 0:  # no metadata: read the header (a decode only where even that fails)
            try:
                item = clips[i]
                s = header_seconds(item if isinstance(item, str) else (item.get("bytes") or item.get("path")))
                s = s or len(decode_audio(item)) / SAMPLING_RATE
            except Exception as error:  # noqa: BLE001 - counted by the feasibility filter
                problems[i] = problems[i] or f"undecodable: {type(error).__name__}: {str(error)[:200]}"
                s = 0.0
        lengths.append(int(round(float(s) * SAMPLING_RATE)))
    labels = tokenizer(texts).input_ids if texts else []
    audio_feature = Value("string") if stores_paths(dataset) else {"bytes": Value("binary"), "path": Value("string")}
    return Dataset.from_dict({
        "id": [str(i) for i in ids], AUDIO_COLUMN: clips, "labels": [list(map(int, l)) for l in labels],
        LENGTH_COLUMN: lengths, "problem": problems,
    }, features=Features({"id": Value("string"), AUDIO_COLUMN: audio_feature, "labels": List(Value("int32")),
                          LENGTH_COLUMN: Value("int32"), "problem": Value("string")}))


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
    raise ValueError(f"Unknown feature extractor {type(extractor).__name__}: its frame arithmetic is not known here.")


def output_frames(model, extractor, input_lengths) -> np.ndarray:
    """Number of CTC output frames for clips of ``input_lengths`` samples, by the model's own arithmetic
    (the extractor's frames, then the model's ``_get_feat_extract_output_lengths``)."""
    import torch

    frames = torch.as_tensor(feature_frames(extractor, input_lengths))
    with torch.no_grad():
        out = model._get_feat_extract_output_lengths(frames)
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
