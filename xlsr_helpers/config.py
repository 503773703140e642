"""Every parameter of every notebook, in one dataclass, saved as ``<RUN_DIR>/run.json``.

A notebook's parameters cell declares UPPER_CASE names; each is the upper-case form of a field here
(``LANGUAGE`` -> ``language``). Defaults are the seed's (the 2021 XLSR fine-tuning week notebook) unless
a comment says otherwise. Fields left at ``None`` are resolved by :meth:`Config.resolved` from the
recipe of the model's family (``models.py``): the seed's values for wav2vec2-style checkpoints, Hugging
Face's published ones for w2v-BERT 2.0 and MMS adapters, faster-learning ones for the CPU ``tiny`` model.

The project-wide constants live here too (every module imports them from this one place).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

STEPS = ("01_load", "02_normalize", "03_vocab", "04_train", "05_evaluate", "06_model_card")
DEFAULT_MODEL = "facebook/wav2vec2-large-xlsr-53"
TINY_MODEL = "tiny"
RUN_FILE = "run.json"
DRIVE_RUNS = Path("/content/drive/MyDrive/xlsr-runs")
SAMPLING_RATE = 16_000  # every model of the curriculum hears 16 kHz mono audio
SPLITS = ("train", "eval", "test")  # the run's splits: Common Voice train, dev, test


@dataclass
class Config:
    # --- every step ---------------------------------------------------------------------------
    language: str = "tr"  # Common Voice locale code: tr, de, fr, zh-CN, ...
    run_dir: str = ""  # "" -> runs/<language> (on Colab: Google Drive, MyDrive/xlsr-runs/<language>)
    seed: int = 42  # random seed for sampling, splits and training

    # --- 01_load ------------------------------------------------------------------------------
    data_source: str = "synthetic"  # synthetic | common_voice:<dir> | hub:<id> | audiofolder:<dir>; join with +
    synthetic_size: str = "demo"  # tiny | demo | small (only for DATA_SOURCE=synthetic)
    extra_train_splits: str = ""  # "" | validated | other | validated+other (minus dev and test)
    max_samples_per_split: int = 0  # 0 = all; else keep at most this many rows per split (quick runs)
    min_duration_s: float = 0.5  # drop clips shorter than this
    max_duration_s: float = 20.0  # drop clips longer than this (long clips cause OOM)
    min_up_votes: int = 0  # drop rows with fewer up-votes (Common Voice TSVs only)
    test_fraction: float = 0.1  # held-out share of speakers when a source has no test split
    hub_text_column: str = "sentence"  # text column of a hub:/audiofolder: source
    hub_audio_column: str = "audio"  # audio column of a hub: source
    hub_streaming: bool = False  # stream a hub: source instead of downloading it whole
    embed_audio: bool = False  # copy audio bytes into the saved dataset (run folder survives without clips)
    decode_check_clips: int = 1000  # clips per split decode-checked (a seeded sample; -1 all, 0 none); the rest get the cheap check

    # --- 02_normalize -------------------------------------------------------------------------
    normalizer: str = "profile"  # profile (language-aware) | seed_regex (the 2021 notebook's regex)
    chars_to_ignore: str = ""  # extra characters to remove, e.g. "«»"
    keep_chars: str = ""  # characters to keep even if the profile would remove them, e.g. "'-"

    # --- 03_vocab and 04_train -----------------------------------------------------------------
    # Fields left at None take the value of the model family's recipe (models.RECIPES): "seed" below means
    # the 2021 notebook's value (wav2vec2, XLSR, XLS-R, HuBERT, WavLM, data2vec-audio).
    model: str = DEFAULT_MODEL  # Hub id, local path, or "tiny" (small random model for CPU)
    model_family: str = ""  # "" = from the checkpoint's config.json; or wav2vec2 | hubert | wavlm | data2vec-audio | w2v-bert | mms-adapter | tiny
    target_lang: str = ""  # MMS adapters: the adapter's language code; "" = ISO 639-3 of LANGUAGE (tr -> tur)
    batch_size: int | None = None  # None: recipe (16 seed, 32 MMS adapters, 8 tiny); per-device train batch size
    gradient_accumulation_steps: int | None = None  # None: recipe (2 seed, 1 MMS adapters and tiny)
    learning_rate: float | None = None  # None: recipe (3e-4 seed, 5e-5 w2v-BERT, 1e-3 MMS adapters, 5e-3 tiny)
    warmup_steps: int | None = None  # None: recipe (500 seed, 100 MMS adapters); -1 = 8 % of the steps (tiny)
    num_train_epochs: float | None = None  # None: recipe (30 seed and tiny, 10 w2v-BERT, 4 MMS adapters)
    max_steps: int = -1  # > 0 overrides NUM_TRAIN_EPOCHS
    eval_steps: int | None = None  # None: recipe (400 seed, 300 w2v-BERT, 100 MMS adapters and tiny)
    save_steps: int | None = None  # None: recipe (400 seed, 600 w2v-BERT, 200 MMS adapters, 100 tiny)
    logging_steps: int | None = None  # None: recipe (400 seed, 300 w2v-BERT, 100 MMS adapters, 20 tiny)
    save_total_limit: int = 2  # keep this many checkpoints
    attention_dropout: float | None = None  # None: recipe (0.1 seed and tiny, 0.0 w2v-BERT and MMS adapters)
    hidden_dropout: float | None = None  # None: recipe (0.1 seed and tiny, 0.0 w2v-BERT and MMS adapters)
    feat_proj_dropout: float | None = None  # None: recipe (0.0)
    mask_time_prob: float | None = None  # None: recipe (0.05; 0.0 w2v-BERT)
    mask_feature_prob: float | None = None  # None: recipe (0.0 = off, the seed's); SpecAugment's frequency mask: share of hidden channels masked
    mask_feature_length: int | None = None  # None: recipe (10); width of one frequency (channel) mask span
    speed_perturbation: str | None = None  # None: recipe; "" = off, or speed factors of training clips, e.g. "0.9,1.0,1.1"
    layerdrop: float | None = None  # None: recipe (0.1 seed, 0.0 others); forced to 0.0 under DDP
    gradient_checkpointing: bool | str | None = None  # None: recipe ("auto": on only when the longest batch does not fit the GPU without it; False for tiny)
    freeze_feature_encoder: bool | None = None  # None: recipe (True where a CNN feature encoder exists)
    freeze_encoder_steps: int | None = None  # None: recipe (0); N > 0: only the new CTC head learns during the first N updates
    precision: str = "auto"  # auto (fp16/bf16 on CUDA, fp32 on CPU) | fp32 | fp16 | bf16
    group_by_length: bool = True  # batch clips of similar length (less padding)
    max_batch_seconds: float = 0.0  # > 0: batches hold up to this many seconds of padded audio (longest clip x clips) instead of BATCH_SIZE clips
    eval_max_samples: int = 500  # evaluations during training use a fixed, length-sorted subset of this many dev clips (0: all); the final one uses all
    dataloader_workers: int | None = None  # None: on a GPU machine one per 2 CPU cores (1-4), else 0; they decode the clips
    resume: str = "auto"  # auto (last complete checkpoint) | never | <path to checkpoint>
    overwrite_model: bool = False  # allow replacing an existing 04_train/model
    sanity_check: bool = False  # overfit one small batch first; fail if CER does not drop
    max_train_minutes: float = 0.0  # > 0: stop training after this many minutes (CPU rehearsals)
    # Hyper-parameter search before training (notebook 04; train/search.py): not in the seed (it trained with
    # fixed values). Trials are short runs on a subset; the best LEARNING_RATE, WARMUP_STEPS and MASK_TIME_PROB
    # become the run's own (run.json). The first trial is the recipe's values, so the search can only confirm or beat them.
    search_trials: int = 0  # 0 = no search; N > 0: try N settings (the recipe's first), a bad one stopped early
    search_steps: int = 200  # updates per trial (evaluated 4 times on the eval subset of EVAL_MAX_SAMPLES)
    search_train_rows: int = 2000  # trials train on a fixed random subset of this many training rows (0 = all)
    search_lr_factor: float = 3.0  # learning rates from recipe / factor to recipe x factor (log-uniform)
    search_warmup_share_max: float = 0.2  # warm-up from 0 to this share of the updates (below 1)
    search_mask_time_prob_max: float = 0.1  # MASK_TIME_PROB from 0 to this

    # --- 05_evaluate --------------------------------------------------------------------------
    eval_model: str = ""  # "" = the run's 04_train/model; or any local path / Hub id
    eval_batch_size: int = 8
    chunk_length_s: float = 20.0  # clips longer than this are transcribed in chunks
    lm_path: str = ""  # optional KenLM n-gram (.arpa/.bin) for pyctcdecode; "" = greedy decoding
    compare_with: str = ""  # other models scored on the same test clips: run folders, model folders, Hub ids (comma list)

    # --- 06_model_card ------------------------------------------------------------------------
    hub_model_id: str = ""  # "" -> <user>/wav2vec2-large-xlsr-<language> when pushing
    push_to_hub: bool = False  # upload 06_model_card/upload/ with HfApi().upload_folder
    license: str = "apache-2.0"
    author_name: str = ""  # shown in the model card

    extra: dict = field(default_factory=dict)  # free-form notes saved with the run

    # --------------------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "extra"]

    @classmethod
    def parameter_names(cls) -> list[str]:
        """The UPPER_CASE names a notebook may declare."""
        return [name.upper() for name in cls.field_names()]

    def updated(self, **changes: Any) -> "Config":
        unknown = set(changes) - set(self.field_names()) - {"extra"}
        if unknown:
            raise ValueError(f"Unknown parameter(s) {sorted(unknown)}; known: {self.field_names()}")
        return dataclasses.replace(self, **changes)

    def is_tiny(self) -> bool:
        return self.model == TINY_MODEL

    def resolved(self) -> "Config":
        """A copy with every ``None`` replaced by the model family's recipe and run_dir made absolute."""
        from .models import recipe_for  # the recipes need only this module's constants

        defaults = recipe_for(self).training
        changes = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        changes["run_dir"] = str(resolve_run_dir(self.run_dir, self.language))
        return dataclasses.replace(self, **changes)

    # --- run folder ---------------------------------------------------------------------------
    @property
    def run_path(self) -> Path:
        return resolve_run_dir(self.run_dir, self.language)

    def step_dir(self, step: str) -> Path:
        if step not in STEPS and step != "notebooks":
            raise ValueError(f"Unknown step {step!r}; steps are {STEPS}")
        return self.run_path / step

    @property
    def processor_dir(self) -> Path:
        return self.step_dir("03_vocab") / "processor"

    @property
    def model_dir(self) -> Path:
        return self.step_dir("04_train") / "model"

    @property
    def upload_dir(self) -> Path:
        return self.step_dir("06_model_card") / "upload"

    # --- run.json -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        known = {k: v for k, v in data.items() if k in cls.field_names() or k == "extra"}
        return cls(**known)

    def save(self, step: str | None = None) -> Path:
        """Write the resolved parameters to run.json, remembering which step set them, and which recipe
        fields the run set itself (the others follow the recipe of whatever MODEL a later step uses)."""
        from .models import RECIPE_FIELDS

        path = self.run_path / RUN_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        record = json.loads(path.read_text()) if path.exists() else {}
        record["config"] = self.resolved().to_dict()
        record["recipe_fields_from_recipe"] = [name for name in RECIPE_FIELDS if getattr(self, name) is None]
        if step:
            record.setdefault("steps", {})[step] = self.resolved().to_dict()
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, run_dir: str | Path) -> "Config":
        path = Path(run_dir) / RUN_FILE
        if not path.exists():
            raise FileNotFoundError(f"No {RUN_FILE} in {run_dir}: run the earlier steps (01_load first).")
        return cls.from_dict(json.loads(path.read_text())["config"])

    @classmethod
    def from_params(cls, params: dict, step: str | None = None, save: bool = True) -> "Config":
        """Build the config of a notebook from its parameters cell.

        ``params`` is usually ``globals()``: every UPPER_CASE name that is a config field is taken.
        Fields the notebook does not declare come from run.json (what earlier steps used), so that
        e.g. 05_evaluate knows the language and model of the run. The result is saved to run.json.
        """
        given = {k.lower(): v for k, v in params.items() if k.isupper() and k.lower() in cls.field_names()}
        base = cls(**{k: given[k] for k in ("language", "run_dir") if k in given})
        run_file = base.run_path / RUN_FILE
        if run_file.exists():
            earlier = cls.load(base.run_path).to_dict()
            record = json.loads(run_file.read_text())
            for name in record.get("recipe_fields_from_recipe", []):  # resolved again for this step's MODEL
                earlier[name] = None
            earlier.update(given)
            config = cls.from_dict(earlier)
        else:
            config = cls(**given)
        if save:
            config.save(step)
        return config.resolved()


def parse_assignment(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` (a command-line parameter) with VALUE read as a Python literal when it is one
    (3e-4, True, None), else a string; NAME must be a parameter of some notebook."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, raw = text.split("=", 1)
    name = name.strip().upper()
    if name not in Config.parameter_names():
        raise argparse.ArgumentTypeError(
            f"unknown parameter {name!r}; known: {', '.join(Config.parameter_names())}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name, value


def resolve_run_dir(run_dir: str | Path, language: str) -> Path:
    """``RUN_DIR`` as an absolute path: given, or runs/<language> (on Colab: on Google Drive)."""
    if run_dir:
        return Path(run_dir).expanduser().resolve()
    from .colab import in_colab  # local import: colab.py is tiny and has no heavy dependencies

    if in_colab():
        return DRIVE_RUNS / language
    here = Path.cwd()
    root = here.parent if here.name == "notebooks" else here
    return (root / "runs" / language).resolve()
