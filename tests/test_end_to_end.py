"""The curriculum end to end on real Common Voice clips: load -> normalize -> vocab -> train -> evaluate -> card.

A Common Voice release folder is built in the test from the 12 real zh-CN clips (48 kHz mp3, full-width
punctuation) in ../shared/cv-samples, and all six notebooks run on it headless with the tiny model.
"""

import csv
import json
import shutil
from pathlib import Path

import pytest

from xlsr_helpers.pipeline import run_pipeline

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "cv-samples" / "ssbuild_asr_finetuning"
HEADER = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accent", "locale", "segment"]


def build_zh_cn_release(root: Path) -> Path:
    """A CV 6.1-style folder: clips/ + train/dev/test/validated.tsv, speakers disjoint across splits."""
    rows = [json.loads(line) for line in (SAMPLES / "data" / "common_voice_zh-CN.json").read_text().splitlines() if line.strip()]
    folder = root / "cv-corpus-6.1-2020-12-11" / "zh-CN"
    (folder / "clips").mkdir(parents=True)
    splits = {"train": rows[:8], "dev": rows[8:10], "test": rows[10:12]}
    validated = []
    for split, split_rows in splits.items():
        records = []
        for i, row in enumerate(split_rows):
            source = (SAMPLES / "data" / row["path"]).resolve()
            shutil.copy(source, folder / "clips" / source.name)
            speaker = f"{split}-speaker-{i % 2}".ljust(64, "0")
            records.append([speaker, source.name, row["sentence"], "2", "0", "", "", "", "zh-CN", ""])
        validated += records
        _write_tsv(folder / f"{split}.tsv", records)
    _write_tsv(folder / "validated.tsv", validated)
    for name in ("other", "invalidated"):
        _write_tsv(folder / f"{name}.tsv", [])
    return folder


def _write_tsv(path: Path, records):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(records)


@pytest.mark.notebooks
@pytest.mark.lowest  # the one notebook run of .ci/lowest: all six notebooks on real clips, on the lowest versions
@pytest.mark.skipif(not SAMPLES.exists(), reason="../shared/cv-samples is absent (real CV clips are not bundled)")
def test_six_notebooks_on_real_zh_cn_clips(tmp_path):
    release = build_zh_cn_release(tmp_path / "data")
    result = run_pipeline(
        {"LANGUAGE": "zh-CN", "RUN_DIR": str(tmp_path / "run"), "DATA_SOURCE": f"common_voice:{release}",
         "MODEL": "tiny", "MAX_STEPS": 4, "EVAL_STEPS": 2, "SAVE_STEPS": 2, "LOGGING_STEPS": 1,
         "BATCH_SIZE": 4, "GRADIENT_ACCUMULATION_STEPS": 1, "MIN_DURATION_S": 0.5},
        progress=False, cell_timeout_s=600,
    )
    run = result.run_dir
    assert list(result.executed) == ["01_load", "02_normalize", "03_vocab", "04_train", "05_evaluate", "06_model_card"]
    load_report = json.loads((run / "01_load" / "report.json").read_text())
    assert json.dumps(load_report)  # written and readable
    normalized = (run / "02_normalize" / "normalizer.json").read_text()
    vocab = json.loads((run / "03_vocab" / "processor" / "vocab.json").read_text())
    for punctuation in "，。！？：":
        assert punctuation not in vocab, f"full-width {punctuation} must be normalized away"
    assert "|" in vocab and "[PAD]" in vocab and "[UNK]" in vocab
    assert any(len(token) == 1 and "\u4e00" <= token <= "\u9fff" for token in vocab), "hanzi are the units"
    assert normalized
    metrics = json.loads((run / "05_evaluate" / "metrics.json").read_text())
    assert metrics["n"] == 2 and 0.0 <= metrics["cer"]
    card = (run / "06_model_card" / "upload" / "README.md").read_text()
    assert "zh" in card.split("---")[1], "language in the card's metadata"
    assert "TODO" not in card
