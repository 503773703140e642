"""Step 02, the step: normalize every split of ``01_load/dataset``, check again for test leakage, save the dataset,
``normalizer.json`` and ``report.json`` in ``02_normalize/``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..audio import with_audio_feature
from ..audio_checks import check_clips_exist
from ..config import Config
from ..constants import SPLITS
from ..files import write_json_atomic
from ..load import quiet_progress, save_step_dataset
from .choice import choose_mode
from .normalizer import FILE_NAME, Normalizer
from .reports import alphabet_report, inventory_report


@dataclass
class NormalizeResult:
    dataset: Any
    report: dict[str, Any]
    normalizer: Normalizer
    dataset_dir: Path
    report_path: Path
    normalizer_path: Path
    examples: list[dict[str, str]] = field(default_factory=list)


def _named(ds: Any, split: str, rows: list[int], sentences: Any) -> list[dict[str, str]]:
    """Dropped rows as the reports name them: split, clip (``id``) and the sentence as the source wrote it."""
    if not rows:
        return []
    ids = ds.select_columns(["id"]).select(rows)["id"] if "id" in ds.column_names else [str(i) for i in rows]
    return [{"split": split, "clip": clip, "sentence": sentences[i]} for clip, i in zip(ids, rows)]


def run_normalize(cfg: Config) -> NormalizeResult:
    """Normalize every split of ``01_load/dataset``; save dataset, normalizer.json and report.json."""
    with quiet_progress():
        return _run_normalize(cfg)


def _run_normalize(cfg: Config) -> NormalizeResult:
    from datasets import DatasetDict, load_from_disk

    source = cfg.step_dir("01_load") / "dataset"
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: run 01_load first.")
    loaded = load_from_disk(str(source))
    check_clips_exist(loaded, step="02_normalize")  # before any work: the clips may be gone since 01_load
    normalizer = Normalizer.from_config(cfg)
    step_dir = cfg.step_dir("02_normalize")
    step_dir.mkdir(parents=True, exist_ok=True)

    raw_all: list[str] = []
    norm_all: list[str] = []
    per_split: dict[str, Any] = {}
    emptied_examples: list[dict[str, str]] = []  # each dropped row named by its clip and its sentence (as in step 01)
    leak_examples: list[dict[str, str]] = []
    normalized = {}
    rules_key = hashlib.sha256(json.dumps(normalizer.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]
    for split in SPLITS:
        ds = loaded[split]
        raw = ds["sentence"][:]  # [:] reads the column at once; iterating it went row by row (100x slower)
        norm = normalizer.normalize_many(raw)
        raw_all += raw
        norm_all += norm
        # fingerprints given: datasets would otherwise hash each 100,000-sentence list (4 s)
        ds = (ds.add_column("raw_sentence", raw, new_fingerprint=f"{ds._fingerprint}-raw").remove_columns("sentence")
              .add_column("sentence", norm, new_fingerprint=f"{ds._fingerprint}-{rules_key}"))
        empty = [i for i, t in enumerate(norm) if not t]
        emptied_examples += _named(ds, split, empty[: max(0, 10 - len(emptied_examples))], raw)
        if empty:
            keep = sorted(set(range(len(norm))) - set(empty))
            ds = ds.select(keep)
        normalized[split] = ds
        per_split[split] = {"rows_in": len(raw), "emptied": len(empty),
                            "changed": sum(1 for a, b in zip(raw, norm) if a != b)}

    # Leakage re-check after the real normalization (01_load compared a looser key).
    test_sentences = set(normalized["test"]["sentence"][:])
    leaks = {}
    for split in ("train", "eval"):
        ds = normalized[split]
        bad = [i for i, t in enumerate(ds["sentence"][:]) if t in test_sentences]
        leak_examples += _named(ds, split, bad[: max(0, 10 - len(leak_examples))], ds["raw_sentence"])
        if bad:
            ds = ds.select(sorted(set(range(len(ds))) - set(bad)))
        normalized[split] = ds
        leaks[split] = len(bad)
    for split in SPLITS:
        per_split[split]["rows_out"] = len(normalized[split])
        per_split[split]["leak_removed"] = leaks.get(split, 0)

    columns = ["id", "audio", "sentence", "raw_sentence", "speaker", "duration", "source"]
    dataset = DatasetDict({s: normalized[s].select_columns([c for c in columns if c in normalized[s].column_names])
                           for s in SPLITS})
    final = save_step_dataset(dataset, step_dir)
    normalizer_path = normalizer.save(step_dir / FILE_NAME)

    inv = inventory_report(raw_all, norm_all, normalizer)
    mode, why = choose_mode(cfg)
    report = {
        "normalizer": normalizer.to_dict(),
        "normalizer_choice": {"setting": cfg.normalizer, "mode": mode, "why": why, "model": cfg.model},
        "profile_note": normalizer.profile.note,
        "splits": per_split,
        "emptied_total": sum(p["emptied"] for p in per_split.values()),
        "emptied_examples": emptied_examples,
        "leak_removed_after_normalization": sum(leaks.values()),
        "leak_removed_examples": leak_examples,
        "inventory": inv,
        "alphabet": alphabet_report(raw_all, norm_all, normalizer, after=inv["after"]),
    }
    report["chars_before"] = len(inv["before"])
    report["chars_after"] = len(inv["after"])
    report["removed_chars"] = "".join(e["char"] for e in inv["removed"])
    report["removed_count"] = sum(e["count"] for e in inv["removed"])
    report_path = step_dir / "report.json"
    write_json_atomic(report_path, report)
    changed = ((a, b) for a, b in zip(raw_all, norm_all) if a != b)
    pairs = [{"before": a, "after": b} for a, b in itertools.islice(changed, 10)]
    return NormalizeResult(with_audio_feature(load_from_disk(str(final))), report, normalizer, final, report_path, normalizer_path,
                           pairs)
