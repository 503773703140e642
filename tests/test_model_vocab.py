"""Step 03's two vocabularies (xlsr_helpers.model_vocab, vocab.run_vocab): MODEL's own tokenizer and CTC head kept,
or a new character vocabulary; the coverage report that decides between them; subword decoding (ctc.py); the head
that step 04 keeps (models.build_model). Checkpoints in the on-disk layouts of the real repositories
(tests/checkpoints.py); the 03 -> 06 runs of both modes are in test_vocabulary_paths.py (notebooks tier)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import checkpoints as C
from test_vocab import _save_step2
from xlsr_helpers import ctc
from xlsr_helpers.config import Config
from xlsr_helpers.families import resolve
from xlsr_helpers.labels import round_trip
from xlsr_helpers.model_vocab import VocabularyError, coverage, decision, tokenizer_files
from xlsr_helpers.vocab import build_vocab, make_tokenizer, run_vocab

TURKISH = {"train": ["merhaba dünya", "okul okul güzel", "kedi ve köpek"], "eval": ["güzel kedi"],
           "test": ["merhaba okul"]}


def needs(kind: str):
    return pytest.mark.skipif(bool(C.missing(kind)), reason=C.missing(kind) or "-")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return lambda kind: C.build(kind, root)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------
# coverage
# --------------------------------------------------------------------------------------------------
def test_coverage_names_what_the_tokenizer_cannot_write_and_whether_ctc_fits():
    tokenizer = make_tokenizer(build_vocab(["abc de"]))
    sentences = ["abc de", "abx ye", "dd"]
    frames = lambda lengths: [n // 320 for n in lengths]  # noqa: E731 - 50 frames a second
    report = coverage(tokenizer, sentences, seconds=[1.0, 1.0, 0.04], frames=frames)
    assert report["unwritable"] == "xy" and report["unwritable_character_count"] == 2
    assert [(e["char"], e["count"]) for e in report["unwritable_characters"]] == [("x", 1), ("y", 1)]
    assert report["character_coverage"] == pytest.approx(1 - 2 / 12)
    assert {e["word"] for e in report["unwritable_words"]} == {"abx", "ye"} and report["unwritable_word_count"] == 2
    assert report["labels"] == 14 and report["unknown_tokens"] == 2
    assert report["unknown_token_rate"] == pytest.approx(2 / 14)
    # "dd" needs 3 frames (d, blank, d) and its 0.04 s clip has 2: CTC cannot write it
    assert report["frames_per_second"] == 50.0 and report["infeasible_clips"] == 1
    assert report["labels_per_second"] == pytest.approx(14 / 2.04, rel=1e-3)


# --------------------------------------------------------------------------------------------------
# subword decoding
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [pytest.param(k, marks=needs(k)) for k in C.SUBWORD_KINDS])
def test_ctc_output_of_a_subword_model_decodes_as_its_processor_and_labels_are_never_merged(build, kind):
    from transformers import AutoConfig, AutoProcessor

    folder = build(kind)
    processor = AutoProcessor.from_pretrained(str(folder))
    tokenizer = processor.tokenizer
    blank = ctc.blank_id(tokenizer, AutoConfig.from_pretrained(str(folder)))
    assert blank == C.INFO[kind].extra["blank_token_id"]
    rng = np.random.default_rng(0)
    special = [blank, tokenizer.pad_token_id, tokenizer.unk_token_id]
    paths = rng.choice(np.r_[special * 20, np.arange(len(tokenizer))], size=(6, 40))
    paths[:, 5:9] = paths[:, 5:6]  # repeats to merge
    paths[0, -3:] = ctc.IGNORED_ID  # frames outside the clip
    expected = processor.batch_decode(np.where(paths < 0, blank, paths), skip_special_tokens=True)
    assert ctc.greedy_decode(tokenizer, paths, blank) == expected
    assert not ctc.is_character_tokenizer(tokenizer)
    # a text whose labels repeat an id (a doubled letter, a repeated word): labels must not be merged as CTC output
    candidates = [f"merhaba {w}" for w in ("okul okul okul", "anne", "kedi kedi", *(c * 3 for c in "aeiklmnoprstu"))]
    labels = {text: tokenizer(text, add_special_tokens=False).input_ids for text in candidates}
    text = next(t for t, ids in labels.items() if any(a == b for a, b in zip(ids, ids[1:])))
    checked = round_trip(tokenizer, [text, "merhaba dünya"])
    assert checked["ok"], checked["examples"]
    assert ctc.decode_labels(tokenizer, [labels[text]]) == [text] != tokenizer.batch_decode([labels[text]])
    from xlsr_helpers.lm import build_lm_decoder
    from xlsr_helpers.metrics import EvaluationError

    with pytest.raises(EvaluationError, match="subword tokenizer"):  # n-gram decoding reads characters
        build_lm_decoder(processor, "lm.arpa")


# --------------------------------------------------------------------------------------------------
# the decision
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, mode, why", [
    ("xlsr53_pretrained", "train", "no CTC head"),
    ("hubert_ctc_finetuned", "train", "writes 0.00% of the training text's characters"),  # English upper case
    ("mms_all", "model", "writes 100.00%"),  # MMS-1b-all with its Turkish adapter and vocabulary
    pytest.param("omniasr_ctc", "model", "writes 100.00%", marks=needs("omniasr_ctc")),
])
def test_auto_keeps_the_vocabulary_of_a_model_that_writes_the_text_and_records_why(build, tmp_path, kind, mode, why):
    folder = build(kind)
    run = tmp_path / "run"
    _save_step2(run, TURKISH)
    cfg = Config(run_dir=str(run), model=str(folder), language="tr")
    report = run_vocab(cfg).report
    assert report["vocabulary"]["setting"] == "auto" and report["vocabulary"]["mode"] == mode
    assert why in report["vocabulary"]["reason"]
    recorded = json.loads((run / "run.json").read_text())["vocabulary"]
    assert recorded["mode"] == mode and recorded["model"] == str(folder) and decision(cfg)["mode"] == mode
    assert report["round_trip_ok"]
    saved = run / "03_vocab" / "processor"
    if mode == "model":  # the checkpoint's tokenizer files, byte for byte (MMS: tokenizer_config names target_lang)
        kept = [n for n in tokenizer_files(folder) if not (kind == "mms_all" and n == "tokenizer_config.json")]
        assert "tokenizer.json" in kept or "vocab.json" in kept
        assert kept and sorted(report["kept_files"]) == sorted(kept)
        assert all(_sha(saved / name) == _sha(folder / name) for name in kept)
        assert report["model_coverage"]["character_coverage"] == 1.0
    else:
        assert json.loads((saved / "vocab.json").read_text())["|"] == 0
    if kind != "xlsr53_pretrained":
        assert report["model_coverage"]["tokenizer_size"] > 0


def test_vocabulary_model_needs_a_head_and_other_settings_are_refused(build, tmp_path):
    run = tmp_path / "run"
    _save_step2(run, TURKISH)
    with pytest.raises(VocabularyError, match="no CTC head"):
        run_vocab(Config(run_dir=str(run), model=str(build("xlsr53_pretrained")), language="tr", vocabulary="model"))
    with pytest.raises(VocabularyError, match="not one of auto, model, train"):
        run_vocab(Config(run_dir=str(run), model="tiny", language="tr", vocabulary="mine"))
    forced = run_vocab(Config(run_dir=str(run), model=str(build("hubert_ctc_finetuned")), language="tr",
                              vocabulary="model")).report  # kept although it writes nothing of this text: said
    assert forced["vocabulary"]["mode"] == "model" and forced["model_coverage"]["character_coverage"] == 0.0
    assert any("cannot write" in note for note in forced["notes"])
    trained = run_vocab(Config(run_dir=str(run), model=str(build("mms_all")), language="tr", vocabulary="train"))
    assert trained.report["vocabulary"]["mode"] == "train" and trained.report["vocab"]["|"] == 0


# --------------------------------------------------------------------------------------------------
# the head step 04 trains
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, head", [("mms_all", "lm_head"),
                                        pytest.param("omniasr_ctc", "ctc_head", marks=needs("omniasr_ctc"))])
def test_a_kept_vocabulary_keeps_the_checkpoints_head_and_a_new_one_gets_a_new_head(build, tmp_path, kind, head):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoProcessor

    from xlsr_helpers.models import build_model

    folder = build(kind)
    saved = load_file(str(folder / ("adapter.tur.safetensors" if kind == "mms_all" else "model.safetensors")))
    for vocabulary in ("model", "train"):
        run = tmp_path / vocabulary
        _save_step2(run, TURKISH)
        cfg = resolve(Config(run_dir=str(run), model=str(folder), language="tr", vocabulary=vocabulary))
        run_vocab(cfg)
        processor = AutoProcessor.from_pretrained(str(cfg.processor_dir))
        said = []
        model = build_model(cfg, processor, log=lambda *a, **k: said.append(" ".join(map(str, a))))
        weight = getattr(model, head).weight
        replaced = [line for line in said if "a new head replaces it" in line]
        if vocabulary == "model":
            torch.testing.assert_close(weight, saved[f"{head}.weight"])
            assert model.config.vocab_size == len(processor.tokenizer) == weight.shape[0]
            assert not replaced
        else:
            assert weight.shape[0] == len(processor.tokenizer) and "|" in processor.tokenizer.get_vocab()
            assert weight.shape != saved[f"{head}.weight"].shape
            assert replaced and "MISMATCH" in replaced[0], said  # transformers' load report, explained first
