"""Every model family through steps 03 -> 06, from checkpoints in their real on-disk layouts (one of them through
the notebooks themselves, with papermill; the others through the same steps' Python API, tests/steps.py).

For each kind of tests/checkpoints.py (pretrained-only XLSR-53, HuBERT, WavLM and data2vec base, w2v-BERT
2.0, MMS-1b-all with adapters, a fine-tuned HuBERT CTC model of another language): steps 01-02 of a small
synthetic Turkish run are shared, then the product's notebooks build the processor around the checkpoint's
own feature extractor (03), train a few steps with the family's recipe (04), evaluate (05) and write and
verify the upload folder (06). Asserted on what the run wrote, not on log lines:

- the model is the checkpoint's own class; the parts the recipe freezes are bit-identical to the checkpoint;
- the trainable-parameter count is the recipe's;
- the upload folder reloads with the Auto classes and reproduces step 05's prediction of every test clip;
- the card's usage snippet runs as written (with target_lang for MMS) and prints step 05's text.
"""

from __future__ import annotations

import pytest
import torch

import checkpoints as C
from steps import fresh_run, notebook_results, run_03_to_06, run_card_code, upload_predictions
from test_train import make_run
from xlsr_helpers.card.snippets import code_blocks
from xlsr_helpers.config import Config
from xlsr_helpers.families import resolve
from xlsr_helpers.models import load_ctc_model
from xlsr_helpers.pipeline import run_pipeline
from xlsr_helpers.train.guards import GuardError

pytestmark = pytest.mark.notebooks
QUICK = {"MAX_STEPS": 4, "EVAL_STEPS": 2, "SAVE_STEPS": 4, "LOGGING_STEPS": 1, "BATCH_SIZE": 4,
         "GRADIENT_ACCUMULATION_STEPS": 1, "EVAL_BATCH_SIZE": 4,
         "GRADIENT_CHECKPOINTING": False}  # checkpointing only saves GPU memory; on CPU it costs time
FAMILY = {"xlsr53_pretrained": "wav2vec2", "hubert_base": "hubert", "wavlm_base": "wavlm", "w2v_bert": "w2v-bert",
          "mms_all": "mms-adapter", "hubert_ctc_finetuned": "hubert", "data2vec_audio": "data2vec-audio"}
assert set(FAMILY) == set(C.KINDS) - set(C.SUBWORD_KINDS), "a new checkpoint kind needs its family here"


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """Steps 01-02 on the tiny synthetic corpus (the same for every family)."""
    run = tmp_path_factory.mktemp("families") / "base"
    make_run(run)
    return run


@pytest.fixture(scope="module")
def checkpoint_root(tmp_path_factory):
    return tmp_path_factory.mktemp("checkpoints")


# The subword kinds (Omnilingual ASR, Parakeet CTC) already write text: test_vocabulary_paths.py runs them through
# 03 -> 06 in both vocabulary modes. Here every other family, with the notebooks' default VOCABULARY.
FAMILY_KINDS = tuple(kind for kind in C.KINDS if kind not in C.SUBWORD_KINDS)
# One family runs through the notebooks themselves (papermill): MMS adapters, whose cells differ most (target_lang,
# the adapter file); the others through the same steps' Python API (tests/steps.py), which saves four kernel starts
# (~30 s) per family and asserts the same reports.
THROUGH_NOTEBOOKS = "mms_all"


@pytest.fixture(scope="module", params=FAMILY_KINDS)
def family_run(request, base_run, checkpoint_root, tmp_path_factory):
    kind = request.param
    folder = C.build(kind, checkpoint_root)
    run = fresh_run(base_run, tmp_path_factory.mktemp(kind) / "run")
    if kind == THROUGH_NOTEBOOKS:
        results = run_pipeline({"LANGUAGE": "tr", "RUN_DIR": str(run), "MODEL": str(folder), **QUICK}, steps="3-6",
                               progress=False, cell_timeout_s=600).results
    else:
        params = {name.lower(): value for name, value in QUICK.items()}
        results = notebook_results(run_03_to_06(run, str(folder), **params))
    return kind, folder, run, results


def _frozen_names(kind: str) -> tuple[str, ...]:
    """Prefixes (without the base-model prefix) of what the family's recipe keeps as the checkpoint has it."""
    if FAMILY[kind] == "mms-adapter":
        return ("",)  # the whole base model except the adapter layers
    if FAMILY[kind] == "w2v-bert":
        return ()
    return ("feature_extractor.",)


def _recipe_trainable(model, kind: str) -> int:
    """What the family's recipe trains, counted on a model: all but the CNN feature encoder (wav2vec2-style),
    adapter layers and head (MMS), everything (w2v-BERT)."""
    total = sum(p.numel() for p in model.parameters())
    if FAMILY[kind] == "mms-adapter":
        return sum(p.numel() for p in model._get_adapters().values())
    if FAMILY[kind] == "w2v-bert":
        return total
    encoder = getattr(model, model.base_model_prefix).feature_extractor
    return total - sum(p.numel() for p in encoder.parameters())


def test_processor_is_built_around_the_checkpoints_extractor(family_run):
    kind, folder, run, results = family_run
    info = C.INFO[kind]
    r03 = results["03_vocab"]
    assert r03["family"] == FAMILY[kind] and r03["model_input"] == info.main_input
    assert r03["target_lang"] == ("tur" if kind == "mms_all" else None)
    assert r03["round_trip_ok"]


def test_training_uses_the_family_class_and_recipe(family_run):
    kind, folder, run, results = family_run
    r04 = results["04_train"]
    assert r04["model_class"] == C.INFO[kind].ctc_class and r04["family"] == FAMILY[kind]
    assert r04["global_step"] == 4 and r04["stopped_by"] == "completed"
    trained = load_ctc_model(r04["model_dir"])  # MMS adapters: base + the adapter folder (adapters stored as adapters)
    assert type(trained).__name__ == C.INFO[kind].ctc_class
    total = sum(p.numel() for p in trained.parameters())
    assert r04["parameters"] == total
    assert r04["trainable_parameters"] == _recipe_trainable(trained, kind)
    # What the recipe freezes is the checkpoint's, bit for bit, after training.
    prefixes = _frozen_names(kind)
    saved = C.encoder_tensors(C.saved_state_dict(folder, kind), kind)
    after = C.encoder_tensors(trained, kind)
    frozen = [name for name in saved if any(name.startswith(p) for p in prefixes) and name in after]
    assert bool(frozen) == bool(prefixes)
    for name in frozen:
        torch.testing.assert_close(after[name], saved[name], msg=f"{kind}: frozen {name} changed")
    if kind == "mms_all":
        assert r04["adapter_file"] == "adapter.tur.safetensors"
        assert r04["trainable_parameters"] < r04["parameters"] / 5


def test_upload_reproduces_step_05_on_every_test_clip(family_run):
    kind, folder, run, results = family_run
    assert results["06_model_card"]["verified"]
    upload = run / "06_model_card" / "upload"
    if kind == "mms_all":
        assert "adapter.tur.safetensors" in results["06_model_card"]["files"]
    again, written = upload_predictions(run)
    assert again == written


def test_card_usage_snippet_runs_as_written(family_run, tmp_path):
    kind, folder, run, results = family_run
    card = (run / "06_model_card" / "upload" / "README.md").read_text(encoding="utf-8")
    code = code_blocks(card)[0]
    assert ('target_lang="tur"' in code) == (kind == "mms_all")
    printed, predicted = run_card_code(code, results["06_model_card"]["model_id"], run, tmp_path)
    assert printed == predicted


def test_training_another_model_than_step_03_is_refused(base_run, checkpoint_root, tmp_path):
    """03 built a wav2vec2 processor (raw samples); 04 asked for w2v-BERT (filterbank input): refused."""
    from xlsr_helpers.train.step import Training
    from xlsr_helpers.vocab import run_vocab

    run = fresh_run(base_run, tmp_path / "run")
    cfg = Config.load(run).updated(run_dir=str(run), model=str(C.build("xlsr53_pretrained", checkpoint_root)))
    run_vocab(resolve(cfg))
    other = resolve(cfg.updated(model=str(C.build("w2v_bert", checkpoint_root))))
    with pytest.raises(GuardError, match="Run 03_vocab again with MODEL="):
        Training(other, log=lambda *a: None).load()
