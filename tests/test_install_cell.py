"""The Colab install cell installs exactly the intended set: its own pip commands, run against a local
package index that stands in for PyPI and PyTorch's CPU index, in a virtual environment seeded like Colab's.

The indexes are folders in the PEP 503 layout holding small stand-in wheels (metadata only) with the real
names, versions and local labels: torch and torchaudio "+cu126" as Colab has them, torchcodec plain (the CUDA
build PyPI serves) and "+cpu" (PyTorch's CPU index), the lock's versions of the libraries the cell pins and a
newer release of each, and an xlsr-helpers wheel with the real dependency metadata and the real colab.py,
constants.py, versions.py and lock (the cell imports them). The cell itself runs in the environment's interpreter,
with IPython's transformation of its %pip and ! lines, google.colab faked; only the index addresses are swapped.
Asserted: the installed set for Colab's torch 2.9, 2.11, 2.14 (without torchaudio) and 2.15 (newer than the
table: a warning, the newest row).
"""

import base64
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement

import xlsr_helpers
from xlsr_helpers import colab, versions

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(xlsr_helpers.__file__).resolve().parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCKED = versions.locked_versions()
CELL = nbformat.read(str(ROOT / "notebooks" / "01_load.ipynb"), as_version=4).cells[1].source

# What a Colab image has besides torch and torchaudio (versions of late 2025): the packages that the cell must
# leave alone (Colab's own), and older releases of the libraries it pins.
COLAB_OWN = {"numpy": "2.0.2", "ipywidgets": "7.7.1", "ipykernel": "6.17.1", "pyyaml": "6.0.3",
             "matplotlib": "3.10.0", "tqdm": "4.67.1", "soundfile": "0.13.1", "nbformat": "5.10.4"}
COLAB_OLDER = {"transformers": "4.57.1", "huggingface-hub": "0.36.0", "tokenizers": "0.22.1",
               "safetensors": "0.6.2", "accelerate": "1.11.0", "datasets": "4.0.0"}
TORCH = ["2.9.0", "2.11.0", "2.14.1", "2.15.0", "2.16.0"]  # on "PyPI" (plain: its CUDA builds) and the CPU index
TORCHCODEC = ["0.9.1", "0.10.0", "0.11.0", "0.17.0", "0.18.0"]
# The libraries' own dependencies, reduced to what ties them together (the real ones are longer).
DEPENDS = {"transformers": ["huggingface-hub>=1.0", "tokenizers", "safetensors", "numpy>=1.17", "tqdm", "pyyaml"],
           "datasets": ["huggingface-hub>=1.31", "numpy>=1.17", "tqdm>=4.66.3", "pyyaml"],
           "accelerate": ["torch>=2.0", "numpy", "pyyaml", "safetensors", "huggingface-hub"],
           "papermill": ["nbformat>=5.2", "tqdm", "pyyaml"], "optuna": ["numpy", "tqdm", "pyyaml"],
           "matplotlib": ["numpy>=1.23"]}


def newer(version: str) -> str:
    """A release after ``version`` ('5.25.0' -> '5.26.0'): on the index, so that a pin has something to refuse."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return f"{major}.{minor + 1}.0"


def wheel(folder: Path, name: str, version: str, requires=(), files: dict[str, bytes] | None = None) -> Path:
    """A wheel of ``name`` ``version`` (metadata, and ``files`` if given): enough for pip's resolver."""
    stem = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    metadata = "".join([f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                        *(f"Requires-Dist: {requirement}\n" for requirement in requires)])
    contents = {**(files or {}), f"{stem}.dist-info/METADATA": metadata.encode(),
                f"{stem}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: stand-in\nRoot-Is-Purelib: true\n"
                                           b"Tag: py3-none-any\n"}
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
              f"{len(data)}" for path, data in contents.items()] + [f"{stem}.dist-info/RECORD,,"]
    contents[f"{stem}.dist-info/RECORD"] = "\n".join(record).encode() + b"\n"
    path = folder / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name_in_zip, data in contents.items():
            archive.writestr(name_in_zip, data)
    return path


def index(root: Path, wheels: dict[str, list[tuple]]) -> str:
    """A PEP 503 index in ``root`` (one folder and index.html per project): its file:// address."""
    for name, releases in wheels.items():
        folder = root / versions.normalized(name)
        folder.mkdir(parents=True)
        links = [wheel(folder, name, *release).name for release in releases]
        (folder / "index.html").write_text("".join(f'<a href="{link}">{link}</a>\n' for link in links))
    return root.as_uri()


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    """The stand-in PyPI and CPU indexes, the xlsr-helpers wheel, and Colab's packages as wheels to seed."""
    root = tmp_path_factory.mktemp("indexes")
    pypi = {"torch": [(v,) for v in TORCH], "torchaudio": [(v, [f"torch=={v}"]) for v in TORCH],
            "torchcodec": [(v,) for v in TORCHCODEC]}
    for name in colab.LOCKED_ON_COLAB:
        pypi[name] = [(v, DEPENDS.get(name, ())) for v in (LOCKED[name], newer(LOCKED[name]))]
    for name, version in COLAB_OWN.items():
        pypi[name] = [(v, DEPENDS.get(name, ())) for v in (version, newer(version))]
    cpu = {"torchcodec": [(f"{v}+cpu",) for v in TORCHCODEC], "torch": [(f"{v}+cpu",) for v in TORCH]}
    package = root / "package"
    package.mkdir()
    requires = PROJECT["dependencies"] + [f'{r}; extra == "{extra}"'
                                          for extra, extras in PROJECT["optional-dependencies"].items() for r in extras]
    sources = {f"xlsr_helpers/{name}": (PACKAGE / name).read_bytes()
               for name in ("__init__.py", "colab.py", "constants.py", "versions.py", f"data/{versions.LOCK_FILE}")}
    helpers = wheel(package, "xlsr-helpers", PROJECT["version"], requires, sources)
    seeds = root / "seeds"
    seeds.mkdir()
    seed = {name: wheel(seeds, name, version, DEPENDS.get(name, ()))
            for name, version in {**COLAB_OWN, **COLAB_OLDER}.items()}
    for version in TORCH:
        seed[f"torch {version}"] = wheel(seeds, "torch", f"{version}+cu126")
        seed[f"torchaudio {version}"] = wheel(seeds, "torchaudio", f"{version}+cu126", [f"torch=={version}"])
    seed["torchcodec 0.17.0"] = wheel(seeds, "torchcodec", "0.17.0")
    return {"pypi": index(root / "pypi", pypi), "cpu": index(root / "cpu", cpu), "helpers": helpers.as_uri(),
            "seed": seed}


# Runs the cell in the seeded environment's interpreter: what IPython would (its %pip magic runs
# `python -m pip`, here this machine's pip with --python, the environment has none; its {...} expansion
# evaluates the names in the cell's namespace), the index addresses swapped, apt-get not run.
DRIVER = r'''
import json, os, shlex, string, subprocess, sys, types, warnings
swaps, commands = json.loads(os.environ["SWAPS"]), []

def expand(line, namespace):
    return "".join(literal + ("" if field is None else str(eval(field, namespace)))
                   for literal, field, _, _ in string.Formatter().parse(line))

class Shell:
    def run_line_magic(self, name, line, _stack_depth=1):
        line = expand(line, namespace)
        commands.append(f"%{name} {line}")
        for old, new in swaps.items():
            line = line.replace(old, new)
        done = subprocess.run([os.environ["PIP"], "-m", "pip", "--python", sys.executable, *shlex.split(line)],
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"pip {line} failed:\n{done.stdout}\n{done.stderr}")

    def system(self, command):
        commands.append("!" + expand(command, namespace))

namespace = {"get_ipython": Shell}
sys.modules["google.colab"] = types.ModuleType("google.colab")
with open(sys.argv[1]) as cell:
    code = cell.read()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    exec(code, namespace)
print(json.dumps({"commands": commands, "warnings": [str(w.message) for w in caught]}))
'''


def installed(venv: Path) -> dict[str, str]:
    """Normalized name -> version of what is installed in ``venv``."""
    found = {}
    for metadata in venv.glob("lib/python*/site-packages/*.dist-info/METADATA"):
        fields = dict(line.split(": ", 1) for line in metadata.read_text().splitlines()[:3] if ": " in line)
        found[versions.normalized(fields["Name"])] = fields["Version"]
    return found


def run_cell(venv: Path, seed: list[Path], indexes) -> dict:
    """A fresh environment with the ``seed`` wheels unpacked into it (as Colab's image has them), then the
    install cell run there: {"commands": [...], "warnings": [...]}."""
    from IPython.core.inputtransformer2 import TransformerManager

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    for path in seed:
        with zipfile.ZipFile(path) as archive:
            archive.extractall(site)
    (venv / "cell.py").write_text(TransformerManager().transform_cell(CELL))
    (venv / "driver.py").write_text(DRIVER)
    swaps = {versions.TORCHCODEC_INDEX: indexes["cpu"], colab.INSTALL_REQUIREMENT: f"xlsr-helpers @ {indexes['helpers']}"}
    env = {**os.environ, "SWAPS": json.dumps(swaps), "PIP": sys.executable, "PIP_INDEX_URL": indexes["pypi"],
           "PIP_CONFIG_FILE": os.devnull, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PIP_NO_INPUT": "1"}
    env.pop("PYTHONPATH", None)  # the environment imports the xlsr_helpers that the cell installed, not this tree
    done = subprocess.run([str(venv / "bin" / "python"), str(venv / "driver.py"), str(venv / "cell.py")],
                          capture_output=True, text=True, env=env, cwd=venv, timeout=120)
    assert done.returncode == 0, done.stderr
    check = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "check"],
                           capture_output=True, text=True, env=env)
    assert check.returncode == 0, f"the installed set is inconsistent:\n{check.stdout}{check.stderr}"
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("torch, torchaudio, seeded_torchcodec, torchcodec", [
    ("2.9.0", True, False, "0.9.1+cpu"),
    ("2.11.0", True, True, "0.17.0+cpu"),  # Colab's CUDA torchcodec is replaced by the CPU build
    ("2.14.1", False, False, "0.17.0+cpu"),  # a Colab without torchaudio: the one made for its torch comes
    ("2.15.0", True, False, "0.17.0+cpu"),  # newer than the table: its newest row, with a warning
], ids=["torch-2.9", "torch-2.11", "torch-2.14-no-torchaudio", "torch-2.15-newer"])
def test_install_cell_resolves_the_intended_set(tmp_path, indexes, torch, torchaudio, seeded_torchcodec, torchcodec):
    seed = indexes["seed"]
    wheels = [seed[name] for name in {**COLAB_OWN, **COLAB_OLDER}] + [seed[f"torch {torch}"]]
    wheels += [seed[f"torchaudio {torch}"]] if torchaudio else []
    wheels += [seed["torchcodec 0.17.0"]] if seeded_torchcodec else []
    result = run_cell(tmp_path / "venv", wheels, indexes)

    expected = {**COLAB_OWN, **{name: LOCKED[name] for name in colab.LOCKED_ON_COLAB},
                "torch": f"{torch}+cu126", "torchaudio": f"{torch}+cu126" if torchaudio else torch,
                "torchcodec": torchcodec, "xlsr-helpers": PROJECT["version"]}
    assert installed(tmp_path / "venv") == expected
    pins = shlex.split(result["commands"][1])
    assert (f"torchaudio=={torch}+cu126" in pins) == torchaudio and ("torchaudio>=2.9" in pins) != torchaudio, pins
    newest = versions.known_torch()[-1]
    if versions.torch_minor(torch) in versions.TORCHCODEC_FOR_TORCH:
        assert result["warnings"] == []
    else:
        assert [w for w in result["warnings"] if f"torch {torch}+cu126 is newer" in w and f"newest: {newest}" in w]


def test_dependency_arguments_pin_what_colab_has_and_the_lock(monkeypatch):
    """Colab's torch and torchaudio at their installed versions, only where installed; the lock's versions of
    LOCKED_ON_COLAB (transitive ones added); torchcodec (the third command) and extras left out; the rest
    as the package declares it."""
    have = {"torch": "2.11.0+cu126"}
    monkeypatch.setattr(colab, "_installed", have.get)
    requirements = ["transformers>=5.2", "torch>=2.9", "torchaudio>=2.9", "torchcodec>=0.9", "numpy>=1.24",
                    "huggingface_hub>=1.31", "pytest>=8.0; extra == \"dev\"", "tomli>=2; python_version < \"3.11\""]
    arguments = shlex.split(colab.dependency_arguments(requirements))
    assert arguments == [f"transformers=={LOCKED['transformers']}", "torch==2.11.0+cu126", "torchaudio>=2.9",
                         "numpy>=1.24", f"huggingface-hub=={LOCKED['huggingface-hub']}",
                         'tomli>=2; python_version < "3.11"'] + [
        f"{name}=={LOCKED[name]}" for name in colab.LOCKED_ON_COLAB if name not in ("transformers", "huggingface-hub")]


def test_the_locked_libraries_are_in_the_lock_and_within_the_package_bounds():
    """LOCKED_ON_COLAB: each in the lock, at a version the package allows; none of what Colab owns."""
    bounds = {versions.normalized(Requirement(r).name): Requirement(r).specifier for r in PROJECT["dependencies"]}
    for name in colab.LOCKED_ON_COLAB:
        assert name in LOCKED, f"{name} is not in xlsr_helpers/data/{versions.LOCK_FILE}"
        assert bounds.get(name, Requirement(name).specifier).contains(LOCKED[name]), (name, LOCKED[name])
    owned = {"torch", "torchaudio", "torchcodec", "numpy", "pandas", "pyarrow", "ipywidgets", "ipykernel", "ipython"}
    assert not owned & set(colab.LOCKED_ON_COLAB) and set(colab.KEPT_ON_COLAB) == {"torch", "torchaudio"}

