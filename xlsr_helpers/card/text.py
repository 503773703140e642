"""The model card's text, everything in it taken from the run folder.

The YAML header is made by huggingface_hub's ``ModelCardData`` (language, datasets, metrics, tags, license,
model-index with the test WER and CER of ``05_evaluate/metrics.json``: greedy, and when step 05 used an
n-gram LM its figures too, as separate entries ``"Test WER (n-gram LM)"`` with ``args.decoding``; the split is
``test`` only when it is the source's whole test split, else ``test-filtered`` / ``test-held-out`` with what made it
in the dataset's ``args``: :mod:`.splits`). The body is
the template ``template.md`` (Jinja, rendered by ``ModelCard.from_template``) filled with the sections below:
what the model is, how to use it and how to reproduce its numbers (``snippets``), what data and
hyper-parameters made it (``01_load/report.json``, ``02_normalize/report.json``, ``run.json``: the data parameters
from steps 01-02's own records, the speakers the splits share as step 01 measured them), the results with
their confidence interval, a baseline comparison when step 05 made one, and the limitations.
"""

from __future__ import annotations

from pathlib import Path

from ..colab import REPOSITORY
from ..evaluate import METRIC_SUFFIX, metrics_by_decoding
from ..inference import GREEDY, LM
from ..lm import LM_ALPHABET_FILE, LM_FOLDER, LM_INSTALL_HINT
from ..files import markdown_table, write_text_atomic
from ..families import RECIPES
from ..normalize import primary_metric
from .license import card_license
from .names import base_model_label, dataset_ids, hub_language, is_synthetic, language_name, model_name, public_source
from .run_info import ModelCardError, RunInfo
from .splits import ScoredSplit, scored_split, scored_split_text, speakers_phrase, speakers_text
from .snippets import evaluation_code, usage_code
from .upload import CARD_FILE, NORMALIZER_FILE

TEMPLATE = Path(__file__).with_name("template.md")
TAGS = ["audio", "automatic-speech-recognition", "speech", "xlsr-fine-tuning-week"]
REPO_URL = f"https://github.com/{REPOSITORY}"  # the one repository constant (badges, install cell, card)
# model-index: every metric once per decoding, with `args: {decoding: ...}` telling the entries apart (leaderboards
# read it); the metric names are "Test WER" and "Test WER (n-gram LM)" (evaluate.METRIC_SUFFIX).
INDEX_DECODING = {GREEDY: "greedy", LM: "n-gram-lm"}
HYPERPARAMETERS = ("model", "model_family", "target_lang", "learning_rate", "batch_size", "gradient_accumulation_steps",
                   "num_train_epochs", "max_steps", "warmup_steps", "precision", "seed", "layerdrop", "mask_time_prob",
                   "attention_dropout", "hidden_dropout", "feat_proj_dropout", "freeze_feature_encoder",
                   "gradient_checkpointing", "group_by_length")
TRAINING_FACTS = (("global_step", "optimizer steps done"), ("epochs", "epochs done"),
                  ("train_hours", "training audio (hours)"), ("train_seconds", "training time (s)"),
                  ("stopped_by", "stopped by"))


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def scored(info: RunInfo) -> ScoredSplit:
    """The test split the card's numbers are on (the whole source split, or which part of it)."""
    return scored_split(info.load_report, info.normalize_report, info.metrics, info.data_cfg)


def metric_name(key: str, decoding: str) -> str:
    """"Test WER", "Test CER (n-gram LM)": the names of the card's results table and of its model-index."""
    return f"Test {key.upper()}{METRIC_SUFFIX[decoding]}"


# ------------------------------------------------------------------------------------------------
# The sections
# ------------------------------------------------------------------------------------------------
def title(info: RunInfo) -> str:
    cfg = info.cfg
    if cfg.is_tiny():
        return f"Wav2Vec2 tiny {language_name(cfg.language)}"
    return f"{model_name(cfg).replace('-' + cfg.language, '')} {language_name(cfg.language)}"


def intro(info: RunInfo) -> str:
    """Who made the model from what, with which recipe; and the 16 kHz reminder."""
    cfg = info.cfg
    author = f" by {cfg.author_name}" if cfg.author_name else ""
    datasets_text = ", ".join(n for _, n in dataset_ids(info.data_cfg))
    curriculum = f"[XLSR fine-tuning curriculum]({REPO_URL})"
    if cfg.is_tiny():
        text = (f"A tiny Wav2Vec2ForCTC (the curriculum's CPU rehearsal model), trained{author} from random "
                f"weights on {language_name(cfg.language)} ({datasets_text}) with the {curriculum}.")
    else:
        text = (f"Fine-tuned{author} from {base_model_label(cfg)} on {language_name(cfg.language)} "
                f"({datasets_text}) with the {curriculum}.")
        family = RECIPES.get(info.train_report.get("family", ""))
        if family is not None and family.freeze == "base_model":
            adapter = "its own adapter for this language, trained further" if kept_vocabulary(info) else "a new one"
            text += (f" It is an MMS language adapter (`target_lang=\"{info.train_report.get('target_lang')}\"`, "
                     f"{adapter}): the base model's weights are unchanged; only the adapter layers and the CTC head "
                     "were trained.")
        elif family is not None:
            text += f" Model family: {family.title}."
        if family is not None and not family.validated:
            text += (" Its training values are an unvalidated recipe (no published fine-tuning of this family "
                     "on read speech was carried over): see Training hyperparameters.")
    license = card_license(cfg)
    text += f" License: `{license.license}`, {license.note}"
    return text + " When using this model, make sure that your speech input is sampled at 16 kHz."


def kept_vocabulary(info: RunInfo) -> bool:
    """Whether the run kept the base model's tokenizer and CTC head (step 03's VOCABULARY decision)."""
    return (info.vocab_report.get("vocabulary") or {}).get("mode") == "model"


def headline(metrics: dict, split: ScoredSplit | None = None) -> str:
    """The card's first numbers: greedy, and with the n-gram LM when the upload ships one; on which test split."""
    n = metrics.get("n", "?")
    text = f"Test WER **{_pct(metrics['wer'])}** %, CER **{_pct(metrics['cer'])}** %"
    if LM in metrics:
        lm = metrics[LM]
        text += (f" with greedy decoding; with the n-gram LM of this repository WER **{_pct(lm['wer'])}** %, "
                 f"CER **{_pct(lm['cer'])}** %")
    which = "" if split is None or split.whole else f" of the `{split.split}` split, not the source's whole test split"
    return text + f" ({n} test utterances{which}; details under Results)."


def usage_intro(with_lm: bool) -> str:
    if not with_lm:
        return "The model can be used directly (without a language model) as follows:"
    return (f"The model can be used directly (greedy decoding, nothing beyond transformers), or with the n-gram "
            f"language model in `{LM_FOLDER}/` (beam search with pyctcdecode and KenLM: "
            f"`{LM_INSTALL_HINT}`). This code prints both transcriptions:")


def training_data_section(info: RunInfo) -> str:
    cfg, load, norm = info.data_cfg, info.load_report, info.normalize_report
    names = ", ".join(name for _, name in dataset_ids(cfg))
    lines = [f"Source: {names} — `DATA_SOURCE = {public_source(cfg.data_source)!r}`, language `{cfg.language}`.\n"]
    splits = load.get("splits", {})
    if splits:
        rows = [{"split": s, "clips": v.get("clips", ""), "hours": v.get("hours", ""), "speakers": v.get("speakers", ""),
                 "mean s": v.get("mean_s", ""), "max s": v.get("max_s", "")} for s, v in splits.items()]
        lines.append(markdown_table(rows))
    if load:
        lines.append(speakers_text(load) + "\n")
    filters = (f"Filters (step 01, every split): clips shorter than {cfg.min_duration_s} s"
               + (f" or longer than {cfg.max_duration_s} s" if cfg.max_duration_s else "") + " are dropped"
               + (f", rows with fewer than {cfg.min_up_votes} up-votes" if cfg.min_up_votes else "")
               + (f", at most {cfg.max_samples_per_split} rows per split" if cfg.max_samples_per_split else "")
               + (f"; extra training rows from `{cfg.extra_train_splits}`" if cfg.extra_train_splits else "")
               + ((", clips of test and eval speakers included (`KEEP_TEST_SPEAKERS_IN_TRAIN = True`)"
                   if cfg.keep_test_speakers_in_train else ", minus the clips of test and eval speakers")
                  if cfg.extra_train_splits else "") + ".")
    lines.append(filters + "\n")
    dropped = load.get("dropped_total", {})
    reasons = load.get("reasons", {})
    if dropped:
        lines.append("Rows dropped while loading:\n")
        lines.append(markdown_table([{"reason": reasons.get(r, r), "rows": n} for r, n in dropped.items()]))
    elif load:
        lines.append("No row was dropped while loading.\n")
    if norm:
        lines.append(normalization_text(info) + "\n")
    vocab = info.vocab_report
    if kept_vocabulary(info):
        coverage = vocab.get("model_coverage") or {}
        share = coverage.get("character_coverage")
        lines.append(f"Vocabulary: the base model's own tokenizer (`{vocab.get('tokenizer_class', '?')}`, "
                     f"{vocab.get('vocab_size', '?')} tokens) and CTC head, kept: `VOCABULARY = "
                     f"{vocab['vocabulary'].get('setting', 'model')!r}` ({vocab['vocabulary'].get('reason', '')}). "
                     "Its tokenizer files are shipped unchanged"
                     + (f"; it writes {100 * share:.2f} % of the training text's characters" if share is not None
                        else "") + ".\n")
    elif vocab.get("vocab_size"):
        lines.append(f"Vocabulary: {vocab['vocab_size']} tokens (characters, word delimiter `|`, "
                     f"`[UNK]`, `[PAD]` = CTC blank), built from the training text.\n")
    return "\n".join(lines)


def normalization_text(info: RunInfo) -> str:
    """What step 02 did to the text (its report), in one paragraph."""
    norm = info.normalize_report
    n = norm.get("normalizer", {})
    removed = norm.get("removed_chars", "")
    text = (f"Text normalization: `NORMALIZER = {n.get('mode', info.cfg.normalizer)!r}` (profile "
            f"`{n.get('profile_name', info.cfg.language)}`), the same for training and evaluation; its rules are in "
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
    return text


def hyperparameters_section(info: RunInfo) -> str:
    tc, report = info.train_config, info.train_report
    rows = [{"parameter": n.upper(), "value": tc[n]} for n in HYPERPARAMETERS if n in tc and tc[n] not in ("", None)]
    extra = []
    if report.get("family"):
        extra.append({"parameter": "model family (recipe)", "value": report["family"]})
        recipe = RECIPES.get(report["family"])
        if recipe is not None:  # validated (a published fine-tuning of the family) or not, and its source
            extra.append({"parameter": "recipe", "value": f"{recipe.status}: {recipe.source}"})
    if report.get("world_size"):
        extra.append({"parameter": "processes (GPUs)", "value": report["world_size"]})
    params = report.get("parameters", {})
    if params.get("total"):
        extra.append({"parameter": "parameters (total / trainable)", "value": f"{params['total']:,} / {params.get('trainable', 0):,}"})
    for key, label in TRAINING_FACTS:
        if report.get(key) is not None:
            extra.append({"parameter": label, "value": report[key]})
    if not rows and not extra:
        return "The run folder has no record of the training parameters (run.json).\n"
    return markdown_table(rows + extra, ["parameter", "value"])


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
    text = markdown_table(rows)
    final = info.train_report.get("eval", {})
    if "wer" in final and "cer" in final:
        text += (f"\nAt the end of training, on the eval split (04_train's own greedy evaluation): WER "
                 f"{_pct(final['wer'])} %, CER {_pct(final['cer'])} %.\n")
    decoding = "greedy CTC decoding (the most likely character per frame)"
    if LM in m:
        decoding += (f"; and beam search with the n-gram LM of `{LM_FOLDER}/` (pyctcdecode + KenLM, as in the usage "
                     "code) on the same logits")
    ci = m.get("ci", {})
    split = scored(info)
    text += (f"\nOn the {m.get('n', '?')} utterances of the test split (`{split.split}`), references normalized as in training, "
             f"{decoding}. The interval is a percentile bootstrap over utterances "
             f"({ci.get('n_resamples', 1000)} resamples, seed {ci.get('seed', 0)}): with a small test set it is wide, "
             "and two models whose intervals overlap may not differ.\n")
    described = scored_split_text(split, info.data_cfg)
    if described:
        text += f"\n{described}\n"
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
    piped = [f"`{m['label']}`" for m in c["models"] if m.get("scored_with") == "pipeline"]
    decoding = "greedy decoding for every CTC model"
    if piped:
        decoding += (f"; {', '.join(piped)} transcribed by transformers' ASR pipeline, its text passed through this "
                     "run's normalizer as the references are")
    text = (f"On the same {c.get('n', '?')} test clips, references normalized by this run's normalizer, {decoding} "
            f"({sources}):\n\n{markdown_table(models)}\n")
    text += added_by_training(c)
    text += (f"Is the difference real? A paired bootstrap over the clips ({c.get('n_resamples', 1000)} resamples, the "
             f"same clips for both models); an interval that contains 0 means this test set cannot tell the two "
             f"apart:\n\n{markdown_table(pairs)}")
    skipped = c.get("skipped") or []
    if skipped:
        text += "\nNot scored: " + "; ".join(f"`{m['label']}` ({m['why']})" for m in skipped) + "\n"
    return text


def added_by_training(c: dict) -> str:
    """What fine-tuning added: the base checkpoint zero-shot against the fine-tuned model, with the paired
    interval of the difference; "" when the comparison has no zero-shot baseline."""
    base = next((m for m in c["models"] if m.get("baseline")), None)
    if base is None:
        return ""
    key = c.get("metric", "wer")
    pair = next((p for p in c["pairs"] if base["label"] in (p["a"], p["b"])), None)
    if pair is None:
        return ""
    other = pair["a"] if pair["b"] == base["label"] else pair["b"]
    tuned = next(m for m in c["models"] if m["label"] == other)
    sign = 1 if pair["a"] == other else -1  # the interval of fine-tuned - base
    low, high = sorted((sign * pair[key]["low"], sign * pair[key]["high"]))
    level = int(round(100 * c.get("level", 0.95)))
    return (f"**What fine-tuning added**: the base model `{base['label']}` writes this language already; zero-shot it "
            f"scores {key.upper()} {_pct(base[key])} %, fine-tuned `{other}` {_pct(tuned[key])} %: "
            f"{100 * sign * pair[key]['difference']:+.2f} points ({level}% paired interval {100 * low:+.2f} to "
            f"{100 * high:+.2f}; {pair[key]['verdict']}).\n\n")


def limitations_section(info: RunInfo) -> str:
    cfg = info.cfg
    items = []
    empty, n = info.metrics.get("empty_predictions", 0), info.metrics.get("n", 0)
    if n and empty >= n / 2:
        items.append(f"It transcribes {empty} of the {n} test clips as empty text: it has **not learned yet** "
                     "(it needs more training steps); the numbers above are those of an untrained model.")
    if is_synthetic(info.data_cfg):
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
        test_set_limitation(info),
    ]
    return "\n".join(f"- {item}" for item in items) + "\n"


def test_set_limitation(info: RunInfo) -> str:
    """What the test set is, as measured: the whole source split or a part of it, and the speakers it shares."""
    split = scored(info)
    which = ("the source's test split" if split.whole else
             "held out from the source's training rows" if split.held_out else
             "the test split of the Collective's sample of the release" if split.sample else
             "a filtered part of the source's test split")
    speakers = speakers_phrase(info.load_report) if info.load_report else "its speakers are not recorded"
    return f"The test set is {which}: {speakers}; it is from the same recording conditions as the training data."


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


def files_list(files: list[str]) -> str:
    """The upload folder's files, the card included, as the Files section names them."""
    names = files + [CARD_FILE] * (CARD_FILE not in files)
    return ", ".join(f"`{f}/`" if f == LM_FOLDER else f"`{f}`" for f in names)


# ------------------------------------------------------------------------------------------------
# The card
# ------------------------------------------------------------------------------------------------
def card_data(info: RunInfo):
    """The YAML header: huggingface_hub's ModelCardData with the model-index of every decoding's WER and CER."""
    from huggingface_hub import EvalResult, ModelCardData

    cfg = info.cfg
    datasets = dataset_ids(info.data_cfg)
    dataset_type, dataset_name = datasets[0]
    split = scored(info)  # "test" only for the source's whole test split
    results = [
        EvalResult(task_type="automatic-speech-recognition", task_name="Automatic Speech Recognition",
                   dataset_type=dataset_type, dataset_name=f"{dataset_name} {cfg.language}",
                   dataset_config=cfg.language, dataset_split=split.split, dataset_args=split.args, metric_type=key,
                   metric_name=metric_name(key, decoding), metric_value=round(100 * figures[key], 2),
                   metric_args={"decoding": INDEX_DECODING[decoding]})
        for decoding, figures in metrics_by_decoding(info.metrics).items() for key in ("wer", "cer")
    ]
    return ModelCardData(
        language=hub_language(cfg.language), license=card_license(cfg).license, library_name="transformers",
        pipeline_tag="automatic-speech-recognition", datasets=[d for d, _ in datasets], metrics=["wer", "cer"],
        tags=list(TAGS), model_name=title(info), eval_results=results,
        base_model=None if cfg.is_tiny() or Path(cfg.model).exists() else cfg.model,
    )


def build_card(info: RunInfo, model_id: str, upload_files: list[str] | None = None):
    """The ModelCard (huggingface_hub) of the run: YAML from ModelCardData, body from the reports."""
    from huggingface_hub import ModelCard

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
    shell, python = evaluation_code(cfg, model_id, with_lm, data=info.data_cfg,
                                    normalizer_mode=info.normalize_report.get("normalizer", {}).get("mode"))
    subword = kept_vocabulary(info) and not info.vocab_report.get("character_tokenizer", True)
    card = ModelCard.from_template(
        card_data(info), template_path=str(TEMPLATE),
        title=title(info), intro=intro(info), headline=headline(m, scored(info)), language_name=language_name(cfg.language),
        usage_intro=usage_intro(with_lm), model_id=model_id,
        usage_code=usage_code(model_id, info.train_report.get("target_lang"), with_lm, subword),
        evaluation_shell=shell, evaluation_python=python,
        training_data=training_data_section(info), hyperparameters=hyperparameters_section(info),
        results=results_section(info), comparison=comparison_section(info), limitations=limitations_section(info),
        files=files_list(upload_files or []), normalizer_file=NORMALIZER_FILE, with_lm=with_lm,
        lm_alphabet_file=LM_ALPHABET_FILE, lm_folder=LM_FOLDER,
    )
    leftover = [word for word in ("TODO", "{wer_result_on_test}", "{language}") if word in str(card)]
    if leftover:
        raise ModelCardError(f"The card still contains placeholders: {leftover}")
    return card


def write_card(card, upload_dir: str | Path) -> Path:
    """Write the card as the upload folder's README.md (atomically) and return its path."""
    return write_text_atomic(Path(upload_dir) / CARD_FILE, str(card))
