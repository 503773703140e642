"""Benchmark: does speed perturbation (SPEED_PERTURBATION) or SpecAugment's frequency mask (MASK_FEATURE_PROB)
help? Held-out CER/WER on *unseen speakers*, with and without, at an equal number of updates.

    OMP_NUM_THREADS=1 python benchmarks/augmentation.py [--seeds 42,1,2] [--configs baseline,speed]
        [--tiny-steps 1000] [--pretrained-steps 300] [--pretrained-seeds 42] [--parts tiny,pretrained]
        [--language tr] [--work DIR] [--encoders DIR]

Two models, each trained through the product's own step 04 (``train.step.run_train``) on the synthetic corpus of
--language (demo size: 600 train clips by 8 speakers) and scored by step 05 (``evaluate.run_evaluation``) on its
*test* split: 100 clips by 2 speakers who are in no other split, reading sentences that are in no other split.

- ``tiny`` from scratch, with the demo's settings (pipeline.DEMO_PARAMETERS: batches of 4, no attention dropout)
  for --tiny-steps updates (the demo's 1,000), one run per seed in --seeds;
- ``pretrained``: the learning proof's small pretrained encoder (tests/pretrained.py: the tiny architecture
  pre-trained with CTC on five other languages, saved in XLSR-53's layout), fine-tuned with the wav2vec2 family's
  recipe scaled for CPU (tests/pretrained.CPU_RECIPES) for --pretrained-steps updates (the proof's 300), one run
  per seed in --pretrained-seeds. The encoder is reused from --encoders when built there (else built: ~10 min).

Each configuration of --configs is the run's recipe plus the parameters of CONFIGS below; every other value is the
same. One evaluation at the end (EVAL_STEPS = SAVE_STEPS = the number of updates), so the model scored is the
last one. Rows are appended to <work>/results.jsonl as they finish; a second call with the same --work skips
the rows it already has (delete the file to measure again) and prints the whole table.

Seeds change the CTC head's (or tiny's) initial weights, the order of batches, dropout and masking and the speed
draws: the spread over seeds is the yardstick a difference must beat.

Measured (the default call, then ``--configs baseline,freq-mask --seeds 42 --pretrained-seeds 42``; torch 2.14,
one thread, a shared 2-core VM; test CER / WER):

    model       config      seed  steps  test CER  test WER        model       config   runs  mean CER  min-max
    tiny        baseline      42   1000    0.1807    0.6578        tiny        baseline    3    0.2047  0.181-0.229
    tiny        speed         42   1000    0.2303    0.7586        tiny        speed       3    0.2810  0.230-0.346
    tiny        baseline       1   1000    0.2293    0.7666        pretrained  baseline    3    0.4420  0.391-0.490
    tiny        speed          1   1000    0.3460    0.8939        pretrained  speed       3    0.5230  0.488-0.579
    tiny        baseline       2   1000    0.2042    0.7294
    tiny        speed          2   1000    0.2666    0.7905
    pretrained  baseline      42    300    0.3905    0.9576
    pretrained  speed         42    300    0.4877    0.9920
    pretrained  baseline       1    300    0.4452    0.9602
    pretrained  speed          1    300    0.5020    0.9814
    pretrained  baseline       2    300    0.4903    0.9814
    pretrained  speed          2    300    0.5793    1.0000
    tiny        freq-mask     42   1000    0.5005    0.9761
    pretrained  freq-mask     42    300    0.4990    0.9761

Speed perturbation was worse than none for every seed of both models (paired by seed, CER +0.050, +0.117, +0.062
for tiny; +0.097, +0.057, +0.089 pretrained); the frequency mask at Hugging Face's XLS-R strength much worse.
With three times the budget (``--parts pretrained --pretrained-steps 900 --pretrained-seeds 42``) the gap narrowed:
pretrained baseline 0.1157 (WER 0.5438), speed 0.1407 (WER 0.6048), +0.025 instead of +0.097 at 300 updates.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("TQDM_DISABLE", "1")

from xlsr_helpers.train.augment import STANDARD_SPEED_FACTORS  # noqa: E402

SPEEDS = ",".join(str(f) for f in STANDARD_SPEED_FACTORS)
# SpecAugment's frequency mask as Hugging Face's XLS-R fine-tuning examples set it (run_speech_recognition_ctc:
# MASK_FEATURE_PROB 0.25, MASK_FEATURE_LENGTH 64 of 1,024 hidden channels), the span scaled to the 128 channels
# of the tiny architecture (8): about a quarter of the channels masked in a batch either way.
FREQ_MASK = dict(mask_feature_prob=0.25, mask_feature_length=8)
CONFIGS = {
    "baseline": dict(speed_perturbation="", mask_feature_prob=0.0),
    "speed": dict(speed_perturbation=SPEEDS, mask_feature_prob=0.0),
    "freq-mask": dict(speed_perturbation="", **FREQ_MASK),
    "speed+freq-mask": dict(speed_perturbation=SPEEDS, **FREQ_MASK),
}
DEMO_TRAINING = ("BATCH_SIZE", "ATTENTION_DROPOUT")  # pipeline.DEMO_PARAMETERS' training values that tiny runs use


def train_and_test(model: str, base_run: Path, run_dir: Path, steps: int, **params) -> dict:
    """Steps 03-04 on a copy of ``base_run`` with MODEL=``model``, then step 05 on the test split."""
    import pretrained as P

    from xlsr_helpers.evaluate import run_evaluation
    from xlsr_helpers.train.step import run_train

    if run_dir.exists():
        shutil.rmtree(run_dir)
    started = time.perf_counter()
    P.copy_run_for(base_run, run_dir, model)
    cfg = P.notebook_config(run_dir, "04_train", max_steps=steps, eval_steps=steps, save_steps=steps,
                            logging_steps=max(1, steps // 10), num_proc=1, max_train_minutes=0.0, **params)
    report = run_train(cfg)
    prepared, shared = run_dir / "04_train" / "prepared", base_run / "04_train" / "prepared"
    if prepared.exists() and not shared.exists():  # the next run reuses the prepared audio
        shutil.copytree(prepared, shared)
    test = run_evaluation(cfg, progress=False).metrics
    shutil.rmtree(run_dir / "04_train", ignore_errors=True)  # checkpoints and model: only the figures are kept
    return {"steps": report["global_step"], "test_cer": test["cer"], "test_wer": test["wer"],
            "test_clips": test["n"], "dev_cer": report["eval"]["cer"], "train_seconds": report["train_seconds"],
            "wall_seconds": round(time.perf_counter() - started, 1), "empty": test["empty_predictions"],
            "speed_perturbation": cfg.speed_perturbation, "mask_feature_prob": cfg.mask_feature_prob,
            "mask_feature_length": cfg.mask_feature_length, "learning_rate": cfg.learning_rate,
            "batch_size": cfg.batch_size}


def table(rows: list[dict]) -> str:
    lines = [f"{'model':<11} {'config':<16} {'seed':>5} {'steps':>6} {'test CER':>9} {'test WER':>9} {'dev CER':>8} "
             f"{'train s':>8}"]
    for r in rows:
        lines.append(f"{r['part']:<11} {r['config']:<16} {r['seed']:>5} {r['steps']:>6} {r['test_cer']:>9.4f} "
                     f"{r['test_wer']:>9.4f} {r['dev_cer']:>8.4f} {r['train_seconds']:>8.0f}")
    lines.append("")
    lines.append(f"{'model':<11} {'config':<16} {'runs':>5} {'mean test CER':>14} {'min':>7} {'max':>7} "
                 f"{'mean test WER':>14}")
    for part in dict.fromkeys(r["part"] for r in rows):
        for config in dict.fromkeys(r["config"] for r in rows if r["part"] == part):
            group = [r for r in rows if r["part"] == part and r["config"] == config]
            cers = [r["test_cer"] for r in group]
            lines.append(f"{part:<11} {config:<16} {len(group):>5} {statistics.mean(cers):>14.4f} {min(cers):>7.4f} "
                         f"{max(cers):>7.4f} {statistics.mean(r['test_wer'] for r in group):>14.4f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="baseline,speed", help=f"comma list of {', '.join(CONFIGS)}")
    parser.add_argument("--parts", default="tiny,pretrained", help="tiny (from scratch), pretrained, or both")
    parser.add_argument("--seeds", default="42,1,2", help="SEEDs of the tiny runs")
    parser.add_argument("--pretrained-seeds", default="42", help="SEEDs of the pretrained runs")
    parser.add_argument("--tiny-steps", type=int, default=0, help="updates per tiny run (default: the demo's)")
    parser.add_argument("--pretrained-steps", type=int, default=0, help="updates per run (default: the proof's)")
    parser.add_argument("--language", default="tr")
    parser.add_argument("--work", default="", help="working folder (default: a temporary one); results.jsonl there")
    parser.add_argument("--encoders", default="", help="folder of built encoders (default: <work>/encoders)")
    args = parser.parse_args()

    import datasets
    import torch

    import pretrained as P

    from xlsr_helpers.pipeline import DEMO_PARAMETERS

    datasets.disable_progress_bars()
    configs = [c for c in args.configs.split(",") if c]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown config(s) {sorted(unknown)}; known: {list(CONFIGS)}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="xlsr-augment-"))
    work.mkdir(parents=True, exist_ok=True)
    results = work / "results.jsonl"
    done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    print(f"work folder {work}; torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)

    base = work / f"{args.language}-demo"
    if not (base / "03_vocab").exists():
        P.prepare_run(base, args.language, model="tiny", size="demo")
    tiny = {name.lower(): DEMO_PARAMETERS[name] for name in DEMO_TRAINING}
    parts = [p for p in args.parts.split(",") if p]
    runs = {}
    if "tiny" in parts:
        steps = args.tiny_steps or DEMO_PARAMETERS["MAX_STEPS"]
        runs["tiny"] = [("tiny", "tiny", int(seed), steps, tiny) for seed in args.seeds.split(",") if seed]
    if "pretrained" in parts:
        encoder = P.build_pretrained_encoder(Path(args.encoders) if args.encoders else work / "encoders")
        steps = args.pretrained_steps or P.PROOF_STEPS
        runs["pretrained"] = [("pretrained", str(encoder / "pretrained"), int(seed), steps, P.CPU_RECIPES["wav2vec2"])
                              for seed in args.pretrained_seeds.split(",") if seed]
    # first seed of each model, then the second ...: a run cut short still has both models' first comparison
    plan = [run for rank in range(max(map(len, runs.values()), default=0)) for group in runs.values()
            for run in group[rank:rank + 1]]

    rows = []
    for part, model, seed, steps, recipe in plan:
        for config in configs:  # the configurations of one seed one after the other: a changing load hits them alike
            key = {"part": part, "config": config, "seed": seed, "steps": steps}
            old = next((r for r in done if all(r.get(k) == v for k, v in key.items())), None)
            if old is None:
                figures = train_and_test(model, base, work / f"{part}-{config}-seed{seed}", steps,
                                         **recipe, **CONFIGS[config], seed=seed)
                old = {**key, **figures}
                with results.open("a") as f:
                    f.write(json.dumps(old) + "\n")
                print(f"{part} {config} seed {seed}: test CER {old['test_cer']:.4f} WER {old['test_wer']:.4f} "
                      f"(dev CER {old['dev_cer']:.4f}) after {old['steps']} updates, {old['train_seconds']:.0f} s",
                      flush=True)
            rows.append(old)

    print(f"\nheld-out test split of the synthetic {args.language} demo corpus (speakers and sentences in no other "
          f"split), greedy decoding; equal updates per model:\n")
    print(table(rows))


if __name__ == "__main__":
    main()
