"""GRADIENT_CHECKPOINTING="auto": recompute activations in the backward pass only when the GPU needs it.

Gradient checkpointing saves activation memory at the price of a second forward pass through the encoder
(about a third more compute per step). The 2021 recipe always turned it on; "auto" measures instead: the
batch with the longest clip goes through a forward and backward pass without it, and checkpointing is turned
on when that ran out of memory, or when its peak plus the optimizer state still to come would leave less than
a tenth of the GPU free. On a CPU it stays off (the host's memory is rarely the limit, and time is).
"""

from __future__ import annotations

from typing import Any

from .checkpoints import ADAM_STATE_BYTES

HEADROOM = 0.9  # use at most this share of the GPU's memory at the measured peak


def gpu_budget_bytes(device) -> int:
    """Memory this process may use on ``device``: the card's total, or less under
    ``torch.cuda.set_per_process_memory_fraction`` (what benchmarks/gpu_families.py uses to mimic a 16 GB T4)."""
    import torch

    total = torch.cuda.get_device_properties(device).total_memory
    fraction = getattr(torch.cuda, "_xlsr_memory_fraction", None)  # set by set_memory_cap below
    return int(total * fraction) if fraction else int(total)


def set_memory_cap(fraction: float, device=None) -> None:
    """Cap this process's GPU memory (and remember the cap, which torch offers no getter for)."""
    import torch

    torch.cuda.set_per_process_memory_fraction(fraction, device)
    torch.cuda._xlsr_memory_fraction = fraction


def needs_checkpointing(model, batch: dict[str, Any], device, autocast_dtype=None,
                        budget_bytes: int | None = None) -> tuple[bool, str]:
    """(on?, why) for ``model`` trained on ``device`` (it is moved there, as the Trainer would), measured with
    ``batch`` (the largest training batch) under the training's mixed precision (``autocast_dtype``: bf16, fp16,
    or None for fp32)."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return False, f"off: training on {device.type}, where memory is not the limit"
    model.to(device)
    budget = budget_bytes or gpu_budget_bytes(device)
    optimizer = ADAM_STATE_BYTES * sum(p.numel() for p in model.parameters() if p.requires_grad)
    was_training = model.training
    model.train()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    try:
        inputs = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast("cuda", dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            loss = model(**inputs).loss
        loss.backward()
        peak = torch.cuda.max_memory_allocated(device)
        out_of_memory = False
    except torch.cuda.OutOfMemoryError:
        peak, out_of_memory = budget, True
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        torch.cuda.empty_cache()
    if out_of_memory:
        return True, f"on: the longest batch ran out of memory without it (budget {budget / 1e9:.1f} GB)"
    need = peak + optimizer
    if need > HEADROOM * budget:
        return True, (f"on: the longest batch peaks at {peak / 1e9:.1f} GB without it, + {optimizer / 1e9:.1f} GB of "
                      f"optimizer state, over {HEADROOM:.0%} of {budget / 1e9:.1f} GB")
    return False, (f"off: the longest batch peaks at {peak / 1e9:.1f} GB without it, + {optimizer / 1e9:.1f} GB of "
                   f"optimizer state, within {HEADROOM:.0%} of {budget / 1e9:.1f} GB")
