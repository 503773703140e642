"""The ``xlsr`` command: run the curriculum headless, build a synthetic corpus, train from a run folder,
rank the results of model cards.

    xlsr demo  [--language tr]                         all six notebooks: synthetic corpus, tiny model
    xlsr run   --language tr --source synthetic --model tiny [--steps 1-3] [--run-dir DIR] [-p NAME=VALUE ...]
    xlsr run   --language tr,de,fr ...                 one run folder per language (DIR/<language>), one table
    xlsr evaluate --run-dir DIR [--compare MODEL ...]  step 05 again; other models scored on the same clips
    xlsr synth --language tr --size tiny [--seed 0] [--root DIR]
    xlsr train --run-dir DIR [-p NAME=VALUE ...]       step 04 without Jupyter (torchrun / accelerate launch)
    xlsr leaderboard PATH... [--out DIR | --markdown FILE --csv FILE]   model cards ranked per language
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .config import parse_assignment

CELL_TIMEOUT_HELP = "seconds a notebook cell may run (default: no limit; step 04 trains in one cell, for hours)"


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for flag, name in (("language", "LANGUAGE"), ("source", "DATA_SOURCE"), ("model", "MODEL"),
                       ("run_dir", "RUN_DIR")):
        value = getattr(args, flag, None)
        if value:
            parameters[name] = value
    parameters.update(dict(args.param or []))
    return parameters


def _run(parameters: dict[str, Any], steps: str | None, cell_timeout: int | None) -> int:
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


def _sweep(parameters: dict[str, Any], steps: str | None, cell_timeout: int | None) -> int:
    from .sweep import languages_of, run_sweep, sweep_markdown, sweep_root, write_sweep

    root = sweep_root(parameters.pop("RUN_DIR", ""))
    outcomes = run_sweep(languages_of(parameters.pop("LANGUAGE")), parameters, steps=steps, root=root,
                         cell_timeout_s=cell_timeout)
    print("\n" + sweep_markdown(outcomes))
    print("Written: " + ", ".join(str(p) for p in write_sweep(outcomes, root)))
    return 0 if all(o.status == "ok" for o in outcomes) else 1


def _evaluate(parameters: dict[str, Any], compare: list[str], cell_timeout: int | None) -> int:
    from .config import Config, resolve_run_dir
    from .evaluate import COMPARISON_FILE

    run_dir = resolve_run_dir(parameters["RUN_DIR"], "")
    if not (run_dir / "run.json").exists():
        print(f"xlsr evaluate: {run_dir} is not a run folder (no run.json)", file=sys.stderr)
        return 2
    parameters.setdefault("LANGUAGE", Config.load(run_dir).language)  # the notebook's default would be "tr"
    if compare:
        parameters["COMPARE_WITH"] = ",".join(compare)
    code = _run(parameters, "05_evaluate", cell_timeout)
    comparison = run_dir / "05_evaluate" / COMPARISON_FILE
    if code == 0 and comparison.exists():
        data = json.loads(comparison.read_text())
        key = data["metric"]
        print(f"\nOn the same {data['n']} test clips ({key.upper()}, %):")
        for m in sorted(data["models"], key=lambda m: m[key]):
            print(f"  {100 * m[key]:6.2f}  {m['label']}  ({m['model']})")
        for p in data["pairs"]:
            d = p[key]
            print(f"  {p['a']} - {p['b']}: {100 * d['difference']:+.2f} points "
                  f"({100 * d['low']:+.2f} to {100 * d['high']:+.2f}): {d['verdict']}")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xlsr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def add_run_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--language", help="Common Voice locale code (LANGUAGE); several, comma-separated: "
                                            "one run folder each (RUN_DIR/<language>) and one table")
        sub.add_argument("--run-dir", help="run folder (RUN_DIR); default runs/<language>")
        sub.add_argument("--steps", help="e.g. 1-3, 4, 05_evaluate, or a comma list (default: all)")
        sub.add_argument("-p", "--param", action="append", type=parse_assignment, metavar="NAME=VALUE",
                         help="any notebook parameter, e.g. -p MAX_SAMPLES_PER_SPLIT=200")
        sub.add_argument("--cell-timeout", type=int, default=None, metavar="SECONDS", help=CELL_TIMEOUT_HELP)

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

    evaluate = commands.add_parser("evaluate", help="step 05 of a run again, optionally next to other models")
    evaluate.add_argument("--run-dir", required=True, help="the run folder (RUN_DIR)")
    evaluate.add_argument("-p", "--param", action="append", type=parse_assignment, metavar="NAME=VALUE",
                          help="a parameter of notebook 05, e.g. -p EVAL_BATCH_SIZE=16")
    evaluate.add_argument("--cell-timeout", type=int, default=None, metavar="SECONDS", help=CELL_TIMEOUT_HELP)
    evaluate.add_argument("--compare", action="append", default=[], metavar="MODEL",
                          help="another model scored on the same test clips: run folder, model folder or Hub id "
                               "(repeat the option for more)")

    train = commands.add_parser("train", help="train step 04 from a run folder (torchrun/accelerate)")
    train.add_argument("rest", nargs=argparse.REMAINDER, help="--run-dir DIR [-p NAME=VALUE ...]")

    leaderboard = commands.add_parser("leaderboard", help="rank the results of model cards per language")
    leaderboard.add_argument("paths", nargs="+", metavar="PATH",
                             help="a model card, a run folder, an upload folder, or a folder of them")
    leaderboard.add_argument("--out", help="folder for leaderboard.md and leaderboard.csv")
    leaderboard.add_argument("--markdown", help="write the Markdown here")
    leaderboard.add_argument("--csv", help="write the CSV here")

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
    if args.command == "leaderboard":
        from .leaderboard import build_leaderboard, write_outputs

        board = build_leaderboard(args.paths)
        text, written = write_outputs(board, out=args.out, markdown=args.markdown, csv_file=args.csv)
        print(text)
        for path in written:
            print(f"Written: {path}", file=sys.stderr)
        if not board.ranked:
            print("xlsr: no result could be ranked (see 'Skipped cards and problems')", file=sys.stderr)
        return 0 if board.ranked else 1
    parameters = _parameters(args)
    if args.command == "evaluate":
        return _evaluate(parameters, args.compare, args.cell_timeout)
    if args.command == "demo":
        from .pipeline import DEMO_PARAMETERS

        parameters = {**DEMO_PARAMETERS, **parameters}
    if "," in str(parameters.get("LANGUAGE", "")):
        return _sweep(parameters, args.steps, args.cell_timeout)
    return _run(parameters, args.steps, args.cell_timeout)


if __name__ == "__main__":
    sys.exit(main())
