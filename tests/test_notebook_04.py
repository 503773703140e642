"""Notebook 04_train runs headless (papermill) on the tiny synthetic corpus with the tiny model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from xlsr_helpers.results import read_results

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "04_train.ipynb"
QUICK = {"MODEL": "tiny", "MAX_STEPS": 4, "EVAL_STEPS": 2, "SAVE_STEPS": 2, "LOGGING_STEPS": 1, "BATCH_SIZE": 4,
         "GRADIENT_ACCUMULATION_STEPS": 1}


def execute(run_dir: Path, out: Path, **parameters):
    import papermill

    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved) if p)  # the kernel imports xlsr_helpers
    try:
        papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(out.parent),
                                   progress_bar=False, execution_timeout=600,
                                   parameters={"RUN_DIR": str(run_dir), "LANGUAGE": "tr", **parameters})
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return read_results(out)


def test_notebook_04_trains_saves_and_refuses_to_overwrite(tmp_path):
    from papermill.exceptions import PapermillExecutionError
    from test_train import make_run

    run_dir = tmp_path / "run"
    make_run(run_dir)
    results = execute(run_dir, tmp_path / "04_train.ipynb", **QUICK)
    assert results["global_step"] == 4 and results["start_step"] == 0
    assert results["stopped_by"] == "completed" and results["resumed_from"] is None
    assert 0 <= results["eval_cer"] and 0 <= results["empty_share"] <= 1
    assert [e["step"] for e in results["evaluations"]] == [2, 4]
    assert results["rows_kept"]["train"] > 0 and 0.5e6 < results["parameters"] < 0.6e6
    model_dir = Path(results["model_dir"])
    assert (model_dir / "model.safetensors").exists() and (model_dir / "vocab.json").exists()
    assert (run_dir / "04_train" / "curves.png").exists()
    report = json.loads((run_dir / "04_train" / "report.json").read_text())
    assert report["global_step"] == 4
    run = json.loads((run_dir / "run.json").read_text())
    assert run["steps"]["04_train"]["model"] == "tiny" and run["steps"]["04_train"]["learning_rate"] == 5e-3

    # Running it again must not silently replace the finished model.
    with pytest.raises(PapermillExecutionError, match="OVERWRITE_MODEL"):
        execute(run_dir, tmp_path / "again.ipynb", **QUICK)
    # With OVERWRITE_MODEL and more steps, it continues from the last checkpoint (step 4).
    results = execute(run_dir, tmp_path / "more.ipynb", **{**QUICK, "MAX_STEPS": 6, "OVERWRITE_MODEL": True})
    assert results["start_step"] == 4 and results["global_step"] == 6
    assert results["resumed_from"].endswith("checkpoint-4")
