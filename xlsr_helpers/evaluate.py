"""Step 05: transcribe the test split, score it (WER/CER with a confidence interval), explain the errors.

The step's parts live in their own modules; this one puts them together and writes the step's files:

* ``inference.py``: the model (``EVAL_MODEL`` or ``04_train/model``: :func:`resolve_model_path`) loaded for
  inference, in the precision of training, and the batch-size-invariant ``Transcriber`` (a clip's text never
  depends on the batch);
* ``lm.py``: optional beam search with an n-gram LM (pyctcdecode + KenLM, see ``LM_INSTALL_HINT``), off by
  default. With an LM, the same logits are decoded both ways (the model runs once): greedy stays the main figure
  of ``metrics.json`` (what the model alone gives), the LM's figures are its ``"lm"`` section;
* ``metrics.py``: WER and CER from jiwer, a 95 % bootstrap confidence interval over utterances, the error
  analysis.

References are normalized by the run's own saved normalizer (02_normalize), as in training.

Outputs in ``<RUN_DIR>/05_evaluate/`` (each written atomically): ``predictions.tsv``, ``metrics.json``,
``errors.json``, and with an LM ``predictions_lm.tsv``. The notebook helpers at the end make its tables and
figure.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .audio import with_audio_feature
from .audio_checks import check_clips_exist
from .files import write_json_atomic, write_text_atomic
from .inference import GREEDY, LM, Transcriber, load_model
from .lm import build_lm_decoder
from .metrics import EvaluationError, compute_metrics, error_analysis, format_percent, utterance_errors

STEP = "05_evaluate"
DECODINGS = {GREEDY: "greedy CTC", LM: "beam search + n-gram LM (pyctcdecode)"}  # metrics.json's "decoding"
PREDICTIONS_FILES = {GREEDY: "predictions.tsv", LM: "predictions_lm.tsv"}
METRIC_SUFFIX = {GREEDY: "", LM: " (n-gram LM)"}  # "Test WER" / "Test WER (n-gram LM)": summary, notebook, card
METRICS_FILE = "metrics.json"
ERRORS_FILE = "errors.json"
COMPARISON_FILE = "comparison.json"  # other models on the same clips (xlsr_helpers.compare)


# ------------------------------------------------------------------------------------------------
# The step
# ------------------------------------------------------------------------------------------------
def resolve_model_path(cfg) -> str:
    """``EVAL_MODEL`` when set (local folder or Hub id), else the run's ``04_train/model``."""
    if cfg.eval_model:
        return str(cfg.eval_model)
    model_dir = Path(cfg.model_dir)
    if not model_dir.exists():
        raise EvaluationError(
            f"No trained model at {model_dir}: run 04_train first, or set EVAL_MODEL to a model folder "
            "or Hub id (it must hold the processor too)."
        )
    return str(model_dir)


@dataclass
class EvaluationResult:
    metrics: dict
    errors: dict
    rows: list[dict]  # per clip: path, reference, prediction, errors, words (greedy)
    lm_rows: list[dict] | None = None  # the same with the n-gram LM's predictions; None without LM_PATH
    out_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        """One line per decoding (greedy first), and a warning when greedy predictions are empty."""
        lines = []
        for decoding, m in metrics_by_decoding(self.metrics).items():
            ci, suffix = m["ci"], METRIC_SUFFIX[decoding]
            lines.append(
                f"Test WER{suffix}: {format_percent(m['wer'])} "
                f"(95% CI {format_percent(ci['wer'][0])}-{format_percent(ci['wer'][1])})  "
                f"CER{suffix}: {format_percent(m['cer'])} "
                f"(95% CI {format_percent(ci['cer'][0])}-{format_percent(ci['cer'][1])})  on {m['n']} clips"
            )
        empty = self.metrics.get("empty_predictions", 0)
        if empty:
            lines.append(f"{empty} of {self.metrics['n']} predictions are empty: the model has not learned to emit "
                         "characters yet (train longer, or check 04_train's curves)")
        return "\n".join(lines)


def load_test_split(cfg, split: str = "test"):
    """The run's normalized split (``02_normalize/dataset``, clips as a 16 kHz ``Audio`` column); a clear error
    when missing or empty, or when its clips are gone (:class:`~xlsr_helpers.audio_checks.ClipsMissingError`)."""
    from datasets import Dataset

    folder = Path(cfg.step_dir("02_normalize")) / "dataset"
    if not folder.exists():
        raise EvaluationError(f"No normalized dataset at {folder}: run 01_load and 02_normalize first.")
    split_dir = folder / split
    if not split_dir.is_dir():
        splits = json.loads((folder / "dataset_dict.json").read_text()).get("splits", []) \
            if (folder / "dataset_dict.json").exists() else []
        raise EvaluationError(f"The run's dataset has no {split!r} split (it has {splits}).")
    empty_message = (
        f"The {split!r} split at {folder} is empty: nothing to evaluate. Check 01_load's report "
        "(filters such as MIN_DURATION_S / MAX_DURATION_S may have dropped every test clip)."
    )
    state = split_dir / "state.json"
    # datasets saves an empty split without data files and cannot load it back (IndexError): say why.
    if state.exists() and not json.loads(state.read_text()).get("_data_files"):
        raise EvaluationError(empty_message)
    dataset = Dataset.load_from_disk(str(split_dir))  # only this split: another empty split cannot break it
    if len(dataset) == 0:
        raise EvaluationError(empty_message)
    check_clips_exist({split: dataset})  # Colab forgets /content after a disconnect: the remedy, not a decoder error
    return with_audio_feature(dataset)


def run_normalizer(cfg) -> Callable[[str], str]:
    """The normalizer saved by 02_normalize, so that references are normalized exactly as in training."""
    from .normalize import load_normalizer

    return load_normalizer(cfg.run_path)


def references_of(dataset, normalizer: Callable[[str], str]) -> list[str]:
    """Normalized references: the raw sentence through the run's normalizer (``sentence`` if no raw)."""
    column = "raw_sentence" if "raw_sentence" in dataset.column_names else "sentence"
    if column not in dataset.column_names:
        raise EvaluationError(f"The test split has no sentence column (columns: {dataset.column_names})")
    return [normalizer(text or "") for text in dataset[column]]


def evaluate(model, processor, dataset, normalizer: Callable[[str], str], *, batch_size: int = 8,
             chunk_length_s: float = 20.0, lm_decoder=None, lm_path: str | Path | None = None,
             out_dir: str | Path | None = None, progress: bool = True, seed: int = 0, n_resamples: int = 1000,
             top: int = 20, extra_metrics: dict | None = None) -> EvaluationResult:
    """Transcribe ``dataset`` (audio + sentence columns), score it, and write the files to ``out_dir``.

    With ``lm_decoder`` (``build_lm_decoder(processor, lm_path)``) the same logits are also decoded with the LM:
    its figures go to ``metrics["lm"]`` (with ``lm_path``, which step 06 ships), its texts to ``lm_rows``."""
    if len(dataset) == 0:
        raise EvaluationError("The test split is empty: nothing to evaluate.")
    references = references_of(dataset, normalizer)
    ids = dataset["id"] if "id" in dataset.column_names else [str(i) for i in range(len(dataset))]
    transcriber = Transcriber(model, processor, batch_size=batch_size, chunk_length_s=chunk_length_s,
                              lm_decoder=lm_decoder, progress=progress)
    started = time.perf_counter()
    texts = transcriber.transcriptions(dataset)  # one forward pass; greedy and (with an LM) beam search
    seconds = time.perf_counter() - started
    predictions = texts[GREEDY]

    metrics = compute_metrics(references, predictions, n_resamples=n_resamples, seed=seed)
    durations = dataset["duration"] if "duration" in dataset.column_names else None
    metrics.update({
        "decoding": DECODINGS[GREEDY],
        "batch_size": batch_size, "chunk_length_s": chunk_length_s,
        "attention_mask": transcriber.masked, "padded_batches": transcriber.pads, "device": str(transcriber.device),
        "dtype": str(transcriber.dtype).replace("torch.", ""), "seconds": round(seconds, 3),
        "clips_per_second": round(len(dataset) / seconds, 3) if seconds > 0 else None,
        "audio_hours": round(sum(durations) / 3600, 4) if durations is not None else None,
        "chunked_clips": int(transcriber.stats["chunked_clips"]),
        "too_short_clips": int(transcriber.stats["too_short"]),
        "empty_predictions": sum(1 for p in predictions if not p.strip()),
        **(extra_metrics or {}),
    })
    lm_rows = None
    if LM in texts:
        metrics[LM] = {
            **compute_metrics(references, texts[LM], n_resamples=n_resamples, seed=seed),
            "decoding": DECODINGS[LM], "lm_path": str(lm_path or ""),
            "beam_search_seconds": round(transcriber.decoder.lm_seconds, 3),
            "empty_predictions": sum(1 for p in texts[LM] if not p.strip()),
        }
        lm_rows = prediction_rows(ids, references, texts[LM])
    errors = error_analysis(ids, references, predictions, top=top)
    result = EvaluationResult(metrics=metrics, errors=errors, rows=prediction_rows(ids, references, predictions),
                              lm_rows=lm_rows)
    if out_dir is not None:
        result.out_dir = Path(out_dir)
        result.files = write_outputs(result, result.out_dir)
    return result


def score_texts(dataset, normalizer: Callable[[str], str], predictions: Sequence[str], *, seed: int = 0,
                n_resamples: int = 1000, top: int = 20, extra_metrics: dict | None = None) -> EvaluationResult:
    """Score texts that something else transcribed (one per clip of ``dataset``, in its order) as :func:`evaluate`
    scores its own: the same references, metrics, intervals, rows and error analysis."""
    if len(predictions) != len(dataset):
        raise EvaluationError(f"{len(predictions)} texts for {len(dataset)} clips.")
    references = references_of(dataset, normalizer)
    ids = dataset["id"] if "id" in dataset.column_names else [str(i) for i in range(len(dataset))]
    metrics = compute_metrics(references, list(predictions), n_resamples=n_resamples, seed=seed)
    metrics.update({"empty_predictions": sum(1 for p in predictions if not p.strip()), **(extra_metrics or {})})
    return EvaluationResult(metrics=metrics, errors=error_analysis(ids, references, list(predictions), top=top),
                            rows=prediction_rows(ids, references, predictions))


def prediction_rows(ids: Sequence[str], references: Sequence[str], predictions: Sequence[str]) -> list[dict]:
    """Per clip: path, reference, prediction, word errors, reference words (the columns of predictions.tsv)."""
    counts = utterance_errors(references, predictions)
    return [
        {"path": str(ids[i]), "reference": references[i], "prediction": predictions[i],
         "errors": int(counts["word_errors"][i]), "words": int(counts["words"][i])}
        for i in range(len(references))
    ]


def run_evaluation(cfg, dataset=None, normalizer=None, progress: bool = True) -> EvaluationResult:
    """Step 05 for a run: model (EVAL_MODEL or 04_train/model), the run's test split and normalizer."""
    model_path = resolve_model_path(cfg)
    model, processor = load_model(model_path, precision=getattr(cfg, "precision", "auto"))
    lm_decoder = build_lm_decoder(processor, cfg.lm_path)
    dataset = load_test_split(cfg) if dataset is None else dataset
    normalizer = run_normalizer(cfg) if normalizer is None else normalizer
    return evaluate(
        model, processor, dataset, normalizer, batch_size=cfg.eval_batch_size,
        chunk_length_s=cfg.chunk_length_s, lm_decoder=lm_decoder, lm_path=cfg.lm_path, out_dir=cfg.step_dir(STEP),
        progress=progress, seed=cfg.seed, extra_metrics={"model": model_path, "split": "test"},
    )


# ------------------------------------------------------------------------------------------------
# The step's files
# ------------------------------------------------------------------------------------------------
def write_outputs(result: EvaluationResult, out_dir: Path) -> dict[str, Path]:
    """``predictions.tsv`` (+ ``predictions_lm.tsv`` with an LM), ``metrics.json``, ``errors.json`` (written
    atomically). A ``predictions_lm.tsv`` of an earlier run with an LM is removed when this one has none, and so
    is a comparison written with an earlier evaluation (the card must not show it next to these numbers)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / COMPARISON_FILE).unlink(missing_ok=True)
    files = {"metrics": out_dir / METRICS_FILE, "errors": out_dir / ERRORS_FILE}
    for decoding, rows in ((GREEDY, result.rows), (LM, result.lm_rows)):
        path = out_dir / PREDICTIONS_FILES[decoding]
        if rows is None:
            path.unlink(missing_ok=True)
            continue
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=["path", "reference", "prediction", "errors", "words"],
                                delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(path, text.getvalue())
        files[path.stem] = path  # "predictions", "predictions_lm"
    write_json_atomic(files["metrics"], result.metrics)
    write_json_atomic(files["errors"], result.errors)
    return files


def read_predictions(path: str | Path) -> list[dict]:
    """Rows of a ``predictions.tsv`` (errors and words as int)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        row["errors"], row["words"] = int(row["errors"]), int(row["words"])
    return rows


def read_transcriptions(out_dir: str | Path) -> dict[str, dict[str, str]]:
    """Step 05's text of every clip per decoding it reported: ``{"greedy": {path: text}, "lm": {...}}``."""
    out = {}
    for decoding, name in PREDICTIONS_FILES.items():
        if (Path(out_dir) / name).exists():
            out[decoding] = {row["path"]: row["prediction"] for row in read_predictions(Path(out_dir) / name)}
    return out


def metrics_by_decoding(metrics: dict) -> dict[str, dict]:
    """The figures of each decoding in a ``metrics.json``: greedy (the top level), and "lm" when there is one."""
    return {GREEDY: metrics} | ({LM: metrics[LM]} if metrics.get(LM) else {})


# ------------------------------------------------------------------------------------------------
# Notebook helpers
# ------------------------------------------------------------------------------------------------
def metrics_table(metrics: dict):
    """WER and CER with their confidence intervals (and with the n-gram LM, when step 05 had one)."""
    import pandas as pd

    rows = []
    for decoding, m in metrics_by_decoding(metrics).items():
        ci, suffix = m["ci"], METRIC_SUFFIX[decoding]
        interval = f"{int(ci['level'] * 100)}% CI (%)"
        for key, units, total, unit in (("wer", "word_errors", "reference_words", "words"),
                                        ("cer", "char_errors", "reference_chars", "characters")):
            rows.append({"metric": key.upper() + suffix, "value (%)": format_percent(m[key]),
                         interval: f"{format_percent(ci[key][0])} – {format_percent(ci[key][1])}",
                         "errors / reference units": f"{m[units]} / {m[total]} {unit}"})
    return pd.DataFrame(rows).set_index("metric")


def decoding_differences(result: EvaluationResult):
    """Every clip whose text the n-gram LM changed, most improved first: reference, greedy, with the LM, and the
    word errors of each (a DataFrame; empty without an LM)."""
    import pandas as pd

    columns = ["path", "reference", "greedy", "with the LM", "errors greedy", "errors with the LM"]
    rows = [
        {"path": g["path"], "reference": g["reference"], "greedy": g["prediction"], "with the LM": l["prediction"],
         "errors greedy": g["errors"], "errors with the LM": l["errors"]}
        for g, l in zip(result.rows, result.lm_rows or []) if g["prediction"] != l["prediction"]
    ]
    rows.sort(key=lambda r: r["errors with the LM"] - r["errors greedy"])
    return pd.DataFrame(rows, columns=columns)


def error_tables(errors: dict) -> dict:
    """Each list of ``errors.json`` as a DataFrame (empty tables keep their columns)."""
    import pandas as pd

    columns = {
        "worst_utterances": ["path", "reference", "prediction", "errors", "words", "wer"],
        "word_substitutions": ["reference", "prediction", "count"], "word_deletions": ["word", "count"],
        "word_insertions": ["word", "count"], "char_confusions": ["reference", "prediction", "count"],
        "char_deletions": ["char", "count"], "char_insertions": ["char", "count"],
    }
    return {name: pd.DataFrame(errors.get(name, []), columns=cols) for name, cols in columns.items()}


def plot_errors(rows: list[dict], durations: Sequence[float] | None = None):
    """Left: per-utterance WER histogram. Right: WER against clip duration (or reference length)."""
    import matplotlib.pyplot as plt

    wers = [r["errors"] / max(r["words"], 1) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.hist(np.clip(wers, 0, 2), bins=20, color="tab:blue")
    left.set_xlabel("utterance WER (clipped at 2)")
    left.set_ylabel("clips")
    x = list(durations) if durations is not None else [r["words"] for r in rows]
    right.scatter(x, wers, s=12, alpha=0.7, color="tab:orange")
    right.set_xlabel("duration (s)" if durations is not None else "reference words")
    right.set_ylabel("utterance WER")
    fig.tight_layout()
    return fig
