"""The recipes: how each family of CTC checkpoints is fine-tuned, with where its values come from.

One :class:`Recipe` per family (``MODEL_FAMILY``): what is frozen, the values of every ``config.RECIPE_FIELDS``
parameter a run leaves at ``None``, settings of the model's config, and the source of the values. Which family a
checkpoint is, and the run's resolved recipe, are decided in ``families.py``.

A recipe is *validated* when its values come from a published fine-tuning of that family on read speech (the
paper's, the authors' configuration, or a write-up that reports its word error rates); the generic recipe for a
CTC architecture without one (any other ``model_type`` of transformers' ``AutoModelForCTC``), and the recipes
whose published schedule does not carry over to this curriculum, are marked *unvalidated*: notebook 04's recipe
table and the model card say so.

Two units differ from the published configurations and are translated, not copied: fairseq / fairseq2 count
updates of ~100-1,600 s of audio with a tri-stage schedule, this curriculum counts epochs of Common Voice clips
with a linear one (transformers' default) of WARMUP_STEPS updates; and fairseq's ``mask_prob`` /
``mask_channel_prob`` are transformers' ``mask_time_prob`` / ``mask_feature_prob`` (the same formula: spans of
``mask_length`` started at ``prob * length / mask_length`` positions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import TINY_MODEL

# The seed notebook's values (the 2021 XLSR fine-tuning week), for wav2vec2-style encoders.
# Augmentation beyond the time mask is off in every recipe: SpecAugment's frequency mask (mask_feature_prob 0.0,
# as the seed left it and XLSR-53's config has it) and SPEED_PERTURBATION (""). Measured (benchmarks/augmentation.py,
# held-out CER on the synthetic tr corpus's unseen test speakers, equal updates, seeds 42/1/2): speed perturbation
# 0.9/1.0/1.1 made every run worse: tiny from scratch (the demo's 1,000 updates) mean CER 0.205 -> 0.281, the
# learning proof's pretrained encoder (300 updates) 0.442 -> 0.523 (900 updates, seed 42: 0.116 -> 0.141). It remains
# a parameter for long real runs.
SEED_TRAINING = dict(
    batch_size=16, gradient_accumulation_steps=2, learning_rate=3e-4, warmup_steps=500, num_train_epochs=30.0,
    eval_steps=400, save_steps=400, logging_steps=400, layerdrop=0.1, mask_time_prob=0.05,
    gradient_checkpointing="auto", attention_dropout=0.1, hidden_dropout=0.1, feat_proj_dropout=0.0,
    freeze_feature_encoder=True, freeze_encoder_steps=0,
    mask_feature_prob=0.0, mask_feature_length=10, speed_perturbation="",
)
# The measured CPU recipe for `tiny` (0.6M parameters: batches of 8 without accumulation, lr 5e-3 with 8 %
# warm-up, 30 epochs of the demo corpus = 2,250 updates, ~4 min on 2 CPU cores; held-out CER 0.2 after ~500
# updates, 0.04 after 2,250; 3e-4 or batches of 32 stay all-blank). An update of 8 took ~0.35 CPU-s on a
# 2-core AMD EPYC VM (1 thread): 2,250 of them ~13 minutes there. `make demo` therefore trains its own fixed
# budget (pipeline.DEMO_PARAMETERS: 1,000 updates of 4, no time limit), not these 30 epochs.
TINY_TRAINING = dict(
    SEED_TRAINING, batch_size=8, gradient_accumulation_steps=1, learning_rate=5e-3, warmup_steps=-1,
    eval_steps=100, save_steps=100, logging_steps=20, layerdrop=0.0, gradient_checkpointing=False,
)
# Hugging Face's w2v-BERT 2.0 fine-tuning write-up (Lacombe, 2024): no dropout, no masking, no LayerDrop,
# an adapter on top of the encoder (halves the frame rate), lr 5e-5, 10 epochs.
W2V_BERT_TRAINING = dict(
    batch_size=16, gradient_accumulation_steps=2, learning_rate=5e-5, warmup_steps=500, num_train_epochs=10.0,
    eval_steps=300, save_steps=600, logging_steps=300, layerdrop=0.0, mask_time_prob=0.0,
    gradient_checkpointing="auto", attention_dropout=0.0, hidden_dropout=0.0, feat_proj_dropout=0.0,
    freeze_feature_encoder=False, freeze_encoder_steps=0,
    mask_feature_prob=0.0, mask_feature_length=10, speed_perturbation="",
)
# Hugging Face's MMS adapter write-up (von Platen, 2023): the 1B base model frozen, only the adapter layers
# (~2.5M weights) and the head trained, lr 1e-3, 4 epochs, batches of 32.
MMS_ADAPTER_TRAINING = dict(
    batch_size=32, gradient_accumulation_steps=1, learning_rate=1e-3, warmup_steps=100, num_train_epochs=4.0,
    eval_steps=100, save_steps=200, logging_steps=100, layerdrop=0.0, mask_time_prob=0.05,
    gradient_checkpointing="auto", attention_dropout=0.0, hidden_dropout=0.0, feat_proj_dropout=0.0,
    freeze_feature_encoder=True, freeze_encoder_steps=0,
    mask_feature_prob=0.0, mask_feature_length=10, speed_perturbation="",
)
# wav2vec 2.0 / XLS-R / MMS with 1B or 2B parameters (hidden size >= 1280): the seed's 3e-4 is a known way to stay
# at WER 1.0 there. Community XLS-R-1B Common Voice fine-tunes of the 2022 robust-speech event (their model cards'
# "Training hyperparameters"): shahukareem/wav2vec2-xls-r-1b-dv lr 4.5e-5, batches 8 x 4 accumulated, 500 warm-up
# updates, 30 epochs, linear decay -> WER 0.21 (Dhivehi); reach-vb/wav2vec2-large-xls-r-1B-common_voice-sl-ft
# lr 3e-5, 32 x 2, 400 warm-up, 100 epochs -> WER 0.14 (Slovenian). Taken: the first (its epochs and batch are the
# seed's scale). No published 2B Common Voice fine-tune was found: the 2B models take the same values.
WAV2VEC2_1B_TRAINING = dict(
    SEED_TRAINING, batch_size=8, gradient_accumulation_steps=4, learning_rate=4.5e-5, warmup_steps=500,
    num_train_epochs=30.0,
)
# fairseq's HuBERT fine-tuning (examples/hubert/config/finetune/base_10h.yaml): Adam (0.9, 0.98), lr 2e-5,
# tri-stage with 8,000 warm-up updates of 25,000, the CNN frozen (feature_grad_mult 0.0), only the CTC head for
# the first 10,000 updates (freeze_finetune_updates), mask_prob 0.75 (length 10), mask_channel_prob 0.5 (length
# 64), layerdrop 0.1, dropout 0.0, attention_dropout 0.0, activation_dropout 0.1, fp16. Taken: lr, masking in
# time, LayerDrop, dropouts, the frozen CNN. Not carried over (so: unvalidated here): its schedule, 25,000 updates
# of ~1,600 s of LibriSpeech audio each, of which 40 % head-only and 32 % warm-up; set FREEZE_ENCODER_STEPS to
# ~40 % of a run's updates for its head-only phase (train/trainer.py's HeadFirstCallback). The channel mask stays
# off, as in every recipe here (above).
HUBERT_TRAINING = dict(
    SEED_TRAINING, learning_rate=2e-5, layerdrop=0.1, mask_time_prob=0.75, attention_dropout=0.0,
    hidden_dropout=0.0, feat_proj_dropout=0.0,
)
# data2vec-audio is fine-tuned with wav2vec 2.0's configurations (fairseq examples/data2vec/README.md: "--config-dir
# examples/wav2vec/config/finetuning --config-name base_100h common.user_dir=examples/data2vec task.normalize=True"):
# base_100h.yaml: lr 3e-5, tri-stage 10/40/50 % of 80,000 updates, mask_prob 0.65, mask_channel_prob 0.5 (64),
# layerdrop 0.1, activation_dropout 0.1, CNN frozen, no head-only phase. Taken as for HuBERT; unvalidated for the
# same reason.
DATA2VEC_TRAINING = dict(
    SEED_TRAINING, learning_rate=3e-5, layerdrop=0.1, mask_time_prob=0.65, attention_dropout=0.0,
    hidden_dropout=0.0, feat_proj_dropout=0.0,
)
# Meta's Omnilingual ASR CTC fine-tuning (facebookresearch/omnilingual-asr,
# workflows/recipes/wav2vec2/asr/configs/romansh-ctc-finetune.yaml, on fairseq2's wav2vec2 ASR recipe): the model's
# own tokenizer kept, AdamW (0.9, 0.98) lr 1e-05, fairseq2's tri-stage schedule (10 % warm-up, 40 % hold, 50 % decay
# to 0.05x), freeze_encoder_for_n_steps 0 (no head-only phase: the head already writes the languages), bf16 mixed
# precision (PRECISION="auto" picks bf16 on GPUs that have it), no gradient accumulation, 5,000 updates, validate
# and checkpoint every 500, clips up to max_audio_len 480,000 samples (30 s; MAX_DURATION_S is 20 s by default)
# in batches of max_num_elements 2,560,000 samples (160 s of audio: ~32 Common Voice clips, hence 16 x 2).
# Warm-up: 500 updates, the 10 % of Meta's 5,000. Epochs: 10 (~5,000 updates of 32 clips for 16,000 training
# clips). Dropouts and LayerDrop: the converted checkpoint's (transformers' convert_omniasr_to_hf.py: attention 0.0,
# FFN 0.1, LayerDrop 0.1). Time masking 0.0: transformers' OmniASR model has no SpecAugment.
OMNIASR_TRAINING = dict(
    batch_size=16, gradient_accumulation_steps=2, learning_rate=1e-5, warmup_steps=500, num_train_epochs=10.0,
    eval_steps=500, save_steps=500, logging_steps=100, layerdrop=0.1, mask_time_prob=0.0,
    gradient_checkpointing="auto", attention_dropout=0.0, hidden_dropout=0.1, feat_proj_dropout=0.0,
    freeze_feature_encoder=True, freeze_encoder_steps=0,
    mask_feature_prob=0.0, mask_feature_length=10, speed_perturbation="",
)
# NVIDIA NeMo's ASR fine-tuning configuration (NVIDIA/NeMo examples/asr/conf/asr_finetune/
# speech_to_text_finetune.yaml, for parakeet/FastConformer checkpoints): batch 16, clips up to 20 s, AdamW
# (0.9, 0.98) lr 1e-4 weight decay 1e-3, CosineAnnealing with 5,000 warm-up updates to min_lr 5e-6, 50 epochs,
# no accumulation, fp32. Taken: batch, lr, epochs; warm-up as 8 % of the updates (-1; NeMo's 5,000 are 8 % of
# 50 epochs of 20,000 clips). Its SpecAugment (2 frequency masks of 27, 10 time masks of 5 %) has no counterpart in
# transformers' Parakeet model: masking 0.0. Dropouts and LayerDrop: the converted checkpoint's (dropout 0.1,
# attention 0.1, stochastic depth 0.0). No CNN feature encoder to freeze (mel filter banks in, 8x subsampling).
PARAKEET_TRAINING = dict(
    batch_size=16, gradient_accumulation_steps=1, learning_rate=1e-4, warmup_steps=-1, num_train_epochs=50.0,
    eval_steps=500, save_steps=500, logging_steps=100, layerdrop=0.0, mask_time_prob=0.0,
    gradient_checkpointing="auto", attention_dropout=0.1, hidden_dropout=0.1, feat_proj_dropout=0.0,
    freeze_feature_encoder=False, freeze_encoder_steps=0,
    mask_feature_prob=0.0, mask_feature_length=10, speed_perturbation="",
)
# Any other CTC architecture of transformers (AutoModelForCTC): no published recipe known here. Cautious values
# for a pre-trained encoder of a few hundred million parameters: lr 5e-5 (w2v-BERT's; between XLS-R-1B's 4.5e-5
# and the seed's 3e-4, which is known to diverge for large models), 8 % warm-up, 10 epochs, no masking and no
# LayerDrop (a config may not have them), the whole model trained.
GENERIC_TRAINING = dict(
    batch_size=16, gradient_accumulation_steps=2, learning_rate=5e-5, warmup_steps=-1, num_train_epochs=10.0,
    eval_steps=400, save_steps=400, logging_steps=100, layerdrop=0.0, mask_time_prob=0.0,
    gradient_checkpointing="auto", attention_dropout=0.0, hidden_dropout=0.1, feat_proj_dropout=0.0,
    freeze_feature_encoder=False, freeze_encoder_steps=0,
    mask_feature_prob=0.0, mask_feature_length=10, speed_perturbation="",
)

GENERIC = "generic-ctc"  # the family of a CTC model_type without a recipe of its own


@dataclass(frozen=True)
class Recipe:
    """How one family of checkpoints is fine-tuned."""

    family: str  # the MODEL_FAMILY value
    title: str
    model_types: tuple[str, ...]  # config.json model_type values of the family
    examples: tuple[str, ...]  # Hub ids
    freeze: str  # "feature_encoder" (the CNN stays as pretrained) | "base_model" (only adapters + head train) | "nothing"
    training: dict = field(default_factory=dict)  # Config field -> value, for fields left at None
    model_config: dict = field(default_factory=dict)  # set on the model's config when it is built
    feature_extractor: str = "wav2vec2"  # family default when the checkpoint has none: wav2vec2 | seamless_m4t
    source: str = ""  # where the training values come from
    validated: bool = True  # False: values not from a published fine-tuning of this family (notebook 04, the card)
    # The CNN feature encoder's module, for classes without freeze_feature_encoder() (freeze "feature_encoder").
    feature_encoder_module: str = ""
    # The checkpoints of the family ship a CTC head and a tokenizer (they transcribe as they are): Omnilingual,
    # Parakeet. Others may or may not (a fine-tuned wav2vec2 does, a pre-trained one does not): families.py's
    # ready_to_transcribe() reads the checkpoint.
    writes_text: bool = False

    @property
    def status(self) -> str:
        """"validated" or "unvalidated", as notebook 04 and the card show it."""
        return "validated" if self.validated else "unvalidated"


RECIPES: dict[str, Recipe] = {r.family: r for r in (
    Recipe("wav2vec2", "wav2vec 2.0 / XLSR / XLS-R / MMS pretrained (300M)",
           ("wav2vec2", "wav2vec2-conformer", "unispeech", "unispeech-sat", "sew", "sew-d"),
           ("facebook/wav2vec2-large-xlsr-53", "facebook/wav2vec2-xls-r-300m", "facebook/mms-300m"),
           "feature_encoder", SEED_TRAINING, source="the 2021 XLSR fine-tuning week notebook"),
    Recipe("wav2vec2-1b", "wav2vec 2.0 / XLS-R / MMS pretrained, 1B and 2B", (),
           ("facebook/wav2vec2-xls-r-1b", "facebook/wav2vec2-xls-r-2b", "facebook/mms-1b"),
           "feature_encoder", WAV2VEC2_1B_TRAINING,
           source="community XLS-R-1B Common Voice fine-tunes (2022 robust-speech event model cards: lr 3e-5 to "
                  "4.5e-5; shahukareem/wav2vec2-xls-r-1b-dv's values); 2B: the same values"),
    Recipe("hubert", "HuBERT", ("hubert",), ("facebook/hubert-large-ll60k", "facebook/hubert-base-ls960"),
           "feature_encoder", HUBERT_TRAINING, validated=False,
           source="fairseq's HuBERT fine-tuning (examples/hubert/config/finetune/base_10h.yaml: lr 2e-5, masking, "
                  "dropouts); its 25,000-update schedule with 10,000 head-only updates is not carried over"),
    Recipe("wavlm", "WavLM", ("wavlm",), ("microsoft/wavlm-large", "microsoft/wavlm-base-plus"),
           "feature_encoder", HUBERT_TRAINING, validated=False,
           source="HuBERT's fairseq fine-tuning values (the WavLM paper fine-tunes as HuBERT does; no WavLM "
                  "fine-tuning configuration was published with the checkpoints)"),
    Recipe("data2vec-audio", "data2vec-audio", ("data2vec-audio",),
           ("facebook/data2vec-audio-large", "facebook/data2vec-audio-base"),
           "feature_encoder", DATA2VEC_TRAINING, validated=False,
           source="fairseq's data2vec README: wav2vec 2.0's base_100h fine-tuning (lr 3e-5, masking 0.65); its "
                  "80,000-update schedule is not carried over"),
    Recipe("w2v-bert", "w2v-BERT 2.0", ("wav2vec2-bert",), ("facebook/w2v-bert-2.0",),
           "nothing", W2V_BERT_TRAINING, model_config=dict(add_adapter=True), feature_extractor="seamless_m4t",
           source="Hugging Face's w2v-BERT 2.0 fine-tuning write-up (2024)"),
    Recipe("mms-adapter", "MMS-1b-all language adapters", (), ("facebook/mms-1b-all",),
           "base_model", MMS_ADAPTER_TRAINING, source="Hugging Face's MMS adapter write-up (2023)"),
    Recipe("omniasr-ctc", "Omnilingual ASR CTC (300M-7B)", ("omniasr_ctc",),
           ("hf-audio/omniasr-ctc-300m-v2", "hf-audio/omniasr-ctc-1b-v2"),
           "feature_encoder", OMNIASR_TRAINING, feature_encoder_module="model.audio_tower.subsampling.conv_layers",
           writes_text=True,
           source="Meta's Omnilingual ASR CTC fine-tuning recipe (omnilingual-asr workflows/recipes/wav2vec2/asr/"
                  "configs/romansh-ctc-finetune.yaml, fairseq2: lr 1e-5, bf16, clips <= 30 s, no head-only phase)"),
    Recipe("parakeet-ctc", "Parakeet CTC (FastConformer)", ("parakeet_ctc",),
           ("nvidia/parakeet-ctc-0.6b", "nvidia/parakeet-ctc-1.1b"),
           "nothing", PARAKEET_TRAINING, writes_text=True,
           source="NVIDIA NeMo's ASR fine-tuning configuration (examples/asr/conf/asr_finetune/"
                  "speech_to_text_finetune.yaml: lr 1e-4, batch 16, 50 epochs)"),
    Recipe(GENERIC, "another CTC architecture of transformers (generic recipe)", (), (),
           "nothing", GENERIC_TRAINING, validated=False,
           source="no published recipe for this architecture: cautious generic values (lr 5e-5, 10 epochs)"),
    Recipe("tiny", "tiny (random weights, CPU rehearsal)", (), (TINY_MODEL,),
           "feature_encoder", TINY_TRAINING, source="measured on the demo corpus, 2 CPU cores"),
)}
