"""Step 01: data sources -> ``DatasetDict(train, eval, test)``, row filters, leakage guard.

``DATA_SOURCE`` names one source or several joined with ``+``:

- ``synthetic``             the espeak-ng corpus of :mod:`xlsr_helpers.synthetic` (Common Voice layout)
- ``common_voice:<dir>``    an extracted Common Voice release of any version (the locale folder, or the
                            release folder that holds it); TSVs are parsed by header name
- ``hub:<dataset id>``      any ``datasets.load_dataset`` path with an audio and a text column
                            (a Hub id, or a local folder of parquet files)
- ``audiofolder:<dir>``     audio files + ``metadata.csv`` (``file_name`` and a text column)

Every row that does not reach the saved dataset is counted by reason in ``01_load/report.json``;
nothing is dropped silently and one bad row never stops the step. Test clips and test sentences never
reach train or eval (the event's one hard rule).

This module must not import later steps (normalize, vocab, train): the leakage guard compares sentences
with its own simple key (:func:`sentence_key`); 02_normalize checks again after the real normalization.
"""

from __future__ import annotations

import csv
import gc
import json
import os
import random
import shutil
import unicodedata
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .audio import dataset_from_columns, header_seconds, with_audio_feature
from .config import Config
from .constants import SAMPLING_RATE, SPLITS
from .translate import TranslateTable

COLUMNS = ("id", "audio", "sentence", "speaker", "duration", "source")
# Common Voice file -> our split. validated/other only feed train when EXTRA_TRAIN_SPLITS asks.
CV_SPLIT_FILES = {"train": "train", "dev": "eval", "test": "test", "validated": "validated", "other": "other"}
# Hub / audiofolder split names -> our split.
HUB_SPLIT_NAMES = {
    "train": "train", "training": "train",
    "validation": "eval", "valid": "eval", "dev": "eval", "eval": "eval", "evaluation": "eval",
    "test": "test", "testing": "test",
    "validated": "validated", "other": "other",
}
SPEAKER_COLUMNS = ("client_id", "speaker_id", "speaker", "spk_id")
# Reasons a row is dropped, in the order the checks run (the report keeps this order).
REASONS = {
    "malformed_row": "TSV row with more fields than its header",
    "duplicate": "same clip listed twice in one split",
    "leak_path": "clip is in the test split (removed from train/eval)",
    "leak_sentence": "sentence is in the test split (removed from train/eval)",
    "eval_sentence": "validated/other row whose sentence is in eval (not added to train)",
    "empty_sentence": "sentence empty or only punctuation/spaces",
    "votes": "fewer up-votes than MIN_UP_VOTES",
    "too_short": "shorter than MIN_DURATION_S",
    "too_long": "longer than MAX_DURATION_S",
    "missing_clip": "audio file not found",
    "undecodable": "audio cannot be decoded (corrupt, truncated or not audio)",
}
MISSING_FILE = "file not found"  # the audio check's answer for a clip that is not there (reason missing_clip)
TAIL_CHECK_S = 0.25  # a truncated file has no audio in the last quarter second its header promises
# The first bytes of the audio containers a corpus uses (mp3, wav, ogg/opus, flac, mp4/m4a, webm, aiff): the cheap
# check of a clip that is not decode-checked. A file whose header is not one of these is decode-checked instead.
AUDIO_SIGNATURES = ((0, b"ID3"), (0, b"RIFF"), (0, b"RF64"), (0, b"OggS"), (0, b"fLaC"), (4, b"ftyp"),
                    (0, b"\x1a\x45\xdf\xa3"), (0, b"FORM"))
_AT_START = tuple(magic for offset, magic in AUDIO_SIGNATURES if offset == 0)
_AT_FOUR = tuple(magic for offset, magic in AUDIO_SIGNATURES if offset == 4)
assert {offset for offset, _ in AUDIO_SIGNATURES} == {0, 4}, "looks_like_audio checks offsets 0 and 4"


@contextmanager
def quiet_progress():
    """No datasets progress bars inside (saving a few hundred rows draws three of them per split)."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


# --------------------------------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------------------------------
@dataclass(slots=True)  # slots and the reader's shortcuts: 90,000 rows built in 0.55 s instead of 0.72 s
class Row:
    id: str  # clip file name (common_voice_tr_12.mp3)
    sentence: str
    speaker: str
    source: str
    split: str  # train | eval | test | validated | other
    path: str | None = None  # absolute path of the clip, or None when the audio is in `data`
    data: bytes | None = None  # audio bytes (hub sources)
    duration: float | None = None  # seconds, when the source says (clip_durations.tsv)
    up_votes: int | None = None
    problem: str | None = None  # a reason from REASONS, set by the reader (malformed_row)
    key: str = ""  # sentence_key(sentence), set for every row by read_sources (the guard compares it up to 3 times)

    @property
    def audio_source(self) -> str | bytes | None:
        return self.data if self.data is not None else self.path


@dataclass
class SourceRows:
    """What one source yields: rows (with their split) and how they were read."""

    spec: str
    kind: str
    rows: list[Row] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    test_sentences: list[str] = field(default_factory=list)  # test texts not in rows (leakage guard)
    test_ids: set[str] = field(default_factory=set)  # test clip ids not in rows (leakage guard)


def sentence_key(text: str) -> str:
    """A loose comparison key for the leakage guard: NFKC, casefolded, letters/marks/digits only.

    Deliberately looser than any normalizer (spaces, punctuation and symbols are ignored, Turkish
    dotted/dotless i are one letter), so that a test sentence is caught whatever 02_normalize later
    does to it.
    """
    return _folded(text).translate(_KEY_CHARS)


def sentence_keys(texts: list[str]) -> list[str]:
    """``[sentence_key(text) for text in texts]``: the Unicode passes text by text (on short texts they take their
    ASCII and Latin-1 shortcuts: on the joined texts they took 2.5x as long), the character filter once over the
    texts joined by a newline (100,000 sentences: 0.2 s instead of 0.4 s). A text with a newline of its own: one
    by one."""
    folded = [_folded(text) for text in texts]
    joined = "\n".join(folded)
    if joined.count("\n") != len(texts) - 1:
        return [text.translate(_KEY_CHARS) for text in folded]
    return _KEY_CHARS_JOINED.translate(joined).split("\n")


def _folded(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return unicodedata.normalize("NFKC", text.replace("i\u0307", "i").replace("ı", "i"))  # Turkish İ/I/ı


def _key_char(ch: str) -> str | None:
    """Letters, marks and digits stay in a :func:`sentence_key`, any other character goes."""
    return ch if unicodedata.category(ch)[0] in "LMN" else None


# a Python loop over the characters with unicodedata.category took 10 us a sentence (1 s per 100,000); this 3.4 us
_KEY_CHARS = TranslateTable(_key_char)
_KEY_CHARS_JOINED = TranslateTable(_key_char, {ord("\n"): "\n"})  # sentence_keys' separator stays


# --------------------------------------------------------------------------------------------------
# Common Voice
# --------------------------------------------------------------------------------------------------
def read_cv_tsv(path: str | Path) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Rows of a Common Voice TSV as dicts keyed by header name, plus what was seen.

    Unquoted parsing (``csv.QUOTE_NONE``): real rows start with ``"`` (Turkish) and 2019 rows wrap
    sentences in quotes; both are kept verbatim. Short rows are padded with ""; rows with more fields
    than the header are returned with ``__malformed__`` set; a repeated header name keeps its first
    column. A UTF-8 BOM is ignored.
    """
    path = Path(path)
    rows: list[dict[str, str]] = []
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            return [], {"file": path.name, "header": [], "rows": 0}
        header = [h.strip() for h in header]
        first: dict[str, int] = {}
        for i, name in enumerate(header):
            first.setdefault(name, i)
        width = len(header)
        unique = len(first) == width
        malformed = 0
        for fields in reader:
            if not fields or fields == [""]:
                continue  # blank line
            if unique and len(fields) == width:  # the usual row: zip in C (2x the speed of the general case)
                rows.append(dict(zip(header, fields)))
                continue
            if len(fields) > width and any(f.strip() for f in fields[width:]):
                malformed += 1
                record = {name: (fields[i] if i < len(fields) else "") for name, i in first.items()}
                record["__malformed__"] = "1"
            else:
                record = {name: (fields[i] if i < len(fields) else "") for name, i in first.items()}
            rows.append(record)
    info = {"file": path.name, "header": header, "columns": width, "rows": len(rows)}
    if malformed:
        info["malformed_rows"] = malformed
    if "accents" in first and "accent" not in first:
        info["accent_column"] = "accents"
    elif "accent" in first:
        info["accent_column"] = "accent"
    return rows, info


def read_clip_durations(folder: Path) -> dict[str, float]:
    """``clip_durations.tsv`` (CV 16.1+: ``clip``, ``duration[ms]``) as {clip name: seconds}."""
    path = folder / "clip_durations.tsv"
    if not path.exists():
        return {}
    durations: dict[str, float] = {}
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None) or []
        try:
            clip_col = header.index("clip")
        except ValueError:
            clip_col = 0
        ms_col = next((i for i, h in enumerate(header) if h.startswith("duration")), 1)
        for fields in reader:
            if len(fields) > max(clip_col, ms_col):
                try:
                    durations[fields[clip_col].strip()] = float(fields[ms_col]) / 1000.0
                except ValueError:
                    continue
    return durations


def find_cv_folder(folder: str | Path, language: str) -> Path:
    """The locale folder: ``folder`` itself when it holds TSVs, else ``folder/<language>``."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise FileNotFoundError(
            f"Common Voice folder {folder} does not exist. Download a release for your language from "
            "https://commonvoice.mozilla.org/datasets, extract it, and pass the folder that holds "
            "train.tsv (e.g. DATA_SOURCE='common_voice:/content/cv-corpus-17.0-2024-03-15/tr')."
        )
    if any(folder.glob("*.tsv")):
        return folder
    for candidate in (folder / language, *sorted(folder.glob(f"*/{language}"))):
        if candidate.is_dir() and any(candidate.glob("*.tsv")):
            return candidate
    raise FileNotFoundError(f"No Common Voice TSV files in {folder} (nor in {folder}/{language}).")


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _resolve_clip(clips: str, name: str) -> tuple[str, str]:
    """(id, path) for a TSV ``path`` value, with or without the ``.mp3`` extension (string paths: pathlib
    cost 10 us a row)."""
    name = name.strip()
    candidate = f"{clips}{os.sep}{name}"
    if "." not in name and not os.path.exists(candidate):  # early releases list clips without ".mp3"
        return name + ".mp3", candidate + ".mp3"
    return name, candidate


def read_common_voice(folder: str | Path, language: str, spec: str, splits: Iterable[str]) -> SourceRows:
    """Rows of the requested Common Voice split files (train/dev/test and validated/other if asked)."""
    folder = find_cv_folder(folder, language)
    clips = folder / "clips"
    durations = read_clip_durations(folder)
    out = SourceRows(spec=spec, kind="common_voice", info={"folder": str(folder), "files": {}})
    out.info["clip_durations_tsv"] = bool(durations)
    splits = set(splits)
    if not (folder / "train.tsv").exists() and (folder / "validated.tsv").exists():
        splits.add("validated")  # releases without train.tsv: validated minus dev/test is the train set
        out.info["note"] = "no train.tsv: validated.tsv minus dev/test is used as train"
    for stem, split in CV_SPLIT_FILES.items():
        if split not in splits:
            continue
        path = folder / f"{stem}.tsv"
        if not path.exists():
            continue
        records, info = read_cv_tsv(path)
        out.info["files"][path.name] = info
        for record in records:
            clip_id, clip_path = _resolve_clip(str(clips), record.get("path", ""))
            votes = record.get("up_votes", "")
            # Row's fields by position (id, sentence, speaker, source, split, path, data, duration, up_votes,
            # problem): 0.05 s for 100,000 rows, 0.16 s by keyword
            out.rows.append(Row(clip_id, record.get("sentence", ""), record.get("client_id", ""), spec, split,
                                clip_path, None, durations.get(clip_id),
                                int(votes) if votes.isdecimal() else _int_or_none(votes),  # the usual case first
                                "malformed_row" if "__malformed__" in record else None))
    if not out.info["files"]:
        raise FileNotFoundError(f"No train/dev/test/validated TSV in {folder}")
    return out


# --------------------------------------------------------------------------------------------------
# Hub and audiofolder
# --------------------------------------------------------------------------------------------------
def _pick_column(columns: Iterable[str], wanted: str, fallbacks: Iterable[str], what: str, spec: str) -> str:
    columns = list(columns)
    for name in (wanted, *fallbacks):
        if name and name in columns:
            return name
    raise KeyError(f"{spec}: no {what} column {wanted!r}; columns are {columns}. "
                   f"Set the matching HUB_*_COLUMN parameter.")


def _rows_from_hf(dataset_dict: Any, spec: str, kind: str, cfg: Config, limit: int) -> SourceRows:
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
                up_votes=_int_or_none(item.get("up_votes")),
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
    out = _rows_from_hf(loaded, spec, "hub", cfg, limit)
    out.info["streaming"] = cfg.hub_streaming
    return out


def read_audiofolder(folder: str | Path, spec: str, cfg: Config) -> SourceRows:
    from datasets import load_dataset

    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"audiofolder {folder} does not exist")
    loaded = load_dataset("audiofolder", data_dir=str(folder))
    out = _rows_from_hf(loaded, spec, "audiofolder", cfg, 0)
    out.info["folder"] = str(folder)
    return out


def read_synthetic(cfg: Config, spec: str) -> SourceRows:
    from .synthetic import make_corpus  # lazy: espeak-ng is only needed for this source

    folder = make_corpus(cfg.language, cfg.synthetic_size, seed=0)
    out = read_common_voice(folder, cfg.language, spec, _cv_splits(cfg))
    out.kind = "synthetic"
    out.info["size"] = cfg.synthetic_size
    return out


def _cv_splits(cfg: Config) -> set[str]:
    extra = {s.strip() for s in cfg.extra_train_splits.split("+") if s.strip()}
    unknown = extra - {"validated", "other"}
    if unknown:
        raise ValueError(f"EXTRA_TRAIN_SPLITS: unknown {sorted(unknown)}; use validated, other or validated+other")
    return {"train", "eval", "test", *extra}


def parse_sources(data_source: str) -> list[tuple[str, str, str]]:
    """``DATA_SOURCE`` -> [(spec, kind, argument)]."""
    parts = [p.strip() for p in data_source.split("+") if p.strip()]
    if not parts:
        raise ValueError("DATA_SOURCE is empty")
    out = []
    for part in parts:
        kind, _, arg = part.partition(":")
        kind = kind.strip().lower()
        if kind == "synthetic" and not arg:
            out.append((part, kind, ""))
        elif kind in ("common_voice", "hub", "audiofolder") and arg.strip():
            out.append((part, kind, arg.strip()))
        else:
            raise ValueError(f"DATA_SOURCE part {part!r} is not one of: synthetic, common_voice:<dir>, "
                             "hub:<dataset id>, audiofolder:<dir>")
    return out


def read_sources(cfg: Config) -> list[SourceRows]:
    """The rows of every source of ``DATA_SOURCE``, each with its :func:`sentence_key`."""
    sources = []
    for spec, kind, arg in parse_sources(cfg.data_source):
        if kind == "synthetic":
            sources.append(read_synthetic(cfg, spec))
        elif kind == "common_voice":
            sources.append(read_common_voice(arg, cfg.language, spec, _cv_splits(cfg)))
        elif kind == "hub":
            sources.append(read_hub(arg, spec, cfg))
        else:
            sources.append(read_audiofolder(arg, spec, cfg))
    for source in sources:
        for row, key in zip(source.rows, sentence_keys([row.sentence for row in source.rows])):
            row.key = key
    return sources


# --------------------------------------------------------------------------------------------------
# audio checks
# --------------------------------------------------------------------------------------------------
def probe_audio(source: str | bytes, expected: float | None = None) -> tuple[bool, float | None, str | None]:
    """(decodable, duration in seconds, error) of one clip, with torchcodec.

    Opens the file, reads the duration (``expected`` from clip_durations.tsv, else the header), and
    decodes the last quarter second that duration promises: a truncated mp3 opens fine and reports its
    full duration in the LAME header, but has no audio there. Without any duration, decodes it all.
    """
    from torchcodec.decoders import AudioDecoder

    try:
        decoder = AudioDecoder(source)
        meta = decoder.metadata
        duration = expected or meta.duration_seconds or meta.duration_seconds_from_header
        if not duration or duration <= 0:
            samples = decoder.get_all_samples()
            n = samples.data.shape[-1]
            if n == 0:
                return False, None, "no audio samples"
            return True, n / samples.sample_rate, None
        begin = float(meta.begin_stream_seconds or 0.0)
        start = max(begin, begin + duration - TAIL_CHECK_S)
        tail = decoder.get_samples_played_in_range(start, begin + duration)
        if tail.data.shape[-1] == 0:
            return False, duration, "truncated (no audio at the end)"
        return True, float(duration), None
    except Exception as error:  # noqa: BLE001 - any decoder failure means "undecodable", counted
        if isinstance(source, str) and not os.path.isfile(source):
            return False, None, MISSING_FILE
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "No audio frames" in message:
            message = "truncated (no audio at the end)"
        return False, None, f"{type(error).__name__}: {message[:200]}"


def looks_like_audio(head: bytes) -> bool:
    """Whether a file's first bytes are the header of a known audio container (or an MPEG audio frame)."""
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frame sync: mp3 without ID3
        return True
    return head.startswith(_AT_START) or head.startswith(_AT_FOUR, 4)  # bytes.startswith takes a tuple: in C


def quick_check(source: str | bytes, expected: float | None = None) -> tuple[bool, float | None, str | None]:
    """The cheap check of a clip (no decoding): a file that is there (else :data:`MISSING_FILE`), not empty, a
    known audio header, and a duration (``expected`` from the source's metadata, else read from the header). Same
    answer shape as :func:`probe_audio`, which takes over for anything this cannot vouch for. A clip that passes here
    but fails to decode is skipped and counted at training time."""
    try:
        if isinstance(source, (bytes, bytearray)):
            head = bytes(source[:12])
        else:
            # Three system calls on a descriptor (open, read, close): 12 us a clip here, where a system call costs
            # ~3 us (a virtual machine); open() + getsize() took 38 us (a buffered file object and a second path
            # lookup), an fstat for the size 3 us more: an empty file reads as b"" (measured on 90,000 clips).
            try:  # O_NONBLOCK: a FIFO in the clips folder cannot block the step
                fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK)  # also the existence check: one path lookup
            except (FileNotFoundError, NotADirectoryError):
                return False, None, MISSING_FILE
            try:
                head = os.read(fd, 12)
            except IsADirectoryError:
                return False, None, MISSING_FILE
            finally:
                os.close(fd)
            if not head:
                return False, None, "empty file"
        if not looks_like_audio(head):
            return probe_audio(source, expected)
        if expected:
            return True, float(expected), None
        seconds = header_seconds(source)
        return (True, seconds, None) if seconds > 0 else probe_audio(source, expected)
    except Exception as error:  # noqa: BLE001 - an unreadable file is "undecodable", counted
        return False, None, f"{type(error).__name__}: {str(error)[:200]}"


# --------------------------------------------------------------------------------------------------
# splits and filters
# --------------------------------------------------------------------------------------------------
def held_out_split(rows: list[Row], fraction: float, seed: int) -> tuple[list[Row], list[Row], str]:
    """(kept, held out, by): a speaker-disjoint share of the rows (by file when no speakers)."""
    groups: dict[str, list[Row]] = defaultdict(list)
    by_speaker = any(r.speaker for r in rows)
    for row in rows:
        groups[(row.speaker or row.id) if by_speaker else row.id].append(row)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    target = max(1, round(len(rows) * fraction)) if rows else 0
    held, taken = set(), 0
    for key in keys:
        if taken >= target or len(held) >= len(keys) - 1:
            break
        held.add(key)
        taken += len(groups[key])
    kept = [r for r in rows if ((r.speaker or r.id) if by_speaker else r.id) not in held]
    out = [r for r in rows if ((r.speaker or r.id) if by_speaker else r.id) in held]
    return kept, out, "speaker" if by_speaker else "file"


@dataclass
class Tally:
    """Dropped rows by split and reason, with a few example ids per reason."""

    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, str] = field(default_factory=dict)

    def drop(self, split: str, reason: str, row: Row, detail: str | None = None) -> None:
        self.counts[split][reason] += 1
        if len(self.examples[reason]) < 5:
            self.examples[reason].append(row.id)
        if detail and len(self.errors) < 20:
            self.errors[row.id] = detail


def _assign_splits(sources: list[SourceRows], cfg: Config, notes: list[str]) -> dict[str, list[Row]]:
    """train / eval / test rows (before filters); validated/other feed train when asked."""
    splits: dict[str, list[Row]] = {s: [] for s in SPLITS}
    extra: list[Row] = []
    for source in sources:
        for row in source.rows:
            (splits[row.split] if row.split in splits else extra).append(row)
    if extra:
        # validated/other minus anything in dev or test (by clip), and minus what train already has.
        held = {r.id for s in ("eval", "test") for r in splits[s]}
        in_train = {r.id for r in splits["train"]}
        # Common Voice re-records sentences: a validated clip of an eval sentence would make eval
        # optimistic. (Test sentences are caught by the leakage guard, with every other split.)
        eval_keys = {r.key for r in splits["eval"] if r.key}
        added, seen = [], set()
        for r in extra:
            if r.id not in held and r.id not in in_train and r.id not in seen:
                r.split = "train"
                if r.key in eval_keys:
                    r.problem = r.problem or "eval_sentence"
                added.append(r)
                seen.add(r.id)
        splits["train"].extend(added)
        notes.append(f"{len(added)} rows of validated/other go to train before the filters and the leakage "
                     f"guard (of {len(extra)}: the others are train clips already, or dev/test clips).")
    return splits


def _held_out(splits: dict[str, list[Row]], cfg: Config, report: dict[str, Any]) -> None:
    if not splits["test"] and splits["train"]:
        kept, held, by = held_out_split(splits["train"], cfg.test_fraction, cfg.seed)
        for r in held:
            r.split = "test"
        splits["train"], splits["test"] = kept, held
        report["held_out"]["test"] = {"rows": len(held), "by": by, "fraction": cfg.test_fraction,
                                      "speakers": len({r.speaker for r in held if r.speaker})}
    if not splits["eval"] and splits["train"]:
        kept, held, by = held_out_split(splits["train"], cfg.test_fraction, cfg.seed + 1)
        for r in held:
            r.split = "eval"
        splits["train"], splits["eval"] = kept, held
        report["held_out"]["eval"] = {"rows": len(held), "by": by, "fraction": cfg.test_fraction,
                                      "speakers": len({r.speaker for r in held if r.speaker})}


def _cheap_filters(rows: list[Row], split: str, cfg: Config, tally: Tally,
                   test_ids: set[str], test_keys: set[str]) -> list[Row]:
    """Checks that need no decoding, in REASONS order."""
    kept: list[Row] = []
    seen: set[tuple[str, str]] = set()
    guard = split != "test"
    min_votes, min_s, max_s = cfg.min_up_votes, cfg.min_duration_s, cfg.max_duration_s
    for row in rows:
        key = (row.source, row.id)
        reason = None
        if row.problem:
            reason = row.problem
        elif key in seen:
            reason = "duplicate"
        elif guard and row.id in test_ids:
            reason = "leak_path"
        elif guard and row.key and row.key in test_keys:
            reason = "leak_sentence"
        elif not row.key:
            reason = "empty_sentence"
        elif min_votes and row.up_votes is not None and row.up_votes < min_votes:
            reason = "votes"
        elif row.data is None and not row.path:
            reason = "missing_clip"
        elif row.duration is not None and (row.duration < min_s or (max_s and row.duration > max_s)):
            reason = "too_short" if row.duration < min_s else "too_long"
        if reason is None:
            kept.append(row)
        else:
            tally.drop(split, reason, row)
        seen.add(key)
    return kept


def _audio_filters(rows: list[Row], split: str, cfg: Config, tally: Tally, limit: int,
                   workers: int) -> tuple[list[Row], int, dict[str, int]]:
    """Audio check (a clip that is not there: missing_clip) and duration filter; with ``limit``, stop once that
    many rows passed.

    The first ``cfg.decode_check_clips`` rows examined (-1: all) are decode-checked (:func:`probe_audio`), the
    others get the cheap check (:func:`quick_check`: existence, size, header, duration from metadata), so that the
    cost of this step does not grow with the hours of a large language. The rows are examined in a seeded random order,
    so the decode-checked ones are a random sample. Returns (kept rows in their original order, rows never
    examined: "not sampled", which is not a drop, {"decoded": n, "header_only": n}).
    """
    # numpy's permutation: random.shuffle took 0.1 s for 100,000 rows
    order = np.random.default_rng([cfg.seed % 2**32, zlib.crc32(split.encode())]).permutation(len(rows)).tolist()
    budget = len(order) if cfg.decode_check_clips < 0 else min(len(order), cfg.decode_check_clips)
    accepted: list[int] = []
    min_s, max_s = cfg.min_duration_s, cfg.max_duration_s

    def take(i: int, result: tuple[bool, float | None, str | None]) -> None:
        ok, duration, error = result
        row = rows[i]
        if not ok:
            missing = error == MISSING_FILE
            tally.drop(split, "missing_clip" if missing else "undecodable", row, None if missing else error)
            return
        row.duration = duration
        if duration is not None and duration < min_s:
            tally.drop(split, "too_short", row)
        elif duration is not None and max_s and duration > max_s:
            tally.drop(split, "too_long", row)
        else:
            accepted.append(i)

    # The sample: decoding runs in threads (FFmpeg releases the GIL), in chunks so that a ``limit`` stops it early.
    decoded, chunk = 0, 64
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, budget, chunk):
            batch = order[start:min(start + chunk, budget)]
            for i, result in zip(batch, pool.map(lambda i: probe_audio(rows[i].audio_source, rows[i].duration),
                                                 batch)):
                if limit and len(accepted) >= limit:
                    break
                take(i, result)
                decoded += 1
            if limit and len(accepted) >= limit:
                break
    # The others: the cheap check, serially. In threads it was slower (90,000 clips: 16 us a clip in one thread,
    # 28 us in two, 47 us in four: the GIL changes hands at each short system call), and overlapping it with the
    # decode checks did not help either (3,000 probes + 97,000 cheap checks: 3.9 s against 3.2 s).
    header_only = 0
    for i in order[budget:]:
        if limit and len(accepted) >= limit:
            break
        take(i, quick_check(rows[i].audio_source, rows[i].duration))
        header_only += 1
    examined = decoded + header_only
    checked = {"decoded": decoded, "header_only": header_only}
    return [rows[i] for i in sorted(accepted)], len(order) - examined, checked


# --------------------------------------------------------------------------------------------------
# the step
# --------------------------------------------------------------------------------------------------
def load_source(cfg: Config) -> tuple["Any", dict[str, Any]]:
    """Read every source of ``cfg.data_source``; return (DatasetDict(train, eval, test), report)."""
    from datasets import Audio, Dataset, DatasetDict, Features, Value

    notes: list[str] = []
    sources = read_sources(cfg)
    report: dict[str, Any] = {
        "data_source": cfg.data_source,
        "language": cfg.language,
        "sources": [{"source": s.spec, "kind": s.kind, "rows": len(s.rows), **s.info} for s in sources],
        "held_out": {},
        "notes": notes,
    }
    splits = _assign_splits(sources, cfg, notes)
    _held_out(splits, cfg, report)

    # Leakage guard: every test row of every source, before any filter, defines what is "test".
    test_ids = {r.id for r in splits["test"]} | {i for s in sources for i in s.test_ids}
    test_keys = {r.key for r in splits["test"] if r.key}
    test_keys |= {k for s in sources for k in map(sentence_key, s.test_sentences) if k}

    tally = Tally()
    # decode-check threads: one per core (3,000 probes on 2 cores: 1.8 s with 2 threads, 2.5 s with 4: the GIL)
    workers = min(8, max(2, os.cpu_count() or 2))
    final: dict[str, list[Row]] = {}
    not_sampled: dict[str, int] = {}
    decode_check: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        rows = _cheap_filters(splits[split], split, cfg, tally, test_ids, test_keys)
        final[split], not_sampled[split], decode_check[split] = _audio_filters(
            rows, split, cfg, tally, cfg.max_samples_per_split, workers)

    # Clips with a file are stored as their path (a string column: datasets' save_to_disk would copy the audio of
    # an Audio column into the run folder); clips that exist only as bytes (hub sources) keep their bytes.
    as_paths = all(r.data is None for split in SPLITS for r in final[split])
    features = Features({
        "id": Value("string"), "audio": Value("string") if as_paths else Audio(sampling_rate=SAMPLING_RATE),
        "sentence": Value("string"), "speaker": Value("string"), "duration": Value("float64"),
        "source": Value("string"),
    })
    datasets = {}
    for split in SPLITS:
        rows = final[split]
        columns = {
            "id": [r.id for r in rows],
            "audio": [r.path for r in rows] if as_paths else
                     [{"path": r.path if r.data is None else r.id, "bytes": r.data} for r in rows],
            "sentence": [r.sentence for r in rows],
            "speaker": [r.speaker for r in rows],
            "duration": [float(r.duration or 0.0) for r in rows],
            "source": [r.source for r in rows],
        }
        # an Audio column of bytes needs datasets' row-by-row encoding; plain columns are converted at once
        datasets[split] = (dataset_from_columns(columns, features) if as_paths else
                           Dataset.from_dict(columns, features=features))
    dataset = DatasetDict(datasets)

    report["splits"] = {split: split_summary(final[split]) for split in SPLITS}
    report["dropped"] = {split: {reason: tally.counts[split][reason] for reason in REASONS
                                 if tally.counts[split][reason]} for split in SPLITS}
    report["dropped_total"] = {reason: sum(tally.counts[s][reason] for s in SPLITS) for reason in REASONS
                               if any(tally.counts[s][reason] for s in SPLITS)}
    report["dropped_examples"] = dict(tally.examples)
    report["decode_errors"] = tally.errors
    report["not_sampled"] = {s: n for s, n in not_sampled.items() if n}
    report["decode_check"] = decode_check
    report["audio_stored_as"] = "paths" if as_paths else "bytes (the source has no files)"
    report["reasons"] = REASONS
    train_speakers = {r.speaker for r in final["train"] if r.speaker}
    eval_speakers = {r.speaker for r in final["eval"] if r.speaker}
    test_speakers = {r.speaker for r in final["test"] if r.speaker}
    report["leakage"] = {
        "test_keys_known": {"sentences": len(test_keys), "clips": len(test_ids)},
        "removed_by_path": sum(tally.counts[s]["leak_path"] for s in SPLITS),
        "removed_by_sentence": sum(tally.counts[s]["leak_sentence"] for s in SPLITS),
        "test_clips_in_train_or_eval": len(test_ids & {r.id for s in ("train", "eval") for r in final[s]}),
        "test_sentences_in_train_or_eval": len(test_keys & {r.key
                                                            for s in ("train", "eval") for r in final[s]}),
        "speaker_overlap_train_test": len(train_speakers & test_speakers),
        "speaker_overlap_eval_test": len(eval_speakers & test_speakers),
        "speaker_overlap_train_eval": len(train_speakers & eval_speakers),
    }
    if report["leakage"]["speaker_overlap_train_test"]:
        notes.append(f"{report['leakage']['speaker_overlap_train_test']} speakers are in both train and test "
                     "(their clips and sentences differ). Common Voice's own splits are speaker-disjoint; "
                     "EXTRA_TRAIN_SPLITS brings speakers back.")
    report["kept"] = {s: len(final[s]) for s in SPLITS}
    report["read"] = sum(len(s.rows) for s in sources)
    return dataset, report


def split_summary(rows: list[Row]) -> dict[str, Any]:
    durations = [r.duration or 0.0 for r in rows]
    return {
        "clips": len(rows),
        "hours": round(sum(durations) / 3600, 4),
        "speakers": len({r.speaker for r in rows if r.speaker}),
        "mean_s": round(sum(durations) / len(durations), 2) if durations else 0.0,
        "max_s": round(max(durations), 2) if durations else 0.0,
        "sources": dict(Counter(r.source for r in rows)),
    }


def _embed(batch: dict[str, list]) -> dict[str, list]:
    audio = []
    for item in batch["audio"]:
        if item.get("bytes") is None and item.get("path"):
            with open(item["path"], "rb") as handle:
                item = {"bytes": handle.read(), "path": os.path.basename(item["path"])}
        audio.append(item)
    return {"audio": audio}


@dataclass
class LoadResult:
    dataset: Any  # DatasetDict, as saved
    report: dict[str, Any]
    dataset_dir: Path
    report_path: Path


def run_load(cfg: Config) -> LoadResult:
    """The step: load, filter, guard, save ``01_load/dataset/`` and ``01_load/report.json``."""
    step_dir = cfg.step_dir("01_load")
    step_dir.mkdir(parents=True, exist_ok=True)
    with quiet_progress(), collector_paused():
        return _run_load(cfg, step_dir)


@contextmanager
def collector_paused():
    """Python's cyclic garbage collector off while the step makes its few objects a row (none in a cycle; memory is
    freed as usual, by reference counting), back on after if it was on. With torch and transformers imported, each
    full collection walks ~400,000 objects, and the rows trigger them: step 01 of 100,000 clips took 8.4-9.1 s with
    the collector off against 10.6-11.3 s on, 10,000 clips 4.7-5.2 s against 5.4-5.6 s (fresh processes)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run_load(cfg: Config, step_dir: Path) -> LoadResult:
    from datasets import Audio, DatasetDict, load_from_disk

    dataset, report = load_source(cfg)
    tmp_dir = step_dir / "dataset.tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    if cfg.embed_audio:
        work = step_dir / ".embed"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        embedded = {}
        for split, ds in dataset.items():
            ds = ds.cast_column("audio", Audio(decode=False))
            ds = ds.map(_embed, batched=True, batch_size=100, writer_batch_size=100,
                        cache_file_name=str(work / f"{split}.arrow"), desc=f"embedding {split} audio")
            embedded[split] = ds.cast_column("audio", Audio(sampling_rate=SAMPLING_RATE))
        DatasetDict(embedded).save_to_disk(str(tmp_dir))
        shutil.rmtree(work, ignore_errors=True)
    else:
        dataset.save_to_disk(str(tmp_dir))
    final_dir = step_dir / "dataset"
    shutil.rmtree(final_dir, ignore_errors=True)
    os.replace(tmp_dir, final_dir)
    report["embed_audio"] = cfg.embed_audio
    if cfg.embed_audio:
        report["audio_stored_as"] = "bytes (EMBED_AUDIO=True)"
    report["dataset_dir"] = str(final_dir)
    report_path = step_dir / "report.json"
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return LoadResult(with_audio_feature(load_from_disk(str(final_dir))), report, final_dir, report_path)


def load_step_dataset(cfg: Config, step: str = "01_load") -> Any:
    """The DatasetDict a step saved (``<RUN_DIR>/<step>/dataset``), its clips as a 16 kHz ``Audio`` column."""
    from datasets import load_from_disk

    path = cfg.step_dir(step) / "dataset"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run {step} first.")
    return with_audio_feature(load_from_disk(str(path)))


# --------------------------------------------------------------------------------------------------
# what the notebook shows
# --------------------------------------------------------------------------------------------------
def split_table(report: dict[str, Any]):
    """Per-split clips, hours, speakers (a pandas DataFrame)."""
    import pandas as pd

    rows = []
    for split in SPLITS:
        s = report["splits"][split]
        rows.append({"split": split, "clips": s["clips"], "hours": round(s["hours"], 3),
                     "speakers": s["speakers"], "mean s": s["mean_s"], "max s": s["max_s"],
                     "dropped": sum(report["dropped"].get(split, {}).values()),
                     "not sampled": report.get("not_sampled", {}).get(split, 0)})
    return pd.DataFrame(rows).set_index("split")


def dropped_table(report: dict[str, Any]):
    """Dropped rows: reason x split, with what the reason means and example clips."""
    import pandas as pd

    rows = []
    for reason, meaning in REASONS.items():
        counts = {split: report["dropped"].get(split, {}).get(reason, 0) for split in SPLITS}
        if any(counts.values()):
            rows.append({"reason": reason, **counts, "total": sum(counts.values()), "meaning": meaning,
                         "examples": ", ".join(report["dropped_examples"].get(reason, [])[:3])})
    columns = ["reason", *SPLITS, "total", "meaning", "examples"]
    return pd.DataFrame(rows, columns=columns).set_index("reason")
