"""Config, run.json (the family resolved once per step), results, the CLI's parsing, environment.yml vs pyproject."""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from xlsr_helpers.config import Config, parse_assignment
from xlsr_helpers.families import RECIPES, SEED_TRAINING, TINY_TRAINING, W2V_BERT_TRAINING, recipe_table, resolve
from xlsr_helpers.pipeline import check_parameter_names, select_steps
from xlsr_helpers.results import MIME, read_results
from xlsr_helpers.run_config import from_params

ROOT = Path(__file__).resolve().parent.parent


def test_resolved_fills_model_dependent_defaults(tmp_path):
    seed = resolve(Config(run_dir=str(tmp_path)))
    tiny = resolve(Config(run_dir=str(tmp_path), model="tiny"))
    assert seed.learning_rate == SEED_TRAINING["learning_rate"] == 3e-4
    assert seed.warmup_steps == 500 and seed.eval_steps == 400 and seed.layerdrop == 0.1
    assert tiny.learning_rate == TINY_TRAINING["learning_rate"]
    explicit = resolve(Config(run_dir=str(tmp_path), model="tiny", learning_rate=1e-3))
    assert explicit.learning_rate == 1e-3
    bert = resolve(Config(run_dir=str(tmp_path), model="facebook/w2v-bert-2.0"))  # by name: nothing cached
    assert (bert.learning_rate, bert.mask_time_prob, bert.hidden_dropout) == (5e-5, 0.0, 0.0)
    assert bert.learning_rate == W2V_BERT_TRAINING["learning_rate"]


def test_recipe_values_follow_the_model_of_each_step(tmp_path):
    """Step 01 ran with the default MODEL (XLSR-53), step 04 trains tiny: LEARNING_RATE left at None must be
    tiny's, not the value step 01 resolved and wrote into run.json; a value the run set stays."""
    from_params({"RUN_DIR": str(tmp_path), "BATCH_SIZE": 4}, step="01_load")
    assert json.loads((tmp_path / "run.json").read_text())["config"]["learning_rate"] == 3e-4
    later = from_params({"RUN_DIR": str(tmp_path), "MODEL": "tiny"}, step="04_train")
    assert later.learning_rate == TINY_TRAINING["learning_rate"] and later.batch_size == 4
    assert Config.load(tmp_path).learning_rate == TINY_TRAINING["learning_rate"]


def test_the_family_is_decided_once_and_recorded_per_step(tmp_path):
    """run.json keeps each step's family and recipe values; a later step with the same MODEL reads the earlier
    decision (which step made it, from what); which recipe fields follow the recipe is said once."""
    checkpoint = _checkpoint(tmp_path / "model", "wavlm")
    first = from_params({"RUN_DIR": str(tmp_path / "run"), "MODEL": str(checkpoint), "LEARNING_RATE": 1e-4},
                        step="01_load")
    assert first.resolution.family == "wavlm" and first.resolution.step == "01_load"
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    decided = record["steps"]["01_load"]["resolution"]
    assert decided["family"] == "wavlm" and "model_type='wavlm'" in decided["how"]
    assert decided["config_sha256"] == hashlib.sha256((checkpoint / "config.json").read_bytes()).hexdigest()
    assert record["steps"]["01_load"]["warmup_steps"] == SEED_TRAINING["warmup_steps"], "the recipe's values"
    following = record["recipe_fields_from_recipe"]
    assert "learning_rate" not in following and "warmup_steps" in following
    assert "from_recipe" not in decided, "kept once, as recipe_fields_from_recipe"
    messages = []
    later = from_params({"RUN_DIR": str(tmp_path / "run")}, step="02_normalize", log=messages.append)
    assert later.resolution == first.resolution and not messages, "the same decision, read back"
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["steps"]["02_normalize"]["resolution"]["step"] == "01_load"
    assert later.learning_rate == 1e-4
    assert Config.load(tmp_path / "run").resolution.from_recipe == first.resolution.from_recipe
    rows = {r["parameter"]: r["from"] for r in recipe_table(later)}
    assert rows["LEARNING_RATE"] == "set by the run" and rows["WARMUP_STEPS"] == "recipe", "also on a resolved config"


def test_a_changed_checkpoint_config_is_said_and_decided_again(tmp_path):
    checkpoint = _checkpoint(tmp_path / "model", "wavlm")
    from_params({"RUN_DIR": str(tmp_path / "run"), "MODEL": str(checkpoint)}, step="01_load")
    messages = []
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "hidden_size": 64}))  # re-saved: same family
    same = from_params({"RUN_DIR": str(tmp_path / "run")}, step="02_normalize", log=messages.append)
    assert len(messages) == 1 and "has changed since 01_load" in messages[0] and "stay 'wavlm'" in messages[0]
    assert same.resolution.family == "wavlm" and same.resolution.step == "02_normalize"
    (checkpoint / "config.json").write_text(json.dumps({**config, "model_type": "hubert"}))  # another family
    other = from_params({"RUN_DIR": str(tmp_path / "run")}, step="03_vocab", log=messages.append)
    assert other.resolution.family == "hubert" and "run again the steps from 03_vocab" in messages[-1]
    # decided by the name while nothing was at hand, then config.json says another family: said too
    guessed = resolve(Config(run_dir=str(tmp_path / "run"), model=str(tmp_path / "xlsr-like")))
    assert guessed.resolution.family == "wav2vec2" and "the name" in guessed.resolution.how
    _checkpoint(tmp_path / "xlsr-like", "wavlm")
    now = resolve(guessed, step="04_train", log=messages.append)
    assert now.resolution.family == "wavlm" and "at hand now" in messages[-1]
    # the fields that followed the guessed recipe follow the new one (WavLM's lr 2e-5, not wav2vec2's 3e-4)
    assert guessed.learning_rate == SEED_TRAINING["learning_rate"] != now.learning_rate
    assert now.learning_rate == RECIPES["wavlm"].training["learning_rate"]


def test_steps_without_a_model_do_not_import_transformers(tmp_path):
    """config.py is plain data, and steps 01 and 02 decide the family from config.json as JSON (or the name)."""
    code = ("import sys, xlsr_helpers.config, xlsr_helpers.constants; assert 'transformers' not in sys.modules\n"
            "from xlsr_helpers.run_config import from_params\n"
            f"cfg = from_params({{'RUN_DIR': {str(tmp_path)!r}}}, step='01_load')\n"
            "assert cfg.resolution.family == 'wav2vec2', cfg.resolution\n"
            "bad = [m for m in ('transformers', 'torch', 'xlsr_helpers.models') if m in sys.modules]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _checkpoint(folder: Path, model_type: str) -> Path:
    """A folder with only a config.json (all that deciding the family reads)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": model_type, "hidden_size": 32}))
    return folder


def test_run_dir_default_is_runs_language(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Config(language="de").run_path == tmp_path / "runs" / "de"
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert Config(language="de").run_path == tmp_path / "runs" / "de"


def test_run_json_round_trip_and_later_steps_inherit(tmp_path):
    params = {"LANGUAGE": "de", "RUN_DIR": str(tmp_path), "DATA_SOURCE": "synthetic", "MODEL": "tiny",
              "lowercase_is_ignored": 1, "NOT_A_FIELD": 2}
    first = from_params(params, step="01_load")
    assert first.language == "de" and first.model == "tiny"
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["steps"]["01_load"]["data_source"] == "synthetic"
    # A later notebook declares only RUN_DIR and its own parameters: the rest comes from run.json.
    later = from_params({"RUN_DIR": str(tmp_path), "EVAL_BATCH_SIZE": 4}, step="05_evaluate")
    assert later.language == "de" and later.model == "tiny" and later.eval_batch_size == 4
    assert set(json.loads((tmp_path / "run.json").read_text())["steps"]) == {"01_load", "05_evaluate"}


def test_load_without_run_json_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="01_load"):
        Config.load(tmp_path)


def test_unknown_field_is_rejected():
    with pytest.raises(ValueError, match="Unknown parameter"):
        Config().updated(not_a_field=1)
    with pytest.raises(ValueError, match="Unknown parameter"):
        check_parameter_names({"LERNING_RATE": 1})


def test_step_dir_rejects_unknown_step(tmp_path):
    with pytest.raises(ValueError, match="Unknown step"):
        Config(run_dir=str(tmp_path)).step_dir("07_deploy")


def test_select_steps():
    assert select_steps(None)[0] == "01_load" and len(select_steps(None)) == 6
    assert select_steps("1-3") == ["01_load", "02_normalize", "03_vocab"]
    assert select_steps("5,04_train") == ["04_train", "05_evaluate"]
    assert select_steps("train") == ["04_train"]
    with pytest.raises(ValueError, match="Unknown step"):
        select_steps("9")


def test_parse_assignment():
    assert parse_assignment("learning_rate=3e-4") == ("LEARNING_RATE", 3e-4)
    assert parse_assignment("PUSH_TO_HUB=True") == ("PUSH_TO_HUB", True)
    assert parse_assignment("DATA_SOURCE=common_voice:/data/cv/tr") == ("DATA_SOURCE", "common_voice:/data/cv/tr")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown parameter"):
        parse_assignment("LERNING_RATE=1")
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=VALUE"):
        parse_assignment("LEARNING_RATE")


def test_read_results_reads_recorded_outputs(tmp_path):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("record(...)")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={MIME: {"name": "wer", "value": 0.5}, "text/plain": "wer"}),
        nbformat.v4.new_output("display_data", data={MIME: {"name": "vocab", "value": ["a", "b"]}}),
        nbformat.v4.new_output("stream", text="noise"),
    ]
    notebook.cells = [cell]
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, str(path))
    assert read_results(path) == {"wer": 0.5, "vocab": ["a", "b"]}


def _requirement_names(requirements):
    return {re.split(r"[<>=\[ ]", r, maxsplit=1)[0].lower().replace("_", "-"): r.replace(" ", "")
            for r in requirements}


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _requirement_names(project["dependencies"])
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pip_lines = [l.strip()[2:].strip() for l in lines if l.startswith("      - ")]
    in_env = _requirement_names(p for p in pip_lines if not p.startswith("-e"))
    assert in_env == declared, "environment.yml's pip list must equal pyproject's dependencies"
    conda = {l.strip()[2:].split(">")[0].split("=")[0] for l in lines if l.startswith("  - ")}
    assert {"python", "ffmpeg", "espeak-ng", "pip"} <= conda
    assert any(p.startswith("-e .") for p in pip_lines)
    assert "conda-forge" in (ROOT / "environment.yml").read_text()


def test_xlsr_train_hands_its_options_to_train_main(tmp_path, capsys):
    from xlsr_helpers.cli import main

    code = main(["train", "--run-dir", str(tmp_path / "no-run")])
    assert code != 0
    assert "run.json" in capsys.readouterr().err


def test_wheel_carries_the_sentence_data(tmp_path):
    """Colab installs the package from git as a wheel (not editable): the bundled sentences must be in it."""
    import shutil
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools in this environment")
    source = tmp_path / "source"  # a copy: setuptools writes build/ next to pyproject.toml
    shutil.copytree(ROOT / "xlsr_helpers", source / "xlsr_helpers", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("xlsr_helpers-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "xlsr_helpers/data/synthetic_sentences.json" in names
    modules = ("load", "normalize", "vocab", "models", "audio", "ctc", "evaluate", "card/step", "train/step",
               "train/__main__", "train/data", "train/trainer")
    assert {f"xlsr_helpers/{m}.py" for m in modules} <= set(names)
    assert "xlsr_helpers/card/template.md" in names, "the model card's template is package data"
