"""train/search.py: the hyper-parameter search of step 04 (Trainer.hyperparameter_search, optuna) on the tiny
synthetic corpus with the tiny model, and the notebook's optional search section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xlsr_helpers.config import RECIPE_FIELDS, Config
from xlsr_helpers.run_config import from_params
from xlsr_helpers.train import search
from xlsr_helpers.train.guards import GuardError
from xlsr_helpers.train.step import Training

pytest.importorskip("optuna")

# 3 trials of 4 updates (evaluated at every one of them) on the 40 training rows: a few seconds per trial
QUICK = dict(model="tiny", batch_size=4, gradient_accumulation_steps=1, max_steps=40,
             search_trials=3, search_steps=4, search_train_rows=24)
COLUMNS = ["trial", "state", "step", "wer", "cer", "learning_rate", "warmup_share", "mask_time_prob", "values", "seconds"]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    from test_train import make_run

    run = tmp_path_factory.mktemp("search") / "run"
    make_run(run)
    return run


def prepared_training(base_run: Path, target: Path, **params) -> Training:
    """A Training after its load, build_model, check and prepare stages, in a copy of the run folder whose run.json
    was written by run_config.from_params (as the notebook writes it)."""
    from test_train import copy_run

    run = copy_run(base_run, target)
    record = json.loads((run / "run.json").read_text())  # make_run saved every field: as 01_load does, the recipe's
    record["recipe_fields_from_recipe"] = list(RECIPE_FIELDS)  # follow the recipe unless a notebook sets them
    (run / "run.json").write_text(json.dumps(record))
    given = {"LANGUAGE": "tr", "RUN_DIR": str(run), **{k.upper(): v for k, v in {**QUICK, **params}.items()}}
    training = Training(from_params(given, step="04_train"), log=lambda *a, **k: None)
    training.check_outputs()
    training.load()
    training.build_model()
    training.check()
    training.prepare()
    return training


def test_search_space_holds_the_recipe_and_converts_the_warmup():
    cfg = Config(model="tiny", search_lr_factor=3.0, search_warmup_share_max=0.2, search_mask_time_prob_max=0.1)
    space = search.search_space(cfg, planned=500)
    assert space.recipe == {"learning_rate": 5e-3, "warmup_share": 0.08, "mask_time_prob": 0.05}  # tiny's recipe
    assert space.learning_rate == pytest.approx((5e-3 / 3, 5e-3 * 3))
    assert space.warmup_share == (0.0, 0.2) and space.mask_time_prob == (0.0, 0.1)
    # 500 warm-up updates of a 1,000-update run: half of it, so the range widens to hold the run's own value
    seed_like = Config(model="tiny", warmup_steps=500, mask_time_prob=0.3)
    space = search.search_space(seed_like, planned=1000)
    assert space.recipe["warmup_share"] == 0.5 and space.warmup_share == (0.0, 0.5)
    assert space.mask_time_prob == (0.0, 0.3)
    assert search.real_run_values({"learning_rate": 0.0123456, "warmup_share": 0.1, "mask_time_prob": 0.04321},
                                  planned=1000) == {"learning_rate": 0.0123, "warmup_steps": 100,
                                                    "mask_time_prob": 0.0432}
    with pytest.raises(GuardError, match="SEARCH_WARMUP_SHARE_MAX"):
        search.search_space(Config(model="tiny", search_warmup_share_max=1.5), planned=100)


def test_planned_updates_follow_max_steps_or_epochs():
    rows = list(range(100))
    assert search.planned_updates(Config(model="tiny", max_steps=70), rows) == 70
    cfg = Config(model="tiny", batch_size=8, gradient_accumulation_steps=2, num_train_epochs=3)
    assert search.planned_updates(cfg, rows) == 3 * (13 // 2)  # 13 batches of 8, 6 updates per epoch
    assert search.planned_updates(cfg, rows, world_size=2) == 3 * (7 // 2)


def test_best_trial_is_the_lowest_complete_one_with_ties_broken_by_cer(tmp_path):
    import pandas as pd

    rows = [(0, "complete", 1.0, 0.60, 5e-3), (1, "complete", 1.0, 0.40, 8e-3), (2, "pruned", 0.9, 0.30, 2e-3),
            (3, "complete", 1.0, 0.40, 3e-3), (4, "complete", 1.2, 0.10, 1e-2)]
    table = pd.DataFrame([{"trial": n, "state": state, "step": 60 if state == "complete" else 30, "wer": wer, "cer": cer,
                           "learning_rate": lr, "warmup_share": 0.1, "mask_time_prob": 0.05,
                           "values": "recipe" if n == 0 else "sampled", "seconds": 1.0}
                          for n, state, wer, cer, lr in rows], columns=search.TABLE_COLUMNS)
    best = search.best_row(table, "wer")
    assert best["trial"] == 1, "WER 1.0 ties: the lower CER, then the earlier trial; the pruned one never wins"
    assert search.best_row(table, "cer")["trial"] == 4
    with pytest.raises(GuardError, match="No trial"):
        search.best_row(table[table["state"] == "pruned"], "wer")
    record = {"metric": "wer", "best_trial": 1, "best_objective": 1.0, "planned_updates": 100,
              "best_values": search.real_run_values(best, 100), "trials": json.loads(table.to_json(orient="records"))}
    result = search.write_search(record, table, tmp_path / "search")
    assert result.best_values == {"learning_rate": 8e-3, "warmup_steps": 10, "mask_time_prob": 0.05}
    assert Path(result.paths["png"]).read_bytes()[:4] == b"\x89PNG"
    assert result.summary()["pruned"] == 1 and result.summary()["recipe_objective"] == 1.0
    assert search.read_search(tmp_path / "search") == json.loads(json.dumps(record))


@pytest.mark.slow  # six short trainings (~50 s): the slow tier, so that the unit tier stays within 3 minutes
def test_search_runs_writes_its_report_and_the_best_values_become_the_runs(base_run, tmp_path):
    training = prepared_training(base_run, tmp_path / "run")
    train_dir = training.train_dir
    before = sorted(p.name for p in train_dir.iterdir()) if train_dir.exists() else []  # prepared/ or nothing
    result = search.run_search(training)

    table = result.table
    assert list(table.columns) == COLUMNS and list(table["trial"]) == [0, 1, 2]
    assert set(table["state"]) <= {"complete", "pruned"} and table["state"].iloc[:2].eq("complete").all()
    assert table["values"].tolist() == ["recipe", "sampled", "sampled"]
    assert table.loc[0, "learning_rate"] == 5e-3 and table.loc[0, "mask_time_prob"] == 0.05
    assert table["learning_rate"].between(5e-3 / 3, 5e-3 * 3).all()
    assert table["wer"].between(0, 1.5).all() and table.loc[table["state"] == "complete", "step"].eq(4).all()
    complete = table[table["state"] == "complete"]
    assert result.best_objective == complete["wer"].min()
    best_row = table.loc[result.best_trial]
    assert best_row["state"] == "complete" and best_row["wer"] == complete["wer"].min()
    assert best_row["cer"] == complete.loc[complete["wer"] == best_row["wer"], "cer"].min(), "ties broken by CER"
    assert result.planned_updates == 40
    # the report, and nothing else: no checkpoint, no model, no trainer output left in 04_train
    files = {name: train_dir / "search" / name for name in search.TRIALS_FILES}
    assert all(path.stat().st_size > 0 for path in files.values())
    assert sorted(p.name for p in (train_dir / "search").iterdir()) == sorted(search.TRIALS_FILES)
    assert sorted(p.name for p in train_dir.iterdir()) == sorted(before + ["search"])
    assert not list(train_dir.glob("checkpoint-*")) and not training.model_dir.exists()
    record = json.loads(files["trials.json"].read_text())
    assert record["best_trial"] == result.best_trial and len(record["trials"]) == 3
    assert files["trials.csv"].read_text().splitlines()[0] == ",".join(COLUMNS)
    assert files["trials.png"].read_bytes()[:4] == b"\x89PNG"

    # The best values become the run's own: run.json, the Training (model, arguments), and a later load of the run.
    best = result.best_values
    assert set(best) == {"learning_rate", "warmup_steps", "mask_time_prob"}
    assert best["warmup_steps"] == round(table.loc[result.best_trial, "warmup_share"] * 40)
    cfg = search.use_best(training, result)
    assert (cfg.learning_rate, cfg.warmup_steps, cfg.mask_time_prob) == tuple(best[k] for k in search.SEARCHED_FIELDS)
    assert training.model.config.mask_time_prob == best["mask_time_prob"]
    assert training.args.learning_rate == best["learning_rate"] and training.args.warmup_steps == best["warmup_steps"]
    assert training.report["search"]["best_values"] == best and training.report["search"]["trials"] == 3
    run = json.loads((training.cfg.run_path / "run.json").read_text())
    assert not set(search.SEARCHED_FIELDS) & set(run["recipe_fields_from_recipe"])
    assert "eval_steps" in run["recipe_fields_from_recipe"], "the other recipe fields still follow the recipe"
    assert {k: run["steps"]["04_train"][k] for k in best} == best
    later = from_params({"LANGUAGE": "tr", "RUN_DIR": str(training.cfg.run_path)}, save=False)  # xlsr train
    assert {k: getattr(later, k) for k in best} == best

    # The same settings again (a rerun after a disconnect): the search is read back, not repeated.
    again = search.run_search(prepared_training(base_run, tmp_path / "copy"))  # another folder: a fresh search...
    assert not again.reused
    assert again.table.drop(columns="seconds").equals(table.drop(columns="seconds")), "seeded: the same trials"
    training = Training(training.cfg.updated(**{k: None for k in best}), log=lambda *a, **k: None)  # the notebook's
    training.load()
    training.build_model()
    training.prepare()
    reused = search.run_search(training)
    assert reused.reused and reused.best_values == best


def test_search_refuses_to_change_a_run_that_resumes(base_run, tmp_path):
    training = prepared_training(base_run, tmp_path / "run", search_trials=2)
    training.resume_from = training.train_dir / "checkpoint-4"
    with pytest.raises(GuardError, match="RESUME"):
        search.run_search(training)
    assert not (training.train_dir / "search").exists()


@pytest.mark.notebooks
def test_notebook_04_searches_then_trains_with_the_best_values(base_run, tmp_path):
    from test_notebook_04 import QUICK as NOTEBOOK_QUICK
    from test_notebook_04 import execute
    from test_train import copy_run

    run_dir = copy_run(base_run, tmp_path / "run")
    results = execute(run_dir, tmp_path / "04_train.ipynb",
                      **{**NOTEBOOK_QUICK, "SEARCH_TRIALS": 3, "SEARCH_STEPS": 4, "SEARCH_TRAIN_ROWS": 24})
    found = results["search"]
    assert found["trials"] == 3 and found["complete"] + found["pruned"] == 3 and not found["reused"]
    assert results["global_step"] == 4 and results["stopped_by"] == "completed"
    best = found["best_values"]
    report = json.loads((run_dir / "04_train" / "report.json").read_text())
    assert report["learning_rate"] == best["learning_rate"], "the training below the search used its best values"
    run = json.loads((run_dir / "run.json").read_text())
    assert {k: run["config"][k] for k in best} == best
    assert all((run_dir / "04_train" / "search" / name).exists() for name in search.TRIALS_FILES)
