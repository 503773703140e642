"""Writing the run folder's files so that a reader never sees half of one.

A run folder may sit on Google Drive, and a step may be killed at any moment (a Colab disconnect, a cell
timeout): every report, table and record is written to a temporary file beside its target and moved into
place with ``os.replace``, which is atomic on one filesystem. Each writer of the package uses these.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file beside it; the parent folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8", newline="\n")  # the same bytes on every platform
    os.replace(tmp, path)
    return path


def write_json_atomic(path: str | Path, data: Any, default=None) -> Path:
    """``data`` as indented JSON (non-ASCII kept as is, a final newline), written atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=default) + "\n")


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A Markdown table of ``rows`` (dicts) in the order of ``columns`` (default: the first row's keys).

    A ``|`` in a value is escaped and a line break becomes a space, so that a value never breaks the table.
    No rows gives ``(none)``.
    """
    if not rows:
        return "(none)\n"
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = (str(row.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
