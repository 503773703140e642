"""Google Drive in step 04: what goes there, how often, and whether a whole run fits — its bin included.

Drive keeps a deleted or replaced file in its bin for 30 days, and the bin counts against the quota (15 GB on a
free account). So a run adds to Drive's usage everything it writes there, whatever it deletes afterwards: for a
run shorter than 30 days the peak of live + bin is the sum of its writes. :class:`Ledger` counts them — bytes
written, deleted (to the bin), live at the end, and that peak — for this design (:func:`mirror_ledger`) and for
the one before it (:func:`direct_ledger`, every checkpoint written to Drive and rotated there).

The design, when the run folder is on Drive (Colab's default, :func:`places`):

- the Trainer writes and rotates its checkpoints on the machine's own disk (``colab.local_twin``: ``/content/
  xlsr-local/...``), where SAVE_TOTAL_LIMIT applies;
- every DRIVE_MIRROR_EVERY-th checkpoint is mirrored to ``<RUN_DIR>/04_train/checkpoint-<step>/`` (:func:`mirror`:
  copied whole under a temporary name, renamed when complete, then the previously mirrored one deleted — kept
  instead when it is the best one: deleted or kept, its bytes count the same). 0 (auto) mirrors as often as the
  whole run fits in Drive's free space (:func:`plan_mirrors`). The last update's checkpoint is not mirrored: the
  final model follows it at once;
- after a disconnect the step copies the newest complete mirrored checkpoint (and the best one, when it is
  another) back to the local disk (:func:`restore`) and resumes from there;
- 04_train/model is written to Drive at the end — the weights alone, or for a frozen base (MMS adapters) the
  adapter alone — and the mirrored checkpoints are then deleted (:func:`retire`: in the bin they stop counting
  after 30 days);
- the upload folder of step 06 is assembled on the local disk (``Config.upload_dir``).

A run folder elsewhere (a local disk, ``xlsr run`` on a rented GPU) keeps its checkpoints in ``04_train/`` as
before, and nothing is mirrored. The check before the first update (:func:`check_drive`) refuses a plan that
does not fit, and says what to change.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from .. import colab
from .checkpoints import GB, is_complete_checkpoint, list_checkpoints

# Written to Drive besides checkpoints and the model: report.json, curves.png, run.json, step 05's predictions and
# metrics (a few MB for thousands of test clips), and the atomic replacements of each (the old copy to the bin).
# 0.2 GB at most; for a smaller model a sixth of its size (XLSR-53's 1.26 GB gives the 0.2 GB), but at least 5 MB:
# a tiny run's reports rewritten at each evaluation (curves.png, report.json, run.json) came to ~3 MB on the stand-in
# Drive of tests/test_drive.py. The Colab rehearsal's Drive is the free 15 GB scaled by checkpoint size.
MARGIN_BYTES = 200_000_000
MIN_MARGIN_BYTES = 5_000_000


def report_margin(sizes: dict[str, int]) -> int:
    """What the run writes to Drive besides checkpoints and the model (reports, their replaced copies)."""
    return min(MARGIN_BYTES, max(MIN_MARGIN_BYTES, sizes["model"] // 6))
PARTIAL = ".partial"  # a checkpoint folder being copied (CHECKPOINT_RE does not match it: never resumed from)
AUTO, NEVER = 0, -1  # DRIVE_MIRROR_EVERY values


class DriveBudgetError(OSError):
    """What this run would write to Google Drive does not fit in its free space (the bin included)."""


# --------------------------------------------------------------------------------------------------
# where the checkpoints go
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Places:
    """``run``: 04_train in the run folder; ``local``: where the Trainer writes its checkpoints."""

    run: Path
    local: Path

    @property
    def mirrored(self) -> bool:
        """True when the run folder is on Drive: checkpoints rotate locally and some are mirrored to ``run``."""
        return self.local != self.run


def places(train_dir: str | Path) -> Places:
    """Where the checkpoints of ``train_dir`` (04_train of the run folder) are written: its local twin when it is on
    Google Drive (:func:`xlsr_helpers.colab.local_twin`), else ``train_dir`` itself."""
    train_dir = Path(train_dir)
    local = colab.local_twin(train_dir) if colab.on_drive(train_dir) else train_dir
    return Places(run=train_dir, local=local)


# --------------------------------------------------------------------------------------------------
# the ledger: what a run writes to Drive
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunLength:
    """The updates of a run (``updates``: the Trainer's max_steps), its SAVE_STEPS, and the step it starts from."""

    updates: int
    save_steps: int
    start_step: int = 0

    def saves(self) -> list[int]:
        """The steps at which the Trainer writes a checkpoint from here on: every SAVE_STEPS, and the last step."""
        steps = set(range(self.save_steps, self.updates + 1, self.save_steps)) | {self.updates}
        return sorted(s for s in steps if s > self.start_step)

    def mirrored(self, every: int) -> list[int]:
        """The checkpoints mirrored to Drive with DRIVE_MIRROR_EVERY=``every`` (> 0): each ``every``-th save, not
        the last update's."""
        if every <= 0:
            return []
        return [s for s in self.saves() if s % (self.save_steps * every) == 0 and s < self.updates]


@dataclass(frozen=True)
class Ledger:
    """Bytes a run writes to Drive, deletes there (to the bin, counted for 30 days), leaves there at the end, and
    its peak of live + bin (everything written: the run is shorter than the bin's 30 days)."""

    design: str  # "mirror" (this design) or "direct" (every checkpoint in the run folder on Drive)
    written: int
    deleted: int
    live_end: int
    checkpoints: int  # checkpoints written to Drive
    checkpoint_bytes: int
    every: int = 0  # DRIVE_MIRROR_EVERY taken (design "mirror"; 0: none mirrored)
    save_steps: int = 0

    @property
    def peak(self) -> int:
        return self.written

    @property
    def interval(self) -> int:
        """Updates between two mirrored checkpoints (0: none): what a disconnect can cost at most."""
        return self.every * self.save_steps

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update(peak=self.peak, interval=self.interval,
                    **{f"{k}_gb": round(v / GB, 3) for k, v in (("written", self.written), ("deleted", self.deleted),
                                                                  ("live_end", self.live_end), ("peak", self.peak))})
        return data


def mirror_ledger(sizes: dict[str, int], length: RunLength, every: int) -> Ledger:
    """This design: each mirrored checkpoint written once and deleted once a newer one is there (or at the end),
    the final model written once. The upload folder is on the local disk."""
    count = len(length.mirrored(every))
    checkpoints = count * sizes["checkpoint"]
    return Ledger("mirror", written=checkpoints + sizes["model"], deleted=checkpoints, live_end=sizes["model"],
                  checkpoints=count, checkpoint_bytes=sizes["checkpoint"], every=every if count else 0,
                  save_steps=length.save_steps)


def direct_ledger(sizes: dict[str, int], length: RunLength, save_total_limit: int) -> Ledger:
    """The design before this one: every checkpoint written in the run folder on Drive, rotated there by deleting
    all but SAVE_TOTAL_LIMIT of them at the end (the best among them), the final model and the upload folder of
    step 06 on Drive too. ``sizes`` as that design wrote them (whole weights in every checkpoint)."""
    count = len(length.saves())
    kept = min(count, max(1, int(save_total_limit or 1)))
    other = sizes["model"] + sizes["upload"]
    return Ledger("direct", written=count * sizes["checkpoint"] + other, deleted=(count - kept) * sizes["checkpoint"],
                  live_end=kept * sizes["checkpoint"] + other, checkpoints=count,
                  checkpoint_bytes=sizes["checkpoint"], save_steps=length.save_steps)


def smallest_every(sizes: dict[str, int], length: RunLength, room: int) -> int:
    """The smallest DRIVE_MIRROR_EVERY whose ledger fits in ``room`` bytes with at least one mirror; 0 if none."""
    for every in range(1, len(length.saves()) + 1):
        ledger = mirror_ledger(sizes, length, every)
        if not ledger.checkpoints:
            return 0
        if ledger.written <= room:
            return every
    return 0


def plan_mirrors(sizes: dict[str, int], length: RunLength, free: int, setting: int = AUTO) -> Ledger:
    """The ledger of DRIVE_MIRROR_EVERY=``setting``: > 0 as set, -1 none, 0 (auto) the most often that fits in
    ``free`` bytes less :func:`report_margin`."""
    if setting != AUTO:
        return mirror_ledger(sizes, length, max(setting, 0))
    return mirror_ledger(sizes, length, smallest_every(sizes, length, free - report_margin(sizes)))


def check_drive(sizes: dict[str, int], length: RunLength, free: int, setting: int = AUTO) -> tuple[Ledger, str]:
    """The plan of :func:`plan_mirrors` and a note for the learner; :class:`DriveBudgetError` with what to change
    when it does not fit in ``free`` bytes (what Drive reports free: its bin already counted)."""
    ledger = plan_mirrors(sizes, length, free, setting)
    margin = report_margin(sizes)
    need = ledger.written + margin
    checkpoint, model = sizes["checkpoint"] / GB, sizes["model"] / GB
    head = (f"Google Drive has {free / GB:.2f} GB free (deleted and replaced files stay in its bin, and count, for "
            "30 days)")
    if sizes["model"] + margin > free:
        raise DriveBudgetError(
            f"{head}: the final model alone ({model:.2f} GB, plus {margin / GB:.2f} GB of reports) does not fit. "
            f"Free at least {(sizes['model'] + margin - free) / GB:.2f} GB on Drive (delete files, then empty "
            "the bin), or set RUN_DIR to a folder on the local disk (e.g. /content/runs/<LANGUAGE>) and copy "
            "04_train/model to Drive after training (a disconnect then loses the run).")
    if need > free:
        fits = smallest_every(sizes, length, free - margin)
        change = (f"Set DRIVE_MIRROR_EVERY={fits} (the most often that fits: {len(length.mirrored(fits))} "
                  f"checkpoint(s), one every {fits * length.save_steps} updates) or 0 (auto)" if fits else
                  "Set DRIVE_MIRROR_EVERY=-1 (no checkpoint on Drive: a disconnect restarts training)")
        raise DriveBudgetError(
            f"{head}, and this run would write {need / GB:.2f} GB there: DRIVE_MIRROR_EVERY={setting} mirrors "
            f"{ledger.checkpoints} checkpoint(s) of {checkpoint:.2f} GB, one every {ledger.interval} updates, plus the "
            f"final model ({model:.2f} GB) and {margin / GB:.2f} GB of reports. {change}, or free "
            f"{(need - free) / GB:.2f} GB on Drive (delete files, then empty the bin). SAVE_TOTAL_LIMIT does not "
            "change this: it applies to the local disk.")
    if not length.mirrored(1):
        note = "no checkpoint of this run is mirrored to Drive (the run saves none before its last update)"
    elif not ledger.checkpoints:
        note = (f"no checkpoint is mirrored to Drive (DRIVE_MIRROR_EVERY={setting}"
                + (f"; one of {checkpoint:.2f} GB does not fit beside the final model: free "
                   f"{(sizes['checkpoint'] + sizes['model'] + margin - free) / GB:.2f} GB on Drive, bin "
                   "included, for one" if setting == AUTO else "") + "): a disconnect restarts training from its first update")
    else:
        note = (f"1 checkpoint in {ledger.every} (one every {ledger.interval} updates) is mirrored to Drive: "
                f"{ledger.checkpoints} x {checkpoint:.2f} GB + the final model {model:.2f} GB = "
                f"{ledger.written / GB:.2f} GB written over the run (its bin included) of {free / GB:.2f} GB free")
    return ledger, note


def planned_updates(rows: int, batch_size: int, accumulation: int, epochs: float, max_steps: int = -1,
                    world_size: int = 1, batches: int | None = None) -> int:
    """The Trainer's max_steps: MAX_STEPS when > 0, else epochs x updates per epoch, where an epoch is the batches
    of one process (``batches``: a duration sampler's count, else rows / BATCH_SIZE) over the accumulation."""
    if max_steps and max_steps > 0:
        return int(max_steps)
    batches = batches if batches is not None else math.ceil(rows / max(1, batch_size))
    per_process = math.ceil(batches / max(1, world_size))
    per_epoch = max(per_process // accumulation + int(per_process % accumulation > 0), 1)
    return math.ceil(epochs * per_epoch)


# --------------------------------------------------------------------------------------------------
# the mirror: copying to Drive, back, and clearing it
# --------------------------------------------------------------------------------------------------
def _copy_whole(source: Path, target: Path, delete=shutil.rmtree) -> Path:
    """Copy folder ``source`` to ``target`` under a temporary name, renamed when complete."""
    partial = target.with_name(target.name + PARTIAL)
    if partial.exists():
        delete(partial)
    shutil.copytree(source, partial)
    partial.rename(target)
    return target


def mirror(checkpoint: str | Path, drive_dir: str | Path, keep: Iterable[str] = ()) -> Path:
    """Mirror a complete local checkpoint to ``drive_dir``, then delete the mirrored checkpoints there that are
    neither it nor named in ``keep`` (the best one). Returns the mirrored folder."""
    checkpoint, drive_dir = Path(checkpoint), Path(drive_dir)
    target = drive_dir / checkpoint.name
    if not target.exists():
        drive_dir.mkdir(parents=True, exist_ok=True)
        _copy_whole(checkpoint, target, colab.delete_on_drive)
    kept = {target.name, *keep}
    for _, path in list_checkpoints(drive_dir):
        if path.name not in kept:
            colab.delete_on_drive(path)
    colab.flush_drive()
    return target


def best_named(checkpoint: Path) -> str | None:
    """The folder name of the best checkpoint that ``checkpoint``'s trainer_state.json records."""
    try:
        best = json.loads((checkpoint / "trainer_state.json").read_text()).get("best_model_checkpoint")
    except (OSError, ValueError):
        return None
    return Path(best).name if best else None


def restore(where: Places, world_size: int = 1, fp16: bool = False) -> list[Path]:
    """Copy back to the local disk what a resume needs from the checkpoints mirrored on Drive: the newest
    complete one when no complete local checkpoint is as new, and the best one that its state names when it is on
    Drive and not here. Returns the local copies made."""
    if not where.mirrored:
        return []
    from .checkpoints import scaler_expected

    scaler = scaler_expected(where.run, fp16) or scaler_expected(where.local, fp16)
    local = [step for step, path in list_checkpoints(where.local)
             if is_complete_checkpoint(path, world_size, scaler)]
    mirrored = [(step, path) for step, path in list_checkpoints(where.run)
                if is_complete_checkpoint(path, world_size, scaler)]
    if not mirrored or (local and local[-1] >= mirrored[-1][0]):
        return []
    newest = mirrored[-1][1]
    wanted = [newest] + [path for _, path in mirrored if path.name == best_named(newest) and path != newest]
    copies = []
    for path in wanted:
        target = where.local / path.name
        if not target.exists():
            where.local.mkdir(parents=True, exist_ok=True)
            copies.append(_copy_whole(path, target))
    return copies


def retire(where: Places) -> list[str]:
    """Delete the checkpoints mirrored to Drive (once 04_train/model is there): in the bin they stop counting after
    30 days. Returns their names."""
    if not where.mirrored:
        return []
    gone = [path for _, path in list_checkpoints(where.run)] + list(where.run.glob(f"checkpoint-*{PARTIAL}"))
    for path in gone:
        colab.delete_on_drive(path)
    if gone:
        colab.flush_drive()
    return [path.name for path in gone]
