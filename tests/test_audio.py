"""audio.py: decoding + resampling, training rows (nothing decoded) and the collator's decoding, model inputs,
frame lengths."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from xlsr_helpers import audio
from xlsr_helpers.train import data

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


def make_processor(texts):
    from xlsr_helpers.vocab import build_vocab, make_processor as build

    return build(build_vocab(texts))


def make_tokenizer(texts):
    return make_processor(texts).tokenizer


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


# --- training rows (nothing decoded) and the collator's decoding ---------------------------------
def test_training_rows_columns_labels_and_lengths(clips):
    from datasets import Audio

    processor = make_processor(SENTENCES)
    files = [item["path"] for item in clips["train"].cast_column("audio", Audio(decode=False))["audio"]]
    paths = clips["train"].remove_columns("audio").add_column("audio", files)  # how steps 01/02 store clips
    assert audio.stores_paths(paths) and not audio.stores_paths(clips["train"])
    for source in (paths, clips["train"]):  # paths, or an Audio column (EMBED_AUDIO, hub bytes)
        rows = data.training_rows(source, processor.tokenizer)
        assert rows.column_names == ["id", "audio", "labels", "input_length", "problem"]
        assert rows["input_length"] == [16000] * len(SENTENCES), "from the duration column (1.0 s), not decoded"
        assert rows["problem"] == [""] * len(SENTENCES)
        for i, row in enumerate(rows):
            assert processor.tokenizer.decode(row["labels"], group_tokens=False) == SENTENCES[i]
            original = audio.decode_audio(paths[i]["audio"])
            np.testing.assert_array_equal(audio.decode_audio(row["audio"]), original)
    # "allah": the doubled l must survive as two label ids
    ids = list(rows[1]["labels"])
    l_id = processor.tokenizer.convert_tokens_to_ids("l")
    assert any(a == b == l_id for a, b in zip(ids, ids[1:]))


def test_training_rows_without_a_duration_read_the_header_and_mark_bad_rows(tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"this is not audio" * 100)
    good = espeak_mp3(tmp_path / "good.mp3", "iyi günler")
    dd = make_dataset_dict(tmp_path / "c", sentences=["saat kaç"],
                           extra_rows=[(str(broken), "bozuk dosya"), (str(good), "")])
    train = dd["train"].remove_columns("duration").add_column("duration", [0.0, 0.0, 0.0])
    rows = data.training_rows(train, make_tokenizer(["saat kaç", "bozuk dosya", "iyi günler"]))
    problems = list(rows["problem"])
    assert problems[0] == "" and abs(rows[0]["input_length"] - len(audio.decode_audio(train[0]["audio"]))) < 1200
    assert problems[1].startswith("undecodable") and rows[1]["input_length"] == 0
    assert problems[2] == "empty transcript"


def test_missing_text_column_is_a_clear_error(clips):
    with pytest.raises(KeyError, match="'text'"):
        data.training_rows(clips["train"], make_tokenizer(SENTENCES), text_column="text")


# --- model inputs and frames --------------------------------------------------------------------
def test_output_frames_use_the_models_conv_arithmetic():
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    from xlsr_helpers.tiny import tiny_config

    model = Wav2Vec2ForCTC(tiny_config(vocab_size=10, pad_token_id=9))
    extractor = Wav2Vec2FeatureExtractor()
    lengths = np.array([400, 16000, 48000])
    expected = []
    for n in lengths:
        for k, s in zip(model.config.conv_kernel, model.config.conv_stride):
            n = (n - k) // s + 1
        expected.append(n)
    np.testing.assert_array_equal(audio.output_frames(model, extractor, lengths), expected)
    assert audio.output_frames(model, extractor, [16000])[0] == 49, "20 ms frames, like XLSR"
    assert audio.samples_per_frame(model, extractor) == 320


def test_w2v_bert_frames_match_its_feature_extractor_and_adapter():
    """samples -> SeamlessM4T filterbank frames (25 ms windows every 10 ms, two stacked) -> the adapter's
    stride: the formula in feature_frames must agree with what the extractor really makes."""
    import torch
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertForCTC

    extractor = SeamlessM4TFeatureExtractor()
    rng = np.random.default_rng(0)
    lengths = [400, 559, 560, 720, 1000, 3999, 16000, 16001, 48123]
    clips = [rng.normal(0, 0.1, n).astype(np.float32) for n in lengths]
    batch = extractor(clips, sampling_rate=16000, padding=True, return_attention_mask=True)
    made = batch["attention_mask"].sum(-1)  # valid frames, as the model counts them
    np.testing.assert_array_equal(audio.feature_frames(extractor, lengths), made)
    assert made[3] == 1 and np.asarray(extractor(clips[3], sampling_rate=16000)["input_features"]).shape[1] == 2, \
        "a half-filled last frame is in the array but not in the mask"
    model = Wav2Vec2BertForCTC(Wav2Vec2BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                                  intermediate_size=16, output_hidden_size=16, add_adapter=True,
                                                  vocab_size=8)).eval()  # no LayerDrop of the adapter
    with torch.no_grad():
        logits = model(input_features=torch.randn(1, made[-2], 160)).logits
    assert audio.output_frames(model, extractor, [16001])[0] == logits.shape[1]
    assert audio.samples_per_frame(model, extractor) == 640, "the adapter halves w2v-BERT's 20 ms frame rate"


def test_model_inputs_normalize_each_clip_on_its_own_samples():
    from transformers import Wav2Vec2FeatureExtractor

    rng = np.random.default_rng(1)
    clips = [rng.normal(0.5, 2.0, 1000).astype(np.float32), rng.normal(0, 0.1, 3000).astype(np.float32)]
    for mask in (True, False):
        extractor = Wav2Vec2FeatureExtractor(return_attention_mask=mask)
        batch = audio.model_inputs(extractor, clips)
        first = batch["input_values"][0, :1000]
        assert abs(float(first.mean())) < 1e-3 and abs(float(first.std()) - 1) < 1e-2
        assert batch["input_values"][0, 1000:].eq(0).all()
        assert ("attention_mask" in batch) is mask


def test_int16_round_trip_is_within_one_step():
    x = np.array([-1.2, -1.0, -0.5, 0.0, 1e-6, 0.25, 1.0, 1.5], dtype=np.float32)
    back = audio.from_int16(audio.to_int16(x))
    np.testing.assert_allclose(back, np.clip(x, -1, 1), atol=1 / audio.INT16_SCALE)


def test_ctc_min_frames_counts_a_blank_between_repeats():
    assert audio.ctc_min_frames([1, 2, 3]) == 3
    assert audio.ctc_min_frames([1, 2, 2, 3]) == 5  # a-l-l-a needs a blank between the two l
    assert audio.ctc_min_frames([4, 4, 4]) == 5
    assert audio.ctc_min_frames([]) == 0
