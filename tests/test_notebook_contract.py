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


def run_install_cell(source: str, monkeypatch, colab: bool = True) -> list[str]:
    """Run an install cell as Colab would (IPython's transformation of %pip and ! lines, its expansion of {...}
    in the caller's namespace), google.colab faked (or absent: ``colab=False``), pip and apt-get not run: the
    command lines it gives."""
    from IPython.core.inputtransformer2 import TransformerManager
    from IPython.utils.text import DollarFormatter

    commands: list[str] = []
    namespace: dict = {}

    class Shell:
        def run_line_magic(self, name, line, _stack_depth=1):
            commands.append(f"%{name} " + DollarFormatter().vformat(line, args=[], kwargs=namespace))

        def system(self, command):
            commands.append("!" + DollarFormatter().vformat(command, args=[], kwargs=namespace))

    namespace["get_ipython"] = lambda: Shell()
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(TransformerManager().transform_cell(source), namespace)
    return commands


def test_install_cell_installs_the_torchcodec_of_the_installed_torch(monkeypatch):
    """On this machine's torch, the Colab branch installs the package alone, then its dependencies with the
    installed torch and torchaudio required as they are, then the torchcodec line of the table (a CPU build
    force-reinstalled, nothing else moved); the installed torchcodec is in it, so the cell would keep its
    version. With espeak-ng and ffmpeg there, no apt-get."""
    import shutil

    from packaging.requirements import Requirement

    from xlsr_helpers.colab import dependency_arguments

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")
    install = nbformat.read(str(PATHS[0]), as_version=4).cells[1]
    commands = run_install_cell(install.source, monkeypatch)
    assert len(commands) == 3 and commands[0] == f'%pip install -q --no-deps "{INSTALL_REQUIREMENT}"', commands
    assert commands[1] == f"%pip install -q {dependency_arguments()}", commands
    kept = [f'torch=={importlib.metadata.version("torch")}', f'torchaudio=={importlib.metadata.version("torchaudio")}']
    assert set(kept) <= set(shlex.split(commands[1])), commands[1]
    assert not [w for w in shlex.split(commands[1]) if w.startswith("torchcodec")], commands[1]
    words = shlex.split(commands[2])
    assert words[:7] == ["%pip", "install", "-q", "--force-reinstall", "--no-deps", "--index-url",
                         versions.TORCHCODEC_INDEX], words
    requirement = Requirement(words[7])
    assert requirement.name == "torchcodec" and len(words) == 8, words
    installed = importlib.metadata.version("torchcodec")
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"torch {importlib.metadata.version('torch')}: the cell installs {requirement}, not the installed {installed}")


def test_install_cell_warns_on_a_newer_torch_and_stops_on_an_older_one(monkeypatch):
    """A torch newer than the table (a new Colab image) takes the newest row with a warning; one older than
    the package supports stops with a clear message."""
    install = nbformat.read(str(PATHS[0]), as_version=4).cells[1]
    newest = versions.known_torch()[-1]
    monkeypatch.setattr(versions, "installed_torch", lambda: "9.1.0+cu999")
    with pytest.warns(versions.NewerTorchWarning, match=rf"torch 9\.1\.0\+cu999 is newer .*newest: {newest}"):
        commands = run_install_cell(install.source, monkeypatch)
    assert commands[2].endswith(f'"{versions.torchcodec_requirement(newest)}"'), commands
    monkeypatch.setattr(versions, "installed_torch", lambda: "2.4.0+cu121")
    known = ", ".join(versions.known_torch())
    with pytest.raises(versions.UnknownTorchVersion, match=rf"torch 2\.4\.0\+cu121 .*Known torch versions: {known}\."):
        run_install_cell(install.source, monkeypatch)


def test_install_cell_installs_espeak_ng_and_ffmpeg_where_missing(monkeypatch):
    """Notebook 01's default data is the synthetic corpus: espeak-ng speaks it, ffmpeg encodes it. Colab has
    no espeak-ng: the cell installs what is missing with apt-get, and nothing when both are there."""
    import shutil

    install = nbformat.read(str(PATHS[0]), as_version=4).cells[1]
    real_which = shutil.which
    for missing in (["espeak-ng"], ["espeak-ng", "ffmpeg"]):
        monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name in missing else real_which(name, *a, **k))
        commands = run_install_cell(install.source, monkeypatch)
        assert commands[3:] == ["!apt-get -qq update && apt-get -qq install -y --no-install-recommends "
                                + " ".join(missing)], commands
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")
    assert len(run_install_cell(install.source, monkeypatch)) == 3


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_install_cell_is_a_no_op_off_colab(path, monkeypatch):
    install = nbformat.read(str(path), as_version=4).cells[1]
    assert run_install_cell(install.source, monkeypatch, colab=False) == []


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
