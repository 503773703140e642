"""Step 05 (xlsr_helpers.evaluate and the modules it puts together: inference, lm, metrics, audio.audio_array):
batch-size invariance, chunking, audio forms, metrics, errors, precision, files.

Fixtures build what the step needs: espeak-ng clips (48 kHz mp3, like Common Voice), a processor from a
vocab.json written here, and a tiny random Wav2Vec2ForCTC. A random model gives garbage text, which is
what the invariance tests want: every frame's argmax is free to differ if anything leaks between clips.
The run-folder tests use the real steps 01-03 on the synthetic corpus (``build_tiny_run``, shared with
test_model_card.py and test_notebooks_05_06.py).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from xlsr_helpers import evaluate as ev
from xlsr_helpers.audio import audio_array
from xlsr_helpers.config import Config
from xlsr_helpers.inference import (Transcriber, audio_duration, chunk_windows, load_model, pick_dtype,
                                    uses_attention_mask)
from xlsr_helpers.lm import LM_FOLDER, LM_INSTALL_HINT, build_lm_decoder, ctc_labels, has_lm
from xlsr_helpers.metrics import EvaluationError, bootstrap_ci, compute_metrics, error_analysis, format_percent
from xlsr_helpers.families import resolve

LETTERS = "abcçdefgğhıijklmnoöprsştuüvyz'"
SENTENCES = [
    "Merhaba dünya!", "Bugün hava çok güzel, değil mi?", "Kitap okumak insanı geliştirir.",
    "Yarın sabah erkenden yola çıkacağız ve akşam varacağız.", "Su.", "Çocuklar bahçede top oynuyor.",
    "Bu şehirde her sokakta küçük bir kahve dükkânı ve eski bir fırın vardır.", "Evet.",
    "Deniz kenarında uzun bir yürüyüş yaptık.", "Öğretmen öğrencilere yeni bir şarkı öğretti.",
    "Işıkları kapatmayı unutma lütfen.", "Annem bana sıcak bir çorba yaptı, çok lezzetliydi.",
    "Kırmızı araba hızla geçti.", "Türkçe konuşmayı çok seviyorum.",
    "Dün akşam arkadaşlarımla birlikte sinemaya gittik ve çok güzel bir film izledik.", "Günaydın.",
    "Pencereyi açar mısın?", "Kedi masanın altında uyuyor.",
]


# ------------------------------------------------------------------------------------------------
# builders (also imported by test_model_card.py and test_notebooks_05_06.py)
# ------------------------------------------------------------------------------------------------
def simple_normalize(text: str) -> str:
    keep = set(LETTERS) | {" "}
    text = text.replace("I", "ı").replace("İ", "i").lower()
    return " ".join("".join(c for c in text if c in keep).split())


def make_processor(folder: Path):
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {c: i for i, c in enumerate(LETTERS)}
    vocab |= {"|": len(vocab), "[UNK]": len(vocab) + 1, "[PAD]": len(vocab) + 2}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="[UNK]", pad_token="[PAD]",
                                     word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=True)
    return Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)


def make_tiny_model(folder: Path, processor, norm: str = "layer", seed: int = 0, save_processor: bool = True) -> Path:
    """The brief's tiny architecture (real conv kernels/strides), random weights, saved with the processor."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(32,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2), feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer", vocab_size=len(processor.tokenizer),
        pad_token_id=processor.tokenizer.pad_token_id, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )
    torch.manual_seed(seed)
    Wav2Vec2ForCTC(config).save_pretrained(str(folder))
    if save_processor:
        if norm == "group":  # wav2vec2-base style: the feature extractor returns no attention mask
            processor.feature_extractor.return_attention_mask = False
        processor.save_pretrained(str(folder))
        processor.feature_extractor.return_attention_mask = True
    return folder


def speak(text: str, mp3: Path) -> Path:
    """espeak-ng (Turkish voice) -> 48 kHz mono mp3, like a Common Voice clip."""
    wav = mp3.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-v", "tr", "-w", str(wav), text], check=True, capture_output=True)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-ar", "48000", "-ac", "1", str(mp3)],
                   check=True, capture_output=True)
    wav.unlink()
    return mp3


def make_clip_dataset(folder: Path, sentences=SENTENCES):
    """A test split as step 02 writes it: id, audio (16 kHz Audio column), sentence, raw_sentence, ..."""
    from concurrent.futures import ThreadPoolExecutor

    from datasets import Audio, Dataset
    from torchcodec.decoders import AudioDecoder

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"common_voice_tr_{i:03d}.mp3" for i in range(len(sentences))]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(speak, sentences, paths))
    durations = [AudioDecoder(str(p)).metadata.duration_seconds_from_header for p in paths]
    return Dataset.from_dict({
        "id": [p.name for p in paths], "audio": [str(p) for p in paths],
        "sentence": [simple_normalize(s) for s in sentences], "raw_sentence": list(sentences),
        "speaker": ["s1"] * len(paths), "duration": durations, "source": ["test"] * len(paths),
    }).cast_column("audio", Audio(sampling_rate=16000))


def build_tiny_run(base: Path) -> Path:
    """A run folder through step 04 for LANGUAGE=tr: the real steps 01-03 on the synthetic ``tiny``
    corpus, and a random tiny Wav2Vec2ForCTC (with 03's processor) as ``04_train/model``. Built once per
    session under ``base`` and reused (copy it with ``copy_run`` before writing into it)."""
    run = base / "tiny-run-05-06"
    done = run / ".built"
    if done.exists():
        return run
    shutil.rmtree(run, ignore_errors=True)
    from transformers import Wav2Vec2Processor

    from xlsr_helpers.load import run_load
    from xlsr_helpers.normalize import run_normalize
    from xlsr_helpers.vocab import run_vocab

    cfg = Config(language="tr", run_dir=str(run), data_source="synthetic", synthetic_size="tiny", model="tiny")
    cfg = resolve(cfg)
    for step, fn in (("01_load", run_load), ("02_normalize", run_normalize), ("03_vocab", run_vocab)):
        cfg.save(step)
        fn(cfg)
    cfg.save("04_train")
    processor = Wav2Vec2Processor.from_pretrained(str(cfg.processor_dir))
    make_tiny_model(cfg.model_dir, processor, save_processor=False)
    processor.save_pretrained(str(cfg.model_dir))
    done.write_text("ok")
    return run


def copy_run(run: Path, dest: Path) -> Path:
    """A private copy of a run folder, with run.json pointing at the copy."""
    shutil.copytree(run, dest)
    record = json.loads((dest / "run.json").read_text())
    for section in [record.get("config", {})] + list(record.get("steps", {}).values()):
        section["run_dir"] = str(dest)
    (dest / "run.json").write_text(json.dumps(record, indent=2))
    return dest


def run_config(run: Path, **changes) -> Config:
    return resolve(Config.load(run).updated(run_dir=str(run), **changes))


def keep_test_clips(run: Path, n: int) -> Path:
    """Cut a run's normalized test split to its first ``n`` clips (beam search on a random model's flat logits
    takes seconds per clip: the LM tests score a few clips, completely)."""
    from datasets import load_from_disk

    folder = run / "02_normalize" / "dataset" / "test"
    test = load_from_disk(str(folder)).select(range(n))
    test.save_to_disk(str(folder.with_name("test.tmp")))
    shutil.rmtree(folder)
    folder.with_name("test.tmp").rename(folder)
    return run


def train_sentences(run: Path) -> list[str]:
    from datasets import load_from_disk

    return list(load_from_disk(str(run / "02_normalize" / "dataset" / "train"))["sentence"])


def write_arpa(sentences, path: Path, discount: float = 0.5) -> Path:
    """A bigram KenLM model in ARPA format made from ``sentences`` (absolute discounting, back-off to
    unigrams), as KenLM's ``lmplz`` would make one from the training text: no test sentence goes in."""
    unigrams, bigrams = Counter(), Counter()
    for sentence in sentences:
        words = ["<s>", *sentence.split(), "</s>"]
        unigrams.update(words[1:])
        bigrams.update(zip(words, words[1:]))
    total = sum(unigrams.values()) + 1  # + 1: the probability left for <unk>
    p1 = {w: c / total for w, c in unigrams.items()} | {"<unk>": 1 / total}
    seen, followers = Counter(), Counter()
    for (u, _), c in bigrams.items():
        seen[u] += c
        followers[u] += 1
    backoff = {u: discount * followers[u] / seen[u] / (1 - sum(p1[v] for (x, v) in bigrams if x == u)) for u in seen}
    lines = ["\\data\\", f"ngram 1={len(p1) + 1}", f"ngram 2={len(bigrams)}", "", "\\1-grams:",
             f"-99\t<s>\t{math.log10(backoff['<s>']):.6f}"]
    for w in sorted(p1):
        lines.append(f"{math.log10(p1[w]):.6f}\t{w}" + (f"\t{math.log10(backoff[w]):.6f}" if w in backoff else ""))
    lines += ["", "\\2-grams:"]
    lines += [f"{math.log10((c - discount) / seen[u]):.6f}\t{u} {v}" for (u, v), c in sorted(bigrams.items())]
    path.write_text("\n".join(lines + ["", "\\end\\", ""]), encoding="utf-8")
    return path


def require_lm_decoder() -> None:
    """Skip, with the reason, where the optional decoder is not installed (`make test` installs it)."""
    for module in ("pyctcdecode", "kenlm"):
        pytest.importorskip(module, reason=f"{module} is not installed: {LM_INSTALL_HINT}")


# ------------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def processor(tmp_path_factory):
    return make_processor(tmp_path_factory.mktemp("processor"))


@pytest.fixture(scope="module")
def layer_model(tmp_path_factory, processor):
    folder = make_tiny_model(tmp_path_factory.mktemp("layer-model"), processor, norm="layer")
    return load_model(folder)


@pytest.fixture(scope="module")
def group_model(tmp_path_factory, processor):
    folder = make_tiny_model(tmp_path_factory.mktemp("group-model"), processor, norm="group")
    return load_model(folder)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_clip_dataset(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return build_tiny_run(tmp_path_factory.getbasetemp())


# ------------------------------------------------------------------------------------------------
# inference
# ------------------------------------------------------------------------------------------------
def test_batch_size_does_not_change_predictions_layer_norm(layer_model, clips):
    model, processor = layer_model
    assert uses_attention_mask(model)
    results, padded = {}, {}
    for batch_size in (1, 8, 32):
        transcriber = Transcriber(model, processor, batch_size=batch_size, progress=False)
        results[batch_size] = transcriber.transcribe(clips)
        padded[batch_size] = transcriber.stats["padded_samples"]
    assert padded[1] == 0 and padded[32] > 0, "batch size 32 must really pad (else the test proves nothing)"
    assert results[1] == results[8] == results[32]
    assert all(results[1]), "a random model still emits characters for every clip"


def test_decoding_padded_frames_would_change_text(layer_model, clips):
    """Why predictions are cut to each clip's own frames: the seed decoded the padded frames too."""
    import torch

    model, processor = layer_model
    arrays = [audio_array(a) for a in clips.select(range(8))["audio"]]
    shortest = int(np.argmin([len(a) for a in arrays]))
    batch = processor(arrays, sampling_rate=16000, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(batch.input_values, attention_mask=batch.attention_mask).logits
    seed_text = processor.batch_decode(logits.argmax(-1))[shortest]
    ours = Transcriber(model, processor, batch_size=8, progress=False).transcribe_arrays(arrays)[shortest]
    alone = Transcriber(model, processor, batch_size=1, progress=False).transcribe_arrays([arrays[shortest]])[0]
    assert ours == alone
    assert seed_text != alone


def test_group_norm_models_are_never_padded(group_model, clips):
    model, processor = group_model
    assert not uses_attention_mask(model)
    results = {}
    for batch_size in (1, 8):
        transcriber = Transcriber(model, processor, batch_size=batch_size, progress=False)
        results[batch_size] = transcriber.transcribe(clips)
        assert transcriber.stats["padded_samples"] == 0
    assert results[1] == results[8]


def test_dataset_and_arrays_give_the_same_text(layer_model, clips):
    model, processor = layer_model
    arrays = [audio_array(a) for a in clips["audio"]]
    transcriber = Transcriber(model, processor, batch_size=4, progress=False)
    assert transcriber.transcribe(clips) == transcriber.transcribe(arrays)


def test_long_clip_is_chunked_like_the_pipeline(layer_model, clips):
    from transformers import pipeline

    model, processor = layer_model
    long = np.concatenate([audio_array(a) for a in clips.select(range(6))["audio"]])
    assert len(long) / 16000 > 9
    for batch_size in (1, 4):
        transcriber = Transcriber(model, processor, batch_size=batch_size, chunk_length_s=3.0, progress=False)
        text = transcriber.transcribe([long])[0]
        assert transcriber.stats["chunked_clips"] == 1
        assert text.strip()
        if batch_size == 1:
            first = text
    assert text == first, "chunked text must not depend on the batch size either"
    asr = pipeline("automatic-speech-recognition", model=model, tokenizer=processor.tokenizer,
                   feature_extractor=processor.feature_extractor, device="cpu")
    expected = asr({"raw": long, "sampling_rate": 16000}, chunk_length_s=3.0)["text"]
    assert text == expected


def test_chunk_windows_tile_the_clip():
    windows = chunk_windows(100_000, 32_000, 4_800, 4_800)
    kept = [(start + left, end - right) for start, end, left, right in windows]
    assert kept[0][0] == 0 and kept[-1][1] == 100_000
    assert all(a[1] == b[0] for a, b in zip(kept, kept[1:]))
    with pytest.raises(EvaluationError):
        chunk_windows(100, 10, 5, 5)


def test_too_short_clip_gives_empty_text(layer_model):
    model, processor = layer_model
    transcriber = Transcriber(model, processor, progress=False)
    texts = transcriber.transcribe([np.zeros(100, np.float32), np.random.default_rng(0).standard_normal(16000).astype(np.float32)])
    assert texts[0] == "" and texts[1] != ""
    assert transcriber.stats["too_short"] == 1


def test_batch_size_must_be_positive(layer_model):
    with pytest.raises(EvaluationError):
        Transcriber(*layer_model, batch_size=0)


# ------------------------------------------------------------------------------------------------
# audio
# ------------------------------------------------------------------------------------------------
def test_audio_array_reads_every_form(clips):
    from torchcodec.decoders import AudioDecoder

    path = clips.cast_column("audio", __import__("datasets").Audio(decode=False))[0]["audio"]["path"]
    reference = audio_array(clips[0]["audio"])  # datasets' AudioDecoder at 16 kHz
    assert reference.dtype == np.float32 and reference.ndim == 1 and len(reference) > 16000
    assert np.array_equal(audio_array(path), reference)
    assert np.array_equal(audio_array(Path(path)), reference)
    assert np.array_equal(audio_array(Path(path).read_bytes()), reference)
    assert np.array_equal(audio_array({"path": path, "bytes": None}), reference)
    assert np.array_equal(audio_array({"array": reference, "sampling_rate": 16000}), reference)
    native = AudioDecoder(path).get_all_samples()  # 48 kHz
    resampled = audio_array({"array": native.data[0].numpy(), "sampling_rate": native.sample_rate})
    assert abs(len(resampled) - len(reference)) <= 2
    stereo = np.stack([reference, reference])
    assert np.allclose(audio_array(stereo), reference)
    assert abs(audio_duration(clips[0]["audio"]) - len(reference) / 16000) < 0.1
    with pytest.raises(ValueError, match="neither bytes nor a path"):
        audio_array({"sampling_rate": 16000})


# ------------------------------------------------------------------------------------------------
# metrics and errors
# ------------------------------------------------------------------------------------------------
REFS = ["bir iki üç dört", "merhaba dünya", "kedi uyuyor", "çok güzel bir gün"]
HYPS = ["bir iki uç", "merhaba dünya nasılsın", "kedi uyuyor", "çok güzel gün"]


def test_metrics_are_jiwer_corpus_rates():
    import jiwer

    metrics = compute_metrics(REFS, HYPS, n_resamples=200, seed=1)
    assert metrics["wer"] == pytest.approx(jiwer.wer(REFS, HYPS))
    assert metrics["cer"] == pytest.approx(jiwer.cer(REFS, HYPS))
    assert metrics["word_errors"] / metrics["reference_words"] == pytest.approx(metrics["wer"])
    assert metrics["n"] == 4 and metrics["reference_words"] == 12
    low, high = metrics["ci"]["wer"]
    assert 0 <= low <= metrics["wer"] <= high
    assert metrics["ci"]["level"] == 0.95
    assert compute_metrics(REFS, HYPS, n_resamples=200, seed=1)["ci"] == metrics["ci"], "seeded"
    perfect = compute_metrics(REFS, REFS, n_resamples=50)
    assert perfect["wer"] == 0 and perfect["ci"]["wer"] == [0.0, 0.0]
    assert format_percent(0.25123) == "25.12"


def test_bootstrap_interval_shrinks_with_more_utterances():
    rng = np.random.default_rng(0)
    errors = rng.integers(0, 4, 2000)
    words = rng.integers(3, 12, 2000)
    small = bootstrap_ci(errors[:50], words[:50], seed=0)
    large = bootstrap_ci(errors, words, seed=0)
    assert large[1] - large[0] < small[1] - small[0]
    rate = errors.sum() / words.sum()
    assert large[0] < rate < large[1]


def test_empty_reference_counts_insertions_and_all_empty_is_an_error():
    metrics = compute_metrics(["bir iki", ""], ["bir iki", "fazla"], n_resamples=20)
    assert metrics["word_errors"] == 1 and metrics["empty_references"] == 1
    with pytest.raises(EvaluationError, match="empty"):
        compute_metrics(["", " "], ["a", "b"])
    with pytest.raises(EvaluationError, match="empty"):
        compute_metrics([], [])
    with pytest.raises(EvaluationError):
        compute_metrics(["a"], ["a", "b"])


def test_error_analysis_counts():
    errors = error_analysis(["a", "b", "c", "d"], REFS, HYPS, top=10)
    subs = {(r["reference"], r["prediction"]): r["count"] for r in errors["word_substitutions"]}
    assert subs == {("üç", "uç"): 1}
    assert {r["word"]: r["count"] for r in errors["word_deletions"]} == {"dört": 1, "bir": 1}
    assert {r["word"]: r["count"] for r in errors["word_insertions"]} == {"nasılsın": 1}
    assert {(r["reference"], r["prediction"]) for r in errors["char_confusions"]} >= {("ü", "u")}
    worst = errors["worst_utterances"]
    assert worst[0]["path"] == "a" and worst[0]["errors"] == 2 and worst[-1]["errors"] == 0
    # a multi-word substitution chunk is counted word by word
    multi = error_analysis(["x"], ["bir iki üç"], ["bin ikiz üç"])
    assert {(r["reference"], r["prediction"]) for r in multi["word_substitutions"]} == {("bir", "bin"), ("iki", "ikiz")}


# ------------------------------------------------------------------------------------------------
# loading: clear errors
# ------------------------------------------------------------------------------------------------
def test_model_folder_without_processor_is_a_clear_error(tmp_path, processor):
    folder = make_tiny_model(tmp_path / "model", processor, save_processor=False)
    with pytest.raises(EvaluationError, match="processor"):
        load_model(folder)


def test_missing_trained_model_is_a_clear_error(tmp_path):
    cfg = Config(run_dir=str(tmp_path / "run"))
    with pytest.raises(EvaluationError, match="04_train"):
        ev.resolve_model_path(cfg)
    assert ev.resolve_model_path(cfg.updated(eval_model="org/some-model")) == "org/some-model"


def test_empty_test_split_is_a_clear_error(tmp_path, layer_model, clips):
    from datasets import DatasetDict

    empty = clips.select([])
    with pytest.raises(EvaluationError, match="empty"):
        ev.evaluate(*layer_model, empty, simple_normalize, progress=False)
    run = tmp_path / "run"
    DatasetDict({"train": clips, "eval": clips, "test": empty}).save_to_disk(str(run / "02_normalize" / "dataset"))
    with pytest.raises(EvaluationError, match="empty"):
        ev.load_test_split(Config(run_dir=str(run)))
    with pytest.raises(EvaluationError, match="02_normalize"):
        ev.load_test_split(Config(run_dir=str(tmp_path / "nothing")))


def test_lm_decoding_is_off_by_default_and_needs_pyctcdecode(monkeypatch, processor, tmp_path):
    assert build_lm_decoder(processor, "") is None
    monkeypatch.setitem(sys.modules, "pyctcdecode", None)  # import fails as if not installed
    lm = tmp_path / "lm.arpa"
    lm.write_text("\\data\\\n")
    with pytest.raises(ImportError, match="--no-deps"):
        build_lm_decoder(processor, lm)


BIGRAM_ARPA = """\\data\\
ngram 1=5
ngram 2=2

\\1-grams:
-1.0\t<unk>\t0
-99\t<s>\t-0.3
-1.0\t</s>\t0
-0.5\tgüzel\t-0.3
-0.5\tgün\t0

\\2-grams:
-0.2\t<s> güzel
-0.2\tgüzel gün

\\end\\
"""


def test_lm_decodes_the_same_logits_as_greedy(layer_model, clips, tmp_path):
    require_lm_decoder()
    model, processor = layer_model
    lm = tmp_path / "bigram.arpa"
    lm.write_text(BIGRAM_ARPA, encoding="utf-8")
    decoder = build_lm_decoder(processor, lm)
    subset = clips.select(range(6))
    forwards = []
    hook = model.register_forward_hook(lambda *_: forwards.append(1))
    try:
        greedy = Transcriber(model, processor, batch_size=4, progress=False).transcriptions(subset)
        greedy_forwards = len(forwards)
        both = {bs: Transcriber(model, processor, batch_size=bs, lm_decoder=decoder,
                                progress=False).transcriptions(subset) for bs in (4, 1)}
        lm_forwards = len(forwards) - greedy_forwards - 6  # batch size 1: one forward per clip
    finally:
        hook.remove()
    assert list(greedy) == ["greedy"] and list(both[4]) == ["greedy", "lm"]
    assert lm_forwards == greedy_forwards, "the LM decodes the logits of the one forward pass"
    assert both[4]["greedy"] == greedy["greedy"] and both[1] == both[4]
    assert both[4]["lm"] != both[4]["greedy"]
    words = {w for text in both[4]["lm"] for w in text.split()}
    assert words and words <= {"güzel", "gün", "</s>", "<s>", "<unk>"} | set(LETTERS), words
    assert Transcriber(model, processor, lm_decoder=decoder, progress=False).transcribe(subset) == both[4]["lm"]
    with pytest.raises(FileNotFoundError):
        build_lm_decoder(processor, tmp_path / "absent.arpa")


def test_lm_folder_is_loaded_and_checked(layer_model, tmp_path):
    require_lm_decoder()
    _, processor = layer_model
    lm = tmp_path / "bigram.arpa"
    lm.write_text(BIGRAM_ARPA, encoding="utf-8")
    folder = tmp_path / "with-lm"
    folder.mkdir()
    build_lm_decoder(processor, lm).save_to_dir(str(folder))
    assert has_lm(folder) and not has_lm(tmp_path / "absent")
    logits = np.random.default_rng(0).standard_normal((50, len(processor.tokenizer))).astype(np.float32)
    assert build_lm_decoder(processor, folder).decode(logits) == build_lm_decoder(processor, lm).decode(logits)
    (folder / LM_FOLDER / lm.name).unlink()
    with pytest.raises(EvaluationError, match="missing: the KenLM file"):
        build_lm_decoder(processor, folder)
    other = make_processor(tmp_path / "other")
    other.tokenizer.add_tokens(["ş2"])  # another model's vocabulary
    with pytest.raises(EvaluationError, match="not this model's vocabulary"):
        lm.rename(folder / LM_FOLDER / lm.name)
        build_lm_decoder(other, folder)


def test_ctc_labels_for_pyctcdecode(processor):
    labels = ctc_labels(processor.tokenizer)
    vocab = processor.tokenizer.get_vocab()
    assert labels[vocab["[PAD]"]] == "" and labels[vocab["|"]] == " " and labels[vocab["a"]] == "a"


def test_precision_of_training_only_on_cuda(monkeypatch):
    """precision.resolve_precision's rule, with the GPU's compute capability faked (not the function under test):
    bf16 only where native, so a T4 (7.5), whose bf16 torch.cuda.is_bf16_supported() reports as emulated, gets
    fp16."""
    import torch

    assert pick_dtype("cpu", "auto") == torch.float32
    with pytest.warns(UserWarning):
        assert pick_dtype("cpu", "fp16") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what it says on a T4
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (8, 0))
    assert pick_dtype("cuda", "auto") == torch.bfloat16, "auto: bf16 where the GPU has it, as in training"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (7, 5))
    assert pick_dtype("cuda", "auto") == torch.float16, "a T4: fp16, as in training"
    assert pick_dtype("cuda", "bf16") == torch.bfloat16 and pick_dtype("cuda", "fp32") == torch.float32
    with pytest.raises(EvaluationError):
        pick_dtype("cpu", "int8")


def test_weights_stay_float32_and_the_transcriber_computes_in_the_chosen_precision(layer_model):
    import torch

    model, processor = layer_model
    assert all(p.dtype == torch.float32 for p in model.parameters()), "no blanket .half()"
    transcriber = Transcriber(model, processor, progress=False, precision="fp32")
    assert transcriber.dtype == torch.float32 and transcriber.weights_dtype == torch.float32


# ------------------------------------------------------------------------------------------------
# the step on a run folder
# ------------------------------------------------------------------------------------------------
def test_run_evaluation_writes_predictions_metrics_errors(tiny_run, tmp_path):
    from datasets import load_from_disk

    from xlsr_helpers.normalize import load_normalizer

    run = copy_run(tiny_run, tmp_path / "run")
    cfg = run_config(run, eval_batch_size=4)
    result = ev.run_evaluation(cfg, progress=False)
    out = run / "05_evaluate"
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"wer", "cer", "ci", "n"} <= set(metrics)
    test = load_from_disk(str(run / "02_normalize" / "dataset"))["test"]
    assert metrics["n"] == len(test) == len(result.rows)
    assert metrics["attention_mask"] is True and metrics["dtype"] == "float32"
    rows = ev.read_predictions(out / "predictions.tsv")
    assert [r["path"] for r in rows] == list(test["id"])
    normalize = load_normalizer(run)
    assert [r["reference"] for r in rows] == [normalize(t) for t in test["raw_sentence"]] == list(test["sentence"])
    assert sum(r["errors"] for r in rows) == metrics["word_errors"]
    assert metrics["wer"] == pytest.approx(metrics["word_errors"] / metrics["reference_words"])
    errors = json.loads((out / "errors.json").read_text())
    assert set(errors) >= {"worst_utterances", "word_substitutions", "word_deletions", "word_insertions",
                           "char_confusions"}
    assert "Test WER: " + format_percent(metrics["wer"]) in result.summary()
    assert metrics["empty_predictions"] == sum(1 for r in rows if not r["prediction"].strip())
    assert "lm" not in metrics and not (out / "predictions_lm.tsv").exists()
    # the same run, other batch size: the same files' content
    again = ev.run_evaluation(cfg.updated(eval_batch_size=1), progress=False)
    assert [r["prediction"] for r in again.rows] == [r["prediction"] for r in rows]


def test_run_evaluation_with_an_lm_reports_both_decodings(tiny_run, tmp_path):
    require_lm_decoder()
    run = keep_test_clips(copy_run(tiny_run, tmp_path / "run"), 3)
    lm = write_arpa(train_sentences(run), tmp_path / "train.arpa")
    greedy_only = ev.run_evaluation(run_config(run), progress=False)
    result = ev.run_evaluation(run_config(run, lm_path=str(lm)), progress=False)
    out = run / "05_evaluate"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["decoding"] == "greedy CTC" and metrics["wer"] == greedy_only.metrics["wer"]
    assert ev.read_predictions(out / "predictions.tsv") == greedy_only.rows, "greedy is unchanged by the LM"
    lm_rows = ev.read_predictions(out / "predictions_lm.tsv")
    assert lm_rows == result.lm_rows and [r["prediction"] for r in lm_rows] != [r["prediction"] for r in result.rows]
    figures = metrics["lm"]
    assert figures["decoding"] == "beam search + n-gram LM (pyctcdecode)" and figures["lm_path"] == str(lm)
    assert figures["wer"] == pytest.approx(sum(r["errors"] for r in lm_rows) / figures["reference_words"])
    assert figures["n"] == metrics["n"] == 3 and "ci" in figures
    summary = result.summary().splitlines()
    assert summary[0].startswith("Test WER: ") and summary[1].startswith(
        f"Test WER (n-gram LM): {format_percent(figures['wer'])}")
    assert list(ev.metrics_table(metrics).index) == ["WER", "CER", "WER (n-gram LM)", "CER (n-gram LM)"]
    assert set(ev.read_transcriptions(out)) == {"greedy", "lm"}
    assert len(ev.decoding_differences(result)) == sum(g["prediction"] != l["prediction"]
                                                       for g, l in zip(result.rows, lm_rows))
    # Run again without the LM: no LM figures or predictions of the earlier run are left behind.
    ev.run_evaluation(run_config(run), progress=False)
    assert "lm" not in json.loads((out / "metrics.json").read_text()) and not (out / "predictions_lm.tsv").exists()


def test_notebook_helpers_make_tables_and_figure(tiny_run, tmp_path):
    import matplotlib

    from xlsr_helpers.widgets import prediction_browser

    matplotlib.use("Agg")
    metrics = compute_metrics(REFS, HYPS, n_resamples=50)
    table = ev.metrics_table(metrics)
    assert list(table.index) == ["WER", "CER"]
    tables = ev.error_tables(error_analysis(list("abcd"), REFS, HYPS))
    assert list(tables["word_substitutions"].columns) == ["reference", "prediction", "count"]
    empty = ev.error_tables({})
    assert empty["char_confusions"].empty
    rows = [{"path": "a", "reference": "x y", "prediction": "x", "errors": 1, "words": 2}]
    assert ev.plot_errors(rows, [1.5]) is not None
    shown = prediction_browser(rows + [{"path": "b", "reference": "x", "prediction": "x", "errors": 0, "words": 1}], n=1)
    assert [r["path"] for r in shown] == ["a"]
