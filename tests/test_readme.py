"""The README's claims about the test suite stay true: the command CI runs, the tiers that exist, and no figure
for how long a tier takes (such figures went stale with every change and machine; the closing notes of the issues
give the measured ones, with the machine they were measured on)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the README's ``## title`` section, up to the next ``## `` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def test_the_tests_section_gives_no_durations():
    tests = section("Tests")
    durations = re.findall(r"\b\d+(?:[.,–-]\d+)?\s*(?:s|sec|seconds?|min|minutes?|h|hours?)\b", tests)
    assert not durations, f"README's Tests section states durations {durations}: they go stale; give them in notes"


def test_ci_runs_the_readmes_test_command():
    assert "make test" in section("The two commands")
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_tier_the_readme_names_is_a_marker_and_a_make_target():
    markers = {line.split(":")[0].strip() for line in
               tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]}
    makefile = (ROOT / "Makefile").read_text()
    tests = section("Tests")
    for tier in ("notebooks", "slow", "browser", "colab"):
        assert tier in markers and f"test-{tier}:" in makefile and f"make test-{tier}" in tests
    assert "test-unit:" in makefile and "test-lowest:" in makefile and "test-newest:" in makefile
