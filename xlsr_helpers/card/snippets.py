"""The code the card carries, which runs as written: how to use the model (greedy, and with the shipped
n-gram LM), and how to reproduce the card's numbers (the shell commands that rebuild the test split with
the run's data parameters, and the Python that scores it). The tests run these blocks.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from ..colab import INSTALL_REQUIREMENT
from ..config import Config
from ..lm import LM_ALPHABET_FILE, LM_FOLDER
from .names import is_synthetic, public_source

INSTALL = f'pip install "{INSTALL_REQUIREMENT}"'
# The parameters of steps 01-02 that rebuild the test split (those that differ from the defaults go in the card).
DATA_PARAMETERS = ("data_source", "mdc_sample", "synthetic_size", "extra_train_splits", "keep_test_speakers_in_train",
                   "max_samples_per_split", "min_duration_s", "max_duration_s", "min_up_votes", "test_fraction",
                   "hub_text_column", "hub_audio_column", "normalizer", "chars_to_ignore", "keep_chars", "seed")


def usage_code(model_id: str, target_lang: str | None = None, with_lm: bool = False,
               subword: bool = False) -> str:
    """The card's usage snippet (runs as written: any audio file, resampled to 16 kHz). The Auto classes
    load the model's own architecture and processor (wav2vec2, HuBERT, WavLM, w2v-BERT, Omnilingual ASR, Parakeet,
    ...). ``with_lm``: the same logits also decoded by pyctcdecode with the n-gram LM the upload ships.
    ``subword``: the model kept its own subword tokenizer, whose special tokens (the blank of Omnilingual ASR among
    them) are left out of the text, as its processor's documentation decodes (``ctc.decode_ids``)."""
    adapter = f", target_lang=\"{target_lang}\"" if target_lang else ""
    decode = ", skip_special_tokens=True" if subword else ""
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
print(processor.batch_decode(logits.argmax(dim=-1){decode})[0]){greedy_comment}{lm_decoding}'''


def data_parameters(cfg: Config, normalizer_mode: str | None = None) -> dict[str, Any]:
    """The parameters of steps 01-02 that differ from the defaults (DATA_SOURCE always); ``normalizer_mode``: what
    step 02's NORMALIZER resolved to (normalizer.json's mode), so that "auto", which reads MODEL, is not needed."""
    default = Config()
    out = {}
    for name in DATA_PARAMETERS:
        value = getattr(cfg, name)
        if name == "normalizer" and normalizer_mode == "omnilingual":  # "auto" chose it from MODEL, which 1-2 lack
            value = normalizer_mode
        if name == "data_source":
            out["DATA_SOURCE"] = public_source(value)
        elif name == "synthetic_size" and not is_synthetic(cfg):
            continue
        elif value != getattr(default, name):
            out[name.upper()] = value
    return out


def evaluation_code(cfg: Config, model_id: str, with_lm: bool = False, data: Config | None = None,
                    normalizer_mode: str | None = None) -> tuple[str, str]:
    """(shell commands, python code) that rebuild the test split and reproduce the card's numbers (``with_lm``:
    greedy and with the n-gram LM the upload ships); ``data``: the config with steps 01-02's own data parameters
    (``RunInfo.data_cfg``), else ``cfg``'s; ``normalizer_mode``: see :func:`data_parameters`."""
    params = data_parameters(data or cfg, normalizer_mode)
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


def code_blocks(card_text: str, language: str = "python") -> list[str]:
    """The fenced code blocks of a card in a language (tests run them)."""
    return re.findall(rf"```{language}\n(.*?)```", card_text, flags=re.S)
