"""xlsr leaderboard (xlsr_helpers.leaderboard): model cards ranked per language and test set.

The cards are the project's own (model_card.build_card on a RunInfo, no training, as in
test_model_card.test_card_for_a_real_checkpoint_names_its_base_model), saved as step 06 saves them (upload
folder with normalizer.json), for Turkish, German and Chinese (ranked by CER), plus hand-written cards with
missing or malformed fields.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from xlsr_helpers import card_results as cr
from xlsr_helpers import leaderboard as lb
from xlsr_helpers import model_card as mc
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
    card = mc.build_card(mc.RunInfo(cfg=cfg, metrics={"wer": wer, "cer": cer, "n": 500}), f"ada/{run_dir.name}")
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
    card.save(str(cfg.upload_dir / mc.CARD_FILE))
    Normalizer(language, normalizer).save(cfg.upload_dir)
    return run_dir


def handwritten(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    (folder / mc.CARD_FILE).write_text(text, encoding="utf-8")
    return folder


def result_yaml(value: str, split: str = "test", dataset: str = CV_17, config: str = "tr", metric: str = "wer") -> str:
    return f"""
  - task: {{type: automatic-speech-recognition}}
    dataset: {{name: Common Voice tr, type: {dataset}{f', config: {config}' if config else ''}{f', split: {split}' if split else ''}}}
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
    card_file = Config(run_dir=str(runs / "zh-xlsr53")).upload_dir / mc.CARD_FILE
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
    (tmp_path / "binary" / mc.CARD_FILE).write_bytes(b"---\nlanguage: \xff\xfe\x00\n---\n")
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
    (folder / mc.NORMALIZER_FILE).write_text("{not json", encoding="utf-8")
    board = lb.build_leaderboard([folder])
    (row,) = board.entries
    assert (row.rank, row.wer, row.normalizer) == (1, 20.0, lb.NOT_STATED)
    messages = [p.message for p in board.problems]
    assert messages[0].startswith("normalizer.json beside the card cannot be read")
    assert messages[1:] == [f"result 2: a second WER for {CV_17} test (greedy): the first, 20, is kept"]
