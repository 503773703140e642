"""Step 01: the rows of the sources -> ``DatasetDict(train, eval, test)``, row filters, leakage guard, saved.

``DATA_SOURCE`` names one source or several joined with ``+`` (:mod:`xlsr_helpers.sources`: ``synthetic``,
``common_voice:<dir>``, ``hub:<dataset id>``, ``audiofolder:<dir>``). This module is what happens to their rows:
splits (validated/other into train when asked, a held-out test or eval split when a source has none), the filters
in :data:`REASONS` order (the cheap ones, then the audio checks of :mod:`xlsr_helpers.audio_checks`), the leakage
guard (:mod:`xlsr_helpers.leakage`), the report, and the saved dataset (clips stored as their paths). The vote and
duration filters are for training (no clip that cannot fit a batch, no badly rated clip learnt from): they leave the
test split whole, so that its WER is the standard split's.

Every row that does not reach the saved dataset is counted by reason in ``01_load/report.json``, with examples
named by clip and sentence; nothing is dropped silently and one bad row never stops the step. Test clips and test
sentences never reach train or eval (the event's one hard rule); validated/other rows of test and eval speakers
do not either, unless KEEP_TEST_SPEAKERS_IN_TRAIN. The report says which speakers the splits share
(``leakage``) and whether the saved test split is the source's whole test split (``test_split``): the model
card's claims are written from these.

This module must not import later steps (normalize, vocab, train): the leakage guard compares sentences
with its own simple key (:func:`xlsr_helpers.leakage.sentence_key`); 02_normalize checks again after the real
normalization.
"""

from __future__ import annotations

import gc
import os
import random
import shutil
import zlib
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .arrow_clips import clip_source, is_arrow_reference
from .audio import dataset_from_columns, with_audio_feature
from .audio_checks import MISSING_FILE, CheckResult, check_clips
from .config import Config
from .constants import SAMPLING_RATE, SPLITS
from .files import write_json_atomic
from .leakage import known_test, leakage_report
from .sources import Row, SourceRows, read_sources

# Reasons a row is dropped, in the order the checks run (the report keeps this order).
REASONS = {
    "malformed_row": "TSV row with more fields than its header",
    "duplicate": "same clip listed twice in one split",
    "leak_path": "clip is in the test split (removed from train/eval)",
    "leak_sentence": "sentence is in the test split (removed from train/eval)",
    "eval_sentence": "validated/other row whose sentence is in eval (not added to train)",
    "test_speaker": "validated/other row of a test speaker (not added to train; KEEP_TEST_SPEAKERS_IN_TRAIN keeps it)",
    "eval_speaker": "validated/other row of an eval speaker (not added to train; KEEP_TEST_SPEAKERS_IN_TRAIN keeps it)",
    "empty_sentence": "sentence empty or only punctuation/spaces",
    "votes": "fewer up-votes than MIN_UP_VOTES (train and eval only)",
    "too_short": "shorter than MIN_DURATION_S (train and eval only: the test split is scored whole)",
    "too_long": "longer than MAX_DURATION_S (train and eval only: the test split is scored whole)",
    "missing_clip": "audio file not found",
    "undecodable": "audio cannot be decoded (corrupt, truncated or not audio)",
}


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


def dropped_row(row: Row, split: str) -> dict[str, Any]:
    """What a report says of a dropped row: its clip (id, and the file when there is one), its sentence and split."""
    described = {"clip": row.id, "sentence": row.sentence, "split": split}
    if row.path:
        described["path"] = row.path
    if row.speaker:
        described["speaker"] = row.speaker
    return described


@dataclass
class Tally:
    """Dropped rows by split and reason, with a few examples per reason (clip and sentence: :func:`dropped_row`)."""

    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, str] = field(default_factory=dict)

    def drop(self, split: str, reason: str, row: Row, detail: str | None = None) -> None:
        self.counts[split][reason] += 1
        if len(self.examples[reason]) < 5:
            self.examples[reason].append(dropped_row(row, split))
        if detail and len(self.errors) < 20:
            self.errors[row.id] = detail


def _assign_splits(sources: list[SourceRows], cfg: Config, notes: list[str]) -> tuple[dict[str, list[Row]], dict[str, str]]:
    """(train / eval / test rows before filters, {clip id: reason} of the validated/other rows that must not reach
    train because their speaker is a test or eval speaker); validated/other feed train when asked.

    Common Voice's train, dev and test are speaker-disjoint, but validated/other hold the other clips of the test
    and eval speakers: added to train, they would make the test WER optimistic (the model has heard the voice).
    They are kept out (reasons ``test_speaker`` / ``eval_speaker``) unless KEEP_TEST_SPEAKERS_IN_TRAIN."""
    splits: dict[str, list[Row]] = {s: [] for s in SPLITS}
    extra: list[Row] = []
    held_speakers: dict[str, str] = {}
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
        if not cfg.keep_test_speakers_in_train:
            speakers = {r.speaker: "eval_speaker" for r in splits["eval"] if r.speaker}
            speakers.update({r.speaker: "test_speaker" for r in splits["test"] if r.speaker})
            held_speakers = {r.id: speakers[r.speaker] for r in added if r.speaker in speakers}
        else:
            notes.append("KEEP_TEST_SPEAKERS_IN_TRAIN=True: validated/other rows of test and eval speakers go to "
                         "train too; the test WER is then optimistic (the model has heard those voices).")
    return splits, held_speakers


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
                   test_ids: set[str], test_keys: set[str], held_speakers: dict[str, str]) -> list[Row]:
    """Checks that need no decoding, in REASONS order (``held_speakers``: see :func:`_assign_splits`)."""
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
        elif guard and row.id in held_speakers:
            reason = held_speakers[row.id]
        elif not row.key:
            reason = "empty_sentence"
        elif guard and min_votes and row.up_votes is not None and row.up_votes < min_votes:
            reason = "votes"
        elif row.data is None and not row.path:
            reason = "missing_clip"
        elif guard and row.duration is not None and (row.duration < min_s or (max_s and row.duration > max_s)):
            reason = "too_short" if row.duration < min_s else "too_long"
        if reason is None:
            kept.append(row)
        else:
            tally.drop(split, reason, row)
        seen.add(key)
    return kept


def _audio_filters(rows: list[Row], split: str, cfg: Config, tally: Tally,
                   limit: int) -> tuple[list[Row], int, dict[str, int]]:
    """Audio check (a clip that is not there: missing_clip) and duration filter; with ``limit``, stop once that
    many rows passed.

    The first ``cfg.decode_check_clips`` rows examined (-1: all) are decode-checked, the others get the cheap check
    (:func:`xlsr_helpers.audio_checks.check_clips`), in a random order seeded by SEED and the split. Returns (kept
    rows in their original order, rows never examined: "not sampled", which is not a drop,
    {"decoded": n, "header_only": n}).
    """
    accepted: list[int] = []
    # The duration filter keeps training batches sane; the test split is scored whole (step 05 cuts long clips
    # into windows), so that its WER is the standard split's and the card can say so.
    min_s, max_s = (cfg.min_duration_s, cfg.max_duration_s) if split != "test" else (0.0, 0.0)

    def take(i: int, result: CheckResult) -> bool:
        ok, duration, error = result
        row = rows[i]
        if not ok:
            missing = error == MISSING_FILE
            tally.drop(split, "missing_clip" if missing else "undecodable", row, None if missing else error)
            return False
        row.duration = duration
        if duration is not None and duration < min_s:
            tally.drop(split, "too_short", row)
        elif duration is not None and max_s and duration > max_s:
            tally.drop(split, "too_long", row)
        else:
            accepted.append(i)
        return bool(limit) and len(accepted) >= limit

    checked = check_clips(rows, [cfg.seed % 2**32, zlib.crc32(split.encode())], cfg.decode_check_clips, take)
    examined = checked["decoded"] + checked["header_only"]
    return [rows[i] for i in sorted(accepted)], len(rows) - examined, checked


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
    splits, held_speakers = _assign_splits(sources, cfg, notes)
    _held_out(splits, cfg, report)
    in_source = test_rows_in_source(splits["test"], sources)

    # Leakage guard: every test row of every source, before any filter, defines what is "test".
    test_ids, test_keys = known_test(splits["test"], sources)

    tally = Tally()
    final: dict[str, list[Row]] = {}
    not_sampled: dict[str, int] = {}
    decode_check: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        rows = _cheap_filters(splits[split], split, cfg, tally, test_ids, test_keys, held_speakers)
        final[split], not_sampled[split], decode_check[split] = _audio_filters(
            rows, split, cfg, tally, cfg.max_samples_per_split)

    # Clips are stored as their path or their reference to datasets' cache (a string column: save_to_disk would copy
    # an Audio column's audio into the run folder); with clips that are only bytes (a streamed hub) all keep bytes.
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
            "audio": [r.path for r in rows] if as_paths else  # a reference's bytes are read from the cache here
                     [{"path": r.id, "bytes": a} if isinstance(a := r.audio_source, bytes) else
                      {"path": a, "bytes": None} for r in rows],
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
    report["audio_stored_as"] = ("bytes (the source has no files)" if not as_paths else "paths" if not any(
        is_arrow_reference(r.path) for s in SPLITS for r in final[s]) else "references to datasets' cache (no copy)")
    report["reasons"] = REASONS
    report["leakage"] = leakage_report(final, test_ids, test_keys,
                                       {reason: sum(tally.counts[s][reason] for s in SPLITS)
                                        for reason in ("leak_path", "leak_sentence", "test_speaker", "eval_speaker")},
                                       keep_test_speakers=bool(cfg.extra_train_splits and cfg.keep_test_speakers_in_train))
    if report["leakage"]["speaker_overlap_train_test"]:
        why = ("KEEP_TEST_SPEAKERS_IN_TRAIN=True kept their validated/other clips in train"
               if report["leakage"]["test_speakers_kept_in_train"] else "the source's own train and test share them")
        notes.append(f"{report['leakage']['speaker_overlap_train_test']} speakers are in both train and test "
                     f"(their clips and sentences differ): {why}. The test WER is optimistic for their clips.")
    report["kept"] = {s: len(final[s]) for s in SPLITS}
    report["test_split"] = test_split_record(in_source, len(final["test"]), report["dropped"]["test"],
                                             not_sampled["test"], bool(report["held_out"].get("test")))
    report["read"] = sum(len(s.rows) for s in sources)
    return dataset, report


def test_rows_in_source(test_rows: list[Row], sources: list[SourceRows]) -> int:
    """How many rows the test split has in its sources: the test rows read, or a source's whole test split where it
    read only part of it (a hub source under MAX_SAMPLES_PER_SPLIT knows every test sentence: ``test_sentences``)."""
    read = Counter(r.source for r in test_rows)
    return sum(max(read[s.spec], len(s.test_sentences)) for s in sources)


def test_split_record(in_source: int, kept: int, dropped: dict[str, int], not_sampled: int,
                      held_out: bool) -> dict[str, Any]:
    """The report's ``test_split``: is the saved test split the source's whole test split? ``in_source`` rows, of
    which ``kept`` are saved; the others were dropped (by reason), not sampled (MAX_SAMPLES_PER_SPLIT) or not read
    (a hub source read part of its test split). A test split held out from train is no split of the source."""
    accounted = kept + sum(dropped.values()) + not_sampled
    return {"rows_in_source": in_source, "rows": kept, "dropped": dict(dropped), "not_sampled": not_sampled,
            "not_read": max(0, in_source - accounted), "held_out": held_out,
            "whole": kept == in_source and not held_out}


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
    for item, clip in zip(batch["audio"], batch["id"]):
        if item.get("bytes") is None and item.get("path"):
            data = clip_source(item["path"])  # a reference: the clip's bytes, read from datasets' cache
            if not isinstance(data, bytes):
                with open(data, "rb") as handle:
                    data = handle.read()
            item = {"bytes": data, "path": clip}
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
        final_dir = save_step_dataset(DatasetDict(embedded), step_dir)
        shutil.rmtree(work, ignore_errors=True)
    else:
        final_dir = save_step_dataset(dataset, step_dir)
    report["embed_audio"] = cfg.embed_audio
    if cfg.embed_audio:
        report["audio_stored_as"] = "bytes (EMBED_AUDIO=True)"
    report["dataset_dir"] = str(final_dir)
    report_path = step_dir / "report.json"
    write_json_atomic(report_path, report)
    return LoadResult(with_audio_feature(load_from_disk(str(final_dir))), report, final_dir, report_path)


def save_step_dataset(dataset: Any, step_dir: Path) -> Path:
    """``dataset`` (a DatasetDict) saved as ``<step_dir>/dataset`` through ``dataset.tmp`` beside it: a step killed
    while it saves leaves the dataset it had or none, never half of one. Returns the folder."""
    tmp_dir = step_dir / "dataset.tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    dataset.save_to_disk(str(tmp_dir))
    final_dir = step_dir / "dataset"
    shutil.rmtree(final_dir, ignore_errors=True)
    os.replace(tmp_dir, final_dir)
    return final_dir


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


def example_text(example: dict[str, Any] | str, width: int = 40) -> str:
    """A dropped row as the table shows it: ``clip "sentence"`` (the sentence cut at ``width`` characters)."""
    if isinstance(example, str):  # a report.json written before examples named their sentence
        return example
    sentence = example.get("sentence") or ""
    sentence = sentence if len(sentence) <= width else sentence[: width - 1] + "…"
    return f'{example.get("clip", "?")} "{sentence}"'


def dropped_table(report: dict[str, Any]):
    """Dropped rows: reason x split, with what the reason means and example clips."""
    import pandas as pd

    rows = []
    for reason, meaning in REASONS.items():
        counts = {split: report["dropped"].get(split, {}).get(reason, 0) for split in SPLITS}
        if any(counts.values()):
            rows.append({"reason": reason, **counts, "total": sum(counts.values()), "meaning": meaning,
                         "examples": "; ".join(example_text(e) for e in report["dropped_examples"].get(reason, [])[:3])})
    columns = ["reason", *SPLITS, "total", "meaning", "examples"]
    return pd.DataFrame(rows, columns=columns).set_index("reason")
