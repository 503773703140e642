"""The ``xlsr`` command: run the curriculum headless, build a synthetic corpus, train from a run folder.

    xlsr demo  [--language tr]                         all six notebooks: synthetic corpus, tiny model
    xlsr run   --language tr --source synthetic --model tiny [--steps 1-3] [--run-dir DIR] [-p NAME=VALUE ...]
    xlsr synth --language tr --size tiny [--seed 0] [--root DIR]
    xlsr train --run-dir DIR [-p NAME=VALUE ...]       step 04 without Jupyter (torchrun / accelerate launch)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .config import parse_assignment


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for flag, name in (("language", "LANGUAGE"), ("source", "DATA_SOURCE"), ("model", "MODEL"),
                       ("run_dir", "RUN_DIR")):
        value = getattr(args, flag, None)
        if value:
            parameters[name] = value
    parameters.update(dict(args.param or []))
    return parameters


def _run(parameters: dict[str, Any], steps: str | None, cell_timeout: int) -> int:
    from .pipeline import StepFailed, run_pipeline

    started = time.perf_counter()
    try:
        result = run_pipeline(parameters, steps=steps, cell_timeout_s=cell_timeout)
    except StepFailed as error:
        print(f"\nxlsr: {error}", file=sys.stderr)
        return 1
    print(f"\nRun folder: {result.run_dir}")
    for step, seconds in result.seconds.items():
        print(f"  {step:<15} {seconds:7.1f} s   executed: {result.executed[step]}")
    metrics = result.run_dir / "05_evaluate" / "metrics.json"
    if metrics.exists():
        values = json.loads(metrics.read_text())
        print(f"Test WER: {100 * values['wer']:.2f}   Test CER: {100 * values['cer']:.2f}   "
              f"({values.get('n', '?')} utterances)")
        if values.get("lm"):
            print(f"with the n-gram LM: Test WER: {100 * values['lm']['wer']:.2f}   "
                  f"Test CER: {100 * values['lm']['cer']:.2f}")
    card = result.run_dir / "06_model_card" / "upload" / "README.md"
    if card.exists():
        print(f"Model card: {card}")
    print(f"Total: {time.perf_counter() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xlsr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def add_run_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--language", help="Common Voice locale code (LANGUAGE)")
        sub.add_argument("--run-dir", help="run folder (RUN_DIR); default runs/<language>")
        sub.add_argument("--steps", help="e.g. 1-3, 4, 05_evaluate, or a comma list (default: all)")
        sub.add_argument("-p", "--param", action="append", type=parse_assignment, metavar="NAME=VALUE",
                         help="any notebook parameter, e.g. -p MAX_SAMPLES_PER_SPLIT=200")
        sub.add_argument("--cell-timeout", type=int, default=3600, help="seconds per notebook cell")

    run = commands.add_parser("run", help="run the notebooks headless with papermill")
    add_run_options(run)
    run.add_argument("--source", help="DATA_SOURCE, e.g. synthetic or common_voice:/data/cv-corpus-17.0/tr")
    run.add_argument("--model", help="MODEL: Hub id, local path or tiny")

    demo = commands.add_parser("demo", help="all six notebooks on the synthetic corpus with the tiny model")
    add_run_options(demo)

    synth = commands.add_parser("synth", help="build a synthetic corpus in Common Voice layout")
    synth.add_argument("--language", default="tr")
    synth.add_argument("--size", default="tiny")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--root", help="where to build it (default: the cache)")

    train = commands.add_parser("train", help="train step 04 from a run folder (torchrun/accelerate)")
    train.add_argument("rest", nargs=argparse.REMAINDER, help="--run-dir DIR [-p NAME=VALUE ...]")

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:  # its options belong to train_main (argparse would claim --run-dir)
        from .train.__main__ import train_main

        return train_main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "synth":
        from .synthetic import make_corpus

        started = time.perf_counter()
        folder = make_corpus(args.language, args.size, seed=args.seed, root=args.root)
        print(f"{folder}  ({time.perf_counter() - started:.1f} s)")
        return 0
    if args.command == "demo":
        from .pipeline import DEMO_PARAMETERS

        parameters = {**DEMO_PARAMETERS, **_parameters(args)}
        return _run(parameters, args.steps, args.cell_timeout)
    return _run(_parameters(args), args.steps, args.cell_timeout)


if __name__ == "__main__":
    sys.exit(main())
