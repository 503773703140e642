"""Many languages in one go (xlsr_helpers.sweep, ``xlsr run --language a,b,c``): one run folder per language, a
failing language reported with its step and error while the others go on, one table at the end."""

from __future__ import annotations

import csv
import json

import pytest

from xlsr_helpers import sweep
from xlsr_helpers.cli import main

# A few updates of the tiny model on the tiny synthetic corpus: what is tested is the sweep, not learning.
QUICK = {"SYNTHETIC_SIZE": "tiny", "MAX_STEPS": 2, "EVAL_STEPS": 2, "SAVE_STEPS": 2, "LOGGING_STEPS": 1,
         "BATCH_SIZE": 4, "GRADIENT_ACCUMULATION_STEPS": 1}


def test_languages_and_root(tmp_path):
    assert sweep.languages_of(" tr, de,,tr ,zh-CN") == ["tr", "de", "zh-CN"]
    assert sweep.sweep_root(tmp_path) == tmp_path.resolve()


def test_a_language_that_fails_before_any_notebook_is_reported_and_the_table_says_so(tmp_path):
    outcomes = sweep.run_sweep(["tr", "de"], {"NOT_A_PARAMETER": 1}, root=tmp_path, log=lambda *a: None)
    assert [(o.language, o.status, o.failed_step) for o in outcomes] == [("tr", "failed", "(set-up)"),
                                                                         ("de", "failed", "(set-up)")]
    assert "NOT_A_PARAMETER" in outcomes[0].error
    table = sweep.sweep_markdown(outcomes)
    assert "0 of 2 languages done, 2 failed" in table and table.count("| failed |") == 2


def test_the_table_bolds_the_metric_to_read():
    outcomes = [sweep.LanguageOutcome("tr", "/r/tr", "ok", wer=0.25, cer=0.08, metric="wer", test_clips=10),
                sweep.LanguageOutcome("zh-CN", "/r/zh-CN", "ok", wer=0.9, cer=0.3, metric="cer", test_clips=10)]
    rows = sweep.sweep_markdown(outcomes).splitlines()
    assert "| tr | ok | **25.00** | 8.00 |" in rows[2]
    assert "| zh-CN | ok | 90.00 | **30.00** |" in rows[3]


@pytest.mark.notebooks
def test_three_languages_one_failing(tmp_path, capsys):
    """tr and de run all six notebooks; qq (no such language) fails in 01_load; the sweep goes on after it."""
    args = ["run", "--language", "tr,qq,de", "--source", "synthetic", "--model", "tiny", "--run-dir", str(tmp_path)]
    for name, value in QUICK.items():
        args += ["-p", f"{name}={value}"]
    code = main(args)
    printed = capsys.readouterr().out
    assert code == 1, "a failed language makes the exit status non-zero"
    rows = {row["language"]: row for row in csv.DictReader((tmp_path / "sweep.csv").open(encoding="utf-8"))}
    assert list(rows) == ["tr", "qq", "de"]
    assert rows["qq"]["status"] == "failed" and rows["qq"]["failed_step"] == "01_load"
    assert "Unknown language 'qq'" in rows["qq"]["error"]
    for language in ("tr", "de"):
        assert rows[language]["status"] == "ok" and rows[language]["failed_step"] == ""
        metrics = json.loads((tmp_path / language / "05_evaluate" / "metrics.json").read_text())
        assert float(rows[language]["wer"]) == pytest.approx(metrics["wer"])
        assert int(rows[language]["test_clips"]) == metrics["n"] > 0
        assert (tmp_path / language / "06_model_card" / "upload" / "README.md").exists()
        assert json.loads((tmp_path / language / "run.json").read_text())["config"]["language"] == language
    assert (tmp_path / "qq" / "notebooks" / "01_load.ipynb").exists(), "the failed notebook, with its traceback"
    markdown = (tmp_path / "sweep.md").read_text()
    assert "2 of 3 languages done, 1 failed" in markdown and markdown in printed


def test_xlsr_run_and_the_sweep_set_no_cell_timeout_unless_asked(tmp_path, monkeypatch, capsys):
    """`xlsr run` used to stop any cell after an hour (--cell-timeout 3600), and step 04 trains in one cell."""
    from xlsr_helpers import pipeline

    limits = []

    def run_pipeline(parameters, steps=None, cell_timeout_s="not given", **kwargs):
        limits.append((parameters.get("LANGUAGE"), cell_timeout_s))
        return pipeline.PipelineResult(run_dir=tmp_path / parameters.get("LANGUAGE", "run"))

    monkeypatch.setattr(pipeline, "run_pipeline", run_pipeline)
    common = ["--source", "synthetic", "--model", "tiny", "--run-dir", str(tmp_path)]
    assert main(["run", "--language", "tr", *common]) == 0
    assert main(["run", "--language", "tr", *common, "--cell-timeout", "7200"]) == 0
    assert main(["run", "--language", "tr,de", *common]) == 0
    assert limits == [("tr", None), ("tr", 7200), ("tr", None), ("de", None)]
    assert sweep.run_sweep(["tr"], {}, root=tmp_path, log=lambda *a: None)[0].status == "ok"
    assert limits[-1] == ("tr", None)
