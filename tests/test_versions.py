"""The torch -> torchcodec table of xlsr_helpers.versions: it covers every torch the package allows, names
the installed pair, and stops with a clear message on a torch it does not know."""

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from xlsr_helpers import versions

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def lower_bound(name: str) -> Version:
    (bound,) = [Requirement(r).specifier for r in PROJECT["dependencies"] if Requirement(r).name == name]
    (spec,) = [s for s in bound if s.operator == ">="]
    return Version(spec.version)


def minors(first: Version, last: Version) -> list[str]:
    assert first.major == last.major == 2, "a torch 3 needs a new rule here"
    return [f"2.{m}" for m in range(first.minor, last.minor + 1)]


def installed(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not installed")


def test_table_covers_every_torch_from_the_lower_bound_to_the_newest():
    """No gap from pyproject's torch bound to the newest row, and the installed torch is not newer than the
    table (a new torch release needs a row: this test is the reminder)."""
    newest = max(Version(m) for m in versions.TORCHCODEC_FOR_TORCH)
    try:
        newest = max(newest, Version(versions.torch_minor(importlib.metadata.version("torch"))))
    except importlib.metadata.PackageNotFoundError:
        pass
    expected = minors(lower_bound("torch"), newest)
    assert versions.known_torch() == expected, f"the table must have exactly the torch minors {expected}"
    for minor in expected:
        Requirement(versions.torchcodec_requirement(minor))  # a valid pip requirement for each


def test_rows_are_ranges_that_only_move_forward():
    previous = (Version("0"), Version("0"))
    for minor in versions.known_torch():
        oldest, newest = (Version(v) for v in versions.TORCHCODEC_FOR_TORCH[minor])
        assert oldest <= newest, minor
        assert oldest >= previous[0] and newest >= previous[1], f"torch {minor}: torchcodec went back"
        previous = (oldest, newest)


def test_lower_bounds_of_torch_torchaudio_torchcodec_are_a_pair():
    """What `.ci/lowest` installs: torch, torchaudio (tied to torch's release) and torchcodec at their bounds."""
    torch = lower_bound("torch")
    assert versions.torch_minor(str(lower_bound("torchaudio"))) == versions.torch_minor(str(torch))
    oldest, newest = versions.torchcodec_range(str(torch))
    assert Version(oldest) <= lower_bound("torchcodec") <= Version(newest)
    pins = versions.lowest_pins(PROJECT["dependencies"])
    assert f"torch=={torch}" in pins and f"torchcodec=={lower_bound('torchcodec')}" in pins
    assert not [p for p in pins if ">=" in p], pins


def test_lowest_pins_refuse_bounds_that_are_no_pair():
    with pytest.raises(versions.UnknownTorchVersion, match=r"torch>=2\.10 and torchcodec>=0\.9 are no pair"):
        versions.lowest_pins(["torch>=2.10", "torchcodec>=0.9"])
    with pytest.raises(versions.UnknownTorchVersion, match="older than the oldest"):
        versions.lowest_pins(["torch>=2.4", "torchcodec>=0.4"])
    assert versions.lowest_pins(["pyyaml>=6.0  ", "torch>=2.12", "torchcodec>=0.14", "x<2; python_version<'3.11'"]) == [
        "pyyaml==6.0", "torch==2.12", "torchcodec==0.14", "x<2"]


def test_installed_torch_goes_with_the_installed_torchcodec():
    torch, torchcodec = installed("torch"), installed("torchcodec")
    requirement = Requirement(versions.torchcodec_requirement())
    assert requirement.specifier.contains(torchcodec, prereleases=True), (
        f"torch {torch} needs {requirement}; installed: torchcodec {torchcodec}")


@pytest.mark.parametrize("version, minor", [
    ("2.11.0+cu128", "2.11"), ("2.10.1", "2.10"), ("2.12.0a0+git1a2b3c", "2.12"), ("2.9.0+cpu", "2.9"),
    ("2.14.1+cu130", "2.14"), ("2.13", "2.13"), ("v2.8.0+cu126", "2.8")])
def test_local_and_prerelease_versions_parse(version, minor):
    assert versions.torch_minor(version) == minor
    if minor in versions.TORCHCODEC_FOR_TORCH:
        assert versions.torchcodec_requirement(version) == versions.torchcodec_requirement(minor)


def test_requirement_strings():
    assert versions.torchcodec_requirement("2.11.0+cu128") == "torchcodec>=0.11,<0.18"
    assert versions.torchcodec_requirement("2.10.0") == "torchcodec==0.10.*"
    spec = Requirement(versions.torchcodec_requirement("2.11.0+cu128")).specifier
    assert spec.contains("0.17.0+cpu") and spec.contains("0.11.0") and not spec.contains("0.18.0")
    assert not spec.contains("0.10.1")


@pytest.mark.parametrize("version, why", [
    ("2.8.0+cu126", "older than the oldest this package supports"),
    ("9.1.0", "newer than this package's table"),
    ("not-a-version", "not a torch version")])
def test_unknown_torch_is_a_clear_error(version, why):
    with pytest.raises(versions.UnknownTorchVersion) as error:
        versions.torchcodec_requirement(version)
    assert why in str(error.value)
    if why != "not a torch version":
        assert f"Known torch versions: {', '.join(versions.known_torch())}." in str(error.value)


def test_cli_prints_the_requirement_and_fails_clearly():
    """`python -m xlsr_helpers.versions`, in a process that may not import torch (the install cell runs it
    before torchcodec works)."""
    code = ("import sys; sys.modules['torch'] = sys.modules['torchcodec'] = None\n"
            "from xlsr_helpers.versions import main; sys.exit(main(sys.argv[1:]))")
    run = lambda *args: subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,  # noqa: E731
                                       cwd=ROOT, timeout=60)
    done = run("--torch", "2.11.0+cu128")
    assert done.returncode == 0 and done.stdout == "torchcodec>=0.11,<0.18\n", done
    failed = run("--torch", "3.0.0")
    assert failed.returncode == 2 and failed.stdout == ""
    assert re.search(r"error: no torchcodec is known for torch 3\.0\.0 \(3\.0\)", failed.stderr), failed.stderr
    default = run()
    assert default.returncode == 0, default.stderr
    assert Requirement(default.stdout.strip()).name == "torchcodec"


def test_a_torch_newer_than_the_table_warns_and_takes_the_newest_row_where_asked():
    """The Colab install cell (newer="warn"): a new Colab image must not stop every notebook. `.ci/lowest`
    and the command line keep stopping; an older torch stops either way."""
    newest = versions.known_torch()[-1]
    with pytest.warns(versions.NewerTorchWarning, match=rf"torch 2\.99\.0\+cu126 is newer .*newest: {newest}"):
        assert versions.torchcodec_requirement("2.99.0+cu126", newer="warn") == versions.torchcodec_requirement(newest)
    with pytest.raises(versions.UnknownTorchVersion, match="newer than this package's table"):
        versions.torchcodec_requirement("2.99.0")
    with pytest.raises(versions.UnknownTorchVersion, match="older than the oldest"):
        versions.torchcodec_requirement("2.8.0", newer="warn")


def test_the_lock_is_read_from_the_package():
    """locked_versions(): the pins of xlsr_helpers/data/constraints.txt by normalized name, comments skipped."""
    locked = versions.locked_versions()
    text = (ROOT / "xlsr_helpers" / "data" / versions.LOCK_FILE).read_text()
    assert len(locked) == len([line for line in text.splitlines() if "==" in line and not line.startswith("#")])
    assert re.fullmatch(r"\d+(\.\d+)+", locked["transformers"]) and "huggingface-hub" in locked
    assert versions.normalized("Huggingface_Hub") == versions.normalized("huggingface.hub") == "huggingface-hub"
