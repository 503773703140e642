"""Google Drive, as the stand-in has it: ``mount()`` gives a folder with a quota and Drive's bin accounting.

The account (COLAB_STAND_IN_ROOT) holds the "My Drive" folder while it is not mounted; ``mount(mountpoint)``
moves it to ``<mountpoint>/MyDrive`` (one rename: nothing is copied) and ``flush_and_unmount()`` moves it back, as
the rehearsal's "disconnect" does (:func:`disconnect`). What Drive would count against the quota, live files plus
the bin (deleted files and replaced versions, which Drive keeps for 30 days), is measured by the accountant
(``_accountant.py``), a process that ``mount`` starts once and that outlives kernels, as Drive outlives a Colab
runtime. Its ledger is ``<account>/ledger.json``.

The quota (``<account>/quota``, bytes, when the rehearsal has written it) is what ``os.statvfs`` and so
``shutil.disk_usage`` report for a path under the mount point (in every kernel: the stand-in's ``attach`` installs
the wrapper, as Colab's mount answers every process): total = quota, free = quota - (live + bin) as of
the last ledger. That is what a budget check on Colab reads (assumed: Colab's Drive mount reports the account's
quota and use; not verified here). Writes beyond the quota are not refused: the rehearsal asserts the peak
afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import account

MY_DRIVE = "MyDrive"
_ACCOUNTANT = Path(__file__).with_name("_accountant.py")
_original_statvfs = os.statvfs


def _account() -> Path:
    return Path(account())


def mount(mountpoint: str, force_remount: bool = False, timeout_ms: int = 120000, readonly: bool = False) -> None:
    """Colab's ``drive.mount``: My Drive appears at ``<mountpoint>/MyDrive``."""
    mountpoint = Path(mountpoint)
    target = mountpoint / MY_DRIVE
    if target.is_dir() and not force_remount:
        print(f"Drive already mounted at {mountpoint}; to attempt to forcibly remount, call "
              f'drive.mount("{mountpoint}", force_remount=True).')
        return
    if target.is_dir():  # force_remount
        flush_and_unmount()
    if mountpoint.exists() and any(mountpoint.iterdir()):
        raise ValueError("Mountpoint must not already contain files")  # Colab's refusal
    stored = _account() / MY_DRIVE
    stored.mkdir(parents=True, exist_ok=True)
    mountpoint.mkdir(parents=True, exist_ok=True)
    os.rename(stored, target)
    (_account() / "mountpoint").write_text(str(mountpoint))
    _start_accountant(target)
    os.statvfs = _statvfs
    print(f"Mounted at {mountpoint}")


def flush_and_unmount(timeout_ms: int = 24 * 60 * 60 * 1000) -> None:
    """Colab's ``drive.flush_and_unmount``: My Drive goes back to the account."""
    os.sync()
    disconnect()


def disconnect() -> None:
    """My Drive back to the account (what a disconnect leaves: Drive keeps everything, the runtime forgets the
    mount). Used by the rehearsal between sessions; a no-op when nothing is mounted."""
    marker = _account() / "mountpoint"
    if not marker.exists():
        return
    mounted = Path(marker.read_text()) / MY_DRIVE
    if mounted.is_dir():
        os.rename(mounted, _account() / MY_DRIVE)
    marker.unlink()


def _start_accountant(my_drive: Path) -> None:
    """Start the accountant unless it runs; wait until it watches (its pid file appears)."""
    pid_file = _account() / "accountant.pid"
    if pid_file.exists() and _alive(int(pid_file.read_text())):
        return
    pid_file.unlink(missing_ok=True)
    log = open(_account() / "accountant.log", "a")
    # -I: the standard library only, no PYTHONPATH (this stand-in) and no site-packages; its own session, so that a
    # kernel's death (or the process group it kills) does not reach it
    owner = os.environ.get("COLAB_STAND_IN_OWNER_PID", "")  # the rehearsal's process: the accountant ends with it
    subprocess.Popen([sys.executable, "-I", str(_ACCOUNTANT), str(_account()), str(my_drive), owner],
                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 30
    while not pid_file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Drive stand-in's accountant did not start; see {_account() / 'accountant.log'}")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, dead but not yet reaped by whoever inherited it, does not)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_accountant(wait_s: float = 30.0) -> dict | None:
    """Stop the accountant (SIGTERM: it reads what is left, audits and writes the final ledger); the ledger."""
    pid_file = _account() / "accountant.pid"
    if not pid_file.exists():
        return ledger()
    pid = int(pid_file.read_text())
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
            try:  # reap it when this process started it
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    pid_file.unlink(missing_ok=True)
    return ledger()


def ledger() -> dict | None:
    path = _account() / "ledger.json"
    return json.loads(path.read_text()) if path.exists() else None


def _statvfs(path):
    """``os.statvfs``, with the quota for a path under the mount point (see the module's docstring)."""
    result = _original_statvfs(path)
    try:
        quota = int((_account() / "quota").read_text())
        mountpoint = Path((_account() / "mountpoint").read_text()).resolve()
        Path(os.fspath(path)).resolve().relative_to(mountpoint)
    except (OSError, ValueError, RuntimeError):  # no quota, not mounted, not under the mount point, no account
        return result
    used = (ledger() or {}).get("usage", 0)
    block = result.f_frsize or 4096
    free = max(0, quota - used) // block
    return os.statvfs_result((result.f_bsize, block, quota // block, free, free, result.f_files, result.f_ffree,
                              result.f_favail, result.f_flag, result.f_namemax))
