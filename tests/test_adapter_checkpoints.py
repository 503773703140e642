"""Adapters stored as adapters: a frozen-base run (MMS adapters, the ``mms_all`` checkpoint fixture) writes
checkpoints and a model folder that hold the trained tensors (adapter layers + CTC head) and their optimizer state,
never the base; it resumes from them, step 05 loads base + adapter, and the upload of step 06 is a whole model that
``AutoModelForCTC.from_pretrained(upload, target_lang=...)`` loads and that transcribes as step 05 did."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checkpoints as fixtures  # noqa: E402
from test_evaluate import keep_test_clips  # noqa: E402
from test_train import QUICK, copy_run, make_run  # noqa: E402

from xlsr_helpers import models  # noqa: E402
from xlsr_helpers.config import Config  # noqa: E402
from xlsr_helpers.families import FamilyError, resolve  # noqa: E402
from xlsr_helpers.train import checkpoints, step  # noqa: E402

ADAPTER = "adapter.tur.safetensors"
FAST = dict({k: v for k, v in QUICK.items() if k != "model"}, batch_size=2, eval_max_samples=4)


@pytest.fixture(scope="module")
def mms_run(tmp_path_factory):
    """Steps 01-03 with the MMS-1b-all-like fixture as MODEL, then step 04 (4 updates, a checkpoint every 2):
    (cfg, the Training, the plain Trainer's save of the same model for comparison)."""
    root = tmp_path_factory.mktemp("mms-adapter")
    folder = fixtures.build("mms_all", root / "checkpoints")
    run = root / "run"
    make_run(run, model=str(folder))
    keep_test_clips(run, 4)
    cfg = resolve(Config.load(run).updated(run_dir=str(run), **FAST))
    training = step.Training(cfg, log=lambda *a: None)
    training.run()
    whole = root / "whole-model-save"
    super(type(training.trainer).__mro__[1], training.trainer)._save(str(whole))  # transformers' own Trainer._save
    return cfg, training, whole


def test_checkpoints_and_model_hold_the_adapter_and_its_optimizer_state_only(mms_run):
    cfg, training, whole = mms_run
    model = training.trainer.model
    assert models.trains_adapters_only(model) and training.report["adapter_only"] is True
    adapters = model._get_adapters()
    trained_bytes = sum(p.numel() * p.element_size() for p in adapters.values())
    for folder in (training.checkpoint_dir / "checkpoint-4", cfg.model_dir):
        names = {p.name for p in folder.iterdir()}
        assert ADAPTER in names and models.BASE_MODEL_FILE in names and "model.safetensors" not in names, names
        assert set(load_file(str(folder / ADAPTER))) == set(adapters)
    checkpoint = training.checkpoint_dir / "checkpoint-4"
    assert checkpoints.is_complete_checkpoint(checkpoint)
    record = json.loads((checkpoint / models.BASE_MODEL_FILE).read_text())
    assert record["base_model"] == str(Path(cfg.model).resolve()) and record["target_lang"] == "tur"
    state = torch.load(checkpoint / "optimizer.pt", weights_only=True)["state"]
    assert len(state) == len(adapters), "AdamW's moments of the trained tensors, none for the frozen base"
    adapter_file, whole_file = (checkpoint / ADAPTER).stat().st_size, (whole / "model.safetensors").stat().st_size
    assert trained_bytes <= adapter_file < trained_bytes + 20_000, "the trained tensors and a safetensors header"
    assert adapter_file < 0.1 * whole_file, f"{adapter_file} bytes instead of the whole model's {whole_file}"
    sizes = checkpoints.checkpoint_bytes(model, adapter_only=True)  # what the Drive and disk budgets count
    whole_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert (sizes["weights"], sizes["model"], sizes["upload"]) == (trained_bytes, trained_bytes,
                                                                   whole_bytes + trained_bytes)
    assert sizes["optimizer"] == 8 * sum(p.numel() for p in adapters.values())


def test_the_final_model_is_the_best_checkpoints_adapter(mms_run):
    cfg, training, _ = mms_run
    best = Path(training.report["best_checkpoint"])
    final, chosen = load_file(str(cfg.model_dir / ADAPTER)), load_file(str(best / ADAPTER))
    assert all(torch.equal(final[name], chosen[name]) for name in final)


def test_a_run_resumes_from_an_adapter_checkpoint(mms_run, tmp_path):
    cfg, training, _ = mms_run
    run = copy_run(Path(cfg.run_dir), tmp_path / "run")
    shutil.copytree(training.checkpoint_dir / "checkpoint-4", run / "04_train" / "checkpoint-4")
    resumed = step.Training(resolve(Config.load(run).updated(run_dir=str(run), **dict(FAST, max_steps=5))),
                            log=lambda *a: None)
    resumed.check_outputs()
    assert resumed.resume_from.name == "checkpoint-4"
    resumed.load(), resumed.build_model(), resumed.check(), resumed.prepare(), resumed.make_trainer()
    saved = load_file(str(resumed.resume_from / ADAPTER))
    before = {name: p.detach().clone() for name, p in resumed.model._get_adapters().items()}
    assert not all(torch.equal(before[n], saved[n]) for n in saved), "a fresh model has other adapter weights"
    resumed.trainer._load_from_checkpoint(str(resumed.resume_from))
    assert all(torch.equal(p.detach(), saved[n]) for n, p in resumed.model._get_adapters().items())
    resumed.train()
    assert resumed.report["start_step"] == 4 and resumed.report["global_step"] == 5


def test_step_05_loads_base_and_adapter_and_the_upload_reloads_with_target_lang(mms_run):
    from transformers import AutoModelForCTC

    from xlsr_helpers import evaluate as ev
    from xlsr_helpers.card.step import run_model_card

    cfg, training, _ = mms_run
    model = models.load_ctc_model(cfg.model_dir).eval()
    assert model.target_lang == "tur"
    saved = load_file(str(cfg.model_dir / ADAPTER))
    assert all(torch.equal(p.detach(), saved[n]) for n, p in model._get_adapters().items())
    ev.run_evaluation(cfg, progress=False)
    result = run_model_card(cfg)
    assert {"model.safetensors", ADAPTER, "config.json"} <= set(result.files)
    assert models.BASE_MODEL_FILE not in result.files, "the upload is a whole model"
    assert result.verification["target_lang"] == "tur" and result.verification["matches_05_evaluate"] is True
    uploaded = AutoModelForCTC.from_pretrained(str(result.upload_dir), target_lang="tur").eval()
    audio = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(uploaded(audio).logits, model(audio).logits, atol=1e-5)


def test_an_adapter_file_of_another_model_is_refused(mms_run, tmp_path):
    from safetensors.torch import save_file

    _, training, _ = mms_run
    save_file({"lm_head.weight": torch.zeros(3, 3)}, str(tmp_path / ADAPTER))
    with pytest.raises(FamilyError, match="other tensors than the adapter layers"):
        models.load_adapter_file(training.trainer.model, tmp_path / ADAPTER)
