"""Step 03 (xlsr_helpers.vocab): vocab.json, collision-free special tokens, round trip, processor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from xlsr_helpers.config import Config
from xlsr_helpers.vocab import (
    Tokens,
    build_vocab,
    encode,
    make_processor,
    make_tokenizer,
    round_trip,
    round_trip_sample,
    run_vocab,
    unseen_characters,
    vocab_table,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "cv-samples"
ZH = SHARED / "ssbuild_asr_finetuning"
needs_samples = pytest.mark.skipif(not SHARED.exists(), reason="../shared/cv-samples is absent (real zh-CN clips)")


def build_zh_cn_folder(root: Path) -> Path:
    """A CV 6.1-style zh-CN folder from the 12 real clips: 8 train, 2 dev, 2 test, disjoint speakers."""
    header = ["client_id", "path", "sentence", "up_votes", "down_votes", "age", "gender", "accent", "locale",
              "segment"]
    rows = [json.loads(line) for line in (ZH / "data" / "common_voice_zh-CN.json").read_text().splitlines() if line]
    folder = root / "zh-CN"
    (folder / "clips").mkdir(parents=True)
    for split, items in {"train": rows[:8], "dev": rows[8:10], "test": rows[10:12]}.items():
        lines = ["\t".join(header)]
        for i, item in enumerate(items):
            clip = (ZH / "data" / item["path"]).resolve()
            shutil.copy(clip, folder / "clips" / clip.name)
            lines.append("\t".join([f"{split}{i % 2}", clip.name, item["sentence"], "2", "0", "", "", "", "zh-CN", ""]))
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


# --------------------------------------------------------------------------------------------------
# vocabulary
# --------------------------------------------------------------------------------------------------
def test_vocab_is_sorted_reproducible_and_from_train_only():
    train = ["merhaba dünya", "ılık su", "bir iki"]
    vocab = build_vocab(train, other_texts=["xyz qw"])
    tokens = list(vocab.vocab)
    assert tokens[0] == "|" and tokens[-2:] == ["[UNK]", "[PAD]"]
    assert tokens[1:-2] == sorted(set("".join(train)) - {" "})
    assert "x" not in vocab.vocab and "q" not in vocab.vocab
    assert list(vocab.vocab.values()) == list(range(len(tokens)))
    assert build_vocab(list(reversed(train))).vocab == vocab.vocab
    assert vocab.remapped == {}


def test_vertical_bar_is_never_a_character_of_the_text(tmp_path):
    """ "|" is the word delimiter; a literal one (danda look-alike) is written "¦" by step 02."""
    from transformers import Wav2Vec2Processor

    from xlsr_helpers.normalize import Normalizer

    with pytest.raises(ValueError, match="word delimiter"):
        build_vocab(["नमस्ते | दुनिया"])
    with pytest.raises(ValueError, match="02_normalize"):
        build_vocab(["ok"], other_texts=["a|b"])  # eval/test text counts too
    normalize = Normalizer("hi", keep_chars="|")
    train = [normalize("नमस्ते | दुनिया"), normalize("एक|दो")]
    assert train == ["नमस्ते ¦ दुनिया", "एक¦दो"]
    assert Normalizer("hi", mode="seed_regex")("a | b") == "a ¦ b"
    vocab = build_vocab(train)
    assert vocab.tokens.word_delimiter_token == "|" and vocab.vocab["|"] == 0 and "¦" in vocab.vocab
    processor = make_processor(vocab)
    processor.save_pretrained(str(tmp_path / "p"))
    reloaded = Wav2Vec2Processor.from_pretrained(str(tmp_path / "p")).tokenizer
    assert reloaded.word_delimiter_token == "|"
    result = round_trip(reloaded, train)
    assert result["ok"], result


def test_special_token_strings_in_the_text_never_collide_also_after_reload(tmp_path):
    from transformers import Wav2Vec2Processor

    train = ["a [UNK] b", "c [PAD] <s> </s> d"]
    vocab = build_vocab(train)
    assert vocab.tokens.unk_token == "<unk>" and vocab.tokens.pad_token == "<pad>"
    assert vocab.tokens.bos_token not in "".join(train) and vocab.tokens.eos_token not in "".join(train)
    assert set(vocab.remapped) == {"[UNK]", "[PAD]", "<s>", "</s>"}
    result = round_trip(make_tokenizer(vocab), train)
    assert result["ok"], result["examples"]
    make_processor(vocab).save_pretrained(str(tmp_path / "p"))
    reloaded = Wav2Vec2Processor.from_pretrained(str(tmp_path / "p")).tokenizer
    assert (reloaded.unk_token, reloaded.pad_token) == ("<unk>", "<pad>")
    assert reloaded.pad_token_id == vocab.vocab["<pad>"]
    assert round_trip(reloaded, train)["ok"]


def test_default_tokens_would_collide_which_is_why_they_are_remapped():
    """The failure the remapping prevents, on the installed transformers."""
    train = ["a [UNK] b"]
    vocab = build_vocab(train)
    naive = make_tokenizer({**{t: i for i, t in enumerate(["|", "[", "]", "a", "b", "K", "N", "U"])},
                            "[UNK]": 8, "[PAD]": 9}, Tokens())
    assert not round_trip(naive, train)["ok"]  # "[UNK]" becomes the unknown token, spaces vanish
    assert round_trip(make_tokenizer(vocab), train)["ok"]


def test_round_trip_keeps_double_letters_and_word_boundaries_on_installed_transformers():
    vocab = build_vocab(["ll aa  bb"])
    tokenizer = make_tokenizer(vocab)
    ids = tokenizer("ll aa  bb").input_ids
    assert tokenizer.decode(ids, group_tokens=False) == "ll aa  bb"
    assert tokenizer.decode(ids) != "ll aa  bb"  # CTC-style grouping merges letters: wrong for labels


def test_round_trip_reports_failures_with_examples():
    tokenizer = make_tokenizer(build_vocab(["abc"]))
    result = round_trip(tokenizer, ["abc", "abd"])
    assert result == {"checked": 2, "failures": 1, "ok": False,
                      "examples": [{"sentence": "abd", "decoded": "ab[UNK]", "has_unk": True}]}


def test_round_trip_sample_covers_every_character_and_a_random_rest():
    sentences = [f"ab {i}" for i in range(5000)] + ["çok ğ", "ab"]
    sample = round_trip_sample(sentences, size=100, seed=0)
    assert set("".join(sample)) == set("".join(sentences)), "every character is in some checked sentence"
    assert 100 < len(sample) <= 100 + len(set("".join(sentences)))
    assert sample == round_trip_sample(sentences, size=100, seed=0)
    assert round_trip_sample(sentences[:50], size=100) == sentences[:50], "a small corpus is checked whole"


@pytest.mark.parametrize("sentences", [
    ["ll aa  bb", "merhaba dünya", "çok güzel bir gün"],
    ["a [UNK] b", "x<s>y", "ab\u00a0c", " lead and trail "],  # special tokens' text, unknown characters, spaces
], ids=["plain", "special-text"])
def test_encode_gives_the_tokenizers_ids(sentences):
    tokenizer = make_tokenizer(build_vocab(["ll aa bb merhaba dünya çok güzel bir gün xy"]))
    assert encode(tokenizer, sentences).to_pylist() == tokenizer(sentences).input_ids
    labels = encode(tokenizer, sentences * 100)  # past ENCODE_CHECK
    assert labels.to_pylist() == tokenizer(sentences * 100).input_ids and str(labels.type) == "list<item: int32>"
    assert encode(tokenizer, []).to_pylist() == []


def test_unseen_characters_are_counted_per_split():
    vocab = build_vocab(["abc"]).vocab
    found = unseen_characters(vocab, {"eval": ["abx"], "test": ["xx y", "c"]})
    assert [(e["char"], e["eval"], e["test"]) for e in found] == [("x", 1, 2), ("y", 0, 1)]


# --------------------------------------------------------------------------------------------------
# feature extractor
# --------------------------------------------------------------------------------------------------
def test_make_processor_pairs_the_extractor_with_the_class_autoprocessor_reloads(tmp_path):
    from transformers import AutoProcessor, SeamlessM4TFeatureExtractor

    default = make_processor(build_vocab(["ab"]))
    assert type(default).__name__ == "Wav2Vec2Processor"
    extractor = default.feature_extractor
    assert extractor.sampling_rate == 16000 and extractor.do_normalize and extractor.return_attention_mask
    w2v_bert = make_processor(build_vocab(["ab"]), SeamlessM4TFeatureExtractor())
    w2v_bert.save_pretrained(str(tmp_path / "bert"))
    reloaded = AutoProcessor.from_pretrained(str(tmp_path / "bert"))
    assert type(reloaded).__name__ == "Wav2Vec2BertProcessor"
    assert reloaded.feature_extractor.model_input_names[0] == "input_features"


def test_mms_vocabulary_is_nested_under_the_adapter_language(tmp_path):
    from transformers import AutoProcessor

    vocab = build_vocab(["çay su"])
    processor = make_processor(vocab, target_lang="tur")
    processor.save_pretrained(str(tmp_path / "p"))
    saved = json.loads((tmp_path / "p" / "vocab.json").read_text(encoding="utf-8"))
    assert list(saved) == ["tur"] and saved["tur"] == vocab.vocab
    reloaded = AutoProcessor.from_pretrained(str(tmp_path / "p"))
    assert reloaded.tokenizer.target_lang == "tur" and len(reloaded.tokenizer) == len(processor.tokenizer)
    assert round_trip(reloaded.tokenizer, ["çay su"])["ok"]


# --------------------------------------------------------------------------------------------------
# the step
# --------------------------------------------------------------------------------------------------
def _save_step2(run_dir: Path, splits: dict[str, list[str]]) -> None:
    from datasets import Dataset, DatasetDict

    DatasetDict({split: Dataset.from_dict({"id": [f"{split}{i}" for i in range(len(s))], "sentence": s,
                                           "raw_sentence": s})
                 for split, s in splits.items()}).save_to_disk(str(run_dir / "02_normalize" / "dataset"))


def test_run_vocab_saves_a_processor_that_reloads_and_round_trips(tmp_path):
    from transformers import AutoProcessor

    run_dir = tmp_path / "run"
    _save_step2(run_dir, {"train": ["merhaba dünya", "ılık su [UNK] bir"], "eval": ["çay"], "test": ["çay ve qx"]})
    result = run_vocab(Config(run_dir=str(run_dir), model="tiny"))
    processor = AutoProcessor.from_pretrained(str(run_dir / "03_vocab" / "processor"))
    assert processor.tokenizer.word_delimiter_token == "|" and processor.tokenizer.unk_token == "<unk>"
    assert processor.feature_extractor.return_attention_mask is True
    saved_vocab = json.loads((run_dir / "03_vocab" / "processor" / "vocab.json").read_text(encoding="utf-8"))
    assert saved_vocab == result.vocab.vocab
    report = json.loads((run_dir / "03_vocab" / "report.json").read_text(encoding="utf-8"))
    assert report["round_trip_ok"] and report["round_trip"]["checked"] == 2
    assert report["remapped"] == {"[UNK]": "<unk>"} and any("'[UNK]'" in note for note in report["notes"])
    assert report["round_trip_saved"]["ok"] and report["round_trip_saved"]["checked"] == 2
    unseen = {e["char"]: (e["eval"], e["test"]) for e in report["test_only_characters"]}
    assert unseen == {"ç": (1, 1), "v": (0, 1), "q": (0, 1), "x": (0, 1)}  # "e" is in "merhaba"
    assert report["vocab_size"] == len(saved_vocab) and report["tokenizer_len"] == len(processor.tokenizer)
    assert report["pad_token_id"] == saved_vocab["[PAD]"] == len(saved_vocab) - 1
    assert report["model"] == "tiny" and report["family"] == "tiny"
    table = vocab_table(report)
    assert table.loc[0, "token"] == "|" and "delimiter" in table.loc[0, "name"]


@pytest.mark.parametrize("kind, extractor, mask, processor_class, target", [
    ("xlsr53_pretrained", "Wav2Vec2FeatureExtractor", True, "Wav2Vec2Processor", None),
    ("hubert_base", "Wav2Vec2FeatureExtractor", False, "Wav2Vec2Processor", None),
    ("w2v_bert", "SeamlessM4TFeatureExtractor", True, "Wav2Vec2BertProcessor", None),
    ("mms_all", "Wav2Vec2FeatureExtractor", True, "Wav2Vec2Processor", "tur"),
])
def test_run_vocab_builds_the_processor_around_the_checkpoints_own_extractor(tmp_path, kind, extractor, mask,
                                                                             processor_class, target):
    import checkpoints
    from transformers import AutoProcessor

    folder = checkpoints.build(kind, tmp_path / "ckpt")
    run_dir = tmp_path / "run"
    _save_step2(run_dir, {"train": ["merhaba dünya"], "eval": ["dünya"], "test": ["merhaba"]})
    report = run_vocab(Config(run_dir=str(run_dir), model=str(folder), language="tr")).report
    saved_by_checkpoint = json.loads((folder / "preprocessor_config.json").read_text())
    processor = AutoProcessor.from_pretrained(str(run_dir / "03_vocab" / "processor"))
    assert type(processor).__name__ == processor_class == report["processor_class"]
    assert type(processor.feature_extractor).__name__ == extractor == report["feature_extractor"]["class"]
    assert processor.feature_extractor.return_attention_mask is mask == saved_by_checkpoint["return_attention_mask"]
    assert "its own preprocessor_config.json" in report["feature_extractor"]["from"]
    assert report["model"] == str(folder) and report["target_lang"] == target
    assert report["family"] == {"xlsr53_pretrained": "wav2vec2", "hubert_base": "hubert", "w2v_bert": "w2v-bert",
                                "mms_all": "mms-adapter"}[kind]


def test_run_vocab_needs_step_02(tmp_path):
    with pytest.raises(FileNotFoundError, match="02_normalize"):
        run_vocab(Config(run_dir=str(tmp_path)))


@needs_samples
def test_real_zh_cn_clips_through_steps_01_to_03(tmp_path):
    """The 12 real zh-CN clips: full-width punctuation gone, hanzi as units, every label round-trips."""
    from xlsr_helpers.load import run_load
    from xlsr_helpers.normalize import run_normalize

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed to decode mp3")
    folder = build_zh_cn_folder(tmp_path / "data")
    cfg = Config(language="zh-CN", run_dir=str(tmp_path / "run"), data_source=f"common_voice:{folder}", model="tiny")
    loaded = run_load(cfg)
    assert loaded.report["kept"] == {"train": 8, "eval": 2, "test": 2}
    normalized = run_normalize(cfg)
    removed = {e["char"]: e["count"] for e in normalized.report["inventory"]["removed"]}
    assert removed == {"，": 2, "。": 6, "：": 1}
    assert all(" " not in s for s in normalized.dataset["train"]["sentence"])
    built = run_vocab(cfg)
    report = built.report
    vocab = report["vocab"]
    assert not set("，。：") & set(vocab)
    assert all("\u4e00" <= t <= "\u9fff" for t in list(vocab)[1:-2])
    assert report["round_trip_ok"] and report["round_trip"]["checked"] == 8
    # eval/test sentences use characters that 8 training sentences do not have: reported, not hidden
    assert report["test_only_characters"] and report["test_characters_unk_share"] > 0.3
