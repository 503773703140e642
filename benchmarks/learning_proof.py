"""Benchmark: a locally pretrained encoder fine-tuned through MODEL=<folder>, against the same architecture from
random weights, and against adapters on the frozen pretrained encoder: held-out CER curves side by side.

    python benchmarks/learning_proof.py [--steps 300] [--eval-steps 50] [--pretrain-updates 2000]
                                        [--pretrain-languages de,es,fr,it,ru] [--language tr] [--size demo] [--work DIR]

What runs (tests/pretrained.py, the same code as tests/test_learning_proof.py):
1. pre-training: the ``tiny`` architecture trained with CTC through steps 01-04 (MODEL=tiny, its CPU recipe) on
   the synthetic speech of --pretrain-languages (not the target), for --pretrain-updates updates; its encoder saved
   as pretrained/ (the layout of facebook/wav2vec2-large-xlsr-53: Wav2Vec2ForPreTraining, no CTC head),
   scratch/ (same layout and fixed filterbank, random transformer) and mms_like/ (the layout of
   facebook/mms-1b-all, with attention adapters). Reused from --work when already built.
2. three arms on --language, steps 03-04 with MODEL=<folder>, each at --steps updates, evaluated every
   --eval-steps on the eval split (other speakers, other sentences): pretrained and scratch with the wav2vec2
   family's recipe, adapters with the mms-adapter recipe, both scaled for CPU (tests/pretrained.CPU_RECIPES).
Prints the CER table (step | pretrained | scratch | adapters) and each arm's trainable parameters and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("TQDM_DISABLE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=0, help="updates per arm (default: the test's)")
    parser.add_argument("--eval-steps", type=int, default=0, help="evaluate every N updates (default: the test's)")
    parser.add_argument("--pretrain-updates", type=int, default=0, help="pre-training updates (default: the test's)")
    parser.add_argument("--pretrain-languages", default="", help="comma-separated, e.g. de,es (default: the test's)")
    parser.add_argument("--language", default="tr", help="the target language (not one of the pre-training ones)")
    parser.add_argument("--size", default="demo", help="synthetic corpus size of the target: tiny | demo | small")
    parser.add_argument("--arms", default="pretrained,scratch,adapters", help="which arms to run")
    parser.add_argument("--seed", type=int, default=42, help="SEED of the fine-tuning runs")
    parser.add_argument("--work", default="", help="working folder (default: a temporary one); the encoder is "
                                                   "reused from it when already built")
    args = parser.parse_args()

    import datasets

    import pretrained as P

    datasets.disable_progress_bars()
    steps = args.steps or P.PROOF_STEPS
    eval_steps = args.eval_steps or P.PROOF_EVAL_STEPS
    updates = args.pretrain_updates or P.PRETRAIN_STEPS
    languages = tuple(x for x in args.pretrain_languages.split(",") if x) or P.PRETRAIN_LANGUAGES
    if args.language in languages:
        parser.error(f"--language {args.language} is one of the pre-training languages {languages}")
    arms = [a for a in args.arms.split(",") if a]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="xlsr-proof-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder {work}; host has {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"torch threads {__import__('torch').get_num_threads()}")

    started = time.perf_counter()
    encoder = P.build_pretrained_encoder(work / "encoders", languages=languages, steps=updates)
    record = json.loads((encoder / "pretraining.json").read_text())
    built = time.perf_counter() - started
    curve = ", ".join(f"{e['step']}: {e['cer']:.3f}" for e in record["curve"])
    print(f"\npre-training ({'+'.join(record['languages'])}, {record['updates']} updates, {record['train_rows']} "
          f"clips): held-out CER {curve}; built in {record['wall_seconds']:.0f} s "
          f"(this call {built:.0f} s: {'reused' if built < 0.5 * record['wall_seconds'] else 'built'})")

    started = time.perf_counter()
    base = work / f"{args.language}-{args.size}"
    if not (base / "03_vocab").exists():
        P.prepare_run(base, args.language, model="tiny", size=args.size)
    print(f"{args.language} {args.size} run folder (steps 01-03): {time.perf_counter() - started:.0f} s\n")

    reports = {}
    for arm in arms:
        run = work / f"arm-{arm}-{steps}x{eval_steps}-seed{args.seed}"
        if run.exists():
            import shutil

            shutil.rmtree(run)
        reports[arm] = P.fine_tune(encoder / P.ARM_FOLDERS[arm], base, run, steps, eval_steps, seed=args.seed)
        r = reports[arm]
        print(f"{arm}: CER {r['eval']['cer']:.3f} after {r['global_step']} updates, {r['wall_seconds']:.0f} s\n")

    print(f"\nheld-out CER ({args.language}, eval split: other speakers and sentences), equal budget of {steps} "
          f"updates of {reports[arms[0]].get('batch_size')} clips:\n")
    print(P.curves_table(reports))


if __name__ == "__main__":
    main()
