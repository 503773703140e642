"""Benchmark: speed perturbation on the fly or as prepared copies? Its cost per clip against a training step's,
and the disk that copies would take.

    OMP_NUM_THREADS=1 python benchmarks/speed_perturbation.py [--clips 200] [--steps 20] [--run-dir /tmp/xlsr-demo-bench]

On the demo corpus's prepared training clips (the run folder of benchmarks/demo_steps.py, built when missing):

1. the CPU time of ``augment.change_speed`` per clip at each factor (torchaudio's resampler), per second of audio;
2. the demo's training step (pipeline.DEMO_PARAMETERS' batches of the tiny model, timed part by part as in
   demo_steps.py): the collate time and the whole step, without and with the perturbation in the collator;
3. the prepared training audio's size on disk, and what copies at the other factors would add.

On a GPU the step itself is on the accelerator and data-loader workers (DATALOADER_WORKERS) collate the next
batches meanwhile, so what matters there is the perturbation's CPU time per batch against the GPU's step time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def main() -> None:
    import numpy as np
    import torch

    from demo_steps import PARTS, TimedSteps, ensure_run, prepared_training
    from xlsr_helpers.audio import SAMPLES_COLUMN, from_int16
    from xlsr_helpers.constants import SAMPLING_RATE
    from xlsr_helpers.pipeline import DEMO_PARAMETERS
    from xlsr_helpers.train.augment import STANDARD_SPEED_FACTORS, SpeedPerturbation, change_speed
    from xlsr_helpers.train.data import DataCollatorCTCWithPadding

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=200, help="clips timed per factor")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per setting (after 3 warm-up)")
    parser.add_argument("--run-dir", default="/tmp/xlsr-demo-bench")
    args = parser.parse_args()

    cfg = ensure_run(Path(args.run_dir).resolve())
    demo = {k.lower(): v for k, v in DEMO_PARAMETERS.items() if k in ("BATCH_SIZE", "ATTENTION_DROPOUT")}
    training = prepared_training(cfg, **demo)
    train = training.prepared["train"]
    arrays = [from_int16(train[i][SAMPLES_COLUMN]) for i in range(min(args.clips, len(train)))]
    seconds = sum(len(a) for a in arrays) / SAMPLING_RATE
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {len(arrays)} clips, "
          f"{seconds / len(arrays):.2f} s each on average\n")
    change_speed(arrays[0], 1.1)  # imports and the first kernel set-up out of the timing
    print(f"{'factor':>6} {'ms per clip':>12} {'ms per s of audio':>18} {'length ratio':>13}")
    per_clip = {}
    for factor in STANDARD_SPEED_FACTORS:
        cpu = time.process_time()
        out = [change_speed(a, factor) for a in arrays]
        spent = time.process_time() - cpu
        per_clip[factor] = spent / len(arrays)
        ratio = sum(len(o) for o in out) / sum(len(a) for a in arrays)
        print(f"{factor:>6} {spent / len(arrays) * 1000:>12.2f} {spent / seconds * 1000:>18.2f} {ratio:>13.4f}")
    mean_clip = float(np.mean(list(per_clip.values())))

    timed = {"without": TimedSteps(training)}
    with_speed = TimedSteps(prepared_training(cfg, **demo))
    with_speed.collate = DataCollatorCTCWithPadding(training.processor, augment=SpeedPerturbation())
    timed["with speed perturbation"] = with_speed
    for i in range(3 + args.steps):
        for steps in timed.values():
            steps.step(i, record=i >= 3)
    batch = demo["batch_size"]
    print(f"\ntraining step of the tiny model, batches of {batch} (mean of {args.steps} steps):")
    step_ms = {}
    for name, steps in timed.items():
        n = steps.steps
        step_ms[name] = sum(steps.totals.values()) / n * 1000
        print(f"  {name:<26} collate {steps.totals[PARTS[0]] / n * 1000:7.1f} ms   step {step_ms[name]:7.1f} ms")
    print(f"  the perturbation: {mean_clip * batch * 1000:.1f} ms of CPU per batch of {batch} (mean over the "
          f"factors) = {mean_clip * batch * 1000 / step_ms['without']:.1%} of a step")

    prepared = Path(training.prepared_dir)
    train_bytes = folder_bytes(prepared / "train") if (prepared / "train").exists() else folder_bytes(prepared)
    extra = sum(1 / f for f in STANDARD_SPEED_FACTORS if f != 1.0)
    print(f"\nprepared audio on disk: {train_bytes / 1e6:.1f} MB for {seconds / len(arrays) * len(train) / 3600:.2f} h "
          f"of training audio; copies at {[f for f in STANDARD_SPEED_FACTORS if f != 1.0]} would add "
          f"{extra:.2f}x that ({train_bytes * extra / 1e6:.1f} MB), and fix one draw per copy")


if __name__ == "__main__":
    main()
