"""Clips that stay where ``datasets`` stores them: a row of a cached Arrow file, named by a reference string.

A ``hub:`` source that ``datasets.load_dataset`` downloaded keeps its audio in the Arrow files of datasets' cache
(``~/.cache/huggingface/datasets/...``). Steps 01 and 02 save, for each such clip, the reference
``arrow:<cache file>#<column>[<row>]`` in the ``audio`` column (a string, as a clip's path is) instead of a copy of
its bytes: the run folder does not grow with the audio, and no step holds the corpus in memory.

:func:`clip_source` turns a reference into the clip's encoded bytes and passes anything else (a path) through;
:func:`xlsr_helpers.audio.decode_audio` decodes either. A clip is read with ``os.pread`` at the file offset of its
bytes (Arrow gives the buffer's address in the memory-mapped file): read through the map instead, step 01's audio
check of every clip mapped the whole cache into the process (PSS 46 -> 114 MiB for a 69 MB file; with ``pread`` it
stayed at 46), which a memory measurement counts although the kernel may drop those pages. 7 us a clip.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

PREFIX = "arrow:"


def arrow_reference(file: str, column: str, row: int) -> str:
    """The reference to row ``row`` (of the file, counted from 0) of the audio column ``column`` of an Arrow file."""
    return f"{PREFIX}{file}#{column}[{int(row)}]"


def is_arrow_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def parse_reference(reference: str) -> tuple[str, str, int]:
    """(file, column, row) of a reference; ValueError for anything else."""
    file, _, fragment = reference[len(PREFIX):].rpartition("#")
    column, bracket, row = fragment.rpartition("[")
    if not (is_arrow_reference(reference) and file and bracket and row.endswith("]") and row[:-1].isdigit()):
        raise ValueError(f"not a clip reference (arrow:<file>#<column>[<row>]): {reference!r}")
    return file, column, int(row[:-1])


def reference_file(value: str) -> str:
    """The file a clip lives in: the Arrow file of a reference, or the path itself."""
    return parse_reference(value)[0] if is_arrow_reference(value) else value


def clip_source(value: Any) -> Any:
    """What a decoder opens: the encoded bytes of a referenced clip, anything else as it is (a path, bytes)."""
    return read_clip(value) if is_arrow_reference(value) else value


def read_clip(reference: str) -> bytes:
    """The encoded bytes of a referenced clip (FileNotFoundError when datasets' cache file is gone)."""
    file, column, row = parse_reference(reference)
    return cache_file(file).clip(column, row)


def arrow_rows(file: str) -> int:
    """Rows of a cached Arrow file."""
    return cache_file(file).table.num_rows


# --------------------------------------------------------------------------------------------------
# the open cache files of this process (a data-loader worker started by fork shares its parent's)
# --------------------------------------------------------------------------------------------------
_OPEN: dict[str, "_CacheFile"] = {}


def cache_file(file: str) -> "_CacheFile":
    """The opened cache file, opened again when the file at that path was replaced since (a cleared cache rebuilt
    by load_dataset: the same name, maybe other offsets); one ``stat`` a call, ~2 us."""
    try:
        stat = os.stat(file)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"datasets' cache file {file} is gone (the cache was cleared or moved): "
                                "run 01_load again, and datasets rebuilds it") from None
    opened = _OPEN.get(file)
    if opened is None or opened.identity != (stat.st_ino, stat.st_size, stat.st_mtime_ns):
        opened = _OPEN[file] = _CacheFile(file)
    return opened


class _CacheFile:
    """One Arrow file of datasets' cache (the IPC stream format datasets writes), memory-mapped: its table (no data
    read), and each audio column's ``bytes`` chunks with their first rows."""

    def __init__(self, path: str):
        import pyarrow as pa

        self.path = path
        self._map = pa.memory_map(path)
        self._base = self._map.read_buffer(1).address  # where the map starts: a buffer's file offset is relative to it
        self._map.seek(0)
        self.table = pa.ipc.open_stream(self._map).read_all()  # zero-copy: only the batches' headers are read
        self._fd = os.open(path, os.O_RDONLY)
        stat = os.fstat(self._fd)
        self._size = stat.st_size
        self.identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        self._columns: dict[str, tuple[list, np.ndarray]] = {}

    def __del__(self):  # replaced in _OPEN (its file was replaced): the descriptor goes with it
        try:
            os.close(self._fd)
        except (AttributeError, OSError):
            pass

    def _column(self, column: str) -> tuple[list, np.ndarray]:
        if column not in self._columns:
            import pyarrow.compute as pc

            chunks = pc.struct_field(self.table.column(column), "bytes").chunks
            self._columns[column] = (chunks, np.cumsum([0] + [len(c) for c in chunks]))
        return self._columns[column]

    def clip(self, column: str, row: int) -> bytes:
        import pyarrow as pa

        chunks, starts = self._column(column)
        if not 0 <= row < starts[-1]:
            raise IndexError(f"{self.path} has {starts[-1]} rows, not a row {row}")
        k = int(np.searchsorted(starts, row, side="right")) - 1
        chunk, j = chunks[k], row - int(starts[k])
        if chunk.null_count and not chunk[j].is_valid:
            raise ValueError(f"row {row} of {self.path} has no audio bytes")
        _, offsets, data = chunk.buffers()[:3]
        dtype = np.int64 if pa.types.is_large_binary(chunk.type) else np.int32
        begin, end = np.frombuffer(offsets, dtype=dtype)[chunk.offset + j:chunk.offset + j + 2].tolist()
        at = data.address - self._base + begin
        if 0 <= at and at + (end - begin) <= self._size:
            return os.pread(self._fd, end - begin, at)
        return chunk[j].as_py()  # a buffer outside the map (a compressed stream): through Arrow
