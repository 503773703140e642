"""Clip checks: is the audio a row points to there, and can it be decoded? No clip is ever decoded whole here.

Step 01 examines its rows in a seeded random order (:func:`check_clips`): the first DECODE_CHECK_CLIPS of each
split get the decode check (:func:`probe_audio`: opens the clip and decodes the last quarter second its header
promises, which a truncated file lacks), the others the cheap check (:func:`quick_check`: there, not empty, a
known audio header, a duration), so that the step's cost does not grow with the hours of a large language. Each
answer is ``(ok, duration in seconds, error)``; :data:`MISSING_FILE` is the error of a clip that is not there.

Steps 02, 04, 05 and 06 check again that the clips folder has not moved since (:func:`check_clips_exist`, a sample of
paths): on Colab /content is forgotten after a disconnect, and a clear message with the remedy beats a decoder error.
"""

from __future__ import annotations

import collections
import os
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from .arrow_clips import reference_file
from .audio import AUDIO_COLUMN, header_seconds, stores_paths

CheckResult = tuple[bool, float | None, str | None]  # (ok, duration in seconds, error)
MISSING_FILE = "file not found"  # the audio check's answer for a clip that is not there (reason missing_clip)
TAIL_CHECK_S = 0.25  # a truncated file has no audio in the last quarter second its header promises
# The first bytes of the audio containers a corpus uses (mp3, wav, ogg/opus, flac, mp4/m4a, webm, aiff): the cheap
# check of a clip that is not decode-checked. A file whose header is not one of these is decode-checked instead.
AUDIO_SIGNATURES = ((0, b"ID3"), (0, b"RIFF"), (0, b"RF64"), (0, b"OggS"), (0, b"fLaC"), (4, b"ftyp"),
                    (0, b"\x1a\x45\xdf\xa3"), (0, b"FORM"))
_AT_START = tuple(magic for offset, magic in AUDIO_SIGNATURES if offset == 0)
_AT_FOUR = tuple(magic for offset, magic in AUDIO_SIGNATURES if offset == 4)
assert {offset for offset, _ in AUDIO_SIGNATURES} == {0, 4}, "looks_like_audio checks offsets 0 and 4"
DECODE_CHUNK = 64  # decode checks handed to the threads at a time, so that a limit stops them early
CLIPS_EXIST_SAMPLE = 1000  # clip paths per split checked for existence by step 02 (a stat each)


# --------------------------------------------------------------------------------------------------
# one clip
# --------------------------------------------------------------------------------------------------
def probe_audio(source: str | bytes, expected: float | None = None) -> CheckResult:
    """(decodable, duration in seconds, error) of one clip, with torchcodec.

    Opens the file, reads the duration (``expected`` from clip_durations.tsv, else the header), and
    decodes the last quarter second that duration promises: a truncated mp3 opens fine and reports its
    full duration in the LAME header, but has no audio there. Without any duration, decodes it all.
    """
    from torchcodec.decoders import AudioDecoder

    try:
        decoder = AudioDecoder(source)
        meta = decoder.metadata
        duration = expected or meta.duration_seconds or meta.duration_seconds_from_header
        if not duration or duration <= 0:
            samples = decoder.get_all_samples()
            n = samples.data.shape[-1]
            if n == 0:
                return False, None, "no audio samples"
            return True, n / samples.sample_rate, None
        begin = float(meta.begin_stream_seconds or 0.0)
        start = max(begin, begin + duration - TAIL_CHECK_S)
        tail = decoder.get_samples_played_in_range(start, begin + duration)
        if tail.data.shape[-1] == 0:
            return False, duration, "truncated (no audio at the end)"
        return True, float(duration), None
    except Exception as error:  # noqa: BLE001 - any decoder failure means "undecodable", counted
        if isinstance(source, str) and not os.path.isfile(source):
            return False, None, MISSING_FILE
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "No audio frames" in message:
            message = "truncated (no audio at the end)"
        return False, None, f"{type(error).__name__}: {message[:200]}"


def looks_like_audio(head: bytes) -> bool:
    """Whether a file's first bytes are the header of a known audio container (or an MPEG audio frame)."""
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frame sync: mp3 without ID3
        return True
    return head.startswith(_AT_START) or head.startswith(_AT_FOUR, 4)  # bytes.startswith takes a tuple: in C


def quick_check(source: str | bytes, expected: float | None = None) -> CheckResult:
    """The cheap check of a clip (no decoding): a file that is there (else :data:`MISSING_FILE`), not empty, a
    known audio header, and a duration (``expected`` from the source's metadata, else read from the header). Same
    answer shape as :func:`probe_audio`, which takes over for anything this cannot vouch for. A clip that passes here
    but fails to decode is skipped and counted at training time."""
    try:
        if isinstance(source, (bytes, bytearray)):
            head = bytes(source[:12])
        else:
            # Three system calls on a descriptor (open, read, close): 12 us a clip here, where a system call costs
            # ~3 us (a virtual machine); open() + getsize() took 38 us (a buffered file object and a second path
            # lookup), an fstat for the size 3 us more: an empty file reads as b"" (measured on 90,000 clips).
            try:  # O_NONBLOCK: a FIFO in the clips folder cannot block the step
                fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK)  # also the existence check: one path lookup
            except (FileNotFoundError, NotADirectoryError):
                return False, None, MISSING_FILE
            try:
                head = os.read(fd, 12)
            except IsADirectoryError:
                return False, None, MISSING_FILE
            finally:
                os.close(fd)
            if not head:
                return False, None, "empty file"
        if not looks_like_audio(head):
            return probe_audio(source, expected)
        if expected:
            return True, float(expected), None
        seconds = header_seconds(source)
        return (True, seconds, None) if seconds > 0 else probe_audio(source, expected)
    except Exception as error:  # noqa: BLE001 - an unreadable file is "undecodable", counted
        return False, None, f"{type(error).__name__}: {str(error)[:200]}"


# --------------------------------------------------------------------------------------------------
# step 01: the decode-checked sample and the cheap check of the rest
# --------------------------------------------------------------------------------------------------
def check_clips(rows: list[Any], seed: Any, decode_budget: int,
                take: Callable[[int, CheckResult], bool]) -> dict[str, int]:
    """Examine ``rows`` (each with ``audio_source`` and ``duration``) in a random order seeded by ``seed`` (numpy's
    ``default_rng``): the first ``decode_budget`` (-1: all) with :func:`probe_audio`, the others with
    :func:`quick_check`, so that the decode-checked ones are a random sample. Each answer goes to ``take(index,
    answer)``, in that order; when it returns True the examination stops (a limit reached). Returns
    ``{"decoded": n, "header_only": n}``: the rows examined each way (the rest were never examined)."""
    # numpy's permutation: random.shuffle took 0.1 s for 100,000 rows
    order = np.random.default_rng(seed).permutation(len(rows)).tolist()
    budget = len(order) if decode_budget < 0 else min(len(order), decode_budget)
    # decode-check threads: one per core (3,000 probes on 2 cores: 1.8 s with 2 threads, 2.5 s with 4: the GIL)
    workers = min(8, max(2, os.cpu_count() or 2))

    # The sample: decoding runs in threads (FFmpeg releases the GIL), in chunks so that a limit stops it early.
    decoded, stop = 0, False
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, budget, DECODE_CHUNK):
            batch = order[start:min(start + DECODE_CHUNK, budget)]
            for i, result in zip(batch, pool.map(lambda i: probe_audio(rows[i].audio_source, rows[i].duration),
                                                 batch)):
                decoded += 1
                if take(i, result):
                    stop = True
                    break
            if stop:
                break
    # The others: the cheap check, serially. In threads it was slower (90,000 clips: 16 us a clip in one thread,
    # 28 us in two, 47 us in four: the GIL changes hands at each short system call), and overlapping it with the
    # decode checks did not help either (3,000 probes + 97,000 cheap checks: 3.9 s against 3.2 s).
    header_only = 0
    for i in order[budget:]:
        if stop:
            break
        header_only += 1
        stop = take(i, quick_check(rows[i].audio_source, rows[i].duration))
    return {"decoded": decoded, "header_only": header_only}


# --------------------------------------------------------------------------------------------------
# steps 02, 04, 05 and 06: the clips folder is still there
# --------------------------------------------------------------------------------------------------
class ClipsMissingError(FileNotFoundError):
    """The clips that the run's rows point to are gone (on Colab: /content after a disconnect); the message names
    the folder and what to do."""


def check_clips_exist(dataset, step: str | None = None, sample: int = CLIPS_EXIST_SAMPLE) -> None:
    """The clips that 01_load's rows point to must still be there before a step that reads them (02_normalize,
    04_train, 05_evaluate, 06_model_card) starts its work: a moved or deleted clips folder (Colab forgets /content
    after a disconnect, while the run folder on Google Drive stays) fails here with :class:`ClipsMissingError`,
    naming the folder and the remedy, instead of a decoder error later. ``dataset``: a DatasetDict or one split;
    ``step``: the step that checks, named in the remedy. A seeded sample of ``sample`` paths per split is checked
    (a stat each); rows that hold their audio (EMBED_AUDIO=True) need no check. Rows of a hub: source refer to
    datasets' cache files (:mod:`~xlsr_helpers.arrow_clips`): a cleared cache is a plain FileNotFoundError that
    says to run 01_load again."""
    splits = dataset.items() if hasattr(dataset, "items") else [("split", dataset)]
    missing, checked = [], 0
    for name, split in splits:
        if AUDIO_COLUMN not in split.column_names or not stores_paths(split):
            continue
        paths = split[AUDIO_COLUMN][:]
        if len(paths) > sample:
            paths = random.Random(name).sample(paths, sample)
        checked += len(paths)
        gone_cache = next((path for path in paths if path != reference_file(path)
                           and not os.path.exists(reference_file(path))), None)
        if gone_cache is not None:
            raise FileNotFoundError(
                f"A clip of 01_load's dataset refers to datasets' cache file {reference_file(gone_cache)}, which is "
                "gone (the cache was cleared, or this is another machine). Run 01_load again: load_dataset rebuilds it.")
        missing += [path for path in paths if path == reference_file(path) and not os.path.exists(path)]
    if missing:
        raise ClipsMissingError(clips_missing_message(missing, checked, step))


def clips_missing_message(missing: list[str], checked: int, step: str | None = None) -> str:
    """What :func:`check_clips_exist` says: which folder lost its clips, why that happens, and the two remedies."""
    folders = collections.Counter(os.path.dirname(path) for path in missing)
    folder = folders.most_common(1)[0][0]
    step = step or "this step"
    return (f"The audio clips of the run's dataset are gone: {len(missing)} of {checked} checked clips are missing "
            f"from {folder} (e.g. {os.path.basename(missing[0])}). The clips folder was moved or deleted; on Colab, "
            "/content (the local disk) is forgotten after a disconnect, while the run folder on Google Drive keeps "
            "only the dataset's rows, not the audio. To go on, either run 01_load again with the same DATA_SOURCE "
            f"(it puts the clips back where the rows point), then {step} again; or run 01_load with "
            "EMBED_AUDIO=True and then 02_normalize, so that the run folder on Drive holds the audio itself and "
            f"survives a disconnect (it takes the audio's size on Drive), then {step} again.")
