"""Adapters stored as adapters: the checkpoints of a frozen-base run (MMS adapters) hold what trains, not the base.

MMS-1b-all has ~965M weights, of which ~2.5M train (the adapter layers and the CTC head). The Trainer's own save
writes all of them into every checkpoint (~3.9 GB); here a checkpoint of such a run holds the trained tensors as
``adapter.<lang>.safetensors`` with ``config.json`` and ``base_model.json`` (``models.save_adapter_model``),
beside the Trainer's optimizer state (AdamW keeps it for the trained weights only), scheduler, random state and
``trainer_state.json``. Resuming and loading the best checkpoint at the end put those tensors back into the
model, whose base is the checkpoint named by MODEL, loaded as it was when training started.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..models import adapter_only_record, adapter_weights_file, load_adapter_file, save_adapter_model


class AdapterCheckpointsMixin:
    """For :class:`~xlsr_helpers.train.trainer.CTCTrainer`: with ``adapter_lang`` set (and ``base_model``, MODEL),
    ``_save`` writes an adapter-only folder, and ``_load_from_checkpoint`` / ``_load_best_model`` read one. Without
    ``adapter_lang`` the Trainer's own methods run unchanged."""

    adapter_lang: str | None = None
    base_model: str | None = None

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not self.adapter_lang:
            return super()._save(output_dir, state_dict)
        import torch
        from transformers.trainer import TRAINING_ARGS_NAME

        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return None
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        save_adapter_model(model, output_dir, self.adapter_lang, self.base_model)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))
        return None

    def _adapter_file(self, folder: str | None) -> Path | None:
        """The adapter file of an adapter-only checkpoint folder, or None (a folder with the whole model)."""
        if not folder or not Path(folder).is_dir():
            return None
        record = adapter_only_record(folder)
        return Path(folder) / adapter_weights_file(record["target_lang"]) if record else None

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        path = self._adapter_file(resume_from_checkpoint)
        if path is None:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_adapter_file(model if model is not None else self.model, path)
        return None

    def _load_best_model(self) -> None:
        path = self._adapter_file(self.state.best_model_checkpoint)
        if path is None:
            return super()._load_best_model()
        load_adapter_file(self.accelerator.unwrap_model(self.model, keep_torch_compile=False), path)
        return None
