"""Notebooks 05 and 06 run headless (papermill) on a tiny run, and no token ever reaches a file.

The run folder comes from test_evaluate.build_tiny_run (real steps 01-03 on the synthetic corpus, a
random tiny model as 04_train/model). A fake HF_TOKEN is set in the environment of the kernels; after the
notebooks ran — once without pushing, once pushing to a Hub endpoint that refuses connections — every
file of the run folder and every executed notebook is searched for it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_evaluate import build_tiny_run, copy_run  # noqa: E402

from xlsr_helpers.pipeline import StepFailed, run_pipeline  # noqa: E402

pytestmark = pytest.mark.notebooks
FAKE_TOKEN = "hf_FAKEsecretTOKENforLEAKcheck9876543210"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Steps 05 and 06 of a tiny run, with a fake token in the environment and PUSH_TO_HUB False."""
    run = copy_run(build_tiny_run(tmp_path_factory.getbasetemp()), tmp_path_factory.mktemp("nb") / "run")
    patch = pytest.MonkeyPatch()
    patch.setenv("HF_TOKEN", FAKE_TOKEN)
    try:
        result = run_pipeline({"LANGUAGE": "tr", "RUN_DIR": str(run), "EVAL_BATCH_SIZE": 4, "AUTHOR_NAME": "Test Author"},
                              steps="5-6", progress=False, cell_timeout_s=600)
    finally:
        patch.undo()
    return run, result


def test_05_records_the_metrics_it_wrote(executed):
    run, result = executed
    recorded = result.results["05_evaluate"]
    metrics = json.loads((run / "05_evaluate" / "metrics.json").read_text())
    assert recorded["wer"] == pytest.approx(metrics["wer"]) and recorded["cer"] == pytest.approx(metrics["cer"])
    assert recorded["n"] == metrics["n"] > 0
    assert recorded["wer_ci"] == pytest.approx(metrics["ci"]["wer"])
    assert recorded["batch_invariant"] is True
    assert recorded["decoding"] == "greedy CTC"
    for name in ("predictions.tsv", "metrics.json", "errors.json"):
        assert (run / "05_evaluate" / name).stat().st_size > 0
    assert json.loads((run / "run.json").read_text())["steps"]["05_evaluate"]["eval_batch_size"] == 4


def test_06_writes_a_verified_card_with_05s_numbers(executed):
    run, result = executed
    recorded = result.results["06_model_card"]
    metrics = json.loads((run / "05_evaluate" / "metrics.json").read_text())
    assert recorded["wer_in_card"] == round(100 * metrics["wer"], 2)
    assert recorded["verified"] is True and recorded["pushed"] is False
    assert {"README.md", "config.json", "model.safetensors", "vocab.json", "normalizer.json"} <= set(recorded["files"])
    card = Path(recorded["card_path"]).read_text()
    assert "Test Author" in card and "TODO" not in card
    assert recorded["model_id"] == "wav2vec2-tiny-tr"


def test_no_token_in_any_file_or_executed_notebook(executed, monkeypatch):
    run, _ = executed
    # Now ask for a push: a token is found, the (unreachable) Hub refuses, the step fails with a traceback.
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(StepFailed, match="06_model_card"):
        run_pipeline({"LANGUAGE": "tr", "RUN_DIR": str(run), "PUSH_TO_HUB": True, "HUB_MODEL_ID": "someone/tiny-tr"},
                     steps="6", progress=False, cell_timeout_s=600)
    executed_06 = (run / "notebooks" / "06_model_card.ipynb").read_text()
    assert "127.0.0.1" in executed_06 or "onnect" in executed_06, "the push was really attempted"
    files = [p for p in run.rglob("*") if p.is_file()]
    assert len(files) > 20 and (run / "notebooks" / "05_evaluate.ipynb") in files
    leaking = [str(p) for p in files if FAKE_TOKEN.encode() in p.read_bytes()]
    assert not leaking, f"the token is written in {leaking}"
