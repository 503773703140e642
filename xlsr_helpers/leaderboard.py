"""The leaderboard: the results of many model cards, one ranked table per language and test set.

The 2021 fine-tuning week scored every uploaded model on the same Common Voice test split and ranked the
models of each language. ``xlsr leaderboard PATH...`` does the same from model cards on disk. A PATH is a
model card (``README.md``, or any Markdown file), a run folder (its ``06_model_card/upload/README.md``),
an upload folder, or any folder of these: every ``README.md`` below it is read.

Reading a card: the YAML header with huggingface_hub's ``metadata_load``, each result of its model-index
with huggingface_hub's own parser (``model_index_to_eval_results``), one result at a time, so that a
malformed result costs only itself. The normalizer is the ``normalizer.json`` beside the card (step 06
puts it in the upload folder). What a result of a card written by others says (its config, split,
decoding, scale, dataset id, language) is ``card_results``'s.

Ranking: one table per language and dataset (type + config). A row is one card's WER and CER on one split
with one decoding: greedy and LM-decoded results are separate rows. Rows are ranked by WER, lowest first,
or by CER for the languages written without spaces between words (``normalize.primary_metric``: zh, ja, th,
...), where a sentence is one "word". Only rows on the table's split get a rank: ``test``, or the most
common split where no row has a test split; a row on a part of a split (step 06's ``test-filtered`` or
``test-held-out``: filters of its own run dropped rows) is never ranked, not even against another such part. The
notes column marks rows on another split, a part of one, or without a split (not ranked), rows without the ranking metric (not ranked), values read from fractions or of unsure scale,
and rows whose normalizer is not the table's most common one, or not stated (ranked, but their numbers are
not strictly comparable).

A card that cannot be read (no YAML header, broken YAML, no model-index, no language, a result without a
dataset, a value that is not a number, ...) never stops the leaderboard: each problem is one line of its
"Skipped cards and problems" section, and the values that could be read still count.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml  # huggingface_hub's YAML parser: its errors are those of a broken card header

from .card_results import (COMMON_VOICE_NO_RELEASE, FRACTION, PARTIAL_SPLIT, TEST_SPLIT, UNSURE, card_languages, dataset_key,
                           decoding, metric_kind, percent, result_config, result_language, result_split, value_scales)
from .config import Config
from .card.names import LANGUAGE_NAMES, language_name
from .card.upload import CARD_FILE, NORMALIZER_FILE
from .files import markdown_table, write_text_atomic
from .normalize import load_normalizer, primary_metric

NOT_STATED = "not stated"
UNRANKED = "–"
MARKDOWN_FILE, CSV_FILE = "leaderboard.md", "leaderboard.csv"
# What huggingface_hub's model-index parser needs in a result, as paths into it.
REQUIRED_FIELDS = (("task", "type"), ("dataset", "type"), ("dataset", "name"), ("metrics",))
CSV_COLUMNS = ["language", "dataset", "config", "ranked_by", "rank", "model", "card", "split", "decoding",
               "wer", "cer", "normalizer", "notes"]


# ------------------------------------------------------------------------------------------------
# What the leaderboard is made of
# ------------------------------------------------------------------------------------------------
@dataclass
class Entry:
    """One row: a card's WER and CER (in %) on one dataset split with one decoding."""

    card: str  # the folder that names the model (run folder, upload folder) or the card file
    model: str  # the model-index name
    language: str
    dataset: str  # the dataset type as card_results.dataset_key reads it (mozilla-foundation/common_voice_17_0)
    config: str  # the dataset config (the Common Voice locale)
    split: str
    decoding: str  # GREEDY or LM
    normalizer: str
    wer: float | None = None
    cer: float | None = None
    ranked_by: str = ""
    rank: int | None = None
    notes: list[str] = field(default_factory=list)
    dataset_written: str = ""  # the dataset type as the card wrote it (common_voice_8_0)
    rankable: bool = True  # False when the card leaves its split or the scale of its ranking metric in doubt

    def note(self, text: str | None) -> None:
        if text and text not in self.notes:
            self.notes.append(text)

    @property
    def table(self) -> tuple[str, str, str]:
        return self.language, self.dataset, self.config


@dataclass
class Problem:
    card: str
    message: str


@dataclass
class Leaderboard:
    entries: list[Entry]
    problems: list[Problem]
    cards: list[str]  # every card read

    @property
    def ranked(self) -> list[Entry]:
        return [e for e in self.entries if e.rank is not None]

    @property
    def skipped(self) -> list[str]:
        """Cards that gave no row."""
        used = {e.card for e in self.entries}
        return [c for c in self.cards if c not in used]

    def tables(self) -> dict[tuple[str, str, str], list[Entry]]:
        """Rows per (language, dataset, config), ranked rows first."""
        tables: dict[tuple[str, str, str], list[Entry]] = {}
        for entry in sorted(self.entries, key=_row_order):
            tables.setdefault(entry.table, []).append(entry)
        return dict(sorted(tables.items()))


def _row_order(entry: Entry) -> tuple:
    value = getattr(entry, entry.ranked_by, None) if entry.ranked_by else None
    return (entry.rank is None, entry.rank or 0, value is None, value or 0.0, entry.card, entry.decoding)


# ------------------------------------------------------------------------------------------------
# Finding the cards
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CardFile:
    path: Path
    label: str  # how the tables name it


def run_card(run_dir: Path) -> Path:
    """Where step 06 writes a run folder's model card."""
    return Config(run_dir=str(run_dir)).upload_dir / CARD_FILE


def model_folder(card: Path) -> Path:
    """What names a card's model: the run folder of a run's card, the folder of another README.md, else
    the card file itself."""
    card = card.resolve()
    for run_dir in card.parents:
        if run_card(run_dir) == card:
            return run_dir
    return card.parent if card.name == CARD_FILE else card


def card_label(card: Path, root: Path) -> str:
    """The model's folder relative to the folder searched (or the working directory)."""
    folder = model_folder(card)
    for base in (root.resolve(), Path.cwd()):
        if folder != base and folder.is_relative_to(base):
            return folder.relative_to(base).as_posix()
    return folder.as_posix()


def find_cards(paths: Iterable[str | Path]) -> tuple[list[CardFile], list[Problem]]:
    """The model cards of the PATHs (each found once), and the PATHs where none is."""
    found: dict[Path, CardFile] = {}
    problems = []
    for given in map(Path, paths):
        if given.is_file():
            cards, root = [given], Path.cwd()
        elif run_card(given).is_file():
            cards, root = [run_card(given)], Path.cwd()
        elif given.is_dir():
            cards = [p for p in sorted(given.rglob(CARD_FILE))
                     if not any(part.startswith(".") for part in p.relative_to(given).parts)]
            root = given
            if not cards:
                problems.append(Problem(str(given), f"no {CARD_FILE} in this folder or below it"))
        else:
            problems.append(Problem(str(given), "no such file or folder"))
            continue
        for card in cards:
            label = card_label(card, root)
            if any(known.label == label for known in found.values()):  # e.g. runs-a/tr and runs-b/tr
                label = model_folder(card).as_posix()
            found.setdefault(card.resolve(), CardFile(card, label))
    return list(found.values()), problems


# ------------------------------------------------------------------------------------------------
# Reading one card
# ------------------------------------------------------------------------------------------------
def normalizer_label(folder: Path) -> tuple[str, str | None]:
    """(how the references were normalized, a problem or None), from the normalizer.json in ``folder``."""
    try:
        normalizer = load_normalizer(folder)
    except FileNotFoundError:
        return NOT_STATED, None
    except (ValueError, KeyError, TypeError) as error:
        return NOT_STATED, f"{NORMALIZER_FILE} beside the card cannot be read ({error})"
    label = normalizer.mode if normalizer.mode == "seed_regex" else f"profile {normalizer.profile_name}"
    if normalizer.chars_to_ignore:
        label += f", ignore {normalizer.chars_to_ignore}"
    if normalizer.keep_chars:
        label += f", keep {normalizer.keep_chars}"
    return label, None


def result_problem(result: Any) -> str | None:
    """What keeps huggingface_hub's parser from reading one model-index result, in words, or None."""
    if not isinstance(result, dict):
        return "is not a mapping"
    missing = []
    for path in REQUIRED_FIELDS:
        value = result
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value in (None, "", [], {}):
            missing.append(".".join(path))
    if missing:
        return f"has no {', '.join(missing)}"
    if not isinstance(result["metrics"], list) or not all(isinstance(m, dict) for m in result["metrics"]):
        return "has metrics that are not a list of {type, value}"
    return None


def read_header(path: Path) -> tuple[dict | None, str | None]:
    """(the card's YAML header, None), or (None, why it cannot be used)."""
    from huggingface_hub import metadata_load

    try:
        header = metadata_load(path)
    except (OSError, UnicodeDecodeError) as error:
        return None, f"cannot be read ({error})"
    except (yaml.YAMLError, ValueError) as error:
        first_line = (str(error).splitlines() or [type(error).__name__])[0]
        return None, f"the YAML header is broken ({first_line})"
    if header is None:
        return None, "no YAML header (a block between --- lines at the top of the card)"
    if not header.get("model-index"):
        return None, "no model-index in the YAML header (the card states no results)"
    if not isinstance(header["model-index"], list):
        return None, "the model-index is not a list"
    return header, None


def parse_results(model_index: list, default_name: str) -> tuple[list[tuple[str, str, Any]], list[str]]:
    """([(where, model name, EvalResult), ...], problems): every metric of the model-index, each result
    parsed alone by huggingface_hub (``where`` names the result in problem messages)."""
    from huggingface_hub.repocard_data import model_index_to_eval_results

    metrics, problems = [], []
    for item_number, item in enumerate(model_index, 1):
        if not isinstance(item, dict) or not isinstance(item.get("results"), list):
            problems.append(f"model-index item {item_number} has no list of results")
            continue
        name = str(item.get("name") or default_name)
        for number, result in enumerate(item["results"], 1):
            where = f"result {number}" + (f" of model-index item {item_number}" if len(model_index) > 1 else "")
            wrong = result_problem(result)
            if wrong:
                problems.append(f"{where} {wrong}: left out")
                continue
            try:
                _, parsed = model_index_to_eval_results([{"name": name, "results": [result]}])
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                problems.append(f"{where} cannot be parsed ({type(error).__name__}: {error}): left out")
                continue
            metrics += [(where, name, metric) for metric in parsed]
    return metrics, problems


def read_card(card: CardFile) -> tuple[list[Entry], list[Problem]]:
    """The rows of one card, and every problem met on the way (never an exception)."""
    header, wrong = read_header(card.path)
    languages, wrong = card_languages(header.get("language")) if header else (None, wrong)
    if languages is None:
        return [], [Problem(card.label, f"{wrong}: card skipped")]
    normalizer, wrong = normalizer_label(card.path.parent)
    metrics, messages = parse_results(header["model-index"], card.label)
    messages = ([wrong] if wrong else []) + messages
    rows: dict[tuple, Entry] = {}
    readings = []  # (where, row, kind, value as written, written with "%"): the scale is the card's
    for where, name, metric in metrics:
        kind = metric_kind(metric)
        value, wrong = percent(metric.metric_value) if kind else (None, None)
        if wrong:
            messages.append(f"{where}, {kind.upper()}: {wrong}" + ("" if value is not None else ": left out"))
        if value is None:
            continue
        config = result_config(metric)
        language, language_note = result_language(languages, config)
        if language is None:
            if f"{where}: {language_note}" not in messages:  # once per result, not once per metric
                messages.append(f"{where}: {language_note}")
            continue
        split, split_note, split_in_doubt = result_split(metric)
        row = Entry(card=card.label, model=name, language=language, dataset=dataset_key(str(metric.dataset_type)),
                    config=config, split=split, decoding=decoding(metric), normalizer=normalizer,
                    dataset_written=str(metric.dataset_type).strip())
        row = rows.setdefault((row.model, row.language, row.dataset, row.config, row.split, row.decoding), row)
        row.note(language_note)
        row.note(split_note)
        row.rankable &= not split_in_doubt
        readings.append((where, row, kind, value, str(metric.metric_value).strip().endswith("%")))
    scales = value_scales([(kind, value, sign) for _, _, kind, value, sign in readings], normalizer != NOT_STATED)
    for (where, row, kind, value, _), scale in zip(readings, scales):
        if getattr(row, kind) is not None:
            messages.append(f"{where}: a second {kind.upper()} for {row.dataset} {row.split or '(no split)'} "
                            f"({row.decoding}): the first, {getattr(row, kind):g}, is kept")
            continue
        setattr(row, kind, read_value(row, kind, value, scale))
    if not rows:
        messages.append("no WER or CER could be read from the model-index: card skipped")
    return list(rows.values()), [Problem(card.label, message) for message in messages]


def read_value(row: Entry, kind: str, value: float, scale: str) -> float:
    """The value in %, with a note on the row when it was a fraction or its scale is unsure (then, for the
    language's ranking metric, the row is not ranked)."""
    if scale == FRACTION:
        row.note(f"{kind.upper()} {value:g} read as a fraction: {round(100 * value, 6):g} %")
        return round(100 * value, 6)
    if scale == UNSURE:
        ranked_by = kind == primary_metric(row.language)
        row.note(f"{kind.upper()} {value:g}: a percent, or a fraction ({round(100 * value, 6):g} %)?"
                 + (" not ranked" if ranked_by else ""))
        row.rankable &= not ranked_by
    return value


# ------------------------------------------------------------------------------------------------
# Ranking
# ------------------------------------------------------------------------------------------------
def table_split(rows: list[Entry]) -> str:
    """``test`` when a row has it (or no row states a split), else the most common split; never a part of a split
    (``test-filtered``, ``test-held-out``: each card's own subset)."""
    splits = [r.split for r in rows if r.split and not PARTIAL_SPLIT.search(r.split)]
    if not splits or TEST_SPLIT in splits:
        return TEST_SPLIT
    return Counter(splits).most_common(1)[0][0]


def table_normalizer(rows: list[Entry]) -> str | None:
    """The most common normalizer stated by the rows, or None."""
    stated = [r.normalizer for r in rows if r.normalizer != NOT_STATED]
    return Counter(stated).most_common(1)[0][0] if stated else None


def rank_table(rows: list[Entry]) -> None:
    """Rank one table's rows in place (equal values share a rank) and write their notes."""
    metric = primary_metric(rows[0].language)
    split, normalizer = table_split(rows), table_normalizer(rows)
    rankable = []
    for row in rows:
        row.ranked_by = metric
        if not row.split:
            row.notes.append("no split stated: not ranked")
        elif PARTIAL_SPLIT.search(row.split):
            row.notes.append(f"scored on {row.split!r}, a part of the split that only this card's run made (filters "
                             "or a held-out share, in the card's dataset args): not ranked")
        elif row.split != split:
            row.notes.append(f"scored on the {row.split!r} split, not {split!r}: not ranked")
        elif split != TEST_SPLIT:
            row.notes.append(f"no row of this table has a test split: ranked on {split!r}")
        if getattr(row, metric) is None:
            row.notes.append(f"no {metric.upper()} (this language is ranked by {metric.upper()}): not ranked")
        if normalizer and row.normalizer == NOT_STATED:
            row.notes.append(f"normalizer not stated (most rows: {normalizer})")
        elif normalizer and row.normalizer != normalizer:
            row.notes.append(f"another normalizer (most rows: {normalizer})")
        if row.rankable and row.split == split and getattr(row, metric) is not None:
            rankable.append(row)
    values = [getattr(r, metric) for r in rankable]
    for row in rankable:
        row.rank = 1 + sum(v < getattr(row, metric) for v in values)


def build_leaderboard(paths: Iterable[str | Path]) -> Leaderboard:
    """Read every card of the PATHs and rank their rows."""
    cards, problems = find_cards(paths)
    entries: list[Entry] = []
    for card in cards:
        rows, card_problems = read_card(card)
        entries += rows
        problems += card_problems
    board = Leaderboard(entries, problems, [c.label for c in cards])
    for rows in board.tables().values():
        rank_table(rows)
    return board


# ------------------------------------------------------------------------------------------------
# Markdown and CSV
# ------------------------------------------------------------------------------------------------
def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def dataset_remark(dataset: str, rows: list[Entry]) -> list[str]:
    """What the table's heading does not say about its dataset (the ids read as it, a release not stated), as
    a paragraph's lines, or none."""
    remark = []
    written = sorted({row.dataset_written for row in rows} - {dataset})
    if written:
        remark.append(f"Dataset ids read as {dataset}: {', '.join(written)}.")
    if dataset == COMMON_VOICE_NO_RELEASE:
        remark.append("Common Voice, release not stated (the 2021 week's `common_voice` loader read release 6.1): "
                      "releases have different test splits, so this table is apart from those of numbered releases.")
    return [" ".join(remark), ""] if remark else []


def to_markdown(board: Leaderboard) -> str:
    tables = board.tables()
    lines = ["# Leaderboard", "",
             f"Model cards read: {len(board.cards)}. Results: {len(board.entries)} in {len(tables)} tables, "
             f"{len(board.ranked)} ranked. Cards skipped: {len(board.skipped)}. Problems: {len(board.problems)}.", ""]
    for (language, dataset, config), rows in tables.items():
        metric = rows[0].ranked_by.upper()
        name = LANGUAGE_NAMES.get(config) or language_name(language)
        lines += [f"## {language} ({name}) — {dataset}" + (f", {config}" if config else ""), "",
                  *dataset_remark(dataset, rows),
                  f"Ranked by {metric}, lowest first (values in %).", ""]
        lines.append(markdown_table([{"rank": row.rank or UNRANKED, "model": row.model, "card": row.card,
                                      "split": row.split, "decoding": row.decoding, "WER": _number(row.wer),
                                      "CER": _number(row.cer), "normalizer": row.normalizer,
                                      "notes": "; ".join(row.notes)} for row in rows]))
    lines += ["## Skipped cards and problems", "",
              markdown_table([{"card": p.card, "problem": p.message} for p in board.problems], ["card", "problem"])]
    return "\n".join(lines)


def write_csv(board: Leaderboard, path: str | Path) -> Path:
    """The rows of every table as CSV (written atomically)."""
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for rows in board.tables().values():
        for row in rows:
            writer.writerow({"language": row.language, "dataset": row.dataset, "config": row.config,
                             "ranked_by": row.ranked_by, "rank": row.rank or "", "model": row.model,
                             "card": row.card, "split": row.split, "decoding": row.decoding,
                             "wer": "" if row.wer is None else row.wer, "cer": "" if row.cer is None else row.cer,
                             "normalizer": row.normalizer, "notes": "; ".join(row.notes)})
    return write_text_atomic(path, handle.getvalue())


def write_outputs(board: Leaderboard, out: str | Path | None = None, markdown: str | Path | None = None,
                  csv_file: str | Path | None = None) -> tuple[str, list[Path]]:
    """The Markdown text, and the files written: ``out/leaderboard.md`` and ``out/leaderboard.csv``, or
    ``markdown`` and ``csv_file``."""
    if out:
        markdown, csv_file = Path(out) / MARKDOWN_FILE, Path(out) / CSV_FILE
    text = to_markdown(board)
    written = []
    if markdown:
        written.append(write_text_atomic(markdown, text))
    if csv_file:
        written.append(write_csv(board, csv_file))
    return text, written
