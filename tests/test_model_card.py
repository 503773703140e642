"""Step 06 (xlsr_helpers.card): the card's header and body, the upload folder, its snippets, the push.

The run folder is the one of test_evaluate.build_tiny_run (real steps 01-03 on the synthetic corpus and a
random tiny model), evaluated once by step 05 for this module; and once more with an n-gram LM made from its
training sentences (``carded_lm``), whose upload ships that LM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_evaluate import (build_tiny_run, copy_run, keep_test_clips, require_lm_decoder, run_config,  # noqa: E402
                           train_sentences, write_arpa)

from xlsr_helpers import evaluate as ev  # noqa: E402
from xlsr_helpers.card.hub import HubLoginError, card_model_id, find_token, push_to_hub  # noqa: E402
from xlsr_helpers.card.names import (dataset_ids, hub_language, language_name, model_name,  # noqa: E402
                                     public_source, repo_id)
from xlsr_helpers.card.run_info import ModelCardError, RunInfo, read_run  # noqa: E402
from xlsr_helpers.card.snippets import code_blocks, data_parameters  # noqa: E402
from xlsr_helpers.card.step import run_model_card  # noqa: E402
from xlsr_helpers.card.text import TAGS, build_card  # noqa: E402
from xlsr_helpers.card.upload import lm_source, prepare_upload  # noqa: E402
from xlsr_helpers.card.verify import verify_upload  # noqa: E402
from xlsr_helpers.config import Config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FAKE_TOKEN = "hf_FAKEtokenNEVERshownAnywhere0123456789"


@pytest.fixture(scope="module")
def carded(tmp_path_factory):
    """A run through step 06 (no push): (cfg, CardResult)."""
    run = copy_run(build_tiny_run(tmp_path_factory.getbasetemp()), tmp_path_factory.mktemp("card") / "run")
    cfg = run_config(run, author_name="Ada Lovelace")
    ev.run_evaluation(cfg, progress=False)
    return cfg, run_model_card(cfg)


@pytest.fixture(scope="module")
def carded_lm(tmp_path_factory):
    """A run through step 06 whose step 05 decoded with a bigram LM of its training sentences (4 test clips:
    beam search on a random model's flat logits is slow): (cfg, CardResult)."""
    require_lm_decoder()
    base = tmp_path_factory.mktemp("card-lm")
    run = keep_test_clips(copy_run(build_tiny_run(tmp_path_factory.getbasetemp()), base / "run"), 4)
    lm = write_arpa(train_sentences(run), base / "train-bigram.arpa")
    cfg = run_config(run, lm_path=str(lm))
    ev.run_evaluation(cfg, progress=False)
    return cfg, run_model_card(cfg)


def _clip_file(clip: dict, folder: Path) -> Path:
    """The clip's audio file (written out when save_to_disk embedded it), as a user has one."""
    audio = clip["audio"]
    if audio.get("bytes"):
        path = folder / Path(audio["path"] or "clip.mp3").name
        path.write_bytes(audio["bytes"])
        return path
    return Path(audio["path"])


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_card_header_is_complete(carded):
    from huggingface_hub import ModelCard

    cfg, result = carded
    metrics = json.loads((cfg.step_dir("05_evaluate") / "metrics.json").read_text())
    card = ModelCard.load(str(result.card_path))
    data = card.data.to_dict()
    assert data["language"] == "tr" and data["license"] == "apache-2.0"  # tiny has no base: the curriculum's
    assert "License: `apache-2.0`, the curriculum's default" in result.card_text  # and the card says why
    assert set(TAGS) <= set(data["tags"])
    assert data["metrics"] == ["wer", "cer"] and data["datasets"]
    assert data["pipeline_tag"] == "automatic-speech-recognition"
    results = {r.metric_type: r for r in card.data.eval_results}
    assert results["wer"].metric_value == round(100 * metrics["wer"], 2)
    assert results["cer"].metric_value == round(100 * metrics["cer"], 2)
    assert results["wer"].dataset_split == "test" and results["wer"].task_type == "automatic-speech-recognition"
    assert [(r.metric_name, r.metric_args) for r in card.data.eval_results] == [
        ("Test WER", {"decoding": "greedy"}), ("Test CER", {"decoding": "greedy"})]
    assert "without a language model" in result.card_text.split("## Limitations")[1]
    assert "TODO" not in result.card_text and "{" + "wer_result_on_test}" not in result.card_text


def test_card_body_has_every_section_and_the_numbers(carded):
    cfg, result = carded
    text = result.card_text
    metrics = json.loads((cfg.step_dir("05_evaluate") / "metrics.json").read_text())
    for section in ("## Usage", "## Evaluation", "## Training data", "## Training hyper-parameters", "## Results",
                    "## Limitations"):
        assert section in text
    results = text.split("## Results")[1].split("## Limitations")[0]
    low, high = metrics["ci"]["wer"]
    assert f"{100 * metrics['wer']:.2f}" in results and f"{100 * low:.2f} – {100 * high:.2f}" in results
    assert f"{metrics['n']} utterances" in results
    load_report = json.loads((cfg.step_dir("01_load") / "report.json").read_text())
    assert f"| test | {load_report['splits']['test']['clips']} |" in text
    assert "synthetic speech" in text.split("## Limitations")[1], "a synthetic-data model says so"
    assert "Ada Lovelace" in text and "16 kHz" in text
    trained_with = json.loads((cfg.run_path / "run.json").read_text())["config"]
    assert f"| LEARNING_RATE | {trained_with['learning_rate']} |" in text, "the hyper-parameters come from run.json"


def test_upload_folder_has_every_defining_file(carded):
    cfg, result = carded
    files = set(result.files)
    assert {"config.json", "model.safetensors", "vocab.json", "tokenizer_config.json", "README.md",
            "normalizer.json"} <= files
    assert files & {"processor_config.json", "preprocessor_config.json"}
    assert not [f for f in files if f.endswith(".bin") or f.startswith(("training_args", "optimizer"))]
    assert result.verification["ok"] and result.verification["matches_05_evaluate"]
    assert result.verification["pipeline"] == result.verification["model_and_processor"]
    assert not result.push["pushed"]


def test_usage_snippet_runs_and_matches_evaluate(carded, tmp_path):
    from datasets import Audio

    cfg, result = carded
    code = code_blocks(result.card_text)[0]
    assert f'MODEL_ID = "{result.repo_id}"' in code
    test = ev.load_test_split(cfg).cast_column("audio", Audio(decode=False))
    clip = test[1]
    code = code.replace(f'MODEL_ID = "{result.repo_id}"', f"MODEL_ID = {str(result.upload_dir)!r}")
    code = code.replace('AUDIO = "clip.mp3"', f"AUDIO = {str(_clip_file(clip, tmp_path))!r}")
    done = _run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    predictions = {r["path"]: r["prediction"] for r in ev.read_predictions(cfg.step_dir("05_evaluate") / "predictions.tsv")}
    assert done.stdout.splitlines()[-1] == predictions[clip["id"]]


def _run_evaluation_snippet(cfg, result, tmp_path):
    """The card's evaluation code (its second Python block) run against the local upload and run folder;
    returns the finished process and step 05's metrics.json."""
    code = code_blocks(result.card_text)[1]
    code = code.replace(f'MODEL_ID = "{result.repo_id}"', f"MODEL_ID = {str(result.upload_dir)!r}")
    code = re.sub(r'RUN_DIR = "runs/tr"', f"RUN_DIR = {str(cfg.run_path)!r}", code)
    done = _run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads((cfg.step_dir("05_evaluate") / "metrics.json").read_text())


def test_evaluation_snippet_reproduces_the_numbers(carded, tmp_path):
    cfg, result = carded
    done, metrics = _run_evaluation_snippet(cfg, result, tmp_path)
    assert f"Test WER: {100 * metrics['wer']:.2f}" in done.stdout
    assert f"CER: {100 * metrics['cer']:.2f}" in done.stdout
    shell = code_blocks(result.card_text, "bash")[0]
    assert "--steps 1-2" in shell and "SYNTHETIC_SIZE=tiny" in shell


def test_reloads_with_wav2vec2_classes(carded):
    from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

    _, result = carded
    processor = Wav2Vec2Processor.from_pretrained(str(result.upload_dir))
    model = Wav2Vec2ForCTC.from_pretrained(str(result.upload_dir))
    assert model.config.vocab_size == len(processor.tokenizer)
    assert processor.feature_extractor.sampling_rate == 16000


def test_verification_catches_a_different_transcription(carded):
    cfg, result = carded
    clip = ev.load_test_split(cfg)[0]["audio"]
    with pytest.raises(ModelCardError, match="does not reproduce"):
        verify_upload(result.upload_dir, clip, expected="not what the model says")


def test_card_needs_step_05(tmp_path):
    with pytest.raises(ModelCardError, match="05_evaluate"):
        read_run(Config(run_dir=str(tmp_path)))


def test_upload_needs_a_complete_model_folder(tmp_path):
    from xlsr_helpers.evaluate import EvaluationError

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    with pytest.raises(EvaluationError, match="processor"):
        prepare_upload(tmp_path / "model", tmp_path / "upload")
    with pytest.raises(ModelCardError, match="04_train"):
        prepare_upload(tmp_path / "absent", tmp_path / "upload")


def test_push_without_token_says_what_to_do(monkeypatch, tmp_path, capsys):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    result = push_to_hub(tmp_path, "someone/model")
    assert not result["pushed"]
    out = capsys.readouterr().out
    assert "HF_TOKEN" in out and "hf auth login" in out and str(tmp_path) in out


def test_push_with_token_names_the_namespace_in_the_card_and_never_shows_the_token(monkeypatch, carded, tmp_path,
                                                                                   capsys):
    """PUSH_TO_HUB with HF_TOKEN: the repository id gets the token's user (whoami) before the card is written, so
    the card's usage code and the upload name the same ``ada/wav2vec2-tiny-tr``; the token is nowhere."""
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            assert token == FAKE_TOKEN
            calls.append(("init",))

        def create_repo(self, **kwargs):
            calls.append(("create_repo", kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))
            return type("Info", (), {"commit_url": f"https://huggingface.co/{kwargs['repo_id']}/commit/1"})()

    def whoami(token=None):
        assert token == FAKE_TOKEN
        return {"name": "ada"}

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "whoami", whoami)
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    cfg, card = carded
    run = copy_run(cfg.run_path, tmp_path / "run")
    result = run_model_card(run_config(run), push=True)
    assert result.repo_id == "ada/wav2vec2-tiny-tr" and result.push["pushed"]
    assert 'MODEL_ID = "ada/wav2vec2-tiny-tr"' in result.card_text and card_model_id(result.upload_dir) == result.repo_id
    upload = [c[1] for c in calls if c[0] == "upload_folder"][0]
    assert upload["folder_path"] == str(result.upload_dir) and upload["repo_id"] == "ada/wav2vec2-tiny-tr"
    assert all(FAKE_TOKEN not in json.dumps(c[1] if len(c) > 1 else "", default=str) for c in calls)
    assert FAKE_TOKEN not in json.dumps(result.push) and FAKE_TOKEN not in capsys.readouterr().out
    assert FAKE_TOKEN not in result.card_text and find_token() == FAKE_TOKEN
    # A folder whose card names no namespace, or another repository, is not pushed under a name it does not say.
    with pytest.raises(HubLoginError, match="no namespace"):
        push_to_hub(card.upload_dir, "wav2vec2-tiny-tr")
    with pytest.raises(ModelCardError, match="names the repository 'wav2vec2-tiny-tr'"):
        push_to_hub(card.upload_dir, "ada/wav2vec2-tiny-tr")
    assert len([c for c in calls if c[0] == "upload_folder"]) == 1


def test_names_and_sources():
    cfg = Config(language="zh-CN", model="facebook/wav2vec2-large-xlsr-53",
                 data_source="common_voice:/home/ada/data/cv-corpus-17.0-2024-03-15/zh-CN+hub:org/extra")
    assert hub_language("zh-CN") == "zh" and language_name("zh-CN") == "Chinese (China)"
    assert model_name(cfg) == "wav2vec2-large-xlsr-zh-CN"
    assert repo_id(cfg, "ada") == "ada/wav2vec2-large-xlsr-zh-CN"
    assert repo_id(cfg.updated(hub_model_id="org/name"), "ada") == "org/name"
    assert [d for d, _ in dataset_ids(cfg)] == ["mozilla-foundation/common_voice_17_0", "org/extra"]
    public = public_source(cfg.data_source)
    assert "/home/ada" not in public and "cv-corpus-17.0-2024-03-15/zh-CN" in public
    params = data_parameters(cfg.updated(min_duration_s=1.0, chars_to_ignore="«»"))
    assert params["MIN_DURATION_S"] == 1.0 and params["CHARS_TO_IGNORE"] == "«»" and "SYNTHETIC_SIZE" not in params


def test_card_for_a_real_checkpoint_names_its_base_model(tmp_path):
    cfg = Config(language="tr", model="facebook/wav2vec2-large-xlsr-53", data_source="common_voice:/d/cv-corpus-6.1-2020-12-11/tr",
                 run_dir=str(tmp_path))
    metrics = {"wer": 0.2512, "cer": 0.0712, "n": 1647, "ci": {"level": 0.95, "wer": [0.24, 0.26], "cer": [0.068, 0.074],
               "n_resamples": 1000, "seed": 42}, "reference_words": 9000, "reference_chars": 60000}
    info = RunInfo(cfg=cfg, metrics=metrics, train_config={"learning_rate": 3e-4, "batch_size": 16},
                      train_report={"global_step": 4000, "world_size": 2, "eval": {"wer": 0.27, "cer": 0.08}})
    card = build_card(info, "ada/wav2vec2-large-xlsr-tr", ["config.json"])
    data = card.data.to_dict()
    assert data["base_model"] == "facebook/wav2vec2-large-xlsr-53"
    assert data["datasets"] == ["mozilla-foundation/common_voice_6_1"]
    assert card.data.eval_results[0].metric_value == 25.12
    text = str(card)
    assert "synthetic speech" not in text and "Fine-tuned from [facebook/wav2vec2-large-xlsr-53]" in text
    assert "Test WER **25.12** %" in text
    assert "| LEARNING_RATE | 0.0003 |" in text and "| optimizer steps done | 4000 |" in text
    assert "| processes (GPUs) | 2 |" in text and "eval split (04_train's own greedy evaluation): WER 27.00 %" in text
    assert "CER is the meaningful number" not in text and "not learned yet" not in text
    untrained = build_card(RunInfo(cfg=cfg, metrics={**metrics, "empty_predictions": 1647}), "ada/x")
    assert "not learned yet" in str(untrained)
    zh = build_card(RunInfo(cfg=cfg.updated(language="zh-CN"), metrics=metrics), "ada/x")
    assert "CER is the meaningful number" in str(zh) and zh.data.language == "zh"
    with pytest.raises(ModelCardError, match="cer"):
        build_card(RunInfo(cfg=cfg, metrics={"wer": 0.1}), "x")


# ------------------------------------------------------------------------------------------------
# with an n-gram LM (LM_PATH in step 05): the upload ships it, the card reports and reproduces both decodings
# ------------------------------------------------------------------------------------------------
LM_INDEX = [("Test WER", "wer", "greedy"), ("Test CER", "cer", "greedy"),
            ("Test WER (n-gram LM)", "wer", "n-gram-lm"), ("Test CER (n-gram LM)", "cer", "n-gram-lm")]


def test_card_with_an_lm_lists_both_decodings(carded_lm):
    from huggingface_hub import ModelCard

    cfg, result = carded_lm
    metrics = json.loads((cfg.step_dir("05_evaluate") / "metrics.json").read_text())
    card = ModelCard.load(str(result.card_path))
    entries = [(r.metric_name, r.metric_type, r.metric_args["decoding"]) for r in card.data.eval_results]
    assert entries == LM_INDEX
    figures = {"greedy": metrics, "n-gram-lm": metrics["lm"]}
    for r in card.data.eval_results:
        assert r.metric_value == round(100 * figures[r.metric_args["decoding"]][r.metric_type], 2)
        # keep_test_clips cut the test split to 4 clips after step 02: the card says it is a part of the split
        assert (r.dataset_type, r.dataset_split, r.dataset_config) == ("synthetic-espeak-ng", "test-filtered", "tr")
        assert r.dataset_args["rows_scored"] == 4 and r.dataset_args["rows_lost"]["not_scored"] > 0
    assert metrics["lm"]["wer"] != metrics["wer"], "the two decodings differ, so a mix-up would show"
    results = result.card_text.split("## Results")[1].split("## Limitations")[0]
    assert f"| Test WER (n-gram LM) | n-gram-lm | {100 * metrics['lm']['wer']:.2f} |" in results
    assert f"| Test WER | greedy | {100 * metrics['wer']:.2f} |" in results
    limitations = result.card_text.split("## Limitations")[1].split("## Files")[0]
    assert "without a language model" not in limitations and "language_model/" in limitations


def test_upload_with_an_lm_is_pyctcdecodes_layout(carded_lm, monkeypatch):
    import pyctcdecode
    import transformers
    from transformers import AutoProcessor

    from xlsr_helpers.audio import audio_array

    cfg, result = carded_lm
    upload = result.upload_dir
    assert {"alphabet.json", "language_model"} <= set(result.files)
    assert sorted(p.name for p in (upload / "language_model").iterdir()) == ["attrs.json", "train-bigram.arpa",
                                                                           "unigrams.txt"]
    assert (upload / "language_model" / "train-bigram.arpa").read_bytes() == Path(cfg.lm_path).read_bytes()
    clip = ev.load_test_split(cfg)[0]
    expected = ev.read_transcriptions(cfg.step_dir("05_evaluate"))["lm"][clip["id"]]
    model = transformers.AutoModelForCTC.from_pretrained(str(upload)).eval()
    processor = AutoProcessor.from_pretrained(str(upload))
    logits = model(**processor.feature_extractor(audio_array(clip["audio"]), sampling_rate=16000,
                                                 return_tensors="pt")).logits.detach()
    # pyctcdecode loads the upload's LM itself, as the card's usage code does, on every transformers version
    # (transformers deprecated Wav2Vec2ProcessorWithLM; from 5.25 its from_pretrained fails).
    decoder = pyctcdecode.BeamSearchDecoderCTC.load_from_dir(str(upload))
    assert decoder.decode(logits[0].numpy()) == expected
    # Greedy needs nothing beyond transformers: the processor is the plain one, loadable without pyctcdecode.
    monkeypatch.setitem(sys.modules, "pyctcdecode", None)
    assert type(AutoProcessor.from_pretrained(str(upload))).__name__ == "Wav2Vec2Processor"


def test_usage_snippet_with_an_lm_reproduces_the_cards_numbers(carded_lm, tmp_path):
    from datasets import Audio
    from huggingface_hub import ModelCard

    cfg, result = carded_lm
    code = code_blocks(result.card_text)[0]
    code = code.replace(f'MODEL_ID = "{result.repo_id}"', f"MODEL_ID = {str(result.upload_dir)!r}")
    test = ev.load_test_split(cfg).cast_column("audio", Audio(decode=False))
    files = [str(_clip_file(clip, tmp_path)) for clip in test]
    # The snippet as written, its transcription part run for every test clip (one process).
    loading, per_clip = code.split("\nspeech = ")
    code = loading + f"\nfor AUDIO in {files!r}:\n" + textwrap.indent("speech = " + per_clip, "    ")
    done = _run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()[-2 * len(files):]
    printed = {"greedy": lines[0::2], "lm": lines[1::2]}
    step05 = ev.read_transcriptions(cfg.step_dir("05_evaluate"))
    for decoding in ("greedy", "lm"):
        assert printed[decoding] == [step05[decoding][i] for i in test["id"]], decoding
    assert printed["lm"] != printed["greedy"]
    references = [r["reference"] for r in ev.read_predictions(cfg.step_dir("05_evaluate") / "predictions.tsv")]
    card = {(r.metric_type, r.metric_args["decoding"]): r.metric_value
            for r in ModelCard.load(str(result.card_path)).data.eval_results}
    for decoding, label in (("greedy", "greedy"), ("lm", "n-gram-lm")):
        figures = ev.compute_metrics(references, printed[decoding], n_resamples=10)
        assert (card[("wer", label)], card[("cer", label)]) == (round(100 * figures["wer"], 2),
                                                                round(100 * figures["cer"], 2))


def test_evaluation_snippet_with_an_lm_reproduces_both_numbers(carded_lm, tmp_path):
    cfg, result = carded_lm
    done, metrics = _run_evaluation_snippet(cfg, result, tmp_path)
    assert f"Test WER: {100 * metrics['wer']:.2f}" in done.stdout
    assert f"Test WER (n-gram LM): {100 * metrics['lm']['wer']:.2f}" in done.stdout
    assert f"CER (n-gram LM): {100 * metrics['lm']['cer']:.2f}" in done.stdout


def test_verification_checks_the_lm_and_names_what_is_missing(carded_lm, tmp_path):
    cfg, result = carded_lm
    assert result.verification["ok"] and result.verification["matches_05_evaluate"]
    step05 = ev.read_transcriptions(cfg.step_dir("05_evaluate"))
    clip = ev.load_test_split(cfg)[0]
    expected, expected_lm = step05["greedy"][clip["id"]], step05["lm"][clip["id"]]
    assert result.verification["lm"] == expected_lm != result.verification["model_and_processor"] == expected
    with pytest.raises(ModelCardError, match="n-gram LM: pyctcdecode"):
        verify_upload(result.upload_dir, clip["audio"], expected, expected_lm="not what the LM says")
    broken = tmp_path / "upload"
    shutil.copytree(result.upload_dir, broken)
    (broken / "language_model" / "train-bigram.arpa").unlink()
    with pytest.raises(ModelCardError, match=r"missing: the KenLM file \(\.arpa or \.bin or \.binary\)"):
        verify_upload(broken, clip["audio"], expected, expected_lm)
    shutil.rmtree(broken / "language_model")
    (broken / "alphabet.json").unlink()
    with pytest.raises(ModelCardError, match="missing: alphabet.json, language_model"):
        verify_upload(broken, clip["audio"], expected, expected_lm)
    assert verify_upload(broken, clip["audio"], expected)["ok"], "without an LM, greedy alone is checked"


def test_an_lm_in_metrics_needs_the_lm_in_the_upload(tmp_path):
    cfg = Config(language="tr", model="tiny", data_source="synthetic", run_dir=str(tmp_path))
    ci = {"level": 0.95, "wer": [0.2, 0.3], "cer": [0.05, 0.1], "n_resamples": 1000, "seed": 42}
    lm = {"wer": 0.18, "cer": 0.07, "n": 10, "ci": ci, "lm_path": str(tmp_path / "gone.arpa")}
    info = RunInfo(cfg=cfg, metrics={"wer": 0.25, "cer": 0.08, "n": 10, "ci": ci, "lm": lm})
    with pytest.raises(ModelCardError, match="no language_model/"):
        build_card(info, "ada/x", ["config.json", "model.safetensors"])
    card = build_card(info, "ada/x", ["config.json", "model.safetensors", "alphabet.json", "language_model"])
    assert [(r.metric_name, r.metric_value) for r in card.data.eval_results] == [
        ("Test WER", 25.0), ("Test CER", 8.0), ("Test WER (n-gram LM)", 18.0), ("Test CER (n-gram LM)", 7.0)]
    assert "with the n-gram LM of this repository WER **18.00** %" in str(card)
    with pytest.raises(ModelCardError, match="not there any more"):
        lm_source(info)
    assert lm_source(RunInfo(cfg=cfg, metrics={"wer": 0.25})) is None
