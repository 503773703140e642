"""The lazy data path: no decoded copy of the corpus, lengths from metadata, broken clips skipped and counted."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_load import BASIC, cfg_for, clips, make_cv  # noqa: E402,F401  (clips is a fixture)
from test_train import QUICK, copy_run, make_run  # noqa: E402

from xlsr_helpers import audio, audio_checks, load  # noqa: E402
from xlsr_helpers.config import Config  # noqa: E402
from xlsr_helpers.families import resolve  # noqa: E402
from xlsr_helpers.train import data, step  # noqa: E402


def no_decoding(*args, **kwargs):
    raise AssertionError("this path must not decode audio")


# --------------------------------------------------------------------------------------------------
# step 01: the cheap check and the decode-checked sample
# --------------------------------------------------------------------------------------------------
def test_quick_check_reads_no_audio_when_the_metadata_has_the_duration(clips, monkeypatch):
    monkeypatch.setattr(audio_checks, "probe_audio", no_decoding)
    assert audio_checks.quick_check(str(clips["a"]), 1.75) == (True, 1.75, None)
    # a truncated mp3 has a good header: only decoding (sampled in step 01, or at training time) finds it
    assert audio_checks.quick_check(str(clips["truncated"]), 1.75)[0] is True


def test_quick_check_refuses_empty_and_non_audio_files(clips, tmp_path):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    assert audio_checks.quick_check(str(empty), 2.0) == (False, None, "empty file")
    ok, _, error = audio_checks.quick_check(str(clips["garbage"]), 2.0)  # unknown header: decode-checked instead
    assert not ok and error
    assert audio_checks.quick_check(str(tmp_path / "gone.mp3"), 2.0) == (False, None, audio_checks.MISSING_FILE)
    assert audio_checks.quick_check(str(tmp_path), 2.0) == (False, None, audio_checks.MISSING_FILE), "a folder is no clip"
    assert audio_checks.looks_like_audio(clips["a"].read_bytes()[:12])
    assert not audio_checks.looks_like_audio(b"this is not audio")


def test_decode_check_covers_a_sample_and_the_rest_get_the_cheap_check(tmp_path, clips):
    rows = {"train": BASIC["train"] + [("spk9", "common_voice_tr_9.mp3", "Bozuk bir dosya bu", "truncated")],
            "dev": BASIC["dev"], "test": BASIC["test"]}
    durations = {name: 1800 for split in rows.values() for _, name, *_ in split}
    folder = make_cv(tmp_path / "cv", rows, clips, durations=durations)
    checked_all = load.run_load(cfg_for(tmp_path / "all", f"common_voice:{folder}", decode_check_clips=-1)).report
    assert checked_all["dropped"]["train"] == {"undecodable": 1}
    assert checked_all["decode_check"]["train"] == {"decoded": 4, "header_only": 0}
    none = load.run_load(cfg_for(tmp_path / "none", f"common_voice:{folder}", decode_check_clips=0)).report
    assert none["kept"]["train"] == 4, "not decode-checked: kept, and skipped at training time if it fails there"
    assert none["decode_check"]["train"] == {"decoded": 0, "header_only": 4}
    sample = load.run_load(cfg_for(tmp_path / "two", f"common_voice:{folder}", decode_check_clips=2)).report
    assert sample["decode_check"]["train"] == {"decoded": 2, "header_only": 2}


@pytest.mark.parametrize("decode_check_clips", [0, -1], ids=["cheap-check", "decode-check"])
def test_a_missing_clip_is_counted_as_missing_by_either_check(tmp_path, clips, decode_check_clips):
    rows = {**BASIC, "train": BASIC["train"] + [("spk9", "common_voice_tr_9.mp3", "Bu dosya yok", None)]}
    folder = make_cv(tmp_path / "cv", rows, clips, durations={n: 1800 for s in rows.values() for _, n, *_ in s})
    report = load.run_load(cfg_for(tmp_path, f"common_voice:{folder}", decode_check_clips=decode_check_clips)).report
    assert report["dropped"]["train"] == {"missing_clip": 1} and report["kept"]["train"] == 3


def test_step_02_says_when_the_clips_folder_was_moved_after_step_01(tmp_path, clips):
    from xlsr_helpers.normalize import run_normalize

    folder = make_cv(tmp_path / "cv", BASIC, clips)
    cfg = cfg_for(tmp_path, f"common_voice:{folder}")
    load.run_load(cfg)
    shutil.move(folder / "clips", tmp_path / "elsewhere")  # Colab: /content is forgotten after a disconnect
    with pytest.raises(FileNotFoundError, match="clips folder was moved or deleted"):
        run_normalize(cfg)


# --------------------------------------------------------------------------------------------------
# step 04: rows, lengths from metadata, the collator
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("lazy") / "run"
    make_run(run)
    return run


def test_steps_04_05_06_say_which_clips_folder_is_gone_and_what_to_do(base_run, tmp_path):
    """After a disconnect Colab has forgotten /content, the run folder on Drive still points there: steps 04, 05 and
    06 stop before their work with the folder and the remedy (01_load again, or EMBED_AUDIO=True), not a decoder
    error. (The Colab rehearsal, tests/test_colab_rehearsal.py, shows the same in the notebooks.)"""
    from datasets import load_from_disk

    from xlsr_helpers import evaluate as ev

    run = copy_run(base_run, tmp_path / "run")
    lost = tmp_path / "content" / "clips"  # where the clips were: never created here
    moved = load_from_disk(str(run / "02_normalize" / "dataset"))
    moved = moved.map(lambda row: {"audio": str(lost / Path(row["audio"]).name)})
    moved.save_to_disk(str(tmp_path / "moved"))
    shutil.rmtree(run / "02_normalize" / "dataset")
    shutil.copytree(tmp_path / "moved", run / "02_normalize" / "dataset")
    cfg = resolve(Config.load(run).updated(run_dir=str(run)))
    with pytest.raises(audio_checks.ClipsMissingError) as error:
        step.Training(cfg).load()
    message = str(error.value)
    checked = sum(moved.num_rows[s] for s in ("train", "eval"))
    assert f"{checked} of {checked} checked clips are missing from {lost}" in message
    assert "run 01_load again" in message and "then 04_train again" in message and "EMBED_AUDIO=True" in message
    with pytest.raises(audio_checks.ClipsMissingError, match=f"missing from {lost}.*01_load.*EMBED_AUDIO=True"):
        ev.load_test_split(cfg)  # 05_evaluate and 06_model_card read the test split through it


def test_training_rows_take_lengths_from_the_metadata_without_decoding(base_run, monkeypatch):
    from datasets import load_from_disk
    from transformers import AutoProcessor

    normalized = load_from_disk(str(base_run / "02_normalize" / "dataset"))["train"]
    assert audio.stores_paths(normalized)
    processor = AutoProcessor.from_pretrained(str(base_run / "03_vocab" / "processor"))
    monkeypatch.setattr(data, "decode_audio", no_decoding)
    monkeypatch.setattr(data, "header_seconds", no_decoding)
    rows = data.training_rows(normalized, processor.tokenizer)
    assert rows["input_length"] == [round(d * 16000) for d in normalized["duration"]]
    assert rows["audio"] == list(normalized["audio"])
    assert rows["labels"][0] == processor.tokenizer(normalized["sentence"][0]).input_ids


def test_collator_skips_and_counts_clips_that_fail_to_decode(base_run, tmp_path):
    from datasets import load_from_disk
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(base_run / "03_vocab" / "processor"))
    rows = data.training_rows(load_from_disk(str(base_run / "02_normalize" / "dataset"))["train"],
                               processor.tokenizer)
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"\xff\xfb" + b"\x00" * 500)  # an mp3 frame header, then nothing decodable
    good = [rows[0], rows[1]]
    bad = [dict(rows[2], audio=str(broken), id="broken"), dict(rows[3], audio=str(tmp_path / "gone.mp3"), id="gone")]
    collate = data.DataCollatorCTCWithPadding(processor)
    with pytest.raises(data.UndecodableBatchError, match="clips folder"):
        collate(bad)
    batch = collate(good + bad)
    assert batch[data.SKIPPED_KEY].item() == 2 and batch["labels"].shape[0] == 2
    assert data.SKIPPED_KEY not in collate(good)
    stand_in = collate(bad)  # every clip failed: the last good batch stands in, counted
    assert stand_in[data.SKIPPED_KEY].item() == 2 and stand_in["labels"].shape[0] == 2
    inputs, lengths = data.split_batch(stand_in)
    assert set(inputs) == {"input_values", "attention_mask", "labels"} and len(lengths) == 2


def _training_rows(base_run):
    from datasets import load_from_disk
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(base_run / "03_vocab" / "processor"))
    rows = data.training_rows(load_from_disk(str(base_run / "02_normalize" / "dataset"))["train"],
                               processor.tokenizer)
    return processor, rows


def test_a_lost_clips_folder_stops_the_stand_ins_with_the_remedy(base_run, tmp_path):
    """Colab forgets /content after a disconnect: every batch fails, and the last good one must not stand in for
    the rest of the run. STAND_IN_LIMIT all-failed batches in a row stop it, naming the folder and the remedy."""
    processor, rows = _training_rows(base_run)
    lost = tmp_path / "lost-clips"
    good = [rows[0], rows[1]]
    gone = [dict(rows[i], audio=str(lost / f"{i}.mp3"), id=f"gone-{i}") for i in range(2, 6)]
    collate = data.DataCollatorCTCWithPadding(processor)
    collate(good)
    for _ in range(data.STAND_IN_LIMIT - 1):  # a few broken batches: the last good one stands in
        assert collate(gone)[data.SKIPPED_KEY].item() == len(gone)
    with pytest.raises(data.UndecodableBatchError) as error:
        collate(gone)
    message = str(error.value)
    assert f"{data.STAND_IN_LIMIT} batches in a row" in message and str(lost) in message
    assert "01_load" in message and "EMBED_AUDIO=True" in message and "restore" in message

    again = data.DataCollatorCTCWithPadding(processor)
    broken = [gone] * (data.STAND_IN_LIMIT - 1)
    for batch in [good] + broken + [good[:1] + gone[:1]] + broken:
        again(batch)  # a batch with one good clip in between starts the count again


def test_most_of_the_recent_clips_failing_stops_the_run(base_run, tmp_path):
    """Not one batch all failed, but three clips of four, batch after batch: more than FAILED_SHARE_LIMIT of the
    last FAILED_WINDOW clips. Half of them failing is a damaged corpus, not a lost one: training goes on."""
    processor, rows = _training_rows(base_run)
    gone = [dict(rows[i], audio=str(tmp_path / "lost" / f"{i}.mp3"), id=f"gone-{i}") for i in range(2, 5)]
    half = data.DataCollatorCTCWithPadding(processor, cache_bytes=10**8)
    for _ in range(2 * data.FAILED_WINDOW // 4):
        assert half([rows[0], rows[1]] + gone[:2])["labels"].shape[0] == 2
    most = data.DataCollatorCTCWithPadding(processor, cache_bytes=10**8)
    batches = 0
    with pytest.raises(data.UndecodableBatchError, match=f"of the last {data.FAILED_WINDOW} clips") as error:
        while batches < data.FAILED_WINDOW:
            most([rows[0]] + gone)
            batches += 1
    assert batches == data.FAILED_WINDOW // 4 - 1, "raised once the window of clips is full"
    assert str(tmp_path / "lost") in str(error.value)


def test_collator_cache_keeps_decoded_clips_within_its_budget(base_run, monkeypatch):
    from datasets import load_from_disk
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(base_run / "03_vocab" / "processor"))
    rows = data.training_rows(load_from_disk(str(base_run / "02_normalize" / "dataset"))["train"],
                               processor.tokenizer)
    first = [rows[i] for i in range(4)]
    budget = 2 * sum(r["input_length"] for r in first[:2]) + 2000  # room for two clips, not four
    collate = data.DataCollatorCTCWithPadding(processor, cache_bytes=budget)
    expected = collate(first)
    assert 1 <= len(collate._cache) < 4 and collate._cached_bytes <= budget
    cached = list(collate._cache)
    monkeypatch.setattr(data, "decode_audio", lambda item: no_decoding() if item in {r["audio"] for r in first
                                                                                      if r["id"] in cached} else
                        audio.decode_audio(item))
    again = collate(first)  # the cached clips are not decoded again, and the batch is the same up to int16 rounding
    np.testing.assert_allclose(again["input_values"].numpy(), expected["input_values"].numpy(), atol=1e-3)


def test_a_clip_corrupted_after_step_01_is_skipped_and_counted_during_training(base_run, tmp_path):
    from datasets import load_from_disk

    run = copy_run(base_run, tmp_path / "run")
    dataset = load_from_disk(str(run / "02_normalize" / "dataset"))
    train = dataset["train"]
    broken = tmp_path / "clips" / Path(train[0]["audio"]).name  # its own copy: the shared corpus stays intact
    broken.parent.mkdir()
    broken.write_bytes(Path(train[0]["audio"]).read_bytes()[:200])
    paths = list(train["audio"])
    paths[0] = str(broken)
    dataset["train"] = train.remove_columns("audio").add_column("audio", paths)
    dataset.save_to_disk(str(tmp_path / "dataset"))
    shutil.rmtree(run / "02_normalize" / "dataset")
    shutil.move(tmp_path / "dataset", run / "02_normalize" / "dataset")

    cfg = resolve(Config.load(run).updated(run_dir=str(run), **{**QUICK, "max_steps": 12, "eval_steps": 6,
                                                                "save_steps": 6}))
    report = step.run_train(cfg, log=lambda *a: None)
    assert report["global_step"] == 12 and report["stopped_by"] == "completed"
    skipped = report["undecodable_clips_skipped"]["train"]
    assert skipped >= 1, "40 clips, 12 batches of 4 clips: the broken clip comes up at least once"
    assert any("could not be decoded" in note for note in report["notes"])
    saved = json.loads((run / "04_train" / "report.json").read_text())
    assert saved["undecodable_clips_skipped"]["train"] == skipped
    assert not (run / "04_train" / "prepared").exists(), "no decoded copy of the corpus on disk"
