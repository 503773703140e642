"""``NORMALIZER="omnilingual"``: text written the way Meta's Omnilingual ASR models write it.

A model that keeps its own vocabulary (``VOCABULARY="model"``) must learn text in the form it was trained on, and
be scored against references in that form. Omnilingual ASR's models "are trained to output transcripts in spoken
form without any punctuation or capitalization" (facebookresearch/omnilingual-asr,
``src/omnilingual_asr/models/inference/README.md``, section 4.4 "Punctuation and Capitalization"). Its training
text went through ``text_normalize`` of ``workflows/dataprep/text_tools.py`` (commit 81f51e2), whose settings are in
``norm_config_module.py`` and ``punctuations.lst`` beside it; the data-preparation README (section 3.1) names it:
"Language-specific text normalization (punctuation, lowercase, digit-only word removal)". In order:

1. Unicode NFKC;
2. lower case (Python's ``str.lower``: Turkish ``I`` becomes ``i``, not ``ı``, as in their FLEURS preparation);
3. a bracketed part that holds a digit (a verse reference such as "(Sam 23:17)") becomes a space;
4. ``&lt;``, ``&gt;``, ``&nbsp`` removed, Arabic alef wasla ``ٱ`` written ``ا``; a curly apostrophe (’ ‘ ‛)
   between two non-space runs becomes ``'``;
5. every character of their punctuation set becomes a space: the basic marks ``. ? , : ! { } ; " < >``, curly and
   angle quotes, ¿ ¡, the Arabic, Armenian, Devanagari, CJK, Ethiopic, Khmer, Myanmar, Tibetan marks, symbols
   (``& / * % @ _ $ € £ ~ = | + − × °`` ...; not ``#``, which their list file reads as a comment), brackets, and
   a few characters that Unicode calls letters or marks (Arabic tatweel ـ, Thai ๆ, Lao ໆ, 々, the katakana
   prolonged sound mark ー, superscript ⁿ ⁱ);
6. the zero-width and direction marks, and the Arabic tashkeel (U+064B-U+0652, U+0656-U+0657), removed;
7. words made only of digits (ASCII, Bengali, Devanagari, Extended Arabic-Indic, Khmer, Myanmar, Oriya, Malayalam,
   Kayah Li, full-width, Roman numerals) removed: numbers are not spelled out, they are dropped;
8. white space collapsed.

What stays: letters and combining marks (but the tashkeel), apostrophes ``'`` and hyphens and dashes ``- – —``
(they are in none of the lists), digits inside words. Their language-specific settings (Mongolian, Hebrew, Thai,
Arabic, Javanese) are keyed by ISO 639-3 codes, while their own preparation passes two-letter codes, so the
shared settings ("*") are what their data got, and what is reproduced here.

The rules are written here as data (the code points of their lists), not imported: omnilingual-asr is a
fairseq2 training package, far too heavy a dependency for a normalizer. Checked against their ``text_normalize``
(run from that commit): the same set of characters in each list over all of Unicode, and the same output on
20,000 random strings of the first 12,500 code points with brackets, digits, apostrophes and entities mixed in.
"""

from __future__ import annotations

import re
import unicodedata

MODE = "omnilingual"
SOURCE = ("facebookresearch/omnilingual-asr: workflows/dataprep/text_tools.py (text_normalize), norm_config_module.py "
          "and punctuations.lst, commit 81f51e2; src/omnilingual_asr/models/inference/README.md section 4.4")

# Their punctuation set, as ranges of code points (both ends included), each replaced by a space.
PUNCTUATION_RANGES = (
    # the basic marks, quotes, brackets and symbols of ASCII and Latin-1
    (0x21, 0x21), (0x22, 0x22), (0x24, 0x26), (0x28, 0x2A), (0x2B, 0x2B), (0x2C, 0x2C), (0x2E, 0x2F), (0x3A, 0x3A),
    (0x3B, 0x3B), (0x3C, 0x3C), (0x3D, 0x3D), (0x3E, 0x3F), (0x40, 0x40), (0x5B, 0x5B), (0x5D, 0x5D), (0x5E, 0x5F),
    (0x7B, 0x7E), (0xA1, 0xA1), (0xA3, 0xA3), (0xA9, 0xA9), (0xAB, 0xAB), (0xAC, 0xAC), (0xAF, 0xAF), (0xB0, 0xB0),
    (0xB6, 0xB6), (0xB7, 0xB7), (0xBB, 0xBB), (0xBC, 0xBD), (0xBF, 0xBF), (0xD7, 0xD7),
    # C0/C1 controls their list names (backspace, substitute, and C1 codes that mis-decoded text holds)
    (0x08, 0x08), (0x1A, 0x1A), (0x81, 0x81), (0x8D, 0x8D), (0x8F, 0x90), (0x92, 0x94), (0x9D, 0x9D),
    # modifier letters and spacing marks: ˇ ˜
    (0x2C7, 0x2C7), (0x2DC, 0x2DC),
    # Greek question mark and ano teleia; Armenian marks; Hebrew maqaf
    (0x37E, 0x37E), (0x387, 0x387), (0x55A, 0x55F), (0x589, 0x589), (0x5BE, 0x5BE),
    # Arabic comma, semicolon, triple dot, question mark, tatweel, full stop
    (0x60C, 0x60C), (0x61B, 0x61B), (0x61E, 0x61F), (0x640, 0x640), (0x6D4, 0x6D4),
    # Devanagari danda and double danda; Bengali currency numerator four; Thai maiyamok; Lao ko la
    (0x964, 0x965), (0x9F7, 0x9F7), (0xE46, 0xE46), (0xEC6, 0xEC6),
    # Tibetan marks; Myanmar signs and symbols
    (0xF04, 0xF05), (0xF0C, 0xF0E), (0x104A, 0x104F), (0x109F, 0x109F),
    # Ethiopic wordspace and punctuation; Canadian syllabics; Khmer signs; Tifinagh separator
    (0x1361, 0x1366), (0x166D, 0x166E), (0x17D4, 0x17D7), (0x17DA, 0x17DA), (0x2D70, 0x2D70),
    # general punctuation: six-per-em space, horizontal bar, quotes, dagger, bullet, ellipsis, narrow no-break
    # space, per mille, caret, reference mark, word joiner, nominal digit shapes; superscript i and n
    (0x2006, 0x2006), (0x2015, 0x2015), (0x2018, 0x2018), (0x2019, 0x2019), (0x201A, 0x201F), (0x2020, 0x2022),
    (0x2026, 0x2027), (0x202F, 0x202F), (0x2030, 0x2030), (0x2038, 0x203A), (0x203B, 0x203B), (0x2044, 0x2044),
    (0x2060, 0x2060), (0x206F, 0x206F), (0x2071, 0x2071), (0x207F, 0x207F),
    # euro sign; vulgar fractions; arrows and mathematical signs; floors and corners; box drawing; midline ellipsis
    (0x20AC, 0x20AC), (0x2153, 0x2153), (0x215F, 0x215F), (0x2192, 0x2192), (0x2212, 0x2212), (0x226A, 0x226B),
    (0x22EF, 0x22EF), (0x230A, 0x230B), (0x231E, 0x231F), (0x2500, 0x2500),
    # CJK: enumeration comma, full stop, iteration mark, brackets and quotes; katakana middle dot and prolonged mark
    (0x3001, 0x3002), (0x3005, 0x3005), (0x3008, 0x300F), (0x3010, 0x3011), (0x3014, 0x3015), (0x30FB, 0x30FC),
    # Lisu and Kayah Li marks; ornate parentheses; small and full-width forms; replacement character
    (0xA4FE, 0xA4FF), (0xA92E, 0xA92F), (0xFD3E, 0xFD3F), (0xFE4F, 0xFE50), (0xFE55, 0xFE57), (0xFF01, 0xFF01),
    (0xFF08, 0xFF09), (0xFF0C, 0xFF0C), (0xFF0E, 0xFF0F), (0xFF1A, 0xFF1C), (0xFF1E, 0xFF1F), (0xFF3F, 0xFF3F),
    (0xFF41, 0xFF44), (0xFF5E, 0xFF5E), (0xFF65, 0xFF65), (0xFFFD, 0xFFFD),
)
# Private-use code points that their list names (symbols of legacy fonts in their sources).
PRIVATE_USE = (
    0xE003, 0xE013, 0xE01D, 0xE040, 0xE041, 0xE043, 0xE06B, 0xE06D, 0xE070, 0xE203, 0xE231, 0xE232, 0xE233, 0xE234,
    0xE236, 0xE290, 0xE291, 0xE292, 0xE293, 0xE294, 0xE295, 0xE296, 0xE2D9, 0xE2DB, 0xE2DE, 0xE2F9, 0xE2FA, 0xE2FB,
    0xE2FC, 0xE2FE, 0xE313, 0xE328, 0xE329, 0xE32A, 0xE32B, 0xE32C, 0xE32D, 0xE32E, 0xE492, 0xE493, 0xE514, 0xE516,
    0xE517, 0xE518, 0xEA01, 0xEA7B, 0xF171, 0xF172, 0xF173, 0xF218, 0xF21D, 0xF50E, 0xF50F, 0xF511, 0xF513, 0xF518,
    0xF519, 0xF521, 0xF522, 0xF523, 0xF529, 0xF52D, 0xF62D, 0xF7D0, 0xF7E8,
)
# Removed without a trace: direction and zero-width marks, the Arabic tashkeel.
DELETED_RANGES = ((0x200B, 0x200C), (0x200E, 0x200F), (0x202A, 0x202A), (0x202C, 0x202C), (0x064B, 0x0652),
                  (0x0656, 0x0657))
# Digits of the scripts whose digit-only words are removed.
DIGIT_RANGES = ((0x30, 0x39), (0x6F0, 0x6F9), (0x966, 0x96F), (0x9E6, 0x9EF), (0xB66, 0xB6F), (0xD66, 0xD6F),
                (0x1040, 0x1049), (0x17E0, 0x17E9), (0x206F, 0x206F), (0x2170, 0x2179), (0xA900, 0xA909),
                (0xFF10, 0xFF19))
# "ٱ" (alef wasla) -> "ا": their Arabic setting, which reaches every language (the Arabic config is a shallow copy
# of the shared one, so its mapping dict is the shared dict).
MAPPINGS = (("&lt;", ""), ("&gt;", ""), ("&nbsp", ""), ("\u0671", "\u0627"))
CURLY_APOSTROPHES = "\u201b\u2019\u2018"


def _class(ranges) -> str:
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


def _members(ranges) -> frozenset[str]:
    return frozenset(chr(c) for a, b in ranges for c in range(a, b + 1))


PUNCTUATION = _members(PUNCTUATION_RANGES) | frozenset(map(chr, PRIVATE_USE))
DELETED = _members(DELETED_RANGES)
DIGITS = _members(DIGIT_RANGES)
_PUNCTUATION_RE = re.compile("[" + _class(PUNCTUATION_RANGES) + "".join(re.escape(chr(c)) for c in PRIVATE_USE) + "]")
_DELETED_RE = re.compile("[" + _class(DELETED_RANGES) + "]")
_DIGIT_WORD = "[" + _class(DIGIT_RANGES) + "]+"
_DIGIT_WORDS_RE = re.compile(rf"^{_DIGIT_WORD}(?=\s)|(?<=\s){_DIGIT_WORD}(?=\s)|(?<=\s){_DIGIT_WORD}$")
_BRACKETED_NUMBER_RE = re.compile(r"\([^\)]*\d[^\)]*\)")
_INNER_APOSTROPHE_RE = re.compile(r"(\S+)[" + CURLY_APOSTROPHES + r"](\S+)")


def transform(text: str) -> str:
    """Steps 1-2: NFKC and lower case (what each character becomes before the lists decide what stays)."""
    return unicodedata.normalize("NFKC", text).lower()


def normalize(text: str) -> str:
    """``text`` as Omnilingual ASR's training text was written (the module docstring's steps)."""
    text = _BRACKETED_NUMBER_RE.sub(" ", transform(text or ""))
    for old, new in MAPPINGS:
        text = text.replace(old, new)
    text = _INNER_APOSTROPHE_RE.sub(r"\1'\2", text)
    text = _DELETED_RE.sub("", _PUNCTUATION_RE.sub(" ", text))
    text = _DIGIT_WORDS_RE.sub(" ", text)
    return " ".join(text.split())


def explain(ch: str) -> str:
    """What the Omnilingual normalization does to ``ch`` on its own."""
    low = transform(ch)
    if ch in DELETED or low in DELETED:
        return "removed (Omnilingual ASR's deletion list: zero-width, direction marks, Arabic tashkeel)"
    if ch in CURLY_APOSTROPHES:
        return "mapped to \"'\" inside words, else a space (Omnilingual ASR)"
    if ch in PUNCTUATION or (low and all(c in PUNCTUATION for c in low)):
        return "removed (Omnilingual ASR's punctuation list: a space)"
    if ch in DIGITS:
        return "kept inside words; a word of digits only is removed (Omnilingual ASR)"
    if ch.isspace():
        return "word separator"
    return "kept" if low == ch else f"mapped to {low!r} (NFKC, lower case)"
