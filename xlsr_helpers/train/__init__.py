"""Step 04: fine-tune a CTC model on the prepared run folder, split by concern.

- ``data``         the training batches: collator (model inputs made from 16 kHz samples; a bound on stand-in
                   batches when clips stop decoding), length-grouped samplers, CTC feasibility filter
- ``augment``      speed perturbation of training clips
- ``guards``       settings that are known to fail, refused before step 1; the optional overfit check
- ``trainer``      TrainingArguments (transformers-5 names, PRECISION by ``xlsr_helpers.precision``), the CTC
                   Trainer (length-grouped batches, best checkpoint with ties broken by CER) and its metrics
- ``callbacks``    head first, non-finite batches, time limit, the Drive mirror, a lost best checkpoint,
                   evaluation lines, the sampler's epoch
- ``checkpoints``  which checkpoint to resume from (only a complete one); never replacing a finished model by
                   accident; checkpoint sizes and the local disk budget
- ``drive``        the run folder on Google Drive: what goes there and how often (the ledger of a whole run,
                   bin included, and its check), mirroring, restoring after a disconnect
- ``adapter_checkpoints``  a frozen base (MMS adapters): checkpoints and model hold the adapter, not the base
- ``memory``       GRADIENT_CHECKPOINTING="auto": the worst case measured against the memory this process can have
- ``distributed``  which process this is, and decisions every process takes together
- ``curves``       loss / WER / CER curves
- ``search``       hyper-parameter search on a budget before training
- ``step``         the step itself (:class:`~xlsr_helpers.train.step.Training`), one method per stage
- ``__main__``     ``xlsr train`` / ``torchrun -m xlsr_helpers.train`` / ``accelerate launch -m xlsr_helpers.train``

What differs between model families (what is frozen, learning rate, masking, ...) is in ``models.py``.
"""
