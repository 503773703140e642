"""Resume from the last *complete* checkpoint; never replace a finished model by accident."""

from __future__ import annotations

import re
from pathlib import Path

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")


class ModelExistsError(FileExistsError):
    """04_train/model already holds a finished model and OVERWRITE_MODEL is False."""


def is_complete_checkpoint(path: str | Path) -> bool:
    """A checkpoint is complete when its trainer_state.json (written last) and its weights exist."""
    path = Path(path)
    return (path / "trainer_state.json").is_file() and any((path / name).is_file() for name in WEIGHT_FILES)


def list_checkpoints(train_dir: str | Path) -> list[tuple[int, Path]]:
    train_dir = Path(train_dir)
    found = []
    if train_dir.is_dir():
        for child in train_dir.iterdir():
            match = CHECKPOINT_RE.match(child.name)
            if match and child.is_dir():
                found.append((int(match.group(1)), child))
    return sorted(found)


def find_resume_checkpoint(train_dir: str | Path, resume: str = "auto") -> Path | None:
    """The checkpoint to resume from: RESUME=auto -> the last complete one (partial ones are ignored),
    never -> None, a path -> that checkpoint (which must be complete)."""
    resume = (resume or "auto").strip()
    if resume.lower() == "never":
        return None
    if resume.lower() == "auto":
        complete = [path for _, path in list_checkpoints(train_dir) if is_complete_checkpoint(path)]
        return complete[-1] if complete else None
    path = Path(resume).expanduser()
    if not path.is_absolute() and not path.exists():
        path = Path(train_dir) / resume
    if not is_complete_checkpoint(path):
        raise FileNotFoundError(f"RESUME={resume!r}: {path} is not a complete checkpoint (it needs "
                                f"trainer_state.json and model weights). Use auto, never or another checkpoint.")
    return path.resolve()


# --------------------------------------------------------------------------------------------------
# disk budget: checkpoints must fit where they are written (a 15 GB Google Drive fills up fast)
# --------------------------------------------------------------------------------------------------
class DiskBudgetError(OSError):
    """The checkpoints and the final model of this run would not fit in the free space of the run folder."""


GB = 1e9
ADAM_STATE_BYTES = 8  # AdamW keeps two float32 moments per trained weight (exp_avg, exp_avg_sq)


def checkpoint_bytes(model) -> dict[str, int]:
    """Bytes of one checkpoint of ``model``: its weights as stored, plus the optimizer state of trained weights."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = trained * ADAM_STATE_BYTES
    return {"weights": weights, "optimizer": optimizer, "checkpoint": weights + optimizer}


def checkpoints_at_once(save_total_limit: int, keep_best: bool = True) -> int:
    """How many checkpoints a run holds at its peak: the kept ones (the Trainer keeps the best one besides
    the last ones, so at least two with ``load_best_model_at_end``) plus the one being written before the
    oldest is deleted."""
    kept = max(int(save_total_limit or 1), 2 if keep_best else 1)
    return kept + 1


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def existing_ancestor(path: Path) -> Path:
    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    return path


def disk_budget(model, train_dir: str | Path, save_total_limit: int, keep_best: bool = True) -> dict[str, float]:
    """What the checkpoints and the final model need where they are written, against the free space there
    (``shutil.disk_usage``); checkpoints already written by an earlier run of the step count as used. Raises
    :class:`DiskBudgetError` with what to change when it does not fit."""
    import shutil

    sizes = checkpoint_bytes(model)
    count = checkpoints_at_once(save_total_limit, keep_best)
    needed = count * sizes["checkpoint"] + sizes["weights"]  # + 04_train/model: weights only
    already = sum(folder_bytes(path) for _, path in list_checkpoints(train_dir))
    free = shutil.disk_usage(existing_ancestor(Path(train_dir))).free
    budget = {"checkpoint_gb": sizes["checkpoint"] / GB, "weights_gb": sizes["weights"] / GB,
              "optimizer_gb": sizes["optimizer"] / GB, "checkpoints_at_once": count, "needed_gb": needed / GB,
              "already_written_gb": already / GB, "free_gb": free / GB}
    if needed - already > free:
        raise DiskBudgetError(
            f"The checkpoints of this run do not fit in {train_dir}: up to {count} checkpoints exist at once "
            f"(SAVE_TOTAL_LIMIT={save_total_limit}, the best one kept besides the last, one more while a new one is "
            f"written) of {sizes['checkpoint'] / GB:.2f} GB each (weights {sizes['weights'] / GB:.2f} GB + optimizer "
            f"state {sizes['optimizer'] / GB:.2f} GB), plus the final model ({sizes['weights'] / GB:.2f} GB): "
            f"{needed / GB:.1f} GB, and only {(free + already) / GB:.1f} GB are free there. Free some space (on "
            "Google Drive: empty its bin too), set SAVE_TOTAL_LIMIT=1, or put RUN_DIR on a larger disk.")
    return budget
