"""Google Colab and Google Drive detection, so that a run folder on Drive survives a disconnect."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DRIVE_MOUNT = Path("/content/drive")


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
