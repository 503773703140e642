"""Checking the upload folder as a user would load it: the model runs on a test clip, and every decoding
the folder offers must give the text that step 05 wrote for that clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..constants import SAMPLING_RATE
from ..audio import audio_array
from ..ctc import is_character_tokenizer
from ..lm import build_lm_decoder, has_lm
from ..metrics import EvaluationError
from .run_info import ModelCardError
from .upload import adapter_language

# Architectures that transformers' ASR pipeline cannot run (measured, transformers 5.25): the card says to use the
# model and processor, as its code does.
PIPELINE_CANNOT_RUN = {
    "omniasr_ctc": "the ASR pipeline passes attention_mask, which OmniASRForCTC does not take (it takes padding_mask)",
}


def verify_upload(upload_dir: str | Path, audio: Any, expected: str | None = None,
                  expected_lm: str | None = None) -> dict:
    """Reload the folder as the card's usage code does and transcribe ``audio`` (a clip in any form
    ``evaluate.audio_array`` reads) with every decoding the folder offers:

    * greedy, always: AutoModelForCTC + AutoProcessor (``target_lang`` for an MMS adapter), and the ASR pipeline
      (but for the architectures it cannot run, :data:`PIPELINE_CANNOT_RUN`); both must give ``expected`` (step 05's
      greedy text for the clip);
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
    subword = not is_character_tokenizer(processor.tokenizer)  # as the card's code decodes (snippets.usage_code)
    direct = processor.batch_decode(logits.argmax(dim=-1), **({"skip_special_tokens": True} if subword else {}))[0]
    result = {"model_and_processor": direct, "expected": expected, "model_class": type(model).__name__,
              "target_lang": language}
    try:
        asr = pipeline("automatic-speech-recognition", model=str(upload_dir), device="cpu")
        piped = asr({"raw": speech, "sampling_rate": SAMPLING_RATE})["text"]
    except TypeError as error:
        if model.config.model_type not in PIPELINE_CANNOT_RUN:
            raise
        piped, result["pipeline_error"] = None, f"{PIPELINE_CANNOT_RUN[model.config.model_type]} ({error})"[:300]
    if piped is not None and subword:  # the pipeline keeps special tokens (<unk>) that the processor's decode drops
        for token in processor.tokenizer.all_special_tokens:
            piped = piped.replace(token, "")
        piped = " ".join(piped.split())
    result["pipeline"] = piped
    problems = []
    if (piped is not None and direct != piped) or (expected is not None and direct != expected):
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
