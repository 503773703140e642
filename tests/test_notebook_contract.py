"""Every notebook obeys the contract of DESIGN.md (checked statically, without running it)."""

from pathlib import Path

import nbformat
import papermill
import pytest

from xlsr_helpers.colab import COLAB_BADGE_IMAGE, colab_badge, install_command
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


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def colab_problems(notebook) -> list[str]:
    """What would stop Colab (or GitHub's viewer) from opening a notebook: an invalid nbformat document,
    or ``metadata.widgets`` without the widget ``state`` (Colab refuses such a file)."""
    problems = []
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as error:
        problems.append(f"not valid nbformat: {error.message}")
    widgets = notebook.metadata.get("widgets")
    if widgets is not None:
        state = widgets.get(WIDGET_STATE) if isinstance(widgets, dict) else None
        if not isinstance(state, dict) or not isinstance(state.get("state"), dict):
            problems.append(f"metadata.widgets has no {WIDGET_STATE} with a 'state'")
    return problems


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_opens_in_colab(path):
    """Valid nbformat, no widget metadata without state, the install cell first, and the badge and the
    install command of the one repository that xlsr_helpers.colab names."""
    if not path.exists():
        pytest.fail(f"{path.name} does not exist")
    notebook = nbformat.read(str(path), as_version=4)
    assert notebook.nbformat == 4
    assert colab_problems(notebook) == []
    first, install = notebook.cells[0], notebook.cells[1]
    badges = [line for line in first.source.splitlines() if COLAB_BADGE_IMAGE in line or "colab.research" in line]
    assert badges == [colab_badge(path.name)], (
        f"cell 1 needs exactly the badge of xlsr_helpers.colab.colab_badge({path.name!r}); found {badges}")
    code_cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    assert code_cells[0] == 1, "the install cell is the first code cell"
    lines = [line.strip() for line in install.source.splitlines()]
    assert 'if "google.colab" in sys.modules:' in " ".join(lines), "the install cell does something only on Colab"
    pip_lines = [line for line in lines if "pip install" in line]
    assert pip_lines == [install_command()], f"the install cell installs {install_command()}; found {pip_lines}"


def test_colab_check_finds_what_colab_refuses():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x = 1")]
    assert colab_problems(notebook) == []
    notebook.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0}}
    assert colab_problems(notebook) == [f"metadata.widgets has no {WIDGET_STATE} with a 'state'"]
    notebook.metadata["widgets"][WIDGET_STATE]["state"] = {}
    assert colab_problems(notebook) == []
    notebook.cells[0]["outputs"] = "not a list"
    assert colab_problems(notebook)[0].startswith("not valid nbformat")
