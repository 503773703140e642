"""WER and CER, their confidence intervals, and what the errors are: the scoring of steps 04, 05 and compare.

* Corpus WER and CER are jiwer's: all errors over all reference words (characters), never a mean of
  per-utterance rates (:func:`error_rates`, which training's evaluations use too).
* Per utterance, the errors and reference lengths come from jiwer's alignment (:func:`utterance_errors`).
* One bootstrap (:func:`bootstrap_ci`): utterances resampled with replacement, the corpus rate computed on each
  resample, its percentile interval. With a second system's errors it is *paired* (the same draw for both, the
  difference of the two rates), as ``compare.py`` needs (:func:`paired_bootstrap`).
* The error analysis counts word substitutions, deletions, insertions and character confusions from the same
  jiwer alignments (:func:`error_analysis`).

Nothing here imports torch or a step's module, so training can import it.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np


class EvaluationError(ValueError):
    """A problem with the model, the data or the settings of an evaluation, said in plain words."""


# ------------------------------------------------------------------------------------------------
# Error rates
# ------------------------------------------------------------------------------------------------
def error_rates(references: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
    """Corpus WER and CER (jiwer: errors over all pairs / reference words or characters) and the share of
    empty predictions; NaN when no reference has a word."""
    import jiwer

    refs, preds = list(references), list(predictions)
    if len(refs) != len(preds):
        raise ValueError(f"{len(refs)} references but {len(preds)} predictions")
    if not any(r.strip() for r in refs):
        return {"wer": float("nan"), "cer": float("nan"), "empty_share": float("nan")}
    return {
        "wer": float(jiwer.wer(refs, preds)),
        "cer": float(jiwer.cer(refs, preds)),
        "empty_share": sum(1 for p in preds if not p.strip()) / len(preds),
    }


def utterance_errors(references: Sequence[str], predictions: Sequence[str]) -> dict[str, np.ndarray]:
    """Per utterance: word errors, reference words, character errors, reference characters (jiwer)."""
    import jiwer

    _check_pairs(references, predictions)
    words = jiwer.process_words(list(references), list(predictions))
    chars = jiwer.process_characters(list(references), list(predictions))
    return {
        "word_errors": np.array([_chunk_errors(a) for a in words.alignments], dtype=np.int64),
        "words": np.array([len(r) for r in words.references], dtype=np.int64),
        "char_errors": np.array([_chunk_errors(a) for a in chars.alignments], dtype=np.int64),
        "chars": np.array([len(r) for r in chars.references], dtype=np.int64),
    }


def _check_pairs(references: Sequence[str], predictions: Sequence[str]) -> None:
    if len(references) != len(predictions):
        raise EvaluationError(f"{len(references)} references but {len(predictions)} predictions")
    if not references:
        raise EvaluationError("Nothing to score: the test split is empty.")
    if not any(r.strip() for r in references):
        raise EvaluationError("Every reference is empty after normalization: nothing to score.")


def _chunk_errors(alignment) -> int:
    """Errors of one utterance from its jiwer alignment chunks (jiwer reports only corpus totals)."""
    errors = 0
    for chunk in alignment:
        if chunk.type == "insert":
            errors += chunk.hyp_end_idx - chunk.hyp_start_idx
        elif chunk.type in ("delete", "substitute"):
            errors += chunk.ref_end_idx - chunk.ref_start_idx
    return errors


# ------------------------------------------------------------------------------------------------
# Bootstrap
# ------------------------------------------------------------------------------------------------
# numpy, not scipy.stats.bootstrap: scipy is not a dependency of the package (nor installed with it), and its
# bootstrap refuses a sample of one observation (a one-clip test split), where this interval is the rate itself.
def bootstrap_ci(errors: np.ndarray, totals: np.ndarray, n_resamples: int = 1000, level: float = 0.95,
                 seed: int = 0, minus: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of sum(errors)/sum(totals), resampling utterances with replacement.

    With ``minus`` (another system's errors on the same utterances) the interval is of the difference
    rate(errors) - rate(minus), each resample drawing the same utterances for both: a paired bootstrap."""
    series = [np.asarray(errors, dtype=np.float64)] + ([] if minus is None else [np.asarray(minus, dtype=np.float64)])
    totals = np.asarray(totals, dtype=np.float64)
    n = len(totals)
    if any(len(s) != n for s in series):
        raise EvaluationError("the bootstrap needs per-utterance errors and totals of equal length "
                              f"(got {', '.join(str(len(s)) for s in series)} and {n})")
    if n == 0:
        raise EvaluationError("No utterances to bootstrap")
    draws = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    numerators = series[0][draws].sum(axis=1)
    if minus is not None:
        numerators = numerators - series[1][draws].sum(axis=1)
    rates = numerators / np.maximum(totals[draws].sum(axis=1), 1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(rates, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap(errors_a: np.ndarray, errors_b: np.ndarray, totals: np.ndarray, n_resamples: int = 1000,
                     level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(difference, low, high)`` of rate(A) - rate(B), rate = sum(errors) / sum(totals), with a percentile
    interval from resampling utterances with replacement (the same utterances for A and B)."""
    low, high = bootstrap_ci(errors_a, totals, n_resamples, level, seed, minus=errors_b)
    difference = float((np.sum(errors_a, dtype=np.float64) - np.sum(errors_b, dtype=np.float64))
                       / max(np.sum(totals, dtype=np.float64), 1))
    return difference, low, high


# ------------------------------------------------------------------------------------------------
# The figures of a test set
# ------------------------------------------------------------------------------------------------
def compute_metrics(references: Sequence[str], predictions: Sequence[str], n_resamples: int = 1000,
                    level: float = 0.95, seed: int = 0) -> dict:
    """Corpus WER and CER (jiwer's definitions), with bootstrap confidence intervals over utterances."""
    counts = utterance_errors(references, predictions)
    rates = error_rates(references, predictions)
    wer, cer = rates["wer"], rates["cer"]
    ci = {
        "level": level, "n_resamples": n_resamples, "seed": seed,
        "wer": list(bootstrap_ci(counts["word_errors"], counts["words"], n_resamples, level, seed)),
        "cer": list(bootstrap_ci(counts["char_errors"], counts["chars"], n_resamples, level, seed)),
    }
    return {
        "wer": wer, "cer": cer, "ci": ci, "n": len(references),
        "reference_words": int(counts["words"].sum()), "word_errors": int(counts["word_errors"].sum()),
        "reference_chars": int(counts["chars"].sum()), "char_errors": int(counts["char_errors"].sum()),
        "empty_references": int(sum(1 for r in references if not r.strip())),
    }


def format_percent(value: float) -> str:
    """0.2512 -> '25.12' (the seed printed WER this way)."""
    return f"{100 * value:.2f}"


# ------------------------------------------------------------------------------------------------
# Error analysis
# ------------------------------------------------------------------------------------------------
def error_analysis(ids: Sequence[str], references: Sequence[str], predictions: Sequence[str],
                   top: int = 20) -> dict:
    """Worst utterances, most frequent word substitutions/deletions/insertions, character confusions."""
    import jiwer

    _check_pairs(references, predictions)
    words = jiwer.process_words(list(references), list(predictions))
    chars = jiwer.process_characters(list(references), list(predictions))
    substitutions, deletions, insertions = _count_chunks(words)
    confusions, char_deletions, char_insertions = _count_chunks(chars)

    per_utterance = []
    for i, (ref_words, alignment) in enumerate(zip(words.references, words.alignments)):
        errors = _chunk_errors(alignment)
        per_utterance.append({
            "path": str(ids[i]), "reference": references[i], "prediction": predictions[i], "errors": errors,
            "words": len(ref_words), "wer": errors / max(len(ref_words), 1),
        })
    worst = sorted(per_utterance, key=lambda r: (-r["wer"], -r["errors"], r["path"]))[:top]

    def table(counter: Counter, keys: tuple[str, ...]) -> list[dict]:
        rows = []
        for key, count in counter.most_common(top):
            key = key if isinstance(key, tuple) else (key,)
            rows.append({**dict(zip(keys, key)), "count": count})
        return rows

    return {
        "worst_utterances": worst,
        "word_substitutions": table(substitutions, ("reference", "prediction")),
        "word_deletions": table(deletions, ("word",)),
        "word_insertions": table(insertions, ("word",)),
        "char_confusions": table(confusions, ("reference", "prediction")),
        "char_deletions": table(char_deletions, ("char",)),
        "char_insertions": table(char_insertions, ("char",)),
    }


def _count_chunks(output) -> tuple[Counter, Counter, Counter]:
    """Substitutions ``(reference, prediction)``, deletions and insertions of a jiwer output, token by token.

    Not ``jiwer.collect_error_counts``: it counts a chunk of several tokens as one joined entry ("bir iki" ->
    "bin ikiz"), where the tables here count each word (character) pair on its own."""
    substitutions, deletions, insertions = Counter(), Counter(), Counter()
    for ref, hyp, alignment in zip(output.references, output.hypotheses, output.alignments):
        for chunk in alignment:
            refs, hyps = ref[chunk.ref_start_idx : chunk.ref_end_idx], hyp[chunk.hyp_start_idx : chunk.hyp_end_idx]
            if chunk.type == "substitute":  # a chunk may span several tokens: count them pairwise
                substitutions.update(zip(refs, hyps))
            elif chunk.type == "delete":
                deletions.update(refs)
            elif chunk.type == "insert":
                insertions.update(hyps)
    return substitutions, deletions, insertions
