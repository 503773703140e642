"""Results that say exactly what they were measured on: the card's data parameters are step 01's, its sentence
about speakers is step 01's measurement, a test split that lost rows is named ``test-filtered`` in the model-index,
and step 04 names the clips it drops by clip and sentence.

Cards here are built from RunInfo objects (no training) or from a run folder whose run.json the steps' own
``from_params`` wrote; step 04's drop report runs on the session's tiny run (test_evaluate.build_tiny_run).
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_evaluate import build_tiny_run, copy_run, run_config  # noqa: E402

from xlsr_helpers.card.run_info import RunInfo, read_run  # noqa: E402
from xlsr_helpers.card.snippets import code_blocks  # noqa: E402
from xlsr_helpers.card.splits import speakers_text  # noqa: E402
from xlsr_helpers.card.text import build_card, training_data_section  # noqa: E402
from xlsr_helpers.config import Config  # noqa: E402
from xlsr_helpers.run_config import from_params  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CV_SOURCE = "common_voice:/data/cv-corpus-17.0-2024-03-15/tr"
METRICS = {"wer": 0.2512, "cer": 0.0712, "n": 480, "ci": {"level": 0.95, "wer": [0.24, 0.26], "cer": [0.068, 0.074]}}


def notebook_defaults(step: str) -> dict:
    """The parameters cell of a notebook, as the notebook declares them (its defaults)."""
    notebook = nbformat.read(str(ROOT / "notebooks" / f"{step}.ipynb"), as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    values: dict = {}
    exec(compile(ast.parse(cell.source), step, "exec"), {}, values)  # noqa: S102 - the project's own notebook
    return values


def leakage(train_test: int = 0, eval_test: int = 0, kept: bool = False, removed: int = 0) -> dict:
    return {"speaker_overlap_train_test": train_test, "speaker_overlap_eval_test": eval_test,
            "speaker_overlap_train_eval": 0, "speakers": {"train": 40, "eval": 5, "test": 6},
            "test_speakers_kept_in_train": kept, "removed_test_speaker_rows": removed, "removed_eval_speaker_rows": 0,
            "test_clips_in_train_or_eval": 0, "test_sentences_in_train_or_eval": 0}


def test_the_card_shows_step_01s_data_parameters_after_04_ran_with_its_defaults(tmp_path):
    """01 with MAX_DURATION_S=7.5 and SEED=7, then 04 with the defaults of its own parameters cell: the card's
    filters and its command that rebuilds the test split are 01's (run.json's last config is 04's)."""
    run = tmp_path / "run"
    from_params({"LANGUAGE": "tr", "RUN_DIR": str(run), "DATA_SOURCE": CV_SOURCE, "MAX_DURATION_S": 7.5,
                 "SEED": 7, "MODEL": "tiny"}, step="01_load", log=lambda *a: None)
    params_04 = {**notebook_defaults("04_train"), "LANGUAGE": "tr", "RUN_DIR": str(run), "MODEL": "tiny"}
    assert "MAX_DURATION_S" not in params_04, "notebook 04 declares no data parameter"
    cfg = from_params(params_04, step="04_train", log=lambda *a: None)
    record = json.loads((run / "run.json").read_text())
    assert record["steps"]["01_load"]["max_duration_s"] == 7.5 and cfg.max_duration_s == 7.5
    assert record["config"]["seed"] == params_04["SEED"] != 7, "04's SEED is the training seed of the last config"
    (run / "05_evaluate").mkdir()
    (run / "05_evaluate" / "metrics.json").write_text(json.dumps(METRICS))

    info = read_run(Config.load(run))
    assert info.data_cfg.max_duration_s == 7.5 and info.data_cfg.seed == 7
    text = str(build_card(info, "ada/wav2vec2-tiny-tr", ["config.json"]))
    assert "longer than 7.5 s are dropped" in training_data_section(info)
    shell = code_blocks(text, "bash")[0]
    assert "MAX_DURATION_S=7.5" in shell and "SEED=7" in shell


def test_the_speakers_sentence_is_what_step_01_measured():
    disjoint = speakers_text({"leakage": leakage(removed=12)})
    assert "Test shares no speaker with train or eval, as step 01 measured: 40 train, 5 eval and 6 test speakers." \
           in disjoint
    assert "12 validated/other clips of test speakers" in disjoint and "No test clip or test sentence" in disjoint
    kept = speakers_text({"leakage": leakage(train_test=3, eval_test=1, kept=True)})
    assert "**Test shares speakers with the other splits**: 3 with train, 1 with eval" in kept
    assert "KEEP_TEST_SPEAKERS_IN_TRAIN = True" in kept and "optimistic" in kept and "share no speaker" not in kept
    unnamed = {**leakage(), "speakers": {"train": 0, "eval": 0, "test": 0}}
    assert "names no speaker" in speakers_text({"leakage": unnamed})
    assert "does not say" in speakers_text({})


def test_a_card_with_test_speakers_in_train_says_so_in_its_text_and_limitations():
    cfg = Config(language="tr", model="facebook/wav2vec2-large-xlsr-53", data_source=CV_SOURCE,
                 extra_train_splits="validated", keep_test_speakers_in_train=True)
    load = {"leakage": leakage(train_test=3, kept=True), "splits": {}}
    text = str(build_card(RunInfo(cfg=cfg, metrics=METRICS, load_report=load), "ada/x"))
    assert "speaker-disjoint" not in text, "no fixed claim"
    assert "**Test shares speakers with the other splits**: 3 with train" in text
    assert "clips of test and eval speakers included (`KEEP_TEST_SPEAKERS_IN_TRAIN = True`)" in text
    assert "it shares 3 speakers with training (its WER is optimistic for them)" in text.split("## Limitations")[1]
    honest = str(build_card(RunInfo(cfg=cfg.updated(keep_test_speakers_in_train=False), metrics=METRICS,
                                    load_report={"leakage": leakage(removed=5)}), "ada/x"))
    assert "minus the clips of test and eval speakers" in honest and "it shares no speaker with training" in honest


def test_a_test_split_that_lost_rows_is_test_filtered_in_the_model_index_with_its_filters():
    cfg = Config(language="tr", model="facebook/wav2vec2-large-xlsr-53", data_source=CV_SOURCE,
                 min_duration_s=1.0, max_samples_per_split=0)
    whole = {"test_split": {"rows_in_source": 480, "rows": 480, "dropped": {}, "not_sampled": 0, "not_read": 0,
                            "held_out": False, "whole": True}}
    card = build_card(RunInfo(cfg=cfg, metrics=METRICS, load_report=whole), "ada/x")
    assert {(r.dataset_split, r.dataset_args) for r in card.data.eval_results} == {("test", None)}
    assert "whole test split: all of its 480 rows were scored" in str(card)

    lost = {"test_split": {"rows_in_source": 500, "rows": 482, "dropped": {"too_short": 12, "undecodable": 1},
                           "not_sampled": 0, "not_read": 0, "held_out": False, "whole": False}}
    normalized = {"splits": {"test": {"rows_in": 482, "emptied": 2, "rows_out": 480}}}
    card = build_card(RunInfo(cfg=cfg, metrics=METRICS, load_report=lost, normalize_report=normalized), "ada/x")
    splits = {(r.dataset_split, json.dumps(r.dataset_args, sort_keys=True)) for r in card.data.eval_results}
    assert len(splits) == 1
    split, args = splits.pop()
    assert split == "test-filtered"
    assert json.loads(args) == {"rows_scored": 480, "rows_in_split": 500, "min_duration_s": 1.0, "max_duration_s": 20.0,
                                "rows_lost": {"too_short": 12, "undecodable": 1, "emptied_by_normalization": 2}}
    text = str(card)
    assert "split: test-filtered" in text.split("---")[1], "the YAML header names it"
    assert "of its 500 rows 480 were scored" in text and "12 shorter than MIN_DURATION_S 1.0 s" in text
    assert "of the `test-filtered` split, not the source's whole test split" in text.split("## Usage")[0]
    assert "a filtered part of the source's test split" in text.split("## Limitations")[1]

    held = {"held_out": {"test": {"rows": 50, "by": "speaker", "fraction": 0.1, "speakers": 4}},
            "test_split": {"rows_in_source": 50, "rows": 50, "dropped": {}, "not_sampled": 0, "not_read": 0,
                           "held_out": True, "whole": False}}
    audiofolder = cfg.updated(data_source="audiofolder:/data/mine")
    card = build_card(RunInfo(cfg=audiofolder, metrics={**METRICS, "n": 50}, load_report=held), "ada/x")
    result = card.data.eval_results[0]
    assert result.dataset_split == "test-held-out"
    assert result.dataset_args == {"rows_scored": 50, "rows_in_split": 50, "held_out_from": "train", "by": "speaker",
                                   "fraction": 0.1, "seed": 42}

    # The Collective's sample of a release: all of its test rows scored, yet not the release's test split.
    sample = cfg.updated(data_source="mdc:cmj8u3p1a000", mdc_sample=True)
    card = build_card(RunInfo(cfg=sample, metrics=METRICS, load_report=whole), "ada/x")
    result = card.data.eval_results[0]
    assert (result.dataset_type, result.dataset_split) == ("mozilla-data-collective/cmj8u3p1a000", "test-sample")
    assert result.dataset_args == {"rows_scored": 480, "mdc_sample": True, "rows_in_split": 480}
    assert "**sample** of the release" in str(card)


def test_step_04_names_the_clip_and_sentence_it_drops(tmp_path_factory, tmp_path):
    """A clip too short for its sentence (its duration as the metadata says: 0.05 s) is dropped by the feasibility
    filter, and the report names it by clip and sentence, beside its row number."""
    from xlsr_helpers.train.step import Training

    run = copy_run(build_tiny_run(tmp_path_factory.getbasetemp()), tmp_path / "run")
    training = Training(run_config(run), log=lambda *a: None)
    dataset, _ = training.load()
    train = dataset["train"]
    durations = train["duration"][:]
    durations[3] = 0.05
    dataset["train"] = train.remove_columns("duration").add_column("duration", durations)
    training.build_model()
    training.prepare()
    examples = training.report["dropped_examples"]["train"]
    (example,) = [e for reason in examples.values() for e in reason if e["row"] == 3]
    assert example["clip"] == train["id"][3] and example["sentence"] == train["sentence"][3]
    assert example["path"] == train["audio"][3] and example["seconds"] == 0.05
    assert training.report["dropped"]["train"] == {"too_few_frames_for_labels": 1}


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
