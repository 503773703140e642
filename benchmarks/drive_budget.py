"""Benchmark (arithmetic, no GPU): what a whole run writes to Google Drive, before and after the Drive design.

    python benchmarks/drive_budget.py                     # the two runs of issue 23, a free Drive
    python benchmarks/drive_budget.py --free-gb 10 --hours 100

Drive keeps what is deleted or replaced in its bin for 30 days, and the bin counts against the quota: for a run
shorter than that, the peak of live + bin is everything the run wrote. For each run, the ledger of
``xlsr_helpers.train.drive``:

- before: the design before issue 23 (``drive.direct_ledger``): every checkpoint written into the run folder on
  Drive (the whole model, also for MMS adapters) and rotated there, 04_train/model and 06's upload on Drive;
- after: this design (``drive.check_drive``): checkpoints rotate on the local disk, 1 in DRIVE_MIRROR_EVERY (auto)
  is mirrored to Drive, each replacing the one before; a frozen-base run's checkpoints and model hold the adapter
  alone; the upload is assembled on the local disk.

The runs (Turkish, Common Voice 25: about 56 h of train + dev audio, taken whole as the training split, an upper
bound on the updates; clips of 5 s on average; each recipe's batch, epochs and SAVE_STEPS):

- XLSR-53 (facebook/wav2vec2-large-xlsr-53), 30 epochs, batches of 16 x 2, a checkpoint every 400 updates;
- MMS-1b-all adapters (facebook/mms-1b-all, language "tur"), 4 epochs, batches of 32, every 200 updates.

Sizes come from the parameters of the real architectures (``benchmarks/gpu_families.py``'s config values), built
on PyTorch's meta device (no weights are made): float32 weights, AdamW's two float32 moments per trained weight.
Drive's free space: ``--free-gb`` (default 14: a free account's 15 GB less 1 GB already used, e.g. by steps 01-03
and mail). Checkpoint files other than weights and optimizer state (scheduler, random state, trainer state,
config, processor: a few hundred KB) are left out; the ledger's margin (0.2 GB) covers them and the reports.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.gpu_families import MMS_1B_ALL, XLSR53  # noqa: E402
from xlsr_helpers.recipes import MMS_ADAPTER_TRAINING, SEED_TRAINING  # noqa: E402
from xlsr_helpers.train import drive  # noqa: E402
from xlsr_helpers.train.checkpoints import GB, checkpoint_bytes  # noqa: E402

VOCAB = 40  # Turkish characters + the special tokens: the CTC head's size (any vocabulary changes < 0.1 MB)
RUNS = {"XLSR-53, 30 epochs": (XLSR53, SEED_TRAINING, False),
        "MMS-1b-all adapters (tur)": (MMS_1B_ALL, MMS_ADAPTER_TRAINING, True)}


def meta_model(architecture: dict, adapters: bool):
    """The architecture on the meta device, frozen as its recipe freezes it (the CNN; for MMS adapters the base)."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    with torch.device("meta"):
        model = Wav2Vec2ForCTC(Wav2Vec2Config(**architecture, vocab_size=VOCAB))
    if adapters:
        model.freeze_base_model()
        for parameter in model._get_adapters().values():
            parameter.requires_grad = True
    else:
        model.freeze_feature_encoder()
    return model


def updates(hours: float, clip_s: float, recipe: dict) -> int:
    clips = hours * 3600 / clip_s
    return drive.planned_updates(math.ceil(clips), recipe["batch_size"], recipe["gradient_accumulation_steps"],
                                 recipe["num_train_epochs"])


def rows(hours: float, clip_s: float, free: int) -> list[dict]:
    table = []
    for name, (architecture, recipe, adapters) in RUNS.items():
        model = meta_model(architecture, adapters)
        length = drive.RunLength(updates(hours, clip_s, recipe), recipe["save_steps"])
        before_sizes = checkpoint_bytes(model)
        if adapters:  # the design before: the whole model everywhere, and the adapter file beside model/ and upload/
            extra = checkpoint_bytes(model, adapter_only=True)["weights"]
            before_sizes = dict(before_sizes, model=before_sizes["model"] + extra,
                                upload=before_sizes["upload"] + extra)
        before = drive.direct_ledger(before_sizes, length, 2)
        after_sizes = checkpoint_bytes(model, adapter_only=adapters)
        try:
            after, _ = drive.check_drive(after_sizes, length, free)
        except drive.DriveBudgetError as error:
            print(f"{name}: {error}")
            continue
        total = sum(p.numel() for p in model.parameters())
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        for label, ledger, sizes in (("before", before, before_sizes), ("after", after, after_sizes)):
            table.append({"run": name, "design": label, "updates": length.updates, "saves": len(length.saves()),
                          "weights (M)": f"{total / 1e6:.1f}", "trained (M)": f"{trained / 1e6:.2f}",
                          "checkpoint GB": f"{sizes['checkpoint'] / GB:.3f}",
                          "to Drive": ledger.checkpoints,
                          "every (updates)": ledger.interval if label == "after" else length.save_steps,
                          "written GB": f"{ledger.written / GB:.2f}", "deleted GB": f"{ledger.deleted / GB:.2f}",
                          "live at end GB": f"{ledger.live_end / GB:.2f}",
                          "peak live+bin GB": f"{ledger.peak / GB:.2f}",
                          "fits": "yes" if ledger.peak + drive.report_margin(sizes) <= free else "NO"})
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=56.0, help="hours of training audio (default 56)")
    parser.add_argument("--clip-seconds", type=float, default=5.0, help="average clip length (default 5 s)")
    parser.add_argument("--free-gb", type=float, default=14.0, help="Drive's free space, bin counted (default 14)")
    args = parser.parse_args(argv)
    from xlsr_helpers.files import markdown_table

    table = rows(args.hours, args.clip_seconds, int(args.free_gb * GB))
    print(f"{args.hours:g} h of audio in clips of {args.clip_seconds:g} s, Drive {args.free_gb:g} GB free "
          f"(peak live+bin = written: the bin keeps deleted files 30 days)\n")
    print(markdown_table(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
