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
