"""Which process this is, and decisions every process takes together: under torchrun / accelerate every rank
runs the same code."""

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


def agreed_max(value: float, device) -> float:
    """The largest ``value`` over all processes (itself without torch.distributed): a decision to stop, or to
    turn gradient checkpointing on, that one process takes alone would leave the others waiting for it forever
    (or training another graph)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    import torch

    flag = torch.tensor([float(value)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return float(flag.item())
