"""What a result of a model card says, read as its author meant it: the cards people wrote on the Hub.

The 2021 fine-tuning week, the 2022 robust-speech event and the Whisper event each wrote model-index results
their own way. ``leaderboard`` reads one result at a time with huggingface_hub's parser; these functions say
what its fields mean:

- the dataset config is ``config``, or ``args`` when that is a locale (2021: ``args: tr``);
- the split is the dataset's, or else the one the metric's name says ("Test WER": test; "Dev", "Validation",
  "Eval WER": validation); a stated test split whose metric name says another ("Dev WER") is noted, not ranked;
  a part of a split (step 06's ``test-filtered``, ``test-held-out`` and ``test-sample``, a slice such as
  ``test[:10%]``) is noted
  and never ranked, not even against another such part: each is its own subset;
- "Test WER (without LM)", "(no LM)", "w/o LM" are greedy; "with LM", "+LM", "5-gram KenLM" are LM-decoded;
- values on the fraction scale (0.2378) are read as percents (23.78) when every WER/CER of the card is below 1,
  or for a WER below 1 beside values of 1 or more; another value below 1 (a lone WER, a CER below 1 beside
  percents) is kept as written and noted, and its row is not ranked by it. Values written with "%", and the
  cards of step 06 (normalizer.json beside them), are percents;
- Common Voice ids are one key per release: ``common_voice_8_0`` and ``mozilla-foundation/common_voice_8_0``
  are one table; ``common_voice`` (no release) is a table of its own, as releases have different test splits;
- a card of several languages (a ``language:`` list) gives a row per result, filed under the card language
  that its dataset config is a locale of; a config that is none of the card's languages (``ka`` vs ``kab``)
  files the row under the config, with a note.
"""

from __future__ import annotations

import math
import re
from typing import Any

TEST_SPLIT = "test"
RANKED_METRICS = ("wer", "cer")
GREEDY, LM = "greedy", "LM"
# How a results entry says that no language model decoded it ("Test WER (without LM)", "(no LM)", "w/o LM",
# config "no_lm"), checked first, and that one did ("Test WER (with LM)", "(+LM)", config "with_lm", "KenLM").
LM_WORDS = r"(?:lm|language[\s_-]?model|kenlm|n-gram)(?![a-z])"
NO_LM_DECODING = re.compile(rf"(?<![a-z])(?:without|w/o|no|non)[\s_-]*(?:an?\s+)?{LM_WORDS}", re.IGNORECASE)
LM_DECODING = re.compile(rf"(?<![a-z]){LM_WORDS}", re.IGNORECASE)
# The split a metric's name says, for cards whose dataset states none ("Test WER", "Dev WER", "eval_wer").
SPLIT_IN_NAME = re.compile(r"(?<![a-z])(test|dev|validation|valid|eval|evaluation)(?![a-z])", re.IGNORECASE)
SPLIT_FROM_NAME = "split from the metric name"
# A part of a split, particular to its card (step 06 names them so: card.splits), or a datasets slice "test[:500]".
PARTIAL_SPLIT = re.compile(r"filtered|held[\s_-]?out|sample|\[", re.IGNORECASE)
SPLIT_WORDS = {"test": TEST_SPLIT, "dev": "validation", "validation": "validation", "valid": "validation",
               "eval": "validation", "evaluation": "validation"}
# common_voice_8_0, mozilla-foundation/common_voice_8_0 -> one key per release; common_voice: no release stated.
COMMON_VOICE_ID = re.compile(r"(?:mozilla-foundation/)?common[_-]voice(?:[_-](\d+)(?:[_-](\d+))?)?", re.IGNORECASE)
COMMON_VOICE_NO_RELEASE = "common_voice"
PERCENT, FRACTION, UNSURE = "percent", "fraction", "unsure"  # the scale of one value of a card
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")  # tr, zh-CN, rm-sursilv, sv_SE


def card_languages(value: Any) -> tuple[list[str] | None, str | None]:
    """(the card's language codes, None), or (None, what is wrong with the card's ``language``)."""
    languages = value if isinstance(value, list) else [value]
    if not any(languages):
        return None, "no language in the YAML header"
    for language in languages:
        if not isinstance(language, str) or not LANGUAGE_CODE.fullmatch(language):
            return None, f"language {language!r} is not a language code (e.g. tr, zh-CN)"
    return languages, None


def _base(code: str) -> str:
    return re.split(r"[-_]", code)[0].lower()  # zh-CN -> zh, hi_in -> hi


def result_config(result) -> str:
    """The result's dataset config: ``config``, else ``args`` when it is a locale (the 2021 cards' ``args: tr``)."""
    config, args = str(result.dataset_config or "").strip(), result.dataset_args
    if not config and isinstance(args, str) and LANGUAGE_CODE.fullmatch(args.strip()):
        config = args.strip()
    return config


def result_language(languages: list[str], config: str) -> tuple[str | None, str | None]:
    """(the row's language, a note or None): the card's language that the dataset config is a locale of (zh for
    zh-CN); the config itself, noted, when it is a locale of none of them (a card in ``ka`` scored on ``kab``:
    the table is the test set's); the card's one language for a config that is no locale (or none). (None, why)
    for a card of several languages whose result does not say which."""
    for language in languages:
        if config and _base(config) == _base(language):
            return language, None
    if config and LANGUAGE_CODE.fullmatch(config):
        return config, (f"the card's language is {', '.join(languages)}, its dataset config {config!r}: "
                        f"filed under {config}")
    if len(languages) == 1:
        return languages[0], None
    which = f"dataset config {config!r} is no locale" if config else "dataset has no config"
    return None, f"the card has several languages ({', '.join(languages)}) and the result's {which}: left out"


def dataset_key(dataset_type: str) -> str:
    """One key per Common Voice release, however the card wrote it; other ids as written."""
    match = COMMON_VOICE_ID.fullmatch(dataset_type.strip())
    if not match:
        return dataset_type.strip()
    major, minor = match.groups()
    return f"mozilla-foundation/common_voice_{int(major)}_{int(minor or 0)}" if major else COMMON_VOICE_NO_RELEASE


def metric_kind(result) -> str | None:
    """'wer', 'cer', or None for a metric the leaderboard does not rank."""
    for text in (result.metric_type, result.metric_name):
        for kind in RANKED_METRICS:
            if re.search(rf"\b{kind}\b", str(text or ""), re.IGNORECASE):
                return kind
    return None


def decoding(result) -> str:
    """LM when the metric's name, config or args say that a language model decoded it ("with LM", "+LM"), greedy
    when they say that none did ("without LM", "no LM", "w/o LM") or say nothing."""
    described = " ".join(str(x) for x in (result.metric_name, result.metric_config, result.metric_args) if x)
    return LM if LM_DECODING.search(NO_LM_DECODING.sub(" ", described)) else GREEDY


def result_split(result) -> tuple[str, str | None, bool]:
    """(split, note or None, whether the split is in doubt): the dataset's split, else the one the metric's name
    says ("Test WER", "Dev WER"); a stated test split whose metric name says another is noted and in doubt; a part
    of a split (:data:`PARTIAL_SPLIT`) is in doubt."""
    stated = str(result.dataset_split or "").strip().lower()
    named = {SPLIT_WORDS[word.lower()] for word in SPLIT_IN_NAME.findall(str(result.metric_name or ""))}
    if not stated:
        if len(named) == 1:
            return named.pop(), SPLIT_FROM_NAME, False
        return "", None, False
    if stated == TEST_SPLIT and named and TEST_SPLIT not in named:  # "Dev WER" on a stated test split
        return stated, f"the metric name {result.metric_name!r} says another split than {stated!r}: not ranked", True
    if PARTIAL_SPLIT.search(stated):  # never ranked: the leaderboard's note says why (leaderboard.rank_table)
        return stated, None, True
    return stated, None, False


def value_scales(values: list[tuple[str, float, bool]], percent_card: bool = False) -> list[str]:
    """The scale of each (kind, value, written with "%") of one card: PERCENT, FRACTION (read x 100) or UNSURE.

    Hub cards write percents (24.37) or fractions (0.2378, the scale of jiwer and evaluate). A value below 1 is
    a fraction when every value of the card is (two or more: WER and CER both below 1 % is not credible), or
    when it is a WER beside values of 1 or more (a WER below 1 % beside percents); any other value below 1 (a
    lone WER, a CER below 1 beside percents: both can be true percents) is UNSURE. Values written with "%",
    and every value of a card written by step 06 (``percent_card``), are percents."""
    all_below_one = len(values) >= 2 and not any(sign or value >= 1 for _, value, sign in values)
    percents_beside = any(sign or value >= 1 for _, value, sign in values)
    scales = []
    for kind, value, sign in values:
        if sign or percent_card or value == 0 or value >= 1:
            scales.append(PERCENT)
        elif all_below_one or (kind == "wer" and percents_beside):
            scales.append(FRACTION)
        else:
            scales.append(UNSURE)
    return scales


def percent(value: Any) -> tuple[float | None, str | None]:
    """(the metric value as a number, a problem or None); text such as "12.3%" is read, with a problem."""
    problem = None
    if isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%"))
        except ValueError:
            return None, f"value {value!r} is not a number"
        problem = f"value written as text {value!r}, read as {number:g}"
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        return None, f"value {value!r} is not a number"
    if not math.isfinite(number) or number < 0:
        return None, f"value {value!r} is not an error rate"
    return number, problem
