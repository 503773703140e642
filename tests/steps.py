"""Steps 03 -> 06 through the Python API, as notebooks 03-06 call them: for tests that assert what the steps do
with a model, not what the notebooks show (papermill costs a kernel start, ~8 s, per notebook; the notebooks
themselves are under test in test_notebooks_*.py, and with a model family in test_families.py and
test_vocabulary_paths.py once each).

    from steps import run_03_to_06, notebook_results
    out = run_03_to_06(run, model="path/to/checkpoint", max_steps=4)
    results = notebook_results(out)      # what notebooks 03, 04 and 06 record(), from the same reports
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from xlsr_helpers import compare as cmp
from xlsr_helpers import evaluate as ev
from xlsr_helpers.config import Config
from xlsr_helpers.families import resolve

ROOT = Path(__file__).resolve().parent.parent


def fresh_run(base: Path, target: Path) -> Path:
    """A new run folder with steps 01-02 (and run.json) of ``base``: the shared start of each model's run."""
    target.mkdir(parents=True)
    for name in ("01_load", "02_normalize", "run.json"):
        source = base / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target / name)
    return target


def run_03_to_06(run: Path, model: str, **params) -> dict:
    """Steps 03-06 of ``run`` (01-02 done) with MODEL=``model`` and ``params`` (Config field names)."""
    from xlsr_helpers.card.step import run_model_card
    from xlsr_helpers.train.step import run_train
    from xlsr_helpers.vocab import run_vocab

    quiet = lambda *a, **k: None  # noqa: E731
    cfg = resolve(Config.load(run).updated(run_dir=str(run), model=model, **params))
    cfg.save("03_vocab")
    vocab = run_vocab(cfg, log=quiet).report
    cfg.save("04_train")
    train = run_train(cfg, log=quiet)
    cfg.save("05_evaluate")
    test, normalize = ev.load_test_split(cfg), ev.run_normalizer(cfg)
    model_obj, processor = ev.load_model(cfg.model_dir)
    result = ev.evaluate(model_obj, processor, test, normalize, batch_size=4, out_dir=cfg.step_dir("05_evaluate"),
                         progress=False, extra_metrics={"model": str(cfg.model_dir), "split": "test"})
    comparison = cmp.run_comparison(cfg, own=("fine-tuned (this run)", str(cfg.model_dir), result,
                                              processor.tokenizer), dataset=test, normalizer=normalize,
                                    progress=False)
    cfg.save("06_model_card")
    card = run_model_card(cfg)
    return {"cfg": cfg, "vocab": vocab, "train": train, "result": result, "comparison": comparison, "card": card}


def notebook_results(out: dict) -> dict[str, dict]:
    """The values notebooks 03, 04 and 06 record() (their last cells), taken from the reports of :func:`run_03_to_06`."""
    vocab, train, card = out["vocab"], out["train"], out["card"]
    return {
        "03_vocab": {"family": vocab["family"], "model_input": vocab["feature_extractor"]["input"],
                     "target_lang": vocab["target_lang"], "round_trip_ok": vocab["round_trip_ok"]},
        "04_train": {"model_class": train["model_class"], "family": train["family"],
                     "global_step": train["global_step"], "stopped_by": train["stopped_by"],
                     "model_dir": train["model_dir"], "parameters": train["parameters"]["total"],
                     "trainable_parameters": train["parameters"]["trainable"],
                     "adapter_file": train.get("adapter_file")},
        "06_model_card": {"verified": card.verification["ok"], "model_id": card.repo_id,
                          "files": sorted(p.name for p in Path(card.upload_dir).iterdir())},
    }


def upload_predictions(run: Path) -> tuple[list[str], list[str]]:
    """(the upload's predictions on the test split, step 05's predictions.tsv): equal when the upload reproduces 05."""
    cfg = Config.load(run)
    model, processor = ev.load_model(run / "06_model_card" / "upload")
    again = ev.evaluate(model, processor, ev.load_test_split(cfg), ev.run_normalizer(cfg), batch_size=3, progress=False)
    written = ev.read_predictions(run / "05_evaluate" / "predictions.tsv")
    return [r["prediction"] for r in again.rows], [r["prediction"] for r in written]


def run_card_code(code: str, model_id: str, run: Path, cwd: Path) -> tuple[str, str]:
    """The card's usage code as a learner runs it, in a fresh process, offline, on the upload (for ``model_id``) and
    the test split's first clip: (the last line it printed, step 05's prediction for that clip). Asserts it ran."""
    from datasets import Audio

    clip = ev.load_test_split(Config.load(run)).cast_column("audio", Audio(decode=False))[0]
    audio = clip["audio"]
    path = Path(audio["path"]) if not audio.get("bytes") else Path(cwd) / "clip.mp3"
    if audio.get("bytes"):
        path.write_bytes(audio["bytes"])
    code = code.replace(f'MODEL_ID = "{model_id}"', f"MODEL_ID = {str(run / '06_model_card' / 'upload')!r}")
    code = code.replace('AUDIO = "clip.mp3"', f"AUDIO = {str(path)!r}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = {r["path"]: r["prediction"] for r in ev.read_predictions(run / "05_evaluate" / "predictions.tsv")}
    return done.stdout.rstrip("\n").split("\n")[-1], expected[clip["id"]]
