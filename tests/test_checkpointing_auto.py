"""GRADIENT_CHECKPOINTING="auto" measures the worst case (LayerDrop off) against the memory this process can have
(free + reserved, not the card's total), every process takes the same decision, and checkpointing runs in the
non-reentrant mode that adapter-only training needs. On a CPU: what CUDA would answer is faked, the probe's
forward and backward pass are real."""

import warnings

import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

from xlsr_helpers.config import Config
from xlsr_helpers.train import memory, step, trainer

GB = 10**9


def small_model(**overrides) -> Wav2Vec2ForCTC:
    values = dict(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=16, conv_dim=(4,) * 7,
                  vocab_size=8, do_stable_layer_norm=True, feat_extract_norm="layer")
    values.update(overrides)
    return Wav2Vec2ForCTC(Wav2Vec2Config(**values))


def batch(clips: int = 2, samples: int = 4000) -> dict:
    return {"input_values": torch.randn(clips, samples), "labels": torch.randint(1, 8, (clips, 3))}


def count_layer_calls(model) -> dict:
    calls = {"layers": 0, "adapter": 0}

    def hook(key):
        def count(*_):
            calls[key] += 1
        return count

    for layer in model.wav2vec2.encoder.layers:
        layer.register_forward_hook(hook("layers"))
    if model.wav2vec2.adapter is not None:
        for layer in model.wav2vec2.adapter.layers:
            layer.register_forward_hook(hook("adapter"))
    return calls


@pytest.fixture()
def fake_cuda_memory(monkeypatch):
    """The CUDA memory calls of the probe, answered on a CPU: ``peak`` is what max_memory_reserved gives."""
    answers = {"peak": 3 * GB, "free": 6 * GB, "total": 16 * GB, "reserved": 2 * GB}
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device=None: answers["peak"])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (answers["free"], answers["total"]))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: answers["reserved"])
    monkeypatch.setattr(torch.cuda, "_xlsr_memory_fraction", None, raising=False)
    return answers


def test_the_probe_runs_every_layer_and_restores_layerdrop(fake_cuda_memory):
    model = small_model(layerdrop=1.0, add_adapter=True, num_adapter_layers=2, adapter_stride=1)
    model.wav2vec2.adapter.layerdrop = 1.0  # the adapter keeps its own copy
    calls = count_layer_calls(model)
    model.train()
    model(**batch())
    assert calls == {"layers": 0, "adapter": 0}, "LayerDrop 1.0 in training: every layer skipped"
    model.eval()
    assert memory.peak_bytes(model, batch(), torch.device("cpu")) == 3 * GB
    assert calls == {"layers": 3, "adapter": 2}, "the probe: every layer ran"
    assert model.config.layerdrop == 1.0 and model.wav2vec2.adapter.layerdrop == 1.0, "restored"
    assert not model.training, "training mode restored"
    assert all(p.grad is None for p in model.parameters()), "the probe's gradients are gone"


def test_the_probe_reports_running_out_of_memory(fake_cuda_memory, monkeypatch):
    model = small_model(layerdrop=0.5)

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(model, "forward", out_of_memory)
    assert memory.peak_bytes(model, batch(), torch.device("cpu")) is None
    assert model.config.layerdrop == 0.5


def test_available_memory_is_free_plus_reserved_not_the_cards_total(fake_cuda_memory, monkeypatch):
    assert memory.available_bytes(torch.device("cuda")) == 8 * GB, "6 GB free + 2 GB this process holds, of 16"
    fake_cuda_memory["free"] = 1 * GB  # another process took most of the card
    assert memory.available_bytes(torch.device("cuda")) == 3 * GB
    fake_cuda_memory["free"] = 14 * GB
    monkeypatch.setattr(torch.cuda, "_xlsr_memory_fraction", 0.25, raising=False)  # memory.set_memory_cap(0.25)
    assert memory.available_bytes(torch.device("cuda")) == 4 * GB, "at most the cap"


def test_decision_from_the_peak_the_optimizer_and_what_is_available():
    assert memory.decide(None, 0, 8 * GB)[0], "out of memory without it: on"
    on, why = memory.decide(int(6.5 * GB), GB, 8 * GB)  # 7.5 GB > 90 % of 8
    assert on and "over 90% of the 8.0 GB available" in why and "every layer" in why
    on, why = memory.decide(5 * GB, GB, 8 * GB)
    assert not on and why.startswith("off")


def test_needs_checkpointing_measures_what_this_process_can_have(fake_cuda_memory, monkeypatch):
    model = small_model()
    monkeypatch.setattr(memory, "peak_bytes", lambda *args, **kwargs: 5 * GB)  # no model.to("cuda") on a CPU
    expected = memory.decide(5 * GB, memory.optimizer_bytes(model), 8 * GB)
    assert memory.needs_checkpointing(model, batch(), "cuda") == expected and not expected[0]
    fake_cuda_memory["free"] = 3 * GB  # a second kernel on the same card: the total is the same, the free is not
    assert memory.needs_checkpointing(model, batch(), "cuda")[0]
    assert memory.needs_checkpointing(model, batch(), "cpu") == \
        (False, "off: training on cpu, where memory is not the limit")


@pytest.mark.parametrize("others, expected", [(0.0, False), (1.0, True)])
def test_every_process_takes_the_same_decision(tmp_path, monkeypatch, others, expected):
    """This process measured "off"; the decision is the largest over all processes (torch.distributed MAX)."""
    training = step.Training(Config(run_dir=str(tmp_path / "run"), model="tiny", gradient_checkpointing="auto"),
                             log=lambda *a: None)
    training.args = trainer.training_arguments(training.cfg, tmp_path)
    monkeypatch.setattr(training, "largest_batch", lambda: {})
    monkeypatch.setattr(step, "needs_checkpointing", lambda *args: (False, "off: the longest batch fits"))
    offered = []
    monkeypatch.setattr(step, "agreed_max", lambda value, device: offered.append(value) or max(value, others))
    assert training.choose_checkpointing() is expected
    assert offered == [0.0], "each process offers its own measurement"
    why = training.report["gradient_checkpointing"]["why"]
    assert ("another process needs it" in why) == expected


def test_checkpointing_is_non_reentrant_so_adapters_get_gradients(tmp_path):
    args = trainer.training_arguments(Config(model="tiny", gradient_checkpointing=True), tmp_path)
    name = "activation_checkpointing" if hasattr(args, "activation_checkpointing") else "gradient_checkpointing"
    assert getattr(args, name) and getattr(args, f"{name}_kwargs") == {"use_reentrant": False}
    assert getattr(trainer.training_arguments(Config(model="tiny"), tmp_path), f"{name}_kwargs") == \
        {"use_reentrant": False}, "set whether checkpointing starts on or not (auto turns it on later)"

    def adapter_gradients(kwargs) -> bool:
        torch.manual_seed(0)
        model = small_model(adapter_attn_dim=4)  # MMS-style adapters in every encoder layer
        model.freeze_feature_encoder()  # nothing before the encoder layers asks for a gradient
        model.freeze_base_model()
        for parameter in model._get_adapters().values():  # adapter layers and the CTC head, as models.freeze does
            parameter.requires_grad = True
        if hasattr(model, "activation_checkpointing_enable"):  # as the Trainer turns it on (transformers >= 5.x)
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        model.train()
        model(**batch()).loss.backward()
        grads = [p.grad for n, p in model.named_parameters() if "adapter_layer" in n]
        return bool(grads) and all(g is not None and g.abs().sum() > 0 for g in grads)

    assert adapter_gradients(getattr(args, f"{name}_kwargs")), "the set mode trains the adapters"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not adapter_gradients({"use_reentrant": True}), "the reentrant mode would leave them untrained"
