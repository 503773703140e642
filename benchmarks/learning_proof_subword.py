"""Benchmark: a model that already writes the language (Omnilingual layout, subword CTC head), zero-shot and
fine-tuned with its own vocabulary (VOCABULARY="model") against a new character vocabulary and head ("train").

    python benchmarks/learning_proof_subword.py [--steps 150] [--eval-steps 50] [--learning-rate 3e-3]
                                                [--seed 42] [--model DIR] [--work DIR]

What runs (tests/pretrained_subword.py and tests/pretrained.py, the same code as
tests/test_learning_proof_subword.py):
1. the model: the committed tests/data/learning_proof_subword/ (an OmniASRForCTC of the tiny model's size, trained
   with CTC on its SentencePiece vocabulary on six synthetic languages, Turkish among them from another corpus), or
   --model; its pre-training curve is printed from pretraining.json;
2. the target: Turkish, the demo corpus (seed 0: other speakers and sentences), steps 01-03 with MODEL=<the model>;
3. zero-shot: the model on the target's eval and test splits, scored as step 05 scores a baseline;
4. two arms, steps 03-04 with VOCABULARY="model" and "train", --steps updates each on one recipe
   (tests/pretrained.CPU_RECIPES["omniasr-ctc"], --learning-rate to vary it), evaluated every --eval-steps.
Prints the held-out CER curves side by side (the zero-shot figure is the kept head's step 0; a new head starts
blank), then the test-split CER of each arm's final model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("TQDM_DISABLE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=0, help="updates per arm (default: the test's)")
    parser.add_argument("--eval-steps", type=int, default=0, help="evaluate every N updates (default: the test's)")
    parser.add_argument("--learning-rate", type=float, default=0.0, help="both arms (default: the CPU recipe's)")
    parser.add_argument("--seed", type=int, default=42, help="SEED of the fine-tuning runs")
    parser.add_argument("--model", default="", help="a model folder (default: the committed one)")
    parser.add_argument("--work", default="", help="working folder (default: a temporary one)")
    args = parser.parse_args()

    import datasets

    import pretrained as P
    import pretrained_subword as S

    datasets.disable_progress_bars()
    steps, eval_steps = args.steps or S.PROOF_STEPS, args.eval_steps or P.PROOF_EVAL_STEPS
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="xlsr-subword-proof-"))
    work.mkdir(parents=True, exist_ok=True)
    model = Path(args.model) if args.model else S.subword_model(work)
    record = json.loads((model / "pretraining.json").read_text())
    curve = ", ".join(f"{e['step']}: {e['cer']:.3f}" for e in record["curve"])
    corpora = "+".join(f"{c['language']}(seed {c['corpus_seed']})" for c in record["corpora"])
    print(f"model {model}\npre-training ({corpora}, {record['updates']} updates, {record['train_rows']} clips, "
          f"{record['vocab_size']} pieces): held-out CER {curve}; {record['wall_seconds']:.0f} s")

    base = work / f"{S.TARGET}-demo"
    if not (base / "03_vocab").exists():
        P.prepare_run(base, S.TARGET, model=str(model), size="demo")
    eval_zero, test_zero = (S.score(model, base, split) for split in ("eval", "test"))
    print(f"zero-shot on {S.TARGET}: eval CER {eval_zero['cer']:.3f} (WER {eval_zero['wer']:.3f}), "
          f"test CER {test_zero['cer']:.3f} (WER {test_zero['wer']:.3f}, 95 % CI {test_zero['ci']['cer']})\n")

    overrides = {"seed": args.seed, **({"learning_rate": args.learning_rate} if args.learning_rate else {})}
    reports = {}
    for vocabulary in S.VOCABULARIES:
        run = work / f"arm-{vocabulary}-{steps}x{eval_steps}-seed{args.seed}"
        shutil.rmtree(run, ignore_errors=True)
        reports[vocabulary] = P.fine_tune(model, base, run, steps, eval_steps, vocabulary=vocabulary, **overrides)
    print(f"held-out CER ({S.TARGET}, eval split), {steps} updates of {reports['model'].get('batch_size')} clips, "
          f"lr {reports['model'].get('learning_rate')}; zero-shot (step 0 of 'model') {eval_zero['cer']:.3f}:\n")
    print(P.curves_table(reports))
    for vocabulary, report in reports.items():
        tested = S.score(report["model_dir"], base, "test")
        print(f"{vocabulary:<6} test CER {tested['cer']:.3f} WER {tested['wer']:.3f} (zero-shot {test_zero['cer']:.3f})")


if __name__ == "__main__":
    main()
