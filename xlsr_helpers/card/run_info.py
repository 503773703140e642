"""What the card is made of: the run's config and the reports that steps 01-05 left in the run folder.

Step 05's ``metrics.json`` is required (the card reports its WER and CER); every other report is optional,
and a section whose report is missing says less. ``ModelCardError`` is the step's one error.

The data parameters (filters, source, seed of the splits) are read from the record of the step that used them
in run.json (``steps``, :data:`DATA_STEPS`), not from the run's last config: notebook 04 may set its own SEED, and
what the card says of the data must stay what step 01 did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..evaluate import COMPARISON_FILE


# The parameters that made the data, by the step that used them (run.json keeps each step's config under "steps").
DATA_STEPS = {
    "01_load": ("data_source", "mdc_sample", "synthetic_size", "extra_train_splits", "keep_test_speakers_in_train",
                "max_samples_per_split", "min_duration_s", "max_duration_s", "min_up_votes", "test_fraction",
                "hub_text_column", "hub_audio_column", "hub_streaming", "embed_audio", "decode_check_clips", "seed"),
    "02_normalize": ("normalizer", "chars_to_ignore", "keep_chars"),
}


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
    data_config: Config | None = None  # cfg with the data parameters of steps 01 and 02 (run.json); None: cfg's

    @property
    def data_cfg(self) -> Config:
        """The config whose data parameters are those steps 01 and 02 ran with."""
        return self.data_config or self.cfg


def data_config(cfg: Config, run: dict) -> Config:
    """``cfg`` with each data parameter as the step that used it saved it in run.json (:data:`DATA_STEPS`)."""
    steps = run.get("steps", {})
    changes = {name: steps[step][name] for step, names in DATA_STEPS.items() if steps.get(step)
               for name in names if name in steps[step]}
    return cfg.updated(**changes)


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
        data_config=data_config(cfg, run),
    )
