"""``xlsr train`` / ``torchrun -m xlsr_helpers.train`` / ``accelerate launch -m xlsr_helpers.train``:
step 04 of an existing run folder, without Jupyter."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import Config, parse_assignment
from ..precision import PrecisionError
from ..run_config import from_params
from .callbacks import NonFiniteLossError
from .checkpoints import ModelExistsError
from .data import UndecodableBatchError
from .distributed import rank
from .guards import GuardError
from .step import STEP, run_train


def train_main(argv: list[str] | None = None) -> int:
    """``--run-dir DIR [-p NAME=VALUE ...]``: train step 04 of an existing run folder.

    Parameters not given come from the run folder's run.json (what 01-03 used). Runs unchanged under
    ``torchrun --nproc_per_node N -m xlsr_helpers.train ...`` and
    ``accelerate launch --multi_gpu --num_processes N -m xlsr_helpers.train ...`` (on CPUs use torchrun:
    ``accelerate launch --cpu`` starts a single process).
    """
    parser = argparse.ArgumentParser(prog="xlsr train", description=train_main.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="the run folder (RUN_DIR) that steps 01-03 filled")
    parser.add_argument("-p", "--param", action="append", type=parse_assignment, default=[], metavar="NAME=VALUE",
                        help="any parameter, e.g. -p MAX_STEPS=200 -p BATCH_SIZE=8")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir).expanduser().resolve()
    params = {"RUN_DIR": str(run_dir), **dict(args.param)}
    if not (run_dir / "run.json").exists():
        print(f"xlsr train: {run_dir} has no run.json; run steps 01-03 first (xlsr run --steps 1-3).",
              file=sys.stderr)
        return 2
    if "LANGUAGE" not in params:
        params["LANGUAGE"] = Config.load(run_dir).language
    cfg = from_params(params, step=STEP, save=rank() == 0)
    try:
        report = run_train(cfg)
    except (GuardError, PrecisionError, ModelExistsError, NonFiniteLossError, UndecodableBatchError,
            FileNotFoundError) as error:
        print(f"xlsr train: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if rank() == 0:
        ev = report.get("eval", {})
        print(f"Done: step {report.get('global_step')}, eval WER {ev.get('wer', float('nan')):.3f}, "
              f"CER {ev.get('cer', float('nan')):.3f}; model in {report.get('model_dir')}")
    return 0


if __name__ == "__main__":
    sys.exit(train_main(sys.argv[1:]))
