"""Many languages in one go: the curriculum once per language, each in its own run folder, one table at the end.

This is what the 2021 fine-tuning week did by hand ("state-of-the-art speech recognition in as many languages as
possible"). On the built-in synthetic data with the tiny model it is the CPU rehearsal of the event; on a GPU with
MMS-1b-all adapters (``MODEL=facebook/mms-1b-all``: one base model, a small adapter per language) it is the cheap
way to cover many languages.

A language that fails (an unknown code, a source without a test split, a training error) is reported with the
step and the error, and the sweep goes on with the next one: one bad language never costs the others.

    xlsr run --language tr,de,fr --source synthetic --model tiny [--run-dir ROOT]
    -> ROOT/tr, ROOT/de, ROOT/fr (default ROOT: runs/), and ROOT/sweep.md + sweep.csv
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from .config import resolve_run_dir
from .files import write_text_atomic
from .normalize import primary_metric

SWEEP_FILES = ("sweep.md", "sweep.csv")
COLUMNS = ("language", "status", "failed_step", "error", "wer", "cer", "metric", "test_clips", "minutes", "run_dir")


@dataclass
class LanguageOutcome:
    language: str
    run_dir: str
    status: str  # ok | failed
    failed_step: str = ""
    error: str = ""
    wer: float | None = None
    cer: float | None = None
    metric: str = "wer"  # the one to read: cer for languages written without spaces
    test_clips: int | None = None
    minutes: float = 0.0


def languages_of(text: str | Iterable[str]) -> list[str]:
    """``"tr, de,fr"`` -> ``["tr", "de", "fr"]`` (duplicates dropped, order kept)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))


def sweep_root(run_dir: str | Path = "") -> Path:
    """Where the languages' run folders go: RUN_DIR when given, else the folder that holds runs/<language>."""
    return Path(run_dir).expanduser().resolve() if run_dir else resolve_run_dir("", "language").parent


def run_sweep(languages: Iterable[str], parameters: dict[str, Any], steps=None, root: str | Path = "",
              cell_timeout_s: int | None = None, progress: bool = True, log=print) -> list[LanguageOutcome]:
    """The chosen steps for each language in ``root/<language>``; never stops at a failing language.
    ``cell_timeout_s``: seconds a notebook cell may run (None: no limit, the default: training takes hours)."""
    from .pipeline import StepFailed, run_pipeline

    root = sweep_root(root)
    outcomes = []
    for language in languages_of(languages):
        run_dir = root / language
        started = time.perf_counter()
        outcome = LanguageOutcome(language=language, run_dir=str(run_dir), status="ok",
                                  metric=primary_metric(language))
        log(f"\n=== {language}: {run_dir}")
        try:
            result = run_pipeline({**parameters, "LANGUAGE": language, "RUN_DIR": str(run_dir)}, steps=steps,
                                  cell_timeout_s=cell_timeout_s, progress=progress)
            evaluation = result.results.get("05_evaluate", {})
            outcome.wer, outcome.cer, outcome.test_clips = (evaluation.get(k) for k in ("wer", "cer", "n"))
        except StepFailed as error:
            outcome.status, outcome.failed_step, outcome.error = "failed", error.step, error.error
        except Exception as error:  # noqa: BLE001 - before any notebook ran (bad parameters, a missing notebook)
            outcome.status, outcome.failed_step = "failed", "(set-up)"
            outcome.error = f"{type(error).__name__}: {error}"
        outcome.minutes = round((time.perf_counter() - started) / 60, 2)
        log(f"=== {language}: {outcome.status}" + (f" in {outcome.failed_step}: {outcome.error}" if outcome.error else ""))
        outcomes.append(outcome)
    return outcomes


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def sweep_markdown(outcomes: list[LanguageOutcome]) -> str:
    """One row per language: status, WER and CER in % (the metric to read in bold), or the failing step."""
    lines = ["| language | status | WER (%) | CER (%) | test clips | minutes | failed step | error |",
             "|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        rates = {}
        for key in ("wer", "cer"):
            value = getattr(o, key)
            text = _cell(None if value is None else 100 * value)
            rates[key] = f"**{text}**" if key == o.metric and value is not None else text
        lines.append(f"| {o.language} | {o.status} | {rates['wer']} | {rates['cer']} | {_cell(o.test_clips)} | "
                     f"{_cell(o.minutes)} | {_cell(o.failed_step or None)} | {_cell(o.error[:200] or None)} |")
    failed = sum(o.status != "ok" for o in outcomes)
    lines.append(f"\n{len(outcomes) - failed} of {len(outcomes)} languages done"
                 + (f", {failed} failed (see the executed notebook in its run folder's notebooks/)." if failed else "."))
    return "\n".join(lines) + "\n"


def write_sweep(outcomes: list[LanguageOutcome], root: str | Path) -> list[Path]:
    """``sweep.md`` and ``sweep.csv`` in ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    markdown, table = (root / name for name in SWEEP_FILES)
    write_text_atomic(markdown, sweep_markdown(outcomes))
    rows = io.StringIO(newline="")
    writer = csv.DictWriter(rows, fieldnames=list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(asdict(o) for o in outcomes)
    write_text_atomic(table, rows.getvalue())
    return [markdown, table]
