"""What every source reader yields: one :class:`Row` per clip (with its split), gathered in a :class:`SourceRows`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..arrow_clips import clip_source


@dataclass(slots=True)  # slots and the reader's shortcuts: 90,000 rows built in 0.55 s instead of 0.72 s
class Row:
    id: str  # clip file name (common_voice_tr_12.mp3)
    sentence: str
    speaker: str
    source: str
    split: str  # train | eval | test | validated | other
    # absolute path of the clip, or a reference to its row in datasets' cache (a downloaded hub source:
    # arrow_clips.arrow_reference), or None when the audio is in `data`
    path: str | None = None
    data: bytes | None = None  # audio bytes (a streamed hub source)
    duration: float | None = None  # seconds, when the source says (clip_durations.tsv)
    up_votes: int | None = None
    problem: str | None = None  # a reason from load.REASONS, set by the reader (malformed_row)
    key: str = ""  # sentence_key(sentence), set for every row by read_sources (the guard compares it up to 3 times)

    @property
    def audio_source(self) -> str | bytes | None:
        """What a decoder opens: the bytes (read now from datasets' cache for a reference), or the path."""
        return self.data if self.data is not None else clip_source(self.path)


@dataclass
class SourceRows:
    """What one source yields: rows (with their split) and how they were read."""

    spec: str
    kind: str
    rows: list[Row] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    test_sentences: list[str] = field(default_factory=list)  # test texts not in rows (leakage guard)
    test_ids: set[str] = field(default_factory=set)  # test clip ids not in rows (leakage guard)


def int_or_none(value: str | None) -> int | None:
    """A vote count as the source wrote it (" 2", "", None) as an int, or None."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
