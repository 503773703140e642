"""Google Drive in step 04 (xlsr_helpers.train.drive): the ledger of what a run writes there (bin included), the
check that refuses a plan which does not fit with advice that is true, and the mirror on a stand-in Drive folder:
checkpoints rotate on the "local disk", every N-th is mirrored, a disconnect resumes from Drive, and usage (live +
bin) stays under the quota.
"""

import json
import shutil
from pathlib import Path

import pytest

from xlsr_helpers import colab
from xlsr_helpers.config import Config
from xlsr_helpers.families import resolve
from xlsr_helpers.train import callbacks, checkpoints, drive, step

from test_train import QUICK, copy_run, make_run

MB = 1_000_000
SIZES = {"weights": 1_000 * MB, "optimizer": 2_000 * MB, "checkpoint": 3_000 * MB, "model": 1_000 * MB,
         "upload": 1_000 * MB}


# --------------------------------------------------------------------------------------------------
# the ledger
# --------------------------------------------------------------------------------------------------
def test_saves_and_mirrors_of_a_run():
    length = drive.RunLength(updates=1000, save_steps=200)
    assert length.saves() == [200, 400, 600, 800, 1000], "every SAVE_STEPS, the last update included"
    assert drive.RunLength(1050, 200).saves()[-2:] == [1000, 1050], "the Trainer also saves at the last update"
    assert length.mirrored(1) == [200, 400, 600, 800], "never the last update's: the final model follows it"
    assert length.mirrored(2) == [400, 800] and length.mirrored(5) == [] and length.mirrored(-1) == []
    assert drive.RunLength(1000, 200, start_step=400).mirrored(1) == [600, 800], "a resumed run: what is left"


def test_ledgers_before_and_after():
    length = drive.RunLength(updates=1000, save_steps=200)
    after = drive.mirror_ledger(SIZES, length, every=1)
    assert (after.checkpoints, after.written, after.deleted, after.live_end) == (4, 13_000 * MB, 12_000 * MB,
                                                                                 1_000 * MB)
    assert after.peak == after.written, "the bin keeps every deleted byte for 30 days"
    assert after.interval == 200 and after.as_dict()["peak_gb"] == 13.0
    before = drive.direct_ledger(SIZES, length, save_total_limit=2)
    assert (before.checkpoints, before.written, before.deleted, before.live_end) == (
        5, 17_000 * MB, 9_000 * MB, 8_000 * MB), "5 checkpoints, 2 kept, model and upload on Drive"
    assert drive.mirror_ledger(SIZES, length, every=-1).written == 1_000 * MB


def test_auto_mirrors_as_often_as_the_whole_run_fits():
    length = drive.RunLength(updates=2000, save_steps=200)  # 9 checkpoints before the last update
    for free_gb, every, count in ((40, 1, 9), (20, 2, 4), (12, 3, 3), (8, 4, 2), (5, 5, 1)):
        ledger = drive.plan_mirrors(SIZES, length, free_gb * 1000 * MB)
        assert (ledger.every, ledger.checkpoints) == (every, count), free_gb
        assert ledger.written + drive.report_margin(SIZES) <= free_gb * 1000 * MB
        if every > 1:  # the next more frequent plan would not fit
            every_less = drive.mirror_ledger(SIZES, length, every - 1).written
            assert every_less + drive.report_margin(SIZES) > free_gb * 1000 * MB
    none = drive.plan_mirrors(SIZES, length, 3_500 * MB)
    assert (none.every, none.checkpoints, none.written) == (0, 0, 1_000 * MB)


def test_planned_updates_are_the_trainers():
    assert drive.planned_updates(rows=40_320, batch_size=16, accumulation=2, epochs=30) == 37_800
    assert drive.planned_updates(rows=100, batch_size=8, accumulation=3, epochs=1.5) == 8  # ceil(13/3)=5, x1.5
    assert drive.planned_updates(rows=100, batch_size=8, accumulation=1, epochs=1, world_size=2) == 7
    assert drive.planned_updates(rows=100, batch_size=8, accumulation=1, epochs=30, max_steps=12) == 12
    assert drive.planned_updates(rows=100, batch_size=8, accumulation=1, epochs=2, batches=9) == 18


# --------------------------------------------------------------------------------------------------
# the check: refused with advice that is true
# --------------------------------------------------------------------------------------------------
def test_a_plan_that_does_not_fit_is_refused_with_the_setting_that_fits():
    length = drive.RunLength(updates=2000, save_steps=200)
    free = 12_000 * MB
    with pytest.raises(drive.DriveBudgetError) as refused:
        drive.check_drive(SIZES, length, free, setting=1)
    message = str(refused.value)
    assert "12.00 GB free" in message and "9 checkpoint(s) of 3.00 GB" in message and "bin" in message
    assert "Set DRIVE_MIRROR_EVERY=3" in message and "SAVE_TOTAL_LIMIT does not change this" in message
    ledger, note = drive.check_drive(SIZES, length, free, setting=3)  # the advice holds
    assert ledger.checkpoints == 3 and "1 checkpoint in 3 (one every 600 updates)" in note
    assert drive.check_drive(SIZES, length, free)[0].every == 3, "auto takes the same"


def test_a_model_that_alone_does_not_fit_is_refused_and_no_mirror_is_a_warning():
    length = drive.RunLength(updates=2000, save_steps=200)
    with pytest.raises(drive.DriveBudgetError, match=r"final model alone.*Free at least 0\.67 GB.*RUN_DIR"):
        drive.check_drive(SIZES, length, 500 * MB)
    ledger, note = drive.check_drive(SIZES, length, 3_500 * MB)
    assert ledger.checkpoints == 0 and "restarts training from its first update" in note and "free 0.67 GB" in note
    with pytest.raises(drive.DriveBudgetError, match="DRIVE_MIRROR_EVERY=-1"):
        drive.check_drive(SIZES, length, 3_500 * MB, setting=1)


# --------------------------------------------------------------------------------------------------
# the mirror on a stand-in Drive: a folder whose deletions go to a bin that counts
# --------------------------------------------------------------------------------------------------
class FakeDrive:
    """``root/drive`` mounted as Drive, ``root/local`` the machine's disk; deleted files are counted in ``bin``
    (Drive keeps them 30 days against the quota); free space is the quota less live + bin."""

    def __init__(self, root: Path, monkeypatch, quota: int = 10**12):
        self.mount, self.local, self.quota, self.bin, self.peak = root / "drive", root / "local", quota, 0, 0
        (self.mount / "MyDrive").mkdir(parents=True)
        monkeypatch.setattr(colab, "DRIVE_MOUNT", self.mount)
        monkeypatch.setattr(colab, "LOCAL_ROOT", self.local)
        monkeypatch.setattr(colab, "drive_free_bytes", lambda path: self.quota - self.used())
        monkeypatch.setattr(colab, "delete_on_drive", self.delete)

    def live(self) -> int:
        return checkpoints.folder_bytes(self.mount)

    def used(self) -> int:
        self.peak = max(self.peak, self.live() + self.bin)
        return self.live() + self.bin

    def delete(self, path: Path) -> None:
        path = Path(path)
        if not path.exists():
            return
        self.bin += checkpoints.folder_bytes(path) if path.is_dir() else path.stat().st_size
        self.used()
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _checkpoint(folder: Path, step: int, best: str | None = None) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    for name in ("model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        (path / name).write_bytes(b"x" * 1000)
    (path / "trainer_state.json").write_text(json.dumps({"global_step": step, "best_model_checkpoint": best}))
    return path


def test_mirror_replaces_the_previous_one_keeps_the_best_and_restores_and_retires(tmp_path, monkeypatch):
    fake = FakeDrive(tmp_path, monkeypatch)
    where = drive.places(fake.mount / "MyDrive" / "run" / "04_train")
    assert where.mirrored and where.local == fake.local / "MyDrive" / "run" / "04_train"
    assert not drive.places(tmp_path / "elsewhere").mirrored
    local = where.local
    drive.mirror(_checkpoint(local, 2), where.run)
    drive.mirror(_checkpoint(local, 4), where.run, keep=["checkpoint-2"])  # 2 is the best: kept
    assert [p.name for _, p in checkpoints.list_checkpoints(where.run)] == ["checkpoint-2", "checkpoint-4"]
    drive.mirror(_checkpoint(local, 6, best=str(local / "checkpoint-2")), where.run, keep=["checkpoint-2"])
    assert [p.name for _, p in checkpoints.list_checkpoints(where.run)] == ["checkpoint-2", "checkpoint-6"]
    assert fake.bin == checkpoints.folder_bytes(local / "checkpoint-4"), "the replaced one went to the bin"
    (where.run / "checkpoint-8.partial").mkdir()  # a copy cut off by a disconnect: never resumed from

    shutil.rmtree(fake.local)  # a new Colab machine: the local disk is empty
    copies = drive.restore(where)
    assert sorted(p.name for p in copies) == ["checkpoint-2", "checkpoint-6"], "the newest, and the best it names"
    assert checkpoints.find_resume_checkpoint(local, "auto").name == "checkpoint-6"
    assert drive.restore(where) == [], "nothing newer on Drive than here"

    assert sorted(drive.retire(where)) == ["checkpoint-2", "checkpoint-6", "checkpoint-8.partial"]
    assert list(where.run.iterdir()) == [] and fake.live() == 0


def test_a_lost_best_checkpoint_is_chosen_again_among_those_that_are_there(tmp_path):
    """After a disconnect the Trainer drops a best checkpoint whose folder is gone but keeps its score; the best
    becomes the best of the checkpoints that survived (ties by CER), not the last weights."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    for step_ in (4, 6):
        (tmp_path / f"checkpoint-{step_}").mkdir()
    args = TrainingArguments(output_dir=str(tmp_path), metric_for_best_model="wer", greater_is_better=False,
                             report_to="none")
    history = [{"step": 2, "eval_wer": 0.5, "eval_cer": 0.2}, {"step": 4, "eval_wer": 0.6, "eval_cer": 0.3},
               {"step": 6, "eval_wer": 0.6, "eval_cer": 0.25}]
    state = TrainerState(global_step=6, best_global_step=2, best_metric=0.5, best_model_checkpoint=None,
                         log_history=history)
    logged = []
    callback = callbacks.SurvivingBestCallback(log=logged.append)
    callback.on_train_begin(args, state, TrainerControl())
    assert (state.best_global_step, state.best_metric) == (6, 0.6), "equal WER: the lower CER"
    assert state.best_model_checkpoint == str(tmp_path / "checkpoint-6") and "step 2" in logged[0]
    untouched = TrainerState(global_step=6, best_global_step=4, best_metric=0.6,
                             best_model_checkpoint=str(tmp_path / "checkpoint-4"), log_history=history)
    callback.on_train_begin(args, untouched, TrainerControl())
    assert untouched.best_global_step == 4


# --------------------------------------------------------------------------------------------------
# step 04 with its run folder on the stand-in Drive
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("drive-base") / "run"
    make_run(run)
    return run


class Disconnect(Exception):
    pass


def _drive_cfg(base_run, fake, **changes):
    run = fake.mount / "MyDrive" / "xlsr-runs" / "tr"
    if not run.exists():
        copy_run(base_run, run)
    params = dict(QUICK, max_steps=6, batch_size=2, eval_max_samples=4, save_total_limit=1)
    params.update(changes)
    return resolve(Config.load(run).updated(run_dir=str(run), **params))


def test_a_run_on_drive_mirrors_stays_under_the_quota_and_resumes_after_a_disconnect(base_run, tmp_path,
                                                                                      monkeypatch):
    fake = FakeDrive(tmp_path, monkeypatch)
    cfg = _drive_cfg(base_run, fake)
    start = fake.used()
    training = step.Training(cfg, log=lambda *a: None)
    training.check_outputs()
    training.load()
    training.build_model()
    training.check()
    training.prepare()
    sizes = checkpoints.checkpoint_bytes(training.model)
    fake.quota = start + drive.report_margin(sizes) + sizes["model"] + sizes["checkpoint"] + sizes["checkpoint"] // 2
    plan = training.check_drive()
    assert plan["every"] == 2 and plan["checkpoints"] == 1, "saves at 2, 4 (6 is the last): room for 1 -> 1 in 2"
    training.make_trainer()

    class Kill(callbacks.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise Disconnect()

    training.trainer.add_callback(Kill())
    with pytest.raises(Disconnect):
        training.train()
    assert training.checkpoint_dir.is_relative_to(fake.local), "the Trainer wrote to the local disk"
    assert [p.name for _, p in checkpoints.list_checkpoints(training.train_dir)] == ["checkpoint-4"]
    assert training._callbacks["drive"].mirrored == [4]

    shutil.rmtree(fake.local)  # the machine is gone, Drive stays
    resumed = step.Training(_drive_cfg(base_run, fake), log=lambda *a: None)
    report = resumed.run()
    assert report["start_step"] == 4 and report["global_step"] == 6
    assert Path(report["resumed_from"]) == resumed.checkpoint_dir / "checkpoint-4"
    assert any("copied back from Google Drive" in n for n in report["notes"])
    assert report["drive"]["checkpoints"] == 0 and resumed._callbacks["drive"].mirrored == [], "6 is the last"
    on_drive = sorted(p.name for p in resumed.train_dir.iterdir())
    assert "model" in on_drive and not any(n.startswith("checkpoint-") for n in on_drive), "retired after the model"
    assert fake.peak <= fake.quota, "live + bin never went over the quota"
    written = fake.used() - start  # everything step 04 wrote to Drive, live or in the bin
    expected = sizes["checkpoint"] + sizes["model"]  # the ledger's arithmetic: checkpoint-4 and the model
    assert expected <= written <= expected + 2 * MB, "processors, random states, reports: well under a MB each"
    assert cfg.upload_dir.is_relative_to(fake.local), "06's upload folder is assembled on the local disk"
