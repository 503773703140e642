"""Views used by the notebooks: a clip browser, clip plots, a character inventory with toggles.

Every view displays a plain version first (an HTML table, ``IPython.display.Audio`` players, a
matplotlib figure), which works everywhere: Colab, Jupyter, a papermill run, a notebook rendered on
GitHub. The ipywidgets part is an extra for an interactive frontend; when ipywidgets is missing it is
skipped, and in a headless run it is simply never drawn.
"""

from __future__ import annotations

import html
import random
import unicodedata
from typing import Any, Iterable, Sequence

from .audio import audio_array, decoded_samples
from .constants import SAMPLING_RATE


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _display(*objects: Any) -> None:
    from IPython.display import display

    display(*objects)


def html_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A small HTML table (left-aligned text, escaped)."""
    columns = list(columns or (rows[0].keys() if rows else []))
    head = "".join(f"<th style='text-align:left'>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def samples(audio: Any) -> tuple[Any, int]:
    """(mono float32 numpy array, sampling rate) of a decoded ``audio`` item of a dataset (a torchcodec
    ``AudioDecoder`` with datasets >= 4, a dict with ``array`` and ``sampling_rate`` before), or of a clip that
    datasets does not decode (a reference to a row of its cache, a hub source's): audio.py's decoder."""
    decoded = decoded_samples(audio)
    if decoded is None:
        if not isinstance(audio, (str, bytes, dict)):
            raise TypeError(f"cannot read samples from {type(audio).__name__}")
        return audio_array(audio), SAMPLING_RATE
    return decoded


def _splits(dataset: Any) -> dict[str, Any]:
    return dict(dataset.items()) if hasattr(dataset, "items") else {"data": dataset}


def _pick(dataset: Any, n: int, seed: int) -> list[tuple[str, int]]:
    """n (split, index) pairs at random, from every non-empty split in turn."""
    rng = random.Random(seed)
    splits = [(name, ds) for name, ds in _splits(dataset).items() if len(ds)]
    picks: list[tuple[str, int]] = []
    for k in range(n):
        if not splits:
            break
        name, ds = splits[k % len(splits)]
        picks.append((name, rng.randrange(len(ds))))
    return picks


def _short(speaker: str) -> str:
    return speaker[:8] + "…" if speaker and len(speaker) > 9 else (speaker or "")


# --------------------------------------------------------------------------------------------------
# clips
# --------------------------------------------------------------------------------------------------
def clip_browser(dataset: Any, n: int = 3, seed: int = 0, text_column: str = "sentence") -> list[dict[str, Any]]:
    """Listen to random clips with their sentence, duration and speaker.

    Plain part (always): a table of ``n`` random clips and an audio player for each. Interactive part
    (ipywidgets): a clip with its player at once, a split selector and a button that draws another one.
    Returns the rows shown (for tests).
    """
    from IPython.display import HTML, Audio

    rows = []
    players = []
    for split, index in _pick(dataset, n, seed):
        item = _splits(dataset)[split][index]
        array, rate = samples(item["audio"])
        rows.append({"split": split, "id": item.get("id", index), "speaker": _short(item.get("speaker", "")),
                     "seconds": round(len(array) / rate, 2), text_column: item.get(text_column, "")})
        players.append((rows[-1], Audio(array, rate=rate)))
    _display(HTML(html_table(rows)))
    for row, player in players:
        _display(HTML(f"<b>{html.escape(str(row['id']))}</b> — {html.escape(str(row[text_column]))}"), player)
    _interactive_browser(dataset, seed, text_column)
    return rows


def _interactive_browser(dataset: Any, seed: int, text_column: str) -> Any:
    """A split selector, the clip shown (sentence, speaker, duration, audio player) and a button for
    another one. The first clip is shown at once; the button never draws the clip already shown.
    Returns the widget (None without ipywidgets or clips)."""
    try:
        import ipywidgets as widgets
    except ImportError:
        return None

    splits = _splits(dataset)
    names = [name for name, ds in splits.items() if len(ds)]
    if not names:
        return None
    rng = random.Random(seed + 1)
    choose = widgets.Dropdown(options=names, value=names[0], description="split")
    button = widgets.Button(description="another clip", icon="random", tooltip="a random clip of this split")
    # Plain HTML and Audio widgets whose values are set directly (no Output widget: capturing output into
    # one can stall a headless nbclient/papermill run until its cell timeout).
    text = widgets.HTML()
    player = widgets.Audio(format="wav", autoplay=False, controls=True)
    shown: dict[str, Any] = {}

    def show(_=None):
        ds = splits[choose.value]
        if shown.get("split") == choose.value and len(ds) > 1:  # another clip: never the one shown
            index = rng.randrange(len(ds) - 1)
            if index >= shown["index"]:
                index += 1
        else:
            index = rng.randrange(len(ds))
        shown.update(split=choose.value, index=index)
        item = ds[index]
        array, rate = samples(item["audio"])
        text.value = (f"<b>{html.escape(str(item.get('id', index)))}</b> · {html.escape(choose.value)} · speaker "
                      f"{html.escape(_short(item.get('speaker', '')))} · {len(array) / rate:.2f} s<br>"
                      f"{html.escape(str(item.get(text_column, '')))}")
        player.value = _wav_bytes(array, rate)

    button.on_click(show)
    choose.observe(show, names="value")
    show()
    box = widgets.VBox([widgets.HBox([choose, button]), text, player])
    _display(box)
    return box


def plot_clip(item: dict[str, Any], title: str | None = None):
    """Waveform and spectrogram of one dataset item (a matplotlib figure)."""
    import matplotlib.pyplot as plt
    import numpy as np

    array, rate = samples(item["audio"])
    fig, (wave_ax, spec_ax) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    t = np.arange(len(array)) / rate
    wave_ax.plot(t, array, linewidth=0.5)
    wave_ax.set_ylabel("amplitude")
    wave_ax.set_title(title or f"{item.get('id', '')}: {item.get('sentence', '')}")
    spec_ax.specgram(array + 1e-9, NFFT=400, Fs=rate, noverlap=240, cmap="magma")  # 25 ms windows, 10 ms hop
    spec_ax.set_ylabel("Hz")
    spec_ax.set_xlabel("seconds")
    fig.tight_layout()
    return fig


def duration_histogram(dataset: Any, bins: int = 30, min_s: float | None = None, max_s: float | None = None):
    """Clip durations per split (the ``duration`` column), with the filter limits as lines."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name, ds in _splits(dataset).items():
        if len(ds):
            ax.hist(ds["duration"][:], bins=bins, alpha=0.6, label=f"{name} ({len(ds)})")
    for limit in (min_s, max_s):
        if limit:
            ax.axvline(limit, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("seconds")
    ax.set_ylabel("clips")
    ax.legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------
# characters
# --------------------------------------------------------------------------------------------------
def _label(ch: str) -> str:
    if ch == " ":
        return "␠"
    if unicodedata.category(ch)[0] in "MCZ":
        return f"◌{ch}" if unicodedata.category(ch)[0] == "M" else f"U+{ord(ch):04X}"
    return ch


def chars_value(chars: Iterable[str]) -> str:
    """A CHARS_TO_IGNORE / KEEP_CHARS value for the parameters cell (a Python string literal)."""
    return repr("".join(dict.fromkeys(chars)))


def char_inventory(report: dict[str, Any], chars_to_ignore: str = "", keep_chars: str = "") -> dict[str, str]:
    """The character inventory of 02_normalize, and toggles that write CHARS_TO_IGNORE / KEEP_CHARS.

    Plain part (always): a table of every character left after normalization (count, Unicode name,
    category), and one of every character removed. Interactive part (ipywidgets): a toggle per
    character; the resulting parameter values are shown, ready to paste into the parameters cell
    before running the notebook again. Returns the current values (plain strings).
    """
    from IPython.display import HTML

    inventory = report["inventory"]
    after = [(ch, n) for ch, n in inventory["after"].items() if ch != " "]
    rows = [{"char": _label(ch), "count": n, "code": f"U+{ord(ch):04X}", "category": unicodedata.category(ch),
             "name": unicodedata.name(ch, "?")} for ch, n in after]
    _display(HTML("<b>Characters after normalization</b> (each becomes one output of the model)" + html_table(rows)))
    removed = [{"char": _label(e["char"]), "count": e["count"], "name": e["name"], "action": e["action"],
                "example": e["example"]} for e in inventory["removed"]]
    if removed:
        _display(HTML("<b>Characters removed</b>" + html_table(removed)))
    values = {"CHARS_TO_IGNORE": chars_to_ignore, "KEEP_CHARS": keep_chars}
    try:
        import ipywidgets as widgets
    except ImportError:
        return values

    ignore = set(chars_to_ignore)
    keep = set(keep_chars)
    result = widgets.HTML()

    def update(_=None):
        values["CHARS_TO_IGNORE"] = "".join(ch for ch, b in drop_buttons if b.value) + "".join(
            c for c in chars_to_ignore if c not in {ch for ch, _ in drop_buttons})
        values["KEEP_CHARS"] = "".join(ch for ch, b in keep_buttons if b.value) + "".join(
            c for c in keep_chars if c not in {ch for ch, _ in keep_buttons})
        result.value = (f"<pre>CHARS_TO_IGNORE = {html.escape(chars_value(values['CHARS_TO_IGNORE']))}\n"
                        f"KEEP_CHARS = {html.escape(chars_value(values['KEEP_CHARS']))}</pre>"
                        "Paste these into the parameters cell and run the notebook again.")

    drop_buttons = [(ch, widgets.ToggleButton(value=ch in ignore, description=_label(ch),
                                              tooltip=f"remove {unicodedata.name(ch, '?')} ({n}x)",
                                              layout=widgets.Layout(width="48px")))
                    for ch, n in after]
    keep_buttons = [(e["char"], widgets.ToggleButton(value=e["char"] in keep, description=_label(e["char"]),
                                                     tooltip=f"keep {e['name']} ({e['count']}x)",
                                                     layout=widgets.Layout(width="48px")))
                    for e in inventory["removed"]]
    for _, button in drop_buttons + keep_buttons:
        button.observe(update, names="value")
    update()
    _display(widgets.VBox([
        widgets.HTML("<b>Toggle to remove</b> (characters the model would learn):"),
        widgets.HBox([b for _, b in drop_buttons], layout=widgets.Layout(flex_flow="row wrap")),
        widgets.HTML("<b>Toggle to keep</b> (characters the normalizer removes):"),
        widgets.HBox([b for _, b in keep_buttons], layout=widgets.Layout(flex_flow="row wrap")),
        result,
    ]))
    return values


def char_bar_chart(report: dict[str, Any], top: int = 60):
    """Character counts before and after normalization (bar chart, most frequent first)."""
    import warnings

    import matplotlib.pyplot as plt

    # Hanzi, Devanagari, ... are missing from matplotlib's default font: boxes, not a warning per glyph.
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from")

    inv = report["inventory"]
    chars = [ch for ch in inv["before"] if ch != " "][:top]
    extra = [ch for ch in inv["after"] if ch not in inv["before"] and ch != " "]
    chars += extra[: max(0, top - len(chars))]
    x = range(len(chars))
    fig, ax = plt.subplots(figsize=(max(6, len(chars) * 0.22), 3.5))
    ax.bar([i - 0.2 for i in x], [inv["before"].get(c, 0) for c in chars], width=0.4, label="before")
    ax.bar([i + 0.2 for i in x], [inv["after"].get(c, 0) for c in chars], width=0.4, label="after")
    ax.set_xticks(list(x))
    ax.set_xticklabels([_label(c) for c in chars])
    ax.set_yscale("log")
    ax.set_ylabel("count (log)")
    ax.legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------
# predictions (step 05)
# --------------------------------------------------------------------------------------------------
def word_diff_html(reference: str, prediction: str) -> str:
    """The prediction with its word errors marked: substitutions (ref→hyp), deletions (struck), insertions (underlined)."""
    import jiwer

    ref, hyp = reference.split(), prediction.split()
    if not ref and not hyp:
        return ""
    if not ref:
        return " ".join(f"<u style='color:#b58900'>{html.escape(w)}</u>" for w in hyp)
    out = []
    for chunk in jiwer.process_words(reference, prediction).alignments[0]:
        r = ref[chunk.ref_start_idx:chunk.ref_end_idx]
        h = hyp[chunk.hyp_start_idx:chunk.hyp_end_idx]
        if chunk.type == "equal":
            out += [html.escape(w) for w in h]
        elif chunk.type == "substitute":
            out += [f"<span style='color:#dc322f'>{html.escape(a)}→{html.escape(b)}</span>" for a, b in zip(r, h)]
        elif chunk.type == "delete":
            out += [f"<s style='color:#6c71c4'>{html.escape(w)}</s>" for w in r]
        else:
            out += [f"<u style='color:#b58900'>{html.escape(w)}</u>" for w in h]
    return " ".join(out)


def prediction_browser(rows: Sequence[dict[str, Any]], dataset: Any = None, n: int = 10,
                       order: str = "worst") -> list[dict[str, Any]]:
    """Predictions next to their references (step 05's ``predictions.tsv`` rows).

    Plain part (always): a table of ``n`` clips — the worst first (``order="worst"``) or in file order —
    with the word errors marked (red: substituted, struck: deleted, underlined: inserted). Interactive
    part (ipywidgets): a slider over every clip as wide as the output, previous / next buttons, and the
    clip's audio player when ``dataset`` (the test split, with ``id`` and ``audio`` columns) is given.
    Returns the rows shown (for tests).
    """
    from IPython.display import HTML

    rows = list(rows)
    if order == "worst":
        ranked = sorted(rows, key=lambda r: (-r["errors"] / max(r["words"], 1), -r["errors"], str(r["path"])))
    else:
        ranked = rows
    shown = ranked[:n]
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{cell}</td>" for cell in (
            html.escape(str(r["path"])), html.escape(str(r["reference"])),
            word_diff_html(str(r["reference"]), str(r["prediction"])), f"{r['errors']}/{r['words']}",
        )) + "</tr>"
        for r in shown
    )
    head = "".join(f"<th style='text-align:left'>{c}</th>" for c in ("clip", "reference", "prediction", "errors/words"))
    _display(HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"))
    try:
        import ipywidgets as widgets
    except ImportError:
        return shown
    if not ranked:
        return shown
    index_of = {}
    if dataset is not None and "id" in getattr(dataset, "column_names", []):
        index_of = {clip: i for i, clip in enumerate(dataset["id"][:])}
    # Plain HTML and Audio widgets whose values are set directly (no Output widget: capturing output
    # into one can stall a headless nbclient/papermill run until its cell timeout).
    # The slider spans the output (one clip per few pixels, not per pixel, with a hundred clips), moves on
    # release (each move decodes a clip), and previous / next step one clip.
    slider = widgets.IntSlider(value=1, min=1, max=len(ranked), description="clip", continuous_update=False,
                               layout=widgets.Layout(width="100%"))
    previous = widgets.Button(description="previous", icon="chevron-left", tooltip="the previous clip")
    following = widgets.Button(description="next", icon="chevron-right", tooltip="the next clip")
    position = widgets.HTML()
    text = widgets.HTML()
    player = widgets.Audio(format="wav", autoplay=False, controls=True) if index_of else None

    def step(delta: int):
        slider.value = min(max(slider.value + delta, slider.min), slider.max)

    def show(_=None):
        r = ranked[slider.value - 1]
        previous.disabled = slider.value == slider.min
        following.disabled = slider.value == slider.max
        position.value = (f"clip {slider.value} of {len(ranked)}"
                          + (" (the worst first)" if order == "worst" else ""))
        text.value = (f"<b>{html.escape(str(r['path']))}</b> · {r['errors']} errors / {r['words']} words<br>"
                      f"reference: {html.escape(str(r['reference']))}<br>"
                      f"prediction: {word_diff_html(str(r['reference']), str(r['prediction']))}")
        if player is not None and r["path"] in index_of:
            array, rate = samples(dataset[index_of[r["path"]]]["audio"])
            player.value = _wav_bytes(array, rate)

    slider.observe(show, names="value")
    previous.on_click(lambda _: step(-1))
    following.on_click(lambda _: step(+1))
    show()
    _display(widgets.VBox([slider, widgets.HBox([previous, following, position]), text]
                          + ([player] if player is not None else [])))
    return shown


def _wav_bytes(array: Any, rate: int) -> bytes:
    """16-bit PCM WAV bytes of a float array in [-1, 1] (for ipywidgets.Audio)."""
    import io
    import wave

    import numpy as np

    pcm = (np.clip(np.asarray(array, dtype=np.float32), -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(int(rate))
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# training curves (step 04)
# --------------------------------------------------------------------------------------------------
class LiveCurves:
    """Training curves that redraw in place while training runs (``train.Training(live=LiveCurves())``).

    In a notebook (Jupyter, Colab, papermill) the figure is shown once and then updated in place through a
    display handle. Headless (``xlsr train``, torchrun) nothing is drawn: the training log's one line per
    evaluation is the fallback (kept in ``lines``), and ``04_train/curves.png`` is written at the end.
    """

    def __init__(self, interactive: bool | None = None):
        if interactive is None:
            try:
                from IPython import get_ipython

                interactive = get_ipython() is not None and "IPKernelApp" in get_ipython().config
            except Exception:  # noqa: BLE001 - no IPython: headless
                interactive = False
        self.interactive = interactive
        self.handle = None
        self.lines: list[str] = []

    def update(self, figure: Any, line: str = "") -> None:
        if line:
            self.lines.append(line)
        if not self.interactive:
            return
        if self.handle is None:
            from IPython.display import display

            self.handle = display(figure, display_id=True)
        else:
            self.handle.update(figure)
