"""GRADIENT_CHECKPOINTING="auto": recompute activations in the backward pass only when the GPU needs it.

Gradient checkpointing saves activation memory at the price of a second forward pass through the encoder
(about a third more compute per step). The 2021 recipe always turned it on; "auto" measures instead: the
batch with the longest clip goes through a forward and backward pass without it, in the worst case a training
step can meet (LayerDrop off: every layer runs, where training skips some at random), and checkpointing is
turned on when that ran out of memory, or when its peak plus the optimizer state still to come would use more
than nine tenths of the memory this process can have: what the driver reports free (another process on the
card, or an earlier notebook kernel, holds the rest) plus what this process's allocator already reserved, not
the card's total. On a CPU it stays off (the host's memory is rarely the limit, and time is). Under torchrun
the processes agree (``Training.choose_checkpointing``): one that needs it turns it on for all.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from .checkpoints import ADAM_STATE_BYTES

HEADROOM = 0.9  # use at most this share of the available memory at the measured peak
GB = 1e9


def set_memory_cap(fraction: float, device=None) -> None:
    """Cap this process's GPU memory (and remember the cap, which torch offers no getter for): what
    benchmarks/gpu_families.py uses to mimic a 16 GB T4 on a larger card."""
    import torch

    torch.cuda.set_per_process_memory_fraction(fraction, device)
    torch.cuda._xlsr_memory_fraction = fraction


def available_bytes(device) -> int:
    """Memory this process can use on ``device``: free on the card (``torch.cuda.mem_get_info``) plus what its
    caching allocator holds already (``memory_reserved``: its tensors, the model's weights among them, and its
    cache), at most the cap of :func:`set_memory_cap`."""
    import torch

    free, total = torch.cuda.mem_get_info(device)
    usable = int(free) + int(torch.cuda.memory_reserved(device))
    fraction = getattr(torch.cuda, "_xlsr_memory_fraction", None)
    return min(usable, int(total * fraction)) if fraction else usable


@contextmanager
def all_layers(model):
    """LayerDrop off while inside: every encoder layer (and adapter layer) runs, as in the worst training step.
    The encoders read ``config.layerdrop`` at each forward pass, the adapters their own ``layerdrop``."""
    saved = []
    for module in model.modules():
        for owner in (getattr(module, "config", None), module):
            value = getattr(owner, "layerdrop", None)
            if isinstance(value, (int, float)) and value > 0:
                saved.append((owner, value))
                setattr(owner, "layerdrop", 0.0)
    try:
        yield model
    finally:
        for owner, value in reversed(saved):
            setattr(owner, "layerdrop", value)


def optimizer_bytes(model) -> int:
    """AdamW's state for the trained weights (two float32 moments each), allocated at the first update."""
    return ADAM_STATE_BYTES * sum(p.numel() for p in model.parameters() if p.requires_grad)


def peak_bytes(model, batch: dict[str, Any], device, autocast_dtype=None) -> int | None:
    """Peak memory the allocator reserved for one forward and backward pass of ``batch`` in training mode with
    every layer running (``model`` is moved to ``device``, as the Trainer would); None when it ran out."""
    import torch

    model.to(device)
    was_training = model.training
    model.train()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    try:
        with all_layers(model):
            inputs = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
                loss = model(**inputs).loss
            loss.backward()
        return int(torch.cuda.max_memory_reserved(device))
    except torch.cuda.OutOfMemoryError:
        return None
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        torch.cuda.empty_cache()


def decide(peak: int | None, optimizer: int, available: int) -> tuple[bool, str]:
    """(on?, why) from the probe's peak (None: out of memory), the optimizer state and the available memory."""
    if peak is None:
        return True, f"on: the longest batch ran out of memory without it ({available / GB:.1f} GB available)"
    what = (f"the longest batch peaks at {peak / GB:.1f} GB without it (every layer running), + {optimizer / GB:.1f} "
            f"GB of optimizer state")
    if peak + optimizer > HEADROOM * available:
        return True, f"on: {what}, over {HEADROOM:.0%} of the {available / GB:.1f} GB available"
    return False, f"off: {what}, within {HEADROOM:.0%} of the {available / GB:.1f} GB available"


def needs_checkpointing(model, batch: dict[str, Any], device, autocast_dtype=None,
                        budget_bytes: int | None = None) -> tuple[bool, str]:
    """(on?, why) for ``model`` trained on ``device``, measured with ``batch`` (the largest training batch) under
    the training's mixed precision (``autocast_dtype``: bf16, fp16, or None for fp32). ``budget_bytes``: the
    memory to fit in, instead of :func:`available_bytes` (measured before the model moves: moving its weights
    turns free memory into reserved memory, and leaves the sum as it was)."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return False, f"off: training on {device.type}, where memory is not the limit"
    available = budget_bytes or available_bytes(device)
    return decide(peak_bytes(model, batch, device, autocast_dtype), optimizer_bytes(model), available)
