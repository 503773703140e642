"""Writes ``alphabets.json`` (beside this file) from Unicode CLDR's exemplar characters.

Source: the npm package ``cldr-misc-full`` (the JSON form of CLDR), whose
``main/<locale>/characters.json`` holds, per locale, ``exemplarCharacters`` (the letters of the language)
and ``auxiliary`` (letters of loanwords and foreign names) as UnicodeSet strings such as
``[a b {cʼh} eê \\- \\u200C]``. To regenerate (developers only; nothing at run time needs npm)::

    cd /tmp && npm pack cldr-misc-full && tar xzf cldr-misc-full-*.tgz
    python -m xlsr_helpers.data.make_alphabets /tmp/package

Which locales: every plain language (``ca``, ``uk``), and script or variant locales that differ from
their language (``sr-Latn``, ``uz-Cyrl``, ``zh-Hant``); no regional ones (``fr-CA``), and none without main
letters (``und``, the root locale, and a few others). The data is under the Unicode License v3, whose notice is copied into the JSON file.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from xlsr_helpers.alphabets import DATA_FILE as OUTPUT, ITEM_SEPARATOR

# language, then an optional script (Latn) and/or variant (tarask, polyton); a region subtag excludes
PLAIN_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-[a-z0-9]{5,8})?$")
SETS = {"main": "exemplarCharacters", "auxiliary": "auxiliary"}


def parse_unicode_set(text: str) -> list[str]:
    """The items of a CLDR exemplar set, in order: single characters and ``{multi-character}`` clusters.

    The subset of UnicodeSet syntax that CLDR's exemplar sets use: ``[...]`` around space-separated runs
    of characters (each character an item), ``{...}`` clusters, ranges ``a-z``, and escapes ``\\-``,
    ``\\{``, ``\\\\``, ``\\uXXXX``, ``\\UXXXXXXXX``, ``\\x{X...}``. Anything else (set operations,
    properties such as ``[:Latin:]``) raises ValueError rather than being misread.
    """
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise ValueError(f"not a UnicodeSet: {text!r}")
    body = text[1:-1]
    items: list[str] = []
    i = 0

    def read_char(i: int) -> tuple[str, int]:
        """The (possibly escaped) character at body[i] and the index after it."""
        if body[i] != "\\":
            return body[i], i + 1
        if i + 1 >= len(body):
            raise ValueError(f"dangling backslash in {text!r}")
        kind = body[i + 1]
        if kind == "u":
            return chr(int(body[i + 2:i + 6], 16)), i + 6
        if kind == "U":
            return chr(int(body[i + 2:i + 10], 16)), i + 10
        if kind == "x" and body[i + 2:i + 3] == "{":
            end = body.index("}", i)
            return chr(int(body[i + 3:end], 16)), end + 1
        return kind, i + 2

    while i < len(body):
        ch = body[i]
        if ch.isspace():
            i += 1
        elif ch == "{":
            cluster = ""
            i += 1
            while i < len(body) and body[i] != "}":
                char, i = read_char(i)
                cluster += char
            if i >= len(body):
                raise ValueError(f"unclosed {{ in {text!r}")
            items.append(cluster)
            i += 1
        elif ch in "[]$^&":
            raise ValueError(f"UnicodeSet syntax beyond exemplar sets ({ch!r}) in {text!r}")
        elif ch == "-" and items and len(items[-1]) == 1 and i + 1 < len(body) and not body[i + 1].isspace():
            last, i = read_char(i + 1)  # a range: the previous item up to this character
            first = items.pop()
            if ord(last) < ord(first):
                raise ValueError(f"range {first}-{last} backwards in {text!r}")
            items.extend(chr(c) for c in range(ord(first), ord(last) + 1))
        else:
            char, i = read_char(i)
            items.append(char)
    return list(dict.fromkeys(items))


def read_cldr(package_dir: Path) -> tuple[dict[str, dict[str, list[str]]], str, str]:
    """({locale: {"main": [...], "auxiliary": [...]}}, CLDR version, license text) of a cldr-misc-full folder."""
    package = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
    license_text = (package_dir / "LICENSE").read_text(encoding="utf-8").strip()
    locales: dict[str, dict[str, list[str]]] = {}
    for path in sorted((package_dir / "main").glob("*/characters.json")):
        locale = path.parent.name
        if not PLAIN_LOCALE.match(locale):
            continue
        characters = json.loads(path.read_text(encoding="utf-8"))["main"][locale]["characters"]
        sets = {key: parse_unicode_set(characters.get(field, "[]")) for key, field in SETS.items()}
        if sets["main"]:  # und (root) and a few locales have no letters: no alphabet rather than an empty one
            locales[locale] = sets
    for locale in list(locales):  # sr-Cyrl is sr: keep a script/variant locale only where it differs
        base = locale.split("-")[0]
        if locale != base and locales.get(base) == locales[locale]:
            del locales[locale]
    return locales, str(package["cldrVersion"]), license_text


def write_alphabets(package_dir: Path, output: Path = OUTPUT) -> Path:
    locales, version, license_text = read_cldr(package_dir)
    header = {
        "source": f"Unicode CLDR {version}, main/<locale>/characters.json of the npm package cldr-misc-full: "
                  "exemplarCharacters (main) and auxiliary",
        "cldr_version": version,
        "license": "Unicode-3.0",
        "license_text": license_text,
        "generator": "python -m xlsr_helpers.data.make_alphabets <cldr-misc-full folder>",
        "format": f"per locale, main and auxiliary items joined by {ITEM_SEPARATOR!r}; "
                  "an item of several characters is a cluster (a letter written with several characters)",
    }
    lines = ["{"] + [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in header.items()]
    lines.append('  "locales": {')
    rows = [f"    {json.dumps(locale)}: "
            + json.dumps({key: ITEM_SEPARATOR.join(items) for key, items in sets.items()}, ensure_ascii=False)
            for locale, sets in locales.items()]
    lines.append(",\n".join(rows))
    lines += ["  }", "}"]
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")  # one locale per line: readable diffs
    json.loads(output.read_text(encoding="utf-8"))  # what was written parses
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package_dir", type=Path, help="the unpacked cldr-misc-full package (has main/, LICENSE)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    path = write_alphabets(args.package_dir, args.output)
    data = json.loads(path.read_text(encoding="utf-8"))
    print(f"{path}: {len(data['locales'])} locales, CLDR {data['cldr_version']}, {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
