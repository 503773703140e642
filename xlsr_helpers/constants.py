"""The project-wide constants: step and split names, the default models, the run file, the sampling rate.

Every module takes them from here; this module imports nothing of the package, so that anything may import it.
"""

from __future__ import annotations

from pathlib import Path

STEPS = ("01_load", "02_normalize", "03_vocab", "04_train", "05_evaluate", "06_model_card")
SPLITS = ("train", "eval", "test")  # the run's splits: Common Voice train, dev, test
DEFAULT_MODEL = "facebook/wav2vec2-large-xlsr-53"
TINY_MODEL = "tiny"  # MODEL="tiny": a small random model for CPU rehearsals (tiny.py)
RUN_FILE = "run.json"  # <RUN_DIR>/run.json: the parameters of every step that has run (config.py)
DRIVE_RUNS = Path("/content/drive/MyDrive/xlsr-runs")  # RUN_DIR's default on Colab: <DRIVE_RUNS>/<LANGUAGE>
SAMPLING_RATE = 16_000  # every model of the curriculum hears 16 kHz mono audio
