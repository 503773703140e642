"""The project-wide constants: step and split names, the default models, the run file, the sampling rate.

Every module takes them from here; this module imports nothing of the package, so that anything may import it.
"""

from __future__ import annotations

import os
from pathlib import Path

STEPS = ("01_load", "02_normalize", "03_vocab", "04_train", "05_evaluate", "06_model_card")
SPLITS = ("train", "eval", "test")  # the run's splits: Common Voice train, dev, test
DEFAULT_MODEL = "facebook/wav2vec2-large-xlsr-53"
TINY_MODEL = "tiny"  # MODEL="tiny": a small random model for CPU rehearsals (tiny.py)
RUN_FILE = "run.json"  # <RUN_DIR>/run.json: the parameters of every step that has run (config.py)
# Colab's local disk (/content: forgotten after a disconnect) and Google Drive mounted on it. XLSR_COLAB_CONTENT moves
# both, for the Colab rehearsal (tests/test_colab_rehearsal.py: a temporary folder stands in for /content).
COLAB_CONTENT = Path(os.environ.get("XLSR_COLAB_CONTENT") or "/content")
DRIVE_MOUNT = COLAB_CONTENT / "drive"  # where the install cell's notebooks mount Google Drive
DRIVE_RUNS = DRIVE_MOUNT / "MyDrive" / "xlsr-runs"  # RUN_DIR's default on Colab: <DRIVE_RUNS>/<LANGUAGE>
SAMPLING_RATE = 16_000  # every model of the curriculum hears 16 kHz mono audio
