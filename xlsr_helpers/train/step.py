"""Step 04, one method per stage: what the notebook calls one by one, and :func:`run_train` all at once.

Reads ``02_normalize/dataset`` (rows: clip path, sentence, duration) and ``03_vocab/processor``; the clips
are decoded on the fly by the collator in the data loader, so no decoded copy of the corpus is ever written.
Writes ``04_train/``: ``checkpoint-*/`` (each loadable alone: weights, config and processor; the last ones and the
best one are kept), ``model/`` (the best model by WER/CER on the dev subset + processor, whose tokenizer files are
the checkpoint's own, byte for byte, when step 03 kept MODEL's vocabulary; a frozen-base run, MMS adapters, keeps
its ``adapter.<lang>.safetensors`` and ``base_model.json`` instead of the whole model), ``curves.png`` and
``report.json``. With the run folder on Google Drive the checkpoints rotate on the local disk and only some are
mirrored to ``04_train/`` (``drive.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..audio_checks import check_clips_exist
from ..config import Config
from ..constants import SAMPLING_RATE
from ..ctc import blank_id, decode_labels
from ..families import recipe_for, resolve, target_lang
from ..files import write_json_atomic
from ..model_vocab import copy_tokenizer_files, decision, keeps_model_vocabulary, source_folder
from ..models import (adapter_weights_file, build_model, count_parameters, save_adapter,
                      trains_adapters_only)
from ..precision import resolve_precision
from .augment import SpeedPerturbation
from .callbacks import NonFiniteLossError, make_callbacks
from .checkpoints import (ModelExistsError, checkpoint_bytes, disk_budget, find_resume_checkpoint,
                          incomplete_checkpoints, list_checkpoints)
from .curves import save_curves
from .data import (CLIP_CACHE_BYTES, DataCollatorCTCWithPadding, DurationBatchSampler, feasibility, split_batch,
                   training_rows)
from .drive import RunLength, check_drive, places, planned_updates, restore, retire
from .distributed import agreed_max, log_main, rank, world_size
from .guards import GuardError, check_model, check_same_model, sanity_check, transcripts
from .memory import needs_checkpointing
from .trainer import CTCTrainer, lengths_of, make_compute_metrics, training_arguments

STEP = "04_train"


def example_predictions(model, processor, dataset, n: int = 5) -> list[dict[str, str]]:
    """Greedy transcripts of the first ``n`` rows of a prepared split, next to their references."""
    rows = [dataset[i] for i in range(min(n, len(dataset)))]
    if not rows:
        return []
    batch = DataCollatorCTCWithPadding(processor)(rows)
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    predictions = transcripts(model, processor, batch)
    references = decode_labels(processor.tokenizer, batch["labels"].cpu().numpy())
    return [{"id": str(r.get("id", i)), "reference": ref, "prediction": pred}
            for i, (r, ref, pred) in enumerate(zip(rows, references, predictions))]




@dataclass
class Training:
    """Step 04, one method per stage (the notebook calls them one by one; :func:`run_train` all at once)."""

    cfg: Config
    log: Callable = log_main
    live: Any = None  # widgets.LiveCurves (or anything with update(figure, line)) for curves during training
    dataset: Any = None
    processor: Any = None
    model: Any = None
    args: Any = None
    prepared: Any = None
    trainer: Any = None
    resume_from: Path | None = None
    eval_full: Any = None  # the whole dev split, sorted by length (prepared["eval"] is the subset of EVAL_MAX_SAMPLES)
    report: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.cfg = resolve(self.cfg)
        self.world_size = world_size()
        self.rank = rank()
        self.train_dir = self.cfg.step_dir(STEP)
        self.model_dir = self.cfg.model_dir
        self.places = places(self.train_dir)  # on Drive: checkpoints rotate on the local disk (drive.py)
        self.checkpoint_dir = self.places.local  # where the Trainer writes its checkpoints
        self.mirror_every: int | None = None  # DRIVE_MIRROR_EVERY as check_drive() planned it
        self._callbacks: dict[str, Any] = {}
        self.recipe = recipe_for(self.cfg)
        self.target_lang = target_lang(self.cfg)
        self.report.update({"model": self.cfg.model, "family": self.recipe.family, "target_lang": self.target_lang,
                            "world_size": self.world_size, "vocabulary": decision(self.cfg)})

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def adapter_only(self) -> bool:
        """A frozen base whose adapters and head alone train (MMS adapters): checkpoints and model hold those."""
        return self.model is not None and trains_adapters_only(self.model)

    def start_step(self) -> int:
        if self.resume_from is None:
            return 0
        return int(json.loads((Path(self.resume_from) / "trainer_state.json").read_text())["global_step"])

    def note(self, message: str) -> None:
        self.notes.append(message)
        self.log(message)

    # 1 ---------------------------------------------------------------------------------------------
    def check_outputs(self) -> Path | None:
        """Refuse to replace a finished model; find the checkpoint to resume from."""
        from ..colab import ensure_drive

        ensure_drive(self.cfg.run_path)
        if self.model_dir.exists() and any(self.model_dir.iterdir()) and not self.cfg.overwrite_model:
            raise ModelExistsError(
                f"{self.model_dir} already holds a trained model. Set OVERWRITE_MODEL=True to train again and "
                "replace it, or use another RUN_DIR.")
        resume = (self.cfg.resume or "auto").strip()
        fp16 = resolve_precision(self.cfg.precision) == "fp16"
        if resume.lower() == "auto" and self.is_main:
            for copy in restore(self.places, self.world_size, fp16):
                self.note(f"{copy.name} copied back from Google Drive to the local disk ({self.checkpoint_dir}).")
        self.resume_from = find_resume_checkpoint(self.checkpoint_dir, resume, self.world_size, fp16)
        dirs = [self.checkpoint_dir] + ([self.train_dir] if self.places.mirrored else [])
        checkpoints = [path for folder in dirs for _, path in list_checkpoints(folder)]
        incomplete = {name: missing for folder in dirs
                      for name, missing in incomplete_checkpoints(folder, self.world_size, fp16).items()}
        if incomplete and resume.lower() == "auto":
            self.note("Skipping checkpoint(s) that cannot resume exactly (a disconnect while it was written, or "
                      "while Google Drive uploaded its files one by one): "
                      + "; ".join(f"{name} lacks {', '.join(missing)}" for name, missing in incomplete.items()))
        if resume.lower() == "never" and checkpoints and self.is_main:
            from ..colab import delete_on_drive

            for path in checkpoints:
                if path.parent == self.checkpoint_dir:
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    delete_on_drive(path)
            self.note(f"RESUME=never: removed {len(checkpoints)} old checkpoint(s) of an earlier run.")
        if self.resume_from is not None:
            self.note(f"Resuming from {self.resume_from}")
        self.report["resumed_from"] = str(self.resume_from) if self.resume_from else None
        return self.resume_from

    # 2 ---------------------------------------------------------------------------------------------
    def load(self):
        """02_normalize's dataset and 03_vocab's processor (which must have been built for this MODEL)."""
        from datasets import load_from_disk
        from transformers import AutoProcessor

        source = self.cfg.step_dir("02_normalize") / "dataset"
        if not source.exists():
            raise FileNotFoundError(f"{source} does not exist: run 01_load and 02_normalize first.")
        if not any((self.cfg.processor_dir / name).exists()
                   for name in ("processor_config.json", "preprocessor_config.json")):
            raise FileNotFoundError(f"{self.cfg.processor_dir} has no processor: run 03_vocab first.")
        check_same_model(self.cfg.model, self.cfg.step_dir("03_vocab") / "report.json")
        self.dataset = load_from_disk(str(source))
        missing = [s for s in ("train", "eval") if s not in self.dataset]
        if missing:
            raise KeyError(f"{source} lacks the split(s) {missing}")
        # before hours of training: clips gone since 01_load (Colab's /content after a disconnect) stop it here
        check_clips_exist({s: self.dataset[s] for s in ("train", "eval")}, step=STEP)
        self.processor = AutoProcessor.from_pretrained(str(self.cfg.processor_dir))
        self.report["rows_in"] = {s: len(self.dataset[s]) for s in ("train", "eval")}
        return self.dataset, self.processor

    # 3 ---------------------------------------------------------------------------------------------
    def build_model(self):
        self.model = build_model(self.cfg, self.processor, self.world_size, log=self.note)
        self.report["parameters"] = count_parameters(self.model)
        self.report["model_class"] = type(self.model).__name__
        return self.model

    def check(self) -> list[str]:
        """The model's guards, and the disk budget of its checkpoints where they are written (with the run folder
        on Drive: the local disk; what goes to Drive is :meth:`check_drive`'s, once the number of updates is known)."""
        notes = check_model(self.model, self.processor, fix=True, log=self.note)
        self.report["guards"] = {"passed": True, "adjusted": notes}
        budget = disk_budget(self.model, self.checkpoint_dir, self.cfg.save_total_limit,
                             adapter_only=self.adapter_only, model_here=not self.places.mirrored)
        self.report["disk"] = {"checkpoint_dir": str(self.checkpoint_dir), "adapter_only": self.adapter_only,
                               **{k: round(v, 3) for k, v in budget.items()}}
        model = f" + the model {budget['model_gb']:.2f} GB" if budget["model_gb"] else ""
        self.log(f"checkpoints in {self.checkpoint_dir}: up to {budget['checkpoints_at_once']} x "
                 f"{budget['checkpoint_gb']:.2f} GB{model} = {budget['needed_gb']:.1f} GB; {budget['free_gb']:.1f} GB free")
        return notes

    def planned_updates(self) -> int:
        """The Trainer's max_steps for this run (MAX_STEPS, or the epochs over the prepared training rows)."""
        if self.args is None:
            self.args = training_arguments(self.cfg, self.checkpoint_dir)
        rows = self.prepared["train"]
        batches = None
        if self.cfg.max_batch_seconds:
            budget = int(self.cfg.max_batch_seconds * SAMPLING_RATE)
            batches = len(DurationBatchSampler(lengths_of(rows), budget).batches)
        return planned_updates(len(rows), self.args.per_device_train_batch_size, self.args.gradient_accumulation_steps,
                               self.args.num_train_epochs, self.args.max_steps, self.world_size, batches)

    def check_drive(self) -> dict[str, Any]:
        """With the run folder on Google Drive: what the whole run will write there (mirrored checkpoints and the
        final model; every deletion stays in Drive's bin, counted, for 30 days), against Drive's free space, and
        how often a checkpoint is mirrored (DRIVE_MIRROR_EVERY). Refuses with what to change when it does not fit
        (``drive.DriveBudgetError``). Elsewhere nothing goes to Drive."""
        from .. import colab

        if not self.places.mirrored:
            self.mirror_every = 0
            self.report["drive"] = {"on_drive": False}
            return self.report["drive"]
        updates = self.planned_updates()
        length = RunLength(updates, int(self.args.save_steps), self.start_step())
        free = colab.drive_free_bytes(self.train_dir)
        ledger, note = check_drive(checkpoint_bytes(self.model, self.adapter_only), length, free,
                                   int(self.cfg.drive_mirror_every))
        self.mirror_every = ledger.every
        self.report["drive"] = {"on_drive": True, "checkpoint_dir": str(self.checkpoint_dir), "updates": updates,
                                "free_gb": round(free / 1e9, 3), **ledger.as_dict()}
        self.note(f"Google Drive: {note}.")
        return self.report["drive"]

    # 4 ---------------------------------------------------------------------------------------------
    def prepare(self):
        """Training rows (clip, labels, length from the metadata; nothing decoded), then the feasibility filter."""
        if self.args is None:
            self.args = training_arguments(self.cfg, self.checkpoint_dir)
        started = time.perf_counter()
        prepared = {split: training_rows(self.dataset[split], self.processor.tokenizer) for split in ("train", "eval")}
        self.report["rows_seconds"] = round(time.perf_counter() - started, 2)
        dropped, examples, kept = {}, {}, {}
        for split in ("train", "eval"):
            ds, counts, ex = feasibility(prepared[split], self.model, self.processor.feature_extractor,
                                         max_duration_s=self.cfg.max_duration_s,
                                         check_ctc=split == "train", check_mask=split == "train",
                                         sentences=self.dataset[split]["sentence"])  # examples name clip and sentence
            prepared[split] = ds
            dropped[split], examples[split], kept[split] = counts, ex, len(ds)
            if counts:
                what = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in counts.items())
                self.note(f"{split}: dropped {sum(counts.values())} of {len(ds) + sum(counts.values())} rows ({what})")
        if kept["train"] == 0:
            raise GuardError("No training row is left after the feasibility filter; see report['dropped'].")
        self.eval_full = sorted_by_length(prepared["eval"])
        prepared["eval"] = eval_subset(self.eval_full, self.cfg.eval_max_samples, self.cfg.seed)
        if len(prepared["eval"]) < len(self.eval_full):
            self.note(f"Evaluations during training use {len(prepared['eval'])} of the {len(self.eval_full)} dev "
                      "clips (EVAL_MAX_SAMPLES); the final one uses all.")
        self.prepared = prepared
        lengths = lengths_of(prepared["train"])
        self.report.update({"rows_kept": kept, "dropped": dropped, "dropped_examples": examples,
                            "eval_rows_during_training": len(prepared["eval"]),
                            "train_hours": round(float(np.sum(lengths)) / SAMPLING_RATE / 3600, 4)})
        return prepared

    # 5 ---------------------------------------------------------------------------------------------
    def sanity_check(self, **kwargs) -> dict[str, Any]:
        result = sanity_check(self.model, self.processor, self.prepared["train"], self.cfg.learning_rate,
                              log=self.log, **kwargs)
        self.report["sanity_check"] = result
        return result

    # 6 ---------------------------------------------------------------------------------------------
    def choose_checkpointing(self) -> bool:
        """GRADIENT_CHECKPOINTING="auto": measured with the largest training batch (see ``memory.py``), on each
        process; on for all when one process needs it (each must train the same graph)."""
        setting = str(self.cfg.gradient_checkpointing).lower()
        if setting != "auto":
            on, why = setting == "true", "set by the run or its recipe"
        else:
            import torch

            amp = torch.bfloat16 if self.args.bf16 else torch.float16 if self.args.fp16 else None
            on, why = needs_checkpointing(self.model, self.largest_batch(), self.args.device, amp)
            if agreed_max(float(on), self.args.device) > 0 and not on:
                on, why = True, f"on: another process needs it (this one measured {why})"
        name = "activation_checkpointing" if hasattr(self.args, "activation_checkpointing") else "gradient_checkpointing"
        setattr(self.args, name, on)
        self.report["gradient_checkpointing"] = {"on": on, "why": why}
        self.log(f"gradient checkpointing {why if setting == 'auto' else ('on' if on else 'off') + ' (' + why + ')'}")
        return on

    def largest_batch(self) -> dict[str, Any]:
        """The training batch with the most padded audio (the first one the sampler gives), collated."""
        from .data import DurationBatchSampler

        lengths = lengths_of(self.prepared["train"])
        if self.cfg.max_batch_seconds:
            indices = DurationBatchSampler(lengths, int(self.cfg.max_batch_seconds * SAMPLING_RATE)).batches[0]
        else:
            indices = [int(i) for i in np.argsort(lengths)[::-1][: self.cfg.batch_size]]
        batch = DataCollatorCTCWithPadding(self.processor)([self.prepared["train"][i] for i in indices])
        return split_batch(batch)[0]

    def make_trainer(self):
        if self.args is None:
            self.args = training_arguments(self.cfg, self.checkpoint_dir)
        if self.mirror_every is None:
            self.check_drive()
        self.choose_checkpointing()
        self._callbacks = make_callbacks(self.cfg.max_train_minutes, live=self.live, log=self.log,
                                         freeze_encoder_steps=self.cfg.freeze_encoder_steps,
                                         where=self.places if self.places.mirrored else None,
                                         mirror_every=self.mirror_every or 0)
        # Without data-loader workers (a CPU run) the collator runs in this process: decoded clips are kept.
        cache = CLIP_CACHE_BYTES if self.args.dataloader_num_workers == 0 else 0
        augment = SpeedPerturbation.from_setting(self.cfg.speed_perturbation)
        blank = blank_id(self.processor.tokenizer, self.model.config)
        self.trainer = CTCTrainer(
            model=self.model, args=self.args, data_collator=DataCollatorCTCWithPadding(self.processor, cache),
            train_dataset=self.prepared["train"], eval_dataset=self.prepared["eval"],
            processing_class=self.processor, compute_metrics=make_compute_metrics(self.processor, blank),
            callbacks=list(self._callbacks.values()), max_batch_seconds=self.cfg.max_batch_seconds,
            # training batches get their own collator only to be augmented (evaluation never is)
            train_collator=DataCollatorCTCWithPadding(self.processor, cache, augment=augment) if augment is not None else None,
            adapter_lang=self.target_lang if self.adapter_only else None, base_model=self.cfg.model,
        )
        self._callbacks["non_finite"].trainer = self.trainer
        return self.trainer

    def train(self):
        """trainer.train(), resuming when a checkpoint was found; a non-finite loss raises after stopping."""
        if self.trainer is None:
            self.make_trainer()
        start_step = self.start_step()
        if self.cfg.sanity_check and "sanity_check" not in self.report:
            self.sanity_check()
        started = time.perf_counter()
        output = self.trainer.train(resume_from_checkpoint=str(self.resume_from) if self.resume_from else None)
        state = self.trainer.state
        guard = self._callbacks["non_finite"]
        failure = guard.failure
        stopped_at = self._callbacks["time_limit"].stopped_at
        self.report.update({
            "start_step": start_step, "global_step": state.global_step, "max_steps": state.max_steps,
            "epochs": round(state.epoch or 0.0, 3), "train_seconds": round(time.perf_counter() - started, 1),
            "train_loss": output.training_loss if output is not None else None,
            "stopped_by": guard.reason if failure else ("time_limit" if stopped_at is not None else "completed"),
            "non_finite_losses": self.trainer.non_finite_losses, "skipped_updates": guard.skipped_updates,
            "undecodable_clips_skipped": {"train": self.trainer.skipped_clips, "eval": self.trainer.skipped_eval_clips},
            "best_checkpoint": state.best_model_checkpoint, "best_metric": state.best_metric,
            "learning_rate": self.cfg.learning_rate, "batch_size": self.cfg.batch_size,
            "gradient_accumulation_steps": self.cfg.gradient_accumulation_steps,
            "precision": resolve_precision(self.cfg.precision),
        })
        if stopped_at is not None:
            self.note(f"MAX_TRAIN_MINUTES={self.cfg.max_train_minutes}: stopped at step {stopped_at} of "
                      f"{state.max_steps}.")
        if guard.skipped_updates or self.trainer.non_finite_losses:
            self.note(f"{self.trainer.non_finite_losses} batch(es) had a NaN/inf loss and {guard.skipped_updates} "
                      "update(s) were skipped for non-finite gradients; training went on (a few are normal in fp16).")
        if self.trainer.skipped_clips or self.trainer.skipped_eval_clips:
            self.note(f"{self.trainer.skipped_clips} training clip(s) and {self.trainer.skipped_eval_clips} evaluation "
                      "clip(s) could not be decoded and were left out of their batches (each time they came up); "
                      "the data-loader log names them.")
        if failure:
            self.report["failure"] = failure
            self._write_report()
            raise NonFiniteLossError(failure)
        return output

    # 7 ---------------------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """Evaluate the final model (the best checkpoint's weights) on the whole dev split, save 04_train/model
        (+ processor), curves.png and report.json."""
        metrics = self.trainer.evaluate(eval_dataset=self.eval_full if self.eval_full is not None else None)
        self.report["eval"] = {k.replace("eval_", ""): v for k, v in metrics.items()}
        from ..colab import delete_on_drive, flush_drive

        tmp = self.train_dir / "model.tmp"
        if self.is_main:
            delete_on_drive(tmp)  # a half-written one of an interrupted finish
        # Every rank calls save_model (sharded models gather their weights there), but under torchrun the
        # other ranks of transformers 5 still write the processor and training_args.bin: give them a
        # folder of their own, removed once every rank is done, so they never touch the main one.
        target = tmp if self.is_main else self.train_dir / f"model.rank{self.rank}.tmp"
        self.trainer.save_model(str(target))
        self.trainer.accelerator.wait_for_everyone()
        if not self.is_main:
            shutil.rmtree(target, ignore_errors=True)
        if self.is_main:
            self.processor.save_pretrained(str(tmp))
            if keeps_model_vocabulary(self.cfg):  # the base model's own tokenizer files, unchanged (MMS: but the
                # tokenizer_config.json that names the adapter's language)
                self.report["kept_tokenizer_files"] = copy_tokenizer_files(
                    source_folder(self.cfg.model), tmp, keep_config=bool(self.target_lang))
            if self.target_lang:  # MMS: the adapter file that from_pretrained(..., target_lang=...) loads
                if not self.adapter_only:  # an adapter-only save_model wrote it (and no whole model)
                    save_adapter(self.trainer.model, tmp, self.target_lang)
                self.report["adapter_file"] = adapter_weights_file(self.target_lang)
                self.report["adapter_only"] = self.adapter_only
            if self.model_dir.exists():  # only reachable with OVERWRITE_MODEL=True (checked before training)
                delete_on_drive(self.model_dir)  # on Drive to its bin: bytes already counted as used
            os.replace(tmp, self.model_dir)
            self.report["curves"] = str(save_curves(self.trainer.state.log_history, self.train_dir / "curves.png"))
            self._write_report()
            flush_drive()
            retired = retire(self.places)  # the model is on Drive: its mirrored checkpoints go (to the bin)
            if retired:
                self.log(f"Deleted the checkpoint(s) mirrored to Google Drive, now that 04_train/model is there: "
                         f"{', '.join(retired)} (local copies stay in {self.checkpoint_dir} until the machine goes).")
        return self.report

    def _write_report(self) -> Path | None:
        if not self.is_main:
            return None
        history = self.trainer.state.log_history if self.trainer is not None else []
        self.report["history"] = [
            {k: v for k, v in entry.items() if k in ("step", "epoch", "loss", "eval_loss", "eval_wer", "eval_cer",
                                                     "eval_empty_share", "learning_rate", "grad_norm")}
            for entry in history]
        self.report["notes"] = self.notes
        self.report["model_dir"] = str(self.model_dir)
        return write_json_atomic(self.train_dir / "report.json", self.report, default=_plain)

    def run(self) -> dict[str, Any]:
        self.check_outputs()
        self.load()
        self.build_model()
        self.check()
        self.prepare()
        self.make_trainer()
        self.train()
        return self.finish()


def sorted_by_length(dataset):
    """Longest clip first: evaluation batches then hold clips of similar length (and an out-of-memory error
    shows in the first batch)."""
    order = np.argsort(lengths_of(dataset), kind="stable")[::-1]
    return dataset.select([int(i) for i in order])


def eval_subset(dataset, max_samples: int, seed: int):
    """A fixed random subset of ``max_samples`` rows of a sorted dataset, still sorted (0: all of it)."""
    if not max_samples or len(dataset) <= max_samples:
        return dataset
    rng = np.random.default_rng(seed)
    return dataset.select(sorted(int(i) for i in rng.choice(len(dataset), size=max_samples, replace=False)))


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def run_train(cfg: Config, live=None, log: Callable = log_main) -> dict[str, Any]:
    """The whole step; returns the report (also written to 04_train/report.json)."""
    return Training(cfg, log=log, live=live).run()
