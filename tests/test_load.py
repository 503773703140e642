"""Step 01 (xlsr_helpers.load): sources, Common Voice TSV quirks, filters counted by reason, leakage guard.

Clips are made in the test with espeak-ng + ffmpeg (48 kHz mono mp3, like Common Voice). The real TSV
rows and zh-CN clips of ../shared/cv-samples are used when that folder exists (skipped otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xlsr_helpers.audio_checks import probe_audio
from xlsr_helpers.config import Config
from xlsr_helpers.leakage import sentence_key
from xlsr_helpers.load import REASONS, dropped_table, load_source, load_step_dataset, run_load, split_table
from xlsr_helpers.sources import parse_sources, read_cv_tsv

SHARED = Path(__file__).resolve().parents[2] / "shared" / "cv-samples"
needs_samples = pytest.mark.skipif(not SHARED.exists(), reason="../shared/cv-samples is absent (real CV rows/clips)")
ZH = SHARED / "ssbuild_asr_finetuning"

H8 = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accent"]
H10 = H8[:-1] + ["accents", "locale", "segment"]
H10_61 = H8 + ["locale", "segment"]
H11 = H8[:-1] + ["accents", "variant", "locale", "segment"]
H13 = ["client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes", "age",
       "gender", "accents", "variant", "locale", "segment"]


# --------------------------------------------------------------------------------------------------
# fixtures: clips and Common Voice folders built here
# --------------------------------------------------------------------------------------------------
def _speak(text: str, out: Path, voice: str = "tr", seconds: float | None = None) -> Path:
    wav = out.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
    cut = ["-t", str(seconds)] if seconds else []
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), *cut, "-ar", "48000", "-ac", "1", str(out)],
                   check=True, capture_output=True)
    wav.unlink()
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Three spoken clips (about 1.5-2.5 s), a very short one, a truncated one and a non-audio file."""
    if not (shutil.which("espeak-ng") and shutil.which("ffmpeg")):
        pytest.skip("espeak-ng and ffmpeg are needed to make test clips")
    root = tmp_path_factory.mktemp("clips")
    made = {
        "a": _speak("merhaba dünya nasılsın", root / "a.mp3"),
        "b": _speak("bugün hava çok güzel", root / "b.mp3"),
        "c": _speak("kitap okumayı severim", root / "c.mp3"),
        "short": _speak("evet", root / "short.mp3", seconds=0.3),
    }
    data = made["a"].read_bytes()
    made["truncated"] = root / "truncated.mp3"
    made["truncated"].write_bytes(data[: len(data) // 3])
    made["garbage"] = root / "garbage.mp3"
    made["garbage"].write_bytes(b"this is not audio" * 50)
    return made


def write_tsv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    """Unquoted, tab-separated, like real Common Voice files (a sentence may start with a quote)."""
    lines = ["\t".join(header)] + ["\t".join(str(row.get(h, "")) for h in header) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_cv(folder: Path, splits: dict[str, list[tuple]], clips: dict[str, Path], header=H10,
            extension: bool = True, durations: dict[str, int] | None = None) -> Path:
    """A Common Voice locale folder. Rows are (speaker, clip name, sentence[, clip source or None[, up_votes]])."""
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        records = []
        for row in rows:
            speaker, name, sentence = row[:3]
            source = row[3] if len(row) > 3 else "a"
            votes = row[4] if len(row) > 4 else 2
            if source is not None and not (folder / "clips" / name).exists():
                shutil.copy(clips[source], folder / "clips" / name)
            path = name if extension else name.removesuffix(".mp3")
            records.append({"client_id": speaker, "path": path, "sentence": sentence, "up_votes": votes,
                            "down_votes": 0, "locale": "tr", "sentence_id": f"s{len(records)}"})
        write_tsv(folder / f"{split}.tsv", header, records)
    if durations is not None:
        lines = ["clip\tduration[ms]"] + [f"{k}\t{v}" for k, v in durations.items()]
        (folder / "clip_durations.tsv").write_text("\n".join(lines) + "\n")
    return folder


def cfg_for(tmp_path: Path, source: str, **changes) -> Config:
    return Config(run_dir=str(tmp_path / "run"), data_source=source, **changes)


BASIC = {
    "train": [("spk1", "common_voice_tr_1.mp3", "Merhaba dünya nasılsın.", "a"),
              ("spk1", "common_voice_tr_2.mp3", "Bugün hava çok güzel!", "b"),
              ("spk2", "common_voice_tr_3.mp3", "Kitap okumayı severim", "c")],
    "dev": [("spk3", "common_voice_tr_4.mp3", "Bugün hava güzel mi?", "b")],
    "test": [("spk4", "common_voice_tr_5.mp3", "Kitap okumak güzel.", "c")],
}


# --------------------------------------------------------------------------------------------------
# TSV parsing
# --------------------------------------------------------------------------------------------------
@needs_samples
def test_real_tsv_headers_of_every_era_parse_by_name():
    cases = {
        "huggingface_datasets_common_voice_dummy/cv-corpus-6.1-2020-12-11/tr/test.tsv": ("accent", 10),
        "HarikalarKutusu_cv-tbox-split-maker/default_splits_head/cv-corpus-10.0-2022-07-04/tr/test.tsv": ("accents", 10),
        "common-voice_CorporaCreator/corpora/cy/train.head10.tsv": ("accent", 8),
        "coqui-ai_TTS/tests/inputs/common_voice.at_d1a7ad54.tsv": ("accent", 8),
    }
    for relative, (accent, columns) in cases.items():
        rows, info = read_cv_tsv(SHARED / relative)
        assert info["columns"] == columns and info["accent_column"] == accent, relative
        assert rows and all(r["client_id"] and r["path"] and r["sentence"] for r in rows), relative
        assert not info.get("malformed_rows"), relative
    # 2019 CorporaCreator output wraps some sentences in quotes: kept verbatim (normalization removes them)
    rows, _ = read_cv_tsv(SHARED / "common-voice_CorporaCreator/corpora/cy/train.head10.tsv")
    assert any(r["sentence"].startswith('"i\'r dde') for r in rows)


@needs_samples
def test_turkish_rows_starting_with_a_quote_are_not_merged():
    path = SHARED / "HarikalarKutusu_cv-tbox-split-maker/tr_extra/quote_quirk_rows.from_default_dev_test.tsv"
    rows, info = read_cv_tsv(path)
    physical = len(path.read_text(encoding="utf-8").strip().splitlines()) - 1
    assert len(rows) == physical == 6
    assert rows[0]["sentence"] == '"Diyiversene!" diye diller döktüler.'
    assert all(r["path"].startswith("common_voice_tr_") for r in rows)
    assert sum(r["sentence"].startswith('"') for r in rows) == 3


def test_tsv_quirks_bom_short_rows_duplicate_header_and_extra_fields(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("\ufeffclient_id\tpath\tsentence\taccents\taccents\n"
                    "s1\tc1.mp3\tbir\tx\n"  # short row: padded with ""
                    "s2\tc2.mp3\t\"iki\" dedi\ty\ty\n"
                    "s3\tc3.mp3\tüç\t\t\tEXTRA\n"  # more fields than the header
                    "\n", encoding="utf-8")
    rows, info = read_cv_tsv(path)
    assert [r["sentence"] for r in rows] == ["bir", '"iki" dedi', "üç"]
    assert rows[0]["client_id"] == "s1" and rows[0]["accents"] == "x"
    assert info["malformed_rows"] == 1 and rows[2].get("__malformed__")


@pytest.mark.parametrize("header", [H8, H10_61, H10, H11, H13], ids=["8", "10-accent", "10-accents", "11", "13"])
def test_every_release_layout_loads_the_same(tmp_path, clips, header):
    folder = make_cv(tmp_path / "cv", BASIC, clips, header=header)
    dataset, report = load_source(cfg_for(tmp_path, f"common_voice:{folder}"))
    assert dict(report["kept"]) == {"train": 3, "eval": 1, "test": 1}
    assert dataset["train"]["sentence"] == [r[2] for r in BASIC["train"]]
    assert dataset["train"]["speaker"] == ["spk1", "spk1", "spk2"]
    assert report["sources"][0]["files"]["train.tsv"]["columns"] == len(header)


def test_path_without_extension_and_release_root_folder(tmp_path, clips):
    folder = make_cv(tmp_path / "cv-corpus-1" / "tr", BASIC, clips, header=H8, extension=False)
    assert "common_voice_tr_1" in (folder / "train.tsv").read_text()
    dataset, report = load_source(cfg_for(tmp_path, f"common_voice:{folder.parent}", language="tr"))
    assert report["kept"]["train"] == 3
    assert dataset["train"]["id"][0] == "common_voice_tr_1.mp3"


# --------------------------------------------------------------------------------------------------
# audio checks and filters
# --------------------------------------------------------------------------------------------------
def test_probe_audio(clips):
    ok, duration, error = probe_audio(str(clips["a"]))
    assert ok and 1.0 < duration < 4.0 and error is None
    ok, _, error = probe_audio(str(clips["truncated"]))
    assert not ok and "truncated" in error
    ok, _, error = probe_audio(str(clips["garbage"]))
    assert not ok and error
    ok, _, error = probe_audio(str(clips["a"].parent / "does-not-exist.mp3"))
    assert not ok
    ok, duration_bytes, _ = probe_audio(clips["a"].read_bytes())
    assert ok and duration_bytes == pytest.approx(duration, abs=0.01)


def test_every_bad_row_is_counted_by_reason_and_nothing_crashes(tmp_path, clips):
    splits = {
        "train": [("s1", "common_voice_tr_1.mp3", "İyi bir cümle.", "a"),
                  ("s1", "common_voice_tr_2.mp3", "Dosyası olmayan cümle", None),  # missing clip
                  ("s2", "common_voice_tr_3.mp3", "Kesik ses dosyası", "truncated"),  # truncated mp3
                  ("s2", "common_voice_tr_4.mp3", "Ses olmayan dosya", "garbage"),  # not audio
                  ("s3", "common_voice_tr_5.mp3", "", "b"),  # empty sentence
                  ("s3", "common_voice_tr_6.mp3", " ... !? ", "b"),  # only punctuation
                  ("s4", "common_voice_tr_7.mp3", "Çok kısa", "short"),  # too short
                  ("s4", "common_voice_tr_8.mp3", "Az oy almış", "c", 1),  # votes
                  ("s5", "common_voice_tr_1.mp3", "İyi bir cümle.", "a")],  # duplicate row
        "dev": [("s6", "common_voice_tr_9.mp3", "Geliştirme", "b")],
        "test": [("s7", "common_voice_tr_10.mp3", "Sınama cümlesi", "c")],
    }
    folder = make_cv(tmp_path / "cv", splits, clips)
    cfg = cfg_for(tmp_path, f"common_voice:{folder}", min_duration_s=0.5, min_up_votes=2)
    dataset, report = load_source(cfg)
    assert report["dropped"]["train"] == {"duplicate": 1, "empty_sentence": 2, "votes": 1, "missing_clip": 1,
                                          "too_short": 1, "undecodable": 2}
    assert dataset["train"]["id"] == ["common_voice_tr_1.mp3"]
    assert report["read"] == 11 and sum(report["kept"].values()) + sum(report["dropped_total"].values()) == 11
    assert {e["clip"] for e in report["dropped_examples"]["undecodable"]} == {"common_voice_tr_3.mp3", "common_voice_tr_4.mp3"}
    assert "truncated" in report["decode_errors"]["common_voice_tr_3.mp3"]
    # every dropped row is named by its clip and its sentence, never by a row number
    short = report["dropped_examples"]["too_short"][0]
    assert (short["clip"], short["sentence"], short["split"]) == ("common_voice_tr_7.mp3", "Çok kısa", "train")
    assert short["path"].endswith("clips/common_voice_tr_7.mp3")
    assert all(e["clip"] and "sentence" in e for examples in report["dropped_examples"].values() for e in examples)
    table = dropped_table(report)
    assert table.loc["undecodable", "train"] == 2 and table.loc["undecodable", "total"] == 2
    assert 'common_voice_tr_7.mp3 "Çok kısa"' in table.loc["too_short", "examples"]
    assert set(report["dropped_total"]) <= set(REASONS)


def test_clip_durations_tsv_is_used_when_present(tmp_path, clips):
    listed_ms = int(probe_audio(str(clips["c"]))[1] * 1000) - 7  # what a release would list (ms)
    folder = make_cv(tmp_path / "cv", BASIC, clips, durations={"common_voice_tr_2.mp3": 31_000,
                                                               "common_voice_tr_3.mp3": listed_ms})
    dataset, report = load_source(cfg_for(tmp_path, f"common_voice:{folder}", max_duration_s=20.0))
    assert report["dropped"]["train"] == {"too_long": 1}  # 31 s says the file: not decoded at all
    durations = dict(zip(dataset["train"]["id"], dataset["train"]["duration"]))
    assert durations["common_voice_tr_3.mp3"] == pytest.approx(listed_ms / 1000)
    assert 1.0 < durations["common_voice_tr_1.mp3"] < 4.0  # measured from the mp3 header


def test_max_samples_per_split_samples_without_dropping(tmp_path, clips):
    train = [(f"s{i}", f"common_voice_tr_{100 + i}.mp3", f"cümle numarası {'bir iki üç dört beş altı'.split()[i]}", "abc"[i % 3])
             for i in range(6)]
    folder = make_cv(tmp_path / "cv", {**BASIC, "train": train}, clips)
    dataset, report = load_source(cfg_for(tmp_path, f"common_voice:{folder}", max_samples_per_split=2))
    assert len(dataset["train"]) == 2 and report["not_sampled"] == {"train": 4}
    assert report["dropped_total"] == {}
    again, _ = load_source(cfg_for(tmp_path, f"common_voice:{folder}", max_samples_per_split=2))
    assert again["train"]["id"] == dataset["train"]["id"], "sampling is seeded"


# --------------------------------------------------------------------------------------------------
# leakage guard
# --------------------------------------------------------------------------------------------------
def test_sentence_key_ignores_case_punctuation_spaces_and_unicode_form():
    import unicodedata

    assert sentence_key("Test cümlesi, aynen burada!") == sentence_key("test cümlesi aynen burada")
    assert sentence_key(unicodedata.normalize("NFD", "Şişli'de")) == sentence_key("ŞİŞLİ DE".lower())
    assert sentence_key("IĞDIR") == sentence_key("ığdır")
    assert sentence_key("...!?") == ""


def test_leakage_by_path_and_by_sentence_is_removed_and_counted(tmp_path, clips):
    splits = {
        "train": [("s1", "common_voice_tr_1.mp3", "Güvenli bir cümle.", "a"),
                  ("s1", "common_voice_tr_5.mp3", "Yol uzun", "c"),  # the test clip itself
                  ("s2", "common_voice_tr_3.mp3", "test cümlesi, AYNEN burada!", "b"),  # the test sentence
                  ("s9", "common_voice_tr_6.mp3", "Test konuşmacısı eğitimde", "c")],  # a test speaker
        "dev": [("s3", "common_voice_tr_4.mp3", "Test cümlesi aynen burada", "b")],
        "test": [("s9", "common_voice_tr_5.mp3", "Test cümlesi aynen burada.", "c")],
    }
    folder = make_cv(tmp_path / "cv", splits, clips)
    dataset, report = load_source(cfg_for(tmp_path, f"common_voice:{folder}"))
    assert report["dropped"]["train"] == {"leak_path": 1, "leak_sentence": 1}
    assert report["dropped"]["eval"] == {"leak_sentence": 1}
    leakage = report["leakage"]
    assert leakage["removed_by_path"] == 1 and leakage["removed_by_sentence"] == 2
    assert leakage["test_clips_in_train_or_eval"] == 0 and leakage["test_sentences_in_train_or_eval"] == 0
    assert leakage["speaker_overlap_train_test"] == 1
    test_keys = {sentence_key(s) for s in dataset["test"]["sentence"]}
    for split in ("train", "eval"):
        assert not test_keys & {sentence_key(s) for s in dataset[split]["sentence"]}
        assert not set(dataset["test"]["id"]) & set(dataset[split]["id"])


def test_extra_train_splits_never_bring_back_test(tmp_path, clips):
    splits = dict(BASIC)
    validated = [*BASIC["train"], *BASIC["dev"], *BASIC["test"],
                 ("spk9", "common_voice_tr_20.mp3", "Kitap okumak güzel", "a"),  # re-recorded test sentence
                 ("spk9", "common_voice_tr_21.mp3", "Yepyeni bir cümle", "b"),
                 ("spk9", "common_voice_tr_22.mp3", "bugün hava güzel mi", "c")]  # re-recorded dev sentence
    splits["validated"] = validated
    folder = make_cv(tmp_path / "cv", splits, clips)
    dataset, report = load_source(cfg_for(tmp_path, f"common_voice:{folder}", extra_train_splits="validated"))
    assert sorted(dataset["train"]["id"]) == ["common_voice_tr_1.mp3", "common_voice_tr_2.mp3",
                                              "common_voice_tr_21.mp3", "common_voice_tr_3.mp3"]
    assert report["dropped"]["train"] == {"leak_sentence": 1, "eval_sentence": 1}
    without, _ = load_source(cfg_for(tmp_path, f"common_voice:{folder}"))
    assert len(without["train"]) == 3
    with pytest.raises(ValueError, match="EXTRA_TRAIN_SPLITS"):
        load_source(cfg_for(tmp_path, f"common_voice:{folder}", extra_train_splits="valid"))


def test_validated_rows_of_test_and_eval_speakers_stay_out_of_train_unless_kept(tmp_path, clips):
    """Common Voice's validated.tsv holds the test speakers' other clips: by default they do not reach train
    (counted as test_speaker / eval_speaker), and the leakage report measures no shared speaker; with
    KEEP_TEST_SPEAKERS_IN_TRAIN they do, and the report says so."""
    splits = dict(BASIC)
    splits["validated"] = [*BASIC["train"], *BASIC["dev"], *BASIC["test"],
                           ("spk4", "common_voice_tr_30.mp3", "Test konuşmacısının başka cümlesi", "a"),
                           ("spk3", "common_voice_tr_31.mp3", "Dev konuşmacısının başka cümlesi", "b"),
                           ("spk9", "common_voice_tr_32.mp3", "Yeni bir konuşmacı", "c")]
    folder = make_cv(tmp_path / "cv", splits, clips)
    source = f"common_voice:{folder}"
    dataset, report = load_source(cfg_for(tmp_path, source, extra_train_splits="validated"))
    assert "common_voice_tr_32.mp3" in dataset["train"]["id"]
    assert not {"common_voice_tr_30.mp3", "common_voice_tr_31.mp3"} & set(dataset["train"]["id"])
    assert report["dropped"]["train"] == {"test_speaker": 1, "eval_speaker": 1}
    example = report["dropped_examples"]["test_speaker"][0]
    assert (example["clip"], example["sentence"], example["speaker"]) == (
        "common_voice_tr_30.mp3", "Test konuşmacısının başka cümlesi", "spk4")
    leakage = report["leakage"]
    assert leakage["removed_test_speaker_rows"] == 1 and leakage["removed_eval_speaker_rows"] == 1
    assert leakage["speaker_overlap_train_test"] == leakage["speaker_overlap_train_eval"] == 0
    assert leakage["test_speakers_kept_in_train"] is False and leakage["speakers"]["test"] == 1

    kept, report = load_source(cfg_for(tmp_path, source, extra_train_splits="validated",
                                       keep_test_speakers_in_train=True))
    assert {"common_voice_tr_30.mp3", "common_voice_tr_31.mp3", "common_voice_tr_32.mp3"} <= set(kept["train"]["id"])
    assert "test_speaker" not in report["dropped"]["train"]
    leakage = report["leakage"]
    assert leakage["speaker_overlap_train_test"] == 1 and leakage["speaker_overlap_train_eval"] == 1
    assert leakage["test_speakers_kept_in_train"] is True
    assert any("KEEP_TEST_SPEAKERS_IN_TRAIN=True" in note for note in report["notes"])


def test_the_report_says_whether_the_test_split_is_whole(tmp_path, clips):
    """``test_split``: the source's test rows against those saved. The duration and vote filters leave the test
    split whole (they are for training; step 05 scores long clips in windows); a clip that cannot be decoded, or
    MAX_SAMPLES_PER_SPLIT, makes it a part of the split, said with the reasons."""
    test = [("spk4", "common_voice_tr_5.mp3", "Kitap okumak güzel.", "c"),
            ("spk5", "common_voice_tr_6.mp3", "Çok kısa", "short"),
            ("spk5", "common_voice_tr_7.mp3", "Bugün hava güzel", "a", 0)]
    folder = make_cv(tmp_path / "cv", {**BASIC, "test": test}, clips)
    source = f"common_voice:{folder}"
    _, whole = load_source(cfg_for(tmp_path, source, min_duration_s=0.0))
    assert whole["test_split"] == {"rows_in_source": 3, "rows": 3, "dropped": {}, "not_sampled": 0, "not_read": 0,
                                   "held_out": False, "whole": True}
    _, strict = load_source(cfg_for(tmp_path, source, min_duration_s=0.5, min_up_votes=2))
    assert strict["test_split"]["whole"] is True and strict["test_split"]["rows"] == 3
    assert not strict["dropped"]["test"]
    broken = [*test, ("spk6", "common_voice_tr_8.mp3", "Bozuk dosya", "garbage")]
    folder = make_cv(tmp_path / "cv-broken", {**BASIC, "test": broken}, clips)
    _, filtered = load_source(cfg_for(tmp_path, f"common_voice:{folder}", min_duration_s=0.5))
    assert filtered["test_split"]["whole"] is False and filtered["test_split"]["dropped"] == {"undecodable": 1}
    assert filtered["test_split"]["rows"] == 3
    _, sampled = load_source(cfg_for(tmp_path, source, min_duration_s=0.0, max_samples_per_split=1))
    assert sampled["test_split"]["not_sampled"] == 2 and sampled["test_split"]["whole"] is False


# --------------------------------------------------------------------------------------------------
# other sources
# --------------------------------------------------------------------------------------------------
def _audiofolder(folder: Path, clips, n: int, speakers: int | None) -> Path:
    folder.mkdir(parents=True)
    lines = ["file_name,transcription" + (",speaker_id" if speakers else "")]
    words = "bir iki üç dört beş altı yedi sekiz dokuz on onbir oniki".split()
    for i in range(n):
        shutil.copy(clips["abc"[i % 3]], folder / f"clip{i}.mp3")
        lines.append(f"clip{i}.mp3,cümle {words[i]}" + (f",spk{i % speakers}" if speakers else ""))
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_audiofolder_without_test_split_gets_a_speaker_disjoint_held_out_split(tmp_path, clips):
    folder = _audiofolder(tmp_path / "af", clips, 12, speakers=6)
    cfg = cfg_for(tmp_path, f"audiofolder:{folder}", hub_text_column="transcription", test_fraction=0.2)
    dataset, report = load_source(cfg)
    assert all(len(dataset[s]) for s in ("train", "eval", "test"))
    assert sum(len(dataset[s]) for s in ("train", "eval", "test")) == 12
    assert report["held_out"]["test"]["by"] == "speaker" and report["held_out"]["eval"]["by"] == "speaker"
    speakers = {s: set(dataset[s]["speaker"]) for s in ("train", "eval", "test")}
    assert not speakers["train"] & speakers["test"] and not speakers["train"] & speakers["eval"]
    assert not speakers["eval"] & speakers["test"]
    assert dataset["train"]["sentence"][0].startswith("cümle ")


def test_audiofolder_without_speakers_holds_out_by_file(tmp_path, clips):
    folder = _audiofolder(tmp_path / "af", clips, 10, speakers=None)
    dataset, report = load_source(cfg_for(tmp_path, f"audiofolder:{folder}", hub_text_column="transcription"))
    assert report["held_out"]["test"]["by"] == "file" and len(dataset["test"]) == 1


def _parquet_hub_folder(folder: Path, clips) -> Path:
    from datasets import Audio, Dataset

    (folder / "data").mkdir(parents=True)
    for split, names in {"train": ["a", "b", "c", "a"], "validation": ["b"], "test": ["c"]}.items():
        ds = Dataset.from_dict({
            "audio": [{"bytes": clips[n].read_bytes(), "path": f"common_voice_tr_{split}_{i}.mp3"}
                      for i, n in enumerate(names)],
            "transcription": [f"{split} cümlesi {i}" if split != "train" or i else "test cümlesi 0"
                              for i, n in enumerate(names)],
            "client_id": [f"{split}-{i % 2}" for i in range(len(names))],
        }).cast_column("audio", Audio())
        ds.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return folder


@pytest.mark.parametrize("streaming", [False, True], ids=["download", "streaming"])
def test_hub_source_code_path_on_a_local_parquet_dataset(tmp_path, clips, streaming):
    folder = _parquet_hub_folder(tmp_path / "hub", clips)
    cfg = cfg_for(tmp_path, f"hub:{folder}", hub_text_column="transcription", hub_streaming=streaming)
    dataset, report = load_source(cfg)
    # train row 0 has the test sentence "test cümlesi 0": removed by the leakage guard
    assert report["kept"] == {"train": 3, "eval": 1, "test": 1}
    assert report["dropped"]["train"] == {"leak_sentence": 1}
    assert dataset["eval"]["sentence"] == ["validation cümlesi 0"]
    from datasets import Audio

    if streaming:  # a stream has no cache to refer to: the clips read are held as bytes
        raw = dataset["train"].cast_column("audio", Audio(decode=False))[0]["audio"]
        assert raw["bytes"] and raw["path"] == "common_voice_tr_train_1.mp3"
    else:  # downloaded: each clip refers to its row in datasets' cache (tests/test_hub_source.py)
        assert dataset["train"]["audio"][0].startswith("arrow:")
        assert dataset["train"]["id"][0] == "common_voice_tr_train_1.mp3"
    with pytest.raises(KeyError, match="text column"):
        load_source(cfg_for(tmp_path, f"hub:{folder}", hub_text_column="nope"))


@pytest.mark.parametrize("streaming", [False, True], ids=["download", "streaming"])
def test_leakage_guard_knows_the_whole_test_split_when_only_part_is_read(tmp_path, clips, streaming):
    """MAX_SAMPLES_PER_SPLIT reads 4 rows a split; a stream is read only that far. The guard still knows
    every test sentence and clip: a train row with the sentence of the 8th test row, and one with the clip
    of the 7th, are dropped and counted."""
    from datasets import Audio, Dataset

    (tmp_path / "hub" / "data").mkdir(parents=True)
    splits = {
        "train": [(f"common_voice_tr_train_{i}.mp3", f"eğitim cümlesi {i}") for i in range(6)]
                 + [("common_voice_tr_test_6.mp3", "başka bir cümle"), ("common_voice_tr_x.mp3", "test cümlesi 7")],
        "validation": [("common_voice_tr_dev_0.mp3", "doğrulama cümlesi")],
        "test": [(f"common_voice_tr_test_{i}.mp3", f"test cümlesi {i}") for i in range(8)],
    }
    for split, rows in splits.items():
        ds = Dataset.from_dict({
            "audio": [{"bytes": clips["a"].read_bytes(), "path": name} for name, _ in rows],
            "transcription": [text for _, text in rows],
            "client_id": [f"{split}-{i}" for i in range(len(rows))],
        }).cast_column("audio", Audio())
        if split == "train":  # the two leaking rows first, so that the 4 rows read include them
            ds = ds.select([6, 7, 0, 1, 2, 3, 4, 5])
        ds.to_parquet(str(tmp_path / "hub" / "data" / f"{split}-00000-of-00001.parquet"))
    cfg = cfg_for(tmp_path, f"hub:{tmp_path / 'hub'}", hub_text_column="transcription", hub_streaming=streaming,
                  max_samples_per_split=1, seed=0)
    dataset, report = load_source(cfg)
    assert report["leakage"]["test_keys_known"] == {"sentences": 8, "clips": 8}
    # the test split is a part of the source's: 1 row saved, 3 read but not sampled, 4 never read
    assert {k: report["test_split"][k] for k in ("rows_in_source", "rows", "not_sampled", "not_read", "whole")} == {
        "rows_in_source": 8, "rows": 1, "not_sampled": 3, "not_read": 4, "whole": False}
    if streaming:  # the stream is read in order: the two leaking rows are among the 4 read
        assert report["dropped"]["train"] == {"leak_path": 1, "leak_sentence": 1}
    assert report["leakage"]["test_clips_in_train_or_eval"] == 0
    assert report["leakage"]["test_sentences_in_train_or_eval"] == 0
    assert not {"common_voice_tr_test_6.mp3", "common_voice_tr_x.mp3"} & set(dataset["train"]["id"])


def test_sources_join_with_plus(tmp_path, clips):
    cv = make_cv(tmp_path / "cv", BASIC, clips)
    af = _audiofolder(tmp_path / "af", clips, 3, speakers=3)
    source = f"common_voice:{cv}+audiofolder:{af}"
    dataset, report = load_source(cfg_for(tmp_path, source, hub_text_column="transcription"))
    assert [s["kind"] for s in report["sources"]] == ["common_voice", "audiofolder"]
    assert set(dataset["train"]["source"]) == {f"common_voice:{cv}", f"audiofolder:{af}"}
    assert len(dataset["train"]) == 6


def test_bad_source_strings_fail_clearly(tmp_path):
    assert parse_sources("synthetic+common_voice:/x") == [("synthetic", "synthetic", ""),
                                                          ("common_voice:/x", "common_voice", "/x")]
    with pytest.raises(ValueError, match="DATA_SOURCE"):
        parse_sources("kaggle:foo")
    with pytest.raises(ValueError):
        parse_sources("common_voice:")
    with pytest.raises(FileNotFoundError, match="commonvoice.mozilla.org"):
        load_source(cfg_for(tmp_path, f"common_voice:{tmp_path / 'nope'}"))


# --------------------------------------------------------------------------------------------------
# run_load: the saved step
# --------------------------------------------------------------------------------------------------
def test_run_load_saves_dataset_and_report(tmp_path, clips):
    from datasets import Audio, Value, load_from_disk

    folder = make_cv(tmp_path / "cv", BASIC, clips)
    cfg = cfg_for(tmp_path, f"common_voice:{folder}")
    result = run_load(cfg)
    saved = load_from_disk(str(tmp_path / "run" / "01_load" / "dataset"))
    assert list(saved) == ["train", "eval", "test"]
    assert saved["train"].column_names == ["id", "audio", "sentence", "speaker", "duration", "source"]
    # The clips are stored as their paths, not copied: the run folder does not grow with the audio.
    assert saved["train"].features["audio"] == Value("string")
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in saved["train"]["audio"])
    stored = sum(f.stat().st_size for f in (tmp_path / "run" / "01_load" / "dataset").rglob("*") if f.is_file())
    assert stored < sum(c.stat().st_size for c in clips.values()) / 4
    # Readers get a 16 kHz Audio column.
    assert result.dataset["train"].features["audio"] == Audio(sampling_rate=16000)
    decoded = load_step_dataset(cfg)["train"][0]["audio"].get_all_samples()
    assert decoded.sample_rate == 16000 and decoded.data.shape[-1] > 16000
    report = json.loads(result.report_path.read_text())
    assert report["audio_stored_as"] == "paths"
    assert report["kept"] == {"train": 3, "eval": 1, "test": 1}
    assert split_table(report).loc["train", "clips"] == 3


def test_embedded_audio_survives_the_clips_folder(tmp_path, clips):
    from datasets import load_from_disk

    folder = make_cv(tmp_path / "cv", BASIC, clips)
    run_load(cfg_for(tmp_path, f"common_voice:{folder}", embed_audio=True))
    shutil.rmtree(folder / "clips")
    saved = load_from_disk(str(tmp_path / "run" / "01_load" / "dataset"))
    samples = saved["test"][0]["audio"].get_all_samples()
    assert samples.sample_rate == 16000 and samples.data.shape[-1] > 16000
    assert not (tmp_path / "run" / "01_load" / ".embed").exists()


def test_load_never_imports_a_later_step():
    code = ("import sys, xlsr_helpers.load; bad = [m for m in ('xlsr_helpers.normalize', 'xlsr_helpers.vocab', "
            "'xlsr_helpers.train') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# --------------------------------------------------------------------------------------------------
# real zh-CN clips
# --------------------------------------------------------------------------------------------------
def build_zh_cn_folder(root: Path) -> Path:
    """A CV 6.1-style zh-CN folder from the 12 real clips: 8 train, 2 dev, 2 test, disjoint speakers."""
    rows = [json.loads(line) for line in (ZH / "data" / "common_voice_zh-CN.json").read_text().splitlines() if line]
    folder = root / "zh-CN"
    (folder / "clips").mkdir(parents=True)
    layout = {"train": rows[:8], "dev": rows[8:10], "test": rows[10:12]}
    for split, items in layout.items():
        records = []
        for i, item in enumerate(items):
            clip = (ZH / "data" / item["path"]).resolve()
            shutil.copy(clip, folder / "clips" / clip.name)
            records.append({"client_id": f"{split}{i % 2}", "path": clip.name, "sentence": item["sentence"],
                            "up_votes": 2, "down_votes": 0, "locale": "zh-CN"})
        write_tsv(folder / f"{split}.tsv", H10_61, records)
    return folder


@needs_samples
def test_real_zh_cn_clips_load_completely(tmp_path):
    folder = build_zh_cn_folder(tmp_path)
    dataset, report = load_source(cfg_for(tmp_path, f"common_voice:{folder}", language="zh-CN"))
    assert report["kept"] == {"train": 8, "eval": 2, "test": 2} and report["dropped_total"] == {}
    assert "，" in "".join(dataset["train"]["sentence"])  # raw text: normalization is step 02
    durations = sorted(d for split in ("train", "eval", "test") for d in dataset[split]["duration"])
    assert durations[0] == pytest.approx(2.328, abs=0.01) and durations[-1] == pytest.approx(8.688, abs=0.01)


def test_the_garbage_collector_is_paused_during_the_step_and_restored_after():
    import gc

    from xlsr_helpers.load import collector_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("a failing step")
    assert gc.isenabled()  # back on, also after an error
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
