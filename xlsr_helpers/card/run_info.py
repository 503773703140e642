"""What the card is made of: the run's config and the reports that steps 01-05 left in the run folder.

Step 05's ``metrics.json`` is required (the card reports its WER and CER); every other report is optional,
and a section whose report is missing says less. ``ModelCardError`` is the step's one error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..evaluate import COMPARISON_FILE


class ModelCardError(ValueError):
    """Something the card or the upload folder cannot be made without, said in plain words."""


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


@dataclass
class RunInfo:
    """What the card is made of: the run's config and every step's report."""

    cfg: Config
    metrics: dict
    load_report: dict = field(default_factory=dict)
    normalize_report: dict = field(default_factory=dict)
    vocab_report: dict = field(default_factory=dict)
    train_report: dict = field(default_factory=dict)
    train_config: dict = field(default_factory=dict)  # the parameters 04_train ran with (run.json)
    comparison: dict = field(default_factory=dict)  # 05_evaluate/comparison.json: other models, same clips


def read_run(cfg: Config) -> RunInfo:
    """Reports and metrics of the run; 05_evaluate/metrics.json is required."""
    metrics_path = cfg.step_dir("05_evaluate") / "metrics.json"
    if not metrics_path.exists():
        raise ModelCardError(f"No {metrics_path}: run 05_evaluate first (the card reports its WER and CER).")
    run = _read_json(cfg.run_path / "run.json")
    train_config = run.get("steps", {}).get("04_train") or run.get("config", {})
    return RunInfo(
        cfg=cfg, metrics=_read_json(metrics_path),
        load_report=_read_json(cfg.step_dir("01_load") / "report.json"),
        normalize_report=_read_json(cfg.step_dir("02_normalize") / "report.json"),
        vocab_report=_read_json(cfg.step_dir("03_vocab") / "report.json"),
        train_report=_read_json(cfg.step_dir("04_train") / "report.json"),
        train_config=train_config, comparison=_read_json(cfg.step_dir("05_evaluate") / COMPARISON_FILE),
    )
