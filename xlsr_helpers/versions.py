"""Which versions go together: the torch -> torchcodec table (the Colab install cell and `.ci/lowest`) and
the lock of known-good versions, ``xlsr_helpers/data/constraints.txt`` (CI installs it; the install cell
installs some of its pins).

torchcodec is compiled against one torch release, and its wheels declare no torch requirement: pip happily
installs a torchcodec that cannot load with the torch already there (Colab's). So the install cell asks
this module for the torchcodec release line built for the installed torch and installs that.

Standard library only, and no torch import: the install cell uses it before the package's dependencies are
installed.

    python -m xlsr_helpers.versions                  # the torchcodec requirement for the installed torch
    python -m xlsr_helpers.versions --torch 2.11.0+cu128
"""

from __future__ import annotations

import re
import sys
import warnings
from importlib.resources import files

# torch minor -> (oldest, newest) torchcodec minor built for it and usable here (torchcodec>=0.9: audio_checks.py
# reads AudioStreamMetadata.duration_seconds and begin_stream_seconds, new in 0.9; 0.8, also built for 2.9, lacks
# them). Sources: the "Compatibility with torch
# versions" table of torchcodec's README as shipped in its wheels' METADATA (torchcodec 0.17.0's for 0.1-0.16:
# 0.3-0.5 -> 2.7, 0.6-0.7 -> 2.8, 0.8-0.9 -> 2.9, 0.10 -> 2.10, 0.11 -> 2.11, 0.12-0.16 -> ">=2.11"); 0.17 is
# not in any README yet (each README lists the releases before its own): it is the pair this repository's
# .venv runs its tests with (torch 2.14.1, torchcodec 0.17.0), and 0.17 is taken to keep 0.12-0.16's
# ">=2.11". torchcodec's wheels declare no torch requirement (Requires-Dist: only dev extras).
# Older torch is not listed: its torchcodec releases (0.0.3-0.7, torch 2.4-2.8) are older than 0.9.
# Add a row when a torch minor comes out (tests/test_versions.py says when).
TORCHCODEC_FOR_TORCH: dict[str, tuple[str, str]] = {
    "2.9": ("0.9", "0.9"),
    "2.10": ("0.10", "0.10"),
    "2.11": ("0.11", "0.17"),
    "2.12": ("0.12", "0.17"),
    "2.13": ("0.12", "0.17"),
    "2.14": ("0.12", "0.17"),
}

# CPU builds of torchcodec (README: "CPU-only installation"). The audio is decoded on the CPU, and a CPU build
# links only libtorch, so it loads with any CUDA variant of the same torch (Colab's "+cu126"), whereas the
# default Linux wheels on PyPI link one CUDA runtime (torchcodec 0.11, 0.16 and 0.17: libcudart.so.13).
TORCHCODEC_INDEX = "https://download.pytorch.org/whl/cpu"
COMPATIBILITY_URL = "https://github.com/meta-pytorch/torchcodec#installing-torchcodec"


# The lock: the known-good set that CI tests (.ci/setup installs the package with it as pip constraints).
LOCK_FILE = "constraints.txt"  # in xlsr_helpers/data/, shipped in the package


class UnknownTorchVersion(ValueError):
    """A torch release that the table has no torchcodec for."""


class NewerTorchWarning(UserWarning):
    """A torch newer than the table: its newest row is used."""


def _key(minor: str) -> tuple[int, ...]:
    return tuple(int(part) for part in minor.split("."))


def torch_minor(version: str) -> str:
    """'2.11.0+cu128' -> '2.11' (the local label, a pre-release or dev suffix is ignored)."""
    match = re.match(r"\s*v?(\d+)\.(\d+)", version)
    if not match:
        raise UnknownTorchVersion(f"not a torch version: {version!r}")
    return f"{int(match.group(1))}.{int(match.group(2))}"


def _next_minor(minor: str) -> str:
    major, rest = minor.split(".")
    return f"{major}.{int(rest) + 1}"


def known_torch() -> list[str]:
    """The torch minors the table covers, oldest first."""
    return sorted(TORCHCODEC_FOR_TORCH, key=_key)


def torchcodec_range(torch_version: str, newer: str = "stop") -> tuple[str, str]:
    """(oldest, newest) torchcodec minor built for this torch; UnknownTorchVersion when the table has none.
    ``newer="warn"``: a torch newer than the table gives its newest row, with a NewerTorchWarning (the Colab
    install cell: a new Colab image must not stop every notebook; `.ci/lowest` keeps "stop")."""
    minor = torch_minor(torch_version)
    if minor in TORCHCODEC_FOR_TORCH:
        return TORCHCODEC_FOR_TORCH[minor]
    known = known_torch()
    if newer == "warn" and _key(minor) > _key(known[-1]):
        oldest, newest = TORCHCODEC_FOR_TORCH[known[-1]]
        warnings.warn(f"torch {torch_version} is newer than this package's table in xlsr_helpers/versions.py "
                      f"(newest: {known[-1]}): using its newest row, torchcodec {oldest}-{newest}. If torchcodec "
                      f"fails to load, install the one built for torch {minor} ({COMPATIBILITY_URL}).",
                      NewerTorchWarning, stacklevel=3)
        return oldest, newest
    if _key(minor) < _key(known[0]):
        why = (f"older than the oldest this package supports ({known[0]}: it needs torchcodec>=0.9, "
               f"built for torch 2.9); upgrade torch and torchaudio")
    else:
        why = (f"newer than this package's table in xlsr_helpers/versions.py; add a row from torchcodec's "
               f"compatibility table ({COMPATIBILITY_URL}), or install the matching torchcodec yourself")
    raise UnknownTorchVersion(f"no torchcodec is known for torch {torch_version} ({minor}): it is {why}. "
                              f"Known torch versions: {', '.join(known)}.")


def torchcodec_requirement(torch_version: str | None = None, newer: str = "stop") -> str:
    """The pip requirement of the torchcodec release line built for ``torch_version`` (default: the installed
    torch, read from its metadata without importing it): '2.11.0+cu128' -> 'torchcodec>=0.11,<0.18'.
    ``newer``: what a torch newer than the table does, as in torchcodec_range."""
    if torch_version is None:
        torch_version = installed_torch()
    oldest, newest = torchcodec_range(torch_version, newer)
    if oldest == newest:
        return f"torchcodec=={oldest}.*"
    return f"torchcodec>={oldest},<{_next_minor(newest)}"


def installed_torch() -> str:
    """The installed torch's version (from its metadata: importing torch takes seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        raise UnknownTorchVersion("torch is not installed") from None


def normalized(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503): 'huggingface_hub' -> 'huggingface-hub'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions() -> dict[str, str]:
    """The lock's pins, normalized name -> version ('transformers' -> '5.25.0')."""
    text = (files("xlsr_helpers") / "data" / LOCK_FILE).read_text(encoding="utf-8")
    pins = {}
    for line in text.splitlines():
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*(\S+?)\s*(#.*)?", line)
        if match:
            pins[normalized(match.group(1))] = match.group(2)
    return pins


def lowest_pins(requirements: list[str]) -> list[str]:
    """The lowest-bounds set of a list of requirements: each ``name>=X`` becomes ``name==X`` (other
    requirements are kept as they are), and torch's and torchcodec's lower bounds must be a pair of the table.
    ``.ci/lowest`` installs this set to test the bounds that pyproject.toml declares."""
    pins, lowest = [], {}
    for requirement in requirements:
        spec = requirement.split(";")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", spec)
        if match:
            name, bound = match.groups()
            lowest[normalized(name)] = bound
            pins.append(f"{name}=={bound}")
        else:
            pins.append(spec)
    if "torch" in lowest and "torchcodec" in lowest:
        oldest, newest = torchcodec_range(lowest["torch"])
        codec = torch_minor(lowest["torchcodec"])
        if not _key(oldest) <= _key(codec) <= _key(newest):
            raise UnknownTorchVersion(f"the lower bounds torch>={lowest['torch']} and torchcodec>={lowest['torchcodec']} "
                                      f"are no pair: torch {torch_minor(lowest['torch'])} goes with torchcodec "
                                      f"{oldest}-{newest}")
    return pins


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m xlsr_helpers.versions", description=(
        "Print the pip requirement of the torchcodec built for a torch version (default: the installed one). "
        f"Install it with: pip install --no-deps --index-url {TORCHCODEC_INDEX} \"<requirement>\""))
    parser.add_argument("--torch", help="a torch version, e.g. 2.11.0+cu128 (default: the installed torch)")
    args = parser.parse_args(argv)
    try:
        print(torchcodec_requirement(args.torch))
    except UnknownTorchVersion as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
