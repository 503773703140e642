"""Benchmark: training throughput of step 04's batching on a base-size model, ours vs the 2021 seed's settings.

    python benchmarks/batching.py [--steps 3] [--clips 2000] [--layers 12] [--threads N]

The same clips (Common Voice-like durations: log-normal around 4.5 s, 1-10 s; noise audio, random labels)
and the same model (wav2vec2-base architecture, random weights, CNN frozen, SpecAugment on, LayerDrop off
so that every step computes the same layers) are trained with three settings:

- **seed**: the 2021 notebook: batches of 16 from transformers' ``LengthGroupedSampler`` (group_by_length,
  mega-batches of 16 x 2 accumulation x 50), gradient checkpointing on;
- **ours**: today's defaults on a CPU: batches of 16 from :class:`LengthBucketSampler`, gradient checkpointing
  "auto" (off where memory is not the limit);
- **ours, duration batches**: :class:`DurationBatchSampler` with a budget of padded audio equal to the mean
  padded audio of the seed's batches (the same audio per update on average), checkpointing "auto".

Batches are drawn at random from one epoch of each setting and timed round-robin (one batch of each setting
in turn, after a warm-up batch each), so that a machine that slows down during the run slows every setting
alike. Throughput counts real audio (padding excluded): audio-seconds trained per second of wall time.
Also printed: each setting's padding share over the whole epoch, and its largest batch against the budget.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.padding import cv_like_lengths  # noqa: E402

SR = 16_000
BATCH = 16
GRAD_ACC = 2
GOAL_SPEEDUP, GOAL_PADDING = 1.5, 0.05
# facebook/wav2vec2-base config.json (architecture fields)
WAV2VEC2_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                     feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False,
                     conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
                     num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, mask_time_prob=0.05,
                     layerdrop=0.0, ctc_loss_reduction="mean", ctc_zero_infinity=True)
VOCAB = 40


def batches_per_setting(lengths: list[int], seed: int):
    """({setting: one epoch of batches}, the duration sampler)."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from xlsr_helpers.train.data import DurationBatchSampler, LengthBucketSampler

    def cut(order):
        return [list(order[i:i + BATCH]) for i in range(0, len(order), BATCH)]

    torch.manual_seed(seed)
    seed_batches = cut(list(LengthGroupedSampler(BATCH * GRAD_ACC, lengths=lengths)))
    ours = LengthBucketSampler(lengths, BATCH, seed=seed)
    budget = int(np.mean([len(b) * max(lengths[i] for i in b) for b in seed_batches]))
    duration = DurationBatchSampler(lengths, max(budget, max(lengths)), seed=seed)
    return {"seed": seed_batches, "ours": cut(list(ours)), "ours, duration batches": list(duration)}, duration


def padding(lengths, batches) -> float:
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths[i] for b in batches for i in b) / padded


def main() -> None:
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed batches per setting")
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=12, help="transformer layers (12: wav2vec2-base)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # on a busy machine, 1 thread is steadier than 2 (fewer stalls)

    lengths = cv_like_lengths(args.clips, seed=args.seed)
    settings, duration_sampler = batches_per_setting(lengths, args.seed)
    checkpointing = {"seed": True, "ours": False, "ours, duration batches": False}  # "auto" on a CPU: off

    torch.manual_seed(args.seed)
    model = Wav2Vec2ForCTC(Wav2Vec2Config(**dict(WAV2VEC2_BASE, num_hidden_layers=args.layers), vocab_size=VOCAB))
    model.freeze_feature_encoder()
    model.train()
    extractor = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    rng = np.random.default_rng(args.seed)

    def run(batch: list[int], setting: str) -> float:
        on, off = ((model.activation_checkpointing_enable, model.activation_checkpointing_disable)
                   if hasattr(model, "activation_checkpointing_enable")  # transformers >= 5.x's name
                   else (model.gradient_checkpointing_enable, model.gradient_checkpointing_disable))
        on() if checkpointing[setting] else off()
        arrays = [rng.standard_normal(lengths[i]).astype(np.float32) * 0.1 for i in batch]
        started = time.perf_counter()
        values = extractor(arrays, sampling_rate=SR, padding=True, return_tensors="pt").input_values
        labels = torch.randint(1, VOCAB, (len(batch), max(4, min(lengths[i] for i in batch) // 8000)))
        model(input_values=values, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    chosen = {name: [batches[k] for k in rng.choice(len(batches), size=args.steps + 1, replace=False)]
              for name, batches in settings.items()}
    seconds = {name: 0.0 for name in settings}
    audio = {name: 0.0 for name in settings}
    print(f"wav2vec2-base ({args.layers} layers, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M "
          f"weights), {args.clips} clips, {args.steps} timed batches per setting (+1 warm-up), "
          f"{torch.get_num_threads()} threads\n", flush=True)
    for k in range(args.steps + 1):
        for name in settings:
            took = run(chosen[name][k], name)
            if k:  # batch 0 of each setting warms up
                seconds[name] += took
                audio[name] += sum(lengths[i] for i in chosen[name][k]) / SR
        print(f"  round {k} done", flush=True)

    budget_s = duration_sampler.max_samples / SR
    print(f"\n{'setting':<24} {'checkpointing':>13} {'clips/batch':>11} {'padding':>8} {'largest batch':>14} "
          f"{'audio s/s':>10} {'vs seed':>8}")
    base = audio["seed"] / seconds["seed"]
    for name, batches in settings.items():
        rate = audio[name] / seconds[name]
        largest = max(len(b) * max(lengths[i] for i in b) for b in batches) / SR
        print(f"{name:<24} {'on' if checkpointing[name] else 'off':>13} {np.mean([len(b) for b in batches]):>11.1f} "
              f"{padding(lengths, batches):>8.1%} {largest:>12.1f} s {rate:>10.2f} {rate / base:>7.2f}x")
    ours = audio["ours"] / seconds["ours"] / base
    over = [b for b in settings["ours, duration batches"] if len(b) * max(lengths[i] for i in b) > duration_sampler.max_samples]
    print(f"\nduration batches: budget {budget_s:.1f} s of padded audio, {len(over)} batch(es) over it; "
          f"padding {padding(lengths, settings['ours, duration batches']):.1%} (goal <= {GOAL_PADDING:.0%})")
    print(f"ours vs seed: {ours:.2f}x (goal >= {GOAL_SPEEDUP}x)")


if __name__ == "__main__":
    main()
