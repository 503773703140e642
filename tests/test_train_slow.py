"""Slow tier of step 04: the tiny model learns on CPU, torchrun with 2 processes, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xlsr_helpers.train import checkpoints
from xlsr_helpers.train import curves
from xlsr_helpers.train import step
from xlsr_helpers.config import Config
from xlsr_helpers.families import resolve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("TQDM_DISABLE", "1")
    return env


def _quick(**extra) -> list[str]:
    params = {"MODEL": "tiny", "BATCH_SIZE": 4, "GRADIENT_ACCUMULATION_STEPS": 1, "EVAL_STEPS": 100,
              "LOGGING_STEPS": 1, **extra}
    return [arg for name, value in params.items() for arg in ("-p", f"{name}={value}")]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from test_train import make_run

    run = tmp_path_factory.mktemp("slow") / "base"
    make_run(run)
    return run


# (a) ------------------------------------------------------------------------------------------------
# The demo's training (pipeline.DEMO_PARAMETERS: a fixed number of updates, no time limit) on the demo corpus:
# the held-out CER it must reach. Measured (seed 42, CPU, one machine): 0.151 after the 1,000 updates of 4 clips,
# the same bits with 1 and 2 threads (tiny.tiny_thread_independent_); before that fix, runs that differed only in
# rounding gave 0.143 and 0.148. On the way: 0.29 at 600 updates, 0.17 at 800. 0.2 leaves room for another
# processor's rounding (a spread of ~0.01 measured) and fails a run that learned ~200 updates' worth less, or not
# at all (1.0: all blanks).
DEMO_HELD_OUT_CER = 0.2


def test_tiny_model_learns_the_demo_corpus_in_the_demos_fixed_steps(tmp_path):
    """Demo-size synthetic corpus, the tiny model with the demo's settings (DEMO_PARAMETERS: MAX_STEPS, batch
    size, no time limit), CPU: held-out CER < DEMO_HELD_OUT_CER (the eval split: other speakers, other sentences),
    after exactly the demo's number of updates however long they take."""
    import math

    from test_train import make_run

    from xlsr_helpers.pipeline import DEMO_PARAMETERS

    demo = {name.lower(): value for name, value in DEMO_PARAMETERS.items()
            if name not in ("DATA_SOURCE", "SYNTHETIC_SIZE", "MODEL")}
    cfg = make_run(tmp_path / "run", size="demo").updated(model="tiny", save_steps=100000, **demo)
    started = time.perf_counter()
    report = step.run_train(resolve(cfg))
    wall = time.perf_counter() - started
    curve = curves.eval_history(report)
    print("\nlearning curve (eval split, held-out speakers and sentences):")
    for e in curve:
        print(f"  step {e['step']:>4}  CER {e['cer']:.3f}  WER {e['wer']:.3f}  empty {e['empty_share']:.0%}")
    print(f"training {report['train_seconds']:.0f} s ({report['train_seconds'] / report['global_step']:.3f} s/step), "
          f"steps {report['global_step']}/{report['max_steps']}; wall time incl. preparation {wall:.0f} s")
    losses = [entry["loss"] for entry in report["history"] if "loss" in entry]
    assert report["global_step"] == report["max_steps"] == DEMO_PARAMETERS["MAX_STEPS"]
    assert report["stopped_by"] == "completed", "no time limit stops the demo's training"
    assert len(losses) >= 5 and all(math.isfinite(loss) for loss in losses)
    assert min(losses[-3:]) < 0.5 * losses[0], f"the CTC loss must fall: {losses}"
    assert report["eval"]["cer"] < DEMO_HELD_OUT_CER, curve
    assert report["eval"]["empty_share"] < 0.05
    assert (Path(cfg.run_dir) / "04_train" / "model").exists()


# (b) ------------------------------------------------------------------------------------------------
def test_torchrun_two_processes_trains_and_its_model_loads(tiny_run, tmp_path):
    from test_train import copy_run
    from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

    run = copy_run(tiny_run, tmp_path / "run")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "xlsr_helpers.train", "--run-dir", str(run),
               *_quick(MAX_STEPS=4, SAVE_STEPS=2, EVAL_STEPS=2, LAYERDROP=0.1)]
    done = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("Done: step 4") == 1, "only the main process reports"
    assert "LAYERDROP is set to 0.0" in done.stdout
    report = json.loads((run / "04_train" / "report.json").read_text())
    assert report["world_size"] == 2 and report["global_step"] == 4
    model = Wav2Vec2ForCTC.from_pretrained(str(run / "04_train" / "model"))
    processor = Wav2Vec2Processor.from_pretrained(str(run / "04_train" / "model"))
    assert model.config.layerdrop == 0.0 and model.config.vocab_size == len(processor.tokenizer)
    leftovers = [p.name for p in (run / "04_train").glob("model*.tmp")]
    assert not leftovers, f"temporary model folders left behind: {leftovers}"


# (c) ------------------------------------------------------------------------------------------------
def test_kill_after_first_checkpoint_then_resume(tiny_run, tmp_path):
    from test_train import copy_run

    run = copy_run(tiny_run, tmp_path / "run")
    train_dir = run / "04_train"
    command = [sys.executable, "-m", "xlsr_helpers.train", "--run-dir", str(run),
               *_quick(MAX_STEPS=12, SAVE_STEPS=3, EVAL_STEPS=3, SAVE_TOTAL_LIMIT=3)]
    process = subprocess.Popen(command, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            if any(checkpoints.is_complete_checkpoint(p) for _, p in checkpoints.list_checkpoints(train_dir)):
                break
            time.sleep(0.2)
        assert process.poll() is None, f"training ended before it could be killed: {process.stderr.read()[-3000:]}"
        os.kill(process.pid, signal.SIGKILL)  # no clean shutdown, like a Colab disconnect
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
    saved = [step for step, path in checkpoints.list_checkpoints(train_dir) if checkpoints.is_complete_checkpoint(path)]
    assert saved and max(saved) < 12, "killed mid-training"
    assert not (train_dir / "model").exists()

    cfg = Config.load(run).updated(run_dir=str(run))
    report = step.run_train(resolve(cfg), log=lambda *a: None)
    assert report["start_step"] == max(saved) >= 3, "global step continues from the last complete checkpoint"
    assert Path(report["resumed_from"]).name == f"checkpoint-{max(saved)}"
    assert report["global_step"] == 12 and report["stopped_by"] == "completed"
    steps = [e["step"] for e in report["history"] if "loss" in e]
    assert steps[0] <= max(saved) < steps[-1] == 12, "the log history spans both runs"
    assert (train_dir / "model" / "model.safetensors").exists()
