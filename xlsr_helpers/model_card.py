"""Step 06: a complete model card, an upload folder that is verified by reloading it, an optional push.

The seed asked participants to paste their WER into a README full of TODOs. Here everything in the card
comes from the run folder:

* the YAML header is made by huggingface_hub's ``ModelCardData`` (language, datasets, metrics, tags,
  license, model-index with the test WER and CER of ``05_evaluate/metrics.json``: greedy, and when step 05
  used an n-gram LM its figures too, as separate entries ``"Test WER (n-gram LM)"`` with ``args.decoding``);
* the body says what the model is, how to use it (code that runs as written, 16 kHz input), how to
  reproduce the number (with the run's own text normalization), what data and hyper-parameters made it
  (``01_load/report.json``, ``02_normalize/report.json``, ``run.json``), the results with their confidence
  interval, and its limitations;
* the upload folder ``06_model_card/upload/`` holds every file that defines the checkpoint (config,
  safetensors weights, tokenizer and feature-extractor/processor files, vocab.json), the run's
  ``normalizer.json``, ``README.md``, for MMS adapters the ``adapter.<lang>.safetensors`` file, and when step
  05 decoded with an n-gram LM that LM in pyctcdecode's layout (``alphabet.json`` + ``language_model/``, which
  ``Wav2Vec2ProcessorWithLM.from_pretrained`` loads too). It is verified by loading it back with
  ``AutoModelForCTC`` + ``AutoProcessor`` (the model's own classes, and ``target_lang`` for an adapter) and
  with ``pipeline("automatic-speech-recognition")`` on a test clip: both must give the greedy text that step
  05 wrote for that clip, and the shipped LM (pyctcdecode, as the card's code) the LM text of step 05;
* ``HfApi().upload_folder`` pushes it when asked and a token exists; the token is never printed or
  written anywhere.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .colab import INSTALL_REQUIREMENT, REPOSITORY
from .config import Config
from .constants import DEFAULT_MODEL, SAMPLING_RATE
from .evaluate import (COMPARISON_FILE, GREEDY, LM, LM_ALPHABET_FILE, LM_FOLDER, LM_INSTALL_HINT, METRIC_SUFFIX,
                       EvaluationError, audio_array, build_lm_decoder, check_model_folder, has_lm, is_hub_id, load_test_split,
                       metrics_by_decoding, read_transcriptions)
from .families import RECIPES
from .models import adapter_weights_file
from .normalize import primary_metric

STEP = "06_model_card"
TAGS = ["audio", "automatic-speech-recognition", "speech", "xlsr-fine-tuning-week"]
CARD_FILE = "README.md"
NORMALIZER_FILE = "normalizer.json"
REPO_URL = f"https://github.com/{REPOSITORY}"  # the one repository constant (badges, install cell, card)
INSTALL = f'pip install "{INSTALL_REQUIREMENT}"'
# Files a saved CTC model + processor may consist of (transformers 4.x and 5.x names).
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json", "tokenizer_config.json", "tokenizer.json",
                   "vocab.json", "special_tokens_map.json", "added_tokens.json")
# model-index: every metric once per decoding, with `args: {decoding: ...}` telling the entries apart (leaderboards
# read it); the metric names are "Test WER" and "Test WER (n-gram LM)" (evaluate.METRIC_SUFFIX).
INDEX_DECODING = {GREEDY: "greedy", LM: "n-gram-lm"}
LANGUAGE_NAMES = {
    "ab": "Abkhaz", "ar": "Arabic", "as": "Assamese", "br": "Breton", "ca": "Catalan", "cnh": "Hakha Chin",
    "cs": "Czech", "cv": "Chuvash", "cy": "Welsh", "de": "German", "dv": "Dhivehi", "el": "Greek",
    "en": "English", "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "fy-NL": "Frisian", "ga-IE": "Irish", "hi": "Hindi", "hsb": "Sorbian",
    "hu": "Hungarian", "ia": "Interlingua", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "ka": "Georgian", "ky": "Kyrgyz", "lg": "Luganda", "lt": "Lithuanian", "lv": "Latvian", "mn": "Mongolian",
    "mt": "Maltese", "nl": "Dutch", "or": "Odia", "pa-IN": "Punjabi", "pl": "Polish", "pt": "Portuguese",
    "rm-sursilv": "Romansh Sursilvan", "rm-vallader": "Romansh Vallader", "ro": "Romanian", "ru": "Russian",
    "rw": "Kinyarwanda", "sah": "Sakha", "sl": "Slovenian", "sv-SE": "Swedish", "ta": "Tamil", "th": "Thai",
    "tr": "Turkish", "tt": "Tatar", "uk": "Ukrainian", "vi": "Vietnamese", "zh-CN": "Chinese (China)",
    "zh-HK": "Chinese (Hong Kong)", "zh-TW": "Chinese (Taiwan)",
}


class ModelCardError(ValueError):
    """Something the card or the upload folder cannot be made without, said in plain words."""


# ------------------------------------------------------------------------------------------------
# Names
# ------------------------------------------------------------------------------------------------
def language_name(language: str) -> str:
    return LANGUAGE_NAMES.get(language, language)


def hub_language(language: str) -> str:
    """The Hub's language tag: ISO 639 code without the Common Voice region (zh-CN -> zh, sv-SE -> sv)."""
    return language.split("-")[0].lower()


def model_name(cfg: Config) -> str:
    """Repository name: wav2vec2-large-xlsr-<language> (the seed's), wav2vec2-tiny-<language> for tiny."""
    if cfg.is_tiny():
        return f"wav2vec2-tiny-{cfg.language}"
    if cfg.model == DEFAULT_MODEL:
        return f"wav2vec2-large-xlsr-{cfg.language}"
    base = Path(str(cfg.model).rstrip("/")).name
    return f"{base}-{cfg.language}"


def repo_id(cfg: Config, user: str | None = None) -> str:
    """HUB_MODEL_ID, else <user>/<model name> (just the name when the user is not known)."""
    if cfg.hub_model_id:
        return cfg.hub_model_id
    return f"{user}/{model_name(cfg)}" if user else model_name(cfg)


def base_model_label(cfg: Config) -> str:
    if cfg.is_tiny():
        return "random weights (the curriculum's tiny model)"
    if Path(cfg.model).exists():
        return f"the local checkpoint `{Path(cfg.model).name}`"
    return f"[{cfg.model}](https://huggingface.co/{cfg.model})"


def _public_source(spec: str) -> str:
    """A data source with local folders shortened to their last two parts (no home paths in a card)."""
    parts = []
    for item in spec.split("+"):
        kind, _, value = item.strip().partition(":")
        if kind in ("common_voice", "audiofolder") and value:
            tail = "/".join(Path(value).parts[-2:])
            parts.append(f"{kind}:/path/to/{tail}")
        else:
            parts.append(item.strip())
    return "+".join(parts)


def dataset_ids(cfg: Config) -> list[tuple[str, str]]:
    """``(id, pretty name)`` per data source, for the card's ``datasets`` and model-index."""
    out = []
    for item in cfg.data_source.split("+"):
        kind, _, value = item.strip().partition(":")
        if kind == "common_voice":
            match = re.search(r"cv-corpus-(\d+)\.(\d+)", value)
            if match:
                major, minor = match.groups()
                out.append((f"mozilla-foundation/common_voice_{major}_{minor}", f"Common Voice {major}.{minor}"))
            else:
                out.append(("common_voice", "Common Voice"))
        elif kind == "hub":
            out.append((value, value))
        elif kind == "audiofolder":
            out.append(("audiofolder", f"own recordings ({Path(value).name})"))
        elif kind == "synthetic":
            out.append(("synthetic-espeak-ng", "synthetic speech (espeak-ng, Common Voice layout)"))
        else:
            out.append((item.strip(), item.strip()))
    return out


def is_synthetic(cfg: Config) -> bool:
    return any(s.strip().split(":")[0] == "synthetic" for s in cfg.data_source.split("+"))


# ------------------------------------------------------------------------------------------------
# Reading the run
# ------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


@dataclass
class RunInfo:
    """What the card is made of: the run's config and every step's report."""

    cfg: Config
    metrics: dict
    load_report: dict = field(default_factory=dict)
    normalize_report: dict = field(default_factory=dict)
    vocab_report: dict = field(default_factory=dict)
    train_report: dict = field(default_factory=dict)
    train_config: dict = field(default_factory=dict)  # the parameters 04_train ran with (run.json)
    comparison: dict = field(default_factory=dict)  # 05_evaluate/comparison.json: other models, same clips


def read_run(cfg: Config) -> RunInfo:
    """Reports and metrics of the run; 05_evaluate/metrics.json is required."""
    metrics_path = cfg.step_dir("05_evaluate") / "metrics.json"
    if not metrics_path.exists():
        raise ModelCardError(f"No {metrics_path}: run 05_evaluate first (the card reports its WER and CER).")
    run = _read_json(cfg.run_path / "run.json")
    train_config = run.get("steps", {}).get("04_train") or run.get("config", {})
    return RunInfo(
        cfg=cfg, metrics=_read_json(metrics_path),
        load_report=_read_json(cfg.step_dir("01_load") / "report.json"),
        normalize_report=_read_json(cfg.step_dir("02_normalize") / "report.json"),
        vocab_report=_read_json(cfg.step_dir("03_vocab") / "report.json"),
        train_report=_read_json(cfg.step_dir("04_train") / "report.json"),
        train_config=train_config, comparison=_read_json(cfg.step_dir("05_evaluate") / COMPARISON_FILE),
    )


# ------------------------------------------------------------------------------------------------
# Upload folder
# ------------------------------------------------------------------------------------------------
def model_source(cfg: Config) -> Path:
    """The model the card describes: EVAL_MODEL when it is a local folder, else 04_train/model."""
    if cfg.eval_model and Path(cfg.eval_model).is_dir():
        return Path(cfg.eval_model)
    if cfg.eval_model:
        raise ModelCardError(
            f"EVAL_MODEL={cfg.eval_model!r} is not a local folder: a card and upload folder are made for "
            "a model of this run (leave EVAL_MODEL empty) or a local model folder."
        )
    return Path(cfg.model_dir)


def lm_source(info: RunInfo) -> str | None:
    """The n-gram LM that step 05 decoded with (its ``metrics.json``), to ship with the model; None without one."""
    if info.metrics.get(LM) is None:
        return None
    lm_path = info.metrics[LM].get("lm_path")
    if not lm_path or not (Path(lm_path).exists() or is_hub_id(lm_path)):
        raise ModelCardError(
            f"Step 05 decoded with the n-gram LM {lm_path!r}, which is not there any more: put it back, or run "
            "05_evaluate again without LM_PATH (the card reports only what its upload folder can reproduce)."
        )
    return lm_path


def prepare_upload(model_dir: str | Path, upload_dir: str | Path, normalizer_path: str | Path | None = None,
                   lm_path: str | Path | None = None) -> list[str]:
    """Fill ``upload_dir`` with the model and processor (re-saved: safetensors, current file names), the run's
    normalizer.json and, with ``lm_path`` (``lm_source(info)``), the n-gram LM in pyctcdecode's layout
    (``alphabet.json`` + ``language_model/``); anything else in the folder (optimizer states, old files) is
    removed. Returns the file and folder names."""
    from transformers import AutoModelForCTC, AutoProcessor

    model_dir, upload_dir = Path(model_dir), Path(upload_dir)
    if not model_dir.exists():
        raise ModelCardError(f"No model at {model_dir}: run 04_train first.")
    check_model_folder(model_dir)
    model = AutoModelForCTC.from_pretrained(str(model_dir))
    processor = AutoProcessor.from_pretrained(str(model_dir))
    tmp = upload_dir.with_name(upload_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    processor.save_pretrained(str(tmp))
    if normalizer_path is not None and Path(normalizer_path).exists():
        shutil.copy(normalizer_path, tmp / NORMALIZER_FILE)
    for adapter in model_dir.glob(adapter_weights_file("*")):  # MMS: the language adapter beside the model
        shutil.copy(adapter, tmp / adapter.name)
    if lm_path:  # the processor stays the plain one: AutoProcessor and the pipeline need no pyctcdecode
        build_lm_decoder(processor, lm_path).save_to_dir(str(tmp))
    known = MODEL_FILES + PROCESSOR_FILES + (NORMALIZER_FILE, LM_ALPHABET_FILE, LM_FOLDER)
    unexpected = [p.name for p in tmp.iterdir() if p.name not in known
                  and not re.fullmatch(r"model-\d+-of-\d+\.safetensors", p.name)
                  and not re.fullmatch(r"adapter\.[\w-]+\.safetensors", p.name)]
    if unexpected:
        raise ModelCardError(f"save_pretrained wrote files this step does not know: {unexpected}")
    shutil.rmtree(upload_dir, ignore_errors=True)
    tmp.rename(upload_dir)
    return sorted(p.name for p in upload_dir.iterdir())


def upload_files_table(upload_dir: str | Path) -> list[dict]:
    """Name, size and role of every file in the upload folder."""
    roles = {
        "config.json": "model architecture (its family's config class)", "model.safetensors": "weights (safetensors)",
        "generation_config.json": "generation defaults", "model.safetensors.index.json": "weight shards index",
        "preprocessor_config.json": "feature extractor (16 kHz, normalization, attention mask)",
        "processor_config.json": "processor: feature extractor (16 kHz, normalization, attention mask)",
        "tokenizer_config.json": "CTC tokenizer settings (special tokens, word delimiter)",
        "vocab.json": "CTC vocabulary (one output per character)", "tokenizer.json": "tokenizer",
        "special_tokens_map.json": "special tokens", "added_tokens.json": "added special tokens",
        NORMALIZER_FILE: "text normalization of the references (xlsr_helpers.normalize)",
        CARD_FILE: "this model card",
        LM_ALPHABET_FILE: "n-gram LM decoding: the CTC vocabulary as pyctcdecode reads it",
        LM_FOLDER + "/": "n-gram LM decoding: KenLM model, unigrams.txt, attrs.json (alpha, beta)",
    }
    rows = []
    for path in sorted(Path(upload_dir).iterdir()):
        name = path.name + "/" if path.is_dir() else path.name
        role = roles.get(name, "")
        if not role and path.name.startswith("adapter."):
            role = "language adapter + CTC head (loaded by target_lang)"
        elif not role and path.suffix == ".safetensors":
            role = "weights shard"
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        rows.append({"file": name, "bytes": size, "role": role})
    return rows


# ------------------------------------------------------------------------------------------------
# The card
# ------------------------------------------------------------------------------------------------
def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def adapter_language(folder: str | Path) -> str | None:
    """The language of an MMS adapter saved in a model folder (``adapter.<lang>.safetensors``), or None."""
    found = sorted(Path(folder).glob(adapter_weights_file("*"))) if Path(folder).is_dir() else []
    return found[0].name[len("adapter."):-len(".safetensors")] if found else None


def usage_code(model_id: str, target_lang: str | None = None, with_lm: bool = False) -> str:
    """The card's usage snippet (runs as written: any audio file, resampled to 16 kHz). The Auto classes
    load the model's own architecture and processor (wav2vec2, HuBERT, WavLM, w2v-BERT, ...). ``with_lm``:
    the same logits also decoded by pyctcdecode with the n-gram LM the upload ships."""
    adapter = f", target_lang=\"{target_lang}\"" if target_lang else ""
    path_import = lm_imports = lm_loading = lm_decoding = greedy_comment = ""
    if with_lm:
        path_import = "from pathlib import Path\n\n"
        lm_imports = "from huggingface_hub import snapshot_download\nfrom pyctcdecode import BeamSearchDecoderCTC\n"
        lm_loading = (f"\n# The n-gram LM of this repository: {LM_ALPHABET_FILE} + {LM_FOLDER}/ (pyctcdecode)\n"
                      f"lm_files = MODEL_ID if Path(MODEL_ID).is_dir() else snapshot_download(\n"
                      f"    MODEL_ID, allow_patterns=[\"{LM_ALPHABET_FILE}\", \"{LM_FOLDER}/*\"])\n"
                      "decoder = BeamSearchDecoderCTC.load_from_dir(lm_files)")
        greedy_comment = "  # greedy: the most likely character per frame"
        lm_decoding = "\nprint(decoder.decode(logits[0].numpy()))  # beam search with the n-gram LM"
    return f'''{path_import}import torch
{lm_imports}from torchcodec.decoders import AudioDecoder
from transformers import AutoModelForCTC, AutoProcessor

MODEL_ID = "{model_id}"
AUDIO = "clip.mp3"  # any audio file (Common Voice mp3, wav, flac ...); it is decoded at 16 kHz

processor = AutoProcessor.from_pretrained(MODEL_ID)
model = AutoModelForCTC.from_pretrained(MODEL_ID{adapter}).eval(){lm_loading}

speech = AudioDecoder(AUDIO, sample_rate=16_000).get_all_samples().data.mean(dim=0).numpy()
inputs = processor.feature_extractor(speech, sampling_rate=16_000, return_tensors="pt")
with torch.inference_mode():
    logits = model(**inputs).logits
print(processor.batch_decode(logits.argmax(dim=-1))[0]){greedy_comment}{lm_decoding}'''


def data_parameters(cfg: Config) -> dict[str, Any]:
    """The parameters of steps 01-02 that differ from the defaults (DATA_SOURCE always)."""
    names = ["data_source", "synthetic_size", "extra_train_splits", "max_samples_per_split", "min_duration_s",
             "max_duration_s", "min_up_votes", "test_fraction", "hub_text_column", "hub_audio_column",
             "normalizer", "chars_to_ignore", "keep_chars", "seed"]
    default = Config()
    out = {}
    for name in names:
        value = getattr(cfg, name)
        if name == "data_source":
            out["DATA_SOURCE"] = _public_source(value)
        elif name == "synthetic_size" and not is_synthetic(cfg):
            continue
        elif value != getattr(default, name):
            out[name.upper()] = value
    return out


def evaluation_code(cfg: Config, model_id: str, with_lm: bool = False) -> tuple[str, str]:
    """(shell commands, python code) that rebuild the test split and reproduce the card's numbers (``with_lm``:
    greedy and with the n-gram LM the upload ships)."""
    params = data_parameters(cfg)
    source = params.pop("DATA_SOURCE")
    flags = " ".join(f"-p {shlex.quote(f'{k}={v}')}" for k, v in params.items())
    shell = (f"{INSTALL}\n"
             f"xlsr run --language {shlex.quote(cfg.language)} --run-dir runs/{cfg.language} --steps 1-2 "
             f"--source {shlex.quote(source)} {flags}".rstrip())
    imports, lm_line, lm_argument = "evaluate, load_model, load_test_split", "", ""
    if with_lm:
        imports = "build_lm_decoder, " + imports
        lm_line = f"\nlm_decoder = build_lm_decoder(processor, MODEL_ID)  # the n-gram LM in {LM_FOLDER}/"
        lm_argument = ",\n                  lm_decoder=lm_decoder"
    python = f'''from xlsr_helpers.config import Config
from xlsr_helpers.evaluate import {imports}
from xlsr_helpers.normalize import load_normalizer

MODEL_ID = "{model_id}"
RUN_DIR = "runs/{cfg.language}"  # made by the command above (steps 01-02)

model, processor = load_model(MODEL_ID){lm_line}
test = load_test_split(Config.load(RUN_DIR))
normalize = load_normalizer(RUN_DIR)  # the same rules as normalizer.json in this repository
result = evaluate(model, processor, test, normalize, batch_size={cfg.eval_batch_size}, chunk_length_s={cfg.chunk_length_s}{lm_argument})
print(result.summary())'''
    return shell, python


def _table(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "(none)\n"
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in columns) + " |")
    return "\n".join(lines) + "\n"


def training_data_section(info: RunInfo) -> str:
    cfg, load, norm = info.cfg, info.load_report, info.normalize_report
    names = ", ".join(name for _, name in dataset_ids(cfg))
    lines = [f"Source: {names} — `DATA_SOURCE = {_public_source(cfg.data_source)!r}`, language `{cfg.language}`.\n"]
    splits = load.get("splits", {})
    if splits:
        rows = [{"split": s, "clips": v.get("clips", ""), "hours": v.get("hours", ""), "speakers": v.get("speakers", ""),
                 "mean s": v.get("mean_s", ""), "max s": v.get("max_s", "")} for s, v in splits.items()]
        lines.append(_table(rows))
        lines.append("Train, eval and test are speaker-disjoint where the source is (Common Voice's own splits); "
                     "no test clip or test sentence is in train or eval (checked in step 01 and again after "
                     "normalization).\n")
    filters = (f"Filters: clips shorter than {cfg.min_duration_s} s or longer than {cfg.max_duration_s} s are dropped"
               + (f", rows with fewer than {cfg.min_up_votes} up-votes" if cfg.min_up_votes else "")
               + (f", at most {cfg.max_samples_per_split} rows per split" if cfg.max_samples_per_split else "")
               + (f"; extra training rows from `{cfg.extra_train_splits}`" if cfg.extra_train_splits else "") + ".")
    lines.append(filters + "\n")
    dropped = load.get("dropped_total", {})
    reasons = load.get("reasons", {})
    if dropped:
        lines.append("Rows dropped while loading:\n")
        lines.append(_table([{"reason": reasons.get(r, r), "rows": n} for r, n in dropped.items()]))
    elif load:
        lines.append("No row was dropped while loading.\n")
    if norm:
        n = norm.get("normalizer", {})
        removed = norm.get("removed_chars", "")
        text = (f"Text normalization: `NORMALIZER = {n.get('mode', cfg.normalizer)!r}` (profile "
                f"`{n.get('profile_name', cfg.language)}`), the same for training and evaluation; its rules are in "
                f"`{NORMALIZER_FILE}`. Characters before → after: {norm.get('chars_before', '?')} → "
                f"{norm.get('chars_after', '?')}")
        if removed:
            text += f"; removed: `{' '.join(removed)}`"
        text += "."
        emptied = norm.get("emptied_total", 0)
        if emptied:
            text += f" {emptied} sentences were empty after normalization and dropped."
        leaks = norm.get("leak_removed_after_normalization", 0)
        if leaks:
            text += f" {leaks} train/eval rows whose normalized sentence is a test sentence were dropped."
        lines.append(text + "\n")
    if info.vocab_report.get("vocab_size"):
        lines.append(f"Vocabulary: {info.vocab_report['vocab_size']} tokens (characters, word delimiter `|`, "
                     f"`[UNK]`, `[PAD]` = CTC blank).\n")
    return "\n".join(lines)


def hyperparameters_section(info: RunInfo) -> str:
    tc, report = info.train_config, info.train_report
    names = ["model", "model_family", "target_lang", "learning_rate", "batch_size", "gradient_accumulation_steps", "num_train_epochs", "max_steps",
             "warmup_steps", "precision", "seed", "layerdrop", "mask_time_prob", "attention_dropout",
             "hidden_dropout", "feat_proj_dropout", "freeze_feature_encoder", "gradient_checkpointing",
             "group_by_length"]
    rows = [{"parameter": n.upper(), "value": tc[n]} for n in names if n in tc and tc[n] not in ("", None)]
    extra = []
    if report.get("family"):
        extra.append({"parameter": "model family (recipe)", "value": report["family"]})
    if report.get("world_size"):
        extra.append({"parameter": "processes (GPUs)", "value": report["world_size"]})
    params = report.get("parameters", {})
    if params.get("total"):
        extra.append({"parameter": "parameters (total / trainable)", "value": f"{params['total']:,} / {params.get('trainable', 0):,}"})
    for key, label in (("global_step", "optimizer steps done"), ("epochs", "epochs done"),
                       ("train_hours", "training audio (hours)"), ("train_seconds", "training time (s)"),
                       ("stopped_by", "stopped by")):
        if report.get(key) is not None:
            extra.append({"parameter": label, "value": report[key]})
    if not rows and not extra:
        return "The run folder has no record of the training parameters (run.json).\n"
    return _table(rows + extra, ["parameter", "value"])


def metric_name(key: str, decoding: str) -> str:
    """"Test WER", "Test CER (n-gram LM)": the names of the card's results table and of its model-index."""
    return f"Test {key.upper()}{METRIC_SUFFIX[decoding]}"


def results_section(info: RunInfo) -> str:
    m = info.metrics
    rows = []
    for decoding, figures in metrics_by_decoding(m).items():
        ci = figures.get("ci", {})
        level = int(round(100 * ci.get("level", 0.95)))
        for key, unit, total in (("wer", "words", "reference_words"), ("cer", "characters", "reference_chars")):
            low, high = ci.get(key, [float("nan"), float("nan")])
            rows.append({"metric": metric_name(key, decoding), "decoding": INDEX_DECODING[decoding],
                         "value (%)": _pct(figures[key]), f"{level}% CI (%)": f"{_pct(low)} – {_pct(high)}",
                         "reference units": f"{figures.get(total, '?')} {unit}"})
    text = _table(rows)
    final = info.train_report.get("eval", {})
    if "wer" in final and "cer" in final:
        text += (f"\nAt the end of training, on the eval split (04_train's own greedy evaluation): WER "
                 f"{_pct(final['wer'])} %, CER {_pct(final['cer'])} %.\n")
    decoding = "greedy CTC decoding (the most likely character per frame)"
    if LM in m:
        decoding += (f"; and beam search with the n-gram LM of `{LM_FOLDER}/` (pyctcdecode + KenLM, as in the usage "
                     "code) on the same logits")
    ci = m.get("ci", {})
    text += (f"\nOn the {m.get('n', '?')} utterances of the test split, references normalized as in training, "
             f"{decoding}. The interval is a percentile bootstrap over utterances "
             f"({ci.get('n_resamples', 1000)} resamples, seed {ci.get('seed', 0)}): with a small test set it is wide, "
             "and two models whose intervals overlap may not differ.\n")
    if primary_metric(info.cfg.language) == "cer":
        text += (f"\n{language_name(info.cfg.language)} is written without spaces between words, so a whole "
                 "sentence counts as one \"word\" for the WER: the CER is the meaningful number here.\n")
    return text


def comparison_section(info: RunInfo) -> str:
    """Baseline vs fine-tuned: the models of step 05's comparison on the same clips, and each pair's paired
    bootstrap interval of the difference; "" when the run was not compared."""
    c = info.comparison
    if not c.get("models") or not c.get("pairs"):
        return ""
    level = int(round(100 * c.get("level", 0.95)))
    key = c.get("metric", "wer")
    models = [{"model": f"`{m['label']}`", "Test WER (%)": _pct(m["wer"]), "Test CER (%)": _pct(m["cer"]),
               "cannot write": "".join(sorted(m.get("unwritable", {}))) or "—"}
              for m in sorted(c["models"], key=lambda m: m[key])]
    pairs = [{"A − B": f"`{p['a']}` − `{p['b']}`", f"{key.upper()} difference (points)": f"{100 * p[key]['difference']:+.2f}",
              f"{level}% CI (points)": f"{100 * p[key]['low']:+.2f} – {100 * p[key]['high']:+.2f}",
              "verdict": p[key]["verdict"]} for p in c["pairs"]]
    sources = "; ".join(f"`{m['label']}`: {m['model']}" for m in c["models"])
    return (f"On the same {c.get('n', '?')} test clips, references normalized by this run's normalizer, greedy decoding "
            f"for every model ({sources}):\n\n{_table(models)}\n"
            f"Is the difference real? A paired bootstrap over the clips ({c.get('n_resamples', 1000)} resamples, the same "
            f"clips for both models); an interval that contains 0 means this test set cannot tell the two apart:\n\n"
            f"{_table(pairs)}")


def limitations_section(info: RunInfo) -> str:
    cfg = info.cfg
    items = []
    empty, n = info.metrics.get("empty_predictions", 0), info.metrics.get("n", 0)
    if n and empty >= n / 2:
        items.append(f"It transcribes {empty} of the {n} test clips as empty text: it has **not learned yet** "
                     "(it needs more training steps); the numbers above are those of an untrained model.")
    if is_synthetic(cfg):
        items.append("It was trained and tested only on **synthetic speech** (espeak-ng reading generated sentences "
                     "with a closed vocabulary). It does not recognize human speech; it is a rehearsal of the "
                     "curriculum, not a usable speech recognizer.")
    if cfg.is_tiny():
        items.append("It is the curriculum's **tiny** model (trained from random weights on a CPU), far smaller "
                     "than XLSR-53; its error rates say that the pipeline works, not what XLSR can do.")
    items += [
        "Input must be 16 kHz mono speech; other rates must be resampled (the usage code does this).",
        "It outputs lower-case text without punctuation, in the character set of its vocabulary; characters "
        "outside it cannot be produced.",
        "Common Voice is read speech by volunteers; accents, ages and genders are unevenly represented, and "
        "spontaneous, noisy or far-field speech will give higher error rates than the test split.",
        lm_limitation(info),
        "The test set is the source's test split: speaker-disjoint from training where the source is, but "
        "from the same recording conditions.",
    ]
    return "\n".join(f"- {item}" for item in items) + "\n"


def lm_limitation(info: RunInfo) -> str:
    """What the card's decodings are, true with and without a shipped n-gram LM."""
    if LM not in info.metrics:
        return ("Decoded greedily (the most likely character per frame), without a language model; beam search "
                "with an n-gram LM (pyctcdecode + KenLM, `LM_PATH` in the curriculum's step 05) usually lowers "
                "the WER.")
    return (f"Two decodings are reported. Greedy is the model alone (`AutoProcessor`, and the ASR pipeline, which "
            f"decodes greedily). The n-gram LM of `{LM_FOLDER}/` needs pyctcdecode and KenLM (`{LM_INSTALL_HINT}`); "
            "it favours the words and word sequences of the text it was built from, so words outside that text "
            "(names, rare words) are penalized, and on speech about other things it may help less, or hurt. Its "
            "figures are honest only if that text holds none of the test sentences, which the card cannot show.")


def headline(metrics: dict) -> str:
    """The card's first numbers: greedy, and with the n-gram LM when the upload ships one."""
    n = metrics.get("n", "?")
    text = f"Test WER **{_pct(metrics['wer'])}** %, CER **{_pct(metrics['cer'])}** %"
    if LM in metrics:
        lm = metrics[LM]
        text += (f" with greedy decoding; with the n-gram LM of this repository WER **{_pct(lm['wer'])}** %, "
                 f"CER **{_pct(lm['cer'])}** %")
    return text + f" ({n} test utterances; details under Results)."


def usage_intro(with_lm: bool) -> str:
    if not with_lm:
        return "The model can be used directly (without a language model) as follows:"
    return (f"The model can be used directly (greedy decoding, nothing beyond transformers), or with the n-gram "
            f"language model in `{LM_FOLDER}/` (beam search with pyctcdecode and KenLM: "
            f"`{LM_INSTALL_HINT}`). This code prints both transcriptions:")


def build_card(info: RunInfo, model_id: str, upload_files: list[str] | None = None):
    """The ModelCard (huggingface_hub) of the run: YAML from ModelCardData, body from the reports."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    cfg, m = info.cfg, info.metrics
    for key in ("wer", "cer"):
        if key not in m:
            raise ModelCardError(f"05_evaluate/metrics.json has no {key!r}: run 05_evaluate again.")
    with_lm = LM in m
    if with_lm and upload_files is not None and LM_FOLDER not in upload_files:
        raise ModelCardError(
            f"Step 05 reports figures with an n-gram LM, but the upload folder has no {LM_FOLDER}/: the card would "
            "promise a number its files cannot reproduce. Pass lm_path=lm_source(info) to prepare_upload."
        )
    datasets = dataset_ids(cfg)
    dataset_type, dataset_name = datasets[0]
    title = (f"Wav2Vec2 tiny {language_name(cfg.language)}" if cfg.is_tiny()
             else f"{model_name(cfg).replace('-' + cfg.language, '')} {language_name(cfg.language)}")
    results = [
        EvalResult(task_type="automatic-speech-recognition", task_name="Automatic Speech Recognition",
                   dataset_type=dataset_type, dataset_name=f"{dataset_name} {cfg.language}",
                   dataset_config=cfg.language, dataset_split="test", metric_type=key,
                   metric_name=metric_name(key, decoding), metric_value=round(100 * figures[key], 2),
                   metric_args={"decoding": INDEX_DECODING[decoding]})
        for decoding, figures in metrics_by_decoding(m).items() for key in ("wer", "cer")
    ]
    data = ModelCardData(
        language=hub_language(cfg.language), license=cfg.license, library_name="transformers",
        pipeline_tag="automatic-speech-recognition", datasets=[d for d, _ in datasets], metrics=["wer", "cer"],
        tags=list(TAGS), model_name=title, eval_results=results,
        base_model=None if cfg.is_tiny() or Path(cfg.model).exists() else cfg.model,
    )
    shell, evaluation = evaluation_code(cfg, model_id, with_lm)
    language_code = info.train_report.get("target_lang")
    author = f" by {cfg.author_name}" if cfg.author_name else ""
    datasets_text = ", ".join(n for _, n in datasets)
    curriculum = f"[XLSR fine-tuning curriculum]({REPO_URL})"
    if cfg.is_tiny():
        intro = (f"A tiny Wav2Vec2ForCTC (the curriculum's CPU rehearsal model), trained{author} from random "
                 f"weights on {language_name(cfg.language)} ({datasets_text}) with the {curriculum}.")
    else:
        intro = (f"Fine-tuned{author} from {base_model_label(cfg)} on {language_name(cfg.language)} "
                 f"({datasets_text}) with the {curriculum}.")
        family = RECIPES.get(info.train_report.get("family", ""))
        if family is not None and family.freeze == "base_model":
            intro += (f" It is an MMS language adapter (`target_lang=\"{language_code}\"`): the base model's weights "
                      "are unchanged; only the adapter layers and the CTC head were trained.")
        elif family is not None:
            intro += f" Model family: {family.title}."
    intro += " When using this model, make sure that your speech input is sampled at 16 kHz."
    files = upload_files or []
    comparison = comparison_section(info)
    comparison = f"## Baseline vs fine-tuned\n\n{comparison}\n" if comparison else ""
    lm_files = (f" `{LM_ALPHABET_FILE}` and `{LM_FOLDER}/` hold the n-gram LM in pyctcdecode's layout "
                "(`BeamSearchDecoderCTC.load_from_dir`, `Wav2Vec2ProcessorWithLM.from_pretrained`).") if with_lm else ""
    body = f"""
# {title}

{intro}

{headline(m)}

## Intended uses

Transcribing {language_name(cfg.language)} speech into lower-case text without punctuation, one clip at a time
or in batches; a starting point for further fine-tuning or for decoding with a language model.

## Usage

{usage_intro(with_lm)}

```python
{usage_code(model_id, language_code, with_lm)}
```

Or with the pipeline, which decodes (greedily) and resamples the file itself:
`pipeline("automatic-speech-recognition", model="{model_id}")("clip.mp3")["text"]`.

## Evaluation

The test split is rebuilt with the curriculum's steps 01-02 and the data parameters of this run, then
transcribed and scored exactly as reported here (batched by length, attention mask as the architecture
needs, the run's text normalization on the references):

```bash
{shell}
```

```python
{evaluation}
```

## Training data

{training_data_section(info)}
## Training hyper-parameters

{hyperparameters_section(info)}
## Results

{results_section(info)}
{comparison}## Limitations

{limitations_section(info)}
## Files

{', '.join(f'`{f}/`' if f == LM_FOLDER else f'`{f}`' for f in files + [CARD_FILE] * (CARD_FILE not in files))}. `{NORMALIZER_FILE}` holds
the text normalization of the references (`xlsr_helpers.normalize.load_normalizer(folder)`).{lm_files}
"""
    card = ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n{{ body }}", body=body)
    leftover = [word for word in ("TODO", "{wer_result_on_test}", "{language}") if word in str(card)]
    if leftover:
        raise ModelCardError(f"The card still contains placeholders: {leftover}")
    return card


def code_blocks(card_text: str, language: str = "python") -> list[str]:
    """The fenced code blocks of a card in a language (tests run them)."""
    return re.findall(rf"```{language}\n(.*?)```", card_text, flags=re.S)


# ------------------------------------------------------------------------------------------------
# Verification
# ------------------------------------------------------------------------------------------------
def verify_upload(upload_dir: str | Path, audio: Any, expected: str | None = None,
                  expected_lm: str | None = None) -> dict:
    """Reload the folder as the card's usage code does and transcribe ``audio`` (a clip in any form
    ``evaluate.audio_array`` reads) with every decoding the folder offers:

    * greedy, always: AutoModelForCTC + AutoProcessor (``target_lang`` for an MMS adapter), and the ASR pipeline;
      both must give ``expected`` (step 05's greedy text for the clip);
    * with the n-gram LM, when the folder ships one or step 05 had one (``expected_lm``, step 05's LM text):
      pyctcdecode loads ``alphabet.json`` + ``language_model/`` and decodes the same logits. An LM that is
      missing or incomplete is an error that says which file is missing.

    Raises ModelCardError when a text differs."""
    import torch
    from transformers import AutoModelForCTC, AutoProcessor, pipeline

    language = adapter_language(upload_dir)
    speech = audio_array(audio)
    processor = AutoProcessor.from_pretrained(str(upload_dir))
    model = AutoModelForCTC.from_pretrained(str(upload_dir), **({"target_lang": language} if language else {})).eval()
    inputs = processor.feature_extractor(speech, sampling_rate=SAMPLING_RATE, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs).logits
    direct = processor.batch_decode(logits.argmax(dim=-1))[0]
    asr = pipeline("automatic-speech-recognition", model=str(upload_dir), device="cpu")
    piped = asr({"raw": speech, "sampling_rate": SAMPLING_RATE})["text"]
    result = {"model_and_processor": direct, "pipeline": piped, "expected": expected,
              "model_class": type(model).__name__, "target_lang": language}
    problems = []
    if direct != piped or (expected is not None and direct != expected):
        problems.append(f"greedy: {type(model).__name__}+{type(processor).__name__} {direct!r}, pipeline {piped!r}, "
                        f"05_evaluate {expected!r}")
    if has_lm(upload_dir) or expected_lm is not None:
        try:
            decoder = build_lm_decoder(processor, upload_dir)
        except EvaluationError as error:
            raise ModelCardError(f"The upload folder's n-gram LM cannot be loaded: {error}") from error
        result["lm"] = decoder.decode(logits[0].numpy())
        result["expected_lm"] = expected_lm
        if expected_lm is not None and result["lm"] != expected_lm:
            problems.append(f"n-gram LM: pyctcdecode {result['lm']!r}, 05_evaluate {expected_lm!r}")
    result["ok"] = not problems
    if problems:
        raise ModelCardError(f"The upload folder does not reproduce step 05's transcription: {'; '.join(problems)}.")
    return result


# ------------------------------------------------------------------------------------------------
# Push
# ------------------------------------------------------------------------------------------------
NO_TOKEN_MESSAGE = (
    "PUSH_TO_HUB is True but no Hugging Face token was found, so nothing was uploaded. Create a token with "
    "write access at https://huggingface.co/settings/tokens, then either set the HF_TOKEN environment "
    "variable (on Colab: the key icon -> add secret HF_TOKEN, notebook access on), or run "
    "`from huggingface_hub import notebook_login; notebook_login()` in a cell, and run this notebook again. "
    "The upload folder is complete and can also be uploaded by hand: {folder}"
)


def find_token() -> str | None:
    """The Hugging Face token (HF_TOKEN, a saved login, a Colab secret), or None. Never print it."""
    from huggingface_hub import get_token

    return get_token()


def hub_user(token: str) -> str:
    from huggingface_hub import HfApi

    return HfApi(token=token).whoami()["name"]


def push_to_hub(upload_dir: str | Path, repo: str, token: str | None = None, private: bool = False) -> dict:
    """Create the model repository if needed and upload the folder; a clear message when there is no token."""
    from huggingface_hub import HfApi

    token = token or find_token()
    if not token:
        message = NO_TOKEN_MESSAGE.format(folder=upload_dir)
        print(message)
        return {"pushed": False, "repo_id": repo, "message": message}
    if "/" not in repo:
        repo = f"{hub_user(token)}/{repo}"
    api = HfApi(token=token)
    api.create_repo(repo_id=repo, repo_type="model", exist_ok=True, private=private)
    info = api.upload_folder(repo_id=repo, folder_path=str(upload_dir), repo_type="model",
                             commit_message="Upload model, processor and model card (xlsr-curriculum)")
    url = getattr(info, "commit_url", None) or f"https://huggingface.co/{repo}"
    return {"pushed": True, "repo_id": repo, "url": str(url), "message": f"Uploaded to https://huggingface.co/{repo}"}


# ------------------------------------------------------------------------------------------------
# The step
# ------------------------------------------------------------------------------------------------
@dataclass
class CardResult:
    card_path: Path
    upload_dir: Path
    files: list[str]
    repo_id: str
    verification: dict
    push: dict
    card_text: str

    @property
    def header(self) -> str:
        return self.card_text.split("---")[1].strip()


def run_model_card(cfg: Config, push: bool | None = None) -> CardResult:
    """Step 06: upload folder, card, verification, optional push (PUSH_TO_HUB)."""
    push = cfg.push_to_hub if push is None else push
    info = read_run(cfg)
    token = find_token() if push else None
    user = hub_user(token) if push and token and not cfg.hub_model_id else None
    model_id = repo_id(cfg, user)

    upload_dir = Path(cfg.upload_dir)
    normalizer = cfg.step_dir("02_normalize") / NORMALIZER_FILE
    files = prepare_upload(model_source(cfg), upload_dir, normalizer if normalizer.exists() else None, lm_source(info))
    card = build_card(info, model_id, files)
    card.save(str(upload_dir / CARD_FILE))
    card_text = (upload_dir / CARD_FILE).read_text(encoding="utf-8")

    # Verify on the first test clip against step 05's own transcriptions of it (each decoding).
    test = load_test_split(cfg)
    first = test["id"][0] if "id" in test.column_names else "0"
    step05 = read_transcriptions(cfg.step_dir("05_evaluate"))
    expected = {decoding: texts.get(first) for decoding, texts in step05.items()}
    # Step 05 in half precision (CUDA) may differ from this float32 check in a near-tie: compared, not required.
    strict = info.metrics.get("dtype", "float32") == "float32"
    verification = verify_upload(upload_dir, test[0]["audio"], *(expected.get(d) if strict else None
                                                                 for d in (GREEDY, LM)))
    verification["clip"] = first
    verification["matches_05_evaluate"] = (verification["model_and_processor"] == expected.get(GREEDY)
                                           and verification.get("lm") == expected.get(LM))

    pushed = {"pushed": False, "repo_id": model_id, "message": "PUSH_TO_HUB is False: nothing uploaded."}
    if push:
        pushed = push_to_hub(upload_dir, model_id, token=token)
    return CardResult(upload_dir / CARD_FILE, upload_dir, sorted(p.name for p in upload_dir.iterdir()), model_id,
                      verification, pushed, card_text)
