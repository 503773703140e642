"""Hyper-parameter search on a budget: short trials of LEARNING_RATE, warm-up and MASK_TIME_PROB before training.

``Trainer.hyperparameter_search`` with the optuna backend: each trial builds a fresh model (``model_init``),
trains ``SEARCH_STEPS`` updates on a fixed random subset of ``SEARCH_TRAIN_ROWS`` training rows, and is
evaluated ``EVALUATIONS_PER_TRIAL`` times on the eval subset; the Trainer reports the objective (WER, or CER for
languages written without spaces) to optuna at each evaluation, and optuna's median pruner stops a trial that
is worse than the median of the earlier trials at the same step. The first trial is the recipe's values
(enqueued), so the table shows whether the search beat them. The best trial is the complete one with the lowest
objective, ties broken by CER: early in training every trial may still be at WER 1.0 while their CERs differ.
Seeded by SEED: a rerun gives the same trials.

Works on a :class:`~xlsr_helpers.train.step.Training` after its stages load, build_model, check and prepare.
Writes only ``04_train/search/`` (``trials.json``, ``trials.csv``, ``trials.png``; the trials' Trainer
writes no checkpoint); :func:`use_best` then makes the best values the run's own LEARNING_RATE,
WARMUP_STEPS and MASK_TIME_PROB (``run.json``) and rebuilds the Training's model with them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import Config
from ..ctc import blank_id
from ..constants import RUN_FILE, SAMPLING_RATE
from ..families import resolve
from ..files import write_json_atomic, write_text_atomic
from ..models import build_model
from ..normalize import primary_metric
from .data import DataCollatorCTCWithPadding, DurationBatchSampler
from .guards import GuardError
from .step import STEP, eval_subset
from .callbacks import HeadFirstCallback
from .trainer import CTCTrainer, lengths_of, make_compute_metrics, training_arguments

SEARCH_DIR = "search"  # under 04_train/
TRIALS_FILES = ("trials.json", "trials.csv", "trials.png")
EVALUATIONS_PER_TRIAL = 4  # the pruner compares trials at each of them; the last one is the trial's objective
PRUNE_AFTER_TRIALS = 2  # the median pruner stops nothing before this many trials are complete
# transformers reads warmup_steps >= 1 as a number of updates, below 1 as a share of them: a share stays below this
WARMUP_SHARE_CEILING = 0.9
STUDY_NAME = "xlsr-search"
SEARCHED_FIELDS = ("learning_rate", "warmup_steps", "mask_time_prob")  # the Config fields a search sets


@dataclass(frozen=True)
class SearchSpace:
    """The ranges a trial draws from, and the recipe's point in them (the first trial)."""

    learning_rate: tuple[float, float]  # log-uniform
    warmup_share: tuple[float, float]  # share of the updates spent warming up (of a trial's and of the real run's)
    mask_time_prob: tuple[float, float]
    recipe: dict[str, float]  # learning_rate, warmup_share, mask_time_prob of the run as configured

    def suggest(self, trial) -> dict[str, float]:
        """The trial's values (optuna returns the same ones when asked again within a trial)."""
        return {"learning_rate": trial.suggest_float("learning_rate", *self.learning_rate, log=True),
                "warmup_share": trial.suggest_float("warmup_share", *self.warmup_share),
                "mask_time_prob": trial.suggest_float("mask_time_prob", *self.mask_time_prob)}


@dataclass
class SearchResult:
    metric: str  # wer | cer: the objective, minimized (ties broken by cer)
    table: Any  # pandas DataFrame, one row per trial
    best_trial: int
    best_objective: float
    best_values: dict[str, Any]  # LEARNING_RATE, WARMUP_STEPS, MASK_TIME_PROB of the real run (Config field names)
    planned_updates: int  # the real run's updates, which the best warm-up share is converted with
    paths: dict[str, str]
    reused: bool = False  # read back from an earlier search with the same settings

    def summary(self) -> dict[str, Any]:
        """What the notebook records and 04_train/report.json keeps."""
        states = self.table["state"].value_counts().to_dict()
        return {"metric": self.metric, "trials": int(len(self.table)), "complete": int(states.get("complete", 0)),
                "pruned": int(states.get("pruned", 0)), "best_trial": self.best_trial,
                "best_objective": self.best_objective, "best_values": self.best_values,
                "recipe_objective": recipe_objective(self.table, self.metric), "reused": self.reused}


# --------------------------------------------------------------------------------------------------
# the real run's schedule, the search space
# --------------------------------------------------------------------------------------------------
def planned_updates(cfg: Config, train_dataset, world_size: int = 1) -> int:
    """The number of updates the real run will make (MAX_STEPS, else NUM_TRAIN_EPOCHS of the training rows)."""
    cfg = resolve(cfg)
    if cfg.max_steps > 0:
        return cfg.max_steps
    if cfg.max_batch_seconds:
        batches = len(DurationBatchSampler(lengths_of(train_dataset), int(cfg.max_batch_seconds * SAMPLING_RATE)).batches)
    else:
        batches = math.ceil(len(train_dataset) / cfg.batch_size)
    per_epoch = max(1, math.ceil(batches / world_size) // cfg.gradient_accumulation_steps)
    return max(1, math.ceil(cfg.num_train_epochs * per_epoch))


def recipe_warmup_share(cfg: Config, planned: int) -> float:
    """The run's warm-up as a share of its updates (WARMUP_STEPS, or the share that -1 stands for)."""
    steps = training_arguments(cfg, os.devnull).warmup_steps  # below 1: already a share (the -1 of tiny)
    share = steps if steps < 1 else steps / planned
    return min(float(share), WARMUP_SHARE_CEILING)


def search_space(cfg: Config, planned: int) -> SearchSpace:
    """Ranges around the run's values: learning rate x/÷ SEARCH_LR_FACTOR, warm-up share from 0 to
    SEARCH_WARMUP_SHARE_MAX, MASK_TIME_PROB from 0 to SEARCH_MASK_TIME_PROB_MAX (each widened to hold the run's own)."""
    cfg = resolve(cfg)
    check_search_settings(cfg)
    recipe = {"learning_rate": float(cfg.learning_rate), "warmup_share": recipe_warmup_share(cfg, planned),
              "mask_time_prob": float(cfg.mask_time_prob)}
    factor = cfg.search_lr_factor
    return SearchSpace(
        learning_rate=(recipe["learning_rate"] / factor, recipe["learning_rate"] * factor),
        warmup_share=(0.0, max(cfg.search_warmup_share_max, recipe["warmup_share"])),
        mask_time_prob=(0.0, max(cfg.search_mask_time_prob_max, recipe["mask_time_prob"])),
        recipe=recipe)


def check_search_settings(cfg: Config) -> None:
    problems = []
    if cfg.search_trials < 0:
        problems.append(f"SEARCH_TRIALS={cfg.search_trials} must be 0 (no search) or more")
    if cfg.search_steps < 1:
        problems.append(f"SEARCH_STEPS={cfg.search_steps} must be at least 1")
    if cfg.search_train_rows < 0:
        problems.append(f"SEARCH_TRAIN_ROWS={cfg.search_train_rows} must be 0 (all) or more")
    if cfg.search_lr_factor < 1:
        problems.append(f"SEARCH_LR_FACTOR={cfg.search_lr_factor} must be 1 or more")
    if not 0 <= cfg.search_warmup_share_max <= WARMUP_SHARE_CEILING:
        problems.append(f"SEARCH_WARMUP_SHARE_MAX={cfg.search_warmup_share_max} must be from 0 to {WARMUP_SHARE_CEILING}")
    if not 0 <= cfg.search_mask_time_prob_max < 1:
        problems.append(f"SEARCH_MASK_TIME_PROB_MAX={cfg.search_mask_time_prob_max} must be from 0 to below 1")
    if problems:
        raise GuardError("; ".join(problems) + ".")


def real_run_values(values: dict[str, float], planned: int) -> dict[str, Any]:
    """A trial's values as the real run's Config fields (the warm-up share becomes a number of updates)."""
    return {"learning_rate": float(f"{values['learning_rate']:.3g}"),
            "warmup_steps": int(round(values["warmup_share"] * planned)),
            "mask_time_prob": round(float(values["mask_time_prob"]), 4)}


# --------------------------------------------------------------------------------------------------
# the search
# --------------------------------------------------------------------------------------------------
def make_trial_evaluations():
    from transformers import TrainerCallback

    class TrialEvaluations(TrainerCallback):
        """An evaluation at each trial's last update too (its objective is its WER/CER at the end), and the last
        evaluation of each trial: ``last[trial number] = {"step", "wer", "cer"}`` (``trial`` set by model_init)."""

        def __init__(self):
            self.trial: int | None = None
            self.last: dict[int, dict[str, float]] = {}

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_evaluate = True
            return control

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if self.trial is not None and metrics:
                self.last[self.trial] = {"step": state.global_step,
                                         **{m: metrics.get(f"eval_{m}") for m in ("wer", "cer")}}
            return control

    return TrialEvaluations()


def search_settings(training, space: SearchSpace, train_rows: int) -> dict[str, Any]:
    """Everything a search's outcome depends on: an earlier search with the same settings is reused."""
    cfg = training.cfg
    return {"model": cfg.model, "language": cfg.language, "seed": cfg.seed, "trials": cfg.search_trials,
            "steps": cfg.search_steps, "train_rows": train_rows, "eval_rows": len(training.prepared["eval"]),
            "batch_size": cfg.batch_size, "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
            "max_batch_seconds": cfg.max_batch_seconds, "space": asdict(space)}


def run_search(training, log: Callable | None = None) -> SearchResult:
    """Run SEARCH_TRIALS trials (or read back an earlier search with the same settings); write the report."""
    import optuna

    log = log or training.log
    cfg = training.cfg
    if training.prepared is None or training.processor is None:
        raise RuntimeError("run_search needs a Training after its load, build_model, check and prepare stages.")
    if training.world_size > 1:
        raise GuardError("The hyper-parameter search runs in one process: run notebook 04 (or a single process), "
                         "then train with torchrun / accelerate launch, which read the best values from run.json.")
    if cfg.search_trials < 1:
        raise GuardError("SEARCH_TRIALS is 0: no search to run.")
    search_dir = training.train_dir / SEARCH_DIR
    metric = primary_metric(cfg.language)
    planned = planned_updates(cfg, training.prepared["train"], training.world_size)
    space = search_space(cfg, planned)
    train_rows = eval_subset(training.prepared["train"], cfg.search_train_rows, cfg.seed)
    settings = search_settings(training, space, len(train_rows))

    earlier = read_search(search_dir)
    if earlier is not None and earlier["settings"] == json.loads(json.dumps(settings)):
        log(f"Reusing the search in {search_dir} (same settings); delete that folder to search again.")
        return result_from_record(earlier, search_dir, reused=True)
    if training.resume_from is not None:
        raise GuardError(
            f"{training.train_dir} holds checkpoints of a run trained without this search ({training.resume_from}): "
            "resuming would keep their learning rate. Set RESUME=\"never\" to start over with the searched values, "
            "or SEARCH_TRIALS=0 to continue that run.")

    trial_output = search_dir / "trainer"
    evaluations = make_trial_evaluations()
    trainer = make_search_trainer(training, space, train_rows, trial_output, evaluations)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction="minimize")
    study.enqueue_trial(space.recipe)  # trial 0: the run's values as configured (the recipe's by default)
    log(f"Searching {cfg.search_trials} trials x {cfg.search_steps} updates on {len(train_rows)} training rows, "
        f"objective: eval {metric.upper()} on {len(training.prepared['eval'])} clips")
    started = time.perf_counter()
    try:
        trainer.hyperparameter_search(
            hp_space=lambda trial: trial_arguments(space.suggest(trial)),
            compute_objective=lambda metrics: metrics[f"eval_{metric}"],
            n_trials=cfg.search_trials, direction="minimize", backend="optuna",
            storage=storage, study_name=STUDY_NAME, load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=max(PRUNE_AFTER_TRIALS,
                                                                                    cfg.search_trials // 2)),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER_TRIALS,
                                               n_warmup_steps=trainer.args.eval_steps))
    finally:
        shutil.rmtree(trial_output, ignore_errors=True)
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
    table = trials_table(study, evaluations.last)
    best = best_row(table, metric)
    record = {"metric": metric, "direction": "minimize", "settings": settings, "planned_updates": planned,
              "best_trial": int(best["trial"]), "best_objective": float(best[metric]),
              "best_values": real_run_values(best, planned),
              "seconds": round(time.perf_counter() - started, 1),
              "trials": json.loads(table.to_json(orient="records"))}
    result = write_search(record, table, search_dir)
    complete = table[table["state"] == "complete"]
    if complete[metric].nunique() == 1:
        log(f"Every complete trial ended at {metric.upper()} {best[metric]:.3f}, so neither it nor the pruner told them "
            "apart: the lowest CER decided (the recipe's trial where CERs tie too). Longer trials (SEARCH_STEPS) get "
            "past that.")
    log(f"Best: trial {result.best_trial}, {metric.upper()} {result.best_objective:.3f} -> " +
        ", ".join(f"{name.upper()}={value}" for name, value in result.best_values.items()))
    return result


def best_row(table, metric: str):
    """The complete trial with the lowest objective, ties broken by CER, then by the trial number (the recipe's first)."""
    complete = table[table["state"] == "complete"]
    if complete.empty:
        raise GuardError("No trial of the search completed; see the trials' errors above.")
    return complete.sort_values([metric, "cer", "trial"], kind="stable").iloc[0]


def trial_arguments(values: dict[str, float]) -> dict[str, float]:
    """The TrainingArguments a trial sets (MASK_TIME_PROB is the model's: model_init reads it)."""
    return {"learning_rate": values["learning_rate"], "warmup_steps": values["warmup_share"]}


def make_search_trainer(training, space: SearchSpace, train_rows, output_dir: Path, evaluations):
    """The Trainer of the trials: a fresh model per trial, SEARCH_STEPS updates, no checkpoints."""
    from transformers.trainer_callback import PrinterCallback

    cfg = training.cfg
    if training.args is not None:  # GRADIENT_CHECKPOINTING="auto" measured as the real run will
        training.choose_checkpointing()
    checkpointing = {name: getattr(training.args, name) for name in ("activation_checkpointing", "gradient_checkpointing")
                     if training.args is not None and hasattr(training.args, name)}
    eval_steps = max(1, cfg.search_steps // EVALUATIONS_PER_TRIAL)
    args = training_arguments(
        cfg, output_dir, max_steps=cfg.search_steps, eval_steps=eval_steps, logging_steps=eval_steps,
        save_strategy="no", load_best_model_at_end=False, warmup_steps=float(space.recipe["warmup_share"]),
        disable_tqdm=True, **checkpointing)

    def model_init(trial=None):
        values = space.suggest(trial) if trial is not None else space.recipe
        evaluations.trial = trial.number if trial is not None else None
        if trial is not None:
            training.log(f"trial {trial.number}: learning rate {values['learning_rate']:.3g}, warm-up "
                         f"{values['warmup_share']:.0%} of the updates, mask_time_prob {values['mask_time_prob']:.3f}")
        trial_cfg = cfg.updated(mask_time_prob=values["mask_time_prob"])
        return build_model(trial_cfg, training.processor, training.world_size, log=lambda *a, **k: None)

    blank = blank_id(training.processor.tokenizer, training.model.config)
    trainer = CTCTrainer(model_init=model_init, args=args, data_collator=DataCollatorCTCWithPadding(training.processor),
                         train_dataset=train_rows, eval_dataset=training.prepared["eval"],
                         processing_class=training.processor,
                         compute_metrics=make_compute_metrics(training.processor, blank),
                         callbacks=[HeadFirstCallback(cfg.freeze_encoder_steps), evaluations],
                         max_batch_seconds=cfg.max_batch_seconds)
    trainer.remove_callback(PrinterCallback)  # a line per trial (model_init) and optuna's, not every log dict
    return trainer


TABLE_COLUMNS = ("trial", "state", "step", "wer", "cer", "learning_rate", "warmup_share", "mask_time_prob", "values",
                 "seconds")


def trials_table(study, last_evaluations: dict[int, dict[str, float]]):
    """One row per trial: state (complete | pruned | fail), WER and CER at its last evaluation (the end, or where it
    was pruned) and that step, its values, and the seconds it took."""
    import pandas as pd

    rows = []
    for trial in study.trials:
        seconds = ((trial.datetime_complete - trial.datetime_start).total_seconds()
                   if trial.datetime_complete and trial.datetime_start else None)
        last = last_evaluations.get(trial.number, {})
        rows.append({"trial": trial.number, "state": trial.state.name.lower(), "step": last.get("step"),
                     "wer": last.get("wer"), "cer": last.get("cer"),
                     **{name: trial.params.get(name) for name in ("learning_rate", "warmup_share", "mask_time_prob")},
                     "values": "recipe" if trial.number == 0 else "sampled",
                     "seconds": round(seconds, 1) if seconds is not None else None})
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def recipe_objective(table, metric: str) -> float | None:
    rows = table[table["values"] == "recipe"]
    return None if rows.empty else float(rows.iloc[0][metric])


# --------------------------------------------------------------------------------------------------
# report: trials.json, trials.csv, trials.png
# --------------------------------------------------------------------------------------------------
def write_search(record: dict[str, Any], table, search_dir: Path) -> SearchResult:
    search_dir.mkdir(parents=True, exist_ok=True)
    paths = {name.split(".")[1]: str(search_dir / name) for name in TRIALS_FILES}
    write_text_atomic(paths["csv"], table.to_csv(index=False))
    trials_figure(table, record["metric"], record["best_trial"]).savefig(paths["png"], dpi=110)
    write_json_atomic(paths["json"], record)  # last: a search cut off before this is not reused
    return result_from_record(record, search_dir)


def read_search(search_dir: Path) -> dict[str, Any] | None:
    path = search_dir / TRIALS_FILES[0]
    if not all((search_dir / name).exists() for name in TRIALS_FILES):
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def result_from_record(record: dict[str, Any], search_dir: Path, reused: bool = False) -> SearchResult:
    import pandas as pd

    table = pd.DataFrame(record["trials"])
    return SearchResult(metric=record["metric"], table=table, best_trial=record["best_trial"],
                        best_objective=record["best_objective"], best_values=record["best_values"],
                        planned_updates=record["planned_updates"],
                        paths={name.split(".")[1]: str(search_dir / name) for name in TRIALS_FILES}, reused=reused)


def trials_figure(table, metric: str, best_trial: int):
    """WER and CER of each trial against its learning rate: complete trials as dots (coloured by MASK_TIME_PROB),
    pruned ones as crosses at their last evaluation, the recipe's and the best one ringed."""
    import matplotlib

    if "matplotlib_inline" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
    dots = None
    for ax, name in zip(axes, ("wer", "cer")):
        shown = table.dropna(subset=[name])
        complete = shown[shown["state"] == "complete"]
        pruned = shown[shown["state"] == "pruned"]
        dots = ax.scatter(complete["learning_rate"], complete[name], c=complete["mask_time_prob"], cmap="viridis",
                          vmin=0.0, vmax=max(0.1, float(table["mask_time_prob"].max())), s=50, label="complete",
                          zorder=3)
        ax.scatter(pruned["learning_rate"], pruned[name], marker="x", color="tab:red", s=50,
                   label="pruned (at its last evaluation)", zorder=3)
        for trial, colour, label in ((0, "black", "recipe"), (best_trial, "tab:orange", "best")):
            row = shown[shown["trial"] == trial]
            if not row.empty:
                ax.scatter(row["learning_rate"], row[name], s=180 if label == "recipe" else 260, facecolors="none",
                           edgecolors=colour, linewidths=1.5, label=label, zorder=4)
        for _, row in shown.iterrows():
            ax.annotate(str(int(row["trial"])), (row["learning_rate"], row[name]), textcoords="offset points",
                        xytext=(6, 4), fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 0.001, 0.002, 0.005, 0.01 ...
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("learning rate")
        ax.set_ylabel(f"eval {name.upper()} (lower is better)")
        ax.set_title(f"{name.upper()} at each trial's last evaluation" + (" (the objective)" if name == metric else ""))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.colorbar(dots, ax=list(axes), label="mask_time_prob")
    fig.suptitle("Hyper-parameter search: one point per trial")
    plt.close(fig)
    return fig


# --------------------------------------------------------------------------------------------------
# the best values become the run's
# --------------------------------------------------------------------------------------------------
def use_best(training, result: SearchResult) -> Config:
    """Write the best values into run.json as the run's own LEARNING_RATE, WARMUP_STEPS and MASK_TIME_PROB
    (a later ``xlsr train`` reads them there), and rebuild the Training's model, arguments and prepared rows
    with them. Returns the resolved config the training below uses."""
    cfg = training.cfg
    run_file = cfg.run_path / RUN_FILE
    record = json.loads(run_file.read_text()) if run_file.exists() else {}
    # The fields that follow the recipe stay None in run.json (as run_config.from_params saved them), but for the
    # searched ones, which are now the run's own.
    from_recipe = set(record.get("recipe_fields_from_recipe", [])) - set(SEARCHED_FIELDS)
    run_cfg = cfg.updated(**{name: None for name in from_recipe}, **result.best_values)
    resolve(run_cfg).save(STEP)
    training.cfg = resolve(run_cfg)
    training.args = None  # made again from the new values by prepare()
    training.build_model()
    training.check()
    training.prepare()  # the feasibility filter again: it depends on MASK_TIME_PROB
    training.report["search"] = result.summary()
    return training.cfg
