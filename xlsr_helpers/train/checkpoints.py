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
