"""Step 04: fine-tune a CTC model on the prepared run folder, split by concern.

- ``data``         the training batches: collator (model inputs made from 16 kHz samples), length-grouped
                   sampler, CTC feasibility filter
- ``guards``       settings that are known to fail, refused before step 1; the optional overfit check
- ``trainer``      TrainingArguments (transformers-5 names), the CTC Trainer, metrics and callbacks
- ``checkpoints``  which checkpoint to resume from; never replacing a finished model by accident
- ``curves``       loss / WER / CER curves
- ``step``         the step itself (:class:`~xlsr_helpers.train.step.Training`), one method per stage
- ``__main__``     ``xlsr train`` / ``torchrun -m xlsr_helpers.train`` / ``accelerate launch -m xlsr_helpers.train``

What differs between model families (what is frozen, learning rate, masking, ...) is in ``models.py``.
"""
