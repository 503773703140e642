"""What the card may say about its splits: only what steps 01-05 measured.

- The speakers that splits share: step 01's leakage report counts them (``speaker_overlap_*``), and says whether
  KEEP_TEST_SPEAKERS_IN_TRAIN let validated/other clips of test speakers into training. The card's sentence is
  written from those counts, never assumed.
- Whether the test split is the source's whole test split: step 01's ``test_split`` (rows in the source, rows
  dropped by the filters, not sampled, not read), the rows step 02 dropped (emptied by normalization), and the
  utterances step 05 scored. A test split that lost rows is named ``test-filtered`` in the model-index, one held
  out from the training rows (a source without a test split) ``test-held-out``, the test split of the Mozilla
  Data Collective's sample of a release (MDC_SAMPLE) ``test-sample``, each with what made it in the result's
  dataset ``args``: a result on it cannot be mistaken for one on the standard ``test`` split, and the
  leaderboard does not rank it with those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Config

WHOLE_SPLIT, FILTERED_SPLIT, HELD_OUT_SPLIT, SAMPLE_SPLIT = "test", "test-filtered", "test-held-out", "test-sample"
# What step 01's reasons mean, with the parameter behind each, for the card's sentence (others: the reason's name).
LOST_BECAUSE = {
    "too_short": ("shorter than MIN_DURATION_S", "min_duration_s"),
    "too_long": ("longer than MAX_DURATION_S", "max_duration_s"),
    "votes": ("fewer up-votes than MIN_UP_VOTES", "min_up_votes"),
    "not_sampled": ("left out by MAX_SAMPLES_PER_SPLIT", "max_samples_per_split"),
    "not_read": ("not read (MAX_SAMPLES_PER_SPLIT read only part of the source's test split)", "max_samples_per_split"),
    "missing_clip": ("audio file not found", None),
    "undecodable": ("audio not decodable", None),
    "empty_sentence": ("empty sentence", None),
    "duplicate": ("listed twice", None),
    "malformed_row": ("malformed TSV row", None),
    "emptied_by_normalization": ("sentence empty after normalization (step 02)", None),
    "not_scored": ("not scored by step 05", None),
}


@dataclass
class ScoredSplit:
    """The test split the card's numbers are on: its model-index ``split`` and ``args``, and what was lost."""

    split: str  # WHOLE_SPLIT, FILTERED_SPLIT, HELD_OUT_SPLIT or SAMPLE_SPLIT
    rows_in_source: int | None  # None when step 01's report predates the count
    scored: int | None
    lost: dict[str, int] = field(default_factory=dict)  # reason -> rows
    args: dict[str, Any] | None = None  # the model-index result's dataset args (None for the whole split)
    held_out: dict[str, Any] | None = None  # step 01's held_out.test: rows, by, fraction
    sample: bool = False  # the data is the Collective's sample of the release the card names (MDC_SAMPLE)

    @property
    def whole(self) -> bool:
        return self.split == WHOLE_SPLIT


def scored_split(load_report: dict, normalize_report: dict, metrics: dict, data: Config) -> ScoredSplit:
    """The test split of a run, from the reports of steps 01, 02 and 05 (``data``: step 01's parameters)."""
    record = load_report.get("test_split") or {}
    lost: dict[str, int] = dict(record.get("dropped") or load_report.get("dropped", {}).get("test", {}))
    lost["not_sampled"] = record.get("not_sampled", load_report.get("not_sampled", {}).get("test", 0))
    lost["not_read"] = record.get("not_read", 0)
    normalized = normalize_report.get("splits", {}).get("test", {})
    lost["emptied_by_normalization"] = normalized.get("emptied", 0)
    scored = metrics.get("n") if isinstance(metrics.get("n"), int) else None
    after_02 = normalized.get("rows_out", record.get("rows"))
    if scored is not None and after_02 is not None and scored < after_02:
        lost["not_scored"] = after_02 - scored
    lost = {reason: n for reason, n in lost.items() if n}
    held_out = load_report.get("held_out", {}).get("test") or None
    rows_in_source = record.get("rows_in_source")
    sample = bool(data.mdc_sample) and any(p.strip().startswith("mdc:") for p in data.data_source.split("+"))
    if held_out is None and not lost and not sample:
        return ScoredSplit(WHOLE_SPLIT, rows_in_source, scored)
    args: dict[str, Any] = {"rows_scored": scored}
    if sample:
        args["mdc_sample"] = True
    if rows_in_source is not None:
        args["rows_in_split"] = rows_in_source
    if held_out:
        args.update({"held_out_from": "train", "by": held_out.get("by"), "fraction": held_out.get("fraction"),
                     "seed": data.seed})
    if lost:
        args["rows_lost"] = lost
        args.update(filter_arguments(lost, data))
    split = HELD_OUT_SPLIT if held_out else SAMPLE_SPLIT if sample else FILTERED_SPLIT
    return ScoredSplit(split, rows_in_source, scored, lost, args, held_out, sample)


def filter_arguments(lost: dict[str, int], data: Config) -> dict[str, Any]:
    """The parameters behind the rows lost (always both duration limits: they decide what a clip may be)."""
    names = {"min_duration_s", "max_duration_s"} | {LOST_BECAUSE[r][1] for r in lost if LOST_BECAUSE.get(r, (0, None))[1]}
    return {name: getattr(data, name) for name in ("min_duration_s", "max_duration_s", "min_up_votes",
                                                   "max_samples_per_split") if name in names}


def scored_split_text(split: ScoredSplit, data: Config) -> str:
    """A paragraph on what the test split is: the whole split of the source, or which part of it and why."""
    scored = "?" if split.scored is None else f"{split.scored:,}"
    if split.whole:
        if split.rows_in_source is None:
            return ""
        return (f"The test split is the source's whole test split: all of its {split.rows_in_source:,} rows were "
                "scored.")
    parts = []
    if split.sample:
        parts.append("The data is the Mozilla Data Collective's **sample** of the release (`MDC_SAMPLE = True`), not "
                     "the release itself: its test split is a few of the release's test clips.")
    if split.held_out:
        h = split.held_out
        parts.append(f"The source has no test split: this one was **held out from its training rows** ({h.get('rows')} "
                     f"rows, {100 * float(h.get('fraction') or 0):g} % by {h.get('by')}, SEED {data.seed}).")
    if split.lost:
        of = f" of its {split.rows_in_source:,} rows" if split.rows_in_source is not None else ""
        reasons = ", ".join(f"{n:,} {_because(reason, data)}" for reason, n in split.lost.items())
        parts.append(f"The test split is **not the source's whole test split**:{of} {scored} were scored; the others "
                     f"were lost to the filters ({reasons}).")
    parts.append(f"Its numbers cannot be compared with results on the whole test split: the model-index names it "
                 f"`{split.split}`, with what made it in its `args`.")
    return " ".join(parts)


def _because(reason: str, data: Config) -> str:
    meaning, parameter = LOST_BECAUSE.get(reason, (reason.replace("_", " "), None))
    if parameter and getattr(data, parameter, None) not in (None, 0, 0.0):
        value = getattr(data, parameter)
        return f"{meaning} {value}" + (" s" if parameter.endswith("_s") else "")
    return meaning


# ------------------------------------------------------------------------------------------------
# speakers
# ------------------------------------------------------------------------------------------------
def speakers_text(load_report: dict) -> str:
    """What the splits share, as step 01 measured it: speakers, and (none of) the test clips and sentences."""
    leak = load_report.get("leakage") or {}
    if "speaker_overlap_train_test" not in leak:
        return "Step 01's report does not say which speakers the splits share."
    counts = leak.get("speakers") or {}
    train_test, eval_test = leak["speaker_overlap_train_test"], leak.get("speaker_overlap_eval_test", 0)
    train_eval = leak.get("speaker_overlap_train_eval", 0)
    if counts and not counts.get("test"):
        text = ("The source names no speaker for the test clips, so whether their voices are also in train or eval "
                "is not known.")
    elif train_test == 0 and eval_test == 0:
        measured = (f": {counts.get('train', 0):,} train, {counts.get('eval', 0):,} eval and {counts.get('test', 0):,} "
                    "test speakers") if counts else ""
        text = f"Test shares no speaker with train or eval, as step 01 measured{measured}"
        text += "." if not train_eval else f"; train and eval share {train_eval:,}."
    else:
        text = (f"**Test shares speakers with the other splits**: {train_test:,} with train, {eval_test:,} with eval "
                "(measured in step 01). The model has heard these voices in training, so the test WER is optimistic "
                "for their clips.")
        text += (" `KEEP_TEST_SPEAKERS_IN_TRAIN = True` kept the validated/other clips of test and eval speakers in "
                 "training." if leak.get("test_speakers_kept_in_train") else " The source's own splits share them.")
    kept_out = leak.get("removed_test_speaker_rows", 0), leak.get("removed_eval_speaker_rows", 0)
    if any(kept_out):
        text += (f" {kept_out[0]:,} validated/other clips of test speakers and {kept_out[1]:,} of eval speakers were "
                 "kept out of training.")
    clips, sentences = leak.get("test_clips_in_train_or_eval", 0), leak.get("test_sentences_in_train_or_eval", 0)
    if clips or sentences:
        return text + f" **{clips} test clips and {sentences} test sentences are in train or eval.**"
    return text + (" No test clip or test sentence is in train or eval (checked in step 01 and again after "
                   "normalization).")


def speakers_phrase(load_report: dict) -> str:
    """The same in a few words, for the limitations: "shares no speaker with training", ..."""
    leak = load_report.get("leakage") or {}
    if "speaker_overlap_train_test" not in leak:
        return "whether it shares speakers with training is not recorded"
    if leak.get("speakers") and not leak["speakers"].get("test"):
        return "its speakers are not named, so whether training heard them is not known"
    shared = leak["speaker_overlap_train_test"]
    return "it shares no speaker with training" if not shared else \
        f"it shares {shared:,} speakers with training (its WER is optimistic for them)"
