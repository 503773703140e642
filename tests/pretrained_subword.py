"""A small model that already *writes* a language, made on this machine: the learning proof of the models of 2026.

Omnilingual ASR (and MMS-1b-all, Parakeet) come with a SentencePiece vocabulary and a CTC head trained on 1,600+
languages, most of them heard in pre-training. This is that situation in miniature, through the product itself:

1. a random ``OmniASRForCTC`` of the ``tiny`` model's size (hidden 128 x 3 layers, the fixed filterbank of
   ``tiny.fixed_filterbank_`` as its frozen feature encoder) with a SentencePiece unigram tokenizer converted the way
   transformers converts Omnilingual's (``checkpoints_subword.omniasr_tokenizer``), saved in the layout of
   ``hf-audio/omniasr-ctc-300m-v2`` (``checkpoints_subword.save_omniasr_ctc``);
2. trained with CTC on its subword vocabulary through steps 01-04 (``MODEL=<that folder>``, ``VOCABULARY="model"``,
   ``NORMALIZER`` auto: Omnilingual's text form) on the synthetic speech of six languages, Turkish among them from
   *another* corpus (seed 1: other speakers and sentences than the target's seed-0 corpus);
3. step 04's model folder is the result: the same layout (``OmniASRForCTC`` + its processor), committed in
   ``tests/data/learning_proof_subword/`` with ``pretraining.json`` (how it was made) — pre-training costs minutes;
   ``python tests/pretrained_subword.py`` makes it again.

The slow test (tests/test_learning_proof_subword.py) scores it zero-shot on the target's test split, then fine-tunes
it on the target with ``VOCABULARY="model"`` (its tokenizer and head kept) and ``"train"`` (a new character
vocabulary and head on the same encoder) at the same number of updates.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from checkpoints import _write_json
from checkpoints_subword import omniasr_ctc_model, omniasr_sentencepiece_of, omniasr_tokenizer, save_omniasr_ctc
from pretrained import SEED, notebook_config

from xlsr_helpers.config import Config
from xlsr_helpers.families import resolve
from xlsr_helpers.tiny import TINY_ARCHITECTURE, fixed_filterbank_

TARGET = "tr"
# (language, synthetic corpus seed): the target from seed 1 (the proof's target corpus is seed 0), the others seed 0.
PRETRAIN_CORPORA = (("tr", 1), ("de", 0), ("es", 0), ("fr", 0), ("it", 0), ("ru", 0))
PRETRAIN_SIZE = "demo"  # 600 training clips each: Turkish is a sixth of what the model hears
# Measured on 2 cores: all blank until ~1,000 updates (the character encoder of tests/pretrained.py learns sooner);
# after 2,400 updates held-out CER 0.69 and Turkish zero-shot test CER 0.78; after 8,000 0.43 and 0.59 (flat from
# ~5,000), in 16 minutes.
PRETRAIN_STEPS = 8000
VOCAB_SIZE = 300  # SentencePiece pieces (+ the specials): Meta's tokenizer has ~10,000 for 1,600+ languages
# Pre-training from random weights: the tiny model's own CPU recipe (recipes.TINY_TRAINING), which the
# character-vocabulary encoder of tests/pretrained.py was made with; LayerDrop off as there.
PRETRAIN_RECIPE = dict(batch_size=8, gradient_accumulation_steps=1, learning_rate=5e-3, warmup_steps=-1,
                       gradient_checkpointing=False, layerdrop=0.0)
# The tiny model's transformer and front-end in OmniASR's audio config (OmniASRAudioConfig's names are wav2vec2's).
TINY_OMNIASR_AUDIO = {k: TINY_ARCHITECTURE[k] for k in (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "conv_dim", "conv_kernel",
    "conv_stride", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "conv_bias")}

STORED = Path(__file__).parent / "data" / "learning_proof_subword"

# The proof (tests/test_learning_proof_subword.py, benchmarks/learning_proof_subword.py): the arms and their budget.
VOCABULARIES = ("model", "train")  # VOCABULARY of each arm: the model's own kept, or a new character vocabulary
PROOF_STEPS = 150  # updates per arm


def _log(*args) -> None:
    print(*args, flush=True)


def _corpora_record() -> list[dict]:
    """PRETRAIN_CORPORA as pretraining.json records them (and stored_pretraining compares them)."""
    return [{"language": language, "size": PRETRAIN_SIZE, "corpus_seed": corpus_seed}
            for language, corpus_seed in PRETRAIN_CORPORA]


def write_initial_model(folder: Path, sentences: list[str], seed: int = SEED) -> Path:
    """Step 1: the random subword CTC model in Omnilingual's layout, on the fixed filterbank, its tokenizer trained
    on ``sentences``."""
    tokenizer = omniasr_tokenizer(omniasr_sentencepiece_of(sentences, VOCAB_SIZE))
    model = omniasr_ctc_model(tokenizer, seed, **TINY_OMNIASR_AUDIO)
    fixed_filterbank_(model.model.audio_tower.subsampling.conv_layers)
    return save_omniasr_ctc(folder, model, tokenizer)


def pretrain(out: Path, steps: int = PRETRAIN_STEPS, seed: int = SEED, log=_log) -> Path:
    """Steps 1-3 of the module's docstring: ``out`` holds step 04's model folder and pretraining.json.

    Steps 01-02 first (NORMALIZER="omnilingual", the text form of an Omnilingual MODEL), so that the tokenizer is
    trained on the run's normalized *training* text only (as a real tokenizer is trained on its model's training
    text), then steps 03-04 with MODEL=<the initial model>, from the notebooks' parameters (run_config.from_params)."""
    from datasets import load_from_disk

    from xlsr_helpers.load import run_load
    from xlsr_helpers.normalize import run_normalize
    from xlsr_helpers.synthetic import corpus_dir, make_corpus
    from xlsr_helpers.train.curves import eval_history
    from xlsr_helpers.train.step import run_train
    from xlsr_helpers.vocab import run_vocab

    out = Path(out)
    started = time.perf_counter()
    work = out.with_name(f".{out.name}.run{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    sources = []
    for language, corpus_seed in PRETRAIN_CORPORA:
        make_corpus(language, PRETRAIN_SIZE, seed=corpus_seed)
        sources.append(f"common_voice:{corpus_dir(language, PRETRAIN_SIZE, corpus_seed)}")
    run = work / "run"
    cfg = resolve(Config(language=PRETRAIN_CORPORA[0][0], run_dir=str(run), data_source="+".join(sources),
                         model="tiny", normalizer="omnilingual", seed=seed))
    cfg.save("01_load")
    run_load(cfg)
    run_normalize(cfg)
    train_text = load_from_disk(str(cfg.step_dir("02_normalize") / "dataset"))["train"]["sentence"][:]
    initial = write_initial_model(work / "initial", train_text, seed)
    cfg = notebook_config(run, "03_vocab", model=str(initial), vocabulary="model", **PRETRAIN_RECIPE)
    vocab_report = run_vocab(cfg, log=log).report
    prepared_s = time.perf_counter() - started
    log(f"steps 01-03 in {prepared_s:.0f} s; training {steps} updates")
    every = max(1, steps // 8)  # eight points on the curve; the model saved with the last evaluation
    report = run_train(notebook_config(run, "04_train", max_steps=steps, eval_steps=every, save_steps=8 * every,
                                       logging_steps=max(1, every // 4), **PRETRAIN_RECIPE))
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(run / "04_train" / "model", out)
    (out / "training_args.bin").unlink(missing_ok=True)  # the Trainer's; the Hub repository holds none
    _write_json(out / "pretraining.json", {
        "corpora": _corpora_record(),
        "updates": report["global_step"], "seed": seed, "vocab_size": VOCAB_SIZE,
        "recipe": {k: report.get(k) for k in ("learning_rate", "batch_size", "gradient_accumulation_steps")},
        "normalizer": "omnilingual", "train_rows": report.get("rows_kept", {}).get("train"),
        "tokenizer_trained_on": f"{len(train_text)} normalized training sentences of the run",
        "coverage": {k: v for k, v in (vocab_report.get("model_coverage") or {}).items() if k != "characters"},
        "curve": eval_history(report), "final_eval": report["eval"],
        "train_seconds": report["train_seconds"], "steps_01_03_seconds": round(prepared_s, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
    })
    shutil.rmtree(work)
    return out


def stored_pretraining(steps: int = PRETRAIN_STEPS, seed: int = SEED) -> Path | None:
    """The committed model when it was made with these settings, else None."""
    record = STORED / "pretraining.json"
    if not record.exists():
        return None
    made = json.loads(record.read_text())
    wanted = {"corpora": _corpora_record(), "updates": steps, "seed": seed, "vocab_size": VOCAB_SIZE}
    return STORED if all(made.get(k) == v for k, v in wanted.items()) else None


def subword_model(root: Path, log=_log) -> Path:
    """The committed model when its settings match, else one pre-trained into ``root`` (minutes)."""
    stored = stored_pretraining()
    if stored:
        return stored
    folder = Path(root) / "learning_proof_subword"
    if not (folder / "pretraining.json").exists():
        log(f"pre-training the subword model ({PRETRAIN_STEPS} updates: minutes) ...")
        pretrain(folder, log=log)
    return folder


def score(model_folder, run: Path, split: str = "test") -> dict:
    """A model folder on ``run``'s ``split``, scored as step 05 scores a baseline (the run's normalizer on the
    references): the metrics of ``evaluate.evaluate``. The pre-trained checkpoint before fine-tuning: zero-shot."""
    from xlsr_helpers import evaluate as ev

    cfg = Config.load(run)
    model, processor = ev.load_model(str(model_folder))
    result = ev.evaluate(model, processor, ev.load_test_split(cfg, split), ev.run_normalizer(cfg), batch_size=8,
                         progress=False, n_resamples=200)
    return result.metrics


if __name__ == "__main__":  # python tests/pretrained_subword.py: pre-train again and replace the committed model
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    print(f"stored in {pretrain(STORED)}")
