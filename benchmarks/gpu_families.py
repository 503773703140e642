"""Benchmark: does each model family fit a 16 GB Colab T4, and how fast does it train there?

    python benchmarks/gpu_families.py                      # GPU: 4 families x 2 settings, 60 steps each
    python benchmarks/gpu_families.py --precision fp16     # what a T4 runs (it has no bf16)
    python benchmarks/gpu_families.py --max-batch-seconds 200   # "ours" with duration batches
    python benchmarks/gpu_families.py --families xlsr53 --steps 100 --json xlsr53.json
    python benchmarks/gpu_families.py --smoke              # CPU rehearsal: shrunken models, 2 steps, same table

(benchmarks/gpu_check.py runs this table as its third part, after the precision and checkpointing checks.)

Four families at their real size, with random weights (no Hub needed), built from the architecture values of
the real config.json files: XLSR-53 (facebook/wav2vec2-large-xlsr-53: wav2vec2 large, 24 layers, hidden 1024,
~315M weights), MMS-1b-all with language adapters (facebook/mms-1b-all: wav2vec2 1B, 48 layers, hidden 1280,
adapter_attn_dim 16; base frozen, only the adapters and the head trained, as the MMS recipe does),
w2v-BERT 2.0 (facebook/w2v-bert-2.0: Wav2Vec2BertForCTC, 24 conformer layers, hidden 1024, add_adapter=True,
160-dim log-mel input from SeamlessM4TFeatureExtractor) and Omnilingual ASR CTC 300M
(hf-audio/omniasr-ctc-300m-v2: OmniASRForCTC, the same 24 x 1024 encoder with its own CTC head over 10,288
tokens, ~326M weights, OmniASRFeatureExtractor). Each is trained by the curriculum's own step-04 code
(the family's recipe from ``xlsr_helpers.models``, its TrainingArguments, the CTC Trainer and collator, the
step's callbacks) on synthetic clips of Common Voice-like length (log-normal around 4.5 s, 1-10 s), at two
settings that differ only in how batches are made and whether activations are recomputed:

- ours: the project's defaults: the recipe's batch (16 x 2 accumulation; 32 x 1 for MMS adapters), batches
  of similar length from LengthBucketSampler (or DurationBatchSampler under --max-batch-seconds), gradient
  checkpointing "auto", decided by step 04's own ``Training.choose_checkpointing``
  (``memory.needs_checkpointing`` on the largest batch, with the model already on the GPU);
- seed: the 2021 notebook: batches of 16 x 2, gradient checkpointing always on, transformers' own
  group_by_length sampler (LengthGroupedSampler: sorted only within random mega-batches).

GPU memory is capped at 16 GB (``--memory-gb``; ``memory.set_memory_cap``) when the card is bigger, so an
"OOM" in the table means "does not fit a 16 GB card". A Colab T4 leaves PyTorch about 15 GB of its 16 (the
CUDA context takes the rest): ``--memory-gb 15`` is the stricter test. Precision: auto (bf16 where the GPU
has it, else fp16); ``--precision fp16`` for a T4's arithmetic.

Prints one row per family and setting: batching, gradient checkpointing, optimizer steps/s and seconds of
audio trained per second after the warm-up steps (the first batch, the longest, is never timed), the share of
padding in the batches, and the peak GPU memory, allocated by tensors and reserved by PyTorch's caching
allocator (what nvidia-smi and an out-of-memory error see); then why "auto" chose what it chose. No figure is
quoted here: they are to be produced on a GPU with this script. ``--smoke`` (the default without CUDA) runs
every family and setting end to end on a CPU with 2-layer, hidden-64 versions of the architectures: its
figures check the plumbing, they are not the GPU figures, and its memory columns read "n/a".
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# --------------------------------------------------------------------------------------------------
# the families: architecture values of the real config.json files (dropouts, masking, LayerDrop, the
# vocabulary and add_adapter come from the family's recipe, through models.model_overrides)
# --------------------------------------------------------------------------------------------------
# facebook/wav2vec2-large-xlsr-53 config.json (Wav2Vec2ForPreTraining; the CTC head is ours)
XLSR53 = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, hidden_act="gelu",
    conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_bias=True,
    feat_extract_norm="layer", feat_extract_activation="gelu", do_stable_layer_norm=True,
    num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, layer_norm_eps=1e-5,
    mask_time_length=10, apply_spec_augment=True,
)
# facebook/mms-1b-all config.json (Wav2Vec2ForCTC with an attention adapter in each of its 48 layers)
MMS_1B_ALL = dict(
    hidden_size=1280, num_hidden_layers=48, num_attention_heads=16, intermediate_size=5120, hidden_act="gelu",
    conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_bias=True,
    feat_extract_norm="layer", feat_extract_activation="gelu", do_stable_layer_norm=True,
    num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, layer_norm_eps=1e-5,
    mask_time_length=10, apply_spec_augment=True, adapter_attn_dim=16,
)
# facebook/w2v-bert-2.0 config.json (Wav2Vec2BertModel: conformer, relative_key positions; no CTC head)
W2V_BERT_2 = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, hidden_act="swish",
    feature_projection_input_dim=160, position_embeddings_type="relative_key", left_max_position_embeddings=64,
    right_max_position_embeddings=8, conv_depthwise_kernel_size=31, layer_norm_eps=1e-5,
    adapter_kernel_size=3, adapter_stride=2, num_adapter_layers=1, output_hidden_size=1024,
    use_intermediate_ffn_before_adapter=False, mask_time_length=10, apply_spec_augment=True,
)
# hf-audio/omniasr-ctc-300m-v2 config.json (OmniASRForCTC, converted from fairseq2's omniASR_CTC_300M_v2): the
# audio_config of its "large_lv60k" encoder, which transformers' OmniASRAudioConfig also has as its defaults, and
# the CTC head over Meta's omniASR_tokenizer_written_v2 (10,288 entries; the family keeps the model's tokenizer,
# so the head keeps that size)
OMNIASR_CTC_300M = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, hidden_act="gelu",
    conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_bias=True,
    num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, layer_norm_eps=1e-5,
)
OMNIASR_VOCAB = 10_288
# --smoke: the same layouts shrunk to 2 layers of hidden 64 (the frame arithmetic is kept), a quarter of each
# setting's batch, clips of 1-2 s
SHRUNK = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
SMOKE = {"wav2vec2": dict(SHRUNK, conv_dim=(16,) * 7), "wav2vec2-bert": dict(SHRUNK, output_hidden_size=64),
         "omniasr_ctc": dict(SHRUNK, conv_dim=(16,) * 7)}
SMOKE_OMNIASR_VOCAB = 64


@dataclass(frozen=True)
class Family:
    name: str  # the table's label
    hub_id: str  # the repository whose architecture is copied
    recipe: str  # xlsr_helpers.families.RECIPES key
    model_type: str  # config.json model_type
    architecture: dict
    model_class: str = ""  # transformers' class, when not every supported version has it

    def missing(self) -> str:
        """Why the installed transformers cannot build this family ("" when it can)."""
        import transformers

        if self.model_class and not hasattr(transformers, self.model_class):
            return f"transformers {transformers.__version__} has no {self.model_class}"
        return ""


FAMILIES = {f.name: f for f in (
    Family("xlsr53", "facebook/wav2vec2-large-xlsr-53", "wav2vec2", "wav2vec2", XLSR53),
    Family("mms-1b-all", "facebook/mms-1b-all", "mms-adapter", "wav2vec2", MMS_1B_ALL),
    Family("w2v-bert-2.0", "facebook/w2v-bert-2.0", "w2v-bert", "wav2vec2-bert", W2V_BERT_2),
    Family("omniasr-ctc-300m", "hf-audio/omniasr-ctc-300m-v2", "omniasr-ctc", "omniasr_ctc", OMNIASR_CTC_300M,
           model_class="OmniASRForCTC"),  # transformers 5.25 and later
)}
SETTINGS = ("ours", "seed")
SEED_BATCH = dict(batch_size=16, gradient_accumulation_steps=2)  # the 2021 notebook
TURKISH = "abcçdefgğhıijklmnoöprsştuüvyz'"


# --------------------------------------------------------------------------------------------------
# synthetic clips of Common Voice-like length
# --------------------------------------------------------------------------------------------------
def clip_seconds(n: int, mean_s: float, max_s: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(mean_s), 0.35, n), 1.0, max_s)


def make_dataset(processor, n: int, mean_s: float, max_s: float, chars_per_s: float = 14.0, seed: int = 0,
                 cache_dir: str | None = None):
    """Prepared-split layout (samples, labels, input_length): noise audio, random letters and word breaks."""
    from datasets import Dataset, Features, List, Value

    from xlsr_helpers.audio import SAMPLES_COLUMN, to_int16

    rng = np.random.default_rng(seed)
    tokenizer = processor.tokenizer
    letters = np.array([tokenizer.convert_tokens_to_ids(c) for c in TURKISH])
    delimiter = tokenizer.convert_tokens_to_ids(tokenizer.word_delimiter_token)
    seconds = clip_seconds(n, mean_s, max_s, seed)

    def rows():
        for s in seconds:
            samples = int(s * 16000)
            count = max(1, int(s * chars_per_s))
            labels = np.where(rng.random(count) > 0.17, rng.choice(letters, count), delimiter)
            yield {SAMPLES_COLUMN: to_int16(0.1 * rng.standard_normal(samples)), "labels": labels.tolist(),
                   "input_length": samples}

    features = Features({SAMPLES_COLUMN: List(Value("int16")), "labels": List(Value("int32")),
                         "input_length": Value("int32")})
    dataset = Dataset.from_generator(rows, features=features, cache_dir=cache_dir)
    return dataset.with_format("numpy"), seconds


# --------------------------------------------------------------------------------------------------
# one family at one setting
# --------------------------------------------------------------------------------------------------
def setting_config(family: Family, setting: str, args):
    """The run's Config: the family's recipe, with the 2021 batching and checkpointing for "seed"."""
    from xlsr_helpers.config import Config
    from xlsr_helpers.families import resolve

    cfg = Config(model=family.hub_id, model_family=family.recipe, precision=args.precision, max_steps=args.steps,
                 max_duration_s=args.max_seconds)
    if setting == "ours":
        cfg = resolve(cfg.updated(max_batch_seconds=args.max_batch_seconds))
    else:
        cfg = resolve(cfg.updated(**SEED_BATCH, gradient_checkpointing=True, max_batch_seconds=0.0))
    return cfg.updated(batch_size=max(1, cfg.batch_size // 4)) if args.smoke else cfg


def build_model(family: Family, cfg, processor, device, smoke: bool):
    """Random weights in the real architecture (built on ``device``), set up as the family's recipe says:
    models.model_overrides (dropouts, masking, vocabulary, add_adapter) and models.freeze."""
    import torch
    from transformers import AutoConfig, AutoModelForCTC, set_seed

    from xlsr_helpers.families import RECIPES
    from xlsr_helpers.models import freeze, model_overrides

    architecture = dict(family.architecture, **(SMOKE[family.model_type] if smoke else {}))
    overrides = model_overrides(cfg, processor)
    if family.model_type == "omniasr_ctc":
        config = omniasr_config(architecture, overrides, SMOKE_OMNIASR_VOCAB if smoke else OMNIASR_VOCAB)
    else:
        config = AutoConfig.for_model(family.model_type, **architecture, **overrides)
    set_seed(cfg.seed)
    with torch.device(device):
        model = AutoModelForCTC.from_config(config)
    freeze(model, RECIPES[family.recipe], cfg.freeze_feature_encoder)
    return model


def omniasr_config(architecture: dict, overrides: dict, vocab_size: int):
    """Omnilingual's nested config (the encoder's values under ``audio_config``), with the run's values set where
    step 04 sets them (``models.checkpoint_config``, from a config.json written here) and the head at the size
    of the model's own tokenizer (the benchmark's labels use a few of its ids)."""
    from transformers import OmniASRAudioConfig, OmniASRCTCConfig

    from xlsr_helpers.models import checkpoint_config

    with tempfile.TemporaryDirectory() as folder:
        OmniASRCTCConfig(audio_config=OmniASRAudioConfig(**architecture)).save_pretrained(folder)
        config = checkpoint_config(folder, {**overrides, "vocab_size": vocab_size}, log=lambda *a: None)
    return config


def family_processor(family: Family, vocab):
    """The processor a run of ``family`` has: the family's feature extractor (Omnilingual: its checkpoint's own,
    OmniASRFeatureExtractor as the conversion script writes it, which gives ``padding_mask``) and a character
    tokenizer for the labels."""
    from xlsr_helpers.families import RECIPES
    from xlsr_helpers.models import family_feature_extractor
    from xlsr_helpers.vocab import make_processor

    if family.model_type == "omniasr_ctc":
        from transformers import OmniASRFeatureExtractor

        extractor = OmniASRFeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0, do_normalize=True,
                                            return_attention_mask=True)
    else:
        extractor = family_feature_extractor(RECIPES[family.recipe])
    return make_processor(vocab, extractor)


def trainer_class(sampler: str):
    """The project's CTCTrainer, counting the audio of each training batch (summed on the device, read at the
    end: no extra host sync); with ``sampler="transformers"`` its batches come from transformers' own
    LengthGroupedSampler, as in the 2021 notebook."""
    from transformers import Trainer

    from xlsr_helpers.train.data import INPUT_LENGTHS_KEY
    from xlsr_helpers.train.trainer import CTCTrainer

    class BenchmarkTrainer(CTCTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.batches = []  # (optimizer steps done before it, real samples, padded samples)

        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training:
                samples = inputs[INPUT_LENGTHS_KEY]
                self.batches.append((self.state.global_step, samples.sum(), samples.max() * len(samples)))
            return super().compute_loss(model, inputs, *args, **kwargs)

        if sampler == "transformers":
            def _get_train_sampler(self, train_dataset=None):
                return Trainer._get_train_sampler(self, train_dataset)

    return BenchmarkTrainer


def step_clock(cuda: bool):
    """A callback that notes the time at the start of training and at the end of each optimizer step."""
    import torch
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.marks: dict[int, float] = {}

        def _mark(self, step: int) -> None:
            if cuda:
                torch.cuda.synchronize()
            self.marks[step] = time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):
            self._mark(0)

        def on_step_end(self, args, state, control, **kwargs):
            self._mark(state.global_step)

    return StepClock()


def measure(row: dict, family: Family, setting: str, dataset, processor, args, device: str, out_dir: str,
            checkpointing: bool | None = None) -> None:
    """Train ``args.steps`` updates and fill in the row of the table (its figures from the steps after the
    warm-up); what is known before training (batches, checkpointing) is in the row if training runs out of memory.
    ``checkpointing``: None decides as step 04 does; True or False forces it (benchmarks/gpu_check.py measures the
    real peak without it)."""
    import torch
    from transformers import PrinterCallback

    from xlsr_helpers.models import count_parameters
    from xlsr_helpers.train.data import DataCollatorCTCWithPadding
    from xlsr_helpers.train.step import Training
    from xlsr_helpers.train.callbacks import make_callbacks
    from xlsr_helpers.train.trainer import training_arguments

    cuda = device == "cuda"
    cfg = setting_config(family, setting, args)
    model = build_model(family, cfg, processor, device, args.smoke)
    training = Training(cfg, log=lambda *a: None, processor=processor, model=model, prepared={"train": dataset})
    training.args = training_arguments(cfg, out_dir, eval_strategy="no", save_strategy="no",
                                       load_best_model_at_end=False, disable_tqdm=True)
    if cfg.max_batch_seconds:
        row["batching"] = f"<= {cfg.max_batch_seconds:g} s x {cfg.gradient_accumulation_steps}, duration batches"
    else:
        row["batching"] = f"{cfg.batch_size} x {cfg.gradient_accumulation_steps}, " + (
            "length buckets" if setting == "ours" else "transformers' grouping")
    row["parameters"] = count_parameters(model)
    if checkpointing is None:
        on = training.choose_checkpointing()  # "ours": "auto", measured with the largest batch; "seed": always on
        row["checkpointing"] = ("auto: " if setting == "ours" else "") + ("on" if on else "off")
        row["checkpointing_why"] = training.report["gradient_checkpointing"]["why"]
    else:
        name = "activation_checkpointing" if hasattr(training.args, "activation_checkpointing") else \
            "gradient_checkpointing"
        setattr(training.args, name, checkpointing)
        row["checkpointing"] = f"forced {'on' if checkpointing else 'off'}"
        row["checkpointing_why"] = "set by the benchmark"
    row["layerdrop"] = getattr(getattr(model.config, "audio_config", None) or model.config, "layerdrop", 0.0)
    callbacks = make_callbacks(0.0, log=lambda *a: None)
    clock = step_clock(cuda)
    trainer = trainer_class("transformers" if setting == "seed" else "ours")(
        model=model, args=training.args, data_collator=DataCollatorCTCWithPadding(processor),
        train_dataset=dataset, processing_class=processor, callbacks=[*callbacks.values(), clock],
        max_batch_seconds=cfg.max_batch_seconds)
    callbacks["non_finite"].trainer = trainer
    trainer.remove_callback(PrinterCallback)  # the Trainer's own log lines; the table says it all
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()

    warm = min(10, max(1, args.steps // 5))  # the longest batch comes first: never timed
    last = trainer.state.global_step
    steady = [(int(real), int(padded)) for step, real, padded in trainer.batches if step >= warm]
    seconds = clock.marks[last] - clock.marks[warm]
    audio_s = sum(real for real, _ in steady) / 16000
    row.update(steps_per_s=round((last - warm) / seconds, 3), audio_s_per_s=round(audio_s / seconds, 1),
               padding=round(1 - sum(r for r, _ in steady) / max(1, sum(p for _, p in steady)), 3),
               **peak_memory(cuda))


def peak_memory(cuda: bool) -> dict:
    import torch

    if not cuda:
        return {"peak_allocated_gib": None, "peak_reserved_gib": None}
    return {"peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2)}


def is_out_of_memory(error: BaseException) -> bool:
    """torch's OutOfMemoryError, or a CUDA library's "out of memory" (cuBLAS, cuDNN workspaces)."""
    import torch

    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def free_gpu(cuda: bool) -> None:
    """Drop what the last run left (model, optimizer, the traceback of an out-of-memory error)."""
    import torch

    gc.collect()
    if cuda:
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------------
COLUMNS = (("family", "family"), ("setting", "setting"), ("batching", "batches"), ("checkpointing", "checkpointing"),
           ("steps_per_s", "steps/s"), ("audio_s_per_s", "audio s/s"), ("padding", "padding"),
           ("peak_allocated_gib", "peak alloc GiB"), ("peak_reserved_gib", "peak reserved GiB"))


def cell(row: dict, key: str) -> str:
    value = row.get(key)
    if row.get("oom") and key in ("steps_per_s", "audio_s_per_s", "padding"):
        return "OOM"
    if value is None:
        return "n/a"
    if key == "padding":
        return f"{value:.0%}"
    return str(value)


def table(rows: list[dict]) -> str:
    cells = [[title for _, title in COLUMNS]] + [[cell(r, key) for key, _ in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(text.ljust(w) if i < 4 else text.rjust(w) for i, (text, w) in enumerate(zip(line, widths)))
             for line in cells]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def run_all(families: list[Family], args, device: str) -> list[dict]:
    """Every family at every setting, on one synthetic corpus; an out-of-memory error is a row, not the end."""
    from xlsr_helpers.vocab import build_vocab, make_processor

    cuda = device == "cuda"
    vocab = build_vocab([" ".join(TURKISH[i:i + 5] for i in range(0, len(TURKISH), 5))])
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        dataset, seconds = make_dataset(make_processor(vocab), args.clips, args.mean_seconds, args.max_seconds,
                                        cache_dir=str(Path(tmp) / "data"))
        print(f"{args.clips} clips, {seconds.sum() / 3600:.2f} h, mean {seconds.mean():.1f} s, longest "
              f"{seconds.max():.1f} s; {args.steps} steps per setting", flush=True)
        for family in families:
            if family.missing():
                print(f"  {family.name}: skipped ({family.missing()})", flush=True)
                continue
            processor = family_processor(family, vocab)
            for setting in SETTINGS:
                row = {"family": family.name, "setting": setting}
                try:
                    measure(row, family, setting, dataset, processor, args, device, str(Path(tmp) / "out"))
                except RuntimeError as error:  # torch.OutOfMemoryError is one
                    if not is_out_of_memory(error):
                        raise
                    row.update(oom=True, **peak_memory(cuda))
                free_gpu(cuda)
                rows.append(row)
                print(f"  {family.name} / {setting}: "
                      + ("OOM" if row.get("oom") else f"{row['audio_s_per_s']} audio s/s"), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", default=",".join(FAMILIES), help=f"comma list of {', '.join(FAMILIES)}")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per setting (default 60; 2 smoke)")
    parser.add_argument("--precision", default="auto", help="auto | fp16 | bf16 | fp32")
    parser.add_argument("--max-batch-seconds", type=float, default=0.0,
                        help="'ours' with DurationBatchSampler batches of at most this much padded audio")
    parser.add_argument("--memory-gb", type=float, default=16.0, help="GPU memory cap in GB (0: the whole card)")
    parser.add_argument("--clips", type=int, default=None, help="synthetic clips (default 2000; 16 smoke)")
    parser.add_argument("--smoke", action="store_true", help="CPU rehearsal: shrunken models, short clips")
    parser.add_argument("--json", default="", help="also write the rows to this file")
    args = parser.parse_args(argv)

    import torch
    import transformers

    from xlsr_helpers.train.memory import set_memory_cap

    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        print("No CUDA GPU: running the CPU rehearsal (--smoke); its figures are not the GPU figures.")
    args.smoke = not cuda
    args.steps = args.steps or (2 if args.smoke else 60)
    args.clips = args.clips or (16 if args.smoke else 2000)
    args.mean_seconds, args.max_seconds = (1.2, 2.0) if args.smoke else (4.5, 10.0)  # Common Voice: 1-10 s
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step is the warm-up)")
    families = [FAMILIES[name.strip()] for name in args.families.split(",") if name.strip()]
    if cuda:
        total = torch.cuda.get_device_properties(0).total_memory
        budget = min(args.memory_gb * 1e9 or total, total)
        if budget < total:
            set_memory_cap(budget / total)
        where = f"{torch.cuda.get_device_name(0)} ({total / 1e9:.0f} GB, used up to {budget / 1e9:.0f} GB)"
    else:
        where = "cpu, one thread (more oversubscribe a busy machine's cores, and run several times slower)"
    print(f"{where}, precision {args.precision}, torch {torch.__version__}, transformers {transformers.__version__}")

    threads = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(1)
    try:
        rows = run_all(families, args, "cuda" if cuda else "cpu")
    finally:
        torch.set_num_threads(threads)

    print("\n" + table(rows) + "\n")
    for family in families:
        built = [r for r in rows if r["family"] == family.name and "parameters" in r]
        if built:
            p = built[0]["parameters"]
            why = next((r["checkpointing_why"] for r in built if r["setting"] == "ours"), "n/a")
            print(f"{family.name} ({family.hub_id}): {p['total'] / 1e6:.1f}M weights, {p['trainable'] / 1e6:.1f}M "
                  f"trained; ours: checkpointing {why}")
    if cuda:
        print(f"\nA row without OOM fits in {budget / 1e9:.0f} GB; audio s/s x 3600 = hours of audio trained per hour.")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
