"""The Common Voice release layout: where a corpus lies, and its TSV files as a release writes them.

::

    <root>/<size>-seed<seed>/cv-synthetic/<locale>/
        clips/common_voice_<locale>_<n>.mp3
        train.tsv dev.tsv test.tsv validated.tsv other.tsv invalidated.tsv   (CV 17+ header, unquoted)
        clip_durations.tsv                                                    (clip, duration[ms])
        validated_sentences.tsv unvalidated_sentences.tsv reported.tsv
        .xlsr-synthetic.json                                                  (build record, written last)

The TSVs are unquoted, tab-separated, with ``\\n`` line ends; rows end in a tab (an empty ``segment``),
and a ``sentence_id`` is the SHA-256 of the sentence, as in real releases.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..files import write_text_atomic
from .languages import resolve
from .plan import Clip, Plan, Speaker, size_counts

# Common Voice 17.0+ clip TSV header (bundler TSV_COLUMNS).
TSV_COLUMNS = ("client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes",
               "age", "gender", "accents", "variant", "locale", "segment")
CLIP_TSVS = ("train", "dev", "test", "validated", "other", "invalidated")
MARKER = ".xlsr-synthetic.json"


def default_root() -> Path:
    """``$XLSR_CACHE/synthetic``, else ``~/.cache/xlsr-curriculum/synthetic``."""
    cache = os.environ.get("XLSR_CACHE")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache" / "xlsr-curriculum"
    return base / "synthetic"


def corpus_dir(language: str = "tr", size: str = "tiny", seed: int = 0, root: str | Path | None = None) -> Path:
    """Where :func:`make_corpus` puts (or has put) this corpus; builds nothing."""
    spec = resolve(language)
    size_counts(size)
    base = Path(root).expanduser() if root is not None else default_root()
    return base / f"{size}-seed{int(seed)}" / "cv-synthetic" / spec.locale


def sentence_id(sentence: str) -> str:
    return hashlib.sha256(sentence.encode("utf-8")).hexdigest()


def clean(value: str) -> str:
    """A field as it is; an error if it holds a tab or a line break (it would break the unquoted TSV)."""
    if "\t" in value or "\n" in value or "\r" in value:
        raise ValueError(f"field contains a tab or line break: {value!r}")
    return value


def write_tsv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    """Unquoted, tab-separated, \\n line ends: exactly how Common Voice writes its TSVs."""
    lines = ["\t".join(header)] + ["\t".join(clean(str(v)) for v in row) for row in rows]
    write_text_atomic(path, "".join(line + "\n" for line in lines))


def clip_row(c: Clip, speakers: list[Speaker], locale: str) -> tuple:
    """A clip TSV row (:data:`TSV_COLUMNS`)."""
    s = speakers[c.speaker]
    return (s.client_id, c.path, sentence_id(c.sentence), c.sentence, "", c.up_votes, c.down_votes,
            s.age, s.gender, "", "", locale, "")


def write_tables(out: Path, locale: str, plan: Plan) -> dict[str, Clip]:
    """Every TSV of the release but clip_durations.tsv; returns each clip once, by file name."""
    for name in CLIP_TSVS:
        write_tsv(out / f"{name}.tsv", TSV_COLUMNS, [clip_row(c, plan.speakers, locale) for c in plan.rows[name]])

    # every clip once (validated repeats train/dev/test rows)
    clips: dict[str, Clip] = {}
    for name in ("validated", "other", "invalidated"):
        for c in plan.rows[name]:
            clips[c.path] = c
    counts_per_sentence: dict[str, int] = {}
    for c in clips.values():
        counts_per_sentence[c.sentence] = counts_per_sentence.get(c.sentence, 0) + 1
    unvalidated = plan.unvalidated
    write_tsv(out / "validated_sentences.tsv",
              ("sentence_id", "sentence", "sentence_domain", "source", "is_used", "clips_count"),
              [(sentence_id(s), s, "", "xlsr-synthetic", 1, n) for s, n in counts_per_sentence.items()]
              + [(sentence_id(s), s, "", "xlsr-synthetic", 0, 0) for s in unvalidated[: len(unvalidated) // 2]])
    write_tsv(out / "unvalidated_sentences.tsv", ("sentence_id", "sentence", "sentence_domain", "source"),
              [(sentence_id(s), s, "", "xlsr-synthetic") for s in unvalidated[len(unvalidated) // 2:]])
    write_tsv(out / "reported.tsv", ("sentence_id", "sentence", "locale", "reason"),
              [(sentence_id(s), s, locale, "grammar-or-spelling") for s in plan.reported])
    return clips


def write_durations(out: Path, durations: dict[str, int]) -> None:
    """clip_durations.tsv: every clip's duration in milliseconds, by file name."""
    write_tsv(out / "clip_durations.tsv", ("clip", "duration[ms]"), [(p, durations[p]) for p in sorted(durations)])
