"""Benchmark of step 05: the seed's evaluation loop against ``xlsr_helpers.inference.Transcriber`` (CPU).

Both transcribe the same synthetic clips (espeak-ng, 48 kHz mp3 decoded to 16 kHz by the dataset's
``Audio`` column) with the same base-size wav2vec2 (``Wav2Vec2Config()`` = base, but with XLSR's
layer-norm feature encoder, random weights, seeded), then the script prints clips/s and the ratio.

The seed's loop (the 2021 XLSR fine-tuning week notebook, with datasets >= 4's audio objects)::

    def evaluate(batch):
        inputs = processor(batch["speech"], sampling_rate=16_000, return_tensors="pt", padding=True)
        with torch.no_grad():
            logits = model(inputs.input_values, attention_mask=inputs.attention_mask).logits
        batch["pred_strings"] = processor.batch_decode(torch.argmax(logits, dim=-1))
        return batch
    result = test_dataset.map(evaluate, batched=True, batch_size=8)

"Identical predictions" is checked two ways: against the seed's loop, and against the seed's loop at
batch size 1 (no padding). The seed also decodes the padded frames of the shorter clips of a batch;
with random weights those frames are not blank, so some of the seed's texts depend on the batch they
were in. Ours decodes each clip's own frames only, so it must equal the seed at batch size 1.

    python benchmarks/evaluate.py [--clips 200] [--batch-size 8] [--corpus espeak|synthetic] [--skip-seed-bs1]
                                  [--repeat N] [--keep DIR]

Measured on a shared 2-core CPU the wall times are noisy; the CPU-time column depends less on other load.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = ("merhaba dünya güzel bir gün çok şehir ağaç ışık kitap okul deniz yol ev araba kapı "
         "pencere çocuk anne baba su ekmek yemek zaman hayat insan iş büyük küçük yeni eski").split()


def make_clips(folder: Path, n: int, seed: int = 0) -> list[dict]:
    """``n`` espeak-ng clips of 2-16 Turkish words (about 1-7 s), as 48 kHz mp3 like Common Voice."""
    rng = random.Random(seed)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 16))) for _ in range(n)]
    folder.mkdir(parents=True, exist_ok=True)

    def one(i: int) -> dict:
        wav, mp3 = folder / f"clip_{i:04d}.wav", folder / f"clip_{i:04d}.mp3"
        voice_speed = str(rng_speed[i])
        subprocess.run(["espeak-ng", "-v", "tr", "-s", voice_speed, "-w", str(wav), sentences[i]], check=True)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-ar", "48000", "-ac", "1",
                        "-b:a", "64k", str(mp3)], check=True)
        wav.unlink()
        return {"id": mp3.name, "audio": str(mp3), "sentence": sentences[i]}

    rng_speed = [rng.randint(140, 190) for _ in range(n)]
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def corpus_clips(n: int) -> list[dict]:
    """The first ``n`` rows of train.tsv of the curriculum's synthetic ``demo`` corpus (tr), in file order."""
    import csv

    from xlsr_helpers.synthetic import make_corpus

    folder = make_corpus("tr", "demo", seed=0, progress=False)
    with (folder / "train.tsv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [{"id": r["path"], "audio": str(folder / "clips" / r["path"])} for r in rows[:n]]


def build_model(folder: Path):
    """A processor (Turkish letters) and a base-size layer-norm Wav2Vec2ForCTC with random weights."""
    import torch
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                              Wav2Vec2ForCTC, Wav2Vec2Processor)

    folder.mkdir(parents=True, exist_ok=True)
    letters = sorted(set("".join(WORDS)))
    vocab = {c: i for i, c in enumerate(letters)}
    vocab |= {"|": len(vocab), "[UNK]": len(vocab) + 1, "[PAD]": len(vocab) + 2}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="[UNK]", pad_token="[PAD]",
                                     word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=True)
    processor = Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer)
    config = Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, vocab_size=len(tokenizer),
                            pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(config).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def seed_loop(dataset, model, processor, batch_size: int) -> list[str]:
    """The seed's evaluation: Dataset.map, batches of 8 in dataset order, padded, all frames decoded."""
    import torch

    def evaluate(batch):
        speech = [audio.get_all_samples().data.mean(dim=0).numpy() for audio in batch["audio"]]
        inputs = processor(speech, sampling_rate=16_000, return_tensors="pt", padding=True)
        with torch.no_grad():
            logits = model(inputs.input_values, attention_mask=inputs.attention_mask).logits
        pred_ids = torch.argmax(logits, dim=-1)
        return {"pred_strings": processor.batch_decode(pred_ids)}

    result = dataset.map(evaluate, batched=True, batch_size=batch_size, remove_columns=dataset.column_names,
                         load_from_cache_file=False)
    return result["pred_strings"]


def ours(dataset, model, processor, batch_size: int) -> list[str]:
    from xlsr_helpers.inference import Transcriber

    return Transcriber(model, processor, batch_size=batch_size, progress=False).transcribe(dataset)


def cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def padded_seconds(durations: list[float], batch_size: int) -> dict[str, float]:
    """Seconds of audio the model processes, padding included, in dataset order and longest first."""
    def total(order):
        return sum(max(order[i:i + batch_size]) * len(order[i:i + batch_size]) for i in range(0, len(order), batch_size))
    return {"dataset order": total(list(durations)), "longest first": total(sorted(durations, reverse=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--skip-seed-bs1", action="store_true", help="skip the seed at batch size 1 (slow)")
    parser.add_argument("--corpus", choices=["espeak", "synthetic"], default="espeak",
                        help="espeak: 2-16-word sentences (0.9-7.5 s, spread like Common Voice clips); "
                             "synthetic: the curriculum's demo corpus (2-5 words, 1.5-5.7 s)")
    parser.add_argument("--repeat", type=int, default=1, help="alternate the runs this many times, keep the fastest")
    parser.add_argument("--keep", help="keep the clips and model in this folder (reused when present)")
    args = parser.parse_args()

    import torch
    from datasets import Audio, Dataset, disable_caching
    from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

    from xlsr_helpers.inference import audio_duration

    disable_caching()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-evaluate-"))
    try:
        clips_dir, model_dir = root / "clips", root / "model"
        if args.corpus == "synthetic":
            rows = corpus_clips(args.clips)
        else:
            if not (clips_dir / f"clip_{args.clips - 1:04d}.mp3").exists():
                shutil.rmtree(clips_dir, ignore_errors=True)
                started = time.perf_counter()
                make_clips(clips_dir, args.clips)
                print(f"made {args.clips} espeak-ng clips in {time.perf_counter() - started:.0f} s")
            rows = [{"id": p.name, "audio": str(p)} for p in sorted(clips_dir.glob("clip_*.mp3"))[: args.clips]]
        dataset = Dataset.from_list(rows).cast_column("audio", Audio(sampling_rate=16_000))
        durations = [audio_duration(a) for a in dataset["audio"]]
        dataset = dataset.add_column("duration", durations)  # as 01_load writes it
        if not (model_dir / "model.safetensors").exists():
            build_model(model_dir)
        model = Wav2Vec2ForCTC.from_pretrained(model_dir).eval()
        processor = Wav2Vec2Processor.from_pretrained(model_dir)
        n_params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{len(dataset)} clips, {sum(durations) / 60:.1f} min of audio "
              f"({min(durations):.1f}-{max(durations):.1f} s); model {n_params:.0f}M parameters; "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")

        warm = dataset.select(range(min(4, len(dataset))))
        seed_loop(warm, model, processor, args.batch_size)
        ours(warm, model, processor, args.batch_size)

        runs = [("seed (map, batch 8, dataset order)", seed_loop, args.batch_size),
                ("xlsr_helpers.evaluate", ours, args.batch_size)]
        if not args.skip_seed_bs1:
            runs.append(("seed, batch 1", seed_loop, 1))
        # The machine may be shared: every run is repeated (alternating) and its fastest wall time kept;
        # CPU seconds (all threads of this process) are shown too, as they depend less on other load.
        wall, cpu, texts = {}, {}, {}
        for _ in range(args.repeat):
            for name, fn, batch_size in runs:
                started, cpu_started = time.perf_counter(), cpu_seconds()
                texts[name] = fn(dataset, model, processor, batch_size)
                wall[name] = min(wall.get(name, float("inf")), time.perf_counter() - started)
                cpu[name] = min(cpu.get(name, float("inf")), cpu_seconds() - cpu_started)
        seed_name, our_name = runs[0][0], runs[1][0]

        n = len(dataset)
        print()
        print(f"| {'evaluation code':<36} | {'wall s':>7} | {'clips/s':>7} | {'vs seed':>7} | {'CPU s':>7} | {'vs seed':>7} |")
        print(f"|{'-' * 38}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
        for name in wall:
            print(f"| {name:<36} | {wall[name]:7.1f} | {n / wall[name]:7.2f} | {wall[seed_name] / wall[name]:6.2f}x "
                  f"| {cpu[name]:7.1f} | {cpu[seed_name] / cpu[name]:6.2f}x |")
        print()
        same_seed = sum(a == b for a, b in zip(texts[seed_name], texts[our_name]))
        print(f"identical to the seed's loop:            {same_seed}/{n}")
        if "seed, batch 1" in texts:
            same_bs1 = sum(a == b for a, b in zip(texts["seed, batch 1"], texts[our_name]))
            seed_self = sum(a == b for a, b in zip(texts["seed, batch 1"], texts[seed_name]))
            print(f"identical to the seed at batch size 1:   {same_bs1}/{n}")
            print(f"seed batch 8 vs seed batch 1 (the seed's own batch dependence): {seed_self}/{n} identical")
        padded = padded_seconds(durations, args.batch_size)
        print(f"audio the model sees incl. padding: seed {padded['dataset order']:.0f} s, "
              f"ours {padded['longest first']:.0f} s, real {sum(durations):.0f} s")
        print(f"speed-up (clips/s): {wall[seed_name] / wall[our_name]:.2f}x wall, "
              f"{cpu[seed_name] / cpu[our_name]:.2f}x CPU time")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
