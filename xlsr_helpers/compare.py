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

Models are named by a run folder (its ``04_train/model``), a model folder, an upload folder, or a Hub id, with
``@lang`` for an MMS adapter model's language (``facebook/mms-1b-all@tur``: its adapter and vocabulary). A CTC model
is transcribed as step 05 transcribes (greedy; a processor that needs the n-gram LM packages without them falls back
to the plain one). Any other model that transformers' ASR pipeline runs — Whisper and other sequence-to-sequence
models, Parakeet TDT, ... — is transcribed by that pipeline, and its text is passed through the run's normalizer, as
the references are (such a model writes cased, punctuated text): the table says which models' hypotheses were
normalized. A model that cannot transcribe at all (a pre-trained encoder without a CTC head or tokenizer, such as
``facebook/mms-300m``) is skipped with its reason, listed in the comparison, never silently dropped.

When step 03 kept MODEL's own vocabulary (``VOCABULARY="model"``: the base checkpoint already writes the language),
the base checkpoint itself is scored too, zero-shot, on the same clips: the comparison then says what fine-tuning
added (:func:`baseline_spec`).

Output: ``05_evaluate/comparison.json`` (read by the model card: "baseline vs fine-tuned").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .audio import audio_array
from .constants import RUN_FILE, SAMPLING_RATE
from .evaluate import COMPARISON_FILE, EvaluationResult, evaluate, load_test_split, run_normalizer, score_texts
from .families import FamilyError, read_config_json, target_lang
from .files import write_json_atomic
from .inference import load_model, pick_device
from .metrics import EvaluationError, format_percent, paired_bootstrap, utterance_errors
from .model_vocab import keeps_model_vocabulary, writes
from .normalize import primary_metric

METRICS = ("wer", "cer")
# How each model's text was made, as the comparison table says it.
HYPOTHESES = {"ctc": "greedy CTC, as the model writes", "pipeline": "ASR pipeline, normalized by this run's normalizer"}
UNITS = {"wer": ("word_errors", "words"), "cer": ("char_errors", "chars")}  # utterance_errors' arrays


# ------------------------------------------------------------------------------------------------
# Which model a name means
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """A model of a comparison: its label, the folder or Hub id to load, and an MMS adapter's language."""

    label: str
    model: str
    target_lang: str | None = None
    baseline: bool = False  # the run's base checkpoint, scored zero-shot


def resolve_model(spec: str) -> tuple[str, str]:
    """``(label, path or Hub id)`` of a model named by a run folder, a model folder or a Hub id."""
    parsed = parse_spec(spec)
    return parsed.label, parsed.model


def parse_spec(spec: str) -> ModelSpec:
    """A COMPARE_WITH item: a run folder (its trained model), a model folder or a Hub id, each with an optional
    ``@lang`` (an MMS adapter model's language)."""
    spec = str(spec).strip()
    language = None
    if "@" in spec and not Path(spec).expanduser().exists():
        spec, language = (part.strip() for part in spec.rsplit("@", 1))
        if not spec or not language or "/" in language:
            raise EvaluationError(f"{spec}@{language}: write a model and an adapter language, e.g. "
                                  "facebook/mms-1b-all@tur.")
    suffix = f"@{language}" if language else ""
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / RUN_FILE).exists():  # a run folder: its trained model
            model = path / "04_train" / "model"
            if not model.is_dir():
                raise EvaluationError(f"The run folder {path} has no trained model ({model}): run its 04_train first.")
            return ModelSpec(f"run {path.name}{suffix}", str(model), language)
        return ModelSpec(path.name + suffix, str(path), language)
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise EvaluationError(f"{spec!r} is not a model folder, a run folder or a Hub id (user/model).")
    return ModelSpec(spec + suffix, spec, language)  # a Hub id: transformers says when it does not exist


def model_specs(text: str | Sequence[str]) -> list[str]:
    """``COMPARE_WITH`` ("a, b") or a list, as a list of non-empty names."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return [item.strip() for item in items if str(item).strip()]


def baseline_spec(cfg) -> ModelSpec | None:
    """The run's base checkpoint, to be scored zero-shot next to the fine-tuned model: when step 03 kept its own
    vocabulary (it already writes the language) and step 05 evaluates this run's model; None otherwise."""
    if cfg.eval_model or cfg.is_tiny() or not keeps_model_vocabulary(cfg):
        return None
    language = target_lang(cfg)
    name = Path(cfg.model).name if Path(cfg.model).expanduser().is_dir() else cfg.model
    return ModelSpec(f"{name}{'@' + language if language else ''} (base, zero-shot)", cfg.model, language,
                     baseline=True)


def unwritable_characters(tokenizer, references: Sequence[str]) -> Counter:
    """Characters of the references (spaces aside) that the tokenizer cannot write (``model_vocab.writes``: encoded
    and decoded, they are not themselves or hold the unknown token), with their counts."""
    counts = Counter(ch for text in references for ch in text if not ch.isspace())
    ordered = sorted(counts)
    return Counter({ch: counts[ch] for ch, ok in zip(ordered, writes(tokenizer, ordered)) if not ok})


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
    skipped: list[dict] = field(default_factory=list)  # models that could not be scored: label, model, why

    def to_dict(self) -> dict:
        return {"language": self.language, "metric": self.metric, "n": self.n, "level": self.level,
                "n_resamples": self.n_resamples, "models": self.models, "pairs": self.pairs, "skipped": self.skipped}

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
                "hypotheses": HYPOTHESES[m.get("scored_with", "ctc")],
            })
        return pd.DataFrame(rows).set_index("model")

    def skipped_table(self):
        """The models that could not be scored, and why."""
        import pandas as pd

        return pd.DataFrame(self.skipped, columns=["label", "model", "why"])

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
                    seed: int = 0, details: dict[str, dict] | None = None) -> Comparison:
    """A Comparison of step 05 results that scored the same clips (same paths, same references, same order);
    ``details``: per label what else the models table says (``scored_with``, ``baseline``)."""
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
        missing = unwritable_characters(tokenizers[label], references) if tokenizers.get(label) else Counter()
        models.append({
            "scored_with": "ctc", "baseline": False, **(details or {}).get(label, {}),
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


@dataclass
class Scored:
    label: str
    model: str
    result: EvaluationResult
    tokenizer: object
    scored_with: str = "ctc"  # "ctc" (step 05's transcriber) | "pipeline" (transformers' ASR pipeline)
    baseline: bool = False


def architectures_of(model: str) -> list[str] | None:
    """The ``architectures`` of MODEL's config.json; None when it cannot be read."""
    try:
        config, _ = read_config_json(model, download=True)
    except (FamilyError, OSError, ValueError):
        return None
    return [str(a) for a in (config or {}).get("architectures") or []]


def score_model(spec: str | ModelSpec, dataset, normalizer: Callable[[str], str], *, batch_size: int = 8,
                chunk_length_s: float = 20.0, precision: str = "auto", seed: int = 0, progress: bool = True,
                language: str = "") -> Scored:
    """One model transcribed and scored on ``dataset``: a CTC model greedily, as step 05; any other through the
    ASR pipeline (:func:`score_with_pipeline`). Raises EvaluationError when it cannot transcribe."""
    spec = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
    architectures = architectures_of(spec.model)
    if architectures and not any(a.endswith("ForCTC") for a in architectures):
        if any(a.endswith(("ForPreTraining", "Model")) for a in architectures):
            raise EvaluationError(f"{spec.model} is a pre-trained encoder ({', '.join(architectures)}) without a CTC "
                                  "head or tokenizer: it writes nothing until it is fine-tuned (compare a run that "
                                  "fine-tuned it instead).")
        return score_with_pipeline(spec, dataset, normalizer, batch_size=batch_size, seed=seed, language=language)
    model, processor = load_model(spec.model, precision=precision, target_lang=spec.target_lang)
    result = evaluate(model, processor, dataset, normalizer, batch_size=batch_size, chunk_length_s=chunk_length_s,
                      progress=progress, seed=seed, extra_metrics={"model": spec.model})
    del model
    return Scored(spec.label, spec.model, result, processor.tokenizer, "ctc", spec.baseline)


def score_with_pipeline(spec: ModelSpec, dataset, normalizer: Callable[[str], str], *, batch_size: int = 8,
                        seed: int = 0, language: str = "") -> Scored:
    """A model that transformers' ASR pipeline runs (Whisper, Parakeet TDT, ...): each clip transcribed by the
    pipeline, its text normalized by the run's normalizer (as the references are), then scored as step 05 scores.
    Whisper is told the language (``language``, the run's locale) when its generation config knows it. Clips are
    passed whole: the curriculum's clips are shorter than MAX_DURATION_S (20 s), within Whisper's 30 s window."""
    from transformers import pipeline

    try:
        asr = pipeline("automatic-speech-recognition", model=spec.model, device=pick_device())
    except Exception as error:  # noqa: BLE001 - any reason the pipeline cannot be built: said, the model skipped
        raise EvaluationError(f"{spec.model} has no CTC head, and transformers' ASR pipeline cannot run it: "
                              f"{type(error).__name__}: {str(error)[:300]}") from error
    kwargs = {}
    lang_to_id = getattr(getattr(asr.model, "generation_config", None), "lang_to_id", None) or {}
    code = language.split("-")[0]
    if asr.type == "seq2seq_whisper" and f"<|{code}|>" in lang_to_id:
        kwargs["generate_kwargs"] = {"language": code, "task": "transcribe"}
    arrays = [{"raw": audio_array(item), "sampling_rate": SAMPLING_RATE} for item in dataset["audio"]]
    outputs = asr(arrays, batch_size=batch_size, **kwargs)
    texts = [normalizer(out["text"]) for out in outputs]
    result = score_texts(dataset, normalizer, texts, seed=seed,
                         extra_metrics={"model": spec.model, "decoding": f"ASR pipeline ({asr.type}), normalized"})
    return Scored(spec.label, spec.model, result, asr.tokenizer, "pipeline", spec.baseline)


def compare_models(cfg, specs: Sequence[str | ModelSpec], dataset=None, normalizer=None, own: tuple | None = None,
                   progress: bool = True, baseline: bool = True) -> Comparison:
    """Score ``specs`` (and, with ``baseline``, the run's base checkpoint zero-shot: :func:`baseline_spec`) on the
    run's test split with its normalizer, next to ``own`` when given (step 05's ``(label, model, result,
    tokenizer)``: its rows are the greedy ones, also with an LM), and compare every pair. A model that cannot be
    scored is listed in ``skipped`` with the reason. Every CTC model of a comparison is decoded greedily."""
    dataset = load_test_split(cfg) if dataset is None else dataset
    normalizer = run_normalizer(cfg) if normalizer is None else normalizer
    options = dict(batch_size=cfg.eval_batch_size, chunk_length_s=cfg.chunk_length_s, precision=cfg.precision,
                   seed=cfg.seed, progress=progress, language=cfg.language)
    wanted = [spec if isinstance(spec, ModelSpec) else parse_spec(spec) for spec in specs]
    base = baseline_spec(cfg) if baseline else None
    if base is not None and all((s.model, s.target_lang) != (base.model, base.target_lang) for s in wanted):
        wanted.insert(0, base)
    scored = [Scored(*own) if own is not None else None]
    skipped = []
    for spec in wanted:
        try:
            scored.append(score_model(spec, dataset, normalizer, **options))
        except (EvaluationError, OSError, ValueError) as error:
            skipped.append({"label": spec.label, "model": spec.model, "why": str(error)[:500]})
    scored = [s for s in scored if s is not None]
    results, sources, tokenizers, details = {}, {}, {}, {}
    for item in scored:
        label = item.label
        while label in results:  # two folders of the same name
            label += "'"
        results[label], sources[label], tokenizers[label] = item.result, item.model, item.tokenizer
        details[label] = {"scored_with": item.scored_with, "baseline": item.baseline}
    if len(results) < 2:
        return Comparison(language=cfg.language, metric=primary_metric(cfg.language), models=[], pairs=[],
                          n=len(dataset), skipped=skipped)
    comparison = compare_results(results, tokenizers, cfg.language, sources, seed=cfg.seed, details=details)
    comparison.skipped = skipped
    return comparison


def run_comparison(cfg, own: tuple, dataset=None, normalizer=None, progress: bool = True) -> Comparison | None:
    """Step 05's comparison: COMPARE_WITH and, when step 03 kept the base model's vocabulary, the base model
    zero-shot; written to ``05_evaluate/comparison.json``. None when there is nothing to compare with."""
    specs = model_specs(cfg.compare_with)
    if not specs and baseline_spec(cfg) is None:
        return None
    comparison = compare_models(cfg, specs, dataset=dataset, normalizer=normalizer, own=own, progress=progress)
    comparison.write(cfg.step_dir("05_evaluate"))
    return comparison


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
