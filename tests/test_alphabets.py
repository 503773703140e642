"""Alphabets from Unicode CLDR (xlsr_helpers.alphabets, data/make_alphabets.py) and how step 02 uses them."""

from __future__ import annotations

import json
import unicodedata

import pytest

from xlsr_helpers.alphabets import DATA_FILE, alphabet_for, available_locales, cldr_locale
from xlsr_helpers.data.make_alphabets import PLAIN_LOCALE, parse_unicode_set
from xlsr_helpers.normalize import APOSTROPHE, FORMAT_VERSION, Normalizer, alphabet_report, load_normalizer


# --------------------------------------------------------------------------------------------------
# the generator's UnicodeSet parser
# --------------------------------------------------------------------------------------------------
def test_parser_reads_clusters_escapes_and_ranges():
    assert parse_unicode_set("[a b {cʼh} {ch} eê]") == ["a", "b", "cʼh", "ch", "e", "ê"]
    assert parse_unicode_set(r"[\- ‐‑ \: \[ \] \\ \{ \&]") == ["-", "‐", "‑", ":", "[", "]", "\\", "{", "&"]
    assert parse_unicode_set(r"[ـ\u200C\u200D \U0001F600 \x{1E14F}]") == ["ـ", "\u200c", "\u200d", "😀", "\U0001e14f"]
    assert parse_unicode_set(r"[{а\u0301} {i̇̀}ì]") == ["а\u0301", "i\u0307\u0300", "ì"]
    assert parse_unicode_set("[a-d x]") == ["a", "b", "c", "d", "x"]
    assert parse_unicode_set("[a - b]") == ["a", "-", "b"]  # a hyphen between spaces is a character
    assert parse_unicode_set("[aa b a]") == ["a", "b"]  # each item once
    assert parse_unicode_set("[]") == []


@pytest.mark.parametrize("text", ["a b", "[[:Latin:]]", "[a {bc]", "[a-\\u0041]", "[^a]"])
def test_parser_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError):
        parse_unicode_set(text)


def test_data_file_names_source_version_license_and_plain_locales():
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    assert data["cldr_version"] == "48" and data["license"] == "Unicode-3.0"
    assert "Copyright © 2004-2026 Unicode, Inc." in data["license_text"]
    assert "permission notice appear" in data["license_text"]
    locales = data["locales"]
    assert len(locales) > 300
    assert all(PLAIN_LOCALE.match(locale) for locale in locales)  # no regional locale (fr-CA, pt-PT)
    assert {"sr-Latn", "uz-Cyrl", "zh-Hant", "ca", "uk"} <= set(locales)
    assert "sr-Cyrl" not in locales  # the same letters as sr: not stored twice
    assert "l·l" not in locales["ca"]["main"].split() and "·" in locales["ca"]["main"].split()
    assert "cʼh" in locales["br"]["main"].split()


# --------------------------------------------------------------------------------------------------
# Common Voice locale -> CLDR locale
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("common_voice, cldr", [
    ("sv-SE", "sv"), ("fy-NL", "fy"), ("ga-IE", "ga"), ("pa-IN", "pa"), ("hy-AM", "hy"), ("nn-NO", "nn"),
    ("ne-NP", "ne"), ("zh-CN", "zh"), ("zh-TW", "zh-Hant"), ("zh-HK", "yue"), ("yue", "yue"),
    ("rm-sursilv", "rm"), ("rm-vallader", "rm"), ("cv", "cv"), ("sah", "sah"), ("kmr", "ku"), ("uk", "uk"),
    ("sr-Latn", "sr-Latn"), ("uz_Cyrl", "uz-Cyrl"), ("nan-tw", None), ("vot", None), ("default", None),
])
def test_common_voice_locales_map_to_cldr(common_voice, cldr):
    assert cldr_locale(common_voice) == cldr
    alphabet = alphabet_for(common_voice)
    assert (alphabet.locale if alphabet else None) == cldr


def test_an_alphabet_tells_main_from_auxiliary_letters():
    english = alphabet_for("en")
    assert english.main == tuple("abcdefghijklmnopqrstuvwxyz")
    assert "é" in english.auxiliary and "é" not in english.main
    breton = alphabet_for("br")
    assert "cʼh" in breton.main and {"c", "ʼ", "h"} <= breton.characters()


# --------------------------------------------------------------------------------------------------
# normalization: the alphabet decides what is a letter
# --------------------------------------------------------------------------------------------------
def test_every_letter_of_every_alphabet_survives_normalization():
    """For every CLDR locale: each main and auxiliary item, inside a word of a sentence, is still there
    after normalization, as steps 1-5 (Unicode form, case, mappings) write it. Not kept, by design: what
    the profile removes (Arabic tashkeel, tatweel) and invisible format characters (ZWNJ, LRM)."""
    failures = []
    for locale in available_locales():
        normalize = Normalizer(locale)
        alphabet = alphabet_for(locale)
        assert alphabet.locale == locale
        apostrophe = normalize.alphabet.apostrophe or APOSTROPHE
        letters = set(normalize.alphabet.new_letters)  # letters newer than this Python's Unicode database
        letter = next(item for item in alphabet.main
                      if all(unicodedata.category(c)[0] == "L" or c in letters for c in item))
        around = normalize.transform(letter)
        for item in alphabet.items:
            word = normalize.transform(f"{letter}{item}{letter}")
            dropped = set(normalize.profile.remove) | {
                c for c in word if unicodedata.category(c) == "Cf" and c not in normalize.profile.keep}
            expected = " ".join([around, "".join(c for c in word if c not in dropped), around])
            out = normalize(f"{letter} {letter}{item}{letter}, {letter}.")
            expected = expected.replace(APOSTROPHE, apostrophe)
            if normalize.profile.char_based:
                out, expected = out.replace(" ", ""), expected.replace(" ", "")
            if out != expected:
                failures.append((locale, item, out, expected))
    assert not failures, f"{len(failures)} letters lost, e.g. {failures[:5]}"


def test_letters_that_unicode_calls_punctuation_stay():
    assert Normalizer("ca")("La col·lecció, l’Ana · i jo.") == "la col·lecció l'ana i jo"  # a lone · goes
    assert Normalizer("uk")("«М'ясо» і м’ясо, мʼясо") == "мʼясо і мʼясо мʼясо"  # one apostrophe: the alphabet's
    assert Normalizer("ha")("ʼYaʼya da 'ya'ya") == "ʼyaʼya da yaʼya"  # the profile removed apostrophes before
    assert Normalizer("br")("C'hoant ha cʼhoari") == "cʼhoant ha cʼhoari"
    assert Normalizer("uz")("Togʻ, bog' va o‘zbek 'salom'") == "tog' bog' va o'zbek salom"  # gʻ ends a word
    assert Normalizer("en")("'It's' mine") == "it's mine"  # no apostrophe in the alphabet: the profile's rule
    assert Normalizer("nv")("Ch’ah ’éí ch' ") == "ch’ah éí ch’"  # ’ is the letter; it closes the cluster ch’
    assert Normalizer("tig")("ቃል፡ቃል።") == "ቃል፡ቃል"  # CLDR's Tigre letters list Ethiopic punctuation: inside words only


def test_profiles_stay_more_specific_than_the_alphabet():
    assert Normalizer("tr")("İSTANBUL'a") == "istanbula"  # Turkic casing; Turkish apostrophe removed
    assert Normalizer("ar")("الكَلامُ") == "الكلام"  # tashkeel is in CLDR's Arabic alphabet, the profile removes it
    assert Normalizer("fa")("مي\u200cخواهم") == "می\u200cخواهم"
    assert Normalizer("zh-CN")("我用 iPhone 手机。") == "我用iphone手机"


def test_seed_regex_and_languages_without_an_alphabet_normalize_as_before():
    seed = Normalizer("ca", mode="seed_regex")
    assert seed.alphabet is None and seed("Col·lecció, l’Ana!") == "col·lecció l’ana"
    vot = Normalizer("vot")  # Votic: no CLDR data
    assert vot.alphabet is None and vot("Ka·ik, ʼa") == "kaik a"


def test_explain_names_the_alphabet():
    assert Normalizer("ca").explain("·").startswith("kept inside words, removed elsewhere")
    assert Normalizer("uk").explain("’").startswith("mapped to 'ʼ' inside words")
    assert Normalizer("uz").explain("'").startswith("kept inside words and at the end of a word after g o")


def test_saved_normalizer_keeps_its_alphabet_rules_and_old_files_behave_as_before(tmp_path):
    path = Normalizer("ca").save(tmp_path / "new")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == FORMAT_VERSION and data["alphabet"]["word_marks"] == "·"
    assert load_normalizer(path)("col·lecció") == "col·lecció"
    data.pop("alphabet")
    data["version"] = 1  # written before there were alphabets: the punctuation rule removed the dot
    (tmp_path / "old.json").write_text(json.dumps(data), encoding="utf-8")
    assert load_normalizer(tmp_path / "old.json")("col·lecció") == "collecció"
    data["version"] = FORMAT_VERSION + 1
    (tmp_path / "newer.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="newer"):
        load_normalizer(tmp_path / "newer.json")


# --------------------------------------------------------------------------------------------------
# the step's report
# --------------------------------------------------------------------------------------------------
def test_report_counts_characters_outside_the_alphabet_with_examples():
    raw = ["Bon dia, Mr. Wang 王!", "Tinc 3 gats i 2 gossos", "Visca 王 i 王", "Els 5 àlies", "Sense res"]
    normalize = Normalizer("ca")
    report = alphabet_report(raw, [normalize(t) for t in raw], normalize)
    assert report["available"] and report["locale"] == "ca" and report["cldr_version"] == "48"
    outside = {entry["char"]: entry for entry in report["outside"]}
    assert set(outside) == {"王", "3", "2", "5"}  # w is an auxiliary letter of Catalan: not outside
    assert outside["王"]["count"] == 3 and outside["王"]["examples"] == [raw[0], raw[2]]
    assert outside["王"]["name"] == "CJK UNIFIED IDEOGRAPH-738B"
    assert report["outside"][0]["char"] == "王"  # most frequent first
    assert report["outside_count"] == 6 and report["outside_distinct"] == 4
    many = ["a 3"] * 5
    assert alphabet_report(many, many, normalize)["outside"][0]["examples"] == ["a 3"] * 3


def test_report_says_when_no_alphabet_is_available():
    report = alphabet_report(["tere"], ["tere"], Normalizer("vot"))
    assert not report["available"] and "no alphabet available" in report["message"]
    assert report["outside"] == [] and report["outside_count"] is None
