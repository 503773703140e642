"""Benchmark: what a large language costs before the first training step — time, run-folder size, peak memory.

    python benchmarks/scale.py [--clips 10000 100000] [--repeat 3] [--old-commit REV] [--old-max 10000] [--loader]
                               [--source common_voice|hub]

For each N a Common Voice-layout folder of N clips is built cheaply: hard links to the few hundred clips of the
synthetic ``demo`` corpus (real 48 kHz mp3s, 1.5-4.5 s), each row with a distinct sentence, its speaker, and its
duration in ``clip_durations.tsv`` (what Common Voice ships). Then, in a fresh process per run: steps 01, 02 and
03 (``xlsr_helpers``) and step 04 up to the end of its first training step (model ``tiny`` on the CPU). Printed:

- time from the start of step 01 to the end of the first training step, and what it is made of (per stage), with
  the TSV parse (train/dev/test.tsv and clip_durations.tsv, read once more alone) beside it;
- the run folder's size against the source's (the clips counted as N distinct files, as a real release has them);
- peak memory: the PSS of the process tree (sampled every 0.1 s from /proc).

Each run is repeated (``--repeat``, fresh processes, sizes interleaved) and the fastest is kept, the usual way to
time on a shared machine: the first run of a session found cold caches (imports 8 s instead of 5, step 01 twice as
long at 10,000 clips), which flattered the growth ratio. Peak memory is the largest of the repeats.

``--source hub`` measures a ``hub:`` source instead (issue 25): the same clips and rows as a local parquet mirror laid
out as the Hub's are (``data/train-0000k-of-0000n.parquet``, audio bytes in the files, shards of at most 20,000 rows,
no duration column, so that step 01 reads each clip's header; ``--hub-durations`` adds one), read through
``hub:<folder>``. datasets' one-time conversion of the parquet files into its Arrow cache (a folder of the work
folder) is done and timed before the runs: it is the same for every version of the code. The source's size is the
parquet files'; peak memory is also given as anonymous memory (``Pss_Anon``: what the kernel cannot drop, unlike
pages of a mapped file).

``--old-commit`` runs the same script against another commit of the project (a temporary ``git worktree``), for
the path before issue 14 (decoded copies of the corpus, a decode check of every clip), at the sizes up to
``--old-max`` (its run folder grows ~9x the source). ``--loader`` also measures clips per second delivered by the
training data loader (decode + resample + features, batches of 8) with 0, 1 and 2 worker processes.

Machines differ: compare the columns of one run (ratios), not figures between machines.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if "--child" not in sys.argv:  # a child imports the project its PYTHONPATH names (this one, or --old-commit's)
    sys.path.insert(0, str(ROOT))

GOAL_FOLDER_RATIO = 1.2  # run folder / source, without EMBED_AUDIO
GOAL_GROWTH = 1.5  # 100,000 vs 10,000 clips: time to the first step (less the TSV parse) and peak memory
SPEAKERS = 2000
HEADER = ("client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes", "age",
          "gender", "accents", "variant", "locale", "segment")
LETTERS = "abcçdefgğhıijklmnoöprsştuüvyz"


# --------------------------------------------------------------------------------------------------
# the corpus
# --------------------------------------------------------------------------------------------------
def distinct_word(i: int) -> str:
    """A pronounceable-looking word, different for every i (base-29 over the Turkish alphabet)."""
    word = ""
    i += 29 * 29  # at least three letters
    while i:
        i, r = divmod(i, len(LETTERS))
        word += LETTERS[r]
    return word


def build_corpus(folder: Path, n: int, seed: int = 0) -> dict:
    """A Common Voice-layout folder of ``n`` clips (hard links); returns its source size in bytes (a folder built
    before in the same ``--work`` is reused)."""
    from xlsr_helpers.sources.common_voice import read_clip_durations, read_cv_tsv
    from xlsr_helpers.synthetic import make_corpus

    done = folder.parent / "source.json"
    if done.exists():
        return json.loads(done.read_text())
    demo = make_corpus("tr", "demo", seed=0)
    sentences = {r["path"]: r["sentence"] for name in ("train", "dev", "test")
                 for r in read_cv_tsv(demo / f"{name}.tsv")[0]}
    durations = read_clip_durations(demo)
    originals = sorted(p for p in sentences if p in durations and (demo / "clips" / p).exists())
    rng = random.Random(seed)
    clips = folder / "clips"
    clips.mkdir(parents=True)
    splits = {"train": [], "dev": [], "test": []}
    duration_lines = ["clip\tduration[ms]"]
    source_bytes = 0
    for i in range(n):
        original = originals[i % len(originals)]
        name = f"common_voice_tr_{i:07d}.mp3"
        os.link(demo / "clips" / original, clips / name)
        source_bytes += (demo / "clips" / original).stat().st_size
        split = "test" if i % 20 == 0 else "dev" if i % 20 == 1 else "train"
        speaker = f"{split}-{rng.randrange(SPEAKERS // (1 if split == 'train' else 10))}"
        splits[split].append({"client_id": speaker, "path": name, "sentence_id": str(i),
                              "sentence": f"{sentences[original]} {distinct_word(i)}", "up_votes": "2",
                              "down_votes": "0", "locale": "tr"})
        duration_lines.append(f"{name}\t{int(durations[original] * 1000)}")
    for split, rows in splits.items():
        with open(folder / f"{split}.tsv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, HEADER, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
            writer.writeheader()
            writer.writerows(rows)
    (folder / "clip_durations.tsv").write_text("\n".join(duration_lines) + "\n")
    source_bytes += sum((folder / f).stat().st_size for f in ("train.tsv", "dev.tsv", "test.tsv", "clip_durations.tsv"))
    done.write_text(json.dumps({"clips": n, "source_bytes": source_bytes}))
    return json.loads(done.read_text())


MIRROR_SHARD_ROWS = 20_000


def build_mirror(folder: Path, n: int, seed: int = 0, durations: bool = False) -> dict:
    """The rows of :func:`build_corpus` (built first, beside it) as a parquet mirror of a Hub dataset (``durations``:
    with a ``duration`` column), and datasets' Arrow cache of it (built once, timed); returns the source size in
    bytes (a mirror built before is reused)."""
    from datasets import Audio, Dataset

    from xlsr_helpers.sources.common_voice import read_clip_durations, read_cv_tsv

    done = folder / "source.json"
    if done.exists():
        return json.loads(done.read_text())
    corpus = folder.parent / "cv" / "tr"
    build_corpus(corpus, n, seed)
    seconds = read_clip_durations(corpus) if durations else {}
    (folder / "data").mkdir(parents=True)
    for split, name in (("train", "train"), ("dev", "validation"), ("test", "test")):
        rows = read_cv_tsv(corpus / f"{split}.tsv")[0]
        shards = max(1, -(-len(rows) // MIRROR_SHARD_ROWS))
        for k in range(shards):
            part = rows[k * len(rows) // shards:(k + 1) * len(rows) // shards]
            Dataset.from_dict({
                "audio": [{"bytes": (corpus / "clips" / r["path"]).read_bytes(), "path": r["path"]} for r in part],
                "sentence": [r["sentence"] for r in part], "client_id": [r["client_id"] for r in part],
                "up_votes": [int(r["up_votes"]) for r in part],
                **({"duration": [seconds[r["path"]] for r in part]} if durations else {}),
            }).cast_column("audio", Audio()).to_parquet(
                str(folder / "data" / f"{name}-{k:05d}-of-{shards:05d}.parquet"))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"from datasets import load_dataset; load_dataset({str(folder)!r})"],
                   env=child_env(ROOT, folder.parent), check=True, capture_output=True)
    source = {"clips": n, "source_bytes": sum(f.stat().st_size for f in (folder / "data").iterdir()),
              "cache_seconds": round(time.perf_counter() - started, 1)}
    done.write_text(json.dumps(source))
    return source


# --------------------------------------------------------------------------------------------------
# one run, in its own process (``--child``): steps 01-03 and step 04 to its first training step
# --------------------------------------------------------------------------------------------------
def child(data_source: str, run_dir: Path, out: Path) -> None:
    started = time.perf_counter()
    stages: dict[str, float] = {}

    def mark(name: str) -> None:
        stages[name] = round(time.perf_counter() - started - sum(stages.values()), 2)

    from transformers import TrainerCallback

    from xlsr_helpers.config import Config
    from xlsr_helpers.families import resolve
    from xlsr_helpers.load import run_load
    from xlsr_helpers.normalize import run_normalize
    from xlsr_helpers.sources.common_voice import read_clip_durations, read_cv_tsv
    from xlsr_helpers.train.step import Training
    from xlsr_helpers.vocab import run_vocab
    mark("imports")
    if data_source.startswith("common_voice:"):  # the TSV parse, measured alone (step 01 does it again)
        corpus = Path(data_source.partition(":")[2])
        for name in ("train", "dev", "test"):
            read_cv_tsv(corpus / f"{name}.tsv")
        read_clip_durations(corpus)
    tsv_parse = round(time.perf_counter() - started - sum(stages.values()), 2)
    started += tsv_parse  # not part of any stage

    cfg = resolve(Config(language="tr", run_dir=str(run_dir), data_source=data_source, model="tiny",
                         max_steps=1, eval_steps=1000, save_steps=1000, logging_steps=1000, batch_size=8,
                         gradient_accumulation_steps=1, sanity_check=False))
    cfg.save("01_load")
    run_load(cfg)
    mark("01_load")
    run_normalize(cfg)
    mark("02_normalize")
    run_vocab(cfg)
    mark("03_vocab")

    class FirstStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            control.should_training_stop = True
            control.should_save = control.should_evaluate = False

    training = Training(cfg, log=lambda *a: None)
    training.check_outputs()
    training.load()
    training.build_model()
    training.check()
    mark("04 load + model")
    training.prepare()
    mark("04 rows + feasibility")
    training.make_trainer()
    training.trainer.add_callback(FirstStep())
    training.trainer.train()
    mark("04 first step")
    out.write_text(json.dumps({"stages": stages, "tsv_parse": tsv_parse,
                               "to_first_step": round(sum(v for k, v in stages.items() if k != "imports"), 2)}))


# --------------------------------------------------------------------------------------------------
# the parent: memory sampling, folder sizes, the table
# --------------------------------------------------------------------------------------------------
def tree_pss_bytes(pid: int, field: str = "Pss:") -> int:
    """PSS of a process and its descendants (shared pages counted once overall); ``field="Pss_Anon:"`` for its
    anonymous part."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith(field):
                    total += int(line.split()[1]) * 1024
                    break
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            todo += [int(c) for c in children]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def child_env(code_root: Path, work: Path) -> dict:
    """A child's environment: the project at ``code_root``, one thread, no progress bars, datasets' cache in
    ``work``."""
    return {**os.environ, "PYTHONPATH": str(code_root), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1",
            "HF_DATASETS_CACHE": str(work / "hf-datasets-cache")}


def run_once(code_root: Path, data_source: str, work: Path) -> dict:
    run_dir, out = work / "run", work / "result.json"
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", data_source, str(run_dir),
                                str(out)], env=child_env(code_root, work.parent), cwd=str(code_root),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = peak_anon = 0
    while process.poll() is None:
        peak = max(peak, tree_pss_bytes(process.pid))
        peak_anon = max(peak_anon, tree_pss_bytes(process.pid, "Pss_Anon:"))
        time.sleep(0.1)
    if process.returncode:
        raise RuntimeError(f"run failed ({process.returncode}): {process.stderr.read()[-3000:]}")
    result = json.loads(out.read_text())
    result["peak_pss"], result["peak_anon"] = peak, peak_anon
    result["run_folder_bytes"] = folder_bytes(run_dir)
    result["by_step"] = {p.name: folder_bytes(p) for p in sorted(run_dir.iterdir()) if p.is_dir()}
    scratch = Path("/content/xlsr-scratch")
    result["run_folder_bytes"] += folder_bytes(scratch) if scratch.exists() else 0
    return result


def loader_throughput(corpus: Path, clips: int = 2000) -> list[tuple[int, float]]:
    """Clips per second delivered by the training DataLoader (decode + resample + features), 0-2 workers."""
    from torch.utils.data import DataLoader
    from transformers import AutoProcessor

    from datasets import load_from_disk

    from xlsr_helpers.config import Config
    from xlsr_helpers.families import resolve
    from xlsr_helpers.families import resolve
    from xlsr_helpers.load import run_load
    from xlsr_helpers.normalize import run_normalize
    from xlsr_helpers.train.data import DataCollatorCTCWithPadding, training_rows
    from xlsr_helpers.vocab import run_vocab

    run = corpus.parent / "loader-run"
    cfg = resolve(Config(language="tr", run_dir=str(run), data_source=f"common_voice:{corpus}", model="tiny"))
    cfg.save("01_load")
    run_load(cfg)
    run_normalize(cfg)
    run_vocab(cfg)
    processor = AutoProcessor.from_pretrained(str(cfg.processor_dir))
    rows = training_rows(load_from_disk(str(run / "02_normalize" / "dataset"))["train"], processor.tokenizer)
    rows = rows.select(range(min(clips, len(rows))))
    results = []
    for workers in (0, 1, 2):
        loader = DataLoader(rows, batch_size=8, collate_fn=DataCollatorCTCWithPadding(processor), num_workers=workers,
                            prefetch_factor=4 if workers else None)
        batches = iter(loader)
        next(batches)  # the workers' start-up is not throughput
        started, n = time.perf_counter(), 0
        for batch in batches:
            n += int(batch["labels"].shape[0])
        results.append((workers, n / (time.perf_counter() - started)))
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--old-commit", default="", help="a commit of the project to run side by side (or a folder "
                        "holding one)")
    parser.add_argument("--old-max", type=int, default=10_000, help="largest N for the old commit")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (path, N); the fastest is kept")
    parser.add_argument("--loader", action="store_true", help="also measure the data loader's clips/s")
    parser.add_argument("--work", default="", help="work folder (default: a temporary one, removed at the end)")
    parser.add_argument("--source", choices=("common_voice", "hub"), default="common_voice",
                        help="a Common Voice release folder, or the same rows as a parquet mirror read as hub:<folder>")
    parser.add_argument("--hub-durations", action="store_true", help="the mirror has a duration column (no header "
                        "read in step 01)")
    args = parser.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="xlsr-scale-"))
    codes = {"new": ROOT}
    worktree = bool(args.old_commit) and not Path(args.old_commit).is_dir()
    if worktree:
        old = work / "old-code"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.old_commit], check=True,
                       capture_output=True)
        codes["old"] = old
    elif args.old_commit:  # a folder with the project's files already (e.g. git archive REV | tar -x -C DIR)
        codes["old"] = Path(args.old_commit).resolve()
    rows = []
    try:
        if args.source == "hub":
            mirror = "mirror-durations" if args.hub_durations else "mirror"
            sources = {n: build_mirror(work / f"cv-{n}" / mirror, n, durations=args.hub_durations) for n in args.clips}
            spec = {n: f"hub:{work / f'cv-{n}' / mirror}" for n in args.clips}
            for n, source in sources.items():
                print(f"{n:>7} rows: parquet mirror {source['source_bytes'] / 1e6:.0f} MB, datasets' Arrow cache built "
                      f"in {source['cache_seconds']:.0f} s (once, before the runs)", flush=True)
        else:
            sources = {n: build_corpus(work / f"cv-{n}" / "tr", n) for n in args.clips}
            spec = {n: f"common_voice:{work / f'cv-{n}' / 'tr'}" for n in args.clips}
        runs: dict[tuple[str, int], list[dict]] = {}
        for attempt in range(args.repeat):  # sizes interleaved: a slow spell of the machine hits both
            for n in args.clips:
                for name, code in codes.items():
                    if name == "old" and n > args.old_max:
                        continue
                    result = run_once(code, spec[n], work / f"cv-{n}" / name)
                    runs.setdefault((name, n), []).append(result)
                    print(f"{name:>4} {n:>7} clips, run {attempt + 1}: {result['to_first_step']:.1f} s to the first "
                          f"step (TSV parse {result['tsv_parse']:.1f} s), run folder "
                          f"{result['run_folder_bytes'] / 1e6:.0f} MB (source {sources[n]['source_bytes'] / 1e6:.0f} "
                          f"MB), peak PSS {result['peak_pss'] / 2**20:.0f} MiB (anonymous "
                          f"{result['peak_anon'] / 2**20:.0f}); {result['stages']}", flush=True)
                    shutil.rmtree(work / f"cv-{n}" / name / "run", ignore_errors=True)
        for (name, n), results in runs.items():
            best = min(results, key=lambda r: r["to_first_step"] - r["tsv_parse"])
            rows.append({"path": name, **sources[n], **best, "peak_pss": max(r["peak_pss"] for r in results),
                         "peak_anon": max(r["peak_anon"] for r in results), "runs": len(results)})
        print_table(rows)
        if args.loader:
            corpus = work / f"cv-{args.clips[0]}" / ("cv" if args.source == "hub" else "") / "tr"
            print("\nData loader (decode + 16 kHz resample + features, batches of 8, this CPU):")
            for workers, rate in loader_throughput(corpus):
                print(f"  {workers} worker(s): {rate:.0f} clips/s")
    finally:
        if worktree:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "old-code")],
                           capture_output=True)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def print_table(rows: list[dict]) -> None:
    print("\n| path | clips | to first step (s, best run) | of it TSV parse (s) | 01 + 02 (s) | "
          "04 rows + feasibility (s) | run folder / source | run folder (MB) | peak PSS (MiB) | of it anonymous (MiB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        st = r["stages"]
        print(f"| {r['path']} | {r['clips']:,} | {r['to_first_step']:.1f} | {r['tsv_parse']:.1f} | "
              f"{st['01_load'] + st['02_normalize']:.1f} | {st['04 rows + feasibility']:.1f} | "
              f"{r['run_folder_bytes'] / r['source_bytes']:.3f} | {r['run_folder_bytes'] / 1e6:.1f} | "
              f"{r['peak_pss'] / 2**20:.0f} | {r['peak_anon'] / 2**20:.0f} |")
    new = {r["clips"]: r for r in rows if r["path"] == "new"}
    if len(new) >= 2:
        small, large = new[min(new)], new[max(new)]
        time_growth = (large["to_first_step"] - large["tsv_parse"]) / max(1e-9, small["to_first_step"] - small["tsv_parse"])
        memory_growth = large["peak_pss"] / small["peak_pss"]
        ratio = max(r["run_folder_bytes"] / r["source_bytes"] for r in new.values())
        print(f"\ngoals: run folder <= {GOAL_FOLDER_RATIO}x source: {ratio:.3f}x "
              f"{'OK' if ratio <= GOAL_FOLDER_RATIO else 'MISSED'}; {max(new):,} vs {min(new):,} clips: time to the "
              f"first step less the TSV parse {time_growth:.2f}x, peak memory {memory_growth:.2f}x "
              f"(goal <= {GOAL_GROWTH}x: {'OK' if max(time_growth, memory_growth) <= GOAL_GROWTH else 'MISSED'})")


if __name__ == "__main__":
    main()
