"""Benchmark: 48 kHz mp3 -> 16 kHz input_values. Ours vs the seed's path vs decode-only; peak memory.

    python benchmarks/preprocess.py [--clips 400] [--procs 2] [--rss 200,2000]

Rows of the speed table:
- decode-only: torchcodec decode + resample of every clip, nothing else (the floor), 1 and N processes;
- ours: ``xlsr_helpers.audio.prepare_dataset`` (decode+resample in FFmpeg, in threads, batched
  normalization, labels, Arrow files), at NUM_PROC=0 (what training uses) and at 1 and N processes;
- seed: the 2021 notebook: ``torchaudio.load`` + ``Resample(48000, 16000)`` per example in ``Dataset.map``,
  then ``processor(...)`` in a batched map (batch 8, N processes), as the seed did.
Peak memory: the prepare step for 200 vs 2,000 clips, each in its own subprocess, measured as the peak of
the summed PSS of the process tree (workers included; shared pages counted once), sampled every 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("merhaba dünya bugün hava çok güzel ve ben okula gidiyorum akşam yemeğinde annem ile babam "
         "kitap okudu çocuklar bahçede oynuyor yarın sabah erken kalkacağız şehir deniz kenarında").split()


def make_clips(folder: Path, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` espeak-ng Turkish clips as 48 kHz mono mp3 (Common Voice's encoding), 2-7 s each."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
        mp3 = folder / f"clip_{i:05d}.mp3"
        if not mp3.exists():
            wav = folder / f"clip_{i:05d}.wav"
            subprocess.run(["espeak-ng", "-v", "tr", "-s", str(rng.randint(140, 190)), "-w", str(wav), sentence],
                           check=True)
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-ar", "48000", "-ac", "1",
                            "-b:a", "64k", str(mp3)], check=True)
            wav.unlink()
        out.append((str(mp3), sentence))
    return out


def make_processor(folder: Path):
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    chars = sorted(set("".join(WORDS)))
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({"|": len(vocab), "[UNK]": len(vocab) + 1, "[PAD]": len(vocab) + 2})
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="[UNK]", pad_token="[PAD]",
                                     word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=True)
    return Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)


def make_dataset(clips):
    from datasets import Audio, Dataset

    return Dataset.from_dict({
        "id": [Path(p).name for p, _ in clips], "audio": [p for p, _ in clips], "sentence": [s for _, s in clips],
    }).cast_column("audio", Audio(sampling_rate=16000))


# --- the three paths -----------------------------------------------------------------------------
def _decode_one(path: str) -> int:
    from torchcodec.decoders import AudioDecoder

    return int(AudioDecoder(path, sample_rate=16000, num_channels=1).get_all_samples().data.shape[-1])


def run_decode_only(clips, procs: int) -> float:
    paths = [p for p, _ in clips]
    started = time.perf_counter()
    if procs == 1:
        total = sum(_decode_one(p) for p in paths)
    else:
        with Pool(procs) as pool:
            total = sum(pool.map(_decode_one, paths, chunksize=16))
    assert total > 0
    return time.perf_counter() - started


def run_ours(clips, procs: int, work: Path) -> float:
    from xlsr_helpers.audio import clear_prepared, prepare_dataset

    from datasets import DatasetDict

    processor = make_processor(work)
    dataset = DatasetDict(train=make_dataset(clips))
    cache = work / f"ours_{procs}"
    clear_prepared(cache)
    started = time.perf_counter()
    prepared = prepare_dataset(dataset, processor.tokenizer, cache, num_proc=procs, progress=False, log=lambda *_: None)
    elapsed = time.perf_counter() - started
    assert len(prepared["train"]) == len(clips)
    return elapsed


_RESAMPLER = None


def _seed_speech_file_to_array_fn(batch):
    import torchaudio

    global _RESAMPLER
    if _RESAMPLER is None:
        _RESAMPLER = torchaudio.transforms.Resample(48_000, 16_000)
    speech_array, sampling_rate = torchaudio.load(batch["path"])
    batch["speech"] = _RESAMPLER(speech_array).squeeze().numpy()
    batch["sampling_rate"] = 16_000
    batch["target_text"] = batch["sentence"]
    return batch


def run_seed(clips, procs: int, work: Path) -> float:
    """The seed notebook's two maps, kept as written in 2021 (processor API updated to transformers 5)."""
    from datasets import Dataset

    processor = make_processor(work)
    dataset = Dataset.from_dict({"path": [p for p, _ in clips], "sentence": [s for _, s in clips]})

    def prepare_dataset(batch):
        batch["input_values"] = processor(batch["speech"], sampling_rate=batch["sampling_rate"][0]).input_values
        batch["labels"] = processor(text=batch["target_text"]).input_ids
        return batch

    started = time.perf_counter()
    dataset = dataset.map(_seed_speech_file_to_array_fn, remove_columns=dataset.column_names,
                          cache_file_name=str(work / "seed_a.arrow"), load_from_cache_file=False)
    dataset = dataset.map(prepare_dataset, remove_columns=dataset.column_names, batch_size=8, num_proc=procs,
                          batched=True, cache_file_name=str(work / "seed_b.arrow"), load_from_cache_file=False)
    elapsed = time.perf_counter() - started
    assert len(dataset) == len(clips)
    return elapsed


# --- peak memory ---------------------------------------------------------------------------------
def _tree_rss(proc) -> int:
    """Memory of a process and its workers: summed PSS (shared pages counted once) where Linux has it."""
    import psutil

    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            info = p.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.AccessDenied:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def peak_rss_of(command: list[str]) -> tuple[int, float]:
    import psutil

    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc = psutil.Process(child.pid)
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            try:
                peak = max(peak, _tree_rss(proc))
            except psutil.Error:
                pass
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, err = child.communicate()
    stop.set()
    thread.join()
    if child.returncode:
        raise RuntimeError(f"{command} failed: {err.decode()[-2000:]}")
    return peak, time.perf_counter() - started


def rss_child(n: int, procs: int, clips_dir: Path, work: Path) -> None:
    """Subprocess body: prepare ``n`` clips (the files are reused cyclically beyond those on disk)."""
    from datasets import DatasetDict

    from xlsr_helpers.audio import prepare_dataset

    base = make_clips(clips_dir, min(n, 400))
    clips = [base[i % len(base)] for i in range(n)]
    processor = make_processor(work)
    prepare_dataset(DatasetDict(train=make_dataset(clips)), processor.tokenizer, work / f"rss_{n}", num_proc=procs,
                    progress=False, log=lambda *_: None)


def main() -> None:
    from xlsr_helpers.audio import preparation_workers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--procs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--rss", default="200,2000", help="clip counts for the peak-memory comparison")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per path (the best is kept)")
    parser.add_argument("--work", default="", help="working folder (default: a temporary one)")
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="xlsr-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    clips_dir = work / "clips"
    if args.rss_child:
        rss_child(args.rss_child, args.procs, clips_dir, work)
        return

    import datasets

    datasets.disable_progress_bars()
    started = time.perf_counter()
    clips = make_clips(clips_dir, args.clips)
    print(f"{len(clips)} clips (48 kHz mp3) ready in {time.perf_counter() - started:.0f} s, in {clips_dir}")
    seconds = sum(_decode_one(p) for p, _ in clips[:50]) / 16000 / min(50, len(clips))
    print(f"mean clip length {seconds:.1f} s; {args.procs} processes; host has {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; best of {args.repeat}\n")

    run_decode_only(clips, args.procs)  # warm-up: page cache, imports
    # Best of --repeat runs, interleaved, so that a busy machine penalizes every path alike.
    paths = [("decode-only (torchcodec, resample in FFmpeg)", procs, lambda p: run_decode_only(clips, p))
             for procs in sorted({1, args.procs})]
    # Ours at NUM_PROC=0 (what training uses: processes and decode threads chosen for the machine) and fixed.
    paths += [(f"ours (prepare_dataset, NUM_PROC={num_proc})", num_proc, lambda p: run_ours(clips, p, work))
              for num_proc in sorted({0, 1, args.procs})]
    paths += [("seed (torchaudio.load + Resample + processor)", args.procs, lambda p: run_seed(clips, p, work))]
    best = [float("inf")] * len(paths)
    for _ in range(args.repeat):
        for k, (_, procs, fn) in enumerate(paths):
            best[k] = min(best[k], fn(procs))
    rows = [(name, procs, len(clips) / seconds) for (name, procs, _), seconds in zip(paths, best)]
    seed = rows[-1][2]
    floor = max(r for n, p, r in rows if n.startswith("decode"))  # decode-only on every core
    print(f"{'path':<48} {'processes x threads':>20} {'clips/s':>9} {'x seed':>7} {'x decode-only':>14}")
    for name, procs, rate in rows:
        workers = "%d x %d" % preparation_workers(procs, len(clips), 32) if name.startswith("ours") else f"{procs} x 1"
        print(f"{name:<48} {workers:>20} {rate:>9.1f} {rate / seed:>7.2f} {rate / floor:>14.2f}")
    ours = next(r for n, p, r in rows if n.startswith("ours") and p == 0)
    print(f"\ngoal (ours at NUM_PROC=0): >= 3x seed: {ours / seed:.2f}x {'OK' if ours / seed >= 3 else 'MISSED'}; "
          f">= 0.7x the fastest decode-only: {ours / floor:.2f}x {'OK' if ours / floor >= 0.7 else 'MISSED'}")

    counts = [int(x) for x in args.rss.split(",") if x]
    if counts:
        print(f"\n{'clips':>6} {'peak memory (MiB, PSS of the process tree)':>44} {'seconds':>8}")
        peaks = []
        for n in counts:
            peak, elapsed = peak_rss_of([sys.executable, __file__, "--rss-child", str(n), "--procs",
                                         str(args.procs), "--work", str(work)])
            peaks.append(peak)
            print(f"{n:>6} {peak / 2**20:>44.0f} {elapsed:>8.1f}")
        ratio = peaks[-1] / peaks[0]
        print(f"\ngoal: peak RSS {counts[-1]} vs {counts[0]} clips <= 1.3x: {ratio:.2f}x "
              f"{'OK' if ratio <= 1.3 else 'MISSED'}")


if __name__ == "__main__":
    main()
