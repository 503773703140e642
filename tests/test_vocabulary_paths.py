"""Both vocabularies through steps 03 -> 06 for the checkpoints that already write text: Omnilingual ASR CTC and
Parakeet CTC (tests/checkpoints.py, in the layouts of hf-audio/omniasr-ctc-300m-v2 and nvidia/parakeet-ctc).

Steps 01-02 of a small synthetic Turkish run are shared, normalized as Omnilingual ASR writes
(``NORMALIZER="omnilingual"``); then for each checkpoint and each VOCABULARY ("model": its tokenizer and CTC head
kept; "train": a new character vocabulary and head) the steps run through the Python API (03 run_vocab, 04 run_train,
05 evaluate + comparison, 06 run_model_card). Asserted on what the runs wrote:

- a kept vocabulary: the upload's tokenizer files are the checkpoint's, byte for byte, its head has the checkpoint's
  outputs, step 05 scored the base checkpoint zero-shot on the same clips and the card says what training added;
- a new vocabulary: a character vocab.json and a head of its size, and no zero-shot baseline;
- both: the upload folder reproduces step 05's text of every test clip, and the card's usage code runs as written;
- a run's fine-tuned model, given as MODEL, keeps its (new) vocabulary: continuing a fine-tuned model.

One papermill test runs notebooks 02 -> 06 with MODEL set to the Omnilingual checkpoint and VOCABULARY="model", as a
user would: step 02 picks the omnilingual normalization from MODEL by itself.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

import checkpoints as C
from steps import fresh_run, run_03_to_06, run_card_code, upload_predictions
from test_train import make_run
from xlsr_helpers.card.snippets import code_blocks
from xlsr_helpers.config import Config
from xlsr_helpers.families import resolve
from xlsr_helpers.model_vocab import tokenizer_files

pytestmark = pytest.mark.notebooks
QUICK = dict(max_steps=4, eval_steps=2, save_steps=4, logging_steps=1, batch_size=4, gradient_accumulation_steps=1,
             eval_batch_size=4, gradient_checkpointing=False)
CASES = [pytest.param((kind, vocabulary), id=f"{kind}-{vocabulary}",
                      marks=pytest.mark.skipif(bool(C.missing(kind)), reason=C.missing(kind) or "-"))
         for kind in C.SUBWORD_KINDS for vocabulary in ("model", "train")]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """Steps 01-02 on the tiny synthetic corpus, normalized as Omnilingual ASR's training text."""
    run = tmp_path_factory.mktemp("vocabulary-paths") / "base"
    make_run(run, normalizer="omnilingual")
    return run


@pytest.fixture(scope="module")
def checkpoint_root(tmp_path_factory):
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="module", params=CASES)
def path_run(request, base_run, checkpoint_root, tmp_path_factory):
    kind, vocabulary = request.param
    folder = C.build(kind, checkpoint_root)
    run = fresh_run(base_run, tmp_path_factory.mktemp(f"{kind}-{vocabulary}") / "run")
    return kind, vocabulary, folder, run, run_03_to_06(run, str(folder), vocabulary=vocabulary, **QUICK)


def test_the_vocabulary_is_the_checkpoints_when_kept_and_new_when_trained(path_run):
    from safetensors.torch import load_file

    kind, vocabulary, folder, run, out = path_run
    assert out["vocab"]["vocabulary"]["mode"] == out["train"]["vocabulary"]["mode"] == vocabulary
    assert out["train"]["model_class"] == C.INFO[kind].ctc_class and out["train"]["global_step"] == 4
    upload = run / "06_model_card" / "upload"
    head = load_file(str(upload / "model.safetensors"))["ctc_head.weight"]
    original = load_file(str(folder / "model.safetensors"))["ctc_head.weight"]
    if vocabulary == "model":
        kept = tokenizer_files(folder)
        assert kept and all(_sha(upload / name) == _sha(folder / name) for name in kept)
        assert head.shape == original.shape
        # str.lower (Omnilingual's normalization) writes Turkish İ as i + U+0307, which the fixture's tokenizer
        # (trained on Turkish-aware lower case) cannot write: the coverage report names it
        coverage = out["vocab"]["model_coverage"]
        assert 0.98 < coverage["character_coverage"] < 1.0 and "\u0307" in coverage["unwritable"]
    else:
        assert (upload / "vocab.json").exists() and "tokenizer.json" not in os.listdir(upload)
        assert head.shape[0] == out["vocab"]["tokenizer_len"] != original.shape[0]
        assert out["vocab"]["model_coverage"]["tokenizer_class"] == "ParakeetTokenizer"  # measured, then not kept


def test_a_kept_vocabulary_gets_a_zero_shot_baseline_and_the_card_says_what_training_added(path_run):
    kind, vocabulary, folder, run, out = path_run
    comparison, card = out["comparison"], out["card"].card_text
    if vocabulary == "train":
        assert comparison is None and "What fine-tuning added" not in card
        return
    base = next(m for m in comparison.models if m["baseline"])
    assert base["model"] == str(folder) and base["label"] == f"{folder.name} (base, zero-shot)"
    assert [m["label"] for m in comparison.models if not m["baseline"]] == ["fine-tuned (this run)"]
    assert comparison.n == len(out["result"].rows) and comparison.pairs[0][comparison.metric]["verdict"]
    assert "**What fine-tuning added**" in card and f"`{base['label']}`" in card
    assert "base model's own tokenizer" in card and "shipped unchanged" in card


def test_the_upload_reproduces_step_05_and_the_cards_code_runs(path_run, tmp_path):
    kind, vocabulary, folder, run, out = path_run
    assert out["card"].verification["ok"] and out["card"].verification["matches_05_evaluate"]
    again, written = upload_predictions(run)
    assert again == written
    code = code_blocks(out["card"].card_text)[0]
    assert ("skip_special_tokens=True" in code) == (vocabulary == "model")  # subword pieces, as the processor decodes
    printed, predicted = run_card_code(code, out["card"].repo_id, run, tmp_path)
    assert printed == predicted


def test_a_fine_tuned_model_given_as_model_keeps_its_own_vocabulary(path_run, tmp_path):
    """Continuing a fine-tuned model: a run's 04_train/model as MODEL writes the text, so "auto" keeps it."""
    from transformers import AutoProcessor

    from xlsr_helpers.models import build_model
    from xlsr_helpers.vocab import run_vocab

    kind, vocabulary, folder, run, out = path_run
    if vocabulary != "train":
        pytest.skip("one continuation per checkpoint: from the run that made a new vocabulary")
    again = fresh_run(run, tmp_path / "again")
    cfg = resolve(Config.load(again).updated(run_dir=str(again), model=str(run / "04_train" / "model"),
                                             vocabulary="auto"))
    report = run_vocab(cfg, log=lambda *a, **k: None).report
    assert report["vocabulary"]["mode"] == "model" and "writes 100.00%" in report["vocabulary"]["reason"]
    model = build_model(cfg, AutoProcessor.from_pretrained(str(cfg.processor_dir)), log=lambda *a, **k: None)
    from safetensors.torch import load_file

    trained = load_file(str(run / "04_train" / "model" / "model.safetensors"))["ctc_head.weight"]
    assert (model.ctc_head.weight.detach() == trained).all()


def test_notebooks_02_to_06_keep_an_omnilingual_model_s_vocabulary(base_run, checkpoint_root, tmp_path):
    """As a user would: MODEL set in notebooks 02-06 to an Omnilingual ASR checkpoint, VOCABULARY "model"."""
    from xlsr_helpers.pipeline import run_pipeline

    if C.missing("omniasr_ctc"):
        pytest.skip(C.missing("omniasr_ctc"))
    folder = C.build("omniasr_ctc", checkpoint_root)
    run = tmp_path / "run"
    run.mkdir()
    for name in ("01_load", "run.json"):
        (shutil.copytree if (base_run / name).is_dir() else shutil.copy)(base_run / name, run / name)
    params = {"LANGUAGE": "tr", "RUN_DIR": str(run), "MODEL": str(folder), "VOCABULARY": "model",
              "NORMALIZER": "auto", **{k.upper(): v for k, v in QUICK.items()}}
    results = run_pipeline(params, steps="2-6", progress=False, cell_timeout_s=600).results
    assert results["02_normalize"]["normalizer_mode"] == "omnilingual"
    assert results["03_vocab"]["vocabulary"] == "model" and results["03_vocab"]["character_coverage"] > 0.98
    assert results["05_evaluate"]["zero_shot_baseline"]["label"] == f"{folder.name} (base, zero-shot)"
    assert results["06_model_card"]["verified"]
    upload = run / "06_model_card" / "upload"
    assert all(_sha(upload / name) == _sha(folder / name) for name in tokenizer_files(folder))
