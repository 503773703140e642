"""Every parameter of every notebook, in one dataclass, saved as ``<RUN_DIR>/run.json``: plain data.

A notebook's parameters cell declares UPPER_CASE names; each is the upper-case form of a field here
(``LANGUAGE`` -> ``language``). Defaults are the seed's (the 2021 XLSR fine-tuning week notebook) unless
a comment says otherwise. The fields of ``RECIPE_FIELDS`` left at ``None`` take the value of the model family's
recipe: ``families.resolve`` fills them, once per step (``run_config.from_params``), and records in
:class:`Resolution` which family it chose and why; run.json keeps both, so a later step reads what an earlier one
decided. Nothing here reads a model or imports the rest of the package (but for the Colab check of
:func:`resolve_run_dir`).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .constants import DEFAULT_MODEL, DRIVE_RUNS, RUN_FILE, STEPS, TINY_MODEL
from .files import write_json_atomic

# The fields a model family's recipe fills when a run leaves them at None (families.RECIPES: one value each).
RECIPE_FIELDS = (
    "batch_size", "gradient_accumulation_steps", "learning_rate", "warmup_steps", "num_train_epochs", "eval_steps",
    "save_steps", "logging_steps", "layerdrop", "mask_time_prob", "gradient_checkpointing", "attention_dropout",
    "hidden_dropout", "feat_proj_dropout", "freeze_feature_encoder", "freeze_encoder_steps", "mask_feature_prob",
    "mask_feature_length", "speed_perturbation",
)


@dataclass(frozen=True)
class Resolution:
    """Which family's recipe a run follows: decided by ``families.resolve`` and kept in run.json.

    A later step with the same MODEL and MODEL_FAMILY reuses it (another MODEL decides again); when MODEL's
    config.json is no longer the one read here (``config_sha256``), that step says so and decides again.
    """

    family: str  # a key of families.RECIPES
    how: str  # how it was found: MODEL_FAMILY, the checkpoint's config.json, or the name of a well-known Hub id
    model: str  # the MODEL it was decided for
    model_family: str = ""  # the MODEL_FAMILY it was decided under
    config_sha256: str = ""  # SHA-256 of MODEL's config.json as read then; "" when it was not readable
    step: str = ""  # the step that decided
    from_recipe: tuple[str, ...] = ()  # the RECIPE_FIELDS left to the recipe (run.json: recipe_fields_from_recipe)


@dataclass
class Config:
    # --- every step ---------------------------------------------------------------------------
    language: str = "tr"  # Common Voice locale code: tr, de, fr, zh-CN, ...
    run_dir: str = ""  # "" -> runs/<language> (on Colab: Google Drive, MyDrive/xlsr-runs/<language>)
    seed: int = 42  # random seed for sampling, splits and training

    # --- 01_load ------------------------------------------------------------------------------
    data_source: str = "synthetic"  # synthetic | common_voice:<dir> | hub:<id> | audiofolder:<dir> | mdc:<id>; join with +
    mdc_sample: bool = False  # mdc:<id> only: the dataset's small sample instead of the whole release (a quick rehearsal)
    synthetic_size: str = "demo"  # tiny | demo | small (only for DATA_SOURCE=synthetic)
    extra_train_splits: str = ""  # "" | validated | other | validated+other (minus dev and test)
    keep_test_speakers_in_train: bool = False  # EXTRA_TRAIN_SPLITS only: True keeps validated/other rows of test and eval speakers in train (the card then says its test WER is optimistic)
    max_samples_per_split: int = 0  # 0 = all; else keep at most this many rows per split (quick runs)
    min_duration_s: float = 0.5  # drop clips shorter than this
    max_duration_s: float = 20.0  # drop clips longer than this (long clips cause OOM)
    min_up_votes: int = 0  # drop rows with fewer up-votes (Common Voice TSVs only)
    test_fraction: float = 0.1  # held-out share of speakers when a source has no test split
    hub_text_column: str = "sentence"  # text column of a hub:/audiofolder: source
    hub_audio_column: str = "audio"  # audio column of a hub: source
    hub_streaming: bool = False  # stream a hub: source instead of downloading it (the clips read are saved in the run folder)
    embed_audio: bool = False  # copy audio bytes into the saved dataset (run folder survives without clips)
    decode_check_clips: int = 1000  # clips per split decode-checked (a seeded sample; -1 all, 0 none); the rest get the cheap check

    # --- 02_normalize -------------------------------------------------------------------------
    normalizer: str = "auto"  # auto (omnilingual for an Omnilingual ASR MODEL, else profile) | profile (language-aware) | omnilingual (as Omnilingual ASR's training text) | seed_regex (the 2021 notebook's regex)
    chars_to_ignore: str = ""  # extra characters to remove, e.g. "«»"
    keep_chars: str = ""  # characters to keep even if the profile would remove them, e.g. "'-"

    # --- 03_vocab and 04_train -----------------------------------------------------------------
    # Fields left at None take the value of the model family's recipe (families.RECIPES): "seed" below means
    # the 2021 notebook's value (wav2vec2, XLSR, XLS-R, HuBERT, WavLM, data2vec-audio).
    model: str = DEFAULT_MODEL  # Hub id, local path, or "tiny" (small random model for CPU)
    model_family: str = ""  # "" = from the checkpoint's config.json; or wav2vec2 | wav2vec2-1b | hubert | wavlm | data2vec-audio | w2v-bert | mms-adapter | omniasr-ctc | parakeet-ctc | generic-ctc | tiny
    target_lang: str = ""  # MMS adapters: the adapter's language code; "" = ISO 639-3 of LANGUAGE (tr -> tur)
    vocabulary: str = "auto"  # auto (model when MODEL has a CTC head and a tokenizer that writes the training text, else train) | model (keep MODEL's tokenizer and CTC head) | train (a new character vocabulary and head)
    batch_size: int | None = None  # None: recipe (16 seed, 32 MMS adapters, 8 tiny); per-device train batch size
    gradient_accumulation_steps: int | None = None  # None: recipe (2 seed, 1 MMS adapters and tiny)
    learning_rate: float | None = None  # None: recipe (3e-4 seed, 4.5e-5 XLS-R 1B/2B, 2e-5 HuBERT/WavLM, 5e-5 w2v-BERT, 1e-5 Omnilingual, 1e-4 Parakeet, 1e-3 MMS adapters, 5e-3 tiny)
    warmup_steps: int | None = None  # None: recipe (500 seed, 100 MMS adapters); -1 = 8 % of the steps (tiny)
    num_train_epochs: float | None = None  # None: recipe (30 seed and tiny, 10 w2v-BERT, 4 MMS adapters)
    max_steps: int = -1  # > 0 overrides NUM_TRAIN_EPOCHS
    eval_steps: int | None = None  # None: recipe (400 seed, 300 w2v-BERT, 100 MMS adapters and tiny)
    save_steps: int | None = None  # None: recipe (400 seed, 600 w2v-BERT, 200 MMS adapters, 100 tiny)
    logging_steps: int | None = None  # None: recipe (400 seed, 300 w2v-BERT, 100 MMS adapters, 20 tiny)
    save_total_limit: int = 2  # keep this many checkpoints (the best one too: 1 and 2 both peak at 3 while a new one is written); on Colab with the run folder on Drive: on the local disk
    drive_mirror_every: int = 0  # run folder on Google Drive: mirror every N-th checkpoint there for a resume; 0 = auto (as often as Drive's free space allows for the whole run, its bin included), -1 = never
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
    compare_with: str = ""  # other models scored on the same test clips: run folders, model folders, Hub ids, id@lang (MMS adapter), any ASR-pipeline model (comma list)

    # --- 06_model_card ------------------------------------------------------------------------
    hub_model_id: str = ""  # "" -> <user>/wav2vec2-large-xlsr-<language> when pushing
    push_to_hub: bool = False  # upload 06_model_card/upload/ with HfApi().upload_folder
    license: str = ""  # "" = the base model's license (its model card, or a table of well-known ids); or a Hub license id
    license_confirmed: bool = False  # True: LICENSE may grant what the base's does not (you may relicense it, e.g. you own the base)
    author_name: str = ""  # shown in the model card

    extra: dict = field(default_factory=dict)  # free-form notes saved with the run
    # Not a parameter: None until families.resolve fills the recipe's values and records the family here.
    resolution: Resolution | None = None

    # --------------------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        """The parameters (not ``extra`` and ``resolution``)."""
        return [f.name for f in fields(cls) if f.name not in ("extra", "resolution")]

    @classmethod
    def parameter_names(cls) -> list[str]:
        """The UPPER_CASE names a notebook may declare."""
        return [name.upper() for name in cls.field_names()]

    def updated(self, **changes: Any) -> "Config":
        """A copy with ``changes``; a recipe field set here is the run's own from now on."""
        unknown = set(changes) - set(self.field_names()) - {"extra"}
        if unknown:
            raise ValueError(f"Unknown parameter(s) {sorted(unknown)}; known: {self.field_names()}")
        resolution = self.resolution
        if resolution is not None and set(changes) & set(resolution.from_recipe):
            kept = tuple(name for name in resolution.from_recipe if name not in changes)
            resolution = dataclasses.replace(resolution, from_recipe=kept)
        return dataclasses.replace(self, **changes, resolution=resolution)

    def is_tiny(self) -> bool:
        return self.model == TINY_MODEL

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
        """06_model_card/upload; with the run folder on Google Drive, its twin on the local disk (the whole model
        goes there, and to the Hub, not to Drive's 15 GB: ``colab.local_twin``)."""
        from .colab import local_twin

        return local_twin(self.step_dir("06_model_card")) / "upload"

    # --- run.json -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Every field; the resolution without ``from_recipe`` (run.json keeps that once, beside the config)."""
        data = dataclasses.asdict(self)
        if data["resolution"] is not None:
            data["resolution"].pop("from_recipe")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        known = {k: v for k, v in data.items() if k in cls.field_names() or k == "extra"}
        if data.get("resolution"):
            names = {f.name for f in fields(Resolution)}
            known["resolution"] = Resolution(**{k: v for k, v in data["resolution"].items() if k in names})
        return cls(**known)

    def save(self, step: str | None = None) -> Path:
        """Write this resolved config into run.json as the run's (what a later step starts from) and, given
        ``step``, as that step's; beside it the recipe fields the run left open, which a later step fills from
        the recipe of its own MODEL (``recipe_fields_from_recipe``)."""
        if self.resolution is None:
            raise ValueError("Config.save writes a resolved config: families.resolve(cfg) fills the recipe's values.")
        record = read_run_record(self.run_path)
        record["config"] = self.to_dict()
        record["recipe_fields_from_recipe"] = list(self.resolution.from_recipe)
        if step:
            record.setdefault("steps", {})[step] = self.to_dict()
        return write_json_atomic(self.run_path / RUN_FILE, record)

    @classmethod
    def load(cls, run_dir: str | Path) -> "Config":
        """The run's config as the last step saved it (resolved)."""
        record = read_run_record(run_dir)
        if not record:
            raise FileNotFoundError(f"No {RUN_FILE} in {run_dir}: run the earlier steps (01_load first).")
        cfg = cls.from_dict(record["config"])
        if cfg.resolution is not None:
            from_recipe = tuple(record.get("recipe_fields_from_recipe", ()))
            cfg = dataclasses.replace(cfg, resolution=dataclasses.replace(cfg.resolution, from_recipe=from_recipe))
        return cfg


def read_run_record(run_dir: str | Path) -> dict:
    """The whole of ``<run_dir>/run.json`` (``config``, ``recipe_fields_from_recipe``, ``steps``); {} when absent."""
    path = Path(run_dir) / RUN_FILE
    return json.loads(path.read_text()) if path.exists() else {}


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
