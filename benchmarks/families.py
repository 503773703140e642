"""Benchmark: every model family through step 04 on the CPU, side by side, from the test checkpoints.

    python benchmarks/families.py [--steps 20] [--size tiny] [--batch-size 4]

For each kind of ``tests/checkpoints.py`` (small random-weight checkpoints in the real Hub layouts: hidden
32, 2 layers, the real frame arithmetic) and for ``tiny``, on one synthetic Turkish run (steps 01-02 shared):
step 03 builds the processor around the checkpoint's own feature extractor, step 04 trains ``--steps``
updates with the family's recipe (batch, evaluation and checkpointing made equal for all). Printed per
family: training steps/s and audio seconds/s, as a ratio to ``tiny`` measured in the same run (the
absolute figures depend on the machine), the share of a step spent making the model's input in the
collator (w2v-BERT's filterbank is computed there), and the prepared audio's size per hour of audio.
These checkpoints are tiny, so the figures compare the data path and the per-family set-up, not the real
models' compute.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # checkpoints.py: the test checkpoints in the real Hub layouts


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def collator_seconds(processor, dataset, batch_size: int, batches: int = 10) -> float:
    """Mean seconds to collate one batch (model input made from the prepared samples)."""
    from xlsr_helpers.train.data import DataCollatorCTCWithPadding

    collate = DataCollatorCTCWithPadding(processor)
    rows = [dataset[i % len(dataset)] for i in range(batch_size * batches)]
    started = time.perf_counter()
    for b in range(batches):
        collate(rows[b * batch_size:(b + 1) * batch_size])
    return (time.perf_counter() - started) / batches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="training updates per family")
    parser.add_argument("--size", default="tiny", help="synthetic corpus size (tiny: 40 train clips)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--kinds", default="", help="comma list of checkpoint kinds (default: all)")
    args = parser.parse_args()

    import checkpoints
    from transformers import AutoProcessor

    from xlsr_helpers.config import Config
    from xlsr_helpers.constants import SAMPLING_RATE
    from xlsr_helpers.families import resolve
    from xlsr_helpers.load import run_load
    from xlsr_helpers.normalize import run_normalize
    from xlsr_helpers.train.step import run_train
    from xlsr_helpers.vocab import run_vocab

    kinds = ["tiny"] + (args.kinds.split(",") if args.kinds else list(checkpoints.KINDS))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        cfg = Config(language="tr", run_dir=str(base), data_source="synthetic", synthetic_size=args.size, model="tiny")
        resolve(cfg).save("01_load")
        run_load(resolve(cfg))
        run_normalize(resolve(cfg))
        for kind in kinds:
            model = "tiny" if kind == "tiny" else str(checkpoints.build(kind, tmp / "checkpoints"))
            run = tmp / kind
            run.mkdir()
            for name in ("01_load", "02_normalize", "run.json"):
                (shutil.copytree if (base / name).is_dir() else shutil.copy)(base / name, run / name)
            cfg = Config.load(run).updated(
                run_dir=str(run), model=model, max_steps=args.steps, batch_size=args.batch_size,
                gradient_accumulation_steps=1, eval_steps=10**6, save_steps=10**6, logging_steps=10**6,
                gradient_checkpointing=False, warmup_steps=0)
            run_vocab(resolve(cfg))
            report = run_train(resolve(cfg), log=lambda *a: None)
            prepared = run / "04_train" / "prepared"
            processor = AutoProcessor.from_pretrained(str(run / "03_vocab" / "processor"))
            from datasets import Dataset

            train = Dataset.from_file(str(next(prepared.glob("train*.arrow")))).with_format("numpy")
            steps_per_s = report["global_step"] / report["train_seconds"]
            mean_clip_s = float(sum(train["input_length"])) / len(train) / SAMPLING_RATE
            audio_hours = (sum(train["input_length"]) + 0.0) / SAMPLING_RATE / 3600
            train_bytes = sum(p.stat().st_size for p in prepared.glob("train*.arrow"))
            collate_s = collator_seconds(processor, train, args.batch_size)
            rows.append({
                "family": report["family"], "kind": kind, "class": report["model_class"],
                "input": processor.feature_extractor.model_input_names[0],
                "trained / total": f"{report['parameters']['trainable']:,} / {report['parameters']['total']:,}",
                "steps/s": steps_per_s, "audio s/s": steps_per_s * args.batch_size * mean_clip_s,
                "collator share": collate_s * steps_per_s,
                "prepared MB per audio hour": train_bytes / 1e6 / audio_hours,
            })
            print(f"{kind}: {report['global_step']} steps in {report['train_seconds']} s", flush=True)
    tiny = rows[0]["steps/s"]
    print(f"\n{args.steps} updates of {args.batch_size} clips per family, CPU; ratios to tiny measured in this run\n")
    header = ("kind", "family", "class", "input", "trained / total", "steps/s vs tiny", "audio s/s vs tiny",
              "collator share of a step", "prepared MB/h")
    print(" | ".join(header))
    print("|".join("---" for _ in header))
    for r in rows:
        print(" | ".join([r["kind"], r["family"], r["class"], r["input"], r["trained / total"],
                          f"{r['steps/s'] / tiny:.2f}x", f"{r['audio s/s'] / rows[0]['audio s/s']:.2f}x",
                          f"{r['collator share']:.0%}", f"{r['prepared MB per audio hour']:.0f}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
