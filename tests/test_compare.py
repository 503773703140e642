"""Comparing models on one test set (xlsr_helpers.compare): paired bootstrap, vocabulary check, model names.

The run-folder tests use test_evaluate.build_tiny_run (real steps 01-03 on the synthetic corpus, a random tiny
model as 04_train/model). That a *trained* model is told apart from a random copy is asserted in the slow tier
(test_learning_proof.py), where a model that has learned exists.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_evaluate import build_tiny_run, copy_run, make_tiny_model, run_config  # noqa: E402

from xlsr_helpers import compare as cmp  # noqa: E402
from xlsr_helpers.evaluate import EvaluationResult  # noqa: E402
from xlsr_helpers.metrics import EvaluationError, compute_metrics  # noqa: E402


def _result(references, predictions) -> EvaluationResult:
    rows = [{"path": f"clip{i}", "reference": r, "prediction": p, "errors": 0, "words": len(r.split())}
            for i, (r, p) in enumerate(zip(references, predictions))]
    metrics = compute_metrics(references, predictions, n_resamples=200)
    metrics["empty_predictions"] = sum(1 for p in predictions if not p)
    return EvaluationResult(metrics=metrics, errors={}, rows=rows)


def _Tokenizer(letters: str):
    """A character CTC tokenizer of ``letters`` (as step 03 builds one)."""
    from xlsr_helpers.vocab import build_vocab, make_tokenizer

    return make_tokenizer(build_vocab([letters]))


def test_paired_bootstrap_of_identical_errors_is_exactly_zero():
    errors = np.array([1, 0, 3, 2, 0, 1])
    totals = np.array([4, 5, 6, 3, 2, 4])
    assert cmp.paired_bootstrap(errors, errors, totals) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_sees_a_consistent_small_difference_that_unpaired_intervals_miss():
    """A is one error better on every utterance: the difference is certain, though the two models' own
    intervals overlap (the utterances differ a lot in difficulty) - what a paired test is for."""
    from xlsr_helpers.metrics import bootstrap_ci

    rng = np.random.default_rng(0)
    totals = rng.integers(5, 15, size=60)
    errors_b = np.minimum(totals, rng.integers(1, 12, size=60))
    errors_a = np.maximum(errors_b - 1, 0)
    difference, low, high = cmp.paired_bootstrap(errors_a, errors_b, totals)
    assert difference < 0 and high < 0
    ci_a, ci_b = bootstrap_ci(errors_a, totals), bootstrap_ci(errors_b, totals)
    assert ci_a[1] > ci_b[0], "the unpaired intervals overlap"
    assert cmp.verdict(low, high, "A", "B") == "A is better"
    assert cmp.verdict(-high, -low, "A", "B") == "B is better"
    assert cmp.verdict(-0.01, 0.02, "A", "B") == "no clear difference"


def test_paired_bootstrap_refuses_unequal_lengths():
    with pytest.raises(EvaluationError, match="equal length"):
        cmp.paired_bootstrap(np.array([1, 2]), np.array([1]), np.array([3, 3]))


def test_comparison_of_results_flags_unwritable_characters_and_ranks_by_the_primary_metric():
    references = ["iyi günler", "çok güzel", "ışık var", "su"] * 5
    good = ["iyi günler", "çok güzel", "ışık vaa", "su"] * 5
    bad = ["iyi gunler", "cok guzel", "isik var", ""] * 5
    comparison = cmp.compare_results(
        {"good": _result(references, good), "bad": _result(references, bad)},
        {"good": _Tokenizer("abcçdefgğhıijklmnoöprsştuüvyz"), "bad": _Tokenizer("abcdefghijklmnoprstuvyz")},
        language="tr", n_resamples=200)
    assert comparison.metric == "wer" and comparison.n == 20
    models = {m["label"]: m for m in comparison.models}
    assert models["good"]["unwritable"] == {}
    assert set(models["bad"]["unwritable"]) == {"ü", "ç", "ı", "ş"}
    assert 0 < models["bad"]["unwritable_share"] < 1
    pair = comparison.pairs[0]
    assert (pair["a"], pair["b"]) == ("good", "bad")
    assert pair["wer"]["high"] < 0 and pair["wer"]["verdict"] == "good is better"
    table = comparison.models_table()
    assert list(table.index) == ["good", "bad"] and table.loc["bad", "cannot write"] == "çüış"
    assert comparison.pairs_table().iloc[0]["verdict"] == "good is better"
    assert cmp.compare_results({"good": _result(references, good), "x": _result(references, good)},
                               {"good": _Tokenizer("abc"), "x": _Tokenizer("abc")}, "zh-CN").metric == "cer"


def test_results_of_other_clips_cannot_be_compared():
    a = _result(["bir", "iki"], ["bir", "iki"])
    b = _result(["bir", "üç"], ["bir", "üç"])
    with pytest.raises(EvaluationError, match="same test set"):
        cmp.compare_results({"a": a, "b": b}, {"a": _Tokenizer("a"), "b": _Tokenizer("a")}, "tr")
    with pytest.raises(EvaluationError, match="at least two"):
        cmp.compare_results({"a": a}, {"a": _Tokenizer("a")}, "tr")


def test_model_names(tmp_path):
    assert cmp.model_specs(" a, ,b ,") == ["a", "b"]
    assert cmp.resolve_model("facebook/wav2vec2-large-xlsr-53") == ("facebook/wav2vec2-large-xlsr-53",) * 2
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert cmp.resolve_model(str(folder)) == ("my-model", str(folder))
    run = tmp_path / "run-tr"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with pytest.raises(EvaluationError, match="no trained model"):
        cmp.resolve_model(str(run))
    (run / "04_train" / "model").mkdir(parents=True)
    assert cmp.resolve_model(str(run)) == ("run run-tr", str(run / "04_train" / "model"))
    with pytest.raises(EvaluationError, match="not a model folder"):
        cmp.resolve_model(str(tmp_path / "missing" / "folder"))


def test_a_run_compared_with_itself_and_a_random_copy(tmp_path_factory):
    """The same model under two names: difference exactly 0, "no clear difference"; a random-weight copy of
    another seed is scored on the very same clips, and the file step 06 reads is written."""
    run = copy_run(build_tiny_run(tmp_path_factory.getbasetemp()), tmp_path_factory.mktemp("cmp") / "run")
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(run / "04_train" / "model"))
    other = make_tiny_model(tmp_path_factory.mktemp("other") / "random-copy", processor, seed=7)
    cfg = run_config(run, eval_batch_size=4)
    comparison = cmp.compare_models(cfg, [str(run), str(run / "04_train" / "model"), str(other)], progress=False)
    labels = [m["label"] for m in comparison.models]
    assert labels == ["run run", "model", "random-copy"]
    assert len(comparison.pairs) == 3
    same = comparison.pairs[0]
    assert (same["a"], same["b"]) == ("run run", "model")
    for metric in ("wer", "cer"):
        assert same[metric]["difference"] == same[metric]["low"] == same[metric]["high"] == 0.0
        assert same[metric]["verdict"] == "no clear difference"
    assert comparison.predictions["run run"] == comparison.predictions["model"]
    assert comparison.predictions["model"] != comparison.predictions["random-copy"]
    path = comparison.write(cfg.step_dir("05_evaluate"))
    saved = json.loads(path.read_text())
    assert saved["n"] == comparison.n > 0 and [m["label"] for m in saved["models"]] == labels
    assert "predictions" not in saved
    fig = cmp.plot_differences(comparison)
    assert len(fig.axes[0].get_yticklabels()) == 3


def test_the_card_shows_baseline_vs_fine_tuned_and_a_new_evaluation_drops_an_old_comparison(tmp_path_factory):
    from xlsr_helpers.card.run_info import read_run
    from xlsr_helpers.card.text import build_card
    from xlsr_helpers.evaluate import run_evaluation

    run = copy_run(build_tiny_run(tmp_path_factory.getbasetemp()), tmp_path_factory.mktemp("card") / "run")
    cfg = run_config(run, eval_batch_size=4)
    result = run_evaluation(cfg, progress=False)
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(cfg.model_dir))
    other = make_tiny_model(tmp_path_factory.mktemp("base") / "base-model", processor, seed=3)
    own = ("fine-tuned (this run)", str(cfg.model_dir), result, processor.tokenizer)
    comparison = cmp.compare_models(cfg, [str(other)], own=own, progress=False)
    assert comparison.models[0]["wer"] == result.metrics["wer"], "step 05's own result is reused, not re-scored"
    comparison.write(cfg.step_dir("05_evaluate"))
    card = str(build_card(read_run(cfg), "ada/x"))
    section = card.split("## Baseline vs fine-tuned")[1].split("## Limitations")[0]
    assert f"same {comparison.n} test clips" in section
    assert "`fine-tuned (this run)` − `base-model`" in section and str(other) in section
    assert comparison.pairs[0]["wer"]["verdict"] in section
    run_evaluation(cfg, progress=False)  # evaluated again (another model, other settings): the comparison is stale
    assert not (cfg.step_dir("05_evaluate") / cmp.COMPARISON_FILE).exists()
    assert "Baseline vs fine-tuned" not in str(build_card(read_run(cfg), "ada/x"))


@pytest.mark.notebooks
def test_xlsr_evaluate_compare_runs_notebook_05_with_the_comparison(tmp_path_factory, capsys):
    from transformers import AutoProcessor

    from xlsr_helpers.cli import main
    from xlsr_helpers.results import read_results

    run = copy_run(build_tiny_run(tmp_path_factory.getbasetemp()), tmp_path_factory.mktemp("cli") / "run")
    processor = AutoProcessor.from_pretrained(str(run / "04_train" / "model"))
    other = make_tiny_model(tmp_path_factory.mktemp("cli-other") / "base-model", processor, seed=5)
    assert main(["evaluate", "--run-dir", str(run), "--compare", str(other), "-p", "EVAL_BATCH_SIZE=4"]) == 0
    printed = capsys.readouterr().out
    saved = json.loads((run / "05_evaluate" / cmp.COMPARISON_FILE).read_text())
    assert [m["label"] for m in saved["models"]] == ["fine-tuned (this run)", "base-model"]
    assert "fine-tuned (this run) - base-model:" in printed and saved["pairs"][0]["wer"]["verdict"] in printed
    recorded = read_results(run / "notebooks" / "05_evaluate.ipynb")
    assert recorded["compared_with"] == ["fine-tuned (this run)", "base-model"]
    assert recorded["comparison_verdicts"] == [saved["pairs"][0]["wer"]["verdict"]]
    metrics = json.loads((run / "05_evaluate" / "metrics.json").read_text())
    assert saved["models"][0]["wer"] == metrics["wer"], "the run's model: step 05's own numbers"
    assert main(["evaluate", "--run-dir", str(tmp_path_factory.mktemp("empty"))]) == 2
