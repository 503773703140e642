"""The training curves: loss (train and eval), WER and CER against the step; the evaluation history."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def curve_points(log_history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    points: dict[str, list[tuple[int, float]]] = {"loss": [], "eval_loss": [], "eval_wer": [], "eval_cer": []}
    for entry in log_history:
        step = entry.get("step")
        for key in points:
            if key in entry and step is not None:
                points[key].append((int(step), float(entry[key])))
    return points


def curves_figure(log_history: list[dict]):
    """Loss (train and eval), WER and CER against the training step."""
    import matplotlib

    if "matplotlib_inline" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    points = curve_points(log_history)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for key, label in (("loss", "train"), ("eval_loss", "eval")):
        if points[key]:
            xs, ys = zip(*points[key])
            axes[0].plot(xs, ys, marker="." if key == "eval_loss" else None, label=label)
    axes[0].set_title("CTC loss")
    axes[0].set_yscale("log")
    axes[0].legend()
    for ax, key, title in ((axes[1], "eval_wer", "WER (eval)"), (axes[2], "eval_cer", "CER (eval)")):
        if points[key]:
            xs, ys = zip(*points[key])
            ax.plot(xs, ys, marker="o")
        ax.set_title(title)
        ax.set_ylim(0, max(1.05, max((y for _, y in points[key]), default=1.0) * 1.05))
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def save_curves(log_history: list[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    curves_figure(log_history).savefig(path, dpi=110)
    return path


def eval_history(report_or_history) -> list[dict[str, float]]:
    """(step, WER, CER, empty share) of every evaluation, for tables and tests."""
    history = report_or_history.get("history", []) if isinstance(report_or_history, dict) else report_or_history
    by_step = {e["step"]: {"step": e["step"], "wer": e["eval_wer"], "cer": e["eval_cer"],
                           "empty_share": e.get("eval_empty_share")}
               for e in history if "eval_cer" in e}  # the final evaluation repeats the last step's: keep one
    return [by_step[step] for step in sorted(by_step)]
