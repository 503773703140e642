"""Step 03: vocab.json from the training text, tokenizer, the model's own feature extractor, processor.

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
from typing import Any, Iterable

from .chars import contains_any, count_chars
from .config import Config
from .constants import SPLITS
from .families import RECIPES, resolve, target_lang
from .models import family_feature_extractor, feature_extractor_for, processor_class
from .normalize import WORD_DELIMITER  # fixed: see the module docstring
from .translate import TranslateTable

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


ROUND_TRIP_SAMPLE = 2000  # training sentences checked at random, besides the first one with each character
ENCODE_CHECK = 200  # sentences that :func:`encode` checks against the tokenizer before its fast path


def round_trip_sample(sentences: list[str], size: int = ROUND_TRIP_SAMPLE, seed: int = 0) -> list[str]:
    """The first sentence with each character, then up to ``size`` others at random (seeded), in corpus order."""
    import random

    chosen, seen = set(), set()
    for i, sentence in enumerate(sentences):
        if not set(sentence) <= seen:
            chosen.add(i)
            seen |= set(sentence)
    rest = [i for i in range(len(sentences)) if i not in chosen]
    chosen |= set(random.Random(seed).sample(rest, min(size, len(rest))))
    return [sentences[i] for i in sorted(chosen)]


def encode(tokenizer, texts: list[str]):
    """Label ids of many sentences as one Arrow column (``list<int32>``): the ids of ``tokenizer(texts).input_ids``.

    Kept by hand because it was measured: a character vocabulary (Wav2Vec2CTCTokenizer: a space becomes the word
    delimiter, every other character its token) encodes as one ``str.translate`` of all the sentences joined, each
    character turned into the character whose code is its id, read back as 32-bit integers: 0.2 s for 100,000
    sentences, against 17 s through the tokenizer (~170 us a sentence) and 0.7 s with a lookup per character.
    Used only when the vocabulary is single characters and the tokenizer does not change case; sentences holding a
    special token's text go through the tokenizer; and the first ``ENCODE_CHECK`` sentences are encoded both ways:
    any difference and the tokenizer encodes everything.
    """
    import numpy as np
    import pyarrow as pa

    column_type = pa.list_(pa.int32())
    if not texts:
        return pa.array([], column_type)
    vocab = tokenizer.get_vocab()
    specials = [t for t in tokenizer.all_special_tokens if t]
    single = all(len(token) == 1 for token in vocab if token not in specials)
    delimiter = getattr(tokenizer, "word_delimiter_token", None)
    if (not single or getattr(tokenizer, "do_lower_case", False) or delimiter not in vocab
            or max(vocab.values()) >= 0xD800):  # ids from 0xD800 are no characters (surrogates)
        return pa.array(tokenizer(texts).input_ids, column_type)
    unknown = chr(tokenizer.unk_token_id)  # a character outside the vocabulary: the unknown token, as the tokenizer
    table = TranslateTable(lambda ch: unknown, {ord(token): chr(i) for token, i in vocab.items() if len(token) == 1})
    table[ord(" ")] = chr(vocab[delimiter])
    ids = np.frombuffer(table.translate("".join(texts)).encode("utf-32-le"), dtype=np.int32)
    offsets = np.zeros(len(texts) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, texts), dtype=np.int32, count=len(texts)), out=offsets[1:])
    labels = pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids))
    sample = texts[:ENCODE_CHECK]
    if labels.slice(0, len(sample)).to_pylist() != tokenizer(sample).input_ids:
        return pa.array(tokenizer(texts).input_ids, column_type)
    holds_special_start = contains_any(t[0] for t in specials)
    odd = [i for i, t in enumerate(texts) if holds_special_start(t) and any(s in t for s in specials)]
    if odd:  # a special token's text in a sentence: the tokenizer's own answer for those
        rows = labels.to_pylist()
        for i in odd:
            rows[i] = tokenizer(texts[i]).input_ids
        return pa.array(rows, column_type)
    return labels


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


def run_vocab(cfg: Config) -> VocabResult:
    """Build the vocabulary from 02_normalize's train split; save ``03_vocab/processor`` + report.json."""
    from datasets import load_from_disk

    source = cfg.step_dir("02_normalize") / "dataset"
    if not source.exists():
        raise FileNotFoundError(f"{source} does not exist: run 02_normalize first.")
    loaded = load_from_disk(str(source))
    texts = {split: loaded[split]["sentence"][:] for split in SPLITS}  # [:]: the column at once, not row by row
    vocab = build_vocab(texts["train"], texts["eval"] + texts["test"])
    decision = resolve(cfg, download=True).resolution  # the step's (run_config.from_params), else decided here
    family, family_reason = decision.family, decision.how
    extractor, extractor_reason = feature_extractor_for(cfg)
    language = target_lang(cfg)
    processor = make_processor(vocab, extractor, target_lang=language)
    tokenizer = processor.tokenizer
    sample = round_trip_sample(texts["train"], seed=cfg.seed)
    checked = round_trip(tokenizer, sample)

    step_dir = cfg.step_dir("03_vocab")
    step_dir.mkdir(parents=True, exist_ok=True)
    processor_dir = cfg.processor_dir
    processor.save_pretrained(str(processor_dir))
    # Reload what was saved and check again: the saved processor is what training will use.
    from transformers import AutoProcessor

    reloaded = AutoProcessor.from_pretrained(str(processor_dir))
    checked_saved = round_trip(reloaded.tokenizer, sample)

    only_test = unseen_characters(vocab.vocab, {"eval": texts["eval"], "test": texts["test"]})
    test_chars = count_chars(texts["test"])
    test_chars.pop(" ", None)
    unk_test = sum(test_chars[e["char"]] for e in only_test)
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
        "test_characters_unk_share": round(unk_test / max(1, sum(test_chars.values())), 6),
        "round_trip": {**checked, "of": len(texts["train"])},
        "round_trip_saved": checked_saved,
        "round_trip_ok": checked["ok"] and checked_saved["ok"],
        "model": cfg.model,
        "family": family, "family_reason": family_reason,
        "target_lang": language,
        "processor_class": type(reloaded).__name__,
        "feature_extractor": {"class": type(extractor).__name__, "input": extractor.model_input_names[0],
                              "sampling_rate": extractor.sampling_rate,
                              "return_attention_mask": bool(extractor.return_attention_mask),
                              "from": extractor_reason},
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
