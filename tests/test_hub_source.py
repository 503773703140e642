"""Hub sources without holding the audio (issue 25, part 4): a downloaded ``hub:`` source's rows refer to their clips
in datasets' cache (:mod:`xlsr_helpers.arrow_clips`), steps 01/02 save those references (the run folder does not
grow with the audio), and training and evaluation decode them.

The Hub is out of reach here: a local parquet mirror laid out as the Hub's are (``data/<split>-0000k-of-0000n.parquet``)
is built in the test from the synthetic corpus' clips, and read through ``hub:<folder>``, the code path of a Hub id.
datasets' cache is a folder of the test (``datasets.config.HF_DATASETS_CACHE``), so that it can be cleared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xlsr_helpers import arrow_clips
from xlsr_helpers.audio import decode_audio
from xlsr_helpers.config import Config
from xlsr_helpers.families import resolve

ROOT = Path(__file__).resolve().parents[1]


def corpus_rows() -> dict[str, list[tuple[bytes, str, str, str]]]:
    """The synthetic ``tiny`` corpus (built once, cached) as hub splits: (clip bytes, file name, sentence, speaker)."""
    from xlsr_helpers.sources import read_cv_tsv
    from xlsr_helpers.synthetic import make_corpus

    folder = make_corpus("tr", "tiny", seed=0)
    out = {}
    for ours, theirs in (("train", "train"), ("dev", "validation"), ("test", "test")):
        rows = read_cv_tsv(folder / f"{ours}.tsv")[0]
        out[theirs] = [((folder / "clips" / r["path"]).read_bytes(), r["path"], r["sentence"], r["client_id"])
                       for r in rows]
    return out


def write_mirror(folder: Path, splits: dict[str, list[tuple[bytes, str, str, str]]], shards: int = 2,
                 durations: dict[str, float] | None = None) -> Path:
    """A parquet mirror as the Hub lays one out: ``data/<split>-0000k-of-0000n.parquet``, audio as bytes."""
    from datasets import Audio, Dataset

    (folder / "data").mkdir(parents=True)
    for split, rows in splits.items():
        columns = {"audio": [{"bytes": data, "path": name} for data, name, _, _ in rows],
                   "sentence": [r[2] for r in rows], "client_id": [r[3] for r in rows]}
        if durations is not None:
            columns["duration"] = [durations[name] for _, name, _, _ in rows]
        ds = Dataset.from_dict(columns).cast_column("audio", Audio())
        n = shards if split == "train" else 1
        for k in range(n):
            ds.shard(n, k, contiguous=True).to_parquet(str(folder / "data" / f"{split}-{k:05d}-of-{n:05d}.parquet"))
    return folder


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    """datasets' cache in a folder of this module (so that a test may clear it)."""
    import datasets.config

    folder = tmp_path_factory.mktemp("hf-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", folder)
        yield folder


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    """16 train clips in two shards, 4 validation and 4 test clips (few: the run below trains and evaluates)."""
    rows = {split: items[:16 if split == "train" else 4] for split, items in corpus_rows().items()}
    return write_mirror(tmp_path_factory.mktemp("mirror") / "cv-tr", rows)


@pytest.fixture(scope="module")
def hub_run(tmp_path_factory, hf_cache, mirror):
    """Steps 01-05 on the mirror with the tiny model (one training step, then the final evaluation on the dev split):
    the run folder and each step's result."""
    from xlsr_helpers.evaluate import run_evaluation
    from xlsr_helpers.load import run_load
    from xlsr_helpers.normalize import run_normalize
    from xlsr_helpers.train.step import Training
    from xlsr_helpers.vocab import run_vocab

    run = tmp_path_factory.mktemp("hub-run") / "run"
    cfg = resolve(Config(language="tr", run_dir=str(run), data_source=f"hub:{mirror}", model="tiny", max_steps=1,
                         eval_steps=1000, save_steps=1000, logging_steps=1, batch_size=4, gradient_accumulation_steps=1,
                         sanity_check=False))
    cfg.save("01_load")
    loaded = run_load(cfg)
    normalized = run_normalize(cfg)
    run_vocab(cfg)
    sizes = {step: folder_bytes(run / step) for step in ("01_load", "02_normalize")}
    trained = Training(cfg, log=lambda *a, **k: None).run()
    evaluated = run_evaluation(cfg, progress=False)
    return {"cfg": cfg, "run": run, "load": loaded, "normalize": normalized, "train": trained,
            "evaluate": evaluated, "sizes": sizes}


# --------------------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------------------
def test_a_reference_reads_the_clips_bytes_from_every_shard_and_batch(tmp_path, hf_cache):
    """Row by row, across two cache files of several record batches: the bytes datasets itself gives."""
    from datasets import Audio, load_dataset

    clips = [bytes([i]) * (1000 + 37 * i) for i in range(250)]  # not audio: only the bytes are compared
    write_mirror(tmp_path / "m", {"train": [(c, f"c{i}.mp3", "s", "x") for i, c in enumerate(clips)]}, shards=1)
    loaded = load_dataset("parquet", data_files=str(tmp_path / "m" / "data" / "*.parquet"), split="train")
    loaded = loaded.cast_column("audio", Audio(decode=False))
    (file,) = [f["filename"] for f in loaded.cache_files]
    assert arrow_clips.cache_file(file).table.column("audio").num_chunks > 1, "several record batches"
    for i in (0, 1, 99, 100, 101, 249):
        reference = arrow_clips.arrow_reference(file, "audio", i)
        assert arrow_clips.parse_reference(reference) == (file, "audio", i)
        assert arrow_clips.read_clip(reference) == loaded[i]["audio"]["bytes"] == clips[i]
    assert arrow_clips.clip_source("/a/clip.mp3") == "/a/clip.mp3" and not arrow_clips.is_arrow_reference(None)
    with pytest.raises(ValueError, match="not a clip reference"):
        arrow_clips.parse_reference("arrow:/x.arrow#audio")
    with pytest.raises(IndexError):
        arrow_clips.read_clip(arrow_clips.arrow_reference(file, "audio", 250))
    with pytest.raises(FileNotFoundError, match="run 01_load again"):
        arrow_clips.read_clip(arrow_clips.arrow_reference(str(tmp_path / "gone.arrow"), "audio", 0))


def test_a_cache_file_replaced_at_the_same_path_is_read_anew(tmp_path):
    """A cleared cache that load_dataset rebuilds has the same file names: what a reference reads is the new file."""
    import pyarrow as pa

    def write(path: Path, clips: list[bytes]) -> None:
        audio = pa.array([{"bytes": c, "path": f"c{i}.mp3"} for i, c in enumerate(clips)],
                         pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
        table = pa.table({"audio": audio})
        with pa.ipc.new_stream(str(path), table.schema) as writer:  # datasets' cache: the Arrow stream format
            writer.write_table(table, max_chunksize=2)

    file = tmp_path / "cache.arrow"
    write(file, [b"first", b"second", b"third"])
    reference = arrow_clips.arrow_reference(str(file), "audio", 2)
    assert arrow_clips.read_clip(reference) == b"third"
    replacement = tmp_path / "rebuilt.arrow"
    write(replacement, [b"1", b"22", b"a longer third clip"])
    os.replace(replacement, file)
    assert arrow_clips.read_clip(reference) == b"a longer third clip"
    assert arrow_clips.arrow_rows(str(file)) == 3


def test_steps_01_and_02_save_references_and_the_run_folder_does_not_grow_with_the_audio(hub_run, mirror):
    from datasets import Value, load_from_disk

    run = hub_run["run"]
    report = hub_run["load"].report
    assert report["audio_stored_as"] == "references to datasets' cache (no copy)"
    (source,) = report["sources"]
    assert source["splits"]["train"]["audio"] == f"{source['splits']['train']['rows']} clips referenced in " \
                                                 "datasets' cache (nothing copied)"
    assert len(source["splits"]["train"]["cache_files"]) >= 1
    for step in ("01_load", "02_normalize"):
        saved = load_from_disk(str(run / step / "dataset"))
        for split in ("train", "eval", "test"):
            assert saved[split].features["audio"] == Value("string")
            assert all(arrow_clips.is_arrow_reference(a) for a in saved[split]["audio"]), (step, split)
            assert not any(a.endswith(".mp3") for a in saved[split]["audio"])
    # the kept clips' durations come from their headers (the mirror has no duration column)
    assert all(0.5 < d < 10 for d in load_from_disk(str(run / "01_load" / "dataset"))["train"]["duration"])
    source_bytes = folder_bytes(mirror)
    for step, size in hub_run["sizes"].items():
        assert size < source_bytes / 10, f"{step} holds {size} bytes against the mirror's {source_bytes}"


def test_a_referenced_clip_decodes_as_the_clip_itself(hub_run, mirror):
    from datasets import load_from_disk

    from xlsr_helpers.widgets import samples

    saved = load_from_disk(str(hub_run["run"] / "02_normalize" / "dataset"))["test"]
    name, reference = saved["id"][0], saved["audio"][0]
    original = next(data for data, file, _, _ in corpus_rows()["test"] if file == name)
    decoded = decode_audio(reference)
    assert decoded.shape == decode_audio(original).shape and abs(decoded - decode_audio(original)).max() == 0
    assert hub_run["normalize"].dataset["test"][0]["audio"] == reference, "step 02's result keeps the reference"
    array, rate = samples(reference)  # what the notebooks' clip browser plays
    assert rate == 16000 and array.shape == decoded.shape


def test_step_04s_rows_hold_the_references_and_the_collator_decodes_them(hub_run):
    from datasets import load_from_disk
    from transformers import AutoProcessor

    from xlsr_helpers.train.data import DataCollatorCTCWithPadding, training_rows

    normalized = load_from_disk(str(hub_run["run"] / "02_normalize" / "dataset"))["train"]
    processor = AutoProcessor.from_pretrained(str(hub_run["cfg"].processor_dir))
    rows = training_rows(normalized, processor.tokenizer)
    assert rows["audio"] == normalized["audio"] and all(arrow_clips.is_arrow_reference(a) for a in rows["audio"])
    assert rows["input_length"] == [round(d * 16000) for d in normalized["duration"]]
    batch = DataCollatorCTCWithPadding(processor)([rows[i] for i in range(3)])
    assert "skipped_clips" not in batch
    # the clips as decoded, against the length step 01 read from each clip's header (which counts the mp3 encoder's
    # padding too: ~50 ms)
    lengths = rows["input_length"][:3]
    assert all(abs(int(n) - length) < 1600 for n, length in zip(batch["clip_samples"], lengths)), lengths


def test_training_and_evaluation_decode_the_references(hub_run):
    trained, evaluated = hub_run["train"], hub_run["evaluate"]
    assert trained["undecodable_clips_skipped"] == {"train": 0, "eval": 0}
    assert trained["global_step"] == 1 and 0 <= trained["eval"]["wer"]
    test = hub_run["normalize"].dataset["test"]
    assert evaluated.metrics["n"] == len(evaluated.rows) == len(test) > 0 and evaluated.metrics["audio_hours"] > 0
    assert evaluated.metrics["too_short_clips"] == 0


def test_step_02_says_when_datasets_cache_was_cleared(tmp_path, hf_cache, mirror):
    from xlsr_helpers.load import run_load
    from xlsr_helpers.normalize import run_normalize

    import datasets.config

    cache = tmp_path / "own-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        cfg = Config(language="tr", run_dir=str(tmp_path / "run"), data_source=f"hub:{mirror}")
        run_load(cfg)
        shutil.rmtree(cache)
        with pytest.raises(FileNotFoundError, match="datasets' cache file .* is gone"):
            run_normalize(cfg)


def test_embed_audio_copies_the_referenced_clips_into_the_run_folder(tmp_path, hf_cache, mirror):
    from datasets import Audio, load_from_disk

    from xlsr_helpers.load import run_load

    report = run_load(Config(language="tr", run_dir=str(tmp_path / "run"), data_source=f"hub:{mirror}",
                             embed_audio=True, max_samples_per_split=3)).report
    assert report["audio_stored_as"] == "bytes (EMBED_AUDIO=True)"
    saved = load_from_disk(str(tmp_path / "run" / "01_load" / "dataset"))["test"]
    assert saved[0]["audio"].get_all_samples().data.shape[-1] > 16000
    assert saved.cast_column("audio", Audio(decode=False))[0]["audio"]["path"] == saved[0]["id"]


def test_a_duration_column_is_used_and_no_header_is_read(tmp_path, hf_cache, monkeypatch):
    from xlsr_helpers import audio_checks
    from xlsr_helpers.load import load_source

    rows = {split: items[:4] for split, items in corpus_rows().items()}
    durations = {name: 2.5 for items in rows.values() for _, name, _, _ in items}
    folder = write_mirror(tmp_path / "m", rows, durations=durations)

    def no_header(*args, **kwargs):
        raise AssertionError("the duration column says it: no header is read")

    monkeypatch.setattr(audio_checks, "header_seconds", no_header)
    dataset, report = load_source(Config(language="tr", run_dir=str(tmp_path / "run"), data_source=f"hub:{folder}",
                                         decode_check_clips=0))
    assert report["sources"][0]["splits"]["train"]["duration_column"] == "duration"
    assert set(dataset["train"]["duration"]) == {2.5} and report["kept"]["train"] == 4


# --------------------------------------------------------------------------------------------------
# memory: step 01-02 at two sizes, in fresh processes (benchmarks/scale.py --source hub measures 10,000 and 100,000)
# --------------------------------------------------------------------------------------------------
CHILD = textwrap.dedent("""
    import json, sys
    import datasets.config
    import torchcodec.decoders
    datasets.config.HF_DATASETS_CACHE = sys.argv[3]
    from xlsr_helpers.config import Config
    from xlsr_helpers.load import run_load
    from xlsr_helpers.normalize import run_normalize
    cfg = Config(language="tr", run_dir=sys.argv[2], data_source="hub:" + sys.argv[1])
    with open("/proc/self/clear_refs", "w") as handle:  # the peak of the steps, not the imports' (higher)
        handle.write("5")
    run_load(cfg)
    run_normalize(cfg)
    peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"peak": peak}))
""")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
def test_peak_memory_of_steps_01_02_does_not_grow_with_the_audio(tmp_path):
    """Ten times the rows: the peak resident memory of steps 01-02 (VmHWM after the imports, which counts mapped
    cache pages too) grows by far less than the audio added. The code before, which held every clip's bytes, grew by
    4.8 times the audio added (500 -> 5,000 rows: +506 MB for +106 MB of audio; this test failed there); this code
    by 0.14 times (+14 MB: the rows' text and references)."""
    from datasets import load_dataset

    import datasets.config

    clips = [r for rows in corpus_rows().values() for r in rows]
    peaks, audio = {}, {}
    for n in (500, 5000):
        rows = [(clips[i % len(clips)][0], f"clip_{i}.mp3", f"cümle {i}", f"spk{i % 50}") for i in range(n)]
        cut, cut2 = n * 8 // 10, n * 9 // 10
        splits = {"train": rows[:cut], "validation": rows[cut:cut2], "test": rows[cut2:]}
        folder = write_mirror(tmp_path / f"m{n}", splits)
        cache = tmp_path / "cache"
        with pytest.MonkeyPatch.context() as patch:  # the parquet -> Arrow conversion, once, outside the measure
            patch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
            load_dataset(str(folder))
        out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(tmp_path / f"run{n}"), str(cache)],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True,
                             cwd=tmp_path)
        peaks[n] = json.loads(out.stdout.strip().splitlines()[-1])["peak"]
        audio[n] = sum(len(r[0]) for r in rows)
    assert peaks[5000] - peaks[500] < 0.25 * (audio[5000] - audio[500]), (peaks, audio)
