"""precision.py, the one PRECISION rule, and training's use of it: bf16 only where the GPU computes it natively
(compute capability >= 8.0), fp16 on a T4 or V100, fp32 on a CPU.

The device is faked (``torch.cuda.is_available``, ``torch.cuda.get_device_capability``); the rule itself never is.
``torch.cuda.is_bf16_supported`` is faked to answer True everywhere, as it does on a T4 by default (emulated bf16),
to show that the rule does not ask it.
"""

import pytest
import torch

from xlsr_helpers.config import Config
from xlsr_helpers.precision import PrecisionError, native_bf16, resolve_precision, torch_dtype
from xlsr_helpers.train import trainer

GPUS = [  # (name, compute capability, what "auto" must give)
    ("V100", (7, 0), "fp16"),
    ("T4", (7, 5), "fp16"),
    ("A100", (8, 0), "bf16"),
    ("RTX 3090", (8, 6), "bf16"),
    ("L4", (8, 9), "bf16"),
    ("H100", (9, 0), "bf16"),
]


@pytest.fixture()
def gpu(monkeypatch):
    """Fake a CUDA GPU of a given compute capability: ``gpu((7, 5))``."""

    def fake(capability):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulation counts, by default

    return fake


@pytest.fixture()
def cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("name, capability, expected", GPUS, ids=[g[0] for g in GPUS])
def test_auto_is_bf16_only_where_native(gpu, name, capability, expected):
    gpu(capability)
    assert resolve_precision("auto") == expected
    assert resolve_precision(None) == expected, "no setting means auto"
    assert native_bf16() == (expected == "bf16")
    assert trainer.precision_flags("auto") == {"fp16": expected == "fp16", "bf16": expected == "bf16"}


@pytest.mark.parametrize("capability", [(7, 5), (9, 0)])
def test_an_explicit_precision_is_kept_on_a_gpu(gpu, capability):
    gpu(capability)
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("FP16") == "fp16"
    assert resolve_precision("bf16") == "bf16", "asked for: allowed, emulated on a T4"
    assert trainer.precision_flags("fp32") == {"fp16": False, "bf16": False}


def test_a_cpu_computes_in_fp32_and_refuses_mixed_precision(cpu):
    assert resolve_precision("auto") == "fp32" and not native_bf16()
    assert trainer.precision_flags("auto") == {"fp16": False, "bf16": False}
    for name in ("fp16", "bf16"):
        with pytest.raises(PrecisionError, match="CUDA"):
            resolve_precision(name)
    with pytest.raises(ValueError, match="PRECISION"):  # PrecisionError is a ValueError
        resolve_precision("int8")


def test_device_type_overrides_what_is_there(gpu):
    gpu((8, 0))
    assert resolve_precision("auto", device_type="cpu") == "fp32"
    with pytest.raises(PrecisionError, match="mps"):
        resolve_precision("fp16", device_type="mps")


def test_dtypes():
    assert [torch_dtype(n) for n in ("fp32", "fp16", "bf16")] == [torch.float32, torch.float16, torch.bfloat16]


def test_training_arguments_follow_the_rule_on_a_cpu(cpu, tmp_path):
    args = trainer.training_arguments(Config(model="tiny"), tmp_path)
    assert not args.fp16 and not args.bf16
    with pytest.raises(PrecisionError, match="CUDA"):
        trainer.training_arguments(Config(model="tiny", precision="fp16"), tmp_path)
