"""The Colab rehearsal (tier `colab`): the six notebooks as Colab's "Run all" runs them, on a CPU, with a stand-in
``google.colab`` (tests/colab_stand_in) on the kernels' PYTHONPATH and imported at their start, as Colab's are.

The emulated machine lives in one temporary folder: ``content/`` stands in for Colab's /content (the product's
XLSR_COLAB_CONTENT), ``root/`` for the runtime's home (the synthetic corpus's cache, ~/.cache/xlsr-curriculum),
``google-account/`` for Google Drive (My Drive while unmounted, its accountant's ledger, the quota). Parameters: a
learner's few edits (tiny model, tiny corpus, a short training with frequent checkpoints), the rest the
notebooks' defaults, RUN_DIR "" included, so that the run folder goes to My Drive/xlsr-runs/tr.

One run, three sessions (a module fixture; the tests below read it):
1. 01, 02, 03, then 04, whose kernel is killed (SIGKILL, what a disconnect does to it) once a complete checkpoint
   of step KILL_AFTER_STEP or later is on Drive;
   a disconnect: Drive unmounted, /content and the home folder emptied (the clips with them);
2. 02 and 04 stop with the clips message; 01 again (the corpus is built anew, where its rows point), 04 resumes
   from Drive and finishes, 05, 06;
   a disconnect;
3. 05 stops with the clips message.

The install cell runs in every kernel, since google.colab is imported: its %pip and !apt-get lines are recorded
by the stand-in and not run (the kernel already has the package; tests/test_install_cell.py runs those pip
commands against a local package index); asserted here: each kernel issued exactly the commands the cell would.

Drive's quota: the stand-in's accountant (tests/colab_stand_in/google/colab/_accountant.py) measures live bytes +
bin (deleted files and replaced versions) over the whole run, with inotify; asserted under a quota scaled from the
free 15 GB as a tiny checkpoint is to an XLSR-53 checkpoint (written after 03, so that step 04's budget check reads
it through shutil.disk_usage, as free = quota - live - bin). The limits of that emulation are in its docstring and
drive.py's: writes over the quota are not refused (the peak is asserted afterwards), and whether Colab's own mount
reports the quota to disk_usage is assumed, not verified.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from xlsr_helpers import colab, versions
from xlsr_helpers.results import read_results

pytestmark = [pytest.mark.colab,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Drive stand-in's accountant "
                                 "watches the folder with Linux inotify")]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
STAND_IN = Path(__file__).resolve().parent / "colab_stand_in"
LANGUAGE = "tr"
MAX_STEPS, SAVE_STEPS, SAVE_TOTAL_LIMIT = 24, 4, 2  # 6 checkpoints, of which 2 (and the best) are kept
KILL_AFTER_STEP = 8  # 04's kernel dies once a complete checkpoint of at least this step is on Drive
# A learner's edits of the parameters cells (papermill injects them as the learner would type them); everything
# else is the notebooks' default, RUN_DIR "" included.
PARAMETERS = {
    "01_load": {"SYNTHETIC_SIZE": "tiny"},
    "03_vocab": {"MODEL": "tiny"},
    "04_train": {"MODEL": "tiny", "MAX_STEPS": MAX_STEPS, "SAVE_STEPS": SAVE_STEPS, "EVAL_STEPS": SAVE_STEPS,
                 "LOGGING_STEPS": SAVE_STEPS, "BATCH_SIZE": 4, "SAVE_TOTAL_LIMIT": SAVE_TOTAL_LIMIT},
}
# The quota, scaled: 15 GB is to an XLSR-53 checkpoint what the rehearsal's quota is to a tiny one.
FREE_DRIVE_BYTES = 15e9  # Google's free 15 GB, read as 10^9 bytes (the stricter reading)
# Wav2Vec2ForCTC built from facebook/wav2vec2-large-xlsr-53's config.json with a 35-token Turkish vocabulary, its
# CNN frozen (XLSR-53's recipe): benchmarks/gpu_families.py builds it, tests/test_gpu_benchmark.py checks its size.
XLSR53_PARAMETERS = {"total": 315_474_595, "trainable": 311_264_419}
RESUME_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth", "model.safetensors")
STARTUP = "import google.colab\ngoogle.colab.attach(get_ipython())  # as Colab's kernel has it: imported at start\n"


def checkpoint_bytes(parameters: dict) -> int:
    """A full fine-tuning checkpoint's bytes: fp32 weights and AdamW's two moments of the trained ones (3.75 GB for
    XLSR-53; with the rest of its files, the issue's 3.8 GB)."""
    return 4 * parameters["total"] + 8 * parameters["trainable"]


def tiny_parameters(run_dir: Path) -> dict:
    """The tiny model of a run as step 04 builds it (its vocabulary from 03_vocab): total and trained weights."""
    from transformers import AutoProcessor

    from xlsr_helpers.config import Config
    from xlsr_helpers.models import build_model, count_parameters

    cfg = Config.load(run_dir).updated(run_dir=str(run_dir), model="tiny")
    processor = AutoProcessor.from_pretrained(str(cfg.processor_dir))
    return count_parameters(build_model(cfg, processor, log=lambda *a: None))


def scaled_quota(tiny: dict) -> int:
    """The free 15 GB, scaled: as many tiny checkpoints as 15 GB holds XLSR-53 checkpoints (about 4)."""
    return int(FREE_DRIVE_BYTES * checkpoint_bytes(tiny) / checkpoint_bytes(XLSR53_PARAMETERS))


def stand_in_drive():
    """The stand-in's drive module, loaded under another name: in this process ``google.colab`` must stay out of
    sys.modules (xlsr_helpers.colab.in_colab would be True for every later test)."""
    name = "colab_stand_in_package"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, STAND_IN / "google" / "colab" / "__init__.py",
                                                      submodule_search_locations=[str(STAND_IN / "google" / "colab")])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"{name}.drive")


class Colab:
    """The emulated machine and its sessions: runs notebooks as "Run all", kills a kernel, disconnects."""

    def __init__(self, root: Path):
        self.root = root
        self.content, self.home, self.account = root / "content", root / "root", root / "google-account"
        self.executed = root / "executed"  # the executed notebooks (on Colab they stay in the browser's tab)
        for folder in (self.content, self.home, self.account, self.executed, root / "ipython"):
            folder.mkdir(parents=True, exist_ok=True)
        startup = root / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-google-colab.py").write_text(STARTUP)
        self.environment = {
            "PYTHONPATH": os.pathsep.join([str(STAND_IN), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "COLAB_RELEASE_TAG": "release-colab-stand-in", "COLAB_STAND_IN_ROOT": str(self.account),
            "XLSR_COLAB_CONTENT": str(self.content), "XLSR_CACHE": str(self.home / ".cache" / "xlsr-curriculum"),
            "IPYTHONDIR": str(root / "ipython"), "COLAB_STAND_IN_OWNER_PID": str(os.getpid()),
        }
        self.session = 1
        self.runs: list[dict] = []  # one per notebook run: session, step, outcome, seconds, kernel pid
        self.drive = stand_in_drive()

    @property
    def run_dir(self) -> Path:
        """The run folder as the notebooks see it (RUN_DIR ""): on the mounted Drive."""
        return self.content / "drive" / "MyDrive" / "xlsr-runs" / LANGUAGE

    @property
    def clips_root(self) -> Path:
        return self.home / ".cache" / "xlsr-curriculum"

    def run(self, step: str, kill_when=None) -> dict:
        """Run all of ``step``'s notebook in a new kernel; {"results"} or {"error": (ename, evalue)} or
        {"killed"}. ``kill_when()``: polled while it runs; when True, the kernel is killed with SIGKILL."""
        import papermill
        from papermill.exceptions import PapermillExecutionError
        from traitlets.config import Config as TraitletsConfig

        from xlsr_helpers.pipeline import KERNEL_CONFIG

        out = self.executed / f"session{self.session}-{step}.ipynb"
        entry = {"session": self.session, "step": step}
        outcome: dict = {}

        def execute():
            try:
                papermill.execute_notebook(str(NOTEBOOKS / f"{step}.ipynb"), str(out),
                                           parameters=PARAMETERS.get(step, {}), kernel_name="python3",
                                           cwd=str(self.content), progress_bar=False, execution_timeout=300,
                                           config=TraitletsConfig(KERNEL_CONFIG))
                outcome["results"] = read_results(out)
            except PapermillExecutionError as error:
                outcome["error"] = (error.ename, error.evalue)
            except Exception as error:  # noqa: BLE001 - a dead kernel: what the killer wanted, or not
                outcome["died"] = f"{type(error).__name__}: {error}"

        saved = {name: os.environ.get(name) for name in self.environment}
        os.environ.update(self.environment)
        started = time.perf_counter()
        try:
            worker = threading.Thread(target=execute)
            worker.start()
            while worker.is_alive():
                worker.join(0.1)
                if kill_when is not None and "killed" not in outcome and kill_when():
                    outcome["killed"] = kill_kernels()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        entry.update(outcome, seconds=round(time.perf_counter() - started, 1))
        self.runs.append(entry)
        return outcome

    def disconnect(self) -> None:
        """What a Colab disconnect leaves: Drive as it was (unmounted), an empty /content and home folder."""
        kill_kernels()
        with environment(COLAB_STAND_IN_ROOT=str(self.account)):
            self.drive.disconnect()
        for folder in (self.content, self.home):
            shutil.rmtree(folder)
            folder.mkdir()
        self.session += 1

    def stop(self) -> dict | None:
        with environment(COLAB_STAND_IN_ROOT=str(self.account)):
            return self.drive.stop_accountant()

    def commands(self) -> list[dict]:
        path = self.account / "commands.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class environment:
    """Environment variables set for a block."""

    def __init__(self, **values):
        self.values = values

    def __enter__(self):
        self.saved = {name: os.environ.get(name) for name in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def kill_kernels() -> list[int]:
    """SIGKILL every kernel this process started (papermill's): a disconnect gives no time to save anything."""
    import psutil

    killed = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any("ipykernel" in part for part in child.cmdline()):
                child.send_signal(signal.SIGKILL)
                killed.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return killed


def complete_checkpoints(train_dir: Path) -> list[int]:
    """Steps of the checkpoints in ``train_dir`` that hold every file a resume reads (judged here, independently
    of the product's own rule)."""
    steps = []
    for folder in train_dir.glob("checkpoint-*") if train_dir.is_dir() else []:
        if re.fullmatch(r"checkpoint-\d+", folder.name) and all((folder / name).is_file() for name in RESUME_FILES):
            steps.append(int(folder.name.split("-")[1]))
    return sorted(steps)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """The three sessions (see the module's docstring); returns the machine, the outcomes and the final ledger."""
    real_content = sorted(os.listdir("/content")) if os.path.isdir("/content") else None
    machine = Colab(tmp_path_factory.mktemp("colab"))
    outcomes: dict[str, dict] = {}
    started = time.perf_counter()
    try:
        for step in ("01_load", "02_normalize", "03_vocab"):
            outcomes[f"1:{step}"] = machine.run(step)
            assert "results" in outcomes[f"1:{step}"], outcomes[f"1:{step}"]
        # Drive's quota from here on (step 04's budget check reads it through shutil.disk_usage)
        outcomes["tiny"] = tiny_parameters(machine.run_dir)
        (machine.account / "quota").write_text(str(scaled_quota(outcomes["tiny"])))
        train_dir = machine.run_dir / "04_train"
        outcomes["1:04_train"] = machine.run(
            "04_train", kill_when=lambda: any(s >= KILL_AFTER_STEP for s in complete_checkpoints(train_dir)))
        outcomes["resumable"] = complete_checkpoints(train_dir)  # what Drive holds at the kill
        machine.disconnect()

        for step in ("02_normalize", "04_train", "01_load", "04_train", "05_evaluate", "06_model_card"):
            key = f"2:{step}" + ("" if f"2:{step}" not in outcomes else ":again")
            outcomes[key] = machine.run(step)
        machine.disconnect()
        outcomes["3:05_evaluate"] = machine.run("05_evaluate")
        machine.disconnect()
    finally:
        kill_kernels()
        ledger = machine.stop()
    seconds = time.perf_counter() - started
    print(f"\nColab rehearsal: {seconds:.0f} s; runs: "
          + "; ".join(f"{r['session']}:{r['step']} {r['seconds']} s" for r in machine.runs))
    return {"machine": machine, "outcomes": outcomes, "ledger": ledger, "seconds": seconds,
            "real_content": real_content}


# --------------------------------------------------------------------------------------------------
# the instrument: the stand-in Drive's accounting, on known writes
# --------------------------------------------------------------------------------------------------
def test_the_stand_in_drive_counts_live_and_bin_bytes(tmp_path, monkeypatch):
    """What Drive would count, on writes whose bytes are known: a plain write, an atomic write and its
    replacement, a file written again, a checkpoint folder deleted, a folder renamed, a file moved out of Drive,
    an unmount and mount (a disconnect); and the quota as shutil.disk_usage reports it under the mount point."""
    monkeypatch.setattr(os, "statvfs", os.statvfs)  # mount() wraps it: put back after the test
    drive, account, mountpoint = stand_in_drive(), tmp_path / "account", tmp_path / "content" / "drive"
    account.mkdir()
    pause = lambda: time.sleep(0.3)  # noqa: E731 - the accountant reads sizes when it handles an event

    def write(path: Path, size: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)

    def atomic(path: Path, size: int) -> None:
        write(path.with_name(f".{path.name}.tmp"), size)
        os.replace(path.with_name(f".{path.name}.tmp"), path)

    with environment(COLAB_STAND_IN_ROOT=str(account)):
        try:
            drive.mount(str(mountpoint))
            my_drive = mountpoint / "MyDrive"
            write(my_drive / "a.bin", 1000)
            atomic(my_drive / "run" / "b.json", 500)
            pause()
            atomic(my_drive / "run" / "b.json", 700)  # replaces a 500-byte version: to the bin
            write(my_drive / "a.bin", 300)  # written again: the 1000-byte version to the bin
            write(my_drive / "train" / "checkpoint-1" / "optimizer.pt", 100)
            write(my_drive / "train" / "checkpoint-1" / "model.safetensors", 200)
            write(my_drive / "data.tmp" / "part-0.arrow", 50)
            write(my_drive / "x.bin", 80)
            pause()
            shutil.rmtree(my_drive / "train" / "checkpoint-1")  # a rotation: 300 bytes to the bin
            os.rename(my_drive / "data.tmp", my_drive / "data")  # a move within Drive: nothing to the bin
            os.rename(my_drive / "x.bin", tmp_path / "x.bin")  # moved out of Drive: 80 bytes to the bin
            pause()
            drive.disconnect()
            assert not my_drive.exists() and (account / "MyDrive" / "a.bin").is_file()
            drive.mount(str(mountpoint))
            write(my_drive / "after.bin", 20)  # the same accountant counts after a remount
            pause()
            (account / "quota").write_text("1000000")
            usage = shutil.disk_usage(my_drive)
            assert (usage.total, usage.free) == (1000000 // 4096 * 4096, (1000000 - 2950) // 4096 * 4096)
        finally:
            ledger = drive.stop_accountant()
    assert (ledger["live"], ledger["bin"]) == (300 + 700 + 50 + 20, 500 + 1000 + 300 + 80)
    assert ledger["peak"]["bytes"] == ledger["live"] + ledger["bin"]
    assert (ledger["deleted_files"], ledger["replaced_versions"], ledger["moved_out"]) == (2, 2, 1)
    assert ledger["checkpoints_seen"] == ["train/checkpoint-1"]
    assert ledger["audit"] == {"live": ledger["live"], "files": 4, "differ": {}} and not ledger["overflow"]
    assert ledger["bin_by_area"] == {"train/checkpoint-*": 300, "run/b.json": 500, "a.bin": 1000, "x.bin": 80}


# --------------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------------
def test_run_all_on_colab_puts_the_run_folder_on_drive(rehearsal):
    """RUN_DIR "" on Colab: My Drive/xlsr-runs/tr; every notebook ran to its end in the sessions where it should."""
    machine, outcomes = rehearsal["machine"], rehearsal["outcomes"]
    for key in ("1:01_load", "1:02_normalize", "1:03_vocab", "2:01_load", "2:04_train:again", "2:05_evaluate",
                "2:06_model_card"):
        assert "results" in outcomes[key], (key, outcomes[key])
    my_drive = machine.account / "MyDrive"  # unmounted after the last session
    run = my_drive / "xlsr-runs" / LANGUAGE
    assert (run / "run.json").is_file() and (run / "04_train" / "model").is_dir()
    card = Path(outcomes["2:06_model_card"]["results"]["card_path"])  # the upload is assembled on the local disk,
    assert "xlsr-local" in card.parts and card.name == "README.md"     # where the whole model fits (not on Drive)
    assert outcomes["2:06_model_card"]["results"]["verified"] is True
    assert not (machine.content / "drive").exists(), "a disconnect leaves no mount"
    if rehearsal["real_content"] is None:
        assert not os.path.exists("/content"), "a product path ignored XLSR_COLAB_CONTENT and wrote to /content"
    else:
        assert sorted(os.listdir("/content")) == rehearsal["real_content"], "something wrote to the real /content"


def test_a_kill_during_04_resumes_from_the_last_complete_checkpoint_on_drive(rehearsal):
    """The kernel died mid-training; after the disconnect (and 01_load again for the clips), 04 resumes from the
    newest complete checkpoint on Drive and its global step goes on from there to MAX_STEPS."""
    machine, outcomes = rehearsal["machine"], rehearsal["outcomes"]
    assert outcomes["1:04_train"].get("killed"), f"training ended before the kill: {outcomes['1:04_train']}"
    resumable = outcomes["resumable"]
    assert resumable and resumable[-1] >= KILL_AFTER_STEP, resumable
    resumed = outcomes["2:04_train:again"]["results"]
    # the newest complete checkpoint mirrored to Drive, copied back to the local disk (train/drive.py) and resumed
    assert Path(resumed["resumed_from"]).name == f"checkpoint-{resumable[-1]}", resumed["resumed_from"]
    assert resumed["start_step"] == resumable[-1] and resumed["global_step"] == MAX_STEPS
    steps = [e["step"] for e in resumed["evaluations"]]
    assert steps == sorted(set(steps)) and steps[-1] == MAX_STEPS
    assert min(steps) <= resumable[-1], "the evaluations before the kill are kept (read from the checkpoint)"
    assert len(steps) == MAX_STEPS // SAVE_STEPS


@pytest.mark.parametrize("key, step", [("2:02_normalize", "02_normalize"), ("2:04_train", "04_train"),
                                       ("3:05_evaluate", "this step")])
def test_clips_gone_from_content_give_the_folder_and_the_remedy(rehearsal, key, step):
    """After a disconnect /content (here: the corpus in the home folder) is empty, while the rows on Drive point
    there: the step stops before its work, naming the folder and what to do."""
    ename, evalue = rehearsal["outcomes"][key]["error"]
    assert ename == "ClipsMissingError"
    assert re.search(rf"missing from {re.escape(str(rehearsal['machine'].clips_root))}/\S+/clips", evalue), evalue
    assert f"run 01_load again with the same DATA_SOURCE" in evalue and f"then {step} again" in evalue
    assert "EMBED_AUDIO=True" in evalue


# --------------------------------------------------------------------------------------------------
# the install cell
# --------------------------------------------------------------------------------------------------
def expected_install_commands() -> list[tuple[str, str]]:
    """What the install cell issues on Colab, expanded as IPython expands it: its %pip lines, and apt-get where
    espeak-ng or ffmpeg is missing."""
    values = {"arguments": colab.dependency_arguments(), "TORCHCODEC_INDEX": versions.TORCHCODEC_INDEX,
              "requirement": versions.torchcodec_requirement(newer="warn"),
              "missing": colab.missing_system_packages()}
    commands = [("%pip", line.removeprefix("%pip ").format(**values))
                for line in colab.install_lines() if line.startswith("%pip")]
    if values["missing"]:
        commands += [("!", line.removeprefix("!").format(**values))
                     for line in colab.install_lines() if line.startswith("!")]
    return commands


def test_the_install_cell_runs_on_colab_and_issues_exactly_its_commands(rehearsal):
    """Every kernel ran the install cell's Colab branch (google.colab imported at start); the stand-in recorded its
    pip and apt-get commands instead of running them: the same set, in order, in every kernel."""
    by_kernel: dict[int, list] = {}
    for entry in rehearsal["machine"].commands():
        by_kernel.setdefault(entry["pid"], []).append((entry["kind"], entry["command"]))
    runs = rehearsal["machine"].runs
    assert len(by_kernel) == len(runs), f"{len(by_kernel)} kernels issued commands, {len(runs)} notebooks ran"
    expected = expected_install_commands()
    assert expected[0] == ("%pip", f'install -q --no-deps "{colab.INSTALL_REQUIREMENT}"')
    for commands in by_kernel.values():
        assert commands == expected


def test_the_install_cell_does_nothing_off_colab(monkeypatch):
    """Without google.colab the install cell issues no command (the other tiers run the notebooks so)."""
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)  # off Colab, whatever another test left
    issued = []

    class Shell:
        def run_line_magic(self, name, line, _stack_depth=1):
            issued.append((name, line))

        def system(self, command):
            issued.append(("!", command))

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        cell = nbformat.read(str(path), as_version=4).cells[1].source
        exec(TransformerManager().transform_cell(cell), {"get_ipython": Shell})  # noqa: S102 - the repository's cell
    assert issued == []


# --------------------------------------------------------------------------------------------------
# Google Drive: live + bin against the quota
# --------------------------------------------------------------------------------------------------
def drive_figures(rehearsal) -> dict:
    ledger, tiny = rehearsal["ledger"], rehearsal["outcomes"]["tiny"]
    quota = scaled_quota(tiny)
    return {"quota": quota, "tiny_checkpoint": checkpoint_bytes(tiny), "peak": ledger["peak"],
            "final": {"live": ledger["live"], "bin": ledger["bin"]},
            "checkpoints_seen": len(ledger["checkpoints_seen"]),
            "bin_by_area": ledger["bin_by_area"], "live_by_area": ledger["live_by_area"]}


def test_the_drive_accounting_is_complete(rehearsal):
    """The accountant missed nothing: its live bytes equal a final walk of My Drive, no event queue overflow; and
    the run rotated checkpoints several times (each rotation a deletion on Drive or wherever they rotate)."""
    ledger = rehearsal["ledger"]
    assert ledger["final"] and not ledger["overflow"]
    assert ledger["audit"] == {"live": ledger["live"], "files": ledger["files_live"], "differ": {}}
    assert MAX_STEPS // SAVE_STEPS >= SAVE_TOTAL_LIMIT + 3, "several rotations: more saves than kept checkpoints"
    figures = drive_figures(rehearsal)
    print("\nDrive (bytes):", json.dumps(figures, indent=1))


def test_step_04_budget_check_reads_the_drive_quota(rehearsal):
    """The quota was computed from the model that 04 built, and 04's budget check read it as the free space of the
    run folder (quota - live - bin), not the host's disk."""
    outcomes = rehearsal["outcomes"]
    trained = outcomes["2:04_train:again"]["results"]
    assert (trained["parameters"], trained["trainable_parameters"]) == (outcomes["tiny"]["total"],
                                                                        outcomes["tiny"]["trainable"])
    report = json.loads((rehearsal["machine"].account / "MyDrive" / "xlsr-runs" / LANGUAGE / "04_train" /
                         "report.json").read_text())
    assert report["drive"]["on_drive"] is True, report["drive"]
    assert 0 <= report["drive"]["free_gb"] * 1e9 <= scaled_quota(outcomes["tiny"]), report["drive"]


def test_drive_usage_live_plus_bin_stays_under_the_scaled_quota(rehearsal):
    """Peak of live + bin over the whole run (three sessions, a kill, 01 run twice, 6 checkpoints) under the free
    15 GB scaled to the tiny model: 15 GB x tiny checkpoint / XLSR-53 checkpoint."""
    figures = drive_figures(rehearsal)
    assert figures["peak"]["bytes"] <= figures["quota"], figures
