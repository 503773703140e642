"""The training batches: the rows (nothing decoded), the collator that decodes them, the length-grouped
samplers, and the CTC feasibility filter."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..arrow_clips import reference_file
from ..audio import (AUDIO_COLUMN, LENGTH_COLUMN, SAMPLES_COLUMN, ctc_min_frames, decode_audio, from_int16,
                     dataset_from_columns, header_seconds, model_inputs, output_frames, stores_paths, to_int16)
from ..constants import SAMPLING_RATE
from ..ctc import IGNORED_ID
from ..labels import encode

INPUT_LENGTHS_KEY = "clip_samples"  # samples per clip in a batch; the trainer takes it out before the model
SKIPPED_KEY = "skipped_clips"  # clips of a batch that could not be decoded (only present when > 0)
BATCH_EXTRA_KEYS = (INPUT_LENGTHS_KEY, SKIPPED_KEY)  # keys of a collated batch that are not the model's inputs
# Decoded clips kept in memory (int16) by a collator that runs in the main process (no data-loader workers: a
# CPU run), up to this size: measured with the tiny model on 2 cores, decoding each clip every epoch made a
# training step 9 % slower (collate 43 ms vs 12 ms, step 333 ms). A small corpus fits whole (the demo's: 60 MB);
# a large one is mostly decoded each time, with memory bounded whatever its size.
CLIP_CACHE_BYTES = 512 * 2**20
# A batch whose every clip failed to decode is replaced by the collator's last good one, so that one broken file
# never stops a long run; a lost clips folder (on Colab /content is forgotten after a disconnect) must stop it:
STAND_IN_LIMIT = 3  # consecutive all-failed batches (of one data-loader worker)
FAILED_SHARE_LIMIT = 0.5  # or more than this share of the last FAILED_WINDOW clips failed
FAILED_WINDOW = 200

logger = logging.getLogger(__name__)


class UndecodableBatchError(RuntimeError):
    """Clips stopped decoding: every clip of a batch with no earlier batch to stand in, STAND_IN_LIMIT such
    batches in a row, or most of the recent clips (e.g. the clips folder is gone)."""


def clips_folder(row: dict[str, Any]) -> str:
    """The folder of a row's clip, for messages ("the clips" when the row holds its audio itself)."""
    item = row.get(AUDIO_COLUMN)
    path = item.get("path") if isinstance(item, dict) and not item.get("bytes") else item
    return str(Path(reference_file(path)).parent) if isinstance(path, str) and path else "the clips"


def undecodable_message(what: str, row: dict[str, Any]) -> str:
    """Why training stops on clips that no longer decode, which folder, and what to do."""
    folder = clips_folder(row)
    return (f"{what} (e.g. {row.get('id') or row.get(AUDIO_COLUMN)}). Is the clips folder {folder} still there? "
            "On Colab /content is forgotten after a disconnect. Run 01_load again (it writes the clips back), restore "
            f"{folder}, or set EMBED_AUDIO=True in 01_load so that the dataset holds the audio itself.")


def training_rows(dataset, tokenizer, text_column: str = "sentence"):
    """Rows to train on without a decoded copy of the corpus: ``id``, ``audio`` (the path or the bytes; the
    collator decodes it), ``labels`` (token ids), ``input_length`` (samples at 16 kHz, from the ``duration``
    column that step 01 took from the source's metadata: ``clip_durations.tsv`` or the clip's header) and
    ``problem`` ("" or why the row cannot be used: the feasibility filter drops it).

    Nothing is decoded here: ~10 us a row (the labels: :func:`xlsr_helpers.labels.encode`), a few ints of memory.
    """
    from datasets import Features, List, Value

    if AUDIO_COLUMN not in dataset.column_names or text_column not in dataset.column_names:
        raise KeyError(f"the dataset needs {AUDIO_COLUMN!r} and {text_column!r} columns (columns: {dataset.column_names})")
    # column[:] reads a whole column at once (iterating a datasets Column goes row by row: 100x slower)
    ids = dataset["id"][:] if "id" in dataset.column_names else [str(i) for i in range(len(dataset))]
    texts = [t if isinstance(t, str) else "" for t in dataset[text_column][:]]
    seconds = dataset["duration"][:] if "duration" in dataset.column_names else [0.0] * len(dataset)
    paths = stores_paths(dataset)
    audio = dataset.select_columns([AUDIO_COLUMN])
    if not paths:
        from datasets import Audio

        audio = audio.cast_column(AUDIO_COLUMN, Audio(decode=False))
    clips = audio[AUDIO_COLUMN][:]
    problems = ["" if t.strip() else "empty transcript" for t in texts]
    seconds = np.asarray([s or 0.0 for s in seconds], dtype=np.float64)
    for i in np.flatnonzero(seconds <= 0):  # no metadata: read the header (a decode only where even that fails)
        try:
            item = clips[i]
            s = header_seconds(item if isinstance(item, str) else (item.get("bytes") or item.get("path")))
            seconds[i] = s or len(decode_audio(item)) / SAMPLING_RATE
        except Exception as error:  # noqa: BLE001 - counted by the feasibility filter
            problems[i] = problems[i] or f"undecodable: {type(error).__name__}: {str(error)[:200]}"
    lengths = np.rint(seconds * SAMPLING_RATE).astype(np.int32)
    labels = encode(tokenizer, texts)
    audio_feature = Value("string") if paths else {"bytes": Value("binary"), "path": Value("string")}
    features = Features({"id": Value("string"), AUDIO_COLUMN: audio_feature, "labels": List(Value("int32")),
                         LENGTH_COLUMN: Value("int32"), "problem": Value("string")})
    columns = {"id": [str(i) for i in ids], AUDIO_COLUMN: clips, "labels": labels, LENGTH_COLUMN: lengths,
               "problem": problems}
    return dataset_from_columns(columns, features)


@dataclass
class DataCollatorCTCWithPadding:
    """A batch from training rows: each clip decoded and resampled to 16 kHz here (in the data-loader worker,
    so nothing decoded is stored on disk), the model's input made by the family's feature extractor
    (``input_values`` or ``input_features``, each clip normalized on its own, an attention mask when the
    extractor gives one), labels padded with -100 (ignored by the CTC loss), and each clip's sample count
    under ``INPUT_LENGTHS_KEY`` so that evaluation decodes only a clip's own frames.

    A row carries its clip as ``audio`` (a path, or ``{"bytes", "path"}``) or already decoded as ``samples``
    (int16 or float). A clip that fails to decode is left out of its batch and counted under ``SKIPPED_KEY``
    (the trainer adds the counts up and the step reports them); when every clip of a batch fails, the last
    good batch of this collator stands in for it (counted too), so one broken file never stops a long run. A lost
    clips folder does: :class:`UndecodableBatchError` after STAND_IN_LIMIT stand-ins in a row, or when more than
    FAILED_SHARE_LIMIT of the last FAILED_WINDOW clips failed (each data-loader worker counts its own batches).
    With ``cache_bytes`` > 0 decoded clips are kept in memory (int16) up to that size. Extra columns
    (input_length, problem) are ignored.

    ``augment`` (training batches only, e.g. ``augment.SpeedPerturbation``) takes each decoded float32 clip and a
    key drawn from torch's global generator (seeded by the Trainer, per data-loader worker, and restored on a
    resume) and returns the clip to use; ``INPUT_LENGTHS_KEY`` then holds the new lengths."""

    processor: Any
    cache_bytes: int = 0
    augment: Callable[[np.ndarray, int], np.ndarray] | None = None
    _last_good: tuple | None = field(default=None, init=False, repr=False)
    _stand_ins: int = field(default=0, init=False, repr=False)  # consecutive all-failed batches
    _recent: deque = field(default_factory=lambda: deque(maxlen=FAILED_WINDOW), init=False, repr=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False)
    _cached_bytes: int = field(default=0, init=False, repr=False)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        good, arrays, failed = [], [], []
        for f in features:
            array = self._samples(f)
            if array is None:
                failed.append(f)
            else:
                good.append(f)
                arrays.append(array)
        skipped = len(failed)
        self._check_failures(failed, len(features))
        if not good:
            good, arrays = self._last_good
        else:
            self._last_good = (good, arrays)
        if self.augment is not None:
            from .augment import KEY_RANGE

            keys = torch.randint(KEY_RANGE, (len(arrays),)).tolist()
            arrays = [self.augment(a, key) for a, key in zip(arrays, keys)]
        batch = model_inputs(self.processor.feature_extractor, arrays)
        labels = [{"input_ids": [int(x) for x in f["labels"]]} for f in good]
        padded = self.processor.tokenizer.pad(labels, padding=True, return_tensors="pt", return_attention_mask=True)
        batch["labels"] = padded["input_ids"].masked_fill(padded["attention_mask"].ne(1), IGNORED_ID)
        batch[INPUT_LENGTHS_KEY] = torch.tensor([len(a) for a in arrays], dtype=torch.long)
        if skipped:
            batch[SKIPPED_KEY] = torch.tensor(skipped, dtype=torch.long)
        return batch

    def _check_failures(self, failed: list[dict[str, Any]], size: int) -> None:
        """Count the ``failed`` rows of a batch of ``size``; raise :class:`UndecodableBatchError` where a stand-in
        must not go on."""
        if not size:
            return
        self._recent.extend([True] * len(failed) + [False] * (size - len(failed)))
        self._stand_ins = self._stand_ins + 1 if len(failed) == size else 0
        if self._stand_ins and not self._last_good:
            raise UndecodableBatchError(undecodable_message(
                f"None of the {size} clips of a batch could be decoded", failed[0]))
        if self._stand_ins >= STAND_IN_LIMIT:
            raise UndecodableBatchError(undecodable_message(
                f"{self._stand_ins} batches in a row had no clip that could be decoded", failed[0]))
        share = sum(self._recent)
        if failed and len(self._recent) == FAILED_WINDOW and share > FAILED_SHARE_LIMIT * FAILED_WINDOW:
            raise UndecodableBatchError(undecodable_message(
                f"{share} of the last {FAILED_WINDOW} clips could not be decoded", failed[0]))

    def _samples(self, row: dict[str, Any]) -> np.ndarray | None:
        if SAMPLES_COLUMN in row:
            samples = np.asarray(row[SAMPLES_COLUMN])
            return from_int16(samples) if samples.dtype == np.int16 else samples.astype(np.float32, copy=False)
        key = row.get("id")
        if key in self._cache:
            return from_int16(self._cache[key])
        try:
            array = decode_audio(row[AUDIO_COLUMN])
            if array.size == 0:
                raise ValueError("no samples")
        except Exception as error:  # noqa: BLE001 - any decoder failure: the clip is skipped and counted
            logger.warning("skipping clip %s: %s: %s", key, type(error).__name__, str(error)[:200])
            return None
        if key is not None and self._cached_bytes + 2 * array.size <= self.cache_bytes:
            self._cache[key] = to_int16(array)
            self._cached_bytes += 2 * array.size
        return array


def split_batch(batch: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(what the model takes, the samples per clip) of a collated batch."""
    inputs = {k: v for k, v in batch.items() if k not in BATCH_EXTRA_KEYS}
    return inputs, batch.get(INPUT_LENGTHS_KEY)


class LengthBucketSampler:
    """Training order for length-grouped batches: little padding, random batches, the longest batch first.

    Each epoch the clips are sorted by their length times a random factor in [1 - noise, 1 + noise] (so
    that batch-mates change between epochs), cut into batches of ``batch_size``, and the full batches are
    shuffled; the batch holding the longest clip goes first (an out-of-memory error shows at step 1, not
    hours later), a last partial batch (the shortest clips) goes last. The order depends only on (seed,
    epoch): every DDP process computes the same one, and a resumed run replays the epoch it stopped in.

    transformers' ``LengthGroupedSampler`` sorts only inside random mega-batches of 50 x batch x accumulation
    clips (at most a quarter of the set): 8-11 % padding on a 600-clip corpus against ~3 % here.
    """

    def __init__(self, lengths, batch_size: int, seed: int = 0, noise: float = 0.03):
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.noise = float(noise)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def order(self, epoch: int | None = None) -> list[int]:
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch)])
        n, size = len(self.lengths), self.batch_size
        if n == 0:
            return []
        keys = self.lengths * (1.0 + rng.uniform(-self.noise, self.noise, n))
        ranked = np.argsort(keys, kind="stable")[::-1]  # longest first, so the partial batch is the shortest
        full = [ranked[i:i + size] for i in range(0, n - n % size, size)]
        rest = ranked[n - n % size:]
        batches = [full[i] for i in rng.permutation(len(full))]
        longest = int(np.argmax(self.lengths))
        first = next((k for k, b in enumerate(batches) if longest in b), None)
        if first:
            batches.insert(0, batches.pop(first))
        return [int(i) for b in batches for i in b] + [int(i) for i in rest]

    def __iter__(self):
        return iter(self.order())


class DurationBatchSampler:
    """MAX_BATCH_SECONDS: batches that hold at most a budget of padded audio (clips x longest clip), so that short
    clips travel in large batches and long ones in small batches, and no batch needs more memory than the budget.

    The clips, sorted by length, are packed greedily once (ESPnet's "numel" batches are built the same way, once
    per run); each epoch shuffles the order of the batches by (seed, epoch), the batch of the longest clip first
    (an out-of-memory error shows at step 1). Fixed batches keep the number of steps per epoch constant, which
    the Trainer's schedule and a resume rely on. Padding is small because batch-mates are neighbours in length.
    """

    def __init__(self, lengths, max_samples: int, seed: int = 0):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.max_samples = int(max_samples)
        self.seed = int(seed)
        self.epoch = 0
        if len(self.lengths) and self.lengths.max() > self.max_samples:
            raise ValueError(f"a clip of {self.lengths.max() / SAMPLING_RATE:.1f} s is longer than the batch budget "
                             f"of {self.max_samples / SAMPLING_RATE:.1f} s: raise MAX_BATCH_SECONDS")
        self.batches = self._pack()

    def _pack(self) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        for i in np.argsort(-self.lengths, kind="stable"):  # longest first: a batch's first clip is its longest
            if current and (len(current) + 1) * self.lengths[current[0]] > self.max_samples:
                batches.append(current)
                current = []
            current.append(int(i))
        if current:
            batches.append(current)
        return batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def order(self, epoch: int | None = None) -> list[list[int]]:
        if not self.batches:
            return []
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch)])
        order = [int(k) for k in rng.permutation(len(self.batches))]
        order.remove(0)  # batch 0 holds the longest clip
        return [self.batches[k] for k in [0] + order]

    def __iter__(self):
        return iter(self.order())

    def padding_share(self) -> float:
        """Share of the batches' padded audio that is padding."""
        padded = sum(len(b) * int(self.lengths[b[0]]) for b in self.batches)
        return 1.0 - float(self.lengths.sum()) / padded if padded else 0.0


FEASIBILITY_REASONS = {
    "undecodable": "the clip could not be decoded",
    "empty_transcript": "the transcript is empty",
    "too_long": "longer than MAX_DURATION_S",
    "too_few_frames_for_labels": "fewer output frames than labels plus a blank between repeated letters",
    "shorter_than_time_mask": "fewer output frames than the time-mask length (mask_time_length)",
}


def _row_names(dataset, i: int, sentences=None) -> dict[str, Any]:
    """What names row ``i`` of training rows in a report: its clip id, its audio file (a path; bytes are left out)
    and its sentence (from ``sentences``)."""
    names: dict[str, Any] = {}
    columns = [c for c in ("id", AUDIO_COLUMN) if c in dataset.column_names]
    row = dataset.select_columns(columns)[i] if columns else {}
    if "id" in row:
        names["clip"] = row["id"]
    audio = row.get(AUDIO_COLUMN)
    path = audio if isinstance(audio, str) else (audio or {}).get("path")
    if path:
        names["path"] = path
    if sentences is not None:
        names["sentence"] = sentences[i]
    return names


def feasibility(dataset, model, extractor, max_duration_s: float = 0.0, check_ctc: bool = True,
                check_mask: bool = True, sentences=None):
    """Keep the rows CTC can learn from; return (dataset, {reason: count}, examples).

    An example names its row's clip (``clip``: the ``id``; ``path``: the audio file, when the row has one) and,
    given ``sentences`` (the text of each row, in the dataset's order), its ``sentence``: never a row number alone.

    A row is dropped when its clip was undecodable or its transcript empty, when it is longer than
    ``max_duration_s`` (> 0), when its label sequence needs more frames than the model outputs for the clip
    (``len(labels)`` + one blank per adjacent repeat; the model's own frame arithmetic, through its feature
    extractor), or, with time masking on, when it has fewer frames than one mask span.
    """
    import pyarrow.compute as pc

    # Arrow columns: the label *counts* at once; a row's labels are read only where the count alone cannot clear it
    # (0.8 s -> 0.1 s for 100,000 rows against reading every label list into Python)
    table = dataset.select_columns([LENGTH_COLUMN, "labels", "problem"]).with_format("arrow")[:]
    lengths = table[LENGTH_COLUMN].to_numpy().astype(np.int64)
    label_column = table["labels"]
    label_counts = pc.list_value_length(label_column).to_numpy(zero_copy_only=False)
    problems = table["problem"].to_pylist()
    frames = output_frames(model, extractor, lengths) if len(lengths) else np.zeros(0, dtype=np.int64)
    mask_on = check_mask and float(getattr(model.config, "mask_time_prob", 0.0) or 0.0) > 0
    mask_length = int(getattr(model.config, "mask_time_length", 10)) if mask_on else 0

    # Each reason as a mask over all rows (numpy: a Python loop over the rows took 0.36 s for 100,000); a row gets
    # the first reason that applies, in FEASIBILITY_REASONS order.
    has_problem = np.array([bool(p) for p in problems], dtype=bool)
    undecodable = np.array([bool(p) and p.startswith("undecodable") for p in problems], dtype=bool)
    too_long = (lengths > max_duration_s * SAMPLING_RATE) if max_duration_s else np.zeros(len(lengths), dtype=bool)
    too_few = np.zeros(len(lengths), dtype=bool)
    if check_ctc:  # CTC needs at most 2 frames a label; a row's labels are read only where that does not clear it
        for i in np.flatnonzero(2 * label_counts > frames):
            too_few[i] = ctc_min_frames(label_column[int(i)].as_py()) > frames[i]
    too_short_for_mask = frames < mask_length
    masks = {"undecodable": undecodable, "empty_transcript": has_problem & ~undecodable, "too_long": too_long,
             "too_few_frames_for_labels": too_few, "shorter_than_time_mask": too_short_for_mask}
    taken = np.zeros(len(lengths), dtype=bool)
    counts: dict[str, int] = {}
    examples: dict[str, list] = {}
    for reason in FEASIBILITY_REASONS:
        hit = masks[reason] & ~taken
        taken |= hit
        if hit.any():
            counts[reason] = int(hit.sum())
            examples[reason] = [{**_row_names(dataset, int(i), sentences), "row": int(i),
                                 "seconds": round(float(lengths[i]) / SAMPLING_RATE, 2),
                                 "frames": int(frames[i]), "labels": int(label_counts[i]),
                                 "problem": problems[i] or None} for i in np.flatnonzero(hit)[:3]]
    keep = np.flatnonzero(~taken).tolist()
    kept = dataset if len(keep) == len(dataset) else dataset.select(keep)
    return kept, counts, examples
