"""The Mozilla Data Collective as a source: ``DATA_SOURCE = "mdc:<dataset id>"``.

Common Voice is distributed only by the Mozilla Data Collective (MDC) since late 2025. :func:`prepare_mdc`
turns a dataset id of the Collective into an extracted Common Voice locale folder on local disk, which step
01 then reads as ``common_voice:<folder>``:

1. reuse: a folder extracted before (its record file, :data:`MARKER`, is written last) is returned at
   once, without the network or a key;
2. download: the Collective's own client, ``datacollective``, fetches the archive with its progress bar;
   an interrupted download resumes (the client keeps ``<archive>.part`` and ``<archive>.checksum`` and asks
   for the rest with an HTTP ``Range``), retried here up to ``attempts`` times;
3. verify and extract in one pass: the archive is read once, hashed (SHA-256, the checksum the API
   publishes; the client itself only uses it to decide whether a ``.part`` may be resumed) and unpacked
   with tarfile's ``data`` filter (no path outside the folder, no absolute path, no link out, no device)
   into a temporary sibling folder that is renamed into place only when complete; a wrong checksum, a
   broken archive or an unsafe member leaves no folder behind and deletes the archive, so the next call
   downloads it afresh;
4. the locale folder is found inside (the one with ``clips/`` and train/dev/test TSVs).

The API key comes from ``api_key=``, the client's own variable ``MDC_API_KEY`` (also read from a ``.env``
file by the client at import), or a Colab secret of that name. It is put in the environment only while the
client runs, and never appears in a message, a record, or the text of an error. Every failure is one short
:class:`MDCError` that says what to do (the client's exception is chained as its cause).

The archive lands on the local disk (on Colab ``/content/mdc``, never Google Drive: slow, and its free 15 GB
fill up); ``MDC_DOWNLOAD_PATH`` (the client's variable) or ``dest_root=`` choose another folder, and
``MDC_API_URL`` another API address (the tests' local stand-in server). A sample (``sample=True``) is the
small excerpt a publisher offers for a look before the full download; the API gives no checksum for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tarfile
import time
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ..constants import COLAB_CONTENT, DRIVE_MOUNT
from ..files import write_json_atomic
from ..synthetic.atomic import build_into

KEY_ENV = "MDC_API_KEY"  # the client's own variable names (datacollective.api_utils)
URL_ENV = "MDC_API_URL"
DOWNLOAD_ENV = "MDC_DOWNLOAD_PATH"
KEY_PAGE = "https://mozilladatacollective.com/profile/credentials"
MARKER = ".xlsr-mdc.json"  # the record of a finished extraction, written last
CV_SPLIT_TSVS = ("train.tsv", "dev.tsv", "test.tsv")
_DATASET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")  # a cuid, or org/slug
RETRY_DELAY_S = 2.0  # before the 2nd attempt; twice that before the 3rd
_SEARCH_DEPTH = 4  # how deep the locale folder may lie in an archive (cv-corpus-24.0-2025-12-05/tr: 2)


class MDCError(RuntimeError):
    """A Mozilla Data Collective download that could not be done, with what to do about it."""


@dataclass(frozen=True)
class MDCDataset:
    """What was downloaded, for ``run.json`` and the model card (never the key)."""

    id: str  # the id (or slug) asked for
    name: str | None  # the Collective's name, e.g. "Common Voice Scripted Speech 24.0 - Turkish"
    release: str | None  # "24.0", from the name, the file name or the archive's release folder
    language: str | None  # the dataset's locale, else the locale folder's name
    sample: bool
    checksum: str | None  # SHA-256 of the archive, verified; None for a sample (the API gives none)
    size_bytes: int | None
    filename: str | None  # the archive's file name
    url: str | None  # the dataset's page on the Collective
    folder: str  # the locale folder: DATA_SOURCE = f"common_voice:{folder}"

    @property
    def data_source(self) -> str:
        return f"common_voice:{self.folder}"

    def to_json(self) -> dict:
        return asdict(self)


def default_root() -> Path:
    """Where archives and extractions go: ``MDC_DOWNLOAD_PATH``, else ``/content/mdc`` on Colab (the local
    disk), else ``~/.cache/xlsr-helpers/mdc``."""
    if os.environ.get(DOWNLOAD_ENV, "").strip():
        return Path(os.environ[DOWNLOAD_ENV]).expanduser()
    if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ:  # as colab.in_colab (a later module)
        return COLAB_CONTENT / "mdc"
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "xlsr-helpers" / "mdc"


def find_api_key(api_key: str | None = None) -> str | None:
    """The API key: ``api_key``, else ``MDC_API_KEY``, else the Colab secret ``MDC_API_KEY``; None if none."""
    if api_key and api_key.strip():
        return api_key.strip()
    if os.environ.get(KEY_ENV, "").strip():
        return os.environ[KEY_ENV].strip()
    try:  # Colab: the key icon of the left bar; a secret the notebook may not read raises
        from google.colab import userdata  # type: ignore[import-not-found]

        secret = userdata.get(KEY_ENV)
    except Exception:
        return None
    return secret.strip() if isinstance(secret, str) and secret.strip() else None


def read_record(target: str | Path) -> MDCDataset | None:
    """The record of a finished extraction in ``target`` (None if there is none, or its folder is gone)."""
    try:
        record = json.loads((Path(target) / MARKER).read_text(encoding="utf-8"))
        dataset = MDCDataset(**record)
    except (OSError, ValueError, TypeError):
        return None
    return dataset if Path(dataset.folder).is_dir() else None


def prepare_mdc(dataset_id: str, dest_root: str | Path | None = None, *, api_key: str | None = None,
                sample: bool = False, progress: bool = True, attempts: int = 3,
                keep_archive: bool = False) -> MDCDataset:
    """Download, verify and extract a Common Voice release of the Collective; its locale folder is
    ``result.folder`` (reused when extracted before). ``sample=True``: the dataset's sample instead.
    ``keep_archive=False`` deletes the archive once extracted (a release is as large again as its folder)."""
    dataset_id = (dataset_id or "").strip()
    if not _DATASET_ID.fullmatch(dataset_id) or ".." in dataset_id:
        raise MDCError(f"{dataset_id!r} is not a dataset id of the Mozilla Data Collective: copy it from the "
                       "dataset's page (mozilladatacollective.com/datasets/<id>), e.g. DATA_SOURCE='mdc:cmj8u3p...'.")
    root = Path(dest_root).expanduser() if dest_root else default_root()
    if root.resolve().is_relative_to(DRIVE_MOUNT.resolve()):
        raise MDCError(f"{root} is on Google Drive: extract to the local disk instead (e.g. /content/mdc); "
                       "Drive is slow for many small files and its free 15 GB fill up.")
    target = root / (re.sub(r"[^A-Za-z0-9._-]", "_", dataset_id) + ("-sample" if sample else ""))
    done = read_record(target)
    if done is not None:
        _say(progress, f"Reusing {done.name or dataset_id} in {done.folder}")
        return done

    client = _import_client()  # first: importing it reads a .env file into the environment (its own behaviour)
    key = find_api_key(api_key)
    if key is None:
        raise MDCError(f"No API key for the Mozilla Data Collective: create one at {KEY_PAGE}, then set the "
                       f"environment variable {KEY_ENV} (on Colab: a secret named {KEY_ENV}, notebook access on).")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MDCError(f"Cannot create the download folder {root}: choose another with dest_root= or "
                       f"{DOWNLOAD_ENV}.") from exc
    if not os.access(root, os.W_OK):
        raise MDCError(f"The download folder {root} is not writable: choose another with dest_root= or {DOWNLOAD_ENV}.")
    with _key_in_environment(key), _client_errors(dataset_id, sample):
        details = client.get_dataset_details(dataset_id)
        archive = _download(client, dataset_id, root / "archives", sample, progress, attempts)
    checksum = None if sample else (details.checksum or None)
    dataset = MDCDataset(id=dataset_id, name=details.name, release=None, language=details.locale, sample=sample,
                         checksum=checksum, size_bytes=None if sample else _int(details.sizeBytes),
                         filename=archive.name, url=details.datasetUrl, folder="")
    _say(progress, f"Verifying and extracting {archive.name} into {target}")
    build_into(target, {}, lambda tmp: _extract(archive, tmp, target, dataset, progress))
    if not keep_archive:
        archive.unlink(missing_ok=True)
    done = read_record(target)
    _say(progress, f"Ready: DATA_SOURCE = {done.data_source!r}")
    return done


def _download(client, dataset_id: str, folder: Path, sample: bool, progress: bool, attempts: int) -> Path:
    """The archive on disk: the client's download, retried (it resumes) after an interruption."""
    from datacollective.errors import DownloadError

    get = client.download_sample if sample else client.download_dataset
    attempt = 1
    while True:
        try:
            return get(dataset_id, download_directory=str(folder), show_progress=progress, enable_logging=False)
        except DownloadError as exc:
            if attempt >= attempts or isinstance(exc.__cause__, KeyboardInterrupt) or _disk_error(exc.__cause__):
                raise
            time.sleep(RETRY_DELAY_S * attempt)
            attempt += 1
            _say(progress, f"\nThe download was interrupted; resuming (attempt {attempt} of {attempts})")


def _extract(archive: Path, tmp: Path, target: Path, dataset: MDCDataset, progress: bool) -> None:
    """``build_into``'s filler: unpack ``archive`` into ``tmp`` while hashing it, check the hash, find the
    locale folder and write the record (last). Raises :class:`MDCError`; ``build_into`` removes ``tmp``, and a
    corrupted archive is deleted (the next call downloads it afresh)."""
    tmp.mkdir(parents=True)
    size = archive.stat().st_size
    if dataset.size_bytes and size != dataset.size_bytes:
        _corrupted(archive, f"{size} bytes instead of the Collective's {dataset.size_bytes}")
    digest = hashlib.sha256()
    try:
        with archive.open("rb") as raw, _progress_bar(progress, size, "verify + extract") as bar:
            reader = _HashingReader(raw, digest, bar)
            with tarfile.open(fileobj=reader, mode="r|gz") as tar:  # a stream: each byte read once
                tar.extractall(tmp, filter="data")
            reader.drain()  # the gzip trailer and padding after the tar's end count in the checksum
    except tarfile.FilterError as exc:
        archive.unlink(missing_ok=True)
        raise MDCError(f"The archive {archive.name} holds a file that would land outside its folder "
                       f"({type(exc).__name__}); it was deleted, nothing extracted. Report it to the dataset's "
                       "publisher.") from exc
    except OSError as exc:  # the disk (full, not writable): the archive is kept
        raise MDCError(f"Extracting {archive.name} into {tmp.parent} failed ({exc.strerror or exc}): free some disk "
                       "space or choose another folder with dest_root=, then run again.") from exc
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        _corrupted(archive, "it cannot be unpacked", exc)
    if dataset.checksum and digest.hexdigest().lower() != dataset.checksum.strip().lower():
        _corrupted(archive, "its SHA-256 differs from the Collective's checksum")
    folder = _find_locale_folder(tmp, dataset.language, dataset.sample)
    final_folder = target / folder.relative_to(tmp)
    release = _release(dataset.name, dataset.filename, str(folder.relative_to(tmp)))
    record = MDCDataset(**{**dataset.to_json(), "folder": str(final_folder), "release": release,
                           "language": dataset.language or folder.name})
    write_json_atomic(tmp / MARKER, record.to_json())


def _corrupted(archive: Path, why: str, cause: BaseException | None = None):
    archive.unlink(missing_ok=True)
    raise MDCError(f"The archive {archive.name} is corrupted ({why}); it was deleted: run again to download "
                   "it afresh.") from cause


def _find_locale_folder(root: Path, language: str | None, sample: bool) -> Path:
    """The folder with ``clips/`` and the split TSVs (or validated.tsv, which step 01 splits itself; any TSV
    for a sample): the dataset's own locale first, then one with every split TSV, then the shallowest."""
    found: list[tuple[int, bool, Path]] = []
    for here, dirs, files in os.walk(root):
        depth = len(Path(here).relative_to(root).parts)
        has_splits = all(name in files for name in CV_SPLIT_TSVS)
        usable = has_splits or "validated.tsv" in files or (sample and any(f.endswith(".tsv") for f in files))
        if "clips" in dirs and usable:
            found.append((depth, has_splits, Path(here)))
        dirs[:] = [d for d in dirs if d != "clips" and depth < _SEARCH_DEPTH]
    if not found:
        top = sorted(p.name for p in root.iterdir() if p.name != MARKER)[:8]
        raise MDCError("The archive is not a Common Voice release: no folder holds clips/ and train.tsv, dev.tsv, "
                       f"test.tsv (its top level: {', '.join(top) or 'empty'}). Check the dataset id.")
    found.sort(key=lambda f: (f[2].name != language, not f[1], f[0], str(f[2])))
    return found[0][2]


def _release(*texts: str | None) -> str | None:
    """The release number ("24.0") in the first text that names one (a name, a file name, a folder)."""
    for text in texts:
        match = re.search(r"(?<![\d.])(\d{1,3})[.-](\d{1,2})(?![\d.])", text or "")
        if match:
            return f"{match[1]}.{match[2]}"
    return None


@contextmanager
def _key_in_environment(key: str):
    """``MDC_API_KEY`` set to ``key`` while the client runs (it reads the key from there only)."""
    before = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = key
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = before


@contextmanager
def _client_errors(dataset_id: str, sample: bool):
    """The client's exceptions as one short :class:`MDCError` each, with the remedy (the cause chained)."""
    import requests
    from datacollective.errors import AuthenticationError, DownloadError, RateLimitError

    what = f"the sample of {dataset_id}" if sample else dataset_id
    try:
        yield
    except MDCError:
        raise
    except AuthenticationError as exc:
        raise MDCError(f"The Mozilla Data Collective refused the API key (HTTP 401: invalid, expired or revoked): "
                       f"create a new one at {KEY_PAGE} and set {KEY_ENV} (or the Colab secret) to it.") from exc
    except PermissionError as exc:
        raise MDCError(f"Access to {what} was denied (HTTP 403): open the dataset's page on "
                       "mozilladatacollective.com with the account of this API key and agree to its terms.") from exc
    except FileNotFoundError as exc:  # 404, and 410 (ResourceRemovedError)
        raise MDCError(f"The Mozilla Data Collective has no dataset {dataset_id!r}"
                       + (" with a sample" if sample else "") + " (HTTP 404/410): copy the id from the dataset's "
                       "page (mozilladatacollective.com/datasets/<id>).") from exc
    except RateLimitError as exc:
        raise MDCError("The Mozilla Data Collective's download limit is reached (HTTP 429): try again later.") from exc
    except DownloadError as exc:
        if _disk_error(exc.__cause__):
            raise MDCError(f"Writing the archive of {what} failed ({exc.__cause__.strerror or 'disk'}): free some disk "
                           f"space or choose another folder with dest_root= or {DOWNLOAD_ENV}, then run again (it "
                           "resumes).") from exc
        if sample:
            raise MDCError(f"The download of {what} was interrupted: run again (a sample starts over).") from exc
        raise MDCError(f"The download of {what} was interrupted ({exc.remaining_bytes} left): run again, it "
                       "resumes where it stopped.") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise MDCError(f"Cannot reach the Mozilla Data Collective ({_api_url()}): check the network connection "
                       "and run again.") from exc
    except (requests.RequestException, RuntimeError, ValueError) as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise MDCError(f"The Mozilla Data Collective could not serve {what} ("
                       + (f"HTTP {status}" if status else type(exc).__name__) + "): try again later.") from exc


def _disk_error(cause: BaseException | None) -> bool:
    """Whether a download failed on the local disk (full, not writable) rather than on the network."""
    import requests

    return isinstance(cause, OSError) and not isinstance(cause, requests.RequestException)


def _import_client():
    try:
        import datacollective
    except ImportError as exc:
        raise MDCError("The Mozilla Data Collective's client is missing (it needs Python >= 3.11.4): "
                       "pip install 'datacollective>=0.7'.") from exc
    return datacollective


def _api_url() -> str:
    return os.environ.get(URL_ENV, "https://mozilladatacollective.com/api")


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)


class _HashingReader:
    """A read-only file that hashes (and counts on a progress bar) what is read through it."""

    def __init__(self, raw, digest, bar):
        self.raw, self.digest, self.bar = raw, digest, bar

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        if self.bar is not None:
            self.bar.update(len(data))
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


@contextmanager
def _progress_bar(progress: bool, total: int, label: str):
    if not progress:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label) as bar:
        yield bar
