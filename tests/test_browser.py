"""The browser tier: the notebooks in a real JupyterLab, in headless Chromium, used as a learner does.

Notebooks 01, 02, 04 and 05 are opened as copies whose parameters cell is edited for a quick run (the tiny
synthetic corpus, the tiny model, a few dozen training steps), run with Run → Run All Cells, and their
widgets operated: the clip browser draws another clip that plays, the character toggles rewrite
CHARS_TO_IGNORE / KEEP_CHARS, the training curves are redrawn while training runs, and the prediction
browser's slider changes the transcript and the audio. The executed copies that a headless `xlsr run`
writes are opened without running them: trusted, their players play and their widgets render.
Everywhere: no "Error displaying widget", no Python error in an output, no console error but the
offline Colab badge. On a failure the screenshot and the page text go to test-artifacts/browser/.

Needs Chromium and chromedriver (Debian's chromium and chromium-driver, which .ci/setup installs with
BROWSER=1): skipped, with the reason, where they are missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_browser import JupyterLab, Lab, find_chromium, wait_for  # noqa: E402

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = Path(os.environ.get("XLSR_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
RUN_TIMEOUT_S = 420  # one notebook, Run All (04 trains for ~1 minute on a busy 2-core machine)
RAW_WIDGET_TEXT = "VBox(children="  # what an untrusted notebook shows instead of a widget


# ------------------------------------------------------------------------------------------------
# fixtures: a JupyterLab server, a browser on it, run folders
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium():
    found = find_chromium()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="module")
def server(chromium, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab-root")
    lab_server = JupyterLab(root, tmp_path_factory.mktemp("lab-home")).start()
    yield lab_server
    lab_server.stop()


@pytest.fixture(scope="module")
def lab(server, chromium):
    browser = Lab(server, *chromium, artifacts=ARTIFACTS)
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def headless_run(server):
    """Steps 01-03 run headless by `xlsr run` (tiny synthetic corpus, tiny model), in the server's folder,
    signed with the server's Jupyter data folder (the same user's Jupyter, as for a learner)."""
    run_dir = server.root / "runs" / "headless"
    command = [sys.executable, "-m", "xlsr_helpers.cli", "run", "--language", "tr", "--source", "synthetic",
               "--model", "tiny", "--steps", "1-3", "-p", "SYNTHETIC_SIZE=tiny", "--run-dir", str(run_dir)]
    done = subprocess.run(command, env=server.env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"xlsr run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return run_dir


def run_copy(source: Path, name: str) -> Path:
    from test_evaluate import copy_run

    return copy_run(source, source.parent / name)


@pytest.fixture(scope="module")
def model_run(headless_run):
    """A copy of the headless run with a random tiny model as 04_train/model (what step 05 reads)."""
    from test_evaluate import make_tiny_model
    from transformers import Wav2Vec2Processor

    from xlsr_helpers.config import Config
    from xlsr_helpers.families import resolve

    run = run_copy(headless_run, "with-model")
    cfg = resolve(Config.load(run).updated(run_dir=str(run)))
    cfg.save("04_train")
    processor = Wav2Vec2Processor.from_pretrained(str(cfg.processor_dir))
    make_tiny_model(cfg.model_dir, processor, save_processor=False)
    processor.save_pretrained(str(cfg.model_dir))
    return run


def notebook_copy(server: JupyterLab, step: str, **parameters) -> str:
    """A copy of a committed notebook in the server's folder, its parameters cell edited as a learner does
    (only the values; the comments stay). Returns its path for the server."""
    notebook = nbformat.read(str(NOTEBOOKS / f"{step}.ipynb"), as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    lines = cell.source.splitlines()
    for name, value in parameters.items():
        (index,) = [i for i, line in enumerate(lines) if re.match(rf"{name}\s*=", line)]
        comment = lines[index].split("  #", 1)[1] if "  #" in lines[index] else ""
        lines[index] = f"{name} = {value!r}" + (f"  #{comment}" if comment else "")
    cell.source = "\n".join(lines)
    target = server.root / "work" / f"{step}.ipynb"
    target.parent.mkdir(exist_ok=True)
    nbformat.write(notebook, str(target))
    return str(target.relative_to(server.root))


def run_all(lab: Lab) -> None:
    lab.run_all()
    lab.wait_until_done(RUN_TIMEOUT_S)


def assert_clean_page(lab: Lab) -> None:
    text = lab.text()
    assert "Error displaying widget" not in text
    assert RAW_WIDGET_TEXT not in text, "a widget shows as text (untrusted notebook, or no widget state)"
    assert not lab.python_errors()
    assert not lab.console_errors(), f"console errors: {lab.console_errors()}"


def widget_texts(lab: Lab, root) -> list[str]:
    return lab.js("return [...arguments[0].querySelectorAll('.widget-html')].map(h => h.innerText)", root)


# ------------------------------------------------------------------------------------------------
# the executed copies of a headless run: opened, not run
# ------------------------------------------------------------------------------------------------
def open_executed(lab: Lab, step: str, widget_cell: str, attempts: int = 2):
    """Open an executed copy of the headless run (without running it) until the widget in the output of
    ``widget_cell`` is rendered from the saved state.

    JupyterLab's widget manager (jupyterlab_widgets 3) has a race when it opens a notebook with saved
    widget state: if the kernel connects while it loads that state, it can declare itself restored
    before the saved models exist, and shows "Error displaying widget: model not found" until the
    notebook is opened again (jupyterlab/jupyterlab#15361; seen here once in ~10 openings, on a machine
    at load 10). That is reopened once, with a warning; a notebook without saved state, or an untrusted
    one, never renders and still fails.
    """
    for attempt in range(1, attempts + 1):
        lab.open(f"runs/headless/notebooks/{step}.ipynb", f"executed-{step}-{attempt}")
        cell = lab.cell(widget_cell)
        state = wait_for(lambda: lab.js("""const [cell] = arguments;
            if (document.body.innerText.includes('Error displaying widget')) return 'error';
            return cell.querySelector('.jp-OutputArea .widget-vbox') ? 'rendered' : null;""", cell),
            60, f"the widgets of the executed {step} to render (or fail)")
        if state == "rendered" or attempt == attempts:
            return cell
        warnings.warn(f"executed {step}: 'Error displaying widget' on opening (jupyterlab/jupyterlab#15361); "
                      "opened again", stacklevel=2)
        lab.close()
    return cell


def test_executed_copies_open_trusted_with_playing_audio_and_rendered_widgets(lab, headless_run):
    from nbformat.sign import NotebookNotary

    executed = headless_run / "notebooks"
    notary = NotebookNotary(data_dir=lab.server.env["JUPYTER_DATA_DIR"])  # the learner's Jupyter = the server's
    for step in ("01_load", "02_normalize"):
        notebook = nbformat.read(str(executed / f"{step}.ipynb"), as_version=4)
        assert notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        assert notary.check_signature(notebook), f"the executed {step} is not signed"
    with lab.notebook_failures("executed-01_load"):
        cell = open_executed(lab, "01_load", "clip_browser(")
        # 3 plain players (IPython.display.Audio, stripped when untrusted) + the clip browser's player
        states = lab.wait_playable(count=4)
        assert all(s["duration"] > 0.3 for s in states), states
        browser = lab.widget(cell)  # rendered from the saved widget state
        assert lab.js("return arguments[0].querySelectorAll('.jupyter-button, .widget-dropdown, audio').length", browser) == 3
        assert "common_voice_tr_" in " ".join(widget_texts(lab, browser))
        assert_clean_page(lab)
        assert all(any(ch.isdigit() for ch in p) for p in lab.prompts()), "opened as executed, not run again"
    with lab.notebook_failures("executed-02_normalize"):
        cell = open_executed(lab, "02_normalize", "char_inventory(")
        toggles = lab.js("return arguments[0].querySelectorAll('.widget-toggle-button').length", cell)
        assert toggles > 10
        assert "CHARS_TO_IGNORE = ''" in lab.text()
        assert_clean_page(lab)


# ------------------------------------------------------------------------------------------------
# the notebooks run in the browser, their widgets operated
# ------------------------------------------------------------------------------------------------
def test_01_clip_browser_shows_a_clip_then_another_that_plays(lab, server):
    path = notebook_copy(server, "01_load", RUN_DIR=str(server.root / "runs" / "browser-01"), SYNTHETIC_SIZE="tiny")
    with lab.notebook(path, "run01", artifacts="01_load"):
        run_all(lab)
        cell = lab.cell("clip_browser(")
        lab.wait_playable(cell, count=4)  # 3 plain players and the browser's, before any click
        browser = lab.widget(cell)
        first = widget_texts(lab, browser)
        assert len(first) == 1 and "common_voice_tr_" in first[0], f"no first clip shown: {first}"
        first_src = lab.audio_states(browser)[0]["src"]
        button = next(b for b in browser.find_elements("css selector", "button") if "another clip" in b.text)
        for _ in range(2):
            before = widget_texts(lab, browser)[0]
            button.click()
            wait_for(lambda: widget_texts(lab, browser)[0] != before, 30, "the clip browser to show another clip")
            (state,) = lab.wait_playable(browser)
        assert state["src"] != first_src, "the player did not get the new clip"
        lab.play(browser.find_element("css selector", "audio"))
        assert_clean_page(lab)


def test_02_character_toggles_rewrite_the_parameter_values(lab, server, headless_run):
    run = run_copy(headless_run, "browser-02")
    path = notebook_copy(server, "02_normalize", RUN_DIR=str(run))
    with lab.notebook(path, "run02", artifacts="02_normalize"):
        run_all(lab)
        cell = lab.cell("char_inventory(")

        def values():
            text = lab.js("return arguments[0].querySelector('.jp-OutputArea .widget-html pre').innerText", cell)
            return dict(re.findall(r"^(CHARS_TO_IGNORE|KEEP_CHARS) = (.*)$", text, re.M))

        lab.widget(cell, ".widget-html pre")
        assert values() == {"CHARS_TO_IGNORE": "''", "KEEP_CHARS": "''"}
        buttons = cell.find_elements("css selector", ".widget-toggle-button")
        remove = next(b for b in buttons if (b.get_attribute("title") or "").startswith("remove ") and len(b.text) == 1)
        keep = next(b for b in buttons if (b.get_attribute("title") or "").startswith("keep ") and len(b.text) == 1)
        removed_char, kept_char = remove.text, keep.text
        remove.click()
        wait_for(lambda: values()["CHARS_TO_IGNORE"] == repr(removed_char), 30, f"CHARS_TO_IGNORE = {removed_char!r}")
        keep.click()
        wait_for(lambda: values() == {"CHARS_TO_IGNORE": repr(removed_char), "KEEP_CHARS": repr(kept_char)}, 30,
                 f"KEEP_CHARS = {kept_char!r}")
        remove.click()  # off again
        wait_for(lambda: values()["CHARS_TO_IGNORE"] == "''", 30, "CHARS_TO_IGNORE back to ''")
        assert "active" in keep.get_attribute("class") and "active" not in remove.get_attribute("class")
        assert_clean_page(lab)


# Records every distinct image in the output of the training cell, and whether the cell was running then.
WATCH_CURVES = """
const cell = [...document.querySelectorAll('.jp-Notebook .jp-Cell')]
    .find(c => (c.querySelector('.jp-InputArea-editor')?.innerText || '').includes('training.train()'));
window.__curves = [];
const seen = new Set();
const hash = s => { let h = 2166136261; for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); } return (h >>> 0) + ':' + s.length; };
const record = () => {
    for (const img of cell.querySelectorAll('.jp-OutputArea-output img')) {
        if (img.__hashed === img.src) continue;
        img.__hashed = img.src;
        const key = hash(img.src);
        if (!seen.has(key)) {
            seen.add(key);
            window.__curves.push({key, prompt: cell.querySelector('.jp-InputPrompt').innerText.trim()});
        }
    }
};
new MutationObserver(record).observe(cell, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
return !!cell;
"""


def test_04_training_curves_are_redrawn_while_training_runs(lab, server, headless_run):
    run = run_copy(headless_run, "browser-04")
    path = notebook_copy(server, "04_train", RUN_DIR=str(run), MODEL="tiny", MAX_STEPS=16, EVAL_STEPS=4,
                         SAVE_STEPS=16, LOGGING_STEPS=4, BATCH_SIZE=4, GRADIENT_ACCUMULATION_STEPS=1)
    with lab.notebook(path, "run04", artifacts="04_train"):
        assert lab.js(WATCH_CURVES), "no training cell to watch"
        run_all(lab)
        curves = lab.js("return window.__curves")
        print("curves drawn (key, prompt):", curves)
        text = lab.js("return arguments[0].querySelector('.jp-OutputArea').innerText", lab.cell("training.train()"))
        evaluations = re.findall(r"step +(\d+) +epoch", text)  # the line of each evaluation
        assert evaluations == ["4", "8", "12", "16"], text
        while_running = [c for c in curves if "*" in c["prompt"]]
        assert len(while_running) == len(evaluations), f"not redrawn at each evaluation while training ran: {curves}"
        assert "stopped by: completed at step 16" in text
        final = lab.cell("display(Image(filename=report[\"curves\"]))")
        assert lab.js("return arguments[0].querySelectorAll('.jp-OutputArea-output img').length", final) == 1
        assert (run / "04_train" / "model" / "model.safetensors").exists()
        assert_clean_page(lab)


def test_05_slider_changes_the_transcript_and_the_audio(lab, server, model_run):
    from selenium.webdriver.common.action_chains import ActionChains

    path = notebook_copy(server, "05_evaluate", RUN_DIR=str(model_run), EVAL_BATCH_SIZE=4)
    with lab.notebook(path, "run05", artifacts="05_evaluate"):
        run_all(lab)
        cell = lab.cell("prediction_browser(")
        browser = lab.widget(cell)
        lab.wait_playable(browser)
        position, transcript = widget_texts(lab, browser)
        clips = int(re.search(r"clip 1 of (\d+)", position).group(1))
        assert clips >= 10 and "reference:" in transcript and "prediction:" in transcript

        # As wide as the output: a hundred clips get a few pixels each, not one.
        widths = lab.js("""const [box] = arguments; const w = e => e.getBoundingClientRect().width;
            return {output: w(box.closest('.jp-OutputArea-output')), track: w(box.querySelector('.noUi-target')),
                    slider: w(box.querySelector('.widget-hslider'))};""", browser)
        print("prediction browser widths (px):", widths, "clips:", clips)
        assert widths["slider"] >= 0.95 * widths["output"] and widths["track"] >= 0.6 * widths["output"], widths

        def moved_from(before_text, before_src):
            def check():
                texts = widget_texts(lab, browser)
                states = lab.audio_states(browser)
                return texts[1] != before_text and states and states[0]["src"] != before_src and texts
            return check

        src = lab.audio_states(browser)[0]["src"]
        handle = browser.find_element("css selector", ".noUi-handle")
        lab.js("arguments[0].scrollIntoView({block: 'center'})", handle)
        ActionChains(lab.driver).click_and_hold(handle).move_by_offset(int(widths["track"] * 0.5), 0).release().perform()
        texts = wait_for(moved_from(transcript, src), 30, "the slider to show another clip")
        k = int(re.search(r"clip (\d+) of", texts[0]).group(1))
        assert 1 < k <= clips, texts[0]
        (state,) = lab.wait_playable(browser)

        following = next(b for b in browser.find_elements("css selector", "button") if b.text.strip() == "next")
        following.click()
        texts = wait_for(moved_from(texts[1], state["src"]), 30, "next to show the next clip")
        assert texts[0].startswith(f"clip {k + 1} of {clips}"), texts[0]
        lab.wait_playable(browser)
        lab.play(browser.find_element("css selector", "audio"))
        assert_clean_page(lab)
