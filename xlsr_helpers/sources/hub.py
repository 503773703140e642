"""The ``hub:<dataset id>`` source: any ``datasets.load_dataset`` path with an audio and a text column.

A Hub id (e.g. a parquet mirror of Common Voice) or a local folder of parquet files. Split names are mapped to
ours (``validation`` -> eval, ...); the audio and text columns are HUB_AUDIO_COLUMN / HUB_TEXT_COLUMN, or the
usual names when those are left at their defaults. Audio is read as the source stores it (bytes or a path), never
decoded here. :func:`rows_from_hf` also reads the ``audiofolder`` source (:mod:`.audiofolder`).
"""

from __future__ import annotations

import os
from typing import Any, Iterable

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
        speaker_col = next((c for c in SPEAKER_COLUMNS if c in columns), None)
        ds = ds.cast_column(audio_col, Audio(decode=False))
        if split == "test":
            # The leakage guard needs every test sentence and clip id, also of rows not read below (a limit, or a
            # stream that is read only as far as needed): the whole test split is read first, its text and paths.
            sentences, ids = _test_split_keys(ds, text_col, audio_col)
            out.test_sentences.extend(sentences)
            out.test_ids.update(ids)
        if limit and hasattr(ds, "select") and len(ds) > limit:
            # Not streaming: read a seeded random subset instead of every clip's bytes.
            ds = ds.shuffle(seed=cfg.seed).select(range(limit))
        count = 0
        for i, item in enumerate(ds):
            if limit and count >= limit:
                break
            audio = item[audio_col] or {}
            data, path = audio.get("bytes"), audio.get("path")
            clip_id = os.path.basename(path) if path else f"{split}_{i:07d}"
            if path and data is None and not os.path.isabs(path) and kind == "audiofolder":
                path = os.path.abspath(path)
            out.rows.append(Row(
                id=clip_id,
                sentence=item.get(text_col) or "",
                speaker=str(item.get(speaker_col) or "") if speaker_col else "",
                source=spec,
                split=split,
                path=path if data is None else None,
                data=data,
                up_votes=int_or_none(item.get("up_votes")),
            ))
            count += 1
        out.info["splits"][str(name)] = {"as": split, "rows": count, "audio_column": audio_col,
                                         "text_column": text_col, "speaker_column": speaker_col}
    return out


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
    return out
