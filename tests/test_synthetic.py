"""Tests of xlsr_helpers.synthetic: the espeak-ng corpus in Common Voice release layout."""

from __future__ import annotations

import csv
import json
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from xlsr_helpers import synthetic
from xlsr_helpers.synthetic import CLIP_TSVS, MARKER, SIZES, TSV_COLUMNS, make_corpus
from xlsr_helpers.synthetic.languages import resolve
from xlsr_helpers.synthetic.sentences import SentenceMaker
from xlsr_helpers.synthetic.synthesis import espeak_languages

HAVE_TOOLS = shutil.which("espeak-ng") is not None and shutil.which("ffmpeg") is not None
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="espeak-ng and ffmpeg are needed to synthesize clips "
                                                        "(apt-get install espeak-ng ffmpeg)")
CV17_HEADER = ("client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_votes\tage\tgender\t"
               "accents\tvariant\tlocale\tsegment")
MICRO = dict(train=6, dev=3, test=3, validated_extra=2, other=2, invalidated=1, speakers=(2, 1, 1, 1))
BUILD_TIMES: dict[str, float] = {}


def read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        rows = list(reader)
    for row in rows:  # exactly as many fields as the header: nothing merged, nothing left over
        assert None not in row and None not in row.values(), (path, row)
    return rows


def durations(folder: Path) -> dict[str, int]:
    return {r["clip"]: int(r["duration[ms]"]) for r in read_tsv(folder / "clip_durations.tsv")}


def decoded_seconds(path: Path) -> tuple[float, int, int]:
    from torchcodec.decoders import AudioDecoder

    dec = AudioDecoder(str(path))
    samples = dec.get_all_samples()
    return samples.data.shape[-1] / samples.sample_rate, dec.metadata.sample_rate, dec.metadata.num_channels


def tsv_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.tsv"))}


@pytest.fixture()
def micro_size(monkeypatch):
    monkeypatch.setitem(SIZES, "micro", dict(MICRO))
    return "micro"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    if not HAVE_TOOLS:
        pytest.skip("espeak-ng and ffmpeg are needed to synthesize clips")
    root = tmp_path_factory.mktemp("synthetic")
    t0 = time.perf_counter()
    folder = make_corpus("tr", "tiny", seed=0, root=root, progress=False)
    BUILD_TIMES["tiny"] = time.perf_counter() - t0
    return folder


# --- layout ---------------------------------------------------------------------------------------------
@needs_tools
def test_layout_is_a_common_voice_release(tiny):
    assert tiny.name == "tr" and tiny.parent.name == "cv-synthetic" and tiny.parent.parent.name == "tiny-seed0"
    assert (tiny / "clips").is_dir()
    for name in CLIP_TSVS:
        path = tiny / f"{name}.tsv"
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        assert first == CV17_HEADER, name
        assert tuple(first.split("\t")) == TSV_COLUMNS
        rows = read_tsv(path)
        assert rows, name
        for row in rows:
            assert row["locale"] == "tr"
            assert re.fullmatch(r"common_voice_tr_\d+\.mp3", row["path"])
            assert re.fullmatch(r"[0-9a-f]{128}", row["client_id"])
            assert re.fullmatch(r"[0-9a-f]{64}", row["sentence_id"])
            assert row["sentence"].strip() and row["segment"] == ""
            assert row["gender"] in ("", "male_masculine", "female_feminine")
    assert (tiny / "clip_durations.tsv").read_text(encoding="utf-8").startswith("clip\tduration[ms]\n")
    # as in real releases, the empty `segment` leaves a tab at the end of every row
    assert all(line.endswith("\t") for line in (tiny / "train.tsv").read_text(encoding="utf-8").splitlines()[1:])
    for extra in ("validated_sentences.tsv", "unvalidated_sentences.tsv", "reported.tsv"):
        assert (tiny / extra).is_file()


@needs_tools
def test_counts_and_votes(tiny):
    counts = SIZES["tiny"]
    rows = {name: read_tsv(tiny / f"{name}.tsv") for name in CLIP_TSVS}
    for split in ("train", "dev", "test", "other", "invalidated"):
        assert len(rows[split]) == counts[split], split
    in_splits = {r["path"] for s in ("train", "dev", "test") for r in rows[s]}
    validated = {r["path"] for r in rows["validated"]}
    assert in_splits < validated  # validated = train + dev + test + rows in no split
    assert 0 < len(validated - in_splits) <= counts["validated_extra"]
    assert all(int(r["up_votes"]) >= 2 and int(r["up_votes"]) > int(r["down_votes"]) for r in rows["validated"])
    assert all(int(r["up_votes"]) < 2 for r in rows["other"])
    assert all(int(r["down_votes"]) > int(r["up_votes"]) for r in rows["invalidated"])
    # a clip is in at most one of validated / other / invalidated
    other, invalid = {r["path"] for r in rows["other"]}, {r["path"] for r in rows["invalidated"]}
    assert not (validated & other or validated & invalid or other & invalid)


@needs_tools
def test_every_listed_clip_exists_and_every_clip_has_a_duration(tiny):
    listed = {r["path"] for name in CLIP_TSVS for r in read_tsv(tiny / f"{name}.tsv")}
    on_disk = {p.name for p in (tiny / "clips").iterdir()}
    assert listed == on_disk
    assert set(durations(tiny)) == on_disk


# --- audio ----------------------------------------------------------------------------------------------
@needs_tools
def test_clips_are_48k_mono_mp3_and_durations_agree(tiny):
    durs = durations(tiny)
    for clip, ms in durs.items():
        seconds, rate, channels = decoded_seconds(tiny / "clips" / clip)
        assert rate == 48_000 and channels == 1, clip
        assert abs(seconds * 1000 - ms) <= 50, (clip, seconds, ms)
        assert 0.8 < seconds < 15, (clip, seconds)
    if shutil.which("ffprobe"):
        clip = tiny / "clips" / sorted(durs)[0]
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                              "stream=codec_name,sample_rate,channels,bit_rate", "-of", "json", str(clip)],
                             capture_output=True, text=True, check=True).stdout
        stream = json.loads(out)["streams"][0]
        assert stream["codec_name"] == "mp3" and int(stream["sample_rate"]) == 48_000
        assert int(stream["channels"]) == 1 and abs(int(stream["bit_rate"]) - 64_000) <= 8_000


@needs_tools
def test_clips_decode_through_datasets_audio_at_16k(tiny):
    from datasets import Audio, Dataset

    rows = read_tsv(tiny / "test.tsv")[:4]
    durs = durations(tiny)
    ds = Dataset.from_dict({"audio": [str(tiny / "clips" / r["path"]) for r in rows]})
    ds = ds.cast_column("audio", Audio(sampling_rate=16_000))
    for i, row in enumerate(rows):
        item = ds[i]["audio"]
        if isinstance(item, dict):  # datasets < 4
            array, rate = item["array"], item["sampling_rate"]
            n = len(array)
        else:  # datasets >= 4: a torchcodec AudioDecoder
            samples = item.get_all_samples()
            rate, n = samples.sample_rate, samples.data.shape[-1]
            assert samples.data.shape[0] == 1
            assert float(samples.data.abs().max()) > 0.01  # not silence
        assert rate == 16_000
        assert abs(n / rate * 1000 - durs[row["path"]]) <= 50


# --- speakers and sentences -----------------------------------------------------------------------------
@needs_tools
def test_speakers_are_disjoint_across_splits(tiny):
    spk = {s: {r["client_id"] for r in read_tsv(tiny / f"{s}.tsv")} for s in ("train", "dev", "test")}
    assert len(spk["train"]) == SIZES["tiny"]["speakers"][0]
    assert len(spk["dev"]) >= 2 and len(spk["test"]) >= 2
    assert not spk["train"] & spk["dev"] and not spk["train"] & spk["test"] and not spk["dev"] & spk["test"]
    extra = {r["client_id"] for s in ("other", "invalidated") for r in read_tsv(tiny / f"{s}.tsv")}
    assert not extra & (spk["train"] | spk["dev"] | spk["test"])
    # the extra validated rows are read by train speakers (re-recordings, as in real Common Voice)
    in_splits = {r["path"] for s in ("train", "dev", "test") for r in read_tsv(tiny / f"{s}.tsv")}
    extras = [r for r in read_tsv(tiny / "validated.tsv") if r["path"] not in in_splits]
    assert extras and all(r["client_id"] in spk["train"] for r in extras)
    split_sentences = {r["sentence"] for s in ("train", "dev", "test") for r in read_tsv(tiny / f"{s}.tsv")}
    assert all(r["sentence"] in split_sentences for r in extras)


def _words_only(sentence: str) -> str:
    return " ".join(re.findall(r"\w+", sentence.replace("I", "ı").replace("İ", "i").lower()))


@needs_tools
def test_sentences_are_disjoint_across_splits(tiny):
    sent = {s: [r["sentence"] for r in read_tsv(tiny / f"{s}.tsv")] for s in ("train", "dev", "test")}
    for s, lst in sent.items():
        assert len(set(lst)) == len(lst), s  # one recording per sentence inside the splits
    assert not set(sent["test"]) & set(sent["train"])
    assert not set(sent["dev"]) & set(sent["train"]) and not set(sent["dev"]) & set(sent["test"])
    # also after normalization (case and punctuation removed), so a leakage guard finds none either
    norm = {s: {_words_only(x) for x in lst} for s, lst in sent.items()}
    assert not norm["test"] & norm["train"] and not norm["dev"] & norm["train"]


@needs_tools
def test_turkish_text_gives_normalization_work(tiny):
    sentences = [r["sentence"] for name in CLIP_TSVS for r in read_tsv(tiny / f"{name}.tsv")]
    assert any(s.startswith('"') for s in sentences), "some sentences must start with a straight quote"
    assert any("İ" in s for s in sentences) and any("I" in s for s in sentences)
    assert any("'" in s or "’" in s for s in sentences)
    assert any(ch in s for s in sentences for ch in "?!")
    # the same file read with csv's default quoting merges or mangles rows: that is why QUOTE_NONE
    with open(tiny / "validated.tsv", encoding="utf-8", newline="") as f:
        default = [r["sentence"] for r in csv.DictReader(f, delimiter="\t")]
    assert default != [r["sentence"] for r in read_tsv(tiny / "validated.tsv")]


def test_sentence_generator_statistics():
    """Over many sentences: closed vocabulary, 2-5 words, every kind of normalization work, rare digits."""
    spec = resolve("tr")
    maker = SentenceMaker(spec, random.Random(0))
    pairs = [maker.new() for _ in range(3000)]
    texts = [t for t, _ in pairs]
    assert len(set(texts)) == len(texts)
    n_digits = sum(any(c.isdigit() for c in t) for t in texts)
    assert 0.01 * len(texts) < n_digits < 0.06 * len(texts)
    n_quote = sum(t.startswith('"') for t in texts)
    assert 0.05 * len(texts) < n_quote < 0.2 * len(texts)
    for ch in ".,!?:;'’-“”İI":
        assert any(ch in t for t in texts), ch
    vocab = set()
    for t, say in pairs:
        words = _words_only(t).split()
        assert 2 <= len(words) <= 7  # 2-5 words (+ "dedi"; an apostrophe splits one word in two)
        vocab.update(words)
        assert '"' not in say and "“" not in say  # espeak-ng reads words, not quotes
    assert len(vocab) <= 50, sorted(vocab)


# --- determinism and cache ------------------------------------------------------------------------------
@needs_tools
def test_same_seed_gives_identical_tsvs(tiny, tmp_path):
    again = make_corpus("tr", "tiny", seed=0, root=tmp_path, progress=False)
    assert again != tiny
    assert tsv_bytes(again) == tsv_bytes(tiny)


@needs_tools
def test_other_seed_gives_other_corpus(micro_size, tmp_path):
    a = make_corpus("tr", micro_size, seed=0, root=tmp_path, progress=False)
    b = make_corpus("tr", micro_size, seed=1, root=tmp_path, progress=False)
    assert a.parent.parent.name == "micro-seed0" and b.parent.parent.name == "micro-seed1"
    ta, tb = read_tsv(a / "train.tsv"), read_tsv(b / "train.tsv")
    assert {r["sentence"] for r in ta} != {r["sentence"] for r in tb}
    assert {r["client_id"] for r in ta} != {r["client_id"] for r in tb}


@needs_tools
def test_second_call_is_cached(tiny):
    stamp = (tiny / "train.tsv").stat().st_mtime_ns
    t0 = time.perf_counter()
    again = make_corpus("tr", "tiny", seed=0, root=tiny.parents[2], progress=False)
    assert time.perf_counter() - t0 < 1.0
    assert again == tiny and (tiny / "train.tsv").stat().st_mtime_ns == stamp
    record = json.loads((tiny / MARKER).read_text(encoding="utf-8"))
    assert record["size"] == "tiny" and record["seed"] == 0 and record["locale"] == "tr"


@needs_tools
def test_interrupted_build_is_redone(micro_size, tmp_path):
    folder = make_corpus("tr", micro_size, seed=0, root=tmp_path, progress=False)
    good = tsv_bytes(folder)
    # an unfinished corpus: no marker, a truncated TSV, a missing clip
    (folder / MARKER).unlink()
    (folder / "train.tsv").write_text("client_id\tpath\n", encoding="utf-8")
    next((folder / "clips").iterdir()).unlink()
    # and the temporary folder of a build whose process is gone
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text()) if Path("/proc/sys/kernel/pid_max").exists() else 2**22
    stale = folder.parent / f".tr.tmp-{pid_max + 1}-1"
    stale.mkdir()
    again = make_corpus("tr", micro_size, seed=0, root=tmp_path, progress=False)
    assert again == folder and (folder / MARKER).is_file()
    assert tsv_bytes(folder) == good
    assert {p.name for p in (folder / "clips").iterdir()} == set(durations(folder))
    assert not stale.exists()
    assert not list(folder.parent.glob(".tr.tmp-*"))


@needs_tools
def test_ffmpeg_encoder_gives_the_same_corpus(micro_size, tmp_path):
    a = make_corpus("tr", micro_size, seed=3, root=tmp_path / "a", progress=False, encoder="torchcodec")
    b = make_corpus("tr", micro_size, seed=3, root=tmp_path / "b", progress=False, encoder="ffmpeg")
    assert tsv_bytes(a) == tsv_bytes(b)
    for clip, ms in durations(b).items():
        seconds, rate, channels = decoded_seconds(b / "clips" / clip)
        assert rate == 48_000 and channels == 1 and abs(seconds * 1000 - ms) <= 50


# --- languages ------------------------------------------------------------------------------------------
def test_unknown_language_lists_the_available_ones(tmp_path):
    with pytest.raises(ValueError) as err:
        make_corpus("xx-notalanguage", "tiny", root=tmp_path)
    msg = str(err.value)
    assert "xx-notalanguage" in msg
    for lang in ("tr", "de", "fr", "es", "it", "ru", "ar", "zh-CN", "hi"):
        assert lang in msg
    assert not any(tmp_path.iterdir())  # nothing written


def test_unknown_size_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="tiny"):
        make_corpus("tr", "huge", root=tmp_path)


def test_available_languages():
    langs = synthetic.available_languages()
    for lang in ("tr", "de", "fr", "es", "it", "ru", "ar", "zh-CN", "hi"):
        assert lang in langs
    assert set(synthetic.BUNDLED_LANGUAGES) == {"tr", "de", "fr", "es", "it", "ru", "ar", "zh-CN", "hi"}
    if shutil.which("espeak-ng"):
        assert {"en", "sv-SE", "uk", "ja"} <= set(langs)
    assert synthetic.language_info("zh-cn")["locale"] == "zh-CN"
    assert synthetic.language_info("zh-CN")["voice"] == "cmn-latn-pinyin"  # cmn reads most hanzi as English


def test_default_root_follows_xlsr_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XLSR_CACHE", str(tmp_path))
    assert synthetic.corpus_dir("tr", "demo", seed=7) == tmp_path / "synthetic" / "demo-seed7" / "cv-synthetic" / "tr"
    monkeypatch.delenv("XLSR_CACHE")
    assert synthetic.default_root() == Path.home() / ".cache" / "xlsr-curriculum" / "synthetic"


def test_every_chinese_word_has_its_pinyin():
    spec = resolve("zh-CN")
    for w in spec.words + spec.specials + spec.numbers:
        assert re.fullmatch(r"([a-z]+[1-5])+", spec.say.get(w, "")), w
    maker = SentenceMaker(spec, random.Random(0))
    for _ in range(300):
        _, say = maker.new()
        assert not re.search(r"[\u4e00-\u9fff]", say), say  # espeak-ng gets pinyin only


def test_bundled_vocabularies_are_closed_and_small():
    for lang in synthetic.BUNDLED_LANGUAGES:
        info = synthetic.language_info(lang)
        assert 28 <= len(info["words"]) <= 35, lang
        assert len(set(info["words"])) == len(info["words"]), lang
        assert 3 <= len(info["specials"]) <= 8, lang


@needs_tools
def test_bundled_voices_exist_in_espeak_ng():
    installed = set(espeak_languages())
    for lang in synthetic.BUNDLED_LANGUAGES:
        assert synthetic.language_info(lang)["voice"] in installed, lang


def test_missing_espeak_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng ffmpeg"):
        make_corpus("tr", "tiny", root=tmp_path, progress=False)


@needs_tools
def test_german_and_chinese_corpora(micro_size, tmp_path):
    de = make_corpus("de", micro_size, root=tmp_path, progress=False)
    zh = make_corpus("zh-CN", micro_size, root=tmp_path, progress=False)
    assert de.name == "de" and zh.name == "zh-CN"
    for folder, locale in ((de, "de"), (zh, "zh-CN")):
        for name in CLIP_TSVS:
            assert (folder / f"{name}.tsv").read_text(encoding="utf-8").split("\n", 1)[0] == CV17_HEADER
        rows = read_tsv(folder / "validated.tsv")
        assert all(re.fullmatch(rf"common_voice_{re.escape(locale)}_\d+\.mp3", r["path"]) for r in rows)
        assert all(r["locale"] == locale for r in rows)
        for clip, ms in durations(folder).items():
            seconds, rate, channels = decoded_seconds(folder / "clips" / clip)
            assert rate == 48_000 and channels == 1 and abs(seconds * 1000 - ms) <= 50
    de_text = " ".join(r["sentence"] for r in read_tsv(de / "validated.tsv"))
    assert re.search(r"[A-ZÄÖÜ][a-zäöüß]+", de_text)
    zh_sentences = [r["sentence"] for name in CLIP_TSVS for r in read_tsv(zh / f"{name}.tsv")]
    assert all(re.search(r"[\u4e00-\u9fff]", s) for s in zh_sentences)
    assert not any(" " in s for s in zh_sentences)  # no spaces between hanzi
    assert not any(re.search(r"[A-Za-z]", s) for s in zh_sentences)  # pinyin is only spoken, never written


def test_chinese_and_hindi_punctuation():
    for lang, marks in (("zh-CN", "，。！？"), ("hi", "।")):
        maker = SentenceMaker(resolve(lang), random.Random(1))
        texts = [maker.new()[0] for _ in range(500)]
        for mark in marks:
            assert any(mark in t for t in texts), (lang, mark)
    maker = SentenceMaker(resolve("zh-CN"), random.Random(2))
    texts = [maker.new()[0] for _ in range(500)]
    assert any("「" in t for t in texts) and any(t.startswith('"') for t in texts)


@needs_tools
def test_fallback_language_uses_pseudo_words_in_its_script(micro_size, tmp_path):
    folder = make_corpus("uk", micro_size, root=tmp_path, progress=False)
    rows = read_tsv(folder / "train.tsv")
    assert all(r["locale"] == "uk" for r in rows)
    assert all(re.search(r"[а-яА-Я]", r["sentence"]) for r in rows)  # Cyrillic, as Ukrainian is written
    assert not any(re.search(r"[A-Za-z]", r["sentence"]) for r in rows)
    info = synthetic.language_info("uk")
    assert not info["bundled"] and len(info["words"]) == 30
    durs = durations(folder)
    seconds, rate, _ = decoded_seconds(folder / "clips" / rows[0]["path"])
    assert rate == 48_000 and abs(seconds * 1000 - durs[rows[0]["path"]]) <= 50


@needs_tools
def test_tiny_builds_quickly(tiny):
    # the fixture built it; on 2 cores this takes seconds (it must stay well under 30 s)
    assert BUILD_TIMES.get("tiny", 0.0) < 60.0
