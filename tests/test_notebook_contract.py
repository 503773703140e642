"""Every notebook obeys the contract of DESIGN.md (checked statically, without running it)."""

from pathlib import Path

import nbformat
import papermill
import pytest

from xlsr_helpers.config import STEPS, Config

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = [NOTEBOOKS / f"{step}.ipynb" for step in STEPS]


def test_all_six_notebooks_exist():
    missing = [p.name for p in PATHS if not p.exists()]
    assert not missing, f"missing notebooks: {missing}"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_contract(path):
    if not path.exists():
        pytest.fail(f"{path.name} does not exist")
    notebook = nbformat.read(str(path), as_version=4)
    nbformat.validate(notebook)
    cells = notebook.cells
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"
    assert cells[0].cell_type == "markdown" and cells[0].source.lstrip().startswith("#")
    assert "colab.research.google.com" in cells[0].source, "cell 1 needs the Open-in-Colab badge"
    assert cells[1].cell_type == "code" and "google.colab" in cells[1].source, "cell 2: Colab-only install"
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged == [2], f"exactly one parameters cell, the third; found at {tagged}"
    for cell in cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], "committed without outputs"
            assert cell.execution_count is None, "committed without execution counts"
    assert "record(" in cells[-1].source, "the last cell records the step's results"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_parameters_are_config_fields(path):
    if not path.exists():
        pytest.fail(f"{path.name} does not exist")
    declared = papermill.inspect_notebook(str(path))
    assert declared, "a parameters cell declares at least LANGUAGE/RUN_DIR"
    # papermill skips (with only a log warning) a line it cannot parse, e.g. one whose comment holds
    # "=" or "(": such a parameter would silently never receive the value given to `xlsr run`.
    notebook = nbformat.read(str(path), as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    assigned = {line.split("=", 1)[0].strip() for line in cell.source.splitlines()
                if "=" in line and not line.lstrip().startswith("#")}
    assert assigned == set(declared), f"papermill cannot parse these lines: {sorted(assigned - set(declared))}"
    unknown = set(declared) - set(Config.parameter_names())
    assert not unknown, f"parameters that are not Config fields: {unknown}"
    for name, info in declared.items():
        assert name.isupper(), name
        assert info["help"], f"{name} needs a comment saying what it is (allowed values)"
    assert "RUN_DIR" in declared
