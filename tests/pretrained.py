"""A small *pretrained* encoder made on this machine, for the learning proof (no machine here reaches the Hub).

The ``tiny`` architecture (``tiny.tiny_config`` + ``tiny.tiny_filterbank_``: a fixed filterbank feature
encoder with XLSR's frame arithmetic, a 128 x 3 pre-LN transformer) is trained with CTC on the synthetic speech
of *other* languages than the target, through the product itself (steps 01-04, ``MODEL="tiny"``, its CPU
recipe, a fixed number of updates). Its encoder is then saved in two real on-disk layouts, and a control:

    <root>/<name>/pretrained/   the layout of facebook/wav2vec2-large-xlsr-53: Wav2Vec2ForPreTraining
                                (architectures ["Wav2Vec2ForPreTraining"]), keys wav2vec2.* / quantizer.* /
                                project_*, no lm_head (the CTC head is discarded; the quantizer is random),
                                pytorch_model.bin with weight norm as weight_g / weight_v,
                                preprocessor_config.json. Family "wav2vec2" (the seed's recipe).
    <root>/<name>/scratch/      the same architecture, layout and files with a *random* transformer; only the
                                fixed filterbank (which is not learned) is copied, so that the one difference
                                from pretrained/ is the pre-training of everything above it.
    <root>/<name>/mms_like/     the layout of facebook/mms-1b-all: Wav2Vec2ForCTC with attention adapters
                                (adapter_attn_dim=16) in every layer, model.safetensors, one nested vocab.json,
                                tokenizer_config.json with target_lang, and adapter.<lang>.safetensors of the
                                pre-training language (its CTC head and an identity adapter). Family
                                "mms-adapter": fine-tuning trains new adapters and a new head on the frozen encoder.
    <root>/<name>/pretraining.json   how it was made: languages, updates, the held-out curve, wall time.

    from pretrained import build_pretrained_encoder, fine_tune
    encoder = build_pretrained_encoder(tmp_root)   # built once, then reused (a .complete marker)
    report = fine_tune(encoder / "pretrained", base_run, tmp / "arm", steps=300)

The pre-trained model itself is committed (tests/data/learning_proof_encoder/: 2.5 MB, with pretraining.json, the
record of how it was made): pre-training costs what a real run of the same size costs (the figures are in the
comments of the constants), and `python tests/pretrained.py` makes it again through the product.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from checkpoints import COMPLETE, SPECIAL_TOKENS, _legacy_state_dict, _save_weights, _wav2vec2_feature_extractor
from checkpoints import _write_config, _write_json
from checkpoints_encoders import XLSR53_CONFIG

from xlsr_helpers.config import RECIPE_FIELDS, Config
from xlsr_helpers.families import mms_language_code, recipe_for, resolve
from xlsr_helpers.run_config import from_params
from xlsr_helpers.tiny import TINY_ARCHITECTURE, tiny_filterbank_

# Pre-training: the tiny model's own CPU recipe (families.TINY_TRAINING: batches of 8, lr 5e-3, 8 % warm-up) on
# the demo corpora of five languages (3,000 clips), 2,000 updates: held-out CER 0.32 on their eval splits (0.55-0.61
# after 1,200, where the curve was still falling steeply); ~8 min alone on 2 cores, 12 under load. Measured: an
# encoder pre-trained on German alone (800 updates, CER 0.12) was too specific — fine-tuning it on Turkish collapsed
# to all-blank output for 3 of 4 initial heads. Like XLSR-53, multilingual pre-training is what makes the encoder a
# good start for a language it has not heard. Fine-tuning's own fragility (a head stuck on the all-blank plateau) was
# the recipe's time masking, see CPU_RECIPES.
PRETRAIN_LANGUAGES = ("de", "es", "fr", "it", "ru")
PRETRAIN_SIZE = "demo"
PRETRAIN_STEPS = 2000
ADAPTER_ATTN_DIM = 16  # facebook/mms-1b-all's value
KINDS = ("pretrained", "scratch", "mms_like")
SEED = 0


def _log(*args) -> None:
    print(*args, flush=True)


# --------------------------------------------------------------------------------------------------
# run folders through the product's own steps
# --------------------------------------------------------------------------------------------------
def prepare_run(run_dir: Path, language: str, model: str = "tiny", size: str = "demo", data_source: str = "synthetic",
                **params) -> Config:
    """Steps 01-03 into ``run_dir`` (03 builds the processor around MODEL's feature extractor)."""
    from xlsr_helpers.load import run_load
    from xlsr_helpers.normalize import run_normalize
    from xlsr_helpers.vocab import run_vocab

    cfg = Config(language=language, run_dir=str(run_dir), data_source=data_source, synthetic_size=size,
                 model=model).updated(**params)
    cfg = resolve(cfg)
    cfg.save("01_load")
    run_load(cfg)
    run_normalize(cfg)
    run_vocab(cfg)
    return cfg


def notebook_config(run_dir: Path, step: str, **params) -> Config:
    """The config a notebook of ``step`` gets from its parameters cell (``run_config.from_params``, saved to run.json):
    what earlier steps used, with the recipe fields they left open filled from *this* MODEL's family."""
    run_dir = Path(run_dir)
    given = {"LANGUAGE": Config.load(run_dir).language, "RUN_DIR": str(run_dir),
             **{name.upper(): value for name, value in params.items()}}
    return from_params(given, step=step)


def copy_run_for(base_run: Path, run_dir: Path, model: str, **vocab_params) -> Config:
    """A new run folder with 01-02 (and the prepared audio) of ``base_run``, and step 03 again for ``model`` (with
    ``vocab_params``, e.g. vocabulary="train")."""
    from xlsr_helpers.vocab import run_vocab

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True)
    for name in ("01_load", "02_normalize", "run.json"):
        source = Path(base_run) / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, run_dir / name)
    prepared = Path(base_run) / "04_train" / "prepared"
    if prepared.exists():  # keyed by the tokenizer: rebuilt by step 04 if step 03 makes another one
        shutil.copytree(prepared, run_dir / "04_train" / "prepared")
    cfg = notebook_config(run_dir, "03_vocab", model=str(model), **vocab_params)
    run_vocab(cfg)
    return cfg


# --------------------------------------------------------------------------------------------------
# the layouts
# --------------------------------------------------------------------------------------------------
def _base_config(**extra):
    """The tiny architecture in the config of a pretrained-only XLSR checkpoint (write_xlsr53_pretrained's values)."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(**{**XLSR53_CONFIG, **TINY_ARCHITECTURE, **extra})


def write_pretraining_layout(folder: Path, encoder_state: dict | None, seed: int = SEED) -> Path:
    """Wav2Vec2ForPreTraining with ``encoder_state`` (a ``wav2vec2.*`` state dict without the prefix) as its
    encoder, or a random transformer on the fixed filterbank when None; quantizer and projections random."""
    import torch
    from transformers import Wav2Vec2ForPreTraining

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = _base_config()
    torch.manual_seed(seed)
    model = Wav2Vec2ForPreTraining(config)
    if encoder_state is None:
        tiny_filterbank_(model)  # the same fixed front-end as the pretrained encoder: only the transformer differs
    else:
        model.wav2vec2.load_state_dict(encoder_state, strict=True)
    model.eval()
    _write_config(folder, config, "Wav2Vec2ForPreTraining", transformers_version="4.7.0.dev0")
    _write_json(folder / "preprocessor_config.json",
                _wav2vec2_feature_extractor(do_normalize=True, return_attention_mask=True))
    _save_weights(folder, _legacy_state_dict(model), "pytorch_model.bin")
    return folder


def write_mms_like_layout(folder: Path, trained, vocab: dict[str, int], tokens: dict[str, str], language: str,
                          seed: int = SEED) -> Path:
    """Wav2Vec2ForCTC with attention adapters around ``trained``'s encoder, as facebook/mms-1b-all is laid out:
    the main weights carry the pre-training language's adapter and head, adapter.<lang>.safetensors holds them
    again, vocab.json is nested {lang: vocab}. The adapter is an identity (its output layer is zero), so that
    loading with target_lang=<lang> gives back exactly the pre-trained CTC model."""
    import torch
    from transformers import Wav2Vec2ForCTC

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    code = mms_language_code(language)
    config = _base_config(adapter_attn_dim=ADAPTER_ATTN_DIM, vocab_size=len(vocab),
                          pad_token_id=vocab[tokens["pad_token"]], bos_token_id=None, eos_token_id=None,
                          attention_dropout=0.05, hidden_dropout=0.05, feat_proj_dropout=0.05,
                          activation_dropout=0.05, final_dropout=0.05, layerdrop=0.0, mask_time_prob=0.05,
                          ctc_loss_reduction="mean")
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(config)
    missing, unexpected = model.load_state_dict(trained.state_dict(), strict=False)
    assert not unexpected and all(".adapter_layer." in name for name in missing), (missing, unexpected)
    with torch.no_grad():
        for name, parameter in model._get_adapters().items():
            if ".linear_2." in name:
                parameter.zero_()
    model.eval()
    adapter = {name: p.detach().clone().contiguous() for name, p in model._get_adapters().items()}
    _save_weights(folder, adapter, f"adapter.{code}.safetensors")
    _write_config(folder, config, "Wav2Vec2ForCTC", transformers_version="4.31.0.dev0")
    _write_json(folder / "preprocessor_config.json",
                _wav2vec2_feature_extractor(do_normalize=True, return_attention_mask=True))
    _save_weights(folder, _legacy_state_dict(model), "model.safetensors")
    _write_json(folder / "vocab.json", {code: vocab})
    specials = {k: tokens[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    _write_json(folder / "special_tokens_map.json", specials)
    _write_json(folder / "tokenizer_config.json", {
        **specials, "do_lower_case": False, "replace_word_delimiter_char": " ", "target_lang": code,
        "tokenizer_class": "Wav2Vec2CTCTokenizer", "word_delimiter_token": tokens["word_delimiter_token"],
    })
    return folder


# --------------------------------------------------------------------------------------------------
# building once
# --------------------------------------------------------------------------------------------------
def encoder_name(languages=PRETRAIN_LANGUAGES, size: str = PRETRAIN_SIZE, steps: int = PRETRAIN_STEPS,
                 seed: int = SEED) -> str:
    return f"encoder-{'+'.join(languages)}-{size}-{steps}updates-seed{seed}"


# The pre-trained CTC model itself (the tiny architecture after PRETRAIN_STEPS updates), committed: pre-training costs
# 8-12 minutes of 2 cores, most of the slow tier, and its result is a 2.5 MB file. `python tests/pretrained.py` makes it
# again through the product (steps 01-04, as below) and replaces the stored one; the learning proof fine-tunes from it.
STORED = Path(__file__).parent / "data" / "learning_proof_encoder"


def pretrain(out: Path, languages=PRETRAIN_LANGUAGES, size: str = PRETRAIN_SIZE, steps: int = PRETRAIN_STEPS,
             seed: int = SEED) -> Path:
    """Pre-train the tiny model with CTC on ``languages`` through steps 01-04 and keep, in ``out``, the trained model
    (step 04's model/ folder), the vocabulary's special tokens (tokens.json) and the record (pretraining.json)."""
    from xlsr_helpers.synthetic import corpus_dir, make_corpus
    from xlsr_helpers.train.curves import eval_history
    from xlsr_helpers.train.step import run_train

    out = Path(out)
    started = time.perf_counter()
    work = out.with_name(f".{out.name}.run{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    # More than one language: the first is LANGUAGE (its synthetic corpus), the others join as Common Voice
    # folders (DATA_SOURCE=synthetic+common_voice:<dir>), as a user would combine sources.
    sources = ["synthetic"]
    for language in languages[1:]:
        make_corpus(language, size)
        sources.append(f"common_voice:{corpus_dir(language, size)}")
    cfg = prepare_run(work, languages[0], model="tiny", size=size, data_source="+".join(sources), seed=seed)
    prepared_s = time.perf_counter() - started
    report = run_train(resolve(cfg.updated(max_steps=steps, eval_steps=max(1, steps // 5), save_steps=steps,
                                           logging_steps=max(1, steps // 20))))
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(work / "04_train" / "model", out)
    _write_json(out / "tokens.json", json.loads((work / "03_vocab" / "report.json").read_text())["tokens"])
    _write_json(out / "pretraining.json", {
        "languages": list(languages), "size": size, "updates": report["global_step"], "seed": seed,
        "recipe": {k: report.get(k) for k in ("learning_rate", "batch_size", "gradient_accumulation_steps")},
        "train_rows": report.get("rows_kept", {}).get("train"), "curve": eval_history(report),
        "final_eval": report["eval"], "train_seconds": report["train_seconds"],
        "steps_01_03_seconds": round(prepared_s, 1), "wall_seconds": round(time.perf_counter() - started, 1),
    })
    shutil.rmtree(work)  # prepared audio and checkpoints: only the model and the record are kept
    return out


def stored_pretraining(languages=PRETRAIN_LANGUAGES, size: str = PRETRAIN_SIZE, steps: int = PRETRAIN_STEPS,
                       seed: int = SEED) -> Path | None:
    """The committed pre-trained model when it was made with these settings, else None."""
    record = STORED / "pretraining.json"
    if not record.exists():
        return None
    made = json.loads(record.read_text())
    wanted = {"languages": list(languages), "size": size, "updates": steps, "seed": seed}
    return STORED if all(made.get(k) == v for k, v in wanted.items()) else None


def build_pretrained_encoder(root, languages=PRETRAIN_LANGUAGES, size: str = PRETRAIN_SIZE,
                             steps: int = PRETRAIN_STEPS, seed: int = SEED, log: Callable = _log) -> Path:
    """``root/<name>`` with pretrained/, scratch/, mms_like/ and pretraining.json; reused when complete.

    From the committed pre-trained model when it matches the settings (seconds), else pre-trained here first
    (minutes). Written into a temporary sibling and renamed, so that parallel test workers never see half a folder."""
    from transformers import AutoProcessor, Wav2Vec2ForCTC

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    folder = root / encoder_name(languages, size, steps, seed)
    if (folder / COMPLETE).exists():
        return folder
    tmp = root / f".{folder.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    started = time.perf_counter()
    trained_dir = stored_pretraining(languages, size, steps, seed) or pretrain(tmp / "trained", languages, size,
                                                                              steps, seed)
    trained = Wav2Vec2ForCTC.from_pretrained(str(trained_dir))
    processor = AutoProcessor.from_pretrained(str(trained_dir))
    encoder = {k: v for k, v in trained.wav2vec2.state_dict().items()}
    write_pretraining_layout(tmp / "pretrained", encoder, seed)
    write_pretraining_layout(tmp / "scratch", None, seed)
    tokens = json.loads((trained_dir / "tokens.json").read_text())
    write_mms_like_layout(tmp / "mms_like", trained, processor.tokenizer.get_vocab(), tokens, languages[0], seed)
    shutil.copy(trained_dir / "pretraining.json", tmp / "pretraining.json")
    shutil.rmtree(tmp / "trained", ignore_errors=True)
    (tmp / COMPLETE).touch()
    shutil.rmtree(folder, ignore_errors=True)  # a half-written folder from an interrupted run
    try:
        tmp.rename(folder)
    except OSError:  # another worker finished first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / COMPLETE).exists():
            raise
    log(f"pretrained encoder ready in {time.perf_counter() - started:.0f} s: {folder}")
    return folder


# --------------------------------------------------------------------------------------------------
# fine-tuning through MODEL=<folder>
# --------------------------------------------------------------------------------------------------
# The families' recipes scaled for 2 CPU cores. Everything not named here is the family's recipe (families.RECIPES):
# wav2vec2 keeps the seed's dropouts (0.1) and frozen feature encoder; the adapter recipe keeps no dropout, masking
# 0.05 and the frozen base model. What changes, and why:
# - batches of 8 clips without accumulation (seed: 16 x 2; MMS: 32): what 2 cores update in ~0.2 s;
# - learning rate x10 (seed 3e-4 -> 3e-3, MMS 1e-3 -> 1e-2): the encoder is ~600x smaller than XLSR's 300M and
#   the budget is a few hundred updates. Measured on the tr demo corpus with the German-only encoder (see above):
#   pretrained at 1e-3 had CER 0.48 after 400 updates, at 3e-3 0.16 (with a head init that worked); adapters at
#   1e-3 0.70, 5e-3 0.39, 1e-2 0.40 (after 300). families.TINY_TRAINING's 5e-3 is the rate for training from scratch;
# - warm-up 8 % of the updates (WARMUP_STEPS=-1, as the tiny recipe) instead of 500 / 100 steps, which would be
#   most or all of the budget;
# - no gradient checkpointing (it saves GPU memory and costs time; the model is 2 MB);
# - wav2vec2 without time masking and LayerDrop (seed: 0.05 and 0.1), regularizers for runs of thousands of updates.
#   With them, half the heads (SEED 42 and 3 of 42, 1, 2, 3; 1 of 4 on an encoder pre-trained 1,200 updates) stayed
#   on the all-blank plateau for all 300 updates (CER 0.99-1.00; the others 0.24-0.45); without them, every head
#   tried learned: CER 0.17-0.19 after 300 updates on the 2,000-update encoder (seeds 42, 1, 3; one thread each),
#   0.26 for seed 3 on an encoder pre-trained 1,200 updates before the lazy data path (1.00 with them), and the
#   scratch arm reached 0.89. The masking is what matters: seed 42 with masking alone stayed blank (CER 1.00), with
#   LayerDrop alone it learned (0.19).
CPU_RECIPES = {
    "wav2vec2": dict(batch_size=8, gradient_accumulation_steps=1, learning_rate=3e-3, warmup_steps=-1,
                     gradient_checkpointing=False, layerdrop=0.0, mask_time_prob=0.0),
    "mms-adapter": dict(batch_size=8, gradient_accumulation_steps=1, learning_rate=1e-2, warmup_steps=-1,
                        gradient_checkpointing=False),
    # tests/test_learning_proof_subword.py: both arms (VOCABULARY "model" and "train") on one recipe. Meta's 1e-5
    # keeps a 300M-parameter model that already writes the language near where it is; x10 (as above) would leave a
    # new head on the all-blank plateau for the whole budget. The rate of the wav2vec2 arm above, which a new head
    # learns with, is the one both arms get: the comparison is not won by a rate that only suits a kept head.
    "omniasr-ctc": dict(batch_size=8, gradient_accumulation_steps=1, learning_rate=3e-3, warmup_steps=-1,
                        gradient_checkpointing=False, layerdrop=0.0),
}
PROOF_STEPS = 300  # updates per arm (the same budget for every arm)
PROOF_EVAL_STEPS = 50  # evaluate every N updates (the curves)


def fine_tune(model_folder, base_run, run_dir, steps: int, eval_steps: int, vocabulary: str = "auto",
              **overrides) -> dict:
    """Steps 03-04 of ``base_run``'s data (copied to ``run_dir``) with MODEL=``model_folder``, VOCABULARY=``vocabulary``
    and its family's CPU recipe; returns step 04's report with ``wall_seconds`` (step 03 + 04) added."""
    from xlsr_helpers.train.step import run_train

    started = time.perf_counter()
    cfg = copy_run_for(base_run, run_dir, str(model_folder), vocabulary=vocabulary)
    family = recipe_for(cfg).family
    params = dict(CPU_RECIPES[family], max_steps=steps, eval_steps=eval_steps, logging_steps=eval_steps,
                  save_steps=steps)
    params.update(overrides)
    cfg = notebook_config(run_dir, "04_train", **params)
    report = run_train(cfg)
    report["recipe"] = {name: getattr(cfg, name) for name in RECIPE_FIELDS + ("freeze_feature_encoder",)}
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    prepared, shared = Path(run_dir) / "04_train" / "prepared", Path(base_run) / "04_train" / "prepared"
    if prepared.exists() and not shared.exists():  # the next arm reuses the prepared audio
        tmp = shared.with_name(f".prepared.tmp{os.getpid()}")
        shutil.copytree(prepared, tmp)
        try:
            tmp.rename(shared)
        except OSError:  # another arm was first
            shutil.rmtree(tmp, ignore_errors=True)
    return report


ARMS = ("pretrained", "scratch", "adapters")  # the fine-tuning arms: MODEL=pretrained/, scratch/, mms_like/
ARM_FOLDERS = {"pretrained": "pretrained", "scratch": "scratch", "adapters": "mms_like"}


def curves_table(reports: dict[str, dict]) -> str:
    """The held-out CER curves of the arms side by side (a row per evaluated step), then each arm's cost."""
    from xlsr_helpers.train.curves import eval_history

    curves = {name: {e["step"]: e["cer"] for e in eval_history(r)} for name, r in reports.items()}
    steps = sorted({s for c in curves.values() for s in c})
    lines = [f"{'step':>6} " + " ".join(f"{name + ' CER':>16}" for name in reports)]
    for step in steps:
        cells = [f"{curves[n][step]:>16.3f}" if step in curves[n] else f"{'':>16}" for n in reports]
        lines.append(f"{step:>6} " + " ".join(cells))
    lines.append("")
    for name, r in reports.items():
        p = r.get("parameters", {})
        lines.append(f"{name:<12} family {r.get('family')!s:<12} lr {r.get('learning_rate')!s:<7} "
                     f"trainable {p.get('trainable', 0):>7,} of {p.get('total', 0):>7,}  train {r.get('train_seconds', 0):>6.0f} s  "
                     f"wall (03+04) {r.get('wall_seconds', 0):>6.0f} s")
    return "\n".join(lines)


if __name__ == "__main__":  # python tests/pretrained.py: pre-train again and replace the committed model
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    print(f"pre-training {encoder_name()} (8-12 minutes on 2 cores) ...", flush=True)
    print(f"stored in {pretrain(STORED)}")
