"""Every notebook obeys the contract of DESIGN.md (checked statically, without running it)."""

import importlib.metadata
import json
import shlex
import sys
import types
from pathlib import Path

import nbformat
import papermill
import pytest

from xlsr_helpers import versions
from xlsr_helpers.colab import COLAB_BADGE_IMAGE, INSTALL_REQUIREMENT, colab_badge, install_command, install_lines
from xlsr_helpers.config import Config
from xlsr_helpers.constants import STEPS

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
    # nbformat.read adds missing cell ids with a warning (a hard error in a future nbformat): check the file itself
    unnamed = [i for i, cell in enumerate(json.loads(path.read_text())["cells"]) if "id" not in cell]
    assert not unnamed, f"cells without an id: {unnamed}"
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
    assert pip_lines[0] == install_command(), f"the install cell installs {install_command()}; found {pip_lines}"
    branch = [line.split("  #")[0] for line in lines[2:] if line and not line.startswith("#")]
    assert branch == install_lines(), f"the install cell's Colab branch is xlsr_helpers.colab.install_lines(); found {branch}"


def run_install_cell(source: str, monkeypatch) -> list[str]:
    """Run an install cell as Colab would (IPython's transformation of %pip lines, its expansion of {...} in
    the caller's namespace), google.colab faked and pip not run: the pip command lines it gives."""
    from IPython.core.inputtransformer2 import TransformerManager
    from IPython.utils.text import DollarFormatter

    commands: list[str] = []
    namespace: dict = {}

    class Shell:
        def run_line_magic(self, name, line, _stack_depth=1):
            commands.append(f"%{name} " + DollarFormatter().vformat(line, args=[], kwargs=namespace))

    namespace["get_ipython"] = lambda: Shell()
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    exec(TransformerManager().transform_cell(source), namespace)
    return commands


def test_install_cell_installs_the_torchcodec_of_the_installed_torch(monkeypatch):
    """On this machine's torch, the Colab branch installs the package with the installed torch and torchaudio
    required as they are, then the torchcodec line of the table (a CPU build, nothing else moved); the
    installed torchcodec is in it, so the cell would keep it."""
    from packaging.requirements import Requirement

    install = nbformat.read(str(PATHS[0]), as_version=4).cells[1]
    commands = run_install_cell(install.source, monkeypatch)
    kept = f'"torch=={importlib.metadata.version("torch")}" "torchaudio=={importlib.metadata.version("torchaudio")}"'
    assert len(commands) == 2 and commands[0] == f'%pip install -q "{INSTALL_REQUIREMENT}" {kept}', commands
    words = shlex.split(commands[1])
    assert words[:6] == ["%pip", "install", "-q", "--no-deps", "--index-url", versions.TORCHCODEC_INDEX], words
    requirement = Requirement(words[6])
    assert requirement.name == "torchcodec" and len(words) == 7, words
    installed = importlib.metadata.version("torchcodec")
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"torch {importlib.metadata.version('torch')}: the cell installs {requirement}, not the installed {installed}")


def test_install_cell_stops_on_an_unknown_torch(monkeypatch):
    install = nbformat.read(str(PATHS[0]), as_version=4).cells[1]
    monkeypatch.setattr(versions, "installed_torch", lambda: "9.1.0+cu999")
    known = ", ".join(versions.known_torch())
    with pytest.raises(versions.UnknownTorchVersion, match=rf"torch 9\.1\.0\+cu999 .*Known torch versions: {known}\."):
        run_install_cell(install.source, monkeypatch)


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
