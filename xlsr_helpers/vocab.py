"""Step 03: vocab.json from the training text, tokenizer, feature extractor, processor.

The vocabulary is every character of the normalized *training* sentences (never eval/test: a
character seen only in test must not get an output unit), sorted, with the word delimiter in place of
the space, then ``[UNK]`` and ``[PAD]`` (the CTC blank) at the end, as in the seed notebook.

Collisions are impossible by construction. The word delimiter is always ``|``: transformers 5
reloads a ``Wav2Vec2CTCTokenizer`` with ``word_delimiter_token="|"`` whatever was saved (5.x moves
``*_token`` keys of tokenizer_config.json into "model-specific special tokens", and the tokenizer's
property reads its own default), so a ``|`` in the text cannot be solved by choosing another delimiter.
Step 02's normalizer therefore writes a surviving ``|`` as ``¦`` (in references too), and this step
refuses text that still contains ``|``. The other special tokens do survive a reload: if the text
contains ``[UNK]``, ``[PAD]``, ``<s>`` or ``</s>``, that token gets another, unused string (``<unk>``,
...) and the report says so. The text is never changed here.

Every training sentence is encoded and decoded back (``decode(ids, group_tokens=False)``: labels are
not CTC output, repeated letters must not be merged) on the installed transformers, and must come back
identical, spaces included.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .config import Config

SAMPLING_RATE = 16_000
SPLITS = ("train", "eval", "test")
WORD_DELIMITER = "|"  # fixed: see the module docstring
# First candidate is the seed's choice; the others are used only when the text contains the first.
SPECIAL_CANDIDATES = {
    "unk_token": ("[UNK]", "<unk>", "⟦unk⟧"),
    "pad_token": ("[PAD]", "<pad>", "⟦pad⟧"),
    "bos_token": ("<s>", "⟦s⟧", "⟦bos⟧"),
    "eos_token": ("</s>", "⟦/s⟧", "⟦eos⟧"),
}
# Model ids whose feature encoder uses layer norm (feat_extract_norm="layer"): XLSR, XLS-R, lv60, MMS.
LAYER_NORM_HINTS = ("xlsr", "xls-r", "lv60", "mms-", "large-robust", "voxpopuli", "conformer")
GROUP_NORM_HINTS = ("wav2vec2-base", "wav2vec2-large-960h", "hubert-base", "wavlm-base")


@dataclass
class Tokens:
    """The token strings of a vocabulary (defaults: the seed's)."""

    word_delimiter_token: str = "|"
    unk_token: str = "[UNK]"
    pad_token: str = "[PAD]"
    bos_token: str = "<s>"
    eos_token: str = "</s>"

    def as_kwargs(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass
class Vocab:
    vocab: dict[str, int]
    tokens: Tokens
    remapped: dict[str, str] = field(default_factory=dict)  # default token -> token used instead

    @property
    def size(self) -> int:
        return len(self.vocab)


def choose_tokens(texts: Iterable[str]) -> tuple[Tokens, dict[str, str]]:
    """Special-token strings that occur nowhere in ``texts`` (all splits), and what was remapped.

    Raises ValueError when the text contains the word delimiter ``|`` (step 02 maps it to ``¦``).
    """
    texts = list(texts)
    joined = "\n".join(texts)
    if WORD_DELIMITER in joined:
        example = next(t for t in texts if WORD_DELIMITER in t)
        raise ValueError(
            f"The text contains {WORD_DELIMITER!r}, the word delimiter of the vocabulary (e.g. {example[:80]!r}). "
            "Step 02's normalizer writes it as '¦'; run 02_normalize on this data (also for your own text)."
        )
    remapped: dict[str, str] = {}
    chosen = {"word_delimiter_token": WORD_DELIMITER}
    for name, candidates in SPECIAL_CANDIDATES.items():
        token = next((c for c in candidates if c not in joined), None)
        if token is None:
            raise ValueError(f"every candidate {name} occurs in the text: {candidates}")
        if token != candidates[0]:
            remapped[candidates[0]] = token
        chosen[name] = token
    return Tokens(**chosen), remapped


def build_vocab(train_texts: Iterable[str], other_texts: Iterable[str] = ()) -> Vocab:
    """vocab.json content from the training sentences; ``other_texts`` (eval/test) only steer the choice
    of token strings so that nothing in any split collides with a special token."""
    train_texts = list(train_texts)
    tokens, remapped = choose_tokens([*train_texts, *other_texts])
    chars = sorted(set("".join(train_texts)) - {" "})
    ordered = [tokens.word_delimiter_token, *chars, tokens.unk_token, tokens.pad_token]
    return Vocab({token: i for i, token in enumerate(ordered)}, tokens, remapped)


# --------------------------------------------------------------------------------------------------
# architecture -> attention mask
# --------------------------------------------------------------------------------------------------
def feature_encoder_norm(model: Any) -> tuple[str | None, str]:
    """("layer" | "group" | None, how we know) for a model name, local path or config object."""
    if model is not None and not isinstance(model, (str, Path)):
        norm = getattr(model, "feat_extract_norm", None)
        return norm, f"config object: feat_extract_norm={norm!r}"
    name = str(model or "")
    if name == "tiny":
        return "layer", "MODEL='tiny' is built with feat_extract_norm='layer' (like XLSR)"
    path = Path(name).expanduser()
    if (path / "config.json").is_file():
        norm = json.loads((path / "config.json").read_text()).get("feat_extract_norm")
        return norm, f"{path / 'config.json'}: feat_extract_norm={norm!r}"
    try:  # a Hub id already in the local cache (no network needed)
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(name, local_files_only=True)
        norm = getattr(config, "feat_extract_norm", None)
        if norm:
            return norm, f"cached config of {name}: feat_extract_norm={norm!r}"
    except Exception:  # noqa: BLE001 - not cached / not a config: fall back to the name
        pass
    lowered = name.lower()
    if any(h in lowered for h in LAYER_NORM_HINTS):
        return "layer", f"{name!r} is an XLSR/XLS-R/lv60/MMS checkpoint (layer-norm feature encoder)"
    if any(h in lowered for h in GROUP_NORM_HINTS):
        return "group", f"{name!r} is a base/960h checkpoint (group-norm feature encoder)"
    return None, f"architecture of {name!r} unknown here (no config.json, not cached)"


def attention_mask_for(model: Any) -> tuple[bool, str]:
    """return_attention_mask for the feature extractor: True for layer-norm models (XLSR), False for
    group-norm ones (they were trained on unpadded audio and must see zero padding, not a mask)."""
    norm, why = feature_encoder_norm(model)
    if norm == "layer":
        return True, why
    if norm == "group":
        return False, why
    return True, why + "; defaulting to return_attention_mask=True (right for XLSR-style models)"


# --------------------------------------------------------------------------------------------------
# processor
# --------------------------------------------------------------------------------------------------
def make_tokenizer(vocab: Vocab | dict[str, int], tokens: Tokens | None = None):
    from transformers import Wav2Vec2CTCTokenizer

    if isinstance(vocab, Vocab):
        tokens = tokens or vocab.tokens
        vocab = vocab.vocab
    tokens = tokens or Tokens()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.json"
        path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        return Wav2Vec2CTCTokenizer(str(path), **tokens.as_kwargs())


def make_feature_extractor(return_attention_mask: bool = True, sampling_rate: int = SAMPLING_RATE,
                           do_normalize: bool = True):
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=sampling_rate, padding_value=0.0,
                                    do_normalize=do_normalize, return_attention_mask=return_attention_mask)


def make_processor(vocab: Vocab | dict[str, int], model_name_or_config: Any = "tiny", *,
                   tokens: Tokens | None = None, sampling_rate: int = SAMPLING_RATE, do_normalize: bool = True,
                   return_attention_mask: bool | None = None):
    """A Wav2Vec2Processor: CTC tokenizer on ``vocab`` + feature extractor (16 kHz, do_normalize, attention
    mask matched to the model's feature encoder unless given)."""
    from transformers import Wav2Vec2Processor

    if return_attention_mask is None:
        return_attention_mask, _ = attention_mask_for(model_name_or_config)
    tokenizer = make_tokenizer(vocab, tokens)
    extractor = make_feature_extractor(return_attention_mask, sampling_rate, do_normalize)
    return Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)


def round_trip(tokenizer, sentences: list[str], max_examples: int = 10) -> dict[str, Any]:
    """Encode -> decode(group_tokens=False) every sentence; it must come back identical."""
    failures, examples = 0, []
    unk = tokenizer.unk_token_id
    encoded = tokenizer(sentences).input_ids if sentences else []
    for sentence, ids in zip(sentences, encoded):
        back = tokenizer.decode(ids, group_tokens=False)
        if back != sentence or unk in ids:
            failures += 1
            if len(examples) < max_examples:
                examples.append({"sentence": sentence, "decoded": back, "has_unk": unk in ids})
    return {"checked": len(sentences), "failures": failures, "ok": failures == 0 and bool(sentences),
            "examples": examples}


# --------------------------------------------------------------------------------------------------
# the step
# --------------------------------------------------------------------------------------------------
@dataclass
class VocabResult:
    processor: Any
    vocab: Vocab
    report: dict[str, Any]
    processor_dir: Path
    report_path: Path


def unseen_characters(vocab: dict[str, int], texts: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Characters of eval/test absent from the vocabulary (they will be [UNK]), with counts and an example."""
    found: dict[str, dict[str, Any]] = {}
    for split, sentences in texts.items():
        for sentence in sentences:
            for ch in set(sentence):
                if ch != " " and ch not in vocab:
                    entry = found.setdefault(ch, {"char": ch, "codepoint": f"U+{ord(ch):04X}",
                                                  "name": unicodedata.name(ch, "?"), "eval": 0, "test": 0,
                                                  "example": sentence[:120]})
                    entry[split] += sentence.count(ch)
    return sorted(found.values(), key=lambda e: (-(e["eval"] + e["test"]), e["char"]))


def run_vocab(cfg: Config) -> VocabResult:
    """Build the vocabulary from 02_normalize's train split; save ``03_vocab/processor`` + report.json."""
    from datasets import load_from_disk

    source = cfg.step_dir("02_normalize") / "dataset"
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: run 02_normalize first.")
    loaded = load_from_disk(str(source))
    texts = {split: list(loaded[split]["sentence"]) for split in SPLITS}
    vocab = build_vocab(texts["train"], texts["eval"] + texts["test"])
    ram, ram_reason = attention_mask_for(cfg.model)
    processor = make_processor(vocab, cfg.model, return_attention_mask=ram)
    tokenizer = processor.tokenizer
    checked = round_trip(tokenizer, texts["train"])

    step_dir = cfg.step_dir("03_vocab")
    step_dir.mkdir(parents=True, exist_ok=True)
    processor_dir = cfg.processor_dir
    processor.save_pretrained(str(processor_dir))
    # Reload what was saved and check again: the saved processor is what training will use.
    from transformers import Wav2Vec2Processor

    reloaded = Wav2Vec2Processor.from_pretrained(str(processor_dir))
    checked_saved = round_trip(reloaded.tokenizer, texts["train"])

    only_test = unseen_characters(vocab.vocab, {"eval": texts["eval"], "test": texts["test"]})
    test_chars = Counter("".join(texts["test"]).replace(" ", ""))
    unk_test = sum(test_chars[e["char"]] for e in only_test)
    char_counts = Counter("".join(texts["train"]))
    report = {
        "vocab_size": vocab.size,
        "tokenizer_len": len(reloaded.tokenizer),
        "vocab": vocab.vocab,
        "train_counts": {tok: (char_counts.get(" " if tok == vocab.tokens.word_delimiter_token else tok, 0))
                         for tok in vocab.vocab},
        "tokens": vocab.tokens.as_kwargs(),
        "remapped": vocab.remapped,
        "pad_token_id": reloaded.tokenizer.pad_token_id,
        "test_only_characters": only_test,
        "test_characters_unk_share": round(unk_test / max(1, sum(test_chars.values())), 6),
        "round_trip": checked,
        "round_trip_saved": checked_saved,
        "round_trip_ok": checked["ok"] and checked_saved["ok"],
        "feature_extractor": {"sampling_rate": SAMPLING_RATE, "do_normalize": True,
                              "return_attention_mask": ram, "why": ram_reason, "model": cfg.model},
        "transformers_version": __import__("transformers").__version__,
        "train_sentences": len(texts["train"]),
    }
    notes = []
    for default, used in vocab.remapped.items():
        notes.append(f"{default!r} occurs in the text, so {used!r} is used as that token instead "
                     "(the text is unchanged).")
    if only_test:
        notes.append(f"{len(only_test)} characters occur in eval/test but not in train: they become "
                     f"{vocab.tokens.unk_token} ({report['test_characters_unk_share']:.2%} of test characters).")
    report["notes"] = notes
    report_path = step_dir / "report.json"
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return VocabResult(reloaded, vocab, report, processor_dir, report_path)


def vocab_table(report: dict[str, Any]):
    """The vocabulary as a table: id, token, Unicode name, count in the training text."""
    import pandas as pd

    delimiter = report["tokens"]["word_delimiter_token"]
    specials = {v: k for k, v in report["tokens"].items()}
    rows = []
    for token, i in report["vocab"].items():
        if token in specials:
            role = specials[token].replace("_token", "").replace("word_delimiter", "word delimiter (space)")
            name = role
        else:
            name = unicodedata.name(token, "?") if len(token) == 1 else "?"
        rows.append({"id": i, "token": token, "name": name, "train count": report["train_counts"].get(token, 0)})
    frame = pd.DataFrame(rows).set_index("id")
    frame.attrs["delimiter"] = delimiter
    return frame
