"""espeak-ng and the mp3 encoder: the tools, the installed voices, and one clip from text to mp3.

Everything that runs espeak-ng or encodes audio is here: which voices espeak-ng has, whether it reads a
text in a voice itself (no switch to English), the PCM it speaks, and the encoding to what Common Voice
ships (48 kHz mono mp3, 64 kbit/s), in process by torchcodec or by the ffmpeg command. Both use libav's
mp3 encoder with bit-exact flags, so a corpus does not depend on which one ran.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SAMPLE_RATE = 48_000
BITRATE = "64k"
ENCODERS = ("torchcodec", "ffmpeg")


def require_tools() -> dict[str, str]:
    """The paths of espeak-ng and ffmpeg; a clear error that says how to install a missing one."""
    tools = {name: shutil.which(name) for name in ("espeak-ng", "ffmpeg")}
    missing = [n for n, p in tools.items() if p is None]
    if missing:
        raise RuntimeError(
            f"The synthetic corpus needs {' and '.join(missing)}, which is not installed. Install it with "
            f"`sudo apt-get install {' '.join(missing)}` (Debian/Ubuntu, Colab), "
            f"`conda install -c conda-forge {' '.join(missing)}`, or `brew install {' '.join(missing)}`.")
    return tools  # type: ignore[return-value]


def worker_count(n: int | None = None) -> int:
    """Parallel jobs: ``n`` if given, else the CPU cores available to this process."""
    if n:
        return max(1, int(n))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


@functools.lru_cache(maxsize=1)
def espeak_languages() -> tuple[str, ...]:
    """Language codes of the installed espeak-ng voices (empty when espeak-ng is missing)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return ()
    out = subprocess.run([exe, "--voices"], capture_output=True, text=True, check=False).stdout
    codes = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            codes.append(parts[1])
    return tuple(dict.fromkeys(codes))


def espeak_version() -> str:
    """The first line of ``espeak-ng --version`` (empty when espeak-ng is missing)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return ""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip().splitlines()[0] if out.strip() else ""


def reads_natively(voice: str, texts: list[str]) -> list[bool]:
    """Whether espeak-ng reads each text in ``voice`` itself (some output, no switch to another language)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return [True] * len(texts)
    own = voice.lower()

    def check(text: str) -> bool:
        res = subprocess.run([exe, "-q", "-x", "-v", voice, " " + text], capture_output=True, check=False)
        ph = res.stdout.decode("utf-8", "replace")
        switches = {m.lower() for m in re.findall(r"\(([A-Za-z][\w-]*)\)", ph)}
        return res.returncode == 0 and bool(ph.strip()) and switches <= {own}

    with ThreadPoolExecutor(max_workers=worker_count(None) * 2) as pool:
        return list(pool.map(check, texts))


def check_voice(espeak: str, voice: str, locale: str, text: str) -> None:
    """The voice must exist and read ``text`` (the vocabulary) itself (no switch to another language)."""
    if voice not in espeak_languages() and voice.split("+")[0] not in espeak_languages():
        raise RuntimeError(f"espeak-ng has no voice {voice!r} for {locale}; "
                           f"installed: {', '.join(espeak_languages())}")
    res = subprocess.run([espeak, "-q", "-x", "-v", voice, "--stdin"], input=text.encode("utf-8"),
                         capture_output=True, check=False)
    phonemes = res.stdout.decode("utf-8", "replace")
    if res.returncode != 0 or not phonemes.strip():
        raise RuntimeError(f"espeak-ng voice {voice!r} did not read the {locale} vocabulary: "
                           f"{res.stderr.decode('utf-8', 'replace')[-500:]}")


def espeak_pcm(espeak: str, voice: str, pitch: int, speed: int, amplitude: int, text: str) -> tuple[bytes, int]:
    """16-bit mono PCM and its sample rate, as espeak-ng speaks ``text``."""
    res = subprocess.run([espeak, "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amplitude),
                          "--stdout", " " + text if text.startswith("-") else text], capture_output=True, check=False)
    wav = res.stdout
    if res.returncode != 0 or len(wav) < 44 or wav[:4] != b"RIFF":
        raise RuntimeError(f"espeak-ng failed ({voice}, {text!r}): {res.stderr.decode('utf-8', 'replace')[-500:]}")
    fmt = wav.find(b"fmt ")
    rate = int.from_bytes(wav[fmt + 12:fmt + 16], "little")
    pcm = wav[wav.find(b"data") + 8:]
    return pcm[: len(pcm) // 2 * 2], rate


def encode_ffmpeg(ffmpeg: str, pcm: bytes, rate: int, out: Path) -> None:
    """PCM -> mp3 by the ffmpeg command (one process per clip)."""
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(rate), "-ac", "1",
           "-i", "pipe:0", "-ar", str(SAMPLE_RATE), "-ac", "1", "-c:a", "libmp3lame", "-b:a", BITRATE,
           "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact", "-threads", "1", "-y", str(out)]
    res = subprocess.run(cmd, input=pcm, capture_output=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"ffmpeg failed for {out}: {res.stderr.decode('utf-8', 'replace')[-500:]}")


def encode_torchcodec(pcm: bytes, rate: int, out: Path) -> None:
    """The same libav mp3 encoder as the ffmpeg command, in process (no start-up cost per clip)."""
    import numpy as np
    import torch
    from torchcodec.encoders import AudioEncoder

    samples = torch.from_numpy(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0)[None]
    AudioEncoder(samples, sample_rate=rate).to_file(str(out), bit_rate=int(BITRATE.rstrip("k")) * 1000,
                                                    num_channels=1, sample_rate=SAMPLE_RATE)


@functools.lru_cache(maxsize=1)
def torchcodec_encoder_available() -> bool:
    """Whether torchcodec can write our mp3 here (it may be missing, too old, or lack its ffmpeg libraries)."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "probe.mp3"
            encode_torchcodec(b"\0\0" * 2205, 22050, out)
            return out.stat().st_size > 0
    except Exception:
        return False


def synthesize(job: tuple) -> int:
    """espeak-ng -> PCM (+ leading/trailing silence) -> mp3, 48 kHz mono 64 kbit/s. Returns the duration in ms.

    ``job`` = (espeak path, ffmpeg path, encoder, voice, pitch, speed, amplitude, text, lead ms, trail ms, out).
    """
    espeak, ffmpeg, encoder, voice, pitch, speed, amplitude, text, lead_ms, trail_ms, out = job
    pcm, rate = espeak_pcm(espeak, voice, pitch, speed, amplitude, text)
    pcm = b"\0\0" * (rate * lead_ms // 1000) + pcm + b"\0\0" * (rate * trail_ms // 1000)
    if encoder == "torchcodec":
        encode_torchcodec(pcm, rate, out)
    else:
        encode_ffmpeg(ffmpeg, pcm, rate, out)
    return round(len(pcm) / 2 / rate * 1000)
