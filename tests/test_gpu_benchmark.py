"""benchmarks/gpu_families.py and benchmarks/gpu_check.py: the real architectures build at their real size, the CPU
rehearsal (--smoke) runs every family at both settings through the product's training code and prints the table, an
out-of-memory error is a row of the table, not the end of the run; the GPU check refuses a CPU without --smoke, and
its smoke run goes through the precision and checkpointing parts. The GPU figures themselves are made on a GPU."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from benchmarks import gpu_check as check
from benchmarks import gpu_families as bench
from xlsr_helpers.models import count_parameters
from xlsr_helpers.vocab import build_vocab


@pytest.fixture(scope="module")
def vocab():
    return build_vocab([" ".join(bench.TURKISH)])


@pytest.mark.parametrize("name, model_class, millions, trained", [
    ("xlsr53", "Wav2Vec2ForCTC", 315, "all but the CNN"),
    ("mms-1b-all", "Wav2Vec2ForCTC", 965, "adapters and head"),
    ("w2v-bert-2.0", "Wav2Vec2BertForCTC", 606, "everything"),
    ("omniasr-ctc-300m", "OmniASRForCTC", 326, "all but the CNN"),  # 315M encoder + a head over 10,288 tokens
])
def test_real_architectures_at_their_size(vocab, name, model_class, millions, trained):
    family = bench.FAMILIES[name]
    if family.missing():
        pytest.skip(family.missing())
    processor = bench.family_processor(family, vocab)
    args = argparse.Namespace(precision="auto", steps=2, max_seconds=10.0, max_batch_seconds=0.0, smoke=False)
    model = bench.build_model(family, bench.setting_config(family, "ours", args), processor, "meta", smoke=False)
    parameters = count_parameters(model)
    assert type(model).__name__ == model_class
    assert parameters["total"] == pytest.approx(millions * 1e6, rel=0.01)
    share = parameters["trainable"] / parameters["total"]
    expected = {"all but the CNN": (0.98, 0.99), "adapters and head": (0.002, 0.003), "everything": (1.0, 1.0)}
    assert expected[trained][0] <= round(share, 3) <= expected[trained][1]
    if name == "w2v-bert-2.0":
        assert model.config.add_adapter and model.config.feature_projection_input_dim == 160


def test_smoke_run_prints_a_row_per_family_and_setting(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert bench.main(["--smoke", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    built = [name for name, family in bench.FAMILIES.items() if not family.missing()]
    assert [(r["family"], r["setting"]) for r in rows] == [(f, s) for f in built for s in bench.SETTINGS]
    assert all(not r.get("oom") and r["audio_s_per_s"] > 0 and r["steps_per_s"] > 0 for r in rows)
    assert all(r["peak_allocated_gib"] is None for r in rows)
    by = {(r["family"], r["setting"]): r for r in rows}
    for family in built:
        assert by[family, "ours"]["checkpointing"] == "auto: off"  # on a CPU, memory is not the limit
        assert "length buckets" in by[family, "ours"]["batching"]
        assert by[family, "seed"]["checkpointing"] == "on"
        assert "transformers' grouping" in by[family, "seed"]["batching"]
    mms = by["mms-1b-all", "ours"]["parameters"]
    assert 0 < mms["trainable"] < mms["total"] / 10  # the base model is frozen
    printed = capsys.readouterr().out
    table = printed[printed.index("family "):]
    for family in built:
        for setting in bench.SETTINGS:
            line = next(li for li in table.splitlines() if li.split()[:2] == [family, setting])
            assert line.split()[-2:] == ["n/a", "n/a"]
            assert float(line.split()[-4]) > 0  # audio s/s


def test_out_of_memory_is_a_row(monkeypatch, capsys):
    def out_of_memory(row, family, setting, *args):
        row["batching"] = "16 x 2, length buckets"
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(bench, "measure", out_of_memory)
    assert bench.main(["--smoke", "--families", "xlsr53"]) == 0
    printed = capsys.readouterr().out
    lines = [li for li in printed.splitlines() if li.startswith("xlsr53 ")]
    assert len(lines) == 2 and all(li.split().count("OOM") == 3 for li in lines)


# --------------------------------------------------------------------------------------------------
# benchmarks/gpu_check.py
# --------------------------------------------------------------------------------------------------
def test_gpu_check_refuses_a_cpu_without_smoke(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check.main([]) == 2
    assert "No CUDA GPU here" in capsys.readouterr().err


def test_gpu_check_smoke_runs_the_precision_and_checkpointing_parts(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert check.main(["--smoke", "--parts", "1,2", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["gpu"]["auto"] == "fp32" and figures["gpu"]["capability"] is None
    (row,) = figures["precision"]  # fp16 and bf16 need CUDA
    assert row["precision"] == "fp32" and row["steps_per_s"] > 0 and row["audio_s_per_s"] > 0
    part = figures["checkpointing"]
    assert part["decision"] == "auto: off" and "training on cpu" in part["why"] and part["layerdrop"] == 0.1
    assert part["verdict"].startswith("n/a")
    printed = capsys.readouterr().out
    assert "PRECISION='auto' -> fp32" in printed and "verdict: n/a" in printed


@pytest.mark.parametrize("capability, native, expected", [
    ("7.5", False, ["fp16", "bf16"]),  # a T4: auto is fp16; bf16 is measured to show what emulation costs
    ("9.0", True, ["bf16", "fp16"]),  # an H100: auto is bf16, against fp16
])
def test_gpu_check_measures_the_chosen_precision_against_fp16(capability, native, expected):
    info = {"auto": "bf16" if native else "fp16", "native_bf16": native, "capability": capability}
    assert check.precisions_to_measure(info, cuda=True) == expected


def test_gpu_check_verdicts():
    cap = 16e9
    fits, near = {"peak_reserved_gib": 8e9 / 2**30}, {"peak_reserved_gib": 15e9 / 2**30}
    assert check.verdict(False, fits, cap).startswith("right: off")
    assert check.verdict(False, {"oom": True}, cap).startswith("WRONG")
    assert check.verdict(True, {"oom": True}, cap).startswith("right: needed")
    assert check.verdict(True, near, cap).startswith("right: needed")
    assert check.verdict(True, fits, cap).startswith("cautious")
