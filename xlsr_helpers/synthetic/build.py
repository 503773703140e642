"""Building a corpus: :func:`make_corpus`, the entry point that the load step, the CLI and the tests call.

It resolves the language and size, returns a finished corpus at once, and otherwise plans it
(``plan``), writes its TSVs (``layout``), speaks and encodes every clip in parallel (``synthesis``) and
writes the build record last, all inside a temporary folder that is renamed into place (``atomic``).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ..files import write_json_atomic
from .atomic import build_into, is_complete
from .languages import resolve
from .layout import CLIP_TSVS, MARKER, corpus_dir, write_durations, write_tables
from .lexicon import LanguageSpec
from .plan import VERSION, plan, size_counts
from .synthesis import (ENCODERS, check_voice, espeak_version, require_tools, synthesize,
                        torchcodec_encoder_available, worker_count)


def make_corpus(language: str = "tr", size: str = "tiny", seed: int = 0, root: str | Path | None = None,
                progress: bool = True, *, workers: int | None = None, encoder: str | None = None) -> Path:
    """Build (or reuse) a synthetic corpus in Common Voice layout and return its ``<root>/.../<locale>`` folder.

    language: a bundled sentence set (:data:`BUNDLED_LANGUAGES`, default ``tr``) or any other language of
        the installed espeak-ng (pseudo-words); see :func:`available_languages`.
    size: a key of :data:`SIZES` (``tiny`` for tests, ``demo`` for ``make demo``, ``small``).
    seed: the same seed gives the same TSVs, byte for byte; another seed gives other speakers and sentences.
    root: cache folder (default :func:`default_root`); the corpus lands in
        ``<root>/<size>-seed<seed>/cv-synthetic/<locale>``.
    progress: show a progress bar over the clips.
    workers: parallel synthesis jobs (default: the CPU cores available).
    encoder: "torchcodec" (libav's mp3 encoder in process; the default when torchcodec can encode) or
        "ffmpeg" (the ffmpeg command, one process per clip: slower). Both give 48 kHz mono 64 kbit/s mp3
        and the same TSVs.

    A finished corpus carries a build record (:data:`MARKER`), written last; a second call returns at
    once. The corpus is built in a temporary sibling folder and renamed into place when complete, so an
    interrupted build is never half-used: it is built again by the next call.
    """
    spec = resolve(language)
    counts = size_counts(size)
    final = corpus_dir(spec.locale, size, seed, root)
    expected = dict(version=VERSION, locale=spec.locale, voice=spec.voice, size=size, seed=int(seed), counts=counts)
    if is_complete(final, expected):
        return final

    tools = require_tools()
    if encoder is None:
        encoder = "torchcodec" if torchcodec_encoder_available() else "ffmpeg"
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be 'torchcodec' or 'ffmpeg', not {encoder!r}")
    if not spec.bundled:
        spec = resolve(language, check=True)
    check_voice(tools["espeak-ng"], spec.voice, spec.locale, spec.spoken_vocabulary())
    n_workers = worker_count(workers)
    t0 = time.perf_counter()

    def fill(tmp: Path) -> None:
        rows = _build(spec, counts, int(seed), tmp, tools, encoder, progress, n_workers)
        record = dict(expected, name=spec.name, bundled=spec.bundled, espeak_ng=espeak_version(), encoder=encoder,
                      build_seconds=round(time.perf_counter() - t0, 2), rows=rows)
        write_json_atomic(tmp / MARKER, record)

    return build_into(final, expected, fill)


def _build(spec: LanguageSpec, counts: dict, seed: int, out: Path, tools: dict, encoder: str, progress: bool,
           workers: int) -> dict[str, int]:
    """Plan, write the TSVs, synthesize every clip into ``out``; returns the rows per clip TSV."""
    corpus = plan(spec, counts, seed)
    clips_dir = out / "clips"
    clips_dir.mkdir(parents=True)
    clips = write_tables(out, spec.locale, corpus)

    jobs = []
    for c in clips.values():
        s = corpus.speakers[c.speaker]
        jobs.append((tools["espeak-ng"], tools["ffmpeg"], encoder, f"{spec.voice}+{s.variant}", s.pitch, s.speed,
                     s.amplitude, c.spoken, c.lead_ms, c.trail_ms, clips_dir / c.path))
    durations: dict[str, int] = {}
    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(synthesize, job): job[-1].name for job in jobs}
        try:
            bar = tqdm(as_completed(futures), total=len(futures), disable=not progress, unit="clip",
                       desc=f"synthetic {spec.locale} corpus")
            for fut in bar:
                durations[futures[fut]] = fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    write_durations(out, durations)
    return {name: len(corpus.rows[name]) for name in CLIP_TSVS}
