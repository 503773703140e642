"""Compare models on one test set: is model A really better than model B?

Every model is scored on the same clips (the run's test split) against the same references (normalized by the
run's own saved normalizer), with the same batch-size-invariant transcription as step 05. A difference in WER
between two models on a few hundred clips is often noise, so each pair gets a **paired bootstrap** interval
of the difference (``metrics.paired_bootstrap``): the utterances are resampled with replacement (the same draw
for both models, which is what makes it paired), the difference of the two corpus error rates is computed on
each resample, and its 95 % percentile interval says whether the difference could be zero. An interval entirely
below zero means the first model is better on this test set; one that contains zero means the test set cannot
tell them apart.

The primary metric is WER, or CER for character-based languages (no spaces between words: zh, ja, yue, th),
as the normalizer's language profile says.

A model whose vocabulary cannot write some characters of the references can never get those right: it is
flagged with the characters and their share of the reference characters (a model of another language or an
older normalization, for example).

Models are named by a run folder (its ``04_train/model``), a model folder, an upload folder, or a Hub id.
Output: ``05_evaluate/comparison.json`` (read by the model card: "baseline vs fine-tuned").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .constants import RUN_FILE
from .evaluate import COMPARISON_FILE, EvaluationResult, evaluate, load_test_split, run_normalizer
from .files import write_json_atomic
from .inference import load_model
from .metrics import EvaluationError, format_percent, paired_bootstrap, utterance_errors
from .normalize import WORD_DELIMITER, primary_metric

METRICS = ("wer", "cer")
UNITS = {"wer": ("word_errors", "words"), "cer": ("char_errors", "chars")}  # utterance_errors' arrays


# ------------------------------------------------------------------------------------------------
# Which model a name means
# ------------------------------------------------------------------------------------------------
def resolve_model(spec: str) -> tuple[str, str]:
    """``(label, path or Hub id)`` of a model named by a run folder, a model folder or a Hub id."""
    spec = str(spec).strip()
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / RUN_FILE).exists():  # a run folder: its trained model
            model = path / "04_train" / "model"
            if not model.is_dir():
                raise EvaluationError(f"The run folder {path} has no trained model ({model}): run its 04_train first.")
            return f"run {path.name}", str(model)
        return path.name, str(path)
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise EvaluationError(f"{spec!r} is not a model folder, a run folder or a Hub id (user/model).")
    return spec, spec  # a Hub id: transformers says when it does not exist


def model_specs(text: str | Sequence[str]) -> list[str]:
    """``COMPARE_WITH`` ("a, b") or a list, as a list of non-empty names."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return [item.strip() for item in items if str(item).strip()]


def unwritable_characters(tokenizer, references: Sequence[str]) -> Counter:
    """Characters of the references (spaces aside) that the tokenizer's vocabulary has no token for."""
    vocab = set(tokenizer.get_vocab())
    delimiter = getattr(tokenizer, "word_delimiter_token", WORD_DELIMITER)
    writable = {token for token in vocab if len(token) == 1 and token != delimiter}
    return Counter(ch for text in references for ch in text if not ch.isspace() and ch not in writable)


def verdict(low: float, high: float, a: str, b: str) -> str:
    """What a paired interval of rate(a) - rate(b) says (``metrics.paired_bootstrap``)."""
    if high < 0:
        return f"{a} is better"
    if low > 0:
        return f"{b} is better"
    return "no clear difference"


# ------------------------------------------------------------------------------------------------
# The comparison
# ------------------------------------------------------------------------------------------------
@dataclass
class Comparison:
    language: str
    metric: str  # the primary metric: wer, or cer for character-based languages
    models: list[dict]  # per model: label, model, wer, cer, their intervals, n, empty predictions, unwritable chars
    pairs: list[dict]  # per pair (a, b): for wer and cer the difference a - b, its interval, the verdict
    n: int
    level: float = 0.95
    n_resamples: int = 1000
    predictions: dict[str, list[str]] = field(default_factory=dict)  # label -> text per clip (not written)

    def to_dict(self) -> dict:
        return {"language": self.language, "metric": self.metric, "n": self.n, "level": self.level,
                "n_resamples": self.n_resamples, "models": self.models, "pairs": self.pairs}

    def write(self, out_dir: str | Path) -> Path:
        return write_json_atomic(Path(out_dir) / COMPARISON_FILE, self.to_dict())

    def models_table(self):
        """One row per model, best first by the primary metric."""
        import pandas as pd

        level = f"{int(self.level * 100)}% CI"
        rows = []
        for m in sorted(self.models, key=lambda m: m[self.metric]):
            rows.append({
                "model": m["label"], "WER (%)": format_percent(m["wer"]),
                f"WER {level}": f"{format_percent(m['wer_ci'][0])} – {format_percent(m['wer_ci'][1])}",
                "CER (%)": format_percent(m["cer"]),
                f"CER {level}": f"{format_percent(m['cer_ci'][0])} – {format_percent(m['cer_ci'][1])}",
                "empty predictions": m["empty_predictions"],
                "cannot write": "".join(sorted(m["unwritable"])) or "—",
            })
        return pd.DataFrame(rows).set_index("model")

    def pairs_table(self):
        """One row per pair: the difference of the primary metric (A - B, points) and its interval."""
        import pandas as pd

        key = self.metric
        rows = [{"A": p["a"], "B": p["b"], f"{key.upper()} A - B (points)": f"{100 * p[key]['difference']:+.2f}",
                 f"{int(self.level * 100)}% CI (points)": f"{100 * p[key]['low']:+.2f} – {100 * p[key]['high']:+.2f}",
                 "verdict": p[key]["verdict"]} for p in self.pairs]
        return pd.DataFrame(rows)


def compare_results(results: dict[str, EvaluationResult], tokenizers: dict[str, object], language: str,
                    sources: dict[str, str] | None = None, n_resamples: int = 1000, level: float = 0.95,
                    seed: int = 0) -> Comparison:
    """A Comparison of step 05 results that scored the same clips (same paths, same references, same order)."""
    labels = list(results)
    if len(labels) < 2:
        raise EvaluationError("A comparison needs at least two models.")
    first = results[labels[0]].rows
    references = [row["reference"] for row in first]
    for label in labels[1:]:
        rows = results[label].rows
        if [r["path"] for r in rows] != [r["path"] for r in first] or [r["reference"] for r in rows] != references:
            raise EvaluationError(f"{label} was scored on other clips or references than {labels[0]}: "
                                  "a comparison needs the same test set.")
    counts = {label: utterance_errors(references, [r["prediction"] for r in results[label].rows]) for label in labels}
    models = []
    for label in labels:
        metrics = results[label].metrics
        missing = unwritable_characters(tokenizers[label], references)
        models.append({
            "label": label, "model": (sources or {}).get(label, label), "n": metrics["n"],
            "wer": metrics["wer"], "cer": metrics["cer"], "wer_ci": metrics["ci"]["wer"], "cer_ci": metrics["ci"]["cer"],
            "empty_predictions": metrics.get("empty_predictions", 0),
            "unwritable": dict(missing.most_common()),
            "unwritable_share": sum(missing.values()) / max(int(counts[label]["chars"].sum()), 1),
        })
    pairs = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            pair = {"a": a, "b": b}
            for metric in METRICS:
                errors, totals = UNITS[metric]
                difference, low, high = paired_bootstrap(counts[a][errors], counts[b][errors], counts[a][totals],
                                                         n_resamples, level, seed)
                pair[metric] = {"difference": difference, "low": low, "high": high, "verdict": verdict(low, high, a, b)}
            pairs.append(pair)
    return Comparison(language=language, metric=primary_metric(language), models=models, pairs=pairs,
                      n=len(references), level=level, n_resamples=n_resamples,
                      predictions={label: [r["prediction"] for r in results[label].rows] for label in labels})


def score_model(spec: str, dataset, normalizer: Callable[[str], str], *, batch_size: int = 8,
                chunk_length_s: float = 20.0, precision: str = "auto", seed: int = 0,
                progress: bool = True) -> tuple[str, str, EvaluationResult, object]:
    """``(label, model, result, tokenizer)``: one model transcribed and scored on ``dataset`` (greedy)."""
    label, model_path = resolve_model(spec)
    model, processor = load_model(model_path, precision=precision)
    result = evaluate(model, processor, dataset, normalizer, batch_size=batch_size, chunk_length_s=chunk_length_s,
                      progress=progress, seed=seed, extra_metrics={"model": model_path})
    del model
    return label, model_path, result, processor.tokenizer


def compare_models(cfg, specs: Sequence[str], dataset=None, normalizer=None, own: tuple | None = None,
                   progress: bool = True) -> Comparison:
    """Score ``specs`` on the run's test split with its normalizer, next to ``own`` when given (step 05's
    ``(label, model, result, tokenizer)``: its rows are the greedy ones, also with an LM), and compare every
    pair. Every model of a comparison is decoded greedily."""
    dataset = load_test_split(cfg) if dataset is None else dataset
    normalizer = run_normalizer(cfg) if normalizer is None else normalizer
    options = dict(batch_size=cfg.eval_batch_size, chunk_length_s=cfg.chunk_length_s, precision=cfg.precision,
                   seed=cfg.seed, progress=progress)
    scored = [own] if own is not None else []
    scored += [score_model(spec, dataset, normalizer, **options) for spec in specs]
    results, sources, tokenizers = {}, {}, {}
    for label, model_path, result, tokenizer in scored:
        while label in results:  # two folders of the same name
            label += "'"
        results[label], sources[label], tokenizers[label] = result, model_path, tokenizer
    return compare_results(results, tokenizers, cfg.language, sources, seed=cfg.seed)


def plot_differences(comparison: Comparison):
    """Each pair's difference of the primary metric with its interval; the dashed line is "no difference"."""
    import matplotlib.pyplot as plt

    key = comparison.metric
    pairs = comparison.pairs
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(pairs)))
    for y, pair in enumerate(pairs):
        d = pair[key]
        color = "tab:gray" if d["low"] <= 0 <= d["high"] else "tab:green" if d["high"] < 0 else "tab:red"
        ax.errorbar(100 * d["difference"], y, xerr=[[100 * (d["difference"] - d["low"])], [100 * (d["high"] - d["difference"])]],
                    fmt="o", color=color, capsize=4)
    ax.axvline(0, color="black", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(pairs)), [f"{p['a']} − {p['b']}" for p in pairs])
    ax.set_xlabel(f"{key.upper()} difference (points), {int(comparison.level * 100)} % paired bootstrap interval")
    ax.invert_yaxis()
    fig.tight_layout()
    return fig
