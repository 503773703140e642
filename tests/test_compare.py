"""Comparing models on one test set (xlsr_helpers.compare): paired bootstrap, vocabulary check, model names.

The run-folder tests use test_evaluate.build_tiny_run (real steps 01-03 on the synthetic corpus, a random tiny
model as 04_train/model). That a *trained* model is told apart from a random copy is asserted in the slow tier
(test_learning_proof.py), where a model that has learned exists.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_evaluate import build_tiny_run, copy_run, make_tiny_model, run_config  # noqa: E402

from xlsr_helpers import compare as cmp  # noqa: E402
from xlsr_helpers.evaluate import EvaluationResult, load_test_split, run_normalizer  # noqa: E402
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


def test_model_names_with_an_adapter_language(tmp_path):
    spec = cmp.parse_spec("facebook/mms-1b-all@tur")
    assert (spec.label, spec.model, spec.target_lang) == ("facebook/mms-1b-all@tur", "facebook/mms-1b-all", "tur")
    folder = tmp_path / "mms"
    folder.mkdir()
    assert cmp.parse_spec(f"{folder}@deu") == cmp.ModelSpec("mms@deu", str(folder), "deu")
    with pytest.raises(EvaluationError, match="an adapter language"):
        cmp.parse_spec("facebook/mms-1b-all@")


def test_other_kinds_of_models_are_scored_on_the_same_clips_or_skipped_with_the_reason(tmp_path_factory, monkeypatch):
    """An MMS adapter model in two languages (model@lang), a model whose processor needs the n-gram LM packages
    (read without them), a Whisper model through the ASR pipeline (its text normalized as the references), and a
    pre-trained encoder that cannot transcribe (skipped, with the reason)."""
    import checkpoints as C
    from whisper_tiny import write_tiny_whisper

    run = copy_run(build_tiny_run(tmp_path_factory.getbasetemp()), tmp_path_factory.mktemp("kinds") / "run")
    cfg = run_config(run, eval_batch_size=4)
    root = tmp_path_factory.mktemp("kinds-ckpt")
    mms, encoder = C.build("mms_all", root), C.build("xlsr53_pretrained", root)
    whisper = write_tiny_whisper(root / "whisper-tiny")
    with_lm = root / "with-lm"  # the run's model, its processor saved as an LM processor (as Hub repos with an LM)
    shutil.copytree(run / "04_train" / "model", with_lm)
    for name in ("processor_config.json", "tokenizer_config.json"):
        data = json.loads((with_lm / name).read_text())
        (with_lm / name).write_text(json.dumps({**data, "processor_class": "Wav2Vec2ProcessorWithLM"}))
    monkeypatch.setitem(sys.modules, "pyctcdecode", None)  # the LM packages missing: an ImportError
    clips = load_test_split(cfg).select(range(4))  # 4 clips: a CPU spends ~1 s a clip on Whisper's 30 s window
    comparison = cmp.compare_models(cfg, [str(run), f"{mms}@tur", f"{mms}@deu", str(with_lm), str(whisper),
                                          str(encoder)], dataset=clips, progress=False)
    models = {m["label"]: m for m in comparison.models}
    assert list(models) == ["run run", "mms_all@tur", "mms_all@deu", "with-lm", "whisper-tiny"]
    assert comparison.predictions["with-lm"] == comparison.predictions["run run"], "greedy, the same model"
    # German has no dotless ı: MMS-1b-all's German vocabulary cannot write it, its Turkish one can
    assert "ı" in models["mms_all@deu"]["unwritable"] and "ı" not in models["mms_all@tur"]["unwritable"]
    assert models["whisper-tiny"]["scored_with"] == "pipeline" and models["run run"]["scored_with"] == "ctc"
    normalize = run_normalizer(cfg)
    assert all(normalize(text) == text for text in comparison.predictions["whisper-tiny"])
    assert "normalized" in comparison.models_table().loc["whisper-tiny", "hypotheses"]
    skipped = [(m["label"], "pre-trained encoder" in m["why"]) for m in comparison.skipped]
    assert skipped == [("xlsr53_pretrained", True)]
    assert comparison.to_dict()["skipped"] == comparison.skipped and len(comparison.skipped_table()) == 1
    assert cmp.baseline_spec(cfg) is None  # 03 built a new vocabulary: no zero-shot baseline


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
