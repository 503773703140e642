"""Step 02 (xlsr_helpers.normalize): language profiles, Unicode, the seed's regex, the saved normalizer, the step."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest

from xlsr_helpers.config import Config
from xlsr_helpers.normalize import (
    PROFILES,
    SEED_CHARS,
    Normalizer,
    load_normalizer,
    profile_for,
    removed_table,
    run_normalize,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "cv-samples"
CV61 = SHARED / "huggingface_datasets_common_voice_dummy" / "cv-corpus-6.1-2020-12-11"
needs_samples = pytest.mark.skipif(not SHARED.exists(), reason="../shared/cv-samples is absent (real CV rows)")


# --------------------------------------------------------------------------------------------------
# the function
# --------------------------------------------------------------------------------------------------
def test_turkish_casing_has_no_combining_dot():
    normalize = Normalizer("tr")
    assert normalize("İSTANBUL'a IĞDIR ılık İyi") == "istanbula ığdır ılık iyi"
    assert "\u0307" not in normalize("İİİ İnsan")
    assert Normalizer("az")("İLHAM") == "ilham"
    # the seed's plain lower() produced the spurious U+0307 this guards against
    assert "\u0307" in Normalizer("tr", mode="seed_regex")("İyi")


def test_nfd_input_gives_the_same_characters_as_nfc():
    for language, text in [("de", "Müller über Größe"), ("tr", "Şişli'de Çağrı"), ("vi", "Tiếng Việt"),
                           ("fr", "Noël à l'école")]:
        normalize = Normalizer(language)
        nfd = unicodedata.normalize("NFD", text)
        assert nfd != text
        assert normalize(nfd) == normalize(text)
        assert unicodedata.is_normalized("NFC", normalize(nfd))


def test_non_turkish_languages_lose_the_dot_of_capital_i_with_dot():
    assert Normalizer("de")("İstanbul") == "istanbul"


def test_golden_rule_apostrophes_and_hyphens():
    en = Normalizer("en")
    assert en("It's its own way") == "it's its own way"  # it's != its: the apostrophe stays
    assert en("‘Quoted’ words' end") == "quoted words end"  # quotes around words go
    assert en("rock’n’roll") == "rock'n'roll"  # typographic apostrophe unified
    assert Normalizer("fr")("L’eau, c’est « bon » !") == "l'eau c'est bon"
    assert Normalizer("uk")("М’ясо") == "мʼясо"  # unified to the apostrophe of the Ukrainian alphabet (CLDR: ʼ)
    assert Normalizer("tr")("Hasan'ın kitabı") == "hasanın kitabı"
    assert Normalizer("de")("Fine-Tuning geht's") == "finetuning gehts"  # hyphens join
    assert Normalizer("de")("Er kam – und ging.") == "er kam und ging"  # a dash between words goes


def test_punctuation_and_symbols_go_by_unicode_category():
    normalize = Normalizer("es")
    # none of these is in the seed's hand list
    assert normalize("¿Qué? ¡Sí! «hola» (uno) [dos] {tres} 5% 3€ ©😀 a/b a&b") == "qué sí hola uno dos tres 5 3 ab ab"
    hi = Normalizer("hi")
    assert hi("नमस्ते | दुनिया।") == "नमस्ते दुनिया"  # danda and its "|" look-alike
    assert hi("क़लम") == unicodedata.normalize("NFC", "क़लम")  # nukta (a combining mark) stays
    assert Normalizer("default")("a\u00adb\u200bc\ufeffd\u200ee") == "abcde"  # soft hyphen, zero width, BOM, LRM


def test_arabic_and_persian_profiles():
    assert Normalizer("ar")("الكَلامُ فضة ، لكن الصمت ذهب.") == "الكلام فضة لكن الصمت ذهب"
    assert Normalizer("fa")("مي\u200cخواهم كتاب") == "می\u200cخواهم کتاب"  # ZWNJ kept, Arabic yeh/kaf mapped


def test_character_based_languages_drop_spaces_between_characters():
    zh = Normalizer("zh-CN")
    assert zh("在相对论中，快度通常被用来衡量相对论效应下的速度。") == "在相对论中快度通常被用来衡量相对论效应下的速度"
    assert zh("塞亚克可能指：") == "塞亚克可能指"
    assert zh("我用 iPhone 手机 打电话") == "我用iphone手机打电话"
    assert zh("Hello World 你好") == "hello world你好"  # spaces between two Latin words stay
    assert zh("ＡＢＣ１２３") == "abc123"  # NFKC: full-width Latin letters and digits
    assert Normalizer("ja")("「こんにちは」、世界！ ｶﾀｶﾅ") == "こんにちは世界カタカナ"
    assert Normalizer("th")("สวัสดี ครับ") == "สวัสดีครับ"
    assert profile_for("zh-TW")[1].char_based and profile_for("yue")[1].char_based


def test_profiles_are_data_and_unknown_locales_get_the_default():
    assert profile_for("pt-BR") == ("default", PROFILES["default"])
    assert profile_for("rm-sursilv")[1].apostrophe == "keep"
    assert profile_for("ga-IE")[1].apostrophe == "keep"
    assert all(p.casing in ("lower", "turkic", "none") for p in PROFILES.values())


def test_chars_to_ignore_and_keep_chars():
    assert Normalizer("de", keep_chars="-")("Fine-Tuning") == "fine-tuning"
    assert Normalizer("tr", chars_to_ignore="ş")("Şişli") == "ili"
    assert Normalizer("tr", chars_to_ignore="« »")("«a»") == "a"
    with pytest.raises(ValueError, match="both"):
        Normalizer("tr", chars_to_ignore="-", keep_chars="-")
    with pytest.raises(ValueError, match="NORMALIZER"):
        Normalizer("tr", mode="regex")


def test_seed_regex_is_reproduced_exactly():
    seed = re.compile(r'[\,\?\.\!\-\;\:\"\“\%\‘\”\�]')
    sentences = ["İstanbul'a gidiyoruz!", "Hayır, değil: 5% “evet”…", "a - b ; c", "  çift  boşluk ", "Don’t"]
    normalize = Normalizer("tr", mode="seed_regex")
    for sentence in sentences:
        assert normalize(sentence) == seed.sub("", sentence).lower()
    assert set(SEED_CHARS) == set(",?.!-;:\"“%‘”�")
    assert Normalizer("tr", mode="seed_regex", chars_to_ignore="’")("Don’t") == "dont"
    assert Normalizer("tr", mode="seed_regex", keep_chars="-")("a-b") == "a-b"


def test_normalizing_twice_changes_nothing():
    """Evaluation may normalize a prediction (already normalized text) again: it must stay as it is."""
    cases = [("hi", "|", "नमस्ते | दुनिया।"), ("en", "", "It's ‘rock’n’roll’!"), ("tr", "", "İSTANBUL'a IĞDIR"),
             ("zh-CN", "", "我用 iPhone 手机，打电话。"), ("fa", "", "مي‌خواهم كتاب"), ("de", "-", "Fine-Tuning – jetzt")]
    for language, keep, text in cases:
        normalize = Normalizer(language, keep_chars=keep)
        once = normalize(text)
        assert normalize(once) == once, (language, text, once)
    seed = Normalizer("tr", mode="seed_regex")
    assert seed(seed("A | B, c!")) == seed("A | B, c!") == "a ¦ b c"


def test_explain_says_what_happens_to_a_character():
    tr = Normalizer("tr")
    assert tr.explain("I") == "mapped to 'ı'"
    assert tr.explain(".").startswith("removed (punctuation")
    assert tr.explain("ş") == "kept"
    assert Normalizer("en").explain("'").startswith("kept inside words")
    assert Normalizer("de", keep_chars="-").explain("-") == "kept (KEEP_CHARS)"


@needs_samples
def test_real_common_voice_sentences_of_60_locales_normalize_cleanly():
    checked = 0
    for folder in sorted(p for p in CV61.iterdir() if p.is_dir()):
        normalize = Normalizer(folder.name)
        for tsv in folder.glob("*.tsv"):
            lines = tsv.read_text(encoding="utf-8").splitlines()
            column = lines[0].split("\t").index("sentence")
            for line in lines[1:]:
                sentence = line.split("\t")[column]
                out = normalize(sentence)
                checked += 1
                assert normalize(out) == out, (folder.name, sentence, out)  # idempotent
                assert out == out.strip() and "  " not in out, (folder.name, sentence, out)
                assert unicodedata.is_normalized(normalize.profile.form, out)
                assert "i\u0307" not in out
                for ch in out:
                    cat = unicodedata.category(ch)
                    allowed = ch in "' \u200c" or cat[0] in "LMN"
                    assert allowed, (folder.name, sentence, out, ch, cat)
                    if ch == "'":
                        assert normalize.profile.apostrophe == "keep"
                if normalize.profile.char_based:
                    assert " " not in out.strip() or all(c.isascii() for c in out.replace(" ", "")[:1])
    assert checked > 400


# --------------------------------------------------------------------------------------------------
# saved normalizer
# --------------------------------------------------------------------------------------------------
def test_normalizer_json_round_trip_and_load_normalizer_paths(tmp_path, monkeypatch):
    original = Normalizer("tr", chars_to_ignore="«»", keep_chars="-")
    path = original.save(tmp_path / "run" / "02_normalize")
    assert path.name == "normalizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["profile"]["casing"] == "turkic" and data["chars_to_ignore"] == "«»"
    samples = ["İSTANBUL «güzel» fine-tuning!", "Hasan'ın", "IĞDIR"]
    # a later change of the profile table must not change a saved run
    monkeypatch.setitem(PROFILES, "tr", PROFILES["default"])
    for where in (tmp_path / "run", tmp_path / "run" / "02_normalize", path):
        loaded = load_normalizer(where)
        assert [loaded(s) for s in samples] == [original(s) for s in samples]
    assert Normalizer("tr")("IĞDIR") == "iğdir"  # the patched table, for contrast
    with pytest.raises(FileNotFoundError, match="02_normalize"):
        load_normalizer(tmp_path / "elsewhere")


def test_seed_mode_survives_the_json(tmp_path):
    Normalizer("tr", mode="seed_regex", chars_to_ignore="’").save(tmp_path)
    loaded = load_normalizer(tmp_path)
    assert loaded.mode == "seed_regex" and loaded("Don’t!") == "dont"


# --------------------------------------------------------------------------------------------------
# the step
# --------------------------------------------------------------------------------------------------
def _save_step1(run_dir: Path, splits: dict[str, list[str]]) -> None:
    """A 01_load/dataset as the loader writes it (the audio is never decoded by step 02)."""
    from datasets import Audio, Dataset, DatasetDict, Features, Value

    import numpy as np
    import soundfile

    clip = run_dir.parent / "clip.wav"  # save_to_disk needs the files to exist (it sums their sizes)
    soundfile.write(str(clip), np.zeros(1600, dtype="float32"), 16000)
    features = Features({"id": Value("string"), "audio": Audio(sampling_rate=16000), "sentence": Value("string"),
                         "speaker": Value("string"), "duration": Value("float64"), "source": Value("string")})
    data = {}
    for split, sentences in splits.items():
        n = len(sentences)
        data[split] = Dataset.from_dict({
            "id": [f"{split}_{i}.mp3" for i in range(n)], "audio": [{"path": str(clip), "bytes": None}] * n,
            "sentence": sentences, "speaker": ["s"] * n, "duration": [1.0] * n, "source": ["test"] * n,
        }, features=features)
    DatasetDict(data).save_to_disk(str(run_dir / "01_load" / "dataset"))


def test_run_normalize_reports_inventory_removed_emptied_and_leakage(tmp_path):
    run_dir = tmp_path / "run"
    nfd = unicodedata.normalize("NFD", "Şişli'de güzel")
    _save_step1(run_dir, {
        "train": ["İstanbul'a gidiyoruz!", "...", nfd, "Merhaba, dünya!", "— «» —", "Yarın 3 kitap"],
        "eval": ["Bugün hava güzel mi?"],
        "test": ["merhaba dünya"],
    })
    result = run_normalize(Config(language="tr", run_dir=str(run_dir)))
    ds = result.dataset
    assert ds["train"]["sentence"] == ["istanbula gidiyoruz", "şişlide güzel", "yarın 3 kitap"]
    assert ds["train"]["raw_sentence"][0] == "İstanbul'a gidiyoruz!"
    assert ds["train"].column_names == ["id", "audio", "sentence", "raw_sentence", "speaker", "duration", "source"]
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    assert report["splits"]["train"]["emptied"] == 2 and report["emptied_total"] == 2
    # dropped rows are named by their clip and the sentence as written
    assert {"split": "train", "clip": "train_1.mp3", "sentence": "..."} in report["emptied_examples"]
    assert report["leak_removed_after_normalization"] == 1  # "Merhaba, dünya!" is the test sentence
    assert report["leak_removed_examples"] == [{"split": "train", "clip": "train_3.mp3", "sentence": "Merhaba, dünya!"}]
    inventory = report["inventory"]
    removed = {e["char"]: e for e in inventory["removed"]}
    assert removed["!"]["count"] == 2 and removed["!"]["example"] == "İstanbul'a gidiyoruz!"
    assert {"'", ".", ",", "?", "«", "»", "—"} <= set(removed)
    assert "\u0307" not in inventory["after"] and "İ" in inventory["before"]
    assert "\u0327" in inventory["before"] and "\u0327" not in inventory["after"]  # NFD cedilla composed
    assert [d["char"] for d in inventory["digits"]] == ["3"] and inventory["sentences_with_digits"] == 1
    assert (run_dir / "02_normalize" / "normalizer.json").is_file()
    assert load_normalizer(run_dir)("İ") == "i"
    assert set(removed_table(report)["char"]) == set(removed)


def test_run_normalize_needs_step_01(tmp_path):
    with pytest.raises(FileNotFoundError, match="01_load"):
        run_normalize(Config(run_dir=str(tmp_path)))



# --------------------------------------------------------------------------------------------------
# NORMALIZER="omnilingual" and "auto": the text as Omnilingual ASR was trained on it
# --------------------------------------------------------------------------------------------------
def test_omnilingual_writes_text_as_omnilingual_asr_was_trained_on(tmp_path):
    """Their text_normalize (workflows/dataprep/text_tools.py): NFKC, lower case, bracketed numbers dropped, curly
    apostrophes inside words -> ', punctuation -> space (but ' - and #), tashkeel removed, digit-only words dropped."""
    normalize = Normalizer("tr", mode="omnilingual")
    assert normalize("Merhaba, DÜNYA! 3 kedi (Sam 23:17) var.") == "merhaba dünya kedi var"
    assert normalize("l’eau — c'est «bon» #1 mp3 ｆｕｌｌ") == "l'eau — c'est bon #1 mp3 full"
    assert normalize("ٱلسَّلَامُ، عليكم؟") == "السلام عليكم"
    assert normalize("a|b x_y 50% 中文。測試") == "a b x y 中文 測試"  # "50%" -> "50 ", a digit-only word
    assert normalize("Istanbul") == "istanbul"  # str.lower, as theirs: no Turkish dotless ı
    assert normalize(normalize("Çok GÜZEL, 12 kere!")) == normalize("Çok GÜZEL, 12 kere!") == "çok güzel kere"
    assert Normalizer.from_dict(normalize.to_dict())("A, b 1") == "a b"
    assert "punctuation list" in normalize.explain(",") and normalize.explain("-") == "kept"
    assert Normalizer("tr", mode="omnilingual", chars_to_ignore="'")("c'est") == "cest"
    with pytest.raises(ValueError, match="KEEP_CHARS does not apply"):
        Normalizer("tr", mode="omnilingual", keep_chars=",")


def test_auto_normalizer_follows_an_omnilingual_model_and_is_the_profile_otherwise(tmp_path):
    from xlsr_helpers.normalize import choose_mode

    omni = tmp_path / "omni"
    omni.mkdir()
    (omni / "config.json").write_text(json.dumps({"model_type": "omniasr_ctc", "architectures": ["OmniASRForCTC"]}))
    other = tmp_path / "xlsr"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "wav2vec2"}))
    mode, why = choose_mode(Config(model=str(omni)))
    assert mode == "omnilingual" and "model_type='omniasr_ctc'" in why
    assert choose_mode(Config(model=str(other)))[0] == choose_mode(Config(model="tiny"))[0] == "profile"
    assert choose_mode(Config(model="hf-audio/omniasr-ctc-1b-v2"))[0] == "omnilingual"  # by name, not cached
    assert choose_mode(Config(model=str(omni), normalizer="profile")) == ("profile", "NORMALIZER='profile'")
    assert Normalizer.from_config(Config(model=str(omni), language="tr")).mode == "omnilingual"
