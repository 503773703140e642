"""The ``audiofolder:<dir>`` source: audio files + ``metadata.csv`` (``file_name`` and a text column).

For languages that Common Voice lacks. Read with datasets' ``audiofolder`` builder; its rows become ours as a Hub
dataset's do (:func:`.hub.rows_from_hf`), with absolute clip paths.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from .hub import rows_from_hf
from .rows import SourceRows


def read_audiofolder(folder: str | Path, spec: str, cfg: Config) -> SourceRows:
    from datasets import load_dataset

    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"audiofolder {folder} does not exist")
    loaded = load_dataset("audiofolder", data_dir=str(folder))
    out = rows_from_hf(loaded, spec, "audiofolder", cfg, 0)
    out.info["folder"] = str(folder)
    return out
