"""The views of xlsr_helpers.widgets outside a browser: the plain part, and the interactive part's logic
(the browser tier, test_browser.py, operates the same widgets in JupyterLab)."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from xlsr_helpers import widgets as w

RATE = 16_000


def _clip(seconds: float, pitch: float) -> dict:
    t = np.arange(int(seconds * RATE)) / RATE
    return {"array": (0.3 * np.sin(2 * np.pi * pitch * t)).astype(np.float32), "sampling_rate": RATE}


def _split(prefix: str, n: int) -> list[dict]:
    return [{"id": f"{prefix}_{i}.mp3", "audio": _clip(0.5 + 0.1 * i, 200 + 20 * i), "sentence": f"{prefix} sentence {i}",
             "speaker": f"speaker{i:04d}xyz"} for i in range(n)]


def _seconds(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as f:
        return f.getnframes() / f.getframerate()


@pytest.fixture()
def shown(monkeypatch):
    """What the views display, in order (instead of IPython's display)."""
    objects: list = []
    monkeypatch.setattr(w, "_display", lambda *items: objects.extend(items))
    return objects


def _widgets_of(box, kind):
    found = []
    for child in getattr(box, "children", ()):
        if isinstance(child, kind):
            found.append(child)
        found += _widgets_of(child, kind)
    return found


def test_clip_browser_plain_part_and_first_clip_without_a_click(shown):
    import ipywidgets
    from IPython.display import HTML, Audio

    dataset = {"train": _split("train", 6), "eval": _split("eval", 2), "test": []}
    rows = w.clip_browser(dataset, n=3, seed=1)
    assert [r["split"] for r in rows] == ["train", "eval", "train"]  # every non-empty split in turn
    assert all(r["seconds"] > 0 and r["sentence"] for r in rows)
    assert isinstance(shown[0], HTML) and "<table>" in shown[0].data
    assert sum(isinstance(o, Audio) for o in shown) == 3, "one plain player per clip"

    box = shown[-1]
    assert isinstance(box, ipywidgets.VBox)
    (text,) = [h for h in _widgets_of(box, ipywidgets.HTML)]
    (player,) = _widgets_of(box, ipywidgets.Audio)
    (choose,) = _widgets_of(box, ipywidgets.Dropdown)
    (button,) = _widgets_of(box, ipywidgets.Button)
    assert list(choose.options) == ["train", "eval"], "empty splits are not offered"
    assert "train_" in text.value and _seconds(player.value) > 0.4, "a first clip is shown without a click"

    seen = [text.value]
    for _ in range(12):
        button.click()
        assert text.value != seen[-1], "'another clip' never shows the clip already shown"
        seen.append(text.value)
    assert len(set(seen)) > 2
    choose.value = "eval"
    assert "eval_" in text.value and _seconds(player.value) > 0.4


def test_clip_browser_with_one_clip(shown):
    import ipywidgets

    w.clip_browser({"train": _split("train", 1)}, n=2)
    (text,) = _widgets_of(shown[-1], ipywidgets.HTML)
    (button,) = _widgets_of(shown[-1], ipywidgets.Button)
    button.click()
    assert "train_0.mp3" in text.value


def _prediction_rows(n: int) -> list[dict]:
    return [{"path": f"test_{i}.mp3", "reference": f"bir iki üç {i}", "prediction": "bir iki" if i % 3 else f"bir iki üç {i}",
             "errors": (i % 3) and 2, "words": 4} for i in range(n)]


def test_prediction_browser_plain_table_worst_first_and_a_wide_slider(shown):
    import datasets
    import ipywidgets

    rows = _prediction_rows(100)
    test = datasets.Dataset.from_list([{"id": r["path"], "audio": _clip(0.5 + 0.01 * i, 300)} for i, r in enumerate(rows)])
    first = w.prediction_browser(rows, dataset=test, n=10)
    assert len(first) == 10 and all(r["errors"] == 2 for r in first), "the worst first"
    assert "<table>" in shown[0].data and "<s style" in shown[0].data  # deletions struck through

    box = shown[-1]
    (slider,) = _widgets_of(box, ipywidgets.IntSlider)
    previous, following = _widgets_of(box, ipywidgets.Button)
    (player,) = _widgets_of(box, ipywidgets.Audio)
    position, text = _widgets_of(box, ipywidgets.HTML)
    assert slider.layout.width == "100%", "the slider spans the output: a hundred clips are not a hundred pixels"
    assert (slider.min, slider.max, slider.value) == (1, 100, 1) and not slider.continuous_update
    assert previous.disabled and not following.disabled
    assert position.value.startswith("clip 1 of 100") and first[0]["path"] in text.value

    before = (text.value, player.value)
    following.click()
    assert slider.value == 2 and position.value.startswith("clip 2 of 100")
    assert text.value != before[0] and player.value != before[1] and not previous.disabled
    slider.value = 100
    assert following.disabled and "clip 100 of 100" in position.value
    following.click()
    assert slider.value == 100
    previous.click()
    assert slider.value == 99
    assert _seconds(player.value) > 0.4


def test_prediction_browser_without_audio_and_in_file_order(shown):
    import ipywidgets

    rows = _prediction_rows(3)
    assert [r["path"] for r in w.prediction_browser(rows, order="file", n=2)] == ["test_0.mp3", "test_1.mp3"]
    assert not _widgets_of(shown[-1], ipywidgets.Audio)
    (slider,) = _widgets_of(shown[-1], ipywidgets.IntSlider)
    slider.value = 3
    assert "test_2.mp3" in _widgets_of(shown[-1], ipywidgets.HTML)[1].value


def test_char_inventory_toggles_write_the_parameter_values(shown):
    import ipywidgets

    report = {"inventory": {"after": {"a": 5, "b": 3, " ": 4, "«": 1},
                            "removed": [{"char": "'", "count": 2, "name": "APOSTROPHE", "action": "removed",
                                         "example": "it's"}]}}
    values = w.char_inventory(report, chars_to_ignore="", keep_chars="")
    assert values == {"CHARS_TO_IGNORE": "", "KEEP_CHARS": ""}
    box = shown[-1]
    buttons = {b.tooltip.split(" ", 1)[0] + ":" + b.description: b for b in _widgets_of(box, ipywidgets.ToggleButton)}
    result = _widgets_of(box, ipywidgets.HTML)[-1]
    assert "CHARS_TO_IGNORE = &#x27;&#x27;" in result.value
    buttons["remove:«"].value = True
    buttons["keep:'"].value = True
    assert values == {"CHARS_TO_IGNORE": "«", "KEEP_CHARS": "'"}
    assert "CHARS_TO_IGNORE = &#x27;«&#x27;" in result.value and "KEEP_CHARS = &quot;&#x27;&quot;" in result.value


def test_live_curves_headless_keeps_the_lines():
    live = w.LiveCurves(interactive=False)
    live.update(object(), "step 2  WER 1.000")
    assert live.lines == ["step 2  WER 1.000"] and live.handle is None
