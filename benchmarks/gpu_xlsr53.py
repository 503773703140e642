"""Benchmark: the real XLSR-53 architecture (random weights) trained at the default settings on one GPU.

    python benchmarks/gpu_xlsr53.py                      # GPU: 300 steps, batch 16 x 2, auto precision
    python benchmarks/gpu_xlsr53.py --precision fp16     # what a Colab T4 (no bf16) would run
    python benchmarks/gpu_xlsr53.py --steps 2            # CPU smoke run (small batch and short clips)

It answers the Colab user's question "do the defaults fit my 16 GB card, and how fast are they?" without
the Hub: the model is built from facebook/wav2vec2-large-xlsr-53's configuration (24 layers, hidden 1024,
~315M parameters) with random weights, and trained by the curriculum's own code (``train.py``: the
Trainer arguments of the config, CTCTrainer with length-grouped batches, the CTC collator, frozen feature
encoder, gradient checkpointing, LayerDrop 0.1, fp16/bf16) on synthetic clips of Common Voice-like length
(log-normal around 4.5 s, 1-10 s; the longest batch comes first, so the peak memory is reached at step 1).

Prints a table: steps/s and clips/s after warm-up, audio hours trained per hour, and peak GPU memory
(allocated by tensors, and reserved by the caching allocator, which is what nvidia-smi and an
out-of-memory error see).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# facebook/wav2vec2-large-xlsr-53 config.json (architecture fields; the CTC head is ours)
XLSR53 = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, hidden_act="gelu",
    conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_bias=True,
    feat_extract_norm="layer", feat_extract_activation="gelu", do_stable_layer_norm=True,
    num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, layer_norm_eps=1e-5,
    mask_time_length=10, apply_spec_augment=True,
)
TURKISH = "abcçdefgğhıijklmnoöprsştuüvyz'"


def clip_seconds(n: int, mean_s: float, max_s: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(mean_s), 0.35, n), 1.0, max_s)


def make_dataset(processor, n: int, mean_s: float, max_s: float, chars_per_s: float = 14.0, seed: int = 0):
    """Prepared-split layout (samples, labels, input_length): noise audio, random letters."""
    from datasets import Dataset, Features, List, Value

    from xlsr_helpers.audio import SAMPLES_COLUMN, to_int16

    rng = np.random.default_rng(seed)
    letters = [processor.tokenizer.convert_tokens_to_ids(c) for c in TURKISH]
    delimiter = processor.tokenizer.convert_tokens_to_ids(processor.tokenizer.word_delimiter_token)
    seconds = clip_seconds(n, mean_s, max_s, seed)

    def rows():
        for s in seconds:
            samples = int(s * 16000)
            audio = to_int16(0.1 * rng.standard_normal(samples))
            labels = [int(rng.choice(letters)) if rng.random() > 0.17 else delimiter
                      for _ in range(max(1, int(s * chars_per_s)))]
            yield {SAMPLES_COLUMN: audio, "labels": labels, "input_length": samples}

    features = Features({SAMPLES_COLUMN: List(Value("int16")), "labels": List(Value("int32")),
                         "input_length": Value("int32")})
    return Dataset.from_generator(rows, features=features).with_format("numpy"), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps (default 300)")
    parser.add_argument("--batch-size", type=int, default=None, help="per device (default 16; 2 on CPU)")
    parser.add_argument("--grad-acc", type=int, default=None, help="accumulation steps (default 2; 1 on CPU)")
    parser.add_argument("--precision", default="auto", help="auto | fp16 | bf16 | fp32")
    parser.add_argument("--no-checkpointing", action="store_true", help="turn gradient checkpointing off")
    parser.add_argument("--clips", type=int, default=None, help="distinct synthetic clips (default 640; 8 on CPU)")
    parser.add_argument("--mean-seconds", type=float, default=None, help="typical clip length (default 4.5; 2 on CPU)")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="longest clip (Common Voice: 10 s)")
    parser.add_argument("--json", default="", help="also write the results to this file")
    args = parser.parse_args()

    import torch
    import transformers
    from transformers import TrainerCallback, Wav2Vec2Config, Wav2Vec2ForCTC

    from xlsr_helpers.config import Config
    from xlsr_helpers.models import count_parameters, model_overrides
    from xlsr_helpers.train.data import DataCollatorCTCWithPadding
    from xlsr_helpers.train.trainer import make_trainer_class, training_arguments
    from xlsr_helpers.vocab import build_vocab, make_processor

    cuda = torch.cuda.is_available()
    batch = args.batch_size or (16 if cuda else 2)
    grad_acc = args.grad_acc or (2 if cuda else 1)
    clips = args.clips or (max(640, batch * grad_acc * 20) if cuda else 8)
    mean_s = args.mean_seconds or (4.5 if cuda else 2.0)
    max_s = args.max_seconds if cuda else min(args.max_seconds, 3.0)
    if not cuda:
        print("No CUDA GPU: CPU smoke run (small batch, short clips); the numbers are not the GPU figures.\n")

    cfg = Config(model="facebook/wav2vec2-large-xlsr-53", batch_size=batch, gradient_accumulation_steps=grad_acc,
                 precision=args.precision, max_steps=args.steps, gradient_checkpointing=not args.no_checkpointing,
                 num_proc=1).resolved()
    vocab = build_vocab([" ".join(TURKISH[i:i + 5] for i in range(0, len(TURKISH), 5))])
    processor = make_processor(vocab)  # XLSR-53's feature extractor: 16 kHz samples, attention mask
    overrides = model_overrides(cfg, processor, world_size=1)
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(Wav2Vec2Config(**XLSR53, **overrides))
    model.freeze_feature_encoder()
    params = count_parameters(model)

    started = time.perf_counter()
    dataset, seconds = make_dataset(processor, clips, mean_s, max_s)
    build_s = time.perf_counter() - started

    marks: dict[int, float] = {}

    class Timer(TrainerCallback):
        def on_step_end(self, a, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            marks[state.global_step] = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        targs = training_arguments(cfg, out, eval_strategy="no", save_strategy="no", logging_steps=max(1, args.steps // 10),
                                   disable_tqdm=True, warmup_steps=min(500, max(1, args.steps // 10)))
        trainer = make_trainer_class()(model=model, args=targs, data_collator=DataCollatorCTCWithPadding(processor),
                                       train_dataset=dataset, processing_class=processor, callbacks=[Timer()])
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        trainer.train()
        total_s = time.perf_counter() - t0
    warm = min(10, max(0, args.steps - 2))
    steady = sorted(s for s in marks if s > warm)
    if steady and warm in marks:
        steps_per_s = (len(steady)) / (marks[steady[-1]] - marks[warm])
    else:
        steps_per_s = args.steps / total_s
    clips_per_step = batch * grad_acc
    mean_clip = float(np.mean(seconds))
    result = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "precision": {k: v for k, v in {"fp16": targs.fp16, "bf16": targs.bf16}.items() if v} or "fp32",
        "gradient_checkpointing": not args.no_checkpointing, "batch_size": batch, "grad_acc": grad_acc,
        "parameters": params["total"], "trainable": params["trainable"], "steps": args.steps,
        "clips": clips, "mean_clip_s": round(mean_clip, 2), "max_clip_s": round(float(np.max(seconds)), 2),
        "steps_per_s": round(steps_per_s, 4), "clips_per_s": round(steps_per_s * clips_per_step, 2),
        "audio_hours_per_hour": round(steps_per_s * clips_per_step * mean_clip, 1),
        "train_seconds": round(total_s, 1), "dataset_seconds": round(build_s, 1),
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2) if cuda else None,
        "final_loss": next((e["loss"] for e in reversed(trainer.state.log_history) if "loss" in e), None),
    }
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if cuda:
        fits = result["peak_reserved_gib"] < 14.5
        print(f"\nfits a 16 GB card (T4 / V100-16GB, ~15 GiB usable): {'yes' if fits else 'NO'} "
              f"(peak reserved {result['peak_reserved_gib']} GiB)")
        print(f"one Common Voice epoch of 20 h of audio: ~{20 / max(result['audio_hours_per_hour'], 1e-9) * 60:.0f} min")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
