"""``record(name, value)`` in a notebook's last cell; ``read_results(path)`` reads them back.

A recorded value is shown as a table row and emitted as a JSON output with a private MIME type, so
tests (and the ``xlsr`` command) can read it from the executed notebook without re-running anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MIME = "application/x.xlsr-result+json"


def record(name: str, value: Any) -> None:
    """Show ``name = value`` and store it in the notebook's outputs (value must be JSON-serializable)."""
    from IPython.display import display

    payload = {"name": name, "value": json.loads(json.dumps(value, default=_plain))}
    display({MIME: payload, "text/plain": f"{name} = {payload['value']!r}"}, raw=True)


def read_results(notebook_path: str | Path) -> dict[str, Any]:
    """Every value recorded in an executed notebook, by name (a later record of a name wins)."""
    import nbformat

    notebook = nbformat.read(str(notebook_path), as_version=4)
    results: dict[str, Any] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(MIME)
            if payload is not None:
                if isinstance(payload, str):
                    payload = json.loads(payload)
                results[payload["name"]] = payload["value"]
    return results


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars, paths and the like."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
