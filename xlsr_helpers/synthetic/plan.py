"""Speakers and splits: who reads which sentence into which file, decided before any audio is made.

Pure Python and deterministic by seed (one :class:`random.Random` seeded by the generator version, the
locale, the seed and the counts), so the same seed gives the same TSVs byte for byte. What it mimics of
real Common Voice:

- A speaker is a fixed (espeak-ng voice variant, pitch, speed) triple with its own ``client_id``
  (128 hex characters, as in real releases). Speakers are disjoint across train/dev/test, and so are
  sentences (no sentence of test is in train or dev).
- ``validated`` holds every train/dev/test row plus re-recordings of sentences that are already in a
  split (also of dev and test sentences), made by train speakers: Common Voice keeps one recording per
  sentence in its splits, and the rest only in validated. Adding "validated minus test" to training
  without a sentence-level leakage guard therefore leaks test sentences, exactly as with a real release.
- ``other`` (not yet validated) and ``invalidated`` (voted down) come from two extra speakers; an
  invalidated clip does not say its sentence (that is why it was voted down).
- ``age``/``gender`` are often empty, ``gender`` uses the 17+ values (``male_masculine``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from .lexicon import LanguageSpec
from .sentences import SentenceMaker

# Counts per named size. ``speakers`` = (train, dev, test, other+invalidated).
# ``validated_extra`` = re-recordings in validated.tsv only; ``other``/``invalidated`` = rows of those files.
SIZES: dict[str, dict] = {
    "tiny": dict(train=40, dev=12, test=12, validated_extra=6, other=6, invalidated=4, speakers=(4, 2, 2, 2)),
    "demo": dict(train=600, dev=100, test=100, validated_extra=40, other=40, invalidated=20, speakers=(8, 2, 2, 2)),
    "small": dict(train=2400, dev=300, test=300, validated_extra=100, other=100, invalidated=50,
                  speakers=(16, 4, 4, 2)),
}
VERSION = 1  # bump when the generator changes: cached corpora of another version are rebuilt

# espeak-ng voice variants used as speakers ("tr+m3"): male and female ones of the default synthesizer.
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
AGES = ("", "", "teens", "twenties", "twenties", "thirties", "thirties", "fourties", "fifties", "sixties")


def size_counts(size: str) -> dict:
    """The counts of a named size (:data:`SIZES`), every key present; a clear error for an unknown size."""
    if size not in SIZES:
        raise ValueError(f"Unknown synthetic corpus size {size!r}; choose one of {', '.join(SIZES)}.")
    c = dict(SIZES[size])
    c["speakers"] = list(c["speakers"])
    for k in ("train", "dev", "test", "validated_extra", "other", "invalidated"):
        c.setdefault(k, 0)
    return c


@dataclass(frozen=True)
class Speaker:
    client_id: str
    variant: str
    pitch: int
    speed: int
    amplitude: int
    age: str
    gender: str


@dataclass
class Clip:
    path: str
    speaker: int  # index into Plan.speakers
    sentence: str  # as written in the TSVs
    spoken: str  # as given to espeak-ng
    up_votes: int
    down_votes: int
    lead_ms: int  # silence before and after the speech
    trail_ms: int


@dataclass
class Plan:
    """Everything a corpus holds but its audio."""

    speakers: list[Speaker]
    rows: dict[str, list[Clip]]  # per clip TSV (train, dev, test, validated, other, invalidated)
    unvalidated: list[str]  # sentences without a clip
    reported: list[str]  # sentences reported as wrong


def make_speakers(rng: random.Random, counts: tuple[int, int, int, int]) -> list[list[Speaker]]:
    """Speakers of train, dev, test and the extras (other/invalidated); all (variant, pitch, speed) differ.

    Dev and test speakers use voice variants that train also uses (with their own pitch and speed), so
    that a small model can generalise to them."""
    n_train, n_dev, n_test, n_extra = counts
    used: set[tuple[str, int, int]] = set()

    def make(variant: str) -> Speaker:
        while True:
            pitch, speed = rng.randint(25, 75), rng.randint(135, 180)
            if (variant, pitch, speed) not in used:
                used.add((variant, pitch, speed))
                break
        gender = "" if rng.random() < 0.25 else ("female_feminine" if variant.startswith("f") else "male_masculine")
        return Speaker(client_id=f"{rng.getrandbits(512):0128x}", variant=variant, pitch=pitch, speed=speed,
                       amplitude=rng.randint(70, 130), age=rng.choice(AGES), gender=gender)

    pool = list(VARIANTS)
    rng.shuffle(pool)
    train_variants = [pool[i % len(pool)] for i in range(n_train)]
    train = [make(v) for v in train_variants]
    dev = [make(rng.choice(train_variants)) for _ in range(n_dev)]
    test = [make(rng.choice(train_variants)) for _ in range(n_test)]
    extra = [make(rng.choice(pool)) for _ in range(n_extra)]
    return [train, dev, test, extra]


def assign(rng: random.Random, n_rows: int, n_speakers: int) -> list[int]:
    """Speaker index per row: everyone speaks at least once, some more than others (as in CV)."""
    if n_speakers <= 0:
        raise ValueError("a split with rows needs at least one speaker")
    weights = [rng.uniform(0.5, 1.5) for _ in range(n_speakers)]
    order = list(range(min(n_rows, n_speakers))) + rng.choices(range(n_speakers), weights=weights,
                                                               k=max(0, n_rows - n_speakers))
    rng.shuffle(order)
    return order


def plan(spec: LanguageSpec, counts: dict, seed: int) -> Plan:
    """Speakers, the rows of every clip TSV, and the sentences without clips, for one seed."""
    rng = random.Random(f"xlsr-synthetic|v{VERSION}|{spec.locale}|{seed}|{json.dumps(counts, sort_keys=True)}")
    groups = make_speakers(rng, tuple(counts["speakers"]))
    speakers: list[Speaker] = [s for g in groups for s in g]
    offsets = [0, len(groups[0]), len(groups[0]) + len(groups[1]), len(groups[0]) + len(groups[1]) + len(groups[2])]
    maker = SentenceMaker(spec, rng)
    n_total = sum(counts[k] for k in ("train", "dev", "test", "validated_extra", "other", "invalidated"))
    numbers = rng.sample(range(10_000_000, 45_000_000), n_total)
    number_iter = iter(numbers)

    def clip(speaker: int, sentence: str, spoken: str, up: int, down: int) -> Clip:
        return Clip(path=f"common_voice_{spec.locale}_{next(number_iter)}.mp3", speaker=speaker,
                    sentence=sentence, spoken=spoken, up_votes=up, down_votes=down,
                    lead_ms=rng.randint(150, 600), trail_ms=rng.randint(200, 700))

    def votes_valid() -> tuple[int, int]:
        up = rng.choice((2, 2, 2, 3, 3, 4))
        return up, (1 if rng.random() < 0.15 else 0)

    rows: dict[str, list[Clip]] = {}
    for gi, split in enumerate(("train", "dev", "test")):
        who = assign(rng, counts[split], len(groups[gi]))
        rows[split] = []
        for s in who:
            text, say = maker.new()
            rows[split].append(clip(offsets[gi] + s, text, say, *votes_valid()))

    # validated only: re-recordings of split sentences by train speakers (half train, a quarter each dev/test)
    extra = []
    n_extra = counts["validated_extra"]
    sources = (["train"] * (n_extra - 2 * (n_extra // 4)) + ["dev"] * (n_extra // 4) + ["test"] * (n_extra // 4))
    recorded = {(c.speaker, c.sentence) for split in ("train", "dev", "test") for c in rows[split]}
    for split in sources:
        if not rows[split]:
            continue
        orig = rng.choice(rows[split])
        choices = [i for i in range(len(groups[0])) if (i, orig.sentence) not in recorded]
        if not choices:  # every train speaker has read it already: nobody reads a sentence twice
            continue
        who = rng.choice(choices)
        recorded.add((who, orig.sentence))
        extra.append(clip(who, orig.sentence, orig.spoken, *votes_valid()))

    # other.tsv and invalidated.tsv: the extra speakers (or, without any, the first train speaker)
    def extra_speaker() -> int:
        return offsets[3] + rng.randrange(len(groups[3])) if groups[3] else 0

    rows["other"] = []
    for _ in range(counts["other"]):  # not validated yet: fewer than 2 up-votes, not voted down
        text, say = maker.new()
        up = rng.choice((0, 0, 1))
        rows["other"].append(clip(extra_speaker(), text, say, up, 0))
    rows["invalidated"] = []
    for _ in range(counts["invalidated"]):
        text, _say = maker.new()
        _other_text, other_say = maker.new()  # the clip says something else: that is why it was voted down
        s = extra_speaker()
        up = rng.choice((0, 0, 1))
        rows["invalidated"].append(clip(s, text, other_say, up, up + rng.choice((2, 2, 3))))
    validated = rows["train"] + rows["dev"] + rows["test"] + extra
    rng.shuffle(validated)
    rows["validated"] = validated
    for split in ("train", "dev", "test", "other", "invalidated"):
        rng.shuffle(rows[split])
    unvalidated = [maker.new()[0] for _ in range(max(2, counts["other"] // 10))]
    reported = [rng.choice(rows["train"]).sentence] if rows["train"] else []
    return Plan(speakers, rows, unvalidated, reported)
