"""The GPU check: what a CUDA GPU (a free Colab T4, a rented one) does with the curriculum's defaults, in one run.

    python benchmarks/gpu_check.py                    # a CUDA GPU: the three parts below (~7 minutes on an H100)
    python benchmarks/gpu_check.py --parts 1,2        # some of them
    python benchmarks/gpu_check.py --json check.json  # also the figures as JSON
    python benchmarks/gpu_check.py --smoke            # a CPU: tiny sizes through the same code (a unit test runs it)

Without CUDA it refuses (exit status 2) unless --smoke is given, whose figures are not a GPU's.

1. Precision. The GPU and its compute capability; what PRECISION="auto" resolves to
   (``xlsr_helpers.precision.resolve_precision``: bf16 only at capability >= 8.0) next to what
   ``torch.cuda.is_bf16_supported()`` says (True on a T4 too, where bf16 is emulated); then XLSR-53 at its real
   size trained at the chosen precision, at fp16, and at bf16 where it is not native (the slowdown "auto" avoids):
   optimizer steps/s, audio-seconds/s and peak memory, and each precision's speed relative to fp16.
2. Gradient checkpointing "auto". Step 04's decision for XLSR-53 at its recipe's batch (``Training.
   choose_checkpointing`` -> ``train/memory.py``: the longest batch probed with LayerDrop off, against the memory
   this process can have), and the real peak of training steps without checkpointing with LayerDrop on (the
   recipe's 0.1), under the memory cap. The verdict: "off" is right when those steps fit; "on" is needed when they
   ran out of memory or came within 10 % of the cap, and cautious otherwise (the probe runs every layer: the
   worst step, which LayerDrop makes rare but not impossible).
3. Families. Audio-seconds/s and peak memory per family, the project's default settings against the 2021
   settings, under a 16 GB cap (a T4's memory): XLSR-53, MMS-1b-all adapters, w2v-BERT 2.0 and Omnilingual CTC
   300M, random weights at the size of their real config.json (benchmarks/gpu_families.py and its table, whose
   docstring says where each size comes from).

The memory cap (``--memory-gb``, default 16) holds for all three parts (``torch.cuda.set_per_process_memory_
fraction`` through ``memory.set_memory_cap``), so a larger card answers for a T4's memory; its arithmetic is its
own (run it on a T4 for a T4's speed). Until this has run on a GPU, the README says "not measured".
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import gpu_families as families  # noqa: E402

PARTS = ("1", "2", "3")
NEEDED_SHARE = 0.9  # part 2: "on" was needed when training without it came within 10 % of the cap
REFUSAL = ("No CUDA GPU here: the GPU check measures a GPU. Run it on one (e.g. a Colab T4: Runtime -> Change "
           "runtime type), or pass --smoke for a CPU run of the same code with tiny sizes (its figures are not a "
           "GPU's).")


def gpu_info(cuda: bool) -> dict:
    """The device, its compute capability, and both answers to "bf16?": the project's and torch's default one."""
    import torch

    from xlsr_helpers.precision import native_bf16, resolve_precision

    info = {"device": "cpu", "capability": None, "auto": resolve_precision("auto", "cuda" if cuda else "cpu"),
            "native_bf16": native_bf16() if cuda else False,
            "torch_is_bf16_supported": torch.cuda.is_bf16_supported() if cuda else None,
            "torch": torch.__version__}
    if cuda:
        capability = ".".join(map(str, torch.cuda.get_device_capability(0)))
        info.update(device=torch.cuda.get_device_name(0), capability=capability,
                    memory_gb=round(torch.cuda.get_device_properties(0).total_memory / 1e9, 1))
    return info


def run_row(row: dict, family, args, device: str, out_dir: str, dataset, processor, **kwargs) -> dict:
    """One training measurement (gpu_families.measure); an out-of-memory error is a row, not the end."""
    try:
        families.measure(row, family, "ours", dataset, processor, args, device, out_dir, **kwargs)
    except RuntimeError as error:  # torch.OutOfMemoryError is one
        if not families.is_out_of_memory(error):
            raise
        row.update(oom=True, **families.peak_memory(device == "cuda"))
    families.free_gpu(device == "cuda")
    return row


# --------------------------------------------------------------------------------------------------
# part 1: the precision
# --------------------------------------------------------------------------------------------------
def precisions_to_measure(info: dict, cuda: bool) -> list[str]:
    """The chosen precision, fp16 (the reference), and bf16 where it is only emulated (what "auto" avoids)."""
    chosen = [info["auto"]]
    if cuda:
        chosen += [p for p in ("fp16",) if p not in chosen]
        chosen += [] if info["native_bf16"] else ["bf16"]
    return chosen


def precision_part(info: dict, args, device: str, out_dir: str, dataset, processor) -> list[dict]:
    family = families.FAMILIES["xlsr53"]
    rows = []
    for precision in precisions_to_measure(info, device == "cuda"):
        run_args = copy.copy(args)
        run_args.precision = precision
        rows.append(run_row({"family": family.name, "setting": "ours", "precision": precision}, family, run_args,
                            device, out_dir, dataset, processor))
    reference = next((r for r in rows if r["precision"] == "fp16" and not r.get("oom")), None)
    for row in rows:
        if reference and not row.get("oom"):
            row["vs_fp16"] = round(row["steps_per_s"] / reference["steps_per_s"], 2)
    return rows


def print_precision(info: dict, rows: list[dict]) -> None:
    print(f"\n1. Precision on {info['device']} (compute capability {info['capability'] or 'n/a'}):")
    print(f"   PRECISION='auto' -> {info['auto']} (native bf16: {info['native_bf16']}); "
          f"torch.cuda.is_bf16_supported() says {info['torch_is_bf16_supported']}")
    for row in rows:
        mark = " <- auto" if row["precision"] == info["auto"] else ""
        if row.get("oom"):
            print(f"   {row['precision']:<5} OOM{mark}")
            continue
        peak = "n/a" if row["peak_reserved_gib"] is None else f"{row['peak_reserved_gib']} GiB"
        speed = f", {row['vs_fp16']}x fp16's speed" if "vs_fp16" in row else ""
        print(f"   {row['precision']:<5} {row['steps_per_s']} steps/s, {row['audio_s_per_s']} audio s/s, peak memory "
              f"{peak} reserved{speed}{mark}")
    if len(rows) == 1:
        print("   fp16 and bf16 need CUDA: nothing to compare on this device.")


# --------------------------------------------------------------------------------------------------
# part 2: gradient checkpointing "auto"
# --------------------------------------------------------------------------------------------------
def checkpointing_part(args, device: str, out_dir: str, dataset, processor, cap_bytes: float | None) -> dict:
    """The decision as step 04 takes it, and training without checkpointing (LayerDrop on) for the real peak."""
    family = families.FAMILIES["xlsr53"]
    decided = run_row({"family": family.name, "setting": "ours (decided)"}, family, args, device, out_dir, dataset,
                      processor)
    on = decided.get("checkpointing") == "auto: on"
    without = decided if not on else run_row({"family": family.name, "setting": "ours, checkpointing off"},
                                             family, args, device, out_dir, dataset, processor, checkpointing=False)
    return {"decision": decided.get("checkpointing"), "why": decided.get("checkpointing_why"),
            "layerdrop": without.get("layerdrop"), "decided": decided, "without": without,
            "verdict": verdict(on, without, cap_bytes)}


def verdict(on: bool, without: dict, cap_bytes: float | None) -> str:
    """Whether "auto" decided right, from training without checkpointing (LayerDrop on) against the cap."""
    if cap_bytes is None:
        return "n/a: no GPU memory to measure on this device"
    if without.get("oom"):
        return ("right: needed (without it, training ran out of memory)" if on else
                "WRONG: off, but training without it ran out of memory")
    peak = without["peak_reserved_gib"] * 2**30
    share = f"{peak / 1e9:.1f} of {cap_bytes / 1e9:.1f} GB"
    if not on:
        return f"right: off, and training without it peaked at {share}"
    if peak > NEEDED_SHARE * cap_bytes:
        return f"right: needed (without it, training peaked at {share}: within {1 - NEEDED_SHARE:.0%} of the cap)"
    return (f"cautious: on, though training without it peaked at {share} with LayerDrop on (the probe runs every "
            "layer: the worst step)")


def print_checkpointing(result: dict) -> None:
    print(f"\n2. Gradient checkpointing 'auto' (XLSR-53, the recipe's batch, LayerDrop {result['layerdrop']}):")
    print(f"   decision: {result['decision']} - {result['why']}")
    without = result["without"]
    peak = ("OOM" if without.get("oom") else "n/a" if without.get("peak_reserved_gib") is None
            else f"{without['peak_reserved_gib']} GiB reserved")
    print(f"   training without it, LayerDrop on: {peak}")
    print(f"   verdict: {result['verdict']}")


# --------------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help="comma list of 1 (precision), 2 (checkpointing), "
                                                                "3 (families)")
    parser.add_argument("--families", default=",".join(families.FAMILIES),
                        help=f"part 3's families, a comma list of {', '.join(families.FAMILIES)}")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per measurement (default 30; 2 smoke)")
    parser.add_argument("--clips", type=int, default=None, help="synthetic clips (default 1000; 16 smoke)")
    parser.add_argument("--memory-gb", type=float, default=16.0, help="GPU memory cap in GB (0: the whole card)")
    parser.add_argument("--smoke", action="store_true", help="a CPU run with tiny sizes (not the GPU figures)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if set(parts) - set(PARTS):
        parser.error(f"--parts: choose among {', '.join(PARTS)}")

    import torch
    import transformers

    from xlsr_helpers.train.memory import set_memory_cap
    from xlsr_helpers.vocab import build_vocab

    cuda = torch.cuda.is_available() and not args.smoke
    if not cuda and not args.smoke:
        print(REFUSAL, file=sys.stderr)
        return 2
    # what gpu_families.measure and run_all read
    args.precision, args.max_batch_seconds = "auto", 0.0
    args.steps = args.steps or (2 if args.smoke else 30)
    args.clips = args.clips or (16 if args.smoke else 1000)
    args.mean_seconds, args.max_seconds = (1.2, 2.0) if args.smoke else (4.5, 10.0)  # Common Voice: 1-10 s
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step is the warm-up)")
    device = "cuda" if cuda else "cpu"
    cap_bytes = None
    if cuda:
        total = torch.cuda.get_device_properties(0).total_memory
        cap_bytes = min(args.memory_gb * 1e9 or total, total)
        if cap_bytes < total:
            set_memory_cap(cap_bytes / total)
    info = gpu_info(cuda)
    print(f"{info['device']}, memory used up to {cap_bytes / 1e9:.0f} GB" if cuda else "CPU (--smoke: tiny sizes)",
          f"| torch {torch.__version__}, transformers {transformers.__version__}")

    threads = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(1)
    figures: dict = {"gpu": info, "args": {k: v for k, v in vars(args).items()}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if {"1", "2"} & set(parts):
                vocab = build_vocab([" ".join(families.TURKISH[i:i + 5] for i in range(0, len(families.TURKISH), 5))])
                processor = families.family_processor(families.FAMILIES["xlsr53"], vocab)
                dataset, _ = families.make_dataset(processor, args.clips, args.mean_seconds, args.max_seconds,
                                                   cache_dir=str(Path(tmp) / "data"))
                out_dir = str(Path(tmp) / "out")
            if "1" in parts:
                figures["precision"] = precision_part(info, args, device, out_dir, dataset, processor)
                print_precision(info, figures["precision"])
            if "2" in parts:
                figures["checkpointing"] = checkpointing_part(args, device, out_dir, dataset, processor, cap_bytes)
                print_checkpointing(figures["checkpointing"])
            if "3" in parts:
                chosen = [families.FAMILIES[name.strip()] for name in args.families.split(",") if name.strip()]
                print(f"\n3. Families, default settings ('ours') against the 2021 settings ('seed')"
                      + (f", under a {cap_bytes / 1e9:.0f} GB cap:" if cuda else ":"))
                figures["families"] = families.run_all(chosen, args, device)
                print("\n" + families.table(figures["families"]))
    finally:
        torch.set_num_threads(threads)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
