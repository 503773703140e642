"""Benchmark: share of padded audio in training batches of 16, length-grouped vs random order.

    python benchmarks/padding.py [--batch-size 16] [--grad-acc 2] [--run-dir runs/tr]

Padding share of a batch = (batch size x longest clip - sum of clip lengths) / (batch size x longest clip):
the part of the compute spent on zeros. The samplers are the ones training uses: transformers'
``LengthGroupedSampler`` over the ``input_length`` column (mega-batches of batch x accumulation x 50 clips,
sorted by length inside) as ``CTCTrainer`` builds it, and a ``RandomSampler`` (what the Trainer does
without GROUP_BY_LENGTH). Clip lengths: Common Voice-like durations (log-normal around 4.5 s, cut to
1-10 s, the Common Voice recording limit) for several corpus sizes, plus the real lengths of a run folder's
training split when ``--run-dir`` is given (or the synthetic demo corpus when it is in the cache).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL = 0.05


def cv_like_lengths(n: int, seed: int = 0, sampling_rate: int = 16000) -> list[int]:
    rng = np.random.default_rng(seed)
    seconds = np.clip(rng.lognormal(mean=np.log(4.5), sigma=0.35, size=n), 1.0, 10.0)
    return [int(s * sampling_rate) for s in seconds]


def padding_share(lengths: list[int], order: list[int], batch_size: int) -> float:
    padded = real = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start:start + batch_size]]
        padded += max(batch) * len(batch)
        real += sum(batch)
    return 1 - real / padded


def orders(lengths: list[int], batch_size: int, grad_acc: int, seed: int) -> dict[str, list[int]]:
    import torch
    from torch.utils.data import RandomSampler
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from xlsr_helpers.train.data import LengthBucketSampler

    torch.manual_seed(seed)
    ours = LengthBucketSampler(lengths, batch_size, seed=0)
    ours.set_epoch(seed)
    stock = list(LengthGroupedSampler(batch_size * grad_acc, lengths=lengths))
    random = list(RandomSampler(range(len(lengths)), generator=torch.Generator().manual_seed(seed)))
    return {"ours": list(ours), "transformers": stock, "random": random}


def run_lengths(run_dir: Path) -> list[int] | None:
    """input_length of a run folder's prepared train split, else durations of its 02_normalize train split."""
    prepared = run_dir / "04_train" / "prepared"
    if (prepared / "manifest.json").exists():
        import json

        from xlsr_helpers.audio import _open

        entry = json.loads((prepared / "manifest.json").read_text()).get("train")
        if entry:
            ds = _open(prepared, entry["files"])
            return ds.select_columns(["input_length"]).with_format(None)[:]["input_length"]
    dataset = run_dir / "02_normalize" / "dataset"
    if dataset.exists():
        from datasets import load_from_disk

        return [int(d * 16000) for d in load_from_disk(str(dataset))["train"]["duration"]]
    return None


def demo_corpus_lengths() -> list[int] | None:
    """Clip durations of the cached synthetic demo corpus (train.tsv rows), if it was built."""
    try:
        from xlsr_helpers.synthetic import corpus_dir

        folder = corpus_dir("tr", "demo")
    except Exception:  # noqa: BLE001
        return None
    durations, train = folder / "clip_durations.tsv", folder / "train.tsv"
    if not durations.exists() or not train.exists():
        return None
    ms = dict(line.split("\t")[:2] for line in durations.read_text().splitlines()[1:] if "\t" in line)
    header = train.read_text().splitlines()[0].split("\t")
    col = header.index("path")
    clips = [line.split("\t")[col] for line in train.read_text().splitlines()[1:] if line]
    return [int(float(ms[c]) * 16) for c in clips if c in ms]  # ms -> samples at 16 kHz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--grad-acc", type=int, default=2)
    parser.add_argument("--run-dir", default="", help="also measure this run folder's training clips")
    parser.add_argument("--seeds", type=int, default=3, help="epochs (sampler seeds) averaged per row")
    args = parser.parse_args()

    corpora: list[tuple[str, list[int]]] = []
    if args.run_dir:
        lengths = run_lengths(Path(args.run_dir))
        if lengths:
            corpora.append((f"run folder {args.run_dir}", lengths))
    demo = demo_corpus_lengths()
    if demo:
        corpora.append(("synthetic demo corpus (train)", demo))
    for n in (600, 5_000, 50_000):
        corpora.append((f"Common Voice-like, {n:,} clips", cv_like_lengths(n)))

    print(f"padding share in batches of {args.batch_size} (sampler groups {args.batch_size} x "
          f"{args.grad_acc} accumulation), mean over {args.seeds} epochs\n")
    print(f"{'clips':<36} {'n':>7} {'mean s':>7} {'ours':>7} {'transformers':>13} {'random':>7} {'ours <= 5 %':>12}")
    worst = 0.0
    for name, lengths in corpora:
        shares = {"ours": [], "transformers": [], "random": []}
        for seed in range(args.seeds):
            for kind, order in orders(lengths, args.batch_size, args.grad_acc, seed).items():
                shares[kind].append(padding_share(lengths, order, args.batch_size))
        mean = {k: float(np.mean(v)) for k, v in shares.items()}
        worst = max(worst, mean["ours"])
        print(f"{name:<36} {len(lengths):>7,} {np.mean(lengths) / 16000:>7.2f} {mean['ours']:>7.1%} "
              f"{mean['transformers']:>13.1%} {mean['random']:>7.1%} {'OK' if mean['ours'] <= GOAL else 'MISSED':>12}")
    print(f"\nworst share with our length-grouped batches: {worst:.1%} (goal <= {GOAL:.0%})")


if __name__ == "__main__":
    main()
