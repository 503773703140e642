"""``DATA_SOURCE = "mdc:<id>"``: the real ``datacollective`` client against a local stand-in of the Mozilla
Data Collective's API (tests/mdc_server.py) serving a small Common Voice release (real zh-CN clips of
../shared/cv-samples when present, else noise). Success and reuse without a request, a wrong or missing key
(a clear message, the key nowhere), an unknown dataset, an interrupted download that resumes with HTTP
Range, a corrupted or unsafe archive (a clear error, nothing half-extracted left), a sample, no network.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import sys
import traceback
import types
from pathlib import Path

import pytest

pytest.importorskip("datacollective", reason="the Mozilla Data Collective's client (Python >= 3.11.4)")

from mdc_server import Dataset, MDCStandIn, build_release  # noqa: E402

from xlsr_helpers.sources import find_cv_folder, read_common_voice  # noqa: E402
from xlsr_helpers.sources import mdc as sources_mdc  # noqa: E402
from xlsr_helpers.sources.mdc import MARKER, MDCError, prepare_mdc, read_record  # noqa: E402

KEY = "mdc-FAKE-KEY-7c1e9a5b3d0f"
DATASET = "cmj8u3q2n00vhnxxbzrjcugwc"
ARCHIVE = "mcv-scripted-zh-CN-v24.0.tar.gz"
SAMPLE = "mcv-scripted-zh-CN-v24.0-sample.tar.gz"


@pytest.fixture(scope="module")
def release():
    return build_release(clips=6)


@pytest.fixture(scope="module")
def sample_release():
    return build_release(clips=3)


@pytest.fixture
def server(release, sample_release, monkeypatch):
    dataset = Dataset(DATASET, release[0], ARCHIVE, sample=sample_release[0], sample_filename=SAMPLE)
    with MDCStandIn([dataset], key=KEY) as stand_in:
        monkeypatch.setenv("MDC_API_URL", stand_in.api_url)
        monkeypatch.setenv("MDC_API_KEY", KEY)
        monkeypatch.delenv("MDC_DOWNLOAD_PATH", raising=False)
        monkeypatch.setattr(sources_mdc, "RETRY_DELAY_S", 0.0)
        yield stand_in


def leftovers(root: Path) -> list[str]:
    """Every file and folder under ``root`` (relative), to show that a failure left nothing behind."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def assert_no_secret(secret: str, error: BaseException | None, capsys, caplog, root: Path) -> None:
    texts = [capsys.readouterr().out, capsys.readouterr().err, caplog.text]
    if error is not None:
        texts.append("".join(traceback.format_exception(error)))  # the whole chain, the client's causes too
    texts += [p.read_text(errors="replace") for p in root.rglob("*") if p.is_file() and p.stat().st_size < 1e5]
    assert not [t for t in texts if secret in t], "the API key appeared in output, a log, an error or a file"


def test_download_extract_then_reuse_without_a_request(server, release, tmp_path, capsys, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    root = tmp_path / "mdc"
    first = prepare_mdc(DATASET, root)
    folder = Path(first.folder)
    assert folder.name == "zh-CN" and (folder / "clips").is_dir()
    for name in ("train.tsv", "dev.tsv", "test.tsv", "validated.tsv"):
        assert (folder / name).is_file()
    archive, members = release
    for path, data in members.items():  # every file, byte for byte
        assert (root / DATASET / path).read_bytes() == data
    assert first.id == DATASET and first.release == "24.0" and first.language == "zh-CN" and not first.sample
    assert first.checksum == hashlib.sha256(archive).hexdigest() and first.size_bytes == len(archive)
    assert first.data_source == f"common_voice:{folder}"
    assert not list((root / "archives").iterdir()), "the archive is deleted once extracted (keep_archive=False)"
    # step 01's reader takes the folder as it is
    assert find_cv_folder(folder, "zh-CN") == folder
    rows = read_common_voice(folder, "zh-CN", first.data_source, ["train", "eval", "test"]).rows
    assert len(rows) == 6 and all(Path(r.path).exists() for r in rows)
    assert [r.method for r in server.requests].count("POST") == 1

    before = len(server.requests)
    monkeypatch.delenv("MDC_API_KEY")  # reuse needs no key and no network
    again = prepare_mdc(DATASET, root)
    assert again == first and len(server.requests) == before
    assert "Reusing" in capsys.readouterr().out
    assert read_record(root / DATASET) == first
    assert_no_secret(KEY, None, capsys, caplog, tmp_path)


def test_wrong_key_is_refused_with_a_clear_message_and_never_shown(server, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "mdc-WRONG-SECRET-0123456789abcdef"
    with pytest.raises(MDCError, match="refused the API key") as caught:
        prepare_mdc(DATASET, tmp_path / "mdc", api_key=wrong)
    message = str(caught.value)
    assert "401" in message and "MDC_API_KEY" in message and len(message) < 300
    assert caught.value.__cause__ is not None  # the client's exception is chained, not shown as the message
    assert server.requests[-1].method == "POST" and not server.requests[-1].authorized
    import os
    assert os.environ["MDC_API_KEY"] == KEY, "the environment's key is restored"
    assert not (tmp_path / "mdc" / DATASET).exists()
    assert_no_secret(wrong, caught.value, capsys, caplog, tmp_path)
    assert_no_secret(KEY, caught.value, capsys, caplog, tmp_path)


def test_no_key_asks_for_one_before_any_request(server, tmp_path, monkeypatch):
    monkeypatch.delenv("MDC_API_KEY")
    with pytest.raises(MDCError, match="No API key") as caught:
        prepare_mdc(DATASET, tmp_path / "mdc")
    assert "mozilladatacollective.com" in str(caught.value) and "secret" in str(caught.value)
    assert server.requests == []


def test_a_colab_secret_gives_the_key(server, tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.delenv("MDC_API_KEY")
    userdata = types.SimpleNamespace(get=lambda name: KEY if name == "MDC_API_KEY" else None)
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)
    result = prepare_mdc(DATASET, tmp_path / "mdc", progress=False)
    assert Path(result.folder).is_dir() and server.seen("POST", "/download$")[0].authorized
    assert_no_secret(KEY, None, capsys, caplog, tmp_path)


def test_unknown_dataset(server, tmp_path):
    with pytest.raises(MDCError, match="no dataset 'cmnosuchdataset000'.*404"):
        prepare_mdc("cmnosuchdataset000", tmp_path / "mdc")
    with pytest.raises(MDCError, match="not a dataset id"):
        prepare_mdc("../etc", tmp_path / "mdc")
    assert leftovers(tmp_path / "mdc") in ([], ["archives"])


def test_interrupted_download_resumes_with_range(server, release, tmp_path, capsys):
    server.interrupt_after = 140_000  # two of the client's 64 KiB chunks reach the disk, then the line drops
    result = prepare_mdc(DATASET, tmp_path / "mdc")
    gets = server.seen("GET", "^/files/")
    assert len(gets) == 2 and gets[0].range is None
    start = int(gets[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 140_000, gets[1].range
    assert result.checksum == hashlib.sha256(release[0]).hexdigest()  # verified: the resumed archive is whole
    assert all((tmp_path / "mdc" / DATASET / p).read_bytes() == d for p, d in release[1].items())
    assert "resuming" in capsys.readouterr().out


def test_interrupted_download_is_resumed_by_the_next_call(server, tmp_path):
    server.interrupt_after = 140_000
    root = tmp_path / "mdc"
    with pytest.raises(MDCError, match="interrupted.*run again, it resumes"):
        prepare_mdc(DATASET, root, attempts=1, progress=False)
    assert (root / "archives" / f"{ARCHIVE}.part").stat().st_size > 0
    assert not (root / DATASET).exists()
    result = prepare_mdc(DATASET, root, attempts=1, progress=False)
    assert Path(result.folder).is_dir() and server.seen("GET", "^/files/")[-1].range.startswith("bytes=")


def test_a_full_disk_is_named_and_not_retried(server, tmp_path, monkeypatch):
    import errno

    import datacollective.download

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(datacollective.download, "open", full_disk, raising=False)  # where the client writes .part
    with pytest.raises(MDCError, match="No space left on device.*free some disk space"):
        prepare_mdc(DATASET, tmp_path / "mdc", progress=False)
    assert len(server.seen("GET", "^/files/")) == 1, "a full disk is not retried"


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_corrupted_archive_leaves_nothing_behind(server, tmp_path, where):
    server.corrupt = where  # "end": the gzip trailer, which tarfile does not check: only the SHA-256 sees it
    root = tmp_path / "mdc"
    with pytest.raises(MDCError, match="is corrupted") as caught:
        prepare_mdc(DATASET, root, progress=False)
    assert "run again" in str(caught.value)
    assert ("cannot be unpacked" if where == "start" else "SHA-256") in str(caught.value)
    assert leftovers(root) == ["archives"], "no folder, no temporary folder, no archive, no .part"
    server.corrupt = None  # the next call downloads afresh and succeeds
    assert Path(prepare_mdc(DATASET, root, progress=False).folder).is_dir()


def test_unsafe_archive_member_is_refused(release, tmp_path, monkeypatch):
    archive, _ = build_release(clips=2, extra_members={"../escape.txt": b"outside"})
    with MDCStandIn([Dataset(DATASET, archive, ARCHIVE)], key=KEY) as stand_in:
        monkeypatch.setenv("MDC_API_URL", stand_in.api_url)
        with pytest.raises(MDCError, match="outside its folder"):
            prepare_mdc(DATASET, tmp_path / "mdc", api_key=KEY, progress=False)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "mdc" / "escape.txt").exists()
    assert leftovers(tmp_path / "mdc") == ["archives"]


def test_an_archive_that_is_not_common_voice(tmp_path, monkeypatch):
    archive, _ = build_release(clips=0, folder="other", extra_members={"notes/readme.txt": b"hello"})
    with MDCStandIn([Dataset(DATASET, archive, ARCHIVE)], key=KEY) as stand_in:
        monkeypatch.setenv("MDC_API_URL", stand_in.api_url)
        with pytest.raises(MDCError, match="not a Common Voice release"):
            prepare_mdc(DATASET, tmp_path / "mdc", api_key=KEY, progress=False)
    assert not (tmp_path / "mdc" / DATASET).exists()


def test_sample(server, sample_release, tmp_path):
    result = prepare_mdc(DATASET, tmp_path / "mdc", sample=True, progress=False)
    assert result.sample and result.checksum is None and result.release == "24.0"
    assert Path(result.folder).parent.parent.name == f"{DATASET}-sample"
    assert len(read_common_voice(result.folder, "zh-CN", "s", ["train", "eval", "test"]).rows) == 3
    assert server.seen("POST", "/sample-download$") and not server.seen("POST", "/download$")
    full = prepare_mdc(DATASET, tmp_path / "mdc", progress=False)  # the sample never passes for the release
    assert full.folder != result.folder and not full.sample


def test_no_network(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MDC_API_URL", f"http://127.0.0.1:{port}/api")
    with pytest.raises(MDCError, match="Cannot reach"):
        prepare_mdc(DATASET, tmp_path / "mdc", api_key=KEY, progress=False)


def test_google_drive_is_refused(tmp_path):
    with pytest.raises(MDCError, match="Google Drive"):
        prepare_mdc(DATASET, "/content/drive/MyDrive/mdc", api_key=KEY)
    assert MARKER.startswith(".")


def test_data_source_mdc_reads_the_release_in_step_01s_reader(server, tmp_path, monkeypatch):
    """DATA_SOURCE = "mdc:<id>": the release is fetched through the client and read as the Common Voice folder it
    is; step 01's report gets the dataset's id and release (the card and run.json name what was measured)."""
    from xlsr_helpers.config import Config
    from xlsr_helpers.sources import parse_sources, read_sources

    monkeypatch.setenv("MDC_DOWNLOAD_PATH", str(tmp_path / "mdc"))
    assert parse_sources(f"mdc:{DATASET}+synthetic")[0] == (f"mdc:{DATASET}", "mdc", DATASET)
    with pytest.raises(ValueError, match="mdc:<dataset id>"):
        parse_sources("mdc:")
    cfg = Config(language="zh-CN", run_dir=str(tmp_path / "run"), data_source=f"mdc:{DATASET}")
    (source,) = read_sources(cfg)
    assert source.kind == "mdc" and len(source.rows) == 6
    assert {row.split for row in source.rows} <= {"train", "eval", "test"} and all(row.key for row in source.rows)
    record = source.info["mdc"]
    assert record["id"] == DATASET and record["release"] == "24.0" and not record["sample"]
    assert KEY not in repr(source.info)
