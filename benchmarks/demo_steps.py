"""Benchmark: seconds per training step of the ``tiny`` model on the demo corpus, and where the time goes.

    OMP_NUM_THREADS=1 python benchmarks/demo_steps.py [--steps 40] [--run-dir /tmp/xlsr-demo-bench]

The demo (``make demo``) trains a fixed number of steps (pipeline.DEMO_PARAMETERS), so its training time is
that number times the cost of a step, plus one evaluation per EVAL_STEPS. This script measures, in one process,
the Trainer's step written out by hand (the same length-grouped batches, collator, model and AdamW) with each
part timed: collating the batch (feature extractor, padding), the frozen filterbank front-end
(``wav2vec2.feature_extractor``) inside the forward pass, the rest of the forward pass (projection,
transformer, CTC head and loss), the backward pass and the update. It does so for three settings, their
steps interleaved (step i of each setting, then step i+1 ...) so that a load that comes and goes on a shared
machine hits them alike: compare the rows of one run, not numbers of different runs.

- ``before``: families.TINY_TRAINING (batches of 8, attention dropout 0.1) with torch's fused weight-norm and
  layer-norm kernels, i.e. the demo's step before it trained a fixed number of steps;
- ``+ thread-independent norms``: the same with tiny.tiny_thread_independent_ (what every tiny model trains
  with now): the price of the same numbers at any thread count;
- ``+ no attention dropout``: the same without dropout on the attention weights;
- ``demo``: pipeline.DEMO_PARAMETERS' settings (batches of 4, no attention dropout): what the demo trains now.

Then one evaluation of the eval split (what each EVAL_STEPS adds). Times are wall-clock and process CPU;
with ``OMP_NUM_THREADS=1`` the CPU seconds hardly depend on what else runs on the machine (with 2 threads on a
busy 2-core machine, each parallel region waits for a descheduled thread: measured 4-5x slower than 1 thread).
The run folder (steps 01-03 on the synthetic demo corpus) is built when missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARTS = ("collate", "front-end forward", "rest of forward + loss", "backward", "update")


def ensure_run(run_dir: Path):
    from xlsr_helpers.config import Config
    from xlsr_helpers.families import resolve

    if not (run_dir / "03_vocab" / "processor").exists():
        from xlsr_helpers.load import run_load
        from xlsr_helpers.normalize import run_normalize
        from xlsr_helpers.vocab import run_vocab

        cfg = resolve(Config(language="tr", run_dir=str(run_dir), data_source="synthetic", synthetic_size="demo",
                             model="tiny"))
        cfg.save("01_load")
        run_load(cfg)
        run_normalize(cfg)
        run_vocab(cfg)
    return Config.load(run_dir).updated(run_dir=str(run_dir), model="tiny", overwrite_model=True, resume="never")


def fused_norms_(model):
    """Undo tiny.tiny_thread_independent_: torch's own weight_norm and LayerNorm modules again."""
    import torch
    from torch.nn.utils.parametrizations import _WeightNorm

    norms = model.wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight
    norms[0] = _WeightNorm(norms[0].dim)
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.__class__ = torch.nn.LayerNorm
    return model


def prepared_training(cfg, **changes):
    from xlsr_helpers.train.step import Training

    training = Training(cfg.updated(**changes), log=lambda *a: None)
    training.load()
    training.build_model()
    training.check()
    training.prepare()
    return training


class TimedSteps:
    """One setting's model, batches (epoch 0 of the length-grouped sampler) and optimizer; ``step(i)`` runs
    and times training step i."""

    def __init__(self, training):
        import torch

        from xlsr_helpers.audio import LENGTH_COLUMN
        from xlsr_helpers.train.data import DataCollatorCTCWithPadding, LengthBucketSampler

        self.cfg, self.model = training.cfg, training.model
        self.train = training.prepared["train"]
        lengths = self.train.select_columns([LENGTH_COLUMN]).with_format(None)[:][LENGTH_COLUMN]
        order = LengthBucketSampler(lengths, self.cfg.batch_size, seed=self.cfg.seed).order(0)
        size = self.cfg.batch_size
        self.batches = [order[i:i + size] for i in range(0, len(order) - len(order) % size, size)]
        self.collate = DataCollatorCTCWithPadding(training.processor)
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                           lr=self.cfg.learning_rate)
        self.totals = dict.fromkeys(PARTS, 0.0)
        self.cpu = 0.0
        self.steps = 0
        self.front_started = self.front_seconds = 0.0
        front = self.model.wav2vec2.feature_extractor
        front.register_forward_pre_hook(lambda *a: setattr(self, "front_started", time.perf_counter()))
        front.register_forward_hook(lambda *a: setattr(self, "front_seconds",
                                                       time.perf_counter() - self.front_started))
        self.model.train()

    def step(self, i: int, record: bool = True) -> None:
        import torch

        from xlsr_helpers.train.data import split_batch

        rows = [self.train[int(k)] for k in self.batches[i % len(self.batches)]]
        cpu = time.process_time()
        t0 = time.perf_counter()
        inputs, _ = split_batch(self.collate(rows))
        t1 = time.perf_counter()
        loss = self.model(**inputs).loss
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad()
        t4 = time.perf_counter()
        if record:
            self.cpu += time.process_time() - cpu
            self.steps += 1
            for name, seconds in zip(PARTS, (t1 - t0, self.front_seconds, t2 - t1 - self.front_seconds,
                                             t3 - t2, t4 - t3)):
                self.totals[name] += seconds


def main() -> None:
    import torch

    from xlsr_helpers.pipeline import DEMO_PARAMETERS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per setting (after 3 warm-up steps)")
    parser.add_argument("--run-dir", default="/tmp/xlsr-demo-bench")
    args = parser.parse_args()

    run_dir = Path(args.run_dir).resolve()
    cfg = ensure_run(run_dir)
    demo = {k.lower(): v for k, v in DEMO_PARAMETERS.items()
            if k in ("BATCH_SIZE", "ATTENTION_DROPOUT", "HIDDEN_DROPOUT", "LEARNING_RATE", "MASK_TIME_PROB")}
    settings = {"before": {}, "+ thread-independent norms": {},
                "+ no attention dropout": {"attention_dropout": 0.0}, f"demo {demo}": demo}
    timed = {}
    for name, changes in settings.items():
        training = prepared_training(cfg, **changes)
        if name == "before":
            fused_norms_(training.model)
        timed[name] = TimedSteps(training)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); run folder {run_dir}")
    for i in range(3 + args.steps):
        for steps in timed.values():
            steps.step(i, record=i >= 3)

    first = None
    for name, steps in timed.items():
        n, batch = steps.steps, steps.cfg.batch_size
        per_step = sum(steps.totals.values()) / n
        first = first or per_step
        print(f"\n{name}: batches of {batch}, attention dropout {steps.model.config.attention_dropout}, "
              f"mean of {n} steps")
        for part in PARTS:
            seconds = steps.totals[part] / n
            print(f"  {part:<24} {seconds * 1000:8.1f} ms  {seconds / per_step:6.1%}")
        print(f"  {'step':<24} {per_step * 1000:8.1f} ms  = {per_step:.3f} s/step ({per_step / first:.2f} x the "
              f"first), {per_step / batch * 1000:.1f} ms per clip; process CPU {steps.cpu / n:.3f} s/step")

    training = prepared_training(cfg, **demo, max_steps=1)
    training.make_trainer()
    cpu, started = time.process_time(), time.perf_counter()
    training.trainer.evaluate()
    print(f"\none evaluation ({len(training.prepared['eval'])} eval clips): {time.perf_counter() - started:.2f} s, "
          f"process CPU {time.process_time() - cpu:.2f} s")


if __name__ == "__main__":
    main()
