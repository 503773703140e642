"""Notebooks 01_load -> 02_normalize -> 03_vocab run headless (papermill) on the tiny synthetic corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from xlsr_helpers.results import read_results

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
STEPS = ("01_load", "02_normalize", "03_vocab")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Run the three notebooks once, in order, into one run folder; return (run_dir, {step: results})."""
    import papermill

    work = tmp_path_factory.mktemp("nb01_03")
    run_dir = work / "run"
    parameters = {
        "01_load": {"DATA_SOURCE": "synthetic", "SYNTHETIC_SIZE": "tiny", "RUN_DIR": str(run_dir), "LANGUAGE": "tr"},
        "02_normalize": {"RUN_DIR": str(run_dir), "LANGUAGE": "tr"},
        "03_vocab": {"RUN_DIR": str(run_dir), "LANGUAGE": "tr", "MODEL": "tiny"},
    }
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved) if p)  # the kernel imports xlsr_helpers
    results = {}
    try:
        for step in STEPS:
            out = work / f"{step}.ipynb"
            papermill.execute_notebook(str(NOTEBOOKS / f"{step}.ipynb"), str(out), parameters=parameters[step],
                                       kernel_name="python3", cwd=str(work), progress_bar=False,
                                       execution_timeout=600)
            results[step] = read_results(out)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return run_dir, results


def test_01_load_records_splits_without_leakage(executed):
    run_dir, results = executed
    r = results["01_load"]
    assert set(r["clips"]) == {"train", "eval", "test"} and all(n > 0 for n in r["clips"].values())
    assert r["clips"]["train"] > r["clips"]["test"]
    assert all(h > 0 for h in r["hours"].values())
    assert r["leakage"]["test_clips_in_train_or_eval"] == 0
    assert r["leakage"]["test_sentences_in_train_or_eval"] == 0
    assert r["leakage"]["speaker_overlap_train_test"] == 0  # synthetic speakers are disjoint, like CV's splits
    report = json.loads((run_dir / "01_load" / "report.json").read_text(encoding="utf-8"))
    assert report["kept"] == r["clips"] and report["dropped_total"] == r["dropped"]
    assert (run_dir / "01_load" / "dataset" / "dataset_dict.json").is_file()
    config = json.loads((run_dir / "run.json").read_text())
    assert config["steps"]["01_load"]["synthetic_size"] == "tiny"


def test_02_normalize_records_inventory(executed):
    run_dir, results = executed
    r = results["02_normalize"]
    assert r["rows"] == results["01_load"]["clips"]  # nothing emptied or leaking in the synthetic corpus
    assert r["chars_after"] < r["chars_before"]
    assert {".", ","} <= set(r["removed_chars"])
    assert r["emptied"] == 0 and r["leak_removed"] == 0
    from xlsr_helpers.normalize import load_normalizer

    assert load_normalizer(run_dir)("İstanbul'a GİT!") == "istanbula git"
    report = json.loads((run_dir / "02_normalize" / "report.json").read_text(encoding="utf-8"))
    outside = report["alphabet"]["outside"]  # the synthetic Turkish corpus: Turkish letters, and digits
    assert report["alphabet"]["locale"] == "tr" and r["outside_alphabet"] == sum(e["count"] for e in outside)
    assert all(e["char"].isdigit() and len(e["examples"]) <= 3 for e in outside)


def test_03_vocab_records_a_round_tripping_vocabulary(executed):
    run_dir, results = executed
    r = results["03_vocab"]
    assert r["round_trip_ok"] is True
    assert r["return_attention_mask"] is True
    vocab = json.loads((run_dir / "03_vocab" / "processor" / "vocab.json").read_text(encoding="utf-8"))
    assert r["vocab_size"] == len(vocab) and r["tokenizer_len"] >= len(vocab)
    by_id = sorted(vocab, key=vocab.get)
    assert by_id[0] == "|" and by_id[-2:] == ["[UNK]", "[PAD]"]
    assert "ı" in vocab and "\u0307" not in vocab and "." not in vocab
    assert r["remapped"] == {}


def test_notebooks_show_their_figures_and_players(executed):
    """The plain (headless) views are there: tables, figures, audio players."""
    import nbformat

    run_dir, _ = executed
    notebook = nbformat.read(str(run_dir.parent / "01_load.ipynb"), as_version=4)
    kinds = [key for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
             for key in out.get("data", {})]
    assert kinds.count("image/png") >= 2  # duration histogram, waveform + spectrogram
    html = "".join(out["data"].get("text/html", "") for cell in notebook.cells if cell.cell_type == "code"
                   for out in cell.outputs if "data" in out)
    assert "<audio" in html and "<table" in html
