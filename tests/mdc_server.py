"""A local stand-in for the Mozilla Data Collective's API, for tests of ``xlsr_helpers.sources.mdc``.

It answers, on 127.0.0.1 and a free port, the part of the API that the ``datacollective`` client (0.7)
calls to download a dataset, the same way the real one does (datacollective/api_utils.py, download.py):

- ``GET  /api/datasets/<id>``                  the dataset's details (public: no key)
- ``POST /api/datasets/<id>/download``         ``{downloadUrl, sizeBytes, checksum}`` (key needed)
- ``POST /api/datasets/<id>/sample-download``  ``{downloadUrl, sizeBytes, filename}`` (key needed, no checksum)
- ``GET  /files/<name>?sig=...``               the archive (a "pre-signed" address: no key), with HTTP ``Range``

Errors as the API sends them: JSON ``{"error": ...}`` with 401 (wrong key), 404 (no such dataset). Switches:
``interrupt_after`` (the first download of the archive stops after that many bytes, the connection closed),
``corrupt`` (64 bytes of the archive changed: at the ``"start"`` (the gzip header), in the ``"middle"``, or at
the ``"end"`` (the gzip trailer, which tarfile does not check), while the original's checksum and size are
advertised). ``requests`` records
every request (method, path, the Range header, whether a key was sent), never the key itself.

:func:`build_release` writes a small Common Voice release (17.0+ TSV header) as a ``.tar.gz`` from the real
zh-CN clips of ../shared/cv-samples, or from seeded noise when that folder is absent.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "cv-samples" / "ssbuild_asr_finetuning"
HEADER = ("client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes", "age",
          "gender", "accents", "variant", "locale", "segment")
RELEASE_FOLDER = "cv-corpus-24.0-2025-12-05"
LIFETIME_S = 120  # the server stops by itself after this long, even if a test forgets to stop it


@dataclass
class Dataset:
    """One dataset of the stand-in: its id, details and archives (bytes)."""

    id: str
    archive: bytes
    filename: str
    locale: str = "zh-CN"
    name: str = "Common Voice Scripted Speech 24.0 - Chinese (China)"
    sample: bytes | None = None
    sample_filename: str | None = None

    def details(self, base: str) -> dict:
        return {"id": self.id, "slug": f"common-voice/{self.id}", "name": self.name, "locale": self.locale,
                "task": "ASR", "format": "MP3", "licenseAbbreviation": "CC0-1.0", "filename": self.filename,
                "checksum": hashlib.sha256(self.archive).hexdigest(), "sizeBytes": len(self.archive),
                "datasetUrl": f"{base}/datasets/{self.id}",
                "organization": {"name": "Common Voice", "slug": "common-voice"}}


@dataclass
class Seen:
    method: str
    path: str
    range: str | None
    authorized: bool  # an Authorization header with the right key was sent


@dataclass
class MDCStandIn:
    """The stand-in server; a context manager (``with MDCStandIn(...) as server:``), ``api_url`` for MDC_API_URL."""

    datasets: list[Dataset]
    key: str
    interrupt_after: int | None = None
    corrupt: str | None = None  # "start" | "middle" | "end"
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.api_url = f"{self.base}/api"
        self._files: dict[str, bytes] = {}
        self._interrupted = False
        for dataset in self.datasets:
            self._files[dataset.filename] = dataset.archive
            if dataset.sample is not None:
                self._files[dataset.sample_filename] = dataset.sample

    def __enter__(self) -> MDCStandIn:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._timer = threading.Timer(LIFETIME_S, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def seen(self, method: str, pattern: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    def _dataset(self, ident: str) -> Dataset | None:
        return next((d for d in self.datasets if ident in (d.id, f"common-voice/{d.id}")), None)

    def _archive_bytes(self, name: str) -> bytes:
        data = self._files[name]
        if self.corrupt:  # the same size, 64 bytes changed (the checksum stays the original's)
            at = {"start": 0, "middle": len(data) // 2, "end": len(data) - 4}[self.corrupt]
            data = data[:at] + bytes(b ^ 0xFF for b in data[at:at + 64]) + data[at + 64:]
        return data


def _handler(server: MDCStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _record(self):
            path = self.path.split("?")[0]
            auth = self.headers.get("Authorization", "")
            server.requests.append(Seen(self.command, path, self.headers.get("Range"), auth == f"Bearer {server.key}"))
            return path, auth

        def _json(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            path, _ = self._record()
            if match := re.fullmatch(r"/api/datasets/(.+)", path):
                dataset = server._dataset(match[1])
                if dataset is None:
                    return self._json(404, {"error": "Dataset not found"})
                return self._json(200, dataset.details(server.base))
            if match := re.fullmatch(r"/files/(.+)", path):
                if match[1] not in server._files:
                    return self._json(404, {"error": "Not found"})
                return self._send_file(server._archive_bytes(match[1]))
            self._json(404, {"error": "Not found"})

        def do_POST(self):
            path, auth = self._record()
            match = re.fullmatch(r"/api/datasets/(.+)/(download|sample-download)", path)
            if not match:
                return self._json(404, {"error": "Not found"})
            if auth != f"Bearer {server.key}":
                return self._json(401, {"error": "Invalid API key"})
            dataset = server._dataset(match[1])
            if dataset is None or (match[2] == "sample-download" and dataset.sample is None):
                return self._json(404, {"error": "Dataset not found"})
            if match[2] == "download":
                return self._json(200, {"downloadUrl": f"{server.base}/files/{dataset.filename}?sig=stand-in",
                                        "sizeBytes": len(dataset.archive),
                                        "checksum": hashlib.sha256(dataset.archive).hexdigest()})
            self._json(200, {"downloadUrl": f"{server.base}/files/{dataset.sample_filename}?sig=stand-in",
                             "sizeBytes": len(dataset.sample), "filename": dataset.sample_filename})

        def _send_file(self, data: bytes):
            start = 0
            if match := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")):
                start = int(match[1])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            body = data[start:]
            if server.interrupt_after is not None and not server._interrupted:
                server._interrupted = True  # the first download only: then the connection drops
                self.wfile.write(body[:server.interrupt_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


def build_release(locale: str = "zh-CN", clips: int = 6, folder: str = RELEASE_FOLDER,
                  extra_members: dict[str, bytes] | None = None) -> tuple[bytes, dict[str, bytes]]:
    """A Common Voice release as ``.tar.gz`` bytes (``<folder>/<locale>/{train,dev,test,validated}.tsv``,
    ``clips/``), and its files by path inside the archive. ``extra_members`` are added as they are (e.g. an
    unsafe path). Real clips from ../shared/cv-samples when present, else seeded noise as WAV."""
    audio = _clips(clips)
    base = f"{folder}/{locale}"
    rows = [(f"speaker{i % 3}", name, f"s{i}", sentence, "", "2", "0", "", "", "", "", locale, "")
            for i, (name, (sentence, _)) in enumerate(audio.items())]
    third = max(1, len(rows) // 3)
    tsvs = {"train": rows[:third], "dev": rows[third:2 * third], "test": rows[2 * third:], "validated": rows}
    members: dict[str, bytes] = {}
    for stem, part in tsvs.items():
        members[f"{base}/{stem}.tsv"] = ("\n".join("\t".join(r) for r in [HEADER, *part]) + "\n").encode()
    for name, (_, data) in audio.items():
        members[f"{base}/clips/{name}"] = data
    members.update(extra_members or {})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue(), members


def _clips(count: int) -> dict[str, tuple[str, bytes]]:
    """{file name: (sentence, bytes)}: real zh-CN Common Voice clips, else noise (WAV, 1.5 s at 16 kHz)."""
    index = SAMPLES / "data" / "common_voice_zh-CN.json"
    if index.exists():
        out = {}
        for line in index.read_text(encoding="utf-8").splitlines()[:count]:
            row = json.loads(line)
            path = (index.parent / row["path"]).resolve()
            out[path.name] = (row["sentence"], path.read_bytes())
        return out
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    out = {}
    for i in range(count):
        buffer = io.BytesIO()
        sf.write(buffer, rng.uniform(-0.3, 0.3, 24_000).astype("float32"), 16_000, format="WAV", subtype="PCM_16")
        out[f"common_voice_zh-CN_{i}.wav"] = (f"句子{i}", buffer.getvalue())
    return out
