"""A stand-in for Colab's ``google.colab`` package: the Colab rehearsal (tests/test_colab_rehearsal.py) runs the
notebooks with it on the kernel's PYTHONPATH, so that they take their Colab paths on a CPU machine.

Like Colab's kernel, the rehearsal's kernels import it at start (an IPython startup file calls :func:`attach`),
so ``"google.colab" in sys.modules`` holds from the first cell, and huggingface_hub and the install cell see
Colab. Modules:

- ``drive``: ``mount()`` moves the account's "My Drive" folder under the mount point, with a quota and Drive's
  bin accounting (``_accountant.py``, a process of its own that outlives kernels);
- ``userdata``: Colab's secrets (``get``; none unless the environment gives COLAB_STAND_IN_SECRET_<NAME>);
- ``errors``: Colab's base error class, which huggingface_hub imports.

Shell (:func:`attach`, which also makes every kernel see the quota as the mount's size): the install cell's
``%pip`` and ``!apt-get`` lines are recorded in ``<COLAB_STAND_IN_ROOT>/commands.jsonl`` and not run (the
rehearsal's kernel already has the package and its dependencies; tests/test_install_cell.py runs those pip commands
against a local package index); every other ``!`` command runs.

Configured by the environment: COLAB_STAND_IN_ROOT, the folder of the emulated Google account (its My Drive while
unmounted, the ledger, the quota, the recorded commands); COLAB_STAND_IN_OWNER_PID, the rehearsal's process, with
which the Drive accountant ends.
"""

from __future__ import annotations

import json
import os
import shlex
import time

SKIPPED_COMMANDS = ("pip", "apt-get", "apt")  # what the stand-in shell records instead of running


def account() -> str:
    root = os.environ.get("COLAB_STAND_IN_ROOT")
    if not root:
        raise RuntimeError("COLAB_STAND_IN_ROOT is not set: the google.colab stand-in needs its account folder")
    return root


def record(kind: str, command: str) -> None:
    """Note a command of the notebook that the stand-in did not run."""
    with open(os.path.join(account(), "commands.jsonl"), "a") as handle:
        handle.write(json.dumps({"kind": kind, "command": command, "pid": os.getpid(), "time": time.time()}) + "\n")


def attach(shell) -> None:
    """Called by the rehearsal's IPython startup file: ``%pip`` is recorded (Colab's kernel has its own ``%pip``
    too), and ``!`` commands that start with pip or apt-get; the others run as usual."""
    run = shell.system

    def pip(line: str) -> None:
        record("%pip", line)

    def system(command: str) -> None:
        words = shlex.split(command.split("&&")[0]) or [""]
        if os.path.basename(words[0]) in SKIPPED_COMMANDS:
            record("!", command)
        else:
            run(command)

    shell.register_magic_function(pip, "line", "pip")
    shell.system = system
    from . import drive

    os.statvfs = drive._statvfs  # the mount's size is the quota, in every kernel (drive.py)
