"""Google Colab and Google Drive detection, so that a run folder on Drive survives a disconnect."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DRIVE_MOUNT = Path("/content/drive")

# Where the curriculum is published: each notebook's Open-in-Colab badge and its install cell point here
# (tests/test_notebook_contract.py checks the notebooks against these, so a fork changes them in one place).
REPOSITORY = "xlsr-curriculum/xlsr-curriculum"  # GitHub owner/name
BRANCH = "main"
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
INSTALL_REQUIREMENT = f"xlsr-helpers @ git+https://github.com/{REPOSITORY}"  # what the install cell installs


def colab_url(notebook: str) -> str:
    """The address that opens ``notebooks/<notebook>`` of the repository in Colab."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{notebook}"


def colab_badge(notebook: str) -> str:
    """The Markdown of the Open-in-Colab badge of a notebook (its first cell)."""
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({colab_url(notebook)})"


def install_command() -> str:
    """The install cell's command (run only on Colab; elsewhere `make setup` installs the package). Colab's
    torch and torchaudio are required at their installed versions: pip keeps them, or says why it cannot."""
    kept = " ".join(f'"{name}=={{version({name!r})}}"' for name in ("torch", "torchaudio"))  # IPython expands {...}
    return f'%pip install -q "{INSTALL_REQUIREMENT}" {kept}'


def install_lines() -> list[str]:
    """The code lines of the install cell's Colab branch (its comments aside): the package with Colab's torch
    and torchaudio kept (Colab's ipywidgets 7.7 satisfies the package's bound too), then the torchcodec built
    for that torch, from the table of xlsr_helpers.versions (an unknown torch stops there with a clear
    message), a CPU build (any CUDA variant of torch loads it) installed with --no-deps (nothing else moves)."""
    return ["from importlib.metadata import version",
            install_command(),
            "from xlsr_helpers.versions import TORCHCODEC_INDEX, torchcodec_requirement",
            "requirement = torchcodec_requirement()",
            '%pip install -q --no-deps --index-url {TORCHCODEC_INDEX} "{requirement}"']


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def on_drive(path: str | Path) -> bool:
    """True when ``path`` lies on the mounted Google Drive."""
    try:
        Path(path).resolve().relative_to(DRIVE_MOUNT)
        return True
    except ValueError:
        return False


def ensure_drive(run_dir: str | Path) -> None:
    """Mount Google Drive when the run folder is on it (only on Colab; a no-op elsewhere)."""
    if in_colab() and on_drive(run_dir) and not (DRIVE_MOUNT / "MyDrive").exists():
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(str(DRIVE_MOUNT))


def flush_drive() -> None:
    """Push pending writes to Google Drive (after a checkpoint), so a disconnect loses nothing."""
    if in_colab() and (DRIVE_MOUNT / "MyDrive").exists():
        os.sync()  # Drive's FUSE mount uploads what the kernel has written; sync makes it write now
