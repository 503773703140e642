"""A corpus folder appears whole or not at all, whichever processes build it at the same time.

A corpus is built in a temporary sibling folder (``.<locale>.tmp-<pid>-<ns>``) and renamed into place
when complete; a finished corpus carries a build record (``layout.MARKER``), written last, and a folder
counts as finished only when its record matches what is asked for. So an interrupted build is never
half-used (the next call builds it again), two processes that build the same corpus at once both end
with the complete one (the first rename wins, the second returns it), and the temporary folder of a
killed build is removed by the next build once its process is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from .layout import MARKER


def is_complete(folder: Path, expected: dict) -> bool:
    """Whether ``folder`` holds a finished corpus whose build record agrees with ``expected``."""
    try:
        record = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all(record.get(k) == v for k, v in expected.items())


def pid_alive(pid: int) -> bool:
    """Whether a process of this id runs (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(final: Path) -> None:
    """Remove the temporary folders that builds of ``final`` left when their process was killed."""
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        try:
            pid = int(stale.name.rsplit("-", 2)[-2])
        except ValueError:
            continue
        if not pid_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)


def build_into(final: Path, expected: dict, fill: Callable[[Path], None]) -> Path:
    """``fill(tmp)`` writes the whole corpus (its build record last) into a temporary sibling of ``final``,
    which is then renamed to ``final``; returns ``final``. The temporary folder never outlives the call."""
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final)
    tmp = parent / f".{final.name}.tmp-{os.getpid()}-{time.time_ns()}"
    try:
        fill(tmp)
        if final.exists():
            if is_complete(final, expected):  # another process finished first
                return final
            shutil.rmtree(final)
        try:
            os.rename(tmp, final)
        except OSError:
            if is_complete(final, expected):
                return final
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
