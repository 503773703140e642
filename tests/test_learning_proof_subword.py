"""Slow tier: the learning proof of a model that already writes the language (issue 24, item 6).

tests/pretrained_subword.py makes (or reads, committed) a small ``OmniASRForCTC`` in Omnilingual ASR's layout,
trained with CTC on its own SentencePiece vocabulary on six synthetic languages, Turkish among them from another
corpus. On the target's corpus (Turkish, other speakers and sentences) it must

- transcribe the test split zero-shot (CER below 1), scored as step 05 scores its baseline;
- fine-tuned with ``VOCABULARY="model"`` (its tokenizer and head kept), beat the same checkpoint fine-tuned with
  ``VOCABULARY="train"`` (a new character vocabulary and a new head on the same encoder) after the same number of
  updates, both with one recipe (``pretrained.CPU_RECIPES["omniasr-ctc"]``).

The thresholds were set from measured curves (see the constants) with a margin.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pretrained import PROOF_EVAL_STEPS, curves_table, fine_tune, prepare_run
from pretrained_subword import PROOF_STEPS, TARGET, VOCABULARIES, score, subword_model

pytestmark = pytest.mark.slow

# Measured on 2 cores (the committed model: 8,000 updates of pre-training, held-out CER 0.43 on the six languages;
# lr 3e-3): zero-shot test CER 0.59 (eval split 0.35); after 150 updates, test CER of "model" / "train" 0.51 / 0.99
# (SEED 42), 0.51 / 0.82 (SEED 1), 0.48 / 0.81 (SEED 3); after 300 (SEED 42) 0.42 / 0.89. Set with a margin.
ZERO_SHOT_MAX_CER = 0.8
KEEP_BEATS_NEW_HEAD_BY = 0.2  # test CER of "model" + this < test CER of "train", after PROOF_STEPS updates each


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    return subword_model(tmp_path_factory.mktemp("subword"))


@pytest.fixture(scope="module")
def base_run(model_folder, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("target") / TARGET
    prepare_run(run, TARGET, model=str(model_folder), size="demo")
    return run


@pytest.fixture(scope="module")
def zero_shot_test(model_folder, base_run) -> dict:
    return score(model_folder, base_run, "test")


@pytest.fixture(scope="module")
def arms(model_folder, base_run, tmp_path_factory) -> dict[str, dict]:
    """Step 04's report of each arm, with ``test``: its model scored on the test split as the zero-shot one was."""
    root = tmp_path_factory.mktemp("arms")
    reports = {vocabulary: fine_tune(model_folder, base_run, root / vocabulary, PROOF_STEPS, PROOF_EVAL_STEPS,
                                     vocabulary=vocabulary) for vocabulary in VOCABULARIES}
    for report in reports.values():
        report["test"] = score(report["model_dir"], base_run, "test")
    print(f"\nfine-tuning on {TARGET}, held-out CER (eval split), {PROOF_STEPS} updates per arm:")
    print(curves_table(reports))
    print(", ".join(f"{v}: test CER {r['test']['cer']:.3f}" for v, r in reports.items()))
    return reports


def test_the_model_is_saved_in_omnilingual_layout(model_folder, tmp_path):
    from checkpoints_subword import write_omniasr_ctc

    from xlsr_helpers.families import detect_family

    reference = write_omniasr_ctc(tmp_path / "reference")
    assert sorted(p.name for p in model_folder.iterdir() if p.name != "pretraining.json") == \
        sorted(p.name for p in reference.iterdir())
    config = json.loads((model_folder / "config.json").read_text())
    assert config["model_type"] == "omniasr_ctc" and config["architectures"] == ["OmniASRForCTC"]
    assert detect_family(str(model_folder))[0] == "omniasr-ctc"
    record = json.loads((model_folder / "pretraining.json").read_text())
    assert TARGET in [c["language"] for c in record["corpora"]]
    assert record["final_eval"]["cer"] < 1


def test_the_base_run_keeps_the_model_vocabulary(base_run):
    report = json.loads((base_run / "03_vocab" / "report.json").read_text())
    assert report["vocabulary"]["mode"] == "model" and not report["character_tokenizer"]
    assert report["model_coverage"]["unwritable_character_count"] == 0


def test_a_model_that_heard_the_language_transcribes_it_zero_shot(zero_shot_test):
    assert zero_shot_test["cer"] < ZERO_SHOT_MAX_CER, zero_shot_test
    assert zero_shot_test["empty_predictions"] < 0.5 * zero_shot_test["n"], zero_shot_test


def test_keeping_the_model_vocabulary_beats_a_new_head_at_equal_updates(arms, zero_shot_test):
    kept, new = arms["model"], arms["train"]
    assert kept["global_step"] == new["global_step"] == PROOF_STEPS, "the same budget of updates"
    assert kept["learning_rate"] == new["learning_rate"] and kept["batch_size"] == new["batch_size"]
    assert kept["family"] == new["family"] == "omniasr-ctc"
    assert kept["parameters"]["trainable"] > new["parameters"]["trainable"], "the kept head is the larger one"
    assert kept["test"]["cer"] + KEEP_BEATS_NEW_HEAD_BY < new["test"]["cer"], curves_table(arms)
    assert kept["test"]["cer"] < zero_shot_test["cer"], "fine-tuning adds to what the model could do zero-shot"


def test_the_kept_vocabulary_is_the_models_own(arms, model_folder):
    """The fine-tuned model of the "model" arm writes with the checkpoint's tokenizer (files unchanged), the
    "train" arm's with a new character vocabulary."""
    kept, new = Path(arms["model"]["model_dir"]), Path(arms["train"]["model_dir"])
    assert (kept / "tokenizer.json").read_bytes() == (model_folder / "tokenizer.json").read_bytes()
    assert json.loads((kept / "config.json").read_text())["vocab_size"] == \
        json.loads((model_folder / "config.json").read_text())["vocab_size"]
    assert (new / "vocab.json").exists() and not (new / "tokenizer.json").exists()
