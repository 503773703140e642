"""Resume from the last *complete* checkpoint; never replace a finished model by accident.

A checkpoint resumes exactly only with everything the Trainer wrote into it: the weights, ``trainer_state.json``,
the optimizer's moments (``optimizer.pt``), the learning-rate schedule (``scheduler.pt``), the random state of
each process (``rng_state.pth``, or ``rng_state_<rank>.pth`` under torchrun) and, in fp16, the loss scaler
(``scaler.pt``). On Google Drive the files of a folder upload one by one, so after a disconnect the newest
checkpoint can lack some of them: resuming from it would restart AdamW from zero moments and the warm-up from
its first step. Such a checkpoint is skipped, with a note that names what it lacks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")  # transformers' own pattern (trainer_utils.PREFIX_CHECKPOINT_DIR)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")
STATE_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")  # trainer_utils' names, all written every save
SCALER_FILE = "scaler.pt"  # written when the run trains in fp16 (the GradScaler's state)
RNG_FILE = "rng_state.pth"  # one process; under torchrun one rng_state_<rank>.pth per process
RNG_RANK_RE = re.compile(r"^rng_state_(\d+)\.pth$")


class ModelExistsError(FileExistsError):
    """04_train/model already holds a finished model and OVERWRITE_MODEL is False."""


def missing_files(path: str | Path, world_size: int = 1, fp16: bool = False) -> list[str]:
    """What checkpoint ``path`` lacks to resume exactly a run of ``world_size`` processes (``fp16``: with a loss
    scaler); empty when it is complete.

    The weights: one file, or an index and every shard it names. The random state: ``rng_state.pth`` (written by
    one process: each rank then starts a fresh stream, as the Trainer does), or ``rng_state_0.pth`` ...
    without a gap, at least one per process of this run."""
    path = Path(path)
    missing = [name for name in STATE_FILES if not (path / name).is_file()]
    weights = [name for name in WEIGHT_FILES if (path / name).is_file()]
    if not weights and not adapter_weights_present(path):
        missing.append("model weights")
    for index in (name for name in weights if name.endswith(".index.json")):
        try:
            shards = sorted(set(json.loads((path / index).read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError):
            shards = [index]  # a half-written index
        missing += [shard for shard in shards if not (path / shard).is_file()]
    ranks = sorted(int(m.group(1)) for f in path.glob("rng_state_*.pth") if (m := RNG_RANK_RE.match(f.name)))
    if not (path / RNG_FILE).is_file():
        if not ranks and world_size <= 1:
            missing.append(RNG_FILE)
        else:
            count = max(world_size, ranks[-1] + 1 if ranks else 0)
            missing += [f"rng_state_{rank}.pth" for rank in range(count) if rank not in ranks]
    if fp16 and not (path / SCALER_FILE).is_file():
        missing.append(SCALER_FILE)
    return missing


def adapter_weights_present(path: Path) -> bool:
    """An adapter-only checkpoint (a frozen-base run): ``base_model.json`` and the adapter file it names."""
    from ..models import adapter_only_record, adapter_weights_file

    try:
        record = adapter_only_record(path)
    except (OSError, ValueError):
        return False  # a half-written base_model.json
    return bool(record) and (path / adapter_weights_file(record.get("target_lang", ""))).is_file()


def is_complete_checkpoint(path: str | Path, world_size: int = 1, fp16: bool = False) -> bool:
    """Whether checkpoint ``path`` holds everything a resume reads (:func:`missing_files`)."""
    return not missing_files(path, world_size, fp16)


def list_checkpoints(train_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every ``checkpoint-<step>`` folder, in the order of their steps."""
    train_dir = Path(train_dir)
    found = []
    if train_dir.is_dir():
        for child in train_dir.iterdir():
            match = CHECKPOINT_RE.match(child.name)
            if match and child.is_dir():
                found.append((int(match.group(1)), child))
    return sorted(found)


def scaler_expected(train_dir: str | Path, fp16: bool) -> bool:
    """Whether a checkpoint of ``train_dir`` must hold ``scaler.pt``: when this run trains in fp16 and the run
    that wrote the checkpoints did too (one of them holds a scaler). A run that trained in bf16 on another GPU
    (an A100 in an earlier Colab session, a T4 now) wrote none, and its checkpoints still resume: the loss scale
    then starts afresh, as at the start of any fp16 run."""
    return fp16 and any((path / SCALER_FILE).is_file() for _, path in list_checkpoints(train_dir))


def incomplete_checkpoints(train_dir: str | Path, world_size: int = 1, fp16: bool = False) -> dict[str, list[str]]:
    """{checkpoint folder name: what it lacks} for each checkpoint of ``train_dir`` that cannot resume exactly."""
    scaler = scaler_expected(train_dir, fp16)
    found = {path.name: missing_files(path, world_size, scaler) for _, path in list_checkpoints(train_dir)}
    return {name: missing for name, missing in found.items() if missing}


def find_resume_checkpoint(train_dir: str | Path, resume: str = "auto", world_size: int = 1,
                           fp16: bool = False) -> Path | None:
    """The checkpoint to resume from: RESUME=auto -> the newest complete one (``get_last_checkpoint``'s answer
    when it is complete; else the newest complete one before it), never -> None, a path -> that checkpoint
    (which must be complete). ``world_size`` and ``fp16``: this run's, for :func:`missing_files`."""
    from transformers.trainer_utils import get_last_checkpoint

    resume = (resume or "auto").strip()
    if resume.lower() == "never":
        return None
    scaler = scaler_expected(train_dir, fp16)
    if resume.lower() == "auto":
        newest = get_last_checkpoint(str(train_dir)) if Path(train_dir).is_dir() else None
        if newest is not None and not missing_files(newest, world_size, scaler):
            return Path(newest)
        complete = [path for _, path in list_checkpoints(train_dir) if not missing_files(path, world_size, scaler)]
        return complete[-1] if complete else None
    path = Path(resume).expanduser()
    if not path.is_absolute() and not path.exists():
        path = Path(train_dir) / resume
    missing = missing_files(path, world_size, scaler)
    if missing:
        raise FileNotFoundError(f"RESUME={resume!r}: {path} is not a complete checkpoint (it lacks "
                                f"{', '.join(missing)}). Use auto, never or another checkpoint.")
    return path.resolve()


# --------------------------------------------------------------------------------------------------
# sizes, and the local disk: the checkpoints rotate where the Trainer writes them
# --------------------------------------------------------------------------------------------------
class DiskBudgetError(OSError):
    """The checkpoints (and the final model, where it goes to the same disk) do not fit in the free space there."""


GB = 1e9
ADAM_STATE_BYTES = 8  # AdamW keeps two float32 moments per trained weight (exp_avg, exp_avg_sq)


def checkpoint_bytes(model, adapter_only: bool = False) -> dict[str, int]:
    """Bytes of what a run of ``model`` writes, from its parameters: ``weights`` and ``optimizer`` of one
    checkpoint (``checkpoint``, their sum), ``model`` (04_train/model) and ``upload`` (06's upload folder).

    A checkpoint holds the weights as stored and the AdamW state of the trained ones. ``adapter_only`` (a frozen
    base whose adapters and head alone train, :func:`xlsr_helpers.models.trains_adapters_only`): checkpoints and
    04_train/model hold the trained tensors only; the upload still holds the whole model, plus the adapter file
    that ``from_pretrained(..., target_lang=...)`` reads."""
    parameters = list(model.parameters())
    whole = sum(p.numel() * p.element_size() for p in parameters)
    trained = sum(p.numel() * p.element_size() for p in parameters if p.requires_grad)
    optimizer = sum(p.numel() for p in parameters if p.requires_grad) * ADAM_STATE_BYTES
    weights = trained if adapter_only else whole
    return {"weights": weights, "optimizer": optimizer, "checkpoint": weights + optimizer, "model": weights,
            "upload": whole + (trained if adapter_only else 0)}


def checkpoints_at_once(save_total_limit: int, keep_best: bool = True) -> int:
    """How many checkpoints a run holds at its peak: the kept ones plus the one being written before the
    oldest is deleted. The Trainer keeps the best one besides the newest (``load_best_model_at_end``): with
    SAVE_TOTAL_LIMIT=1 it keeps two whenever the best is not the newest, so 1 and 2 both peak at three."""
    kept = max(int(save_total_limit or 1), 2 if keep_best else 1)
    return kept + 1


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def existing_ancestor(path: Path) -> Path:
    from ..colab import existing_ancestor as ancestor

    return ancestor(path)


def disk_budget(model, checkpoint_dir: str | Path, save_total_limit: int, keep_best: bool = True,
                adapter_only: bool = False, model_here: bool = True) -> dict[str, float]:
    """What the checkpoints need where the Trainer writes them (``checkpoint_dir``; on Colab with the run folder
    on Drive: the local disk, see ``drive.py``), plus the final model when it is written to the same disk
    (``model_here``), against the free space there (``shutil.disk_usage``); checkpoints already written by an
    earlier run of the step count as used. Raises :class:`DiskBudgetError` with what to change."""
    import shutil

    sizes = checkpoint_bytes(model, adapter_only)
    count = checkpoints_at_once(save_total_limit, keep_best)
    final = sizes["model"] if model_here else 0
    needed = count * sizes["checkpoint"] + final
    already = sum(folder_bytes(path) for _, path in list_checkpoints(checkpoint_dir))
    free = shutil.disk_usage(existing_ancestor(Path(checkpoint_dir))).free
    budget = {"checkpoint_gb": sizes["checkpoint"] / GB, "weights_gb": sizes["weights"] / GB,
              "optimizer_gb": sizes["optimizer"] / GB, "model_gb": final / GB, "checkpoints_at_once": count,
              "needed_gb": needed / GB, "already_written_gb": already / GB, "free_gb": free / GB}
    if needed - already > free:
        fewest = checkpoints_at_once(1, keep_best)
        change = (f"set SAVE_TOTAL_LIMIT=2 ({fewest} at once instead of {count}, "
                  f"{(count - fewest) * sizes['checkpoint'] / GB:.1f} GB less), " if count > fewest else
                  f"(SAVE_TOTAL_LIMIT cannot lower it: {fewest} at once is the fewest while the best is kept), ")
        raise DiskBudgetError(
            f"The checkpoints of this run do not fit in {checkpoint_dir}: up to {count} checkpoints exist at once "
            f"(SAVE_TOTAL_LIMIT={save_total_limit}, the best one kept besides the newest, one more while a new one "
            f"is written) of {sizes['checkpoint'] / GB:.2f} GB each (weights {sizes['weights'] / GB:.2f} GB + "
            f"optimizer state {sizes['optimizer'] / GB:.2f} GB)"
            + (f", plus the final model ({final / GB:.2f} GB)" if final else "")
            + f": {needed / GB:.1f} GB, and only {(free + already) / GB:.1f} GB are free there. Free space there, "
            + change + "or write the run to a larger disk (RUN_DIR; on Colab a runtime with a larger disk).")
    return budget
