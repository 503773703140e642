"""Step 03: the vocabulary — a new one from the training text, or MODEL's own — and the processor.

``VOCABULARY`` decides (:mod:`.model_vocab`: "auto" keeps MODEL's tokenizer and CTC head when MODEL has them and
the tokenizer writes the training text): with "model" the checkpoint's processor is saved as it is, its tokenizer
files byte for byte, and its coverage of the text is reported; with "train", what follows here.

The processor is built around MODEL's feature extractor (its ``preprocessor_config.json``; the family's
default when it has none): 16 kHz samples for wav2vec2-style encoders, log-mel features for w2v-BERT.
For MMS adapters the vocabulary is nested under the adapter's language (``TARGET_LANG``), as in MMS's own.
Step 04 refuses a MODEL other than the one this step built the processor for.

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

Training sentences are encoded and decoded back (``decode(ids, group_tokens=False)``: labels are
not CTC output, repeated letters must not be merged) on the installed transformers, and must come back
identical, spaces included: the first sentence with each character, and up to ``ROUND_TRIP_SAMPLE`` more at
random (all of them in a small corpus; every one of 100,000 took a minute).
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from collections import Counter
from typing import Any, Callable, Container, Iterable

from . import model_vocab
from .chars import count_chars
from .config import Config
from .constants import SPLITS
from .ctc import is_character_tokenizer
from .families import RECIPES, resolve, target_lang
from .labels import ENCODE_CHECK, ROUND_TRIP_SAMPLE, encode, round_trip, round_trip_sample  # noqa: F401 - re-exported
from .models import family_feature_extractor, feature_extractor_for, processor_class
from .normalize import WORD_DELIMITER  # fixed: see the module docstring

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
# processor
# --------------------------------------------------------------------------------------------------
def make_tokenizer(vocab: Vocab | dict[str, int], tokens: Tokens | None = None, target_lang: str | None = None):
    """A ``Wav2Vec2CTCTokenizer`` on ``vocab``; with ``target_lang`` (MMS adapters) the vocabulary is nested
    under that language, as in MMS's own vocab.json, and the tokenizer is set to it."""
    from transformers import Wav2Vec2CTCTokenizer

    if isinstance(vocab, Vocab):
        tokens = tokens or vocab.tokens
        vocab = vocab.vocab
    tokens = tokens or Tokens()
    content = {target_lang: vocab} if target_lang else vocab
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.json"
        path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
        extra = {"target_lang": target_lang} if target_lang else {}
        return Wav2Vec2CTCTokenizer(str(path), **tokens.as_kwargs(), **extra)


def make_processor(vocab: Vocab | dict[str, int], feature_extractor=None, *, tokens: Tokens | None = None,
                   target_lang: str | None = None):
    """The processor of a run: the CTC tokenizer on ``vocab`` around the model's feature extractor
    (``models.feature_extractor_for``; default: the wav2vec2 one of ``tiny``), in the processor class that
    ``AutoProcessor`` reloads (``Wav2Vec2Processor``, or ``Wav2Vec2BertProcessor`` for w2v-BERT)."""
    extractor = feature_extractor if feature_extractor is not None else family_feature_extractor(RECIPES["tiny"])
    tokenizer = make_tokenizer(vocab, tokens, target_lang=target_lang)
    return processor_class(extractor)(feature_extractor=extractor, tokenizer=tokenizer)


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


def unseen_characters(vocab: Container[str], texts: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Characters of eval/test absent from the vocabulary (they will be [UNK]), with counts and an example.
    ``vocab``: the characters the tokenizer writes (a character vocabulary's dict, or a set)."""
    found: dict[str, dict[str, Any]] = {}
    for split, sentences in texts.items():
        counts = count_chars(sentences)
        unseen = {ch for ch in counts if ch != " " and ch not in vocab}
        for sentence in sentences if unseen - found.keys() else ():  # an example for each new one, in order
            for ch in unseen.intersection(sentence) - found.keys():
                found[ch] = {"char": ch, "codepoint": f"U+{ord(ch):04X}", "name": unicodedata.name(ch, "?"),
                             "eval": 0, "test": 0, "example": sentence[:120]}
            if not unseen - found.keys():
                break
        for ch in unseen:
            found[ch][split] = counts[ch]
    return sorted(found.values(), key=lambda e: (-(e["eval"] + e["test"]), e["char"]))


def unknown_share(unseen: list[dict[str, Any]], test_texts: list[str]) -> float:
    """The share of the test split's characters (spaces aside) that are ``unseen`` ones: [UNK] in its labels."""
    counts = count_chars(test_texts)
    counts.pop(" ", None)
    return round(sum(counts.get(e["char"], 0) for e in unseen) / max(1, sum(counts.values())), 6)


def run_vocab(cfg: Config, log: Callable = print) -> VocabResult:
    """Step 03: decide VOCABULARY (:func:`model_vocab.decide`), then build the character vocabulary from 02_normalize's
    train split or keep MODEL's own tokenizer; save ``03_vocab/processor`` + report.json, and the decision in
    run.json."""
    from datasets import load_from_disk

    source = cfg.step_dir("02_normalize") / "dataset"
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: run 02_normalize first.")
    loaded = load_from_disk(str(source))
    texts = {split: loaded[split]["sentence"][:] for split in SPLITS}  # [:]: the column at once, not row by row
    train = loaded["train"]
    seconds = train["duration"][:] if "duration" in train.column_names else None
    resolution = resolve(cfg, download=True).resolution  # the step's (run_config.from_params), else decided here
    language = target_lang(cfg)
    decision = model_vocab.decide(cfg, texts["train"], seconds, language, log=log)
    log(f"VOCABULARY={decision.setting!r} -> {decision.mode!r}: {decision.reason}")
    step_dir = cfg.step_dir("03_vocab")
    step_dir.mkdir(parents=True, exist_ok=True)
    if decision.mode == "model":
        processor, vocab, report = _kept(cfg, decision, texts, language)
    else:
        processor, vocab, report = _trained(cfg, texts, language)
    report.update({
        "vocabulary": decision.as_dict(), "model_coverage": decision.coverage,
        "model": cfg.model, "family": resolution.family, "family_reason": resolution.how, "target_lang": language,
        "processor_class": type(processor).__name__, "transformers_version": __import__("transformers").__version__,
        "character_tokenizer": is_character_tokenizer(processor.tokenizer),
        "train_sentences": len(texts["train"]),
    })
    report["notes"] = [*_normalization_notes(cfg, decision), *report["notes"]]
    extractor = processor.feature_extractor
    report["feature_extractor"] = {"class": type(extractor).__name__, "input": extractor.model_input_names[0],
                                   "sampling_rate": extractor.sampling_rate,
                                   "return_attention_mask": bool(getattr(extractor, "return_attention_mask", True)),
                                   "from": report.pop("extractor_from")}
    report_path = step_dir / "report.json"
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    model_vocab.record(cfg, decision)
    return VocabResult(processor, vocab, report, cfg.processor_dir, report_path)


def _trained(cfg: Config, texts: dict[str, list[str]], language: str | None) -> tuple[Any, Vocab, dict[str, Any]]:
    """VOCABULARY "train": the character vocabulary of the training text, the CTC tokenizer on it around MODEL's
    feature extractor, saved and checked again after reloading."""
    from transformers import AutoProcessor

    vocab = build_vocab(texts["train"], texts["eval"] + texts["test"])
    extractor, extractor_reason = feature_extractor_for(cfg)
    processor = make_processor(vocab, extractor, target_lang=language)
    sample = round_trip_sample(texts["train"], seed=cfg.seed)
    checked = round_trip(processor.tokenizer, sample)
    processor.save_pretrained(str(cfg.processor_dir))
    # Reload what was saved and check again: the saved processor is what training will use.
    reloaded = AutoProcessor.from_pretrained(str(cfg.processor_dir))
    checked_saved = round_trip(reloaded.tokenizer, sample)

    only_test = unseen_characters(vocab.vocab, {"eval": texts["eval"], "test": texts["test"]})
    char_counts = count_chars(texts["train"])
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
        "test_characters_unk_share": unknown_share(only_test, texts["test"]),
        "round_trip": {**checked, "of": len(texts["train"])},
        "round_trip_saved": checked_saved,
        "round_trip_ok": checked["ok"] and checked_saved["ok"],
        "extractor_from": extractor_reason,
    }
    notes = []
    for default, used in vocab.remapped.items():
        notes.append(f"{default!r} occurs in the text, so {used!r} is used as that token instead "
                     "(the text is unchanged).")
    if only_test:
        notes.append(f"{len(only_test)} characters occur in eval/test but not in train: they become "
                     f"{vocab.tokens.unk_token} ({report['test_characters_unk_share']:.2%} of test characters).")
    report["notes"] = notes
    return reloaded, vocab, report


def _kept(cfg: Config, decision, texts: dict[str, list[str]], language: str | None) -> tuple[Any, Vocab, dict]:
    """VOCABULARY "model": MODEL's own processor, its tokenizer files copied unchanged, reloaded and checked."""
    from transformers import AutoProcessor

    processor = decision.processor
    kept = model_vocab.save_processor(processor, cfg.model, cfg.processor_dir, language)
    reloaded = AutoProcessor.from_pretrained(str(cfg.processor_dir))
    tokenizer = reloaded.tokenizer
    if tokenizer.get_vocab() != processor.tokenizer.get_vocab():
        raise model_vocab.VocabularyError(f"{cfg.model}'s tokenizer, saved to {cfg.processor_dir} and reloaded, "
                                          "has another vocabulary: it cannot be kept unchanged.")
    # The round trip on the sentences the tokenizer can write; the others are the coverage report's.
    unwritable = set((decision.coverage or {}).get("unwritable", ""))
    writable = [t for t in texts["train"] if unwritable.isdisjoint(t)] if unwritable else texts["train"]
    sample = round_trip_sample(writable, seed=cfg.seed)
    checked = {**round_trip(processor.tokenizer, sample), "skipped_unwritable": len(texts["train"]) - len(writable)}
    checked_saved = round_trip(tokenizer, sample)
    vocab = Vocab(tokenizer.get_vocab(), Tokens(**{
        name: str(getattr(tokenizer, name, None) or "") for name in Tokens.__dataclass_fields__}))
    characters = sorted(set(count_chars(texts["eval"] + texts["test"])) - {" "})
    writable = {ch for ch, ok in zip(characters, model_vocab.writes(tokenizer, characters)) if ok}
    only_test = unseen_characters(writable, {"eval": texts["eval"], "test": texts["test"]})
    pieces = Counter(encode(tokenizer, texts["train"]).flatten().to_pylist())
    report = {
        "vocab_size": len(tokenizer.get_vocab()),
        "tokenizer_len": len(tokenizer),
        "tokenizer_class": type(tokenizer).__name__,
        "kept_files": kept,
        "pieces_used": len(pieces),
        "top_pieces": [{"id": i, "piece": tokenizer.convert_ids_to_tokens(i), "train count": n}
                       for i, n in pieces.most_common(30)],
        "tokens": vocab.tokens.as_kwargs(),
        "remapped": {},
        "pad_token_id": tokenizer.pad_token_id,
        "test_only_characters": only_test,
        "test_characters_unk_share": unknown_share(only_test, texts["test"]),
        "round_trip": {**checked, "of": len(texts["train"])},
        "round_trip_saved": checked_saved,
        "round_trip_ok": checked["ok"] and checked_saved["ok"],
        "extractor_from": f"{cfg.model}: its own preprocessor_config.json, kept with its tokenizer",
    }
    notes = []
    coverage = decision.coverage or {}
    if coverage.get("unwritable_character_count"):
        chars = coverage["unwritable"]
        notes.append(f"MODEL's tokenizer cannot write {coverage['unwritable_character_count']} character(s) of the "
                     f"training text ({chars!r}): their labels hold its unknown token, which it learns to write "
                     "instead; the round trip checks the sentences without them.")
    if only_test:
        notes.append(f"{len(only_test)} characters of eval/test cannot be written by MODEL's tokenizer "
                     f"({report['test_characters_unk_share']:.2%} of test characters).")
    report["notes"] = notes
    return reloaded, vocab, report


def _normalization_notes(cfg: Config, decision) -> list[str]:
    """A kept vocabulary must be trained on text normalized as the model writes: step 02's choice, checked."""
    from .normalize import choose_mode, is_omnilingual

    path = cfg.step_dir("02_normalize") / "report.json"
    used = json.loads(path.read_text(encoding="utf-8")).get("normalizer", {}).get("mode") if path.exists() else None
    omni, _ = is_omnilingual(cfg.model)
    if decision.mode != "model" or not omni or used in (None, "omnilingual"):
        return []
    wanted, _ = choose_mode(cfg.updated(normalizer="auto"))
    return [f"02_normalize wrote the text with NORMALIZER={used!r}, but {cfg.model} writes text in the "
            f"{wanted!r} form (lower case, no punctuation, no digit-only words): run 02_normalize again with "
            f"MODEL={cfg.model!r} and NORMALIZER='auto', then this step."]


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
