"""Run the six notebooks headless, in order, with papermill (behind ``xlsr run`` and the tests).

The executed copies in ``<RUN_DIR>/notebooks/`` are for learners to open: they keep the state of their
widgets (so the clip browser, the character toggles and the prediction browser render without running the
notebook again) and they are signed as trusted in this user's Jupyter, so that Jupyter shows their audio
players and widgets (an untrusted notebook's players are stripped and its widgets show as text).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterable

from .config import Config, resolve_run_dir
from .constants import STEPS
from .results import read_results

# The six notebooks, shipped in the package (xlsr_helpers/notebooks: in a checkout, a link to the repository's
# notebooks/ folder; in a wheel, the files), so that `xlsr run` finds them after `pip install` too.
NOTEBOOKS_DIR = Path(str(files("xlsr_helpers") / "notebooks")).resolve()
# No limit per notebook cell by default: step 04 trains in one cell, for hours on a real corpus (a limit of an hour
# killed every real training run). ``xlsr run --cell-timeout SECONDS`` sets one, e.g. for a test.
DEFAULT_CELL_TIMEOUT_S: int | None = None
# The built-in rehearsal: synthetic corpus, tiny model, CPU (what `make demo` runs). It trains a fixed number
# of updates and has no time limit, so that it gives the same WER/CER on every machine (seed 42, the same
# batches in the same order; a faster machine only finishes sooner). With MAX_TRAIN_MINUTES=5 instead, one
# commit gave test WER 34.5 on one machine and 56.8 on a slower one: the slower one stopped mid-schedule.
# Measured: test WER 64.72, CER 17.96 with 1 and 2 threads on the lock's versions (63.13 / 17.40 on the versions
# before it; before the lazy data path, 71.35 / 20.27 with 1 and 2
# threads alike: tiny.tiny_thread_independent_); runs that differed only in rounding (as another processor's
# arithmetic may) gave WER 65.8-71.4, CER 17.5-20.3.
# The learning-rate schedule (8 % warm-up, then linear decay to 0) is fitted to DEMO_STEPS. Measured on the demo
# corpus, 1 thread, held-out (eval split) CER / WER after a whole schedule (benchmarks/demo_steps.py times a step):
#   batches of 8, attention dropout 0.1 (families.TINY_TRAINING):  600 updates 0.24 / 0.77, 1,000 updates 0.07 / 0.36
#   batches of 8, no attention dropout (a 23 % cheaper update):  600 updates 0.21 / 0.72, 1,000 updates 0.08 / 0.40
#   batches of 4, no attention dropout (~0.15 CPU-s per update):  1,000 updates 0.14 / 0.58 (2,000 of 2: 0.11 / 0.47)
# 600 updates of 8 and 1,000 of 4 cost the same CPU time (~180 s): more, smaller updates learn more for it. The
# rest of the demo (steps 01-03, 05, 06, kernels) is ~115 CPU-s, so 1,000 updates of 4 keep the whole demo near
# 5 minutes of one core; 1,000 of 8 (~350 CPU-s of training) would not. The attention dropout is switched off for
# the demo only: dropout's random masks on the attention weights (bernoulli_) were a fifth of the update's time;
# the recipe (and every other use of `tiny`) keeps it. MAX_TRAIN_MINUTES is still a parameter for anyone's run.
DEMO_STEPS = 1000
DEMO_PARAMETERS = {"DATA_SOURCE": "synthetic", "SYNTHETIC_SIZE": "demo", "MODEL": "tiny", "MAX_STEPS": DEMO_STEPS,
                   "BATCH_SIZE": 4, "ATTENTION_DROPOUT": 0.0, "MAX_TRAIN_MINUTES": 0.0}

# Kernels talk to papermill over Unix sockets (where there are some), not TCP on localhost: nothing listens
# on a port, and ipykernel >= 7 does not print its "running over TCP without encryption" warning per notebook.
KERNEL_CONFIG = {"KernelManager": {"transport": "ipc" if os.name == "posix" else "tcp"}}


class StepFailed(RuntimeError):
    """A notebook failed; the message names the step, the cell and the error (also as ``step``, ``error``)."""

    def __init__(self, message: str, step: str = "", error: str = ""):
        super().__init__(message)
        self.step, self.error = step, error


@dataclass
class PipelineResult:
    run_dir: Path
    executed: dict[str, Path] = field(default_factory=dict)  # step -> executed notebook
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # step -> recorded values
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time


def notebook_path(step: str, notebooks_dir: Path = NOTEBOOKS_DIR) -> Path:
    return notebooks_dir / f"{step}.ipynb"


def select_steps(spec: str | Iterable[str] | None) -> list[str]:
    """Steps from names ('04_train'), numbers ('4'), ranges ('1-3') or a comma list; None = all."""
    if spec is None:
        return list(STEPS)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen: set[str] = set()
    for item in (i.strip() for i in items if i.strip()):
        if "-" in item and item.replace("-", "").isdigit():
            first, last = (int(x) for x in item.split("-"))
            chosen.update(STEPS[first - 1 : last])
            continue
        match = [s for s in STEPS if s == item or s.split("_", 1)[0].lstrip("0") == item.lstrip("0")
                 or s.split("_", 1)[1] == item]
        if not match:
            raise ValueError(f"Unknown step {item!r}; steps are {', '.join(STEPS)} (or 1-6)")
        chosen.update(match)
    return [s for s in STEPS if s in chosen]


def declared_parameters(path: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(path)).keys())


def check_parameter_names(parameters: dict[str, Any]) -> None:
    unknown = sorted(set(parameters) - set(Config.parameter_names()))
    if unknown:
        raise ValueError(f"Unknown parameter(s) {unknown}. Known: {', '.join(Config.parameter_names())}")


def sign_notebook(path: Path) -> bool:
    """Mark a notebook that this runner executed as trusted, as ``jupyter trust`` does.

    nbformat's notary keeps the signature in the Jupyter data folder of this user (``jupyter --data-dir``,
    or ``JUPYTER_DATA_DIR``): a Jupyter of the same user then trusts the file. Never fatal: the notebook
    stays readable unsigned (Jupyter then shows its widgets as text and no audio players), so a failure
    is a warning. Returns whether it was signed.
    """
    import nbformat
    from nbformat.sign import NotebookNotary

    if not path.exists():
        return False
    try:
        notary = NotebookNotary()
        Path(notary.data_dir).mkdir(parents=True, exist_ok=True)  # the notary writes its secret there, not the folder
        notary.sign(nbformat.read(str(path), as_version=4))
    except Exception as error:  # noqa: BLE001 - a read-only home, a locked database, ...
        warnings.warn(f"Could not mark {path} as trusted ({type(error).__name__}: {error}); "
                      f"`jupyter trust {path}` does it.", stacklevel=2)
        return False
    return True


def run_pipeline(
    parameters: dict[str, Any],
    steps: str | Iterable[str] | None = None,
    cell_timeout_s: int | None = DEFAULT_CELL_TIMEOUT_S,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    progress: bool = True,
) -> PipelineResult:
    """Execute the chosen notebooks in order; executed copies go to ``<RUN_DIR>/notebooks/``.

    ``parameters`` uses the notebooks' UPPER_CASE names. Each notebook receives the ones it declares;
    RUN_DIR is made absolute so every step sees the same run folder. ``cell_timeout_s``: seconds a cell may run
    (None: no limit).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError
    from tqdm.auto import tqdm
    from traitlets.config import Config as TraitletsConfig

    check_parameter_names(parameters)
    parameters = dict(parameters)
    language = parameters.get("LANGUAGE", Config.language)
    run_dir = resolve_run_dir(parameters.get("RUN_DIR", ""), language)
    parameters["RUN_DIR"] = str(run_dir)
    parameters.setdefault("LANGUAGE", language)
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)

    chosen = select_steps(steps)
    declared_by_step = {step: declared_parameters(notebook_path(step, notebooks_dir)) for step in chosen
                        if notebook_path(step, notebooks_dir).exists()}
    unused = set(parameters) - set().union(*declared_by_step.values()) - {"LANGUAGE", "RUN_DIR"}
    if unused:
        warnings.warn(f"No notebook among {', '.join(chosen)} declares {sorted(unused)}: not used.", stacklevel=2)
    result = PipelineResult(run_dir=run_dir)
    # The kernels' working folder: a temporary one, because their IPC sockets are files there (not the package's
    # notebooks folder, which is site-packages after `pip install`; not the run folder, which may be on Drive,
    # whose FUSE mount holds no sockets). Every notebook writes to RUN_DIR, which is absolute.
    kernel_dir = Path(tempfile.mkdtemp(prefix="xlsr-kernels-"))
    bar = tqdm(chosen, desc="curriculum", unit="step", disable=not progress)
    try:
        for step in bar:
            bar.set_postfix_str(step)
            source = notebook_path(step, notebooks_dir)
            if not source.exists():
                raise FileNotFoundError(f"Notebook {source} not found")
            given = {k: v for k, v in parameters.items() if k in declared_by_step[step]}
            target = out_dir / source.name
            started = time.perf_counter()
            try:
                try:
                    papermill.execute_notebook(
                        str(source), str(target), parameters=given, kernel_name="python3",
                        cwd=str(kernel_dir), execution_timeout=cell_timeout_s, progress_bar=False,
                        log_output=False, config=TraitletsConfig(KERNEL_CONFIG), store_widget_state=True,
                    )
                finally:
                    sign_notebook(target)  # a failed step's copy too: its traceback is what the learner opens
            except PapermillExecutionError as error:
                raise StepFailed(
                    f"Step {step} failed in cell {error.cell_index} (execution count {error.exec_count}): "
                    f"{error.ename}: {error.evalue}\nExecuted notebook with the traceback: {target}",
                    step=step, error=f"{error.ename}: {error.evalue}",
                ) from None
            except Exception as error:  # timeouts, dead kernels
                raise StepFailed(f"Step {step} failed: {type(error).__name__}: {error}\n"
                                 f"Executed notebook so far: {target}", step=step,
                                 error=f"{type(error).__name__}: {error}") from None
            result.seconds[step] = time.perf_counter() - started
            result.executed[step] = target
            result.results[step] = read_results(target)
    finally:
        shutil.rmtree(kernel_dir, ignore_errors=True)
    return result
