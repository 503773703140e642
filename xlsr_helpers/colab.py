"""Google Colab: the install cell's commands, and Google Drive, so that a run folder on Drive survives a
disconnect.

Standard library only (and versions.py, constants.py): the install cell imports it before the package's
dependencies are installed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from importlib import metadata
from pathlib import Path

from . import versions
from .constants import DRIVE_MOUNT

# Where the curriculum is published: each notebook's Open-in-Colab badge and its install cell point here
# (tests/test_notebook_contract.py checks the notebooks against these, so a fork changes them in one place).
REPOSITORY = "xlsr-curriculum/xlsr-curriculum"  # GitHub owner/name
BRANCH = "main"
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
DISTRIBUTION = "xlsr-helpers"
INSTALL_REQUIREMENT = f"{DISTRIBUTION} @ git+https://github.com/{REPOSITORY}"  # what the install cell installs

# What the install cell does with Colab's packages. Colab's own are kept: torch and torchaudio required at their
# installed versions (KEPT_ON_COLAB); numpy, pandas, pyarrow, matplotlib, ipywidgets, ipykernel and the rest of
# Colab's stack keep the package's lower bounds, so pip leaves them as they are (they link Colab's CUDA, numpy
# or notebook front end, and other preinstalled packages are built against them).
# The libraries this curriculum calls directly, pure Python or self-contained wheels that link none of those,
# are installed at the lock's versions (LOCKED_ON_COLAB, read from xlsr_helpers/data/constraints.txt, the
# one list of versions): the set that CI tested. Why: a release after the lock can break a notebook whatever
# the change (transformers 5.25 broke Wav2Vec2ProcessorWithLM.from_pretrained), and a learner on Colab should
# get what the tests passed with, not the day's releases; a fix released later arrives with `make lock`.
KEPT_ON_COLAB = ("torch", "torchaudio")
LOCKED_ON_COLAB = ("transformers", "tokenizers", "safetensors", "huggingface-hub", "datasets", "accelerate",
                   "jiwer", "optuna", "papermill", "datacollective")
# Debian packages the synthetic corpus (DATA_SOURCE "synthetic", notebook 01's default) runs: espeak-ng
# speaks, ffmpeg encodes the mp3 (when torchcodec cannot). Colab has ffmpeg but no espeak-ng.
SYSTEM_PACKAGES = ("espeak-ng", "ffmpeg")


def colab_url(notebook: str) -> str:
    """The address that opens ``notebooks/<notebook>`` of the repository in Colab."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{notebook}"


def colab_badge(notebook: str) -> str:
    """The Markdown of the Open-in-Colab badge of a notebook (its first cell)."""
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({colab_url(notebook)})"


def install_command() -> str:
    """The install cell's first command (run only on Colab; elsewhere `make setup` installs the package): the
    package alone, without its dependencies, so that this module can say which ones to install."""
    return f'%pip install -q --no-deps "{INSTALL_REQUIREMENT}"'


def install_lines() -> list[str]:
    """The code lines of the install cell's Colab branch (its comments aside), four steps: 1. the package
    alone; 2. its dependencies as dependency_arguments() gives them; 3. the CPU build of the torchcodec made
    for Colab's torch, from the table of xlsr_helpers.versions, force-reinstalled from PyTorch's CPU index
    with --no-deps (pip cannot keep another build, and nothing else moves; a torch newer than the table warns
    and takes its newest row); 4. espeak-ng and ffmpeg with apt-get where missing (the synthetic corpus)."""
    return [install_command(),
            "from xlsr_helpers.colab import dependency_arguments, missing_system_packages",
            "from xlsr_helpers.versions import TORCHCODEC_INDEX, torchcodec_requirement",
            "arguments = dependency_arguments()",
            "%pip install -q {arguments}",
            'requirement = torchcodec_requirement(newer="warn")',
            '%pip install -q --force-reinstall --no-deps --index-url {TORCHCODEC_INDEX} "{requirement}"',
            "missing = missing_system_packages()",
            "if missing:",
            "!apt-get -qq update && apt-get -qq install -y --no-install-recommends {missing}"]


def dependency_arguments(requirements: list[str] | None = None) -> str:
    """The install cell's second pip command's arguments: the package's dependencies (``requirements``,
    default: the installed package's metadata), where
    - torch and torchaudio are required at Colab's installed versions (pip keeps them, or says why it
      cannot); one that is not installed keeps the package's bound (no pin of what Colab does not have);
    - the libraries of LOCKED_ON_COLAB are pinned at the lock's versions (xlsr_helpers/data/constraints.txt);
    - torchcodec is left to the third command (a CPU build from PyTorch's index), extras are left out.
    The rest (Colab's numpy, pandas, ipywidgets, ipykernel, matplotlib, ...) keeps the package's lower bound:
    pip leaves an installed version that satisfies it."""
    if requirements is None:
        requirements = metadata.requires(DISTRIBUTION) or []
    locked = versions.locked_versions()
    arguments, named = [], set()
    for requirement in requirements:
        spec, _, marker = (part.strip() for part in requirement.partition(";"))
        if "extra" in marker:
            continue
        name = versions.normalized(re.match(r"[A-Za-z0-9_.\-]+", spec).group(0))
        named.add(name)
        suffix = f"; {marker}" if marker else ""
        if name == "torchcodec":
            continue
        if name in KEPT_ON_COLAB and _installed(name):
            arguments.append(f"{name}=={_installed(name)}{suffix}")
        elif name in LOCKED_ON_COLAB:
            arguments.append(f"{name}=={_locked(locked, name)}{suffix}")
        else:
            arguments.append(requirement.strip())
    arguments += [f"{name}=={_locked(locked, name)}" for name in LOCKED_ON_COLAB if name not in named]
    return shlex.join(arguments)


def missing_system_packages() -> str:
    """The Debian packages of SYSTEM_PACKAGES whose command is missing here, for apt-get ('' when none)."""
    return " ".join(name for name in SYSTEM_PACKAGES if shutil.which(name) is None)


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _locked(locked: dict[str, str], name: str) -> str:
    if name not in locked:
        raise KeyError(f"{name} is in xlsr_helpers.colab.LOCKED_ON_COLAB but not in the lock "
                       f"(xlsr_helpers/data/{versions.LOCK_FILE})")
    return locked[name]


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def on_drive(path: str | Path) -> bool:
    """True when ``path`` lies on the mounted Google Drive."""
    try:
        Path(path).resolve().relative_to(DRIVE_MOUNT.resolve())
        return True
    except ValueError:
        return False


def ensure_drive(run_dir: str | Path) -> None:
    """Mount Google Drive when the run folder is on it (only on Colab; a no-op elsewhere)."""
    if in_colab() and on_drive(run_dir) and not (DRIVE_MOUNT / "MyDrive").exists():
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(str(DRIVE_MOUNT))


# --------------------------------------------------------------------------------------------------
# Drive's 15 GB: the local twin of a folder on Drive (the Colab machine's own disk, where step 04's checkpoints
# rotate and step 06's upload folder is assembled), Drive's free space, and the one way step 04 deletes there.
# What step 04 puts on Drive, and how often, is train/drive.py's.
# --------------------------------------------------------------------------------------------------
LOCAL_ROOT = DRIVE_MOUNT.parent / "xlsr-local"  # /content/xlsr-local: the disk Drive is mounted on, not Drive


def local_twin(path: str | Path) -> Path:
    """Where a folder of the run lives on the machine's own disk when ``path`` is on Google Drive: the same
    path below ``LOCAL_ROOT`` (``/content/xlsr-local/MyDrive/xlsr-runs/tr/04_train`` for
    ``/content/drive/MyDrive/xlsr-runs/tr/04_train``); ``path`` itself when it is not on Drive. The local disk
    is lost with the Colab machine; Drive keeps only what :mod:`xlsr_helpers.train.drive` mirrors there."""
    resolved = Path(path).resolve()
    try:
        return LOCAL_ROOT / resolved.relative_to(DRIVE_MOUNT.resolve())
    except ValueError:
        return resolved


def existing_ancestor(path: str | Path) -> Path:
    """``path``, or its nearest parent that exists (where the free space of a folder not yet made is read)."""
    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    return path


def drive_free_bytes(path: str | Path) -> int:
    """Bytes that may still be written at ``path`` (on Drive: the quota less what is used, the bin included,
    as the mount reports it)."""
    return shutil.disk_usage(existing_ancestor(path)).free


def delete_on_drive(path: str | Path) -> None:
    """Delete a file or folder on Drive. Drive moves it to its bin, which counts against the quota for 30
    days: every call is bytes that stay used (``train/drive.py`` counts them before training). Nothing happens
    when ``path`` is not there."""
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def flush_drive() -> None:
    """Push pending writes to Google Drive (after a checkpoint), so a disconnect loses nothing."""
    if in_colab() and (DRIVE_MOUNT / "MyDrive").exists():
        os.sync()  # Drive's FUSE mount uploads what the kernel has written; sync makes it write now
