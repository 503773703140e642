"""Which process this is: under torchrun / accelerate every rank runs the same code."""

from __future__ import annotations

import os


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def log_main(*args, **kwargs) -> None:
    """print() on the main process only."""
    if rank() == 0:
        print(*args, **kwargs, flush=True)
