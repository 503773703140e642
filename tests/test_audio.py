"""audio.py: decoding + resampling, input_values/labels/input_length, the Arrow cache, frame lengths."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from xlsr_helpers import audio

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "cv-samples"
SENTENCES = ["merhaba dünya", "allah kerim", "iyi günler efendim", "saat kaç"]


def espeak_mp3(path: Path, text: str, rate: int = 48000) -> Path:
    """A Common Voice-like clip: espeak-ng Turkish, converted to mono mp3 at ``rate`` Hz."""
    wav = path.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-v", "tr", "-w", str(wav), text], check=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-ar", str(rate), "-ac", "1", "-b:a", "64k",
                    str(path)], check=True)
    wav.unlink()
    return path


def make_processor(texts, return_attention_mask=True):
    from xlsr_helpers.vocab import build_vocab, make_processor as build

    return build(build_vocab(texts), "tiny", return_attention_mask=return_attention_mask)


def make_dataset_dict(folder: Path, sentences=SENTENCES, extra_rows=()):
    """DatasetDict(train, eval) in 02_normalize's layout from espeak clips (+ extra (path, sentence) rows)."""
    from datasets import Audio, Dataset, DatasetDict

    folder.mkdir(parents=True, exist_ok=True)
    rows = [(str(espeak_mp3(folder / f"clip_{i}.mp3", s)), s) for i, s in enumerate(sentences)]
    rows += list(extra_rows)

    def split(items):
        return Dataset.from_dict({
            "id": [Path(p).name for p, _ in items], "audio": [p for p, _ in items],
            "sentence": [s for _, s in items], "raw_sentence": [s.capitalize() for _, s in items],
            "speaker": ["s1"] * len(items), "duration": [1.0] * len(items), "source": ["test"] * len(items),
        }).cast_column("audio", Audio(sampling_rate=16000))

    return DatasetDict(train=split(rows), eval=split(rows[:2]))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return make_dataset_dict(folder)


# --- decoding ------------------------------------------------------------------------------------
def test_decode_resamples_48k_mp3_to_16k(tmp_path):
    from torchcodec.decoders import AudioDecoder

    path = espeak_mp3(tmp_path / "a.mp3", "merhaba dünya")
    native = AudioDecoder(str(path)).get_all_samples()
    assert native.sample_rate == 48000
    array = audio.decode_audio(str(path))
    assert array.dtype == np.float32 and array.ndim == 1
    assert abs(len(array) - native.data.shape[-1] / 3) <= 2, "16 kHz = a third of the 48 kHz samples"
    same = audio.decode_audio({"bytes": path.read_bytes(), "path": None})
    np.testing.assert_allclose(same, array, atol=1e-6)
    decoded_by_datasets = audio.decode_audio({"array": array, "sampling_rate": 16000})
    np.testing.assert_array_equal(decoded_by_datasets, array)
    other_rate = audio.decode_audio({"array": np.zeros(48000, dtype=np.float32), "sampling_rate": 48000})
    assert len(other_rate) == 16000


def test_decode_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        audio.decode_audio(str(tmp_path / "missing.mp3"))
    with pytest.raises(ValueError, match="neither bytes nor a path"):
        audio.decode_audio({"bytes": None, "path": None})


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/cv-samples not present (real Common Voice clips)")
def test_decode_real_common_voice_clip():
    clip = SHARED / "pkailin_whisper-lm" / "common_voice_eu_18591439.mp3"
    index = {}
    for line in (SHARED / "clips_index.tsv").read_text().splitlines()[1:]:
        fields = line.split("\t")
        index[Path(fields[0]).name] = fields
    header = (SHARED / "clips_index.tsv").read_text().splitlines()[0].split("\t")
    row = dict(zip(header, index[clip.name]))
    array = audio.decode_audio(str(clip))
    duration = float(row.get("duration_s") or row.get("duration"))
    assert abs(len(array) / 16000 - duration) < 0.1
    assert np.abs(array).max() > 0.01, "real speech, not silence"


# --- preparation ---------------------------------------------------------------------------------
def test_prepare_columns_values_and_labels(clips, tmp_path):
    processor = make_processor(SENTENCES)
    prepared = audio.prepare_dataset(clips, processor, tmp_path / "prepared", num_proc=1, progress=False,
                                     log=lambda *a: None)
    train = prepared["train"]
    assert set(train.column_names) == {"id", "input_values", "labels", "input_length", "problem"}
    assert len(train) == len(SENTENCES) and len(prepared["eval"]) == 2
    for i, row in enumerate(train):
        values = row["input_values"]
        assert values.dtype == np.float32
        assert row["input_length"] == len(values)
        assert abs(float(values.mean())) < 1e-3 and abs(float(values.std()) - 1) < 1e-2, "zero mean, unit variance"
        assert processor.tokenizer.decode(row["labels"], group_tokens=False) == SENTENCES[i]
        assert row["problem"] == ""
    # "allah": the doubled l must survive as two label ids
    ids = list(train[1]["labels"])
    l_id = processor.tokenizer.convert_tokens_to_ids("l")
    assert any(a == b == l_id for a, b in zip(ids, ids[1:]))
    # the Arrow files live in the cache folder (memory-mapped, not in RAM)
    assert all(Path(f["filename"]).parent == tmp_path / "prepared" for f in train.cache_files)


def test_bad_rows_are_counted_not_fatal(tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"this is not audio" * 100)
    good = espeak_mp3(tmp_path / "good.mp3", "iyi günler")
    dd = make_dataset_dict(tmp_path / "c", sentences=["saat kaç"],
                           extra_rows=[(str(broken), "bozuk dosya"), (str(good), "")])
    processor = make_processor(["saat kaç", "bozuk dosya", "iyi günler"])
    prepared = audio.prepare_dataset(dd, processor, tmp_path / "prepared", num_proc=1, progress=False,
                                     log=lambda *a: None)["train"]
    problems = list(prepared["problem"])
    assert problems[0] == ""
    assert problems[1].startswith("undecodable") and prepared[1]["input_length"] == 0
    assert problems[2] == "empty transcript"


def test_cache_is_reused_and_invalidated(clips, tmp_path):
    cache = tmp_path / "prepared"
    processor = make_processor(SENTENCES)
    messages = []
    audio.prepare_dataset(clips, processor, cache, num_proc=1, progress=False, log=messages.append)
    manifest = json.loads((cache / audio.MANIFEST).read_text())
    files = {f: (cache / f).stat().st_mtime_ns for entry in manifest.values() for f in entry["files"]}
    assert not messages
    again = audio.prepare_dataset(clips, processor, cache, num_proc=1, progress=False, log=messages.append)
    assert len(messages) == 2 and all("reusing" in m for m in messages)
    assert {f: (cache / f).stat().st_mtime_ns for f in files} == files, "nothing rewritten"
    assert len(again["train"]) == len(SENTENCES)
    # another vocabulary (e.g. 03_vocab re-run) invalidates the cache: labels are recomputed
    other = make_processor(SENTENCES + ["xyzw"])
    messages.clear()
    redone = audio.prepare_dataset(clips, other, cache, num_proc=1, progress=False, log=messages.append)
    assert not messages
    assert other.tokenizer.decode(redone["train"][0]["labels"], group_tokens=False) == SENTENCES[0]


def test_parallel_preparation_matches_serial(clips, tmp_path):
    processor = make_processor(SENTENCES)
    serial = audio.prepare_dataset(clips, processor, tmp_path / "a", num_proc=1, progress=False,
                                   log=lambda *a: None, batch_size=1)["train"]
    parallel = audio.prepare_dataset(clips, processor, tmp_path / "b", num_proc=2, progress=False,
                                     log=lambda *a: None, batch_size=1)["train"]
    assert len(parallel.cache_files) == 2, "two workers, two Arrow shards"
    assert list(serial["id"]) == list(parallel["id"])
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a["input_values"], b["input_values"])
        np.testing.assert_array_equal(a["labels"], b["labels"])


def test_threaded_decoding_keeps_order_and_problems(clips, tmp_path):
    """Clips decoded in threads land in their own rows; a broken one is still its own row's problem."""
    from datasets import Audio

    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"not audio at all")
    items = list(clips["train"].cast_column("audio", Audio(decode=False))["audio"])
    batch = {"audio": items[:2] + [{"bytes": None, "path": str(broken)}] + items[2:],
             "sentence": SENTENCES[:2] + ["x"] + SENTENCES[2:]}
    processor = make_processor(SENTENCES + ["x"])
    serial = audio.prepare_batch(batch, processor, decode_threads=1)
    threaded = audio.prepare_batch(batch, processor, decode_threads=4)
    assert threaded["problem"] == serial["problem"] and threaded["problem"][2].startswith("undecodable")
    assert threaded[audio.LENGTH_COLUMN] == serial[audio.LENGTH_COLUMN]
    for a, b in zip(serial["input_values"], threaded["input_values"]):
        np.testing.assert_array_equal(a, b)


def test_preparation_workers(monkeypatch):
    monkeypatch.setattr(audio, "cpu_cores", lambda: 2)
    assert audio.preparation_workers(0, 10_000, 32) == (1, 2), "2 cores: one process, two decode threads"
    monkeypatch.setattr(audio, "cpu_cores", lambda: 16)
    assert audio.preparation_workers(0, 10_000, 32) == (4, 4)
    assert audio.preparation_workers(0, 64, 32) == (2, 8), "no more processes than batches"
    assert audio.preparation_workers(8, 10_000, 32) == (8, 2), "NUM_PROC is the number of processes"


def test_missing_text_column_is_a_clear_error(clips, tmp_path):
    with pytest.raises(KeyError, match="no 'text' column"):
        audio.prepare_dataset(clips, make_processor(SENTENCES), tmp_path / "p", text_column="text", progress=False)


# --- frames --------------------------------------------------------------------------------------
def test_output_frames_use_the_models_conv_arithmetic():
    from xlsr_helpers.train import tiny_config
    from transformers import Wav2Vec2ForCTC

    model = Wav2Vec2ForCTC(tiny_config(vocab_size=10, pad_token_id=9))
    lengths = np.array([400, 16000, 48000])
    expected = []
    for n in lengths:
        for k, s in zip(model.config.conv_kernel, model.config.conv_stride):
            n = (n - k) // s + 1
        expected.append(n)
    np.testing.assert_array_equal(audio.output_frames(model, lengths), expected)
    assert audio.output_frames(model, [16000])[0] == 49, "20 ms frames, like XLSR"


def test_ctc_min_frames_counts_a_blank_between_repeats():
    assert audio.ctc_min_frames([1, 2, 3]) == 3
    assert audio.ctc_min_frames([1, 2, 2, 3]) == 5  # a-l-l-a needs a blank between the two l
    assert audio.ctc_min_frames([4, 4, 4]) == 5
    assert audio.ctc_min_frames([]) == 0
