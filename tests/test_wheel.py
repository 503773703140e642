"""The notebooks ship in the package: built as a wheel and installed into a fresh environment without the
source tree, `xlsr run --steps 1-3` finds them (importlib.resources) and runs them on the synthetic corpus.

The environment reuses this one's installed libraries (a .pth line to its site-packages, not its editable
install of this package): only xlsr-helpers comes from the wheel.
"""

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("01_load", "02_normalize", "03_vocab")


def build_wheel(tmp_path: Path) -> Path:
    """`pip wheel --no-deps` of a copy of the source tree (the build writes into the tree it builds)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, tree / name)
    shutil.copytree(ROOT / "notebooks", tree / "notebooks")
    shutil.copytree(ROOT / "xlsr_helpers", tree / "xlsr_helpers", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--no-cache-dir", "-w", str(tmp_path / "dist"), str(tree)], check=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("xlsr_helpers-*.whl")
    return wheel


def test_xlsr_run_from_an_installed_wheel_finds_the_notebooks(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(Path(n).name for n in archive.namelist() if n.startswith("xlsr_helpers/notebooks/"))
    assert shipped == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")), shipped

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (packages,) = venv.glob("lib/python*/site-packages")
    (packages / "reuse.pth").write_text("".join(f"{p}\n" for p in site.getsitepackages()))
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=300)

    work = tmp_path / "work"  # neither the source tree nor its parent: nothing of it on sys.path
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(python), "-c", "import xlsr_helpers.pipeline as p; print(p.__file__); "
                            "print(p.NOTEBOOKS_DIR); from jupyter_client.kernelspec import KernelSpecManager as K; "
                            "print(K().get_kernel_spec('python3').argv[0])"],
                           capture_output=True, text=True, cwd=work, env=env, check=True)
    module, notebooks, kernel = where.stdout.split()
    assert Path(module).is_relative_to(packages) and Path(notebooks).is_relative_to(packages), where.stdout
    assert Path(kernel) == python, f"papermill's kernel would run {kernel}, not this environment's {python}"

    run_dir = work / "run"
    done = subprocess.run([str(venv / "bin" / "xlsr"), "run", "--language", "tr", "--source", "synthetic",
                           "--model", "tiny", "--steps", "1-3", "--run-dir", str(run_dir),
                           "-p", "SYNTHETIC_SIZE=tiny"], capture_output=True, text=True, cwd=work, env=env,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for step in STEPS:
        assert (run_dir / step).is_dir(), step
        assert (run_dir / "notebooks" / f"{step}.ipynb").is_file(), step
    assert (run_dir / "03_vocab" / "processor" / "vocab.json").is_file()
