"""The one precision rule of training and inference (``PRECISION``: auto, fp32, fp16, bf16).

"auto" is bf16 only where the GPU computes it natively: NVIDIA compute capability 8.0 or newer (A100, L4,
RTX 30xx and later, H100). ``torch.cuda.is_bf16_supported()`` is *not* that test: by default it also answers
True where bf16 is only emulated, e.g. on Colab's free T4 (capability 7.5), whose matmuls and convolutions then
run on slow fallback paths. A T4 or V100 gets fp16 (with the Trainer's loss scaling), a CPU fp32.
"""

from __future__ import annotations

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
NATIVE_BF16_CAPABILITY = (8, 0)  # Ampere: the first NVIDIA GPUs with bf16 tensor cores


class PrecisionError(ValueError):
    """A precision that this machine cannot compute in, or an unknown name."""


def native_bf16(device_index: int | None = None) -> bool:
    """Whether the CUDA GPU computes bf16 natively (compute capability >= 8.0); False without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return False
    return tuple(torch.cuda.get_device_capability(device_index)) >= NATIVE_BF16_CAPABILITY


def resolve_precision(precision: str | None = "auto", device_type: str | None = None) -> str:
    """The precision to compute in, one of fp32, fp16, bf16, for ``device_type`` ("cuda", "cpu", ...; default:
    "cuda" when a CUDA GPU is there). "auto": bf16 where native, fp16 on an older GPU, fp32 elsewhere. An explicit
    fp16 or bf16 off CUDA raises (mixed precision here is CUDA autocast); bf16 on a GPU without native bf16 is
    allowed (the user asked for it), fp32 always."""
    import torch

    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise PrecisionError(f"PRECISION must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if precision == "auto":
        if device_type != "cuda":
            return "fp32"
        return "bf16" if native_bf16() else "fp16"
    if precision != "fp32" and device_type != "cuda":
        raise PrecisionError(f"PRECISION={precision} needs a CUDA GPU; use fp32 (or auto) on {device_type}.")
    return precision


def torch_dtype(precision: str):
    """The torch dtype of a resolved precision name."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
