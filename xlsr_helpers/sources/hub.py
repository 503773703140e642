"""The ``hub:<dataset id>`` source: any ``datasets.load_dataset`` path with an audio and a text column.

A Hub id (e.g. a parquet mirror of Common Voice) or a local folder of parquet files. Split names are mapped to
ours (``validation`` -> eval, ...); the audio and text columns are HUB_AUDIO_COLUMN / HUB_TEXT_COLUMN, or the
usual names when those are left at their defaults. Audio is never decoded here.

Downloaded (the default), a split lives in the Arrow files of datasets' cache, memory-mapped: its rows are read
column by column without the audio, and a clip whose bytes are in the cache becomes a reference to its row there
(:func:`xlsr_helpers.arrow_clips.arrow_reference`), kept as the row's ``path``: nothing is copied into the run
folder and no step holds the audio in memory. A clip stored as a file path (audiofolder) keeps its path. Streamed
(HUB_STREAMING=True), there is no cache to refer to: each row read carries its clip's bytes, which step 01 saves
in the run folder. Durations come from a duration column when the source has one (:data:`DURATION_COLUMNS`), else
from each clip's header (step 01's audio check). :func:`rows_from_hf` also reads the ``audiofolder`` source
(:mod:`.audiofolder`).
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import numpy as np

from ..arrow_clips import arrow_reference, cache_file, is_arrow_reference
from ..config import Config
from .rows import Row, SourceRows, int_or_none

# Hub / audiofolder split names -> our split.
HUB_SPLIT_NAMES = {
    "train": "train", "training": "train",
    "validation": "eval", "valid": "eval", "dev": "eval", "eval": "eval", "evaluation": "eval",
    "test": "test", "testing": "test",
    "validated": "validated", "other": "other",
}
SPEAKER_COLUMNS = ("client_id", "speaker_id", "speaker", "spk_id")
# A clip's duration, where the source has it: column -> factor to seconds.
DURATION_COLUMNS = {"duration": 1.0, "duration_s": 1.0, "duration_seconds": 1.0, "audio_duration": 1.0,
                    "duration_ms": 0.001}


def _pick_column(columns: Iterable[str], wanted: str, fallbacks: Iterable[str], what: str, spec: str) -> str:
    columns = list(columns)
    for name in (wanted, *fallbacks):
        if name and name in columns:
            return name
    raise KeyError(f"{spec}: no {what} column {wanted!r}; columns are {columns}. "
                   f"Set the matching HUB_*_COLUMN parameter.")


def rows_from_hf(dataset_dict: Any, spec: str, kind: str, cfg: Config, limit: int) -> SourceRows:
    """Rows of a (possibly streaming) datasets.DatasetDict with an audio and a text column."""
    from datasets import Audio

    out = SourceRows(spec=spec, kind=kind, info={"splits": {}})
    for name in dataset_dict:
        split = HUB_SPLIT_NAMES.get(str(name).lower())
        if split is None:
            out.info["splits"][str(name)] = "ignored (not a train/validation/test name)"
            continue
        ds = dataset_dict[name]
        columns = list(ds.column_names or ds.features.keys())
        # Other usual names are tried only when the parameter is left at its default.
        audio_col = _pick_column(columns, cfg.hub_audio_column,
                                 ("audio", "path", "file") if cfg.hub_audio_column == "audio" else (), "audio", spec)
        text_col = _pick_column(columns, cfg.hub_text_column,
                                ("sentence", "text", "transcription", "transcript", "normalized_text")
                                if cfg.hub_text_column == "sentence" else (), "text", spec)
        names = {"audio": audio_col, "text": text_col,
                 "speaker": next((c for c in SPEAKER_COLUMNS if c in columns), None),
                 "duration": next((c for c in DURATION_COLUMNS if c in columns), None),
                 "votes": "up_votes" if "up_votes" in columns else None}
        ds = ds.cast_column(audio_col, Audio(decode=False))
        if split == "test":
            # The leakage guard needs every test sentence and clip id, also of rows not read below (a limit, or a
            # stream that is read only as far as needed): the whole test split is read first, its text and paths.
            sentences, ids = _test_split_keys(ds, text_col, audio_col)
            out.test_sentences.extend(sentences)
            out.test_ids.update(ids)
        files = cached_files(ds, audio_col)
        if files is not None:
            rows = _cached_rows(ds, files, names, split, spec, kind, cfg.seed, limit)
        else:
            rows = _iterated_rows(ds, names, split, spec, kind, cfg.seed, limit)
        out.rows.extend(rows)
        referenced = sum(1 for r in rows if is_arrow_reference(r.path))
        out.info["splits"][str(name)] = {
            "as": split, "rows": len(rows), "audio_column": audio_col, "text_column": text_col,
            "speaker_column": names["speaker"], "duration_column": names["duration"],
            "audio": (f"{referenced} clips referenced in datasets' cache (nothing copied)" if referenced else
                      "paths" if all(r.data is None for r in rows) else "bytes (read from a stream)"),
            **({"cache_files": [f for f, _ in files]} if files is not None else {})}
    return out


def cached_files(ds: Any, audio_col: str) -> list[tuple[str, int]] | None:
    """[(Arrow file, rows)] of a downloaded split whose rows are those files' rows in order (no index mapping), each
    file's audio column a ``{bytes, path}`` struct: what a reference can name. None for anything else (a stream, a
    dataset in memory), whose clips are read row by row."""
    import pyarrow as pa

    if not getattr(ds, "cache_files", None) or getattr(ds, "_indices", None) is not None:
        return None
    files = []
    for entry in ds.cache_files:
        table = cache_file(entry["filename"]).table
        field = table.schema.field(audio_col) if audio_col in table.schema.names else None
        if field is None or not pa.types.is_struct(field.type) or field.type.get_field_index("bytes") < 0:
            return None
        files.append((entry["filename"], table.num_rows))
    return files if sum(n for _, n in files) == len(ds) else None


def _cached_rows(ds: Any, files: list[tuple[str, int]], names: dict[str, str | None], split: str, spec: str,
                 kind: str, seed: int, limit: int) -> list[Row]:
    """The rows of a downloaded split, read column by column from the memory-mapped cache (the audio's ``bytes``
    child is never read: only whether a row has bytes); a clip with bytes becomes a reference to its row."""
    import pyarrow.compute as pc

    table = ds.data
    n = len(ds)
    # With a limit, a seeded random subset (the order datasets' shuffle(seed) gives), read without the other rows.
    index = np.random.default_rng(seed).permutation(n)[:limit] if limit and n > limit else None

    def column(values):
        return (values.take(index) if index is not None else values).to_pylist()

    audio = table.column(names["audio"])
    paths = column(pc.struct_field(audio, "path"))
    has_bytes = column(pc.is_valid(pc.struct_field(audio, "bytes")))
    texts = column(table.column(names["text"]))
    speakers = column(table.column(names["speaker"])) if names["speaker"] else None
    votes = column(table.column(names["votes"])) if names["votes"] else None
    seconds = column(table.column(names["duration"])) if names["duration"] else None
    factor = DURATION_COLUMNS.get(names["duration"] or "", 1.0)
    rows_at = np.arange(n) if index is None else index
    starts = np.cumsum([0] + [rows for _, rows in files])
    in_file = np.searchsorted(starts, rows_at, side="right") - 1
    local = (rows_at - starts[in_file]).tolist()
    rows = []
    for k, (i, f) in enumerate(zip(rows_at.tolist(), in_file.tolist())):
        path = paths[k]
        if has_bytes[k]:
            clip = arrow_reference(files[f][0], names["audio"], local[k])
        else:
            clip = os.path.abspath(path) if path and kind == "audiofolder" else path
        duration = seconds[k] if seconds is not None else None
        rows.append(Row(
            id=os.path.basename(path) if path else f"{split}_{i:07d}",
            sentence=texts[k] or "",
            speaker=str(speakers[k] or "") if speakers is not None else "",
            source=spec,
            split=split,
            path=clip,
            duration=float(duration) * factor if duration else None,
            up_votes=int_or_none(votes[k]) if votes is not None else None,
        ))
    return rows


def _iterated_rows(ds: Any, names: dict[str, str | None], split: str, spec: str, kind: str, seed: int,
                   limit: int) -> list[Row]:
    """The rows of a stream (or a dataset in memory), item by item: each clip as the source gives it, bytes or a
    path."""
    if limit and hasattr(ds, "select") and len(ds) > limit:
        # Not streaming: read a seeded random subset instead of every clip's bytes.
        ds = ds.shuffle(seed=seed).select(range(limit))
    rows: list[Row] = []
    audio_col, text_col, speaker_col = names["audio"], names["text"], names["speaker"]
    factor = DURATION_COLUMNS.get(names["duration"] or "", 1.0)
    for i, item in enumerate(ds):
        if limit and len(rows) >= limit:
            break
        audio = item[audio_col] or {}
        data, path = audio.get("bytes"), audio.get("path")
        if path and data is None and not os.path.isabs(path) and kind == "audiofolder":
            path = os.path.abspath(path)
        duration = item.get(names["duration"]) if names["duration"] else None
        rows.append(Row(
            id=os.path.basename(path) if path else f"{split}_{i:07d}",
            sentence=item.get(text_col) or "",
            speaker=str(item.get(speaker_col) or "") if speaker_col else "",
            source=spec,
            split=split,
            path=path if data is None else None,
            data=data,
            duration=float(duration) * factor if duration else None,
            up_votes=int_or_none(item.get("up_votes")),
        ))
    return rows


def _test_split_keys(ds: Any, text_col: str, audio_col: str) -> tuple[list[str], list[str]]:
    """(sentences, clip ids) of a whole test split, streaming or not (a downloaded split reads two columns only)."""
    if hasattr(ds, "flatten") and hasattr(ds, "__len__"):
        flat = ds.select_columns([text_col, audio_col]).flatten()
        paths = flat[f"{audio_col}.path"] if f"{audio_col}.path" in flat.column_names else []
        return [str(t or "") for t in flat[text_col]], [os.path.basename(p) for p in paths if p]
    sentences, ids = [], []
    for item in ds.select_columns([text_col, audio_col]):
        sentences.append(str(item[text_col] or ""))
        path = (item[audio_col] or {}).get("path")
        if path:
            ids.append(os.path.basename(path))
    return sentences, ids


def read_hub(dataset_id: str, spec: str, cfg: Config) -> SourceRows:
    from datasets import load_dataset

    loaded = load_dataset(dataset_id, streaming=cfg.hub_streaming)
    if not hasattr(loaded, "keys"):  # a single split
        loaded = {"train": loaded}
    # With MAX_SAMPLES_PER_SPLIT read at most 4x that many rows per split (the filters drop some).
    limit = cfg.max_samples_per_split * 4 if cfg.max_samples_per_split else 0
    out = rows_from_hf(loaded, spec, "hub", cfg, limit)
    out.info["streaming"] = cfg.hub_streaming
    if cfg.hub_streaming:
        out.info["audio"] = "bytes: a stream has no cache to refer to, so the clips read are saved in the run folder"
    elif any(is_arrow_reference(r.path) for r in out.rows):
        out.info["audio"] = "references to rows of datasets' cache: nothing copied into the run folder"
    return out
