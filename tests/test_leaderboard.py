"""xlsr leaderboard (xlsr_helpers.leaderboard, card_results): model cards ranked per language and test set.

The cards are the project's own (card.text.build_card on a RunInfo, no training, as in
test_model_card.test_card_for_a_real_checkpoint_names_its_base_model), saved as step 06 saves them (upload
folder with normalizer.json), for Turkish, German and Chinese (ranked by CER), plus hand-written cards with
missing or malformed fields, plus the cards of tests/data/hub_cards: written here in the styles of the Hub
cards of the 2021 fine-tuning week (``common_voice``, ``args: tr``, "Test WER", no split), the 2022
robust-speech event (``mozilla-foundation/common_voice_8_0`` or ``common_voice_8_0``, "Test WER (+LM)",
"(without LM)", a ``language:`` list) and the Whisper event (``mozilla-foundation/common_voice_11_0``, split
test, "Wer" as a percent or a fraction).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from xlsr_helpers import card_results as cr
from xlsr_helpers import leaderboard as lb
from xlsr_helpers.card.run_info import RunInfo
from xlsr_helpers.card.text import build_card, write_card
from xlsr_helpers.card.upload import CARD_FILE, NORMALIZER_FILE
from xlsr_helpers.cli import main
from xlsr_helpers.config import Config
from xlsr_helpers.normalize import Normalizer, primary_metric

XLSR_53, XLS_R_300M, XLS_R_1B, MMS_300M = ("facebook/wav2vec2-large-xlsr-53", "facebook/wav2vec2-xls-r-300m",
                                            "facebook/wav2vec2-xls-r-1b", "facebook/mms-300m")
CV_17 = "mozilla-foundation/common_voice_17_0"
PROBLEMS = 14  # see test_malformed_cards_are_skipped_with_a_note_each


def project_card(run_dir: Path, language: str, model: str, wer: float, cer: float, *, split: str = "test",
                 normalizer: str = "profile", lm: tuple[float, float] | None = None) -> Path:
    """A run folder with step 06's card and normalizer.json (WER/CER as fractions, like metrics.json)."""
    from huggingface_hub import EvalResult

    cfg = Config(language=language, model=model, run_dir=str(run_dir), normalizer=normalizer,
                 data_source=f"common_voice:/data/cv-corpus-17.0-2024-03-15/{language}")
    card = build_card(RunInfo(cfg=cfg, metrics={"wer": wer, "cer": cer, "n": 500}), f"ada/{run_dir.name}")
    for result in card.data.eval_results:
        result.dataset_split = split
    if lm:  # the LM-decoded results as separate, labelled entries of the same dataset and split
        greedy = card.data.eval_results[0]
        card.data.eval_results += [
            EvalResult(task_type=greedy.task_type, dataset_type=greedy.dataset_type, dataset_name=greedy.dataset_name,
                       dataset_config=greedy.dataset_config, dataset_split=split, metric_type=key,
                       metric_name=f"Test {key.upper()} (with LM)", metric_value=round(100 * value, 2))
            for key, value in zip(("wer", "cer"), lm)]
    cfg.upload_dir.mkdir(parents=True)
    write_card(card, cfg.upload_dir)
    Normalizer(language, normalizer).save(cfg.upload_dir)
    return run_dir


def handwritten(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / CARD_FILE).write_text(text, encoding="utf-8")
    return folder


def result_yaml(value: str, split: str = "test", dataset: str = CV_17, config: str = "tr", metric: str = "wer") -> str:
    return f"""
  - task: {{type: automatic-speech-recognition}}
    dataset: {{name: Common Voice tr, type: {dataset}{f', config: {config}' if config else ''}\
{f', split: {split}' if split else ''}}}
    metrics:
    - {{type: {metric}, name: Test {metric.upper()}, value: {value}}}"""


def card_yaml(language: str, *results: str, name: str = "hand-written") -> str:
    return f"---\nlanguage: {language}\nmodel-index:\n- name: {name}\n  results:{''.join(results)}\n---\n# Card\n"


# Hand-written cards: folder name -> (card text, what its problem line must say).
MALFORMED = {
    "no-header": ("# My Turkish model\n\nTest WER: 12 %\n", "no YAML header"),
    "broken-yaml": ("---\nlanguage: [tr\nmodel-index: : :\n---\n", "YAML header is broken"),
    "no-model-index": ("---\nlanguage: tr\nlicense: apache-2.0\n---\n# Card\n", "no model-index"),
    "no-dataset": ("---\nlanguage: tr\nmodel-index:\n- name: x\n  results:\n  - task: {type: automatic-speech-recognition}\n"
                   "    metrics: [{type: wer, value: 10.0}]\n---\n", "has no dataset.type, dataset.name"),
    "unknown-language": (card_yaml("Klingon", result_yaml("11.0")), "'Klingon' is not a language code"),
    "no-language": (card_yaml("", result_yaml("11.0")), "no language"),
    "metrics-not-a-list": (card_yaml("tr", result_yaml("11.0")).replace("metrics:\n    - ", "metrics: "),
                           "has metrics that are not a list"),
    "value-not-a-number": (card_yaml("tr", result_yaml("n/a")), "'n/a' is not a number"),
    "only-accuracy": (card_yaml("tr", result_yaml("0.9", metric="accuracy")), "no WER or CER"),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("leaderboard")
    runs, cards = root / "runs", root / "cards"
    project_card(runs / "tr-xlsr53", "tr", XLSR_53, 0.2512, 0.0712, lm=(0.1805, 0.0610))
    project_card(runs / "tr-xls-r-300m", "tr", XLS_R_300M, 0.2210, 0.0650)
    project_card(runs / "tr-mms-300m", "tr", MMS_300M, 0.3120, 0.0910, normalizer="seed_regex")
    project_card(runs / "tr-xls-r-1b-dev", "tr", XLS_R_1B, 0.1500, 0.0400, split="validation")
    project_card(runs / "de-xlsr53", "de", XLSR_53, 0.1500, 0.0500)
    project_card(runs / "de-xls-r-300m", "de", XLS_R_300M, 0.1200, 0.0450)
    # Chinese: the CER order is not the WER order.
    project_card(runs / "zh-xlsr53", "zh-CN", XLSR_53, 0.9500, 0.2410)
    project_card(runs / "zh-xls-r-300m", "zh-CN", XLS_R_300M, 0.9000, 0.2890)
    project_card(runs / "zh-mms-300m", "zh-CN", MMS_300M, 0.9900, 0.1980)
    # Hand-written: a 2021-style value as text, joining the Turkish table; a card with one good and one bad result;
    # a 2021-style card without a split (its metric is named "Test WER"), on another dataset.
    handwritten(cards / "tr-percent", card_yaml("tr", result_yaml('"27.5%"'), name="wav2vec2-turkish-2021"))
    handwritten(cards / "tr-partly-bad", card_yaml("tr", result_yaml("40.0"), result_yaml("n/a", metric="cer"),
                                                   name="partly-bad"))
    handwritten(cards / "tr-no-split", card_yaml("tr", result_yaml("30.1", split="", dataset="common_voice"),
                                                 name="no-split"))
    for name, (text, _) in MALFORMED.items():
        handwritten(cards / name, text)
    return {"root": root, "runs": runs, "cards": cards}


@pytest.fixture(scope="module")
def board(folders) -> lb.Leaderboard:
    return lb.build_leaderboard([folders["runs"], folders["cards"]])


def _table(board: lb.Leaderboard, language: str, dataset: str = CV_17) -> list[lb.Entry]:
    return [rows for key, rows in board.tables().items() if key[:2] == (language, dataset)][0]


def _order(rows: list[lb.Entry]) -> list[tuple]:
    return [(row.rank, row.card, row.decoding) for row in rows]


def test_turkish_is_ranked_by_wer_with_each_decoding_its_own_row(board):
    rows = _table(board, "tr")
    assert {row.ranked_by for row in rows} == {"wer"}
    assert _order(rows) == [
        (1, "tr-xlsr53", "LM"), (2, "tr-xls-r-300m", "greedy"), (3, "tr-xlsr53", "greedy"),
        (4, "tr-percent", "greedy"), (5, "tr-mms-300m", "greedy"), (6, "tr-partly-bad", "greedy"),
        (None, "tr-xls-r-1b-dev", "greedy"),
    ]
    lm, greedy = rows[0], rows[2]
    assert (lm.wer, lm.cer, greedy.wer, greedy.cer) == (18.05, 6.1, 25.12, 7.12)
    assert lm.model == greedy.model == "wav2vec2-large-xlsr Turkish"
    assert rows[3].wer == 27.5 and rows[3].model == "wav2vec2-turkish-2021"


def test_german_table_is_separate_and_ranked_by_wer(board):
    rows = _table(board, "de")
    assert _order(rows) == [(1, "de-xls-r-300m", "greedy"), (2, "de-xlsr53", "greedy")]
    assert [row.wer for row in rows] == [12.0, 15.0] and not any(row.notes for row in rows)


def test_chinese_is_ranked_by_cer(board):
    assert primary_metric("zh") == primary_metric("ja") == primary_metric("my") == "cer"
    assert primary_metric("tr") == primary_metric("de") == "wer"
    rows = _table(board, "zh")
    assert rows[0].config == "zh-CN" and {row.ranked_by for row in rows} == {"cer"}
    assert _order(rows) == [(1, "zh-mms-300m", "greedy"), (2, "zh-xlsr53", "greedy"), (3, "zh-xls-r-300m", "greedy")]
    assert [row.wer for row in rows] == [99.0, 95.0, 90.0], "by WER the order would be the reverse"


def test_notes_mark_another_split_another_normalizer_and_none_stated(board):
    notes = {(row.card, row.decoding): row.notes for row in _table(board, "tr")}
    assert notes["tr-xls-r-1b-dev", "greedy"] == ["scored on the 'validation' split, not 'test': not ranked"]
    assert notes["tr-mms-300m", "greedy"] == ["another normalizer (most rows: profile tr)"]
    assert notes["tr-percent", "greedy"] == ["normalizer not stated (most rows: profile tr)"]
    assert notes["tr-xlsr53", "LM"] == notes["tr-xls-r-300m", "greedy"] == []
    assert {row.normalizer for row in _table(board, "tr") if row.card.startswith("tr-x")} == {"profile tr"}
    (no_split,) = _table(board, "tr", "common_voice")
    assert no_split.rank == 1 and no_split.notes == [cr.SPLIT_FROM_NAME] and no_split.wer == 30.1
    assert no_split.split == "test", "the split of a card that states none is the one its metric name says"


def test_malformed_cards_are_skipped_with_a_note_each(board):
    problems = {}
    for problem in board.problems:
        problems.setdefault(problem.card, []).append(problem.message)
    for name, (_, expected) in MALFORMED.items():
        assert any(expected in message for message in problems[name]), (name, problems.get(name))
        assert problems[name][-1].endswith("card skipped")
    assert sorted(board.skipped) == sorted(MALFORMED)
    assert problems["tr-percent"] == ["result 1, WER: value written as text '27.5%', read as 27.5"]
    assert problems["tr-partly-bad"] == ["result 2, CER: value 'n/a' is not a number: left out"]
    assert len(board.cards) == 9 + 3 + len(MALFORMED)
    # one "card skipped" line per malformed card, a line before it for the three whose results were read one by
    # one (no-dataset, metrics-not-a-list, value-not-a-number), a line each for tr-percent and tr-partly-bad
    assert len(board.problems) == len(MALFORMED) + 3 + 2 == PROBLEMS
    # "no WER or CER" follows the per-result problem of the card whose only value is not a number
    assert problems["value-not-a-number"][0] == "result 1, WER: value 'n/a' is not a number: left out"


def test_markdown_has_the_tables_the_counts_and_the_problems(board):
    text = lb.to_markdown(board)
    assert text.startswith("# Leaderboard\n")
    assert (f"Model cards read: 21. Results: 13 in 4 tables, 12 ranked. Cards skipped: {len(MALFORMED)}. "
            f"Problems: {PROBLEMS}.") in text
    assert f"## zh (Chinese (China)) — {CV_17}, zh-CN" in text and "Ranked by CER" in text.split("## zh")[1]
    assert "| 1 | wav2vec2-large-xlsr Turkish | tr-xlsr53 | test | LM | 18.05 | 6.10 | profile tr |  |" in text
    assert "| – | wav2vec2-xls-r-1b Turkish | tr-xls-r-1b-dev | validation | greedy | 15.00 | 4.00 |" in text
    problems = text.split("## Skipped cards and problems")[1]
    assert "| broken-yaml | the YAML header is broken" in problems and problems.count("card skipped") == len(MALFORMED)


def test_csv_has_one_line_per_row(board, tmp_path):
    text, written = lb.write_outputs(board, out=tmp_path / "out")
    assert written == [tmp_path / "out" / lb.MARKDOWN_FILE, tmp_path / "out" / lb.CSV_FILE]
    assert written[0].read_text(encoding="utf-8") == text
    with written[1].open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == lb.CSV_COLUMNS
        lines = list(reader)
    assert len(lines) == len(board.entries) == 7 + 2 + 3 + 1  # tr, de, zh, tr on common_voice
    zh = [line for line in lines if line["language"] == "zh"]
    assert [(line["rank"], line["card"], line["cer"], line["ranked_by"]) for line in zh] == [
        ("1", "zh-mms-300m", "19.8", "cer"), ("2", "zh-xlsr53", "24.1", "cer"), ("3", "zh-xls-r-300m", "28.9", "cer")]
    dev = [line for line in lines if line["card"] == "tr-xls-r-1b-dev"][0]
    assert dev["rank"] == "" and dev["split"] == "validation" and "not ranked" in dev["notes"]
    lm = [line for line in lines if line["decoding"] == "LM"]
    assert [(line["card"], line["wer"], line["config"], line["dataset"]) for line in lm] == [
        ("tr-xlsr53", "18.05", "tr", CV_17)]


def test_a_run_folder_an_upload_folder_and_a_card_file_are_each_one_card(folders, tmp_path):
    runs = folders["runs"]
    upload = Config(run_dir=str(runs / "de-xlsr53")).upload_dir
    card_file = Config(run_dir=str(runs / "zh-xlsr53")).upload_dir / CARD_FILE
    cards, problems = lb.find_cards([runs / "tr-xlsr53", upload, card_file, runs / "tr-xlsr53", runs / "absent"])
    assert [card.path.resolve() for card in cards] == [
        (runs / "tr-xlsr53").resolve() / "06_model_card" / "upload" / "README.md", (upload / "README.md").resolve(),
        card_file.resolve()]
    assert [Path(card.label).name for card in cards] == ["tr-xlsr53", "de-xlsr53", "zh-xlsr53"]
    assert [(p.card, p.message) for p in problems] == [(str(runs / "absent"), "no such file or folder")]
    other = project_card(tmp_path / "other-runs" / "tr-xlsr53", "tr", XLSR_53, 0.5, 0.2).parent
    labels = [card.label for card in lb.find_cards([runs, other])[0] if card.path.parent.parent.parent.name == "tr-xlsr53"]
    assert labels == ["tr-xlsr53", (other / "tr-xlsr53").resolve().as_posix()], "two runs named alike keep two names"


def test_decoding_and_values_as_written_by_hand():
    from huggingface_hub import EvalResult

    def result(**metric) -> EvalResult:
        return EvalResult(task_type="automatic-speech-recognition", dataset_type=CV_17, dataset_name="CV",
                          metric_type="wer", metric_value=1.0, **metric)

    assert cr.decoding(result(metric_name="Test WER")) == cr.GREEDY
    assert cr.decoding(result(metric_name="Test WER (with LM)")) == cr.LM
    assert cr.decoding(result(metric_name="Test WER", metric_config="with_lm")) == cr.LM
    assert cr.decoding(result(metric_name="Test WER, 5-gram KenLM")) == cr.LM
    assert cr.decoding(result(metric_name="Test WER (film subtitles)")) == cr.GREEDY
    for greedy in ("Test WER (without LM)", "Test WER (no LM)", "Test WER w/o LM", "WER without a language model"):
        assert cr.decoding(result(metric_name=greedy)) == cr.GREEDY, greedy
    assert cr.decoding(result(metric_name="Test WER", metric_config="no_lm")) == cr.GREEDY
    assert cr.decoding(result(metric_name="Test WER (+LM)")) == cr.LM
    assert cr.percent(12.3) == (12.3, None) and cr.percent(" 12.3 % ".strip())[0] == 12.3
    assert cr.percent(True)[0] is None and cr.percent(None)[0] is None and cr.percent("-1")[0] is None
    assert cr.percent(float("nan"))[0] is None


def test_odd_headers_never_crash(tmp_path):
    odd = {
        "model-index-is-a-dict": "---\nlanguage: tr\nmodel-index: {name: x}\n---\n",
        "results-is-text": "---\nlanguage: tr\nmodel-index:\n- name: x\n  results: none\n---\n",
    "result-is-text": "---\nlanguage: tr\nmodel-index:\n- name: x\n  results: [none]\n---\n",
    "task-is-text": card_yaml("tr", result_yaml("11.0")).replace("task: {type: automatic-speech-recognition}", "task: asr"),
        "header-is-a-list": "---\n- a\n- b\n---\n",
        "value-missing": card_yaml("tr", result_yaml("")),
        "two-languages": card_yaml("[tr, de]", result_yaml("11.0", config="")),  # which one is the result's?
        "source-without-url": card_yaml("tr", result_yaml("11.0") + "\n    source: {name: me}"),
        "empty-file": "",
    }
    for name, text in odd.items():
        handwritten(tmp_path / name, text)
    (tmp_path / "binary").mkdir()
    (tmp_path / "binary" / CARD_FILE).write_bytes(b"---\nlanguage: \xff\xfe\x00\n---\n")
    board = lb.build_leaderboard([tmp_path])
    assert not board.entries and sorted(board.skipped) == sorted([*odd, "binary"])
    assert {p.card for p in board.problems} == {*odd, "binary"}
    assert "several languages" in " ".join(p.message for p in board.problems if p.card == "two-languages")


def test_cli_writes_markdown_and_csv_and_says_whether_anything_was_ranked(folders, tmp_path, capsys):
    markdown, table = tmp_path / "board.md", tmp_path / "board.csv"
    assert main(["leaderboard", str(folders["runs"]), str(folders["cards"]), "--markdown", str(markdown),
                 "--csv", str(table)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Leaderboard") and out.strip() == markdown.read_text(encoding="utf-8").strip()
    assert table.read_text(encoding="utf-8").startswith(",".join(lb.CSV_COLUMNS))
    assert main(["leaderboard", str(folders["cards"] / "no-header"), "--out", str(tmp_path / "none")]) == 1
    captured = capsys.readouterr()
    assert "no YAML header" in captured.out and "no result could be ranked" in captured.err
    assert (tmp_path / "none" / lb.CSV_FILE).read_text(encoding="utf-8").strip() == ",".join(lb.CSV_COLUMNS)


def test_a_second_value_for_the_same_row_and_an_unreadable_normalizer_are_problems(tmp_path):
    folder = handwritten(tmp_path / "twice", card_yaml("tr", result_yaml("20.0"), result_yaml("25.0")))
    (folder / NORMALIZER_FILE).write_text("{not json", encoding="utf-8")
    board = lb.build_leaderboard([folder])
    (row,) = board.entries
    assert (row.rank, row.wer, row.normalizer) == (1, 20.0, lb.NOT_STATED)
    messages = [p.message for p in board.problems]
    assert messages[0].startswith("normalizer.json beside the card cannot be read")
    assert messages[1:] == [f"result 2: a second WER for {CV_17} test (greedy): the first, 20, is kept"]


# ------------------------------------------------------------------------------------------------
# Cards in the styles of the Hub (tests/data/hub_cards)
# ------------------------------------------------------------------------------------------------
HUB_CARDS = Path(__file__).parent / "data" / "hub_cards"
CV_7, CV_8, CV_11 = (f"mozilla-foundation/common_voice_{release}_0" for release in (7, 8, 11))


@pytest.fixture(scope="module")
def hub_board() -> lb.Leaderboard:
    return lb.build_leaderboard([HUB_CARDS])


def _ranked(rows: list[lb.Entry]) -> list[tuple]:
    return [(row.rank, row.card, row.decoding, row.wer) for row in rows]


def _notes(rows: list[lb.Entry]) -> dict[tuple[str, str, str], list[str]]:
    return {(row.card, row.split, row.decoding): row.notes for row in rows}


def test_hub_cards_are_all_read_into_one_table_per_language_and_release(hub_board):
    assert len(hub_board.cards) == 19 and not hub_board.skipped and not hub_board.problems
    assert list(hub_board.tables()) == [
        ("az", CV_8, "az"), ("kab", CV_8, "kab"), ("tr", "common_voice", "tr"), ("tr", CV_11, "tr"), ("tr", CV_7, "tr"),
        ("tr", CV_8, "tr"), ("tr", "speech-recognition-community-v2/dev_data", "tr")]


def test_values_on_the_fraction_scale_are_converted_or_flagged_never_ranked_as_percents(hub_board, tmp_path):
    rows = _table(hub_board, "tr", CV_11)
    # the lone 0.2378 would be rank 1 read as 0.24 %; as 23.78 % it would be 4th: it is unsure, so not ranked
    assert _ranked(rows) == [
        (1, "whisper-tr-a", "greedy", 19.9), (2, "whisper-tr-fraction-pair", "greedy", 21.12),
        (3, "whisper-tr-b", "greedy", 22.6), (4, "whisper-tr-c", "greedy", 25.4),
        (None, "whisper-tr-fraction", "greedy", 0.2378)]
    notes = _notes(rows)
    assert rows[1].cer == 6.33 and notes["whisper-tr-fraction-pair", "test", "greedy"] == [
        "WER 0.2112 read as a fraction: 21.12 %", "CER 0.0633 read as a fraction: 6.33 %"]
    assert notes["whisper-tr-fraction", "test", "greedy"] == [
        "WER 0.2378: a percent, or a fraction (23.78 %)? not ranked"]
    assert notes["whisper-tr-a", "test", "greedy"] == []
    # a WER below 1 beside the card's percents: the LM row of robust-tr-mixed-scale is 17.02 %, rank 1
    mixed = [row for row in _table(hub_board, "tr", CV_8) if row.card == "robust-tr-mixed-scale"]
    assert [(row.rank, row.decoding, row.wer) for row in mixed] == [(1, "LM", 17.02), (5, "greedy", 21.4)]
    assert "WER 0.1702 read as a fraction: 17.02 %" in mixed[0].notes
    assert "| – | Whisper Small Tr - D | whisper-tr-fraction | test | greedy | 0.24 |" in lb.to_markdown(hub_board)
    # A CER below 1 beside a WER in % may be a true percent: noted; it keeps a row from its rank only where the
    # language is ranked by CER. "%" and step 06's cards (normalizer.json beside them) are percents.
    handwritten(tmp_path / "tr-cer", card_yaml("tr", result_yaml("3.2"), result_yaml("0.9", metric="cer")))
    handwritten(tmp_path / "zh-cer", card_yaml("zh-CN", result_yaml("8.0", config="zh-CN"),
                                               result_yaml("0.9", config="zh-CN", metric="cer")))
    tr, zh = sorted(lb.build_leaderboard([tmp_path]).entries, key=lambda row: row.card)
    assert (tr.rank, tr.wer, tr.cer, tr.notes) == (1, 3.2, 0.9, ["CER 0.9: a percent, or a fraction (90 %)?"])
    assert (zh.rank, zh.cer, zh.notes) == (None, 0.9, ["CER 0.9: a percent, or a fraction (90 %)? not ranked"])
    assert cr.value_scales([("wer", 0.5, True), ("cer", 0.2, False)]) == [cr.PERCENT, cr.UNSURE]
    assert cr.value_scales([("wer", 0.25, False), ("cer", 0.07, False)], percent_card=True) == [cr.PERCENT] * 2
    assert cr.value_scales([("wer", 0.0, False), ("wer", 1.0, False)]) == [cr.PERCENT] * 2


def test_without_no_and_wo_lm_are_greedy_and_with_lm_is_lm(hub_board):
    rows = _table(hub_board, "tr", CV_8)
    values = {(row.card, row.decoding): (row.wer, row.cer) for row in rows}
    assert values["robust-tr-without-lm", "greedy"] == (25.3, 7.4)
    assert values["robust-tr-without-lm", "LM"] == (19.9, 6.2)
    assert values["robust-tr-no-lm", "greedy"] == (23.0, None) and values["robust-tr-no-lm", "LM"] == (18.8, None)
    assert values["robust-tr-lm", "greedy"] == (22.1, 6.0) and values["robust-tr-lm", "LM"] == (17.5, 5.1)
    assert [key for key in values if key[0] == "robust-tr-wo-lm"] == [("robust-tr-wo-lm", "greedy")]
    assert not [p for p in hub_board.problems if "a second" in p.message], "no LM result is dropped as a second WER"


def test_the_split_is_taken_from_the_metric_name_when_the_card_states_none(hub_board):
    rows = _table(hub_board, "tr", "common_voice")
    assert _ranked(rows) == [
        (1, "2021-tr-week-a", "greedy", 24.37), (2, "2021-tr-week-validation", "greedy", 26.04),
        (3, "2021-tr-week-b", "greedy", 30.81), (None, "2021-tr-week-validation", "greedy", 18.02),
        (None, "2021-tr-week-no-split", "greedy", 21.9)]
    notes = _notes(rows)
    assert notes["2021-tr-week-a", "test", "greedy"] == [cr.SPLIT_FROM_NAME]
    assert notes["2021-tr-week-validation", "validation", "greedy"] == [
        cr.SPLIT_FROM_NAME, "scored on the 'validation' split, not 'test': not ranked"]
    assert notes["2021-tr-week-no-split", "", "greedy"] == ["no split stated: not ranked"]
    # a stated test split whose metric is named "Dev WER" is in doubt
    (dev,) = [row for row in _table(hub_board, "tr", CV_8) if row.card == "robust-tr-dev-named"]
    assert (dev.rank, dev.split, dev.wer) == (None, "test", 20.5)
    assert dev.notes == ["the metric name 'Dev WER' says another split than 'test': not ranked"]


def test_common_voice_id_variants_are_one_table_per_release(hub_board):
    rows = _table(hub_board, "tr", CV_8)
    assert _ranked(rows) == [
        (1, "robust-tr-mixed-scale", "LM", 17.02), (2, "robust-tr-lm", "LM", 17.5), (3, "robust-tr-no-lm", "LM", 18.8),
        (4, "robust-tr-without-lm", "LM", 19.9), (5, "robust-tr-mixed-scale", "greedy", 21.4),
        (6, "robust-tr-lm", "greedy", 22.1), (7, "robust-tr-no-lm", "greedy", 23.0),
        (8, "robust-tr-without-lm", "greedy", 25.3), (9, "robust-multi-tr-az", "greedy", 26.5),
        (10, "robust-tr-wo-lm", "greedy", 28.4), (None, "robust-tr-dev-named", "greedy", 20.5)]
    assert {row.dataset_written for row in rows} == {"common_voice_8_0", CV_8}
    assert [row.card for row in _table(hub_board, "tr", CV_7)] == ["robust-tr-cv7"], "another release, another table"
    text = lb.to_markdown(hub_board)
    assert f", tr\n\nDataset ids read as {CV_8}: common_voice_8_0.\n\nRanked by WER, lowest first" in text
    unversioned = text.split("## tr (Turkish) — common_voice, tr")[1].split("##")[0]
    assert "Common Voice, release not stated" in unversioned and "apart from those of numbered releases" in unversioned
    written = ("common_voice_8_0", "mozilla-foundation/common_voice_8_0", "Common_Voice_8_0",
               "mozilla-foundation/common_voice_11_0", "common_voice", "mozilla-foundation/common_voice", "google/fleurs")
    assert [cr.dataset_key(name) for name in written] == [
        CV_8, CV_8, CV_8, CV_11, "common_voice", "common_voice", "google/fleurs"]


def test_a_card_of_several_languages_gives_a_row_per_language(hub_board, tmp_path):
    assert _ranked(_table(hub_board, "az", CV_8)) == [(1, "robust-multi-tr-az", "greedy", 41.2)]
    (tr,) = [row for row in _table(hub_board, "tr", CV_8) if row.card == "robust-multi-tr-az"]
    assert (tr.rank, tr.wer, tr.notes) == (9, 26.5, [])
    # a result on a locale that is none of the card's languages is filed under its locale, with a note; one
    # without a config cannot be filed
    handwritten(tmp_path / "tr-az", card_yaml("[tr, az]", result_yaml("20.0"), result_yaml("30.0", config="de"),
                                              result_yaml("40.0", config="")))
    board = lb.build_leaderboard([tmp_path])
    assert [(row.language, row.config, row.wer, row.notes) for row in board.entries] == [
        ("tr", "tr", 20.0, []),
        ("de", "de", 30.0, ["the card's language is tr, az, its dataset config 'de': filed under de"])]
    assert [p.message for p in board.problems] == [
        "result 3: the card has several languages (tr, az) and the result's dataset has no config: left out"]


def test_a_card_whose_language_is_not_its_dataset_config_is_filed_under_the_config_with_a_note(hub_board):
    rows = _table(hub_board, "kab", CV_8)
    assert _ranked(rows) == [(1, "robust-kab", "greedy", 30.0), (2, "robust-ka-on-kab", "greedy", 33.0)]
    assert _notes(rows)["robust-ka-on-kab", "test", "greedy"] == [
        "the card's language is ka, its dataset config 'kab': filed under kab"]
    assert not [key for key in hub_board.tables() if key[0] == "ka"]
    assert cr.result_language(["zh"], "zh-CN") == ("zh", None) and cr.result_language(["tr"], "clean") == ("tr", None)


# ------------------------------------------------------------------------------------------------
# a test split that lost rows to its run's filters (step 06 names it test-filtered) is never ranked
# ------------------------------------------------------------------------------------------------
def filtered_card(run_dir: Path, wer: float, dropped: dict[str, int]) -> Path:
    """Step 06's card of a run whose filters dropped test rows: build_card names its split test-filtered."""
    cfg = Config(language="tr", model=XLSR_53, run_dir=str(run_dir), max_duration_s=10.0,
                 data_source="common_voice:/data/cv-corpus-17.0-2024-03-15/tr")
    kept = 500 - sum(dropped.values())
    load = {"test_split": {"rows_in_source": 500, "rows": kept, "dropped": dropped, "not_sampled": 0, "not_read": 0,
                           "held_out": False, "whole": False}}
    card = build_card(RunInfo(cfg=cfg, metrics={"wer": wer, "cer": wer / 3, "n": kept}, load_report=load),
                      f"ada/{run_dir.name}")
    cfg.upload_dir.mkdir(parents=True)
    write_card(card, cfg.upload_dir)
    Normalizer("tr", "profile").save(cfg.upload_dir)
    return run_dir


def test_a_filtered_test_split_is_never_ranked_with_the_whole_split_nor_with_another(folders, tmp_path):
    filtered = tmp_path / "filtered"
    filtered_card(filtered / "tr-filtered-long", 0.1010, {"too_long": 40})
    filtered_card(filtered / "tr-filtered-short", 0.1200, {"too_short": 7, "votes": 3})
    from huggingface_hub import ModelCard

    result = ModelCard.load(str(filtered / "tr-filtered-long" / "06_model_card" / "upload" / CARD_FILE)).data.eval_results[0]
    assert result.dataset_split == "test-filtered" and result.dataset_args["rows_lost"] == {"too_long": 40}
    assert result.dataset_args["max_duration_s"] == 10.0

    rows = _table(lb.build_leaderboard([folders["runs"], folders["cards"], filtered]), "tr")
    by_card = {row.card: row for row in rows}
    assert by_card["tr-filtered-long"].wer == 10.1, "the lowest WER of the table ..."
    assert by_card["tr-filtered-long"].rank is None and by_card["tr-filtered-short"].rank is None, "... is not ranked"
    assert "a part of the split that only this card's run made" in by_card["tr-filtered-long"].notes[0]
    assert _order([row for row in rows if row.rank])[:2] == [(1, "tr-xlsr53", "LM"), (2, "tr-xls-r-300m", "greedy")]

    assert {split: bool(cr.PARTIAL_SPLIT.search(split)) for split in ("test", "test-clean", "test-sample", "test[:10%]",
            "test-held-out")} == {"test": False, "test-clean": False, "test-sample": True, "test[:10%]": True,
                                  "test-held-out": True}
    (alone,) = lb.build_leaderboard([filtered]).tables().values()  # two filtered runs: two different test sets
    assert [row.rank for row in alone] == [None, None]
    assert not any("ranked on" in note for row in alone for note in row.notes)
