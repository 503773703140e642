"""The papermill runner: parameters reach the notebooks, results come back, failures name step and cell."""

import nbformat
import pytest

from xlsr_helpers.pipeline import StepFailed, run_pipeline


def _notebook(path, body):
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell('LANGUAGE = "tr"  # locale\nRUN_DIR = ""  # run folder')
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(body)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, str(path))


def test_runs_in_order_records_and_names_failing_cell(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_load.ipynb",
              "from xlsr_helpers.results import record\nrecord('language', LANGUAGE)\nrecord('run_dir', RUN_DIR)")
    _notebook(notebooks / "02_normalize.ipynb", "raise ValueError('sentence column is missing')")
    run_dir = tmp_path / "run"

    result = run_pipeline({"LANGUAGE": "de", "RUN_DIR": str(run_dir)}, steps="1",
                          notebooks_dir=notebooks, progress=False)
    assert result.results["01_load"] == {"language": "de", "run_dir": str(run_dir)}
    assert (run_dir / "notebooks" / "01_load.ipynb").exists()

    with pytest.raises(StepFailed, match=r"02_normalize failed in cell \d+.*ValueError: sentence column is missing"):
        run_pipeline({"LANGUAGE": "de", "RUN_DIR": str(run_dir)}, steps="1-2", notebooks_dir=notebooks,
                     progress=False)
    assert (run_dir / "notebooks" / "02_normalize.ipynb").exists(), "the executed copy shows the traceback"


def test_unknown_parameter_is_refused_before_running(tmp_path):
    with pytest.raises(ValueError, match="Unknown parameter"):
        run_pipeline({"LERNING_RATE": 1.0}, notebooks_dir=tmp_path, progress=False)


def test_parameter_no_notebook_declares_is_reported(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_load.ipynb", "pass")
    with pytest.warns(UserWarning, match=r"declares \['MAX_STEPS'\]"):
        run_pipeline({"RUN_DIR": str(tmp_path / "run"), "MAX_STEPS": 5}, steps="1", notebooks_dir=notebooks,
                     progress=False)


def test_executed_copies_are_trusted_and_keep_their_widget_state(tmp_path, monkeypatch):
    """A learner opens <RUN_DIR>/notebooks/*.ipynb: trusted (else Jupyter strips the audio players and shows
    the widgets as text) and with the widgets' state saved (so they render without running the notebook)."""
    from nbformat.sign import NotebookNotary

    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))  # the notary's secret and database
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_load.ipynb",
              "import ipywidgets\nfrom IPython.display import display\n"
              "display(ipywidgets.VBox([ipywidgets.IntSlider(value=3, max=9), ipywidgets.HTML('<b>clip</b>')]))")
    _notebook(notebooks / "02_normalize.ipynb", "raise ValueError('sentence column is missing')")
    run_dir = tmp_path / "run"
    with pytest.raises(StepFailed):
        run_pipeline({"RUN_DIR": str(run_dir)}, steps="1-2", notebooks_dir=notebooks, progress=False)

    notary = NotebookNotary()
    for name in ("01_load.ipynb", "02_normalize.ipynb"):  # the failed step's copy too
        executed = nbformat.read(str(run_dir / "notebooks" / name), as_version=4)
        assert notary.check_signature(executed), f"{name} is not signed"
    executed = nbformat.read(str(run_dir / "notebooks" / "01_load.ipynb"), as_version=4)
    state = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = {model["model_name"]: model["state"] for model in state.values()}
    assert models["IntSliderModel"]["value"] == 3 and "VBoxModel" in models and "HTMLModel" in models
    nbformat.validate(executed)
    # Opening it in another user's Jupyter (another secret) would not trust it: the signature is this user's.
    (tmp_path / "other-user").mkdir()
    other = NotebookNotary(data_dir=str(tmp_path / "other-user"))
    assert not other.check_signature(executed)


def test_demo_trains_a_fixed_number_of_steps_without_a_time_limit():
    """`make demo` must give the same WER/CER on every machine: a fixed number of updates, never a time limit
    (MAX_TRAIN_MINUTES stopped a slower machine mid-schedule), and notebook 04 declares every name it sets."""
    from xlsr_helpers.config import Config
    from xlsr_helpers.families import resolve
    from xlsr_helpers.pipeline import DEMO_PARAMETERS, check_parameter_names, declared_parameters, notebook_path

    check_parameter_names(DEMO_PARAMETERS)
    assert isinstance(DEMO_PARAMETERS["MAX_STEPS"], int) and DEMO_PARAMETERS["MAX_STEPS"] > 0
    assert DEMO_PARAMETERS.get("MAX_TRAIN_MINUTES", 0.0) == 0.0
    cfg = resolve(Config().updated(**{name.lower(): value for name, value in DEMO_PARAMETERS.items()}))
    assert cfg.is_tiny() and cfg.max_train_minutes == 0.0 and cfg.max_steps == DEMO_PARAMETERS["MAX_STEPS"]
    training = {"MAX_STEPS", "MAX_TRAIN_MINUTES", "BATCH_SIZE", "ATTENTION_DROPOUT"} & set(DEMO_PARAMETERS)
    assert training <= declared_parameters(notebook_path("04_train"))
    assert "MAX_TRAIN_MINUTES" in Config.parameter_names(), "still a parameter for anyone's own run"


def test_no_cell_timeout_by_default(tmp_path, monkeypatch):
    """Step 04 trains in one cell, for hours: no limit per cell unless one is asked for."""
    import shutil

    import papermill

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_load.ipynb", "pass")
    limits = []

    def execute(source, target, execution_timeout="not given", **kwargs):
        limits.append(execution_timeout)
        shutil.copy(source, target)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    run_pipeline({"RUN_DIR": str(tmp_path / "run")}, steps="1", notebooks_dir=notebooks, progress=False)
    run_pipeline({"RUN_DIR": str(tmp_path / "run")}, steps="1", notebooks_dir=notebooks, progress=False,
                 cell_timeout_s=600)
    assert limits == [None, 600], "papermill's None: no limit"
