"""A synthetic speech corpus in the layout of a Common Voice release, spoken by espeak-ng.

No machine here (and no CI) reaches Common Voice or the Hugging Face Hub, so the curriculum's built-in
data is made on the spot: sentences written for this project, read aloud by espeak-ng with several
"speakers", encoded like real Common Voice clips (48 kHz mono mp3, 64 kbit/s), and described by the
same TSV files as a Common Voice 17+ release. The reader of a real release therefore reads it unchanged::

    <root>/<size>-seed<seed>/cv-synthetic/<locale>/
        clips/common_voice_<locale>_<n>.mp3
        train.tsv dev.tsv test.tsv validated.tsv other.tsv invalidated.tsv   (CV 17+ header, unquoted)
        clip_durations.tsv                                                    (clip, duration[ms])
        validated_sentences.tsv unvalidated_sentences.tsv reported.tsv
        .xlsr-synthetic.json                                                  (build record, written last)

What it mimics of real Common Voice:

- A speaker is a fixed (espeak-ng voice variant, pitch, speed) triple with its own ``client_id``
  (128 hex characters, as in real releases). Speakers are disjoint across train/dev/test, and so are
  sentences (no sentence of test is in train or dev).
- ``validated.tsv`` holds every train/dev/test row plus re-recordings of sentences that are already in a
  split (also of dev and test sentences), made by train speakers: Common Voice keeps one recording per
  sentence in its splits, and the rest only in validated. Adding "validated minus test" to training
  without a sentence-level leakage guard therefore leaks test sentences, exactly as with a real release.
- ``other.tsv`` (not yet validated) and ``invalidated.tsv`` (voted down) come from two extra speakers;
  an invalidated clip does not say its sentence (that is why it was voted down).
- Rows end in a tab (empty ``segment``), ``age``/``gender`` are often empty, ``gender`` uses the 17+
  values (``male_masculine``), some sentences start with a straight double quote.

Learnability comes first: every language has a closed vocabulary of about 30 common words, read in
random sentences of 2-5 words (about 600 such training utterances let a 0.5M-parameter CTC model learn
in minutes on a CPU). Text normalization still has real work to do: sentence-initial capitals and proper
nouns (Turkish İ and I), punctuation, apostrophes (straight and typographic), hyphens, quotes, rare
digits, and spelling variants that are spoken alike (Russian ё/е, Arabic harakat, Hindi nukta forms).

Bundled sentence sets: see :data:`BUNDLED_LANGUAGES` (data/synthetic_sentences.json). Any other language
that espeak-ng speaks gets pseudo-words built from syllables of its script, read by its voice.
Mandarin is read from pinyin by espeak-ng's ``cmn-latn-pinyin`` voice: this espeak-ng's ``cmn`` voice
turns most hanzi into pinyin with tone digits and then reads those as English ("men five").
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import time
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

__all__ = [
    "SIZES",
    "BUNDLED_LANGUAGES",
    "TSV_COLUMNS",
    "CLIP_TSVS",
    "MARKER",
    "make_corpus",
    "corpus_dir",
    "available_languages",
    "language_info",
    "default_root",
]

# Counts per named size. ``speakers`` = (train, dev, test, other+invalidated).
# ``validated_extra`` = re-recordings in validated.tsv only; ``other``/``invalidated`` = rows of those files.
SIZES: dict[str, dict] = {
    "tiny": dict(train=40, dev=12, test=12, validated_extra=6, other=6, invalidated=4, speakers=(4, 2, 2, 2)),
    "demo": dict(train=600, dev=100, test=100, validated_extra=40, other=40, invalidated=20, speakers=(8, 2, 2, 2)),
    "small": dict(train=2400, dev=300, test=300, validated_extra=100, other=100, invalidated=50,
                  speakers=(16, 4, 4, 2)),
}

# Common Voice 17.0+ clip TSV header (bundler TSV_COLUMNS).
TSV_COLUMNS = ("client_id", "path", "sentence_id", "sentence", "sentence_domain", "up_votes", "down_votes",
               "age", "gender", "accents", "variant", "locale", "segment")
CLIP_TSVS = ("train", "dev", "test", "validated", "other", "invalidated")
MARKER = ".xlsr-synthetic.json"
VERSION = 1  # bump when the generator changes: cached corpora of another version are rebuilt

SAMPLE_RATE = 48_000
BITRATE = "64k"
# espeak-ng voice variants used as speakers ("tr+m3"): male and female ones of the default synthesizer.
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
AGES = ("", "", "teens", "twenties", "twenties", "thirties", "thirties", "fourties", "fifties", "sixties")

_DATA_FILE = "synthetic_sentences.json"

# Common Voice locale -> espeak-ng language, where the codes differ (others are used as they are).
CV_TO_ESPEAK = {
    "en": "en-us", "zh-HK": "yue", "sv-SE": "sv", "hy-AM": "hy", "ga-IE": "ga", "pa-IN": "pa",
    "ne-NP": "ne", "nb-NO": "nb", "kmr": "ku", "es-419": "es-419",
}
# espeak-ng languages not offered: no reading of their script (chr), or constructed languages of fiction.
# espeak-ng languages not offered: no usable reading of their script (chr, my), Hakka's romanisation
# (hak), constructed languages of fiction; cmn is offered as the bundled zh-CN.
_ESPEAK_SKIP = {"chr", "my", "hak", "piqd", "qya", "sjn", "py", "qdb", "cmn", "cmn-latn-pinyin"}

# --- pseudo-word fallback: syllables per script ------------------------------------------------------
_SCRIPT_OF = {
    **dict.fromkeys("ba be bg cv kk ky mk nog ru sr tt uk".split(), "cyrillic"),
    **dict.fromkeys("el grc".split(), "greek"),
    **dict.fromkeys("ar fa sd ug ur".split(), "arabic"),
    "he": "hebrew",
    **dict.fromkeys("hy hyw".split(), "armenian"),
    "ka": "georgian",
    **dict.fromkeys("hi kok mr ne".split(), "devanagari"),
    **dict.fromkeys("bn bpy".split(), "bengali"),
    "as": "assamese",
    "pa": "gurmukhi", "gu": "gujarati", "or": "oriya", "ta": "tamil", "te": "telugu", "kn": "kannada",
    "ml": "malayalam", "si": "sinhala", "th": "thai", "shn": "shan", "am": "ethiopic",
    "ko": "hangul", "ja": "kana", "yue": "hanzi", "vi": "vietnamese",
}
# Latin letters of languages whose espeak-ng voice reads other letters as English (mi, quc, ga, tk, haw).
_LATIN_CONSONANTS = {
    "mi": "h k m n p r t w", "haw": "h k l m n p w", "quc": "b k l m n p r s t w x",
    "ga": "b d f g l m n p r s t", "tk": "b d g k l m n p r s t",
}
_NATIVE_DIGITS = {
    "devanagari": "२ ३ ५ १०", "bengali": "২ ৩ ৫ ১০", "assamese": "২ ৩ ৫ ১০", "arabic": "۲ ۳ ۵ ۱۰",
    "gurmukhi": "੨ ੩ ੫ ੧੦", "gujarati": "૨ ૩ ૫ ૧૦", "oriya": "୨ ୩ ୫ ୧୦", "thai": "๒ ๓ ๕ ๑๐",
}
_ABUGIDA = {  # consonants, vowel signs ("" = inherent vowel)
    "devanagari": ("क ग ज त द न प ब म र ल स", ["", "ा", "ि", "ी", "ु", "े", "ो"]),
    "bengali": ("ক গ জ ত দ ন প ব ম র ল স", ["", "া", "ি", "ী", "ু", "ে", "ো"]),
    "assamese": ("ক গ জ ত দ ন প ব ম ল স", ["", "া", "ি", "ী", "ু", "ে", "ো"]),
    "gurmukhi": ("ਕ ਗ ਜ ਤ ਦ ਨ ਪ ਬ ਮ ਰ ਲ ਸ", ["", "ਾ", "ਿ", "ੀ", "ੁ", "ੇ", "ੋ"]),
    "gujarati": ("ક ગ જ ત દ ન પ બ મ ર લ સ", ["", "ા", "િ", "ી", "ુ", "ે", "ો"]),
    "oriya": ("କ ଗ ଜ ତ ଦ ନ ପ ବ ମ ର ଲ ସ", ["", "ା", "ି", "ୀ", "ୁ", "େ", "ୋ"]),
    "tamil": ("க ச த ந ப ம ய ர ல வ", ["", "ா", "ி", "ு", "ெ"]),
    "telugu": ("క గ జ త ద న ప బ మ ర ల స", ["", "ా", "ి", "ీ", "ు", "ె", "ొ"]),
    "kannada": ("ಕ ಗ ಜ ತ ದ ನ ಪ ಬ ಮ ರ ಲ ಸ", ["", "ಾ", "ಿ", "ೀ", "ು", "ೆ", "ೊ"]),
    "malayalam": ("ക ഗ ജ ത ദ ന പ ബ മ ര ല സ", ["", "ാ", "ി", "ീ", "ു", "െ", "ൊ"]),
    "sinhala": ("ක ග ජ ත ද න ප බ ම ර ල ස", ["", "ා", "ි", "ී", "ු", "ෙ"]),
    "thai": ("ก ด ต บ ป ม น ร ล ส", ["า", "ี", "ู", "ะ"]),
    "shan": ("ၵ ၶ တ ထ ပ မ ၼ လ သ ၸ", ["ႃ", "ီ", "ူ", ""]),
    "arabic": ("ب د ل م ن ر س ت", ["ا", "و", ""]),
    "hebrew": ("ב ד ל מ נ ר ס ת ק", ["ו", "י", ""]),
}
_ALPHABET = {  # consonants, vowels
    "latin": ("b d f g k l m n p r s t v", "a e i o u"),
    "cyrillic": ("б в г д з к л м н п р с т", "а о у е"),
    "greek": ("β γ δ κ λ μ ν π ρ σ τ", "α ε ι ο"),
    "armenian": ("բ գ դ զ լ մ ն պ ռ ս տ", "ա ե ի ո"),
    "georgian": ("ბ გ დ ვ ზ თ კ ლ მ ნ პ რ ს ტ", "ა ე ი ო უ"),
}
_KANA = "かきくけこさしすせそたてとなにぬねのはひふへほまみむめもらりるれろ"
_HANZI_YUE = "我你佢哋食飯飲水茶去嚟睇書貓狗屋學校老師朋友好大細唔係有講今日聽人山"
_CASED_SCRIPTS = {"latin", "cyrillic", "greek", "armenian"}
_CJK_PUNCT = {".": "。", ",": "，", "?": "？", "!": "！", ":": "：", ";": "；", "...": "……"}
_SCRIPT_PUNCT = {
    "arabic": {",": "،", "?": "؟", ";": "؛"},
    "devanagari": {".": "।"}, "bengali": {".": "।"}, "assamese": {".": "।"}, "gurmukhi": {".": "।"},
    "ethiopic": {".": "።", ",": "፣"},
    "kana": {**_CJK_PUNCT, ",": "、"}, "hanzi": _CJK_PUNCT,
}
_ETHIOPIC_ROWS = (0x1208, 0x1218, 0x1228, 0x1230, 0x1260, 0x1270, 0x1290, 0x12A8, 0x12C8, 0x12F0, 0x1308)
_HANGUL_L = (0, 2, 3, 5, 6, 7, 9, 12)  # ㄱ ㄴ ㄷ ㄹ ㅁ ㅂ ㅅ ㅈ
_HANGUL_V = (0, 4, 8, 13, 20)  # ㅏ ㅓ ㅗ ㅜ ㅣ


# ------------------------------------------------------------------------------------------------------
# languages
# ------------------------------------------------------------------------------------------------------
@dataclass
class LanguageSpec:
    """What the generator needs to know about one language."""

    locale: str  # Common Voice locale code, used in file names (zh-CN)
    name: str
    voice: str  # espeak-ng voice (language) name
    bundled: bool  # True: sentences written for the project; False: pseudo-words
    words: list[str]
    specials: list[str]
    numbers: list[str]
    cased: bool = True
    space: str = " "
    variants: dict[str, list[str]] = field(default_factory=dict)
    say: dict[str, str] = field(default_factory=dict)
    punct: dict[str, str] = field(default_factory=dict)
    open: dict[str, str] = field(default_factory=dict)
    space_before: dict[str, float] = field(default_factory=dict)
    nbsp: float = 0.0
    quote_templates: list[dict[str, str]] = field(default_factory=list)

    def mark(self, m: str) -> str:
        """The written form of an ASCII punctuation mark in this language."""
        return self.punct.get(m, m)


@functools.lru_cache(maxsize=1)
def _bundled_data() -> dict:
    text = resources.files("xlsr_helpers").joinpath("data").joinpath(_DATA_FILE).read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


BUNDLED_LANGUAGES: tuple[str, ...] = tuple(sorted(_bundled_data()))


@functools.lru_cache(maxsize=1)
def _espeak_languages() -> tuple[str, ...]:
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


def _espeak_version() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return ""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip().splitlines()[0] if out.strip() else ""


def _fallback_languages() -> dict[str, str]:
    """Common Voice-style code -> espeak-ng language, for languages without a bundled sentence set."""
    espeak = set(_espeak_languages())
    bundled_lower = {b.lower() for b in BUNDLED_LANGUAGES}
    out = {}
    for code in sorted(espeak):
        if "-" in code or code in _ESPEAK_SKIP or code.lower() in bundled_lower:
            continue
        out[code] = code
    for cv, es in CV_TO_ESPEAK.items():
        if es in espeak and cv.lower() not in bundled_lower:
            out[cv] = es
    return out


def available_languages() -> list[str]:
    """Every language ``make_corpus`` accepts: the bundled sentence sets, then (if espeak-ng is
    installed) every other espeak-ng language, as Common Voice-style codes. Any espeak-ng language
    code (``en-gb``, ``pt-br``) is accepted too, although only codes without a region are listed."""
    return sorted(set(BUNDLED_LANGUAGES) | set(_fallback_languages()), key=str.lower)


def _unknown_language(language: str) -> ValueError:
    fallback = sorted(_fallback_languages(), key=str.lower)
    msg = (f"Unknown language {language!r} for the synthetic corpus. "
           f"Bundled sentence sets: {', '.join(BUNDLED_LANGUAGES)}. ")
    if fallback:
        msg += f"Other languages spoken by espeak-ng (pseudo-words): {', '.join(fallback)}."
    else:
        msg += "espeak-ng is not installed, so no other language is available (apt-get install espeak-ng)."
    return ValueError(msg)


def _resolve(language: str, check: bool = False) -> LanguageSpec:
    if not isinstance(language, str) or not language.strip():
        raise _unknown_language(str(language))
    lang = language.strip()
    low = lang.lower()
    bundled = {b.lower(): b for b in BUNDLED_LANGUAGES}
    if low in ("cmn", "zh"):
        low = "zh-cn"
    if low in bundled:
        locale = bundled[low]
        d = _bundled_data()[locale]
        return LanguageSpec(
            locale=locale, name=d["name"], voice=d["voice"], bundled=True, words=list(d["words"]),
            specials=list(d["specials"]), numbers=list(d["numbers"]), cased=d.get("cased", True),
            space=d.get("space", " "), variants=dict(d.get("variants", {})), say=dict(d.get("say", {})),
            punct=dict(d.get("punct", {})), open=dict(d.get("open", {})),
            space_before=dict(d.get("space_before", {})), nbsp=float(d.get("nbsp", 0.0)),
            quote_templates=list(d["quote_templates"]),
        )
    espeak = {c.lower(): c for c in _espeak_languages()}
    fallback = {c.lower(): (c, v) for c, v in _fallback_languages().items()}
    if low in fallback:
        locale, voice = fallback[low]
    elif low in espeak and espeak[low] not in _ESPEAK_SKIP and espeak[low].split("-")[0] not in _ESPEAK_SKIP:
        locale = voice = espeak[low]
    else:
        raise _unknown_language(language)
    return _pseudo_language(locale, voice, check=check)


def _script(voice: str) -> str:
    if "latn" in voice.lower():
        return "latin"
    return _SCRIPT_OF.get(voice.split("-")[0].lower(), "latin")


def _syllables(script: str) -> list[str]:
    if script in _ALPHABET:
        cons, vows = (s.split() for s in _ALPHABET[script])
        return [c + v for c in cons for v in vows]
    if script in _ABUGIDA:
        cons, signs = _ABUGIDA[script]
        return [c + s for c in cons.split() for s in signs]
    if script == "ethiopic":
        return [chr(base + order) for base in _ETHIOPIC_ROWS for order in range(7)]
    if script == "hangul":
        return [chr(0xAC00 + (lead * 21 + vowel) * 28) for lead in _HANGUL_L for vowel in _HANGUL_V]
    if script == "kana":
        return list(_KANA)
    if script == "vietnamese":  # one syllable per word, with its tone mark
        return [c + v for c in "b đ h l m n t s v".split()
                for v in "a á à ả ã ạ ô ố ồ ơ ớ ờ u ú ù ư ứ ê ế i í".split()]
    raise KeyError(script)


def _reads_natively(voice: str, texts: list[str]) -> list[bool]:
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

    with ThreadPoolExecutor(max_workers=_workers(None) * 2) as pool:
        return list(pool.map(check, texts))


def _pseudo_language(locale: str, voice: str, check: bool = False) -> LanguageSpec:
    """Pseudo-words from the syllables of the language's script; fixed per language (not per seed).

    With ``check``, words that espeak-ng does not read in the language itself (it switches to English
    for letters it does not know) are dropped; that needs espeak-ng, so it is done at build time."""
    script = _script(voice)
    base = voice.split("-")[0].lower()
    rng = random.Random(zlib.crc32(f"pseudo-{voice}".encode()))
    cased = script in _CASED_SCRIPTS
    space = "" if script in ("kana", "hanzi") else " "
    if script == "hanzi":
        chars = list(_HANZI_YUE)
        rng.shuffle(chars)
        words, names, compounds, apostrophes = chars[:30], ["".join(chars[30:32]), "".join(chars[32:34])], [], []
    else:
        if script == "latin" and base in _LATIN_CONSONANTS:
            syl = [c + v for c in _LATIN_CONSONANTS[base].split() for v in "a e i o u".split()]
        else:
            syl = _syllables(script)
        seen: set[str] = set()
        lengths = (1, 1, 1) if script == "vietnamese" else (1, 2, 3)

        def word(n_syl: int) -> str:
            for _ in range(1000):
                w = "".join(rng.choice(syl) for _ in range(n_syl))
                if w not in seen:
                    seen.add(w)
                    return w
            raise RuntimeError(f"not enough syllables for pseudo-words in {locale}")

        n_words = min(60, len(syl) - 12) if script == "vietnamese" else 60
        words = [word(rng.choices(lengths, weights=(2, 5, 3))[0]) for _ in range(n_words)]
        names = [word(lengths[1]) for _ in range(6)]
        if cased:
            names = [n[0].upper() + n[1:] for n in names]
        compounds = [f"{word(lengths[1])}-{word(lengths[1])}" for _ in range(3)] if space else []
        apostrophes = [f"{word(2)}'{rng.choice(syl)}" for _ in range(2)] if script == "latin" else []
    numbers = ["2", "3", "5", "10"]
    if check:
        words = [w for w, ok in zip(words, _reads_natively(voice, words)) if ok]
        names = [w for w, ok in zip(names, _reads_natively(voice, names)) if ok]
        compounds = [w for w, ok in zip(compounds, _reads_natively(voice, compounds)) if ok]
        apostrophes = [w for w, ok in zip(apostrophes, _reads_natively(voice, apostrophes)) if ok]
        numbers = [n for n, ok in zip(numbers, _reads_natively(voice, numbers)) if ok]
        if not numbers and script in _NATIVE_DIGITS:
            native = _NATIVE_DIGITS[script].split()
            numbers = [n for n, ok in zip(native, _reads_natively(voice, native)) if ok]
        if len(words) < 10:
            raise RuntimeError(f"espeak-ng voice {voice!r} reads too few pseudo-words of {locale} itself; "
                               f"this language is not supported by the synthetic corpus")
    words = words[:30]
    specials = names[:3] + compounds[:1] + apostrophes[:1]
    punct = dict(_SCRIPT_PUNCT.get(script, {}))
    said, end = words[0], punct.get(".", ".")
    sep = "" if space == "" else " "
    templates = [
        {"text": f'"{{q}}"{sep}{said}{end}', "say": f"{{q}} {said}."},
        {"text": (f"「{{q}}」{said}{end}" if script in ("kana", "hanzi") else f"“{{q}}”{sep}{said}{end}"),
         "say": f"{{q}} {said}."},
    ]
    return LanguageSpec(
        locale=locale, name=f"{locale} (espeak-ng pseudo-words)", voice=voice, bundled=False, words=words,
        specials=specials, numbers=numbers, cased=cased, space=space, punct=punct,
        quote_templates=templates,
    )


def language_info(language: str) -> dict:
    """The resolved language: locale, espeak-ng voice, whether sentences are bundled, the vocabulary
    (for pseudo-word languages as built: checked against espeak-ng, which takes a moment)."""
    s = _resolve(language, check=True)
    return dict(locale=s.locale, name=s.name, voice=s.voice, bundled=s.bundled, words=list(s.words),
                specials=list(s.specials), numbers=list(s.numbers))


# ------------------------------------------------------------------------------------------------------
# sentences
# ------------------------------------------------------------------------------------------------------
def _lower(s: str, locale: str) -> str:
    if locale in ("tr", "az"):
        s = s.replace("I", "ı").replace("İ", "i")
    return s.lower()


def _capitalize(s: str, spec: LanguageSpec) -> str:
    if not spec.cased or not s or not s[0].isalpha():
        return s
    first = s[0]
    if spec.locale in ("tr", "az"):
        up = {"i": "İ", "ı": "I"}.get(first, first.upper())
    else:
        up = first.upper()
    return (up if len(up) == 1 else first) + s[1:]


class _SentenceMaker:
    """Random sentences of 2-5 words from the closed vocabulary; every sentence is new (by key)."""

    P_SPECIAL = 0.3  # one proper noun / apostrophe / hyphen word
    P_NUMBER = 0.03  # one number written in digits
    P_QUOTE = 0.15  # quoted speech; two thirds of those start with a straight double quote
    P_VARIANT = 0.3  # spelling variant of a word that has one
    P_TYPO_APOSTROPHE = 0.25  # ’ instead of '

    def __init__(self, spec: LanguageSpec, rng: random.Random):
        self.spec, self.rng = spec, rng
        self.used: set[tuple[str, ...]] = set()

    def _surface(self, w: str) -> str:
        rng = self.rng
        v = self.spec.variants.get(w)
        if v and rng.random() < self.P_VARIANT:
            w = rng.choice(v)
        if "'" in w and rng.random() < self.P_TYPO_APOSTROPHE:
            w = w.replace("'", "’")
        return w

    def _say(self, w: str) -> str:
        return self.spec.say.get(w, w)

    def _words(self, n: int) -> list[str]:
        rng, spec = self.rng, self.spec
        words = [rng.choice(spec.words) for _ in range(n)]
        if spec.specials and rng.random() < self.P_SPECIAL:
            words[rng.randrange(n)] = rng.choice(spec.specials)
        if spec.numbers and rng.random() < self.P_NUMBER:
            words[rng.randrange(n)] = rng.choice(spec.numbers)
        return words

    def _attach(self, text: str, mark: str) -> str:
        """Append a punctuation mark, with the language's space before it where that is the custom."""
        spec, rng = self.spec, self.rng
        p = spec.space_before.get(mark, 0.0)
        if p and rng.random() < p:
            text += "\u00a0" if rng.random() < spec.nbsp else " "
        return text + spec.mark(mark)

    def _clause(self, words: list[str], end: str) -> tuple[str, str]:
        """Written and spoken form of a word list with inner punctuation and an end mark."""
        spec, rng = self.spec, self.rng
        text, say = "", ""
        n = len(words)
        for i, w in enumerate(words):
            surface = self._surface(w)
            if i == 0:
                surface = _capitalize(surface, spec)
            text += (spec.space if i else "") + surface
            say += (" " if i else "") + self._say(w)
            if 0 < i < n - 1:
                r = rng.random()
                mark = "," if r < 0.10 else ":" if r < 0.12 else ";" if r < 0.14 else ""
                if mark:
                    text = self._attach(text, mark)
                    say += ","
        if end:
            if end in spec.open:
                text = spec.open[end] + text
            text = self._attach(text, end)
            say += "." if end == "..." else end
        return text, say

    def new(self) -> tuple[str, str]:
        """A new (written sentence, text given to espeak-ng) pair."""
        rng = self.rng
        for _ in range(10_000):
            words = self._words(rng.randint(2, 5))
            key = tuple(_lower(w, self.spec.locale) for w in words)
            if key in self.used:
                continue
            self.used.add(key)
            if self.spec.quote_templates and rng.random() < self.P_QUOTE:
                inner_end = rng.choices(["!", "?", ",", ""], weights=(3, 2, 2, 1))[0]
                q_text, q_say = self._clause(words, inner_end)
                tpls = self.spec.quote_templates
                tpl = rng.choices(tpls, weights=[2] + [1] * (len(tpls) - 1))[0]
                return tpl["text"].replace("{q}", q_text), tpl["say"].replace("{q}", q_say.rstrip(","))
            end = rng.choices([".", "?", "!", "", "..."], weights=(55, 15, 12, 13, 5))[0]
            return self._clause(words, end)
        raise RuntimeError(f"could not make enough distinct sentences for {self.spec.locale}")


# ------------------------------------------------------------------------------------------------------
# plan: speakers, rows, clips (pure Python, deterministic by seed)
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Speaker:
    client_id: str
    variant: str
    pitch: int
    speed: int
    amplitude: int
    age: str
    gender: str


@dataclass
class _Clip:
    path: str
    speaker: int
    sentence: str
    spoken: str
    up_votes: int
    down_votes: int
    lead_ms: int
    trail_ms: int


def _speakers(rng: random.Random, counts: tuple[int, int, int, int]) -> list[list[_Speaker]]:
    """Speakers of train, dev, test and the extras (other/invalidated); all (variant, pitch, speed) differ.

    Dev and test speakers use voice variants that train also uses (with their own pitch and speed), so
    that a small model can generalise to them."""
    n_train, n_dev, n_test, n_extra = counts
    used: set[tuple[str, int, int]] = set()

    def make(variant: str) -> _Speaker:
        while True:
            pitch, speed = rng.randint(25, 75), rng.randint(135, 180)
            if (variant, pitch, speed) not in used:
                used.add((variant, pitch, speed))
                break
        gender = "" if rng.random() < 0.25 else ("female_feminine" if variant.startswith("f") else "male_masculine")
        return _Speaker(client_id=f"{rng.getrandbits(512):0128x}", variant=variant, pitch=pitch, speed=speed,
                        amplitude=rng.randint(70, 130), age=rng.choice(AGES), gender=gender)

    pool = list(VARIANTS)
    rng.shuffle(pool)
    train_variants = [pool[i % len(pool)] for i in range(n_train)]
    train = [make(v) for v in train_variants]
    dev = [make(rng.choice(train_variants)) for _ in range(n_dev)]
    test = [make(rng.choice(train_variants)) for _ in range(n_test)]
    extra = [make(rng.choice(pool)) for _ in range(n_extra)]
    return [train, dev, test, extra]


def _assign(rng: random.Random, n_rows: int, n_speakers: int) -> list[int]:
    """Speaker index per row: everyone speaks at least once, some more than others (as in CV)."""
    if n_speakers <= 0:
        raise ValueError("a split with rows needs at least one speaker")
    weights = [rng.uniform(0.5, 1.5) for _ in range(n_speakers)]
    order = list(range(min(n_rows, n_speakers))) + rng.choices(range(n_speakers), weights=weights,
                                                               k=max(0, n_rows - n_speakers))
    rng.shuffle(order)
    return order


def _plan(spec: LanguageSpec, counts: dict, seed: int):
    rng = random.Random(f"xlsr-synthetic|v{VERSION}|{spec.locale}|{seed}|{json.dumps(counts, sort_keys=True)}")
    groups = _speakers(rng, tuple(counts["speakers"]))
    speakers: list[_Speaker] = [s for g in groups for s in g]
    offsets = [0, len(groups[0]), len(groups[0]) + len(groups[1]), len(groups[0]) + len(groups[1]) + len(groups[2])]
    maker = _SentenceMaker(spec, rng)
    n_total = sum(counts[k] for k in ("train", "dev", "test", "validated_extra", "other", "invalidated"))
    numbers = rng.sample(range(10_000_000, 45_000_000), n_total)
    number_iter = iter(numbers)

    def clip(speaker: int, sentence: str, spoken: str, up: int, down: int) -> _Clip:
        return _Clip(path=f"common_voice_{spec.locale}_{next(number_iter)}.mp3", speaker=speaker,
                     sentence=sentence, spoken=spoken, up_votes=up, down_votes=down,
                     lead_ms=rng.randint(150, 600), trail_ms=rng.randint(200, 700))

    def votes_valid() -> tuple[int, int]:
        up = rng.choice((2, 2, 2, 3, 3, 4))
        return up, (1 if rng.random() < 0.15 else 0)

    rows: dict[str, list[_Clip]] = {}
    for gi, split in enumerate(("train", "dev", "test")):
        who = _assign(rng, counts[split], len(groups[gi]))
        rows[split] = []
        for s in who:
            text, say = maker.new()
            rows[split].append(clip(offsets[gi] + s, text, say, *votes_valid()))

    # validated only: re-recordings of split sentences by train speakers (half train, a quarter each dev/test)
    extra = []
    n_extra = counts["validated_extra"]
    sources = (["train"] * (n_extra - 2 * (n_extra // 4)) + ["dev"] * (n_extra // 4) + ["test"] * (n_extra // 4))
    recorded = {(c.speaker, c.sentence) for split in ("train", "dev", "test") for c in rows[split]}
    for split in sources:
        if not rows[split]:
            continue
        orig = rng.choice(rows[split])
        choices = [i for i in range(len(groups[0])) if (i, orig.sentence) not in recorded]
        if not choices:  # every train speaker has read it already: nobody reads a sentence twice
            continue
        who = rng.choice(choices)
        recorded.add((who, orig.sentence))
        extra.append(clip(who, orig.sentence, orig.spoken, *votes_valid()))

    # other.tsv and invalidated.tsv: the extra speakers (or, without any, the first train speaker)
    def extra_speaker() -> int:
        return offsets[3] + rng.randrange(len(groups[3])) if groups[3] else 0

    rows["other"] = []
    for _ in range(counts["other"]):  # not validated yet: fewer than 2 up-votes, not voted down
        text, say = maker.new()
        up = rng.choice((0, 0, 1))
        rows["other"].append(clip(extra_speaker(), text, say, up, 0))
    rows["invalidated"] = []
    for _ in range(counts["invalidated"]):
        text, _say = maker.new()
        _other_text, other_say = maker.new()  # the clip says something else: that is why it was voted down
        s = extra_speaker()
        up = rng.choice((0, 0, 1))
        rows["invalidated"].append(clip(s, text, other_say, up, up + rng.choice((2, 2, 3))))
    validated = rows["train"] + rows["dev"] + rows["test"] + extra
    rng.shuffle(validated)
    rows["validated"] = validated
    for split in ("train", "dev", "test", "other", "invalidated"):
        rng.shuffle(rows[split])
    unvalidated = [maker.new()[0] for _ in range(max(2, counts["other"] // 10))]
    reported = [rng.choice(rows["train"]).sentence] if rows["train"] else []
    return speakers, rows, unvalidated, reported


# ------------------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------------------
def _sentence_id(sentence: str) -> str:
    return hashlib.sha256(sentence.encode("utf-8")).hexdigest()


def _clean(value: str) -> str:
    if "\t" in value or "\n" in value or "\r" in value:
        raise ValueError(f"field contains a tab or line break: {value!r}")
    return value


def _write_tsv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    """Unquoted, tab-separated, \\n line ends: exactly how Common Voice writes its TSVs."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(_clean(str(v)) for v in row) + "\n")


def _clip_row(c: _Clip, speakers: list[_Speaker], locale: str) -> tuple:
    s = speakers[c.speaker]
    return (s.client_id, c.path, _sentence_id(c.sentence), c.sentence, "", c.up_votes, c.down_votes,
            s.age, s.gender, "", "", locale, "")


def _require_tools() -> dict[str, str]:
    tools = {name: shutil.which(name) for name in ("espeak-ng", "ffmpeg")}
    missing = [n for n, p in tools.items() if p is None]
    if missing:
        raise RuntimeError(
            f"The synthetic corpus needs {' and '.join(missing)}, which is not installed. Install it with "
            f"`sudo apt-get install {' '.join(missing)}` (Debian/Ubuntu, Colab), "
            f"`conda install -c conda-forge {' '.join(missing)}`, or `brew install {' '.join(missing)}`.")
    return tools  # type: ignore[return-value]


def _check_voice(spec: LanguageSpec, espeak: str) -> None:
    """The voice must exist and read the vocabulary itself (no switch to another language)."""
    base = spec.voice
    if base not in _espeak_languages() and base.split("+")[0] not in _espeak_languages():
        raise RuntimeError(f"espeak-ng has no voice {spec.voice!r} for {spec.locale}; "
                           f"installed: {', '.join(_espeak_languages())}")
    text = " ".join(spec.say.get(w, w) for w in spec.words + spec.specials)
    res = subprocess.run([espeak, "-q", "-x", "-v", spec.voice, "--stdin"], input=text.encode("utf-8"),
                         capture_output=True, check=False)
    phonemes = res.stdout.decode("utf-8", "replace")
    if res.returncode != 0 or not phonemes.strip():
        raise RuntimeError(f"espeak-ng voice {spec.voice!r} did not read the {spec.locale} vocabulary: "
                           f"{res.stderr.decode('utf-8', 'replace')[-500:]}")


def _espeak_pcm(espeak: str, voice: str, pitch: int, speed: int, amplitude: int, text: str) -> tuple[bytes, int]:
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


def _encode_ffmpeg(ffmpeg: str, pcm: bytes, rate: int, out: Path) -> None:
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(rate), "-ac", "1",
           "-i", "pipe:0", "-ar", str(SAMPLE_RATE), "-ac", "1", "-c:a", "libmp3lame", "-b:a", BITRATE,
           "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact", "-threads", "1", "-y", str(out)]
    res = subprocess.run(cmd, input=pcm, capture_output=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"ffmpeg failed for {out}: {res.stderr.decode('utf-8', 'replace')[-500:]}")


def _encode_torchcodec(pcm: bytes, rate: int, out: Path) -> None:
    """The same libav mp3 encoder as the ffmpeg command, in process (no start-up cost per clip)."""
    import numpy as np
    import torch
    from torchcodec.encoders import AudioEncoder

    samples = torch.from_numpy(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0)[None]
    AudioEncoder(samples, sample_rate=rate).to_file(str(out), bit_rate=int(BITRATE.rstrip("k")) * 1000,
                                                    num_channels=1, sample_rate=SAMPLE_RATE)


@functools.lru_cache(maxsize=1)
def _torchcodec_encoder_available() -> bool:
    """Whether torchcodec can write our mp3 here (it may be missing, too old, or lack its ffmpeg libraries)."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "probe.mp3"
            _encode_torchcodec(b"\0\0" * 2205, 22050, out)
            return out.stat().st_size > 0
    except Exception:
        return False


def _synthesize(job: tuple) -> int:
    """espeak-ng -> PCM (+ leading/trailing silence) -> mp3, 48 kHz mono 64 kbit/s. Returns the duration in ms."""
    espeak, ffmpeg, encoder, voice, pitch, speed, amplitude, text, lead_ms, trail_ms, out = job
    pcm, rate = _espeak_pcm(espeak, voice, pitch, speed, amplitude, text)
    pcm = b"\0\0" * (rate * lead_ms // 1000) + pcm + b"\0\0" * (rate * trail_ms // 1000)
    if encoder == "torchcodec":
        _encode_torchcodec(pcm, rate, out)
    else:
        _encode_ffmpeg(ffmpeg, pcm, rate, out)
    return round(len(pcm) / 2 / rate * 1000)


def default_root() -> Path:
    """``$XLSR_CACHE/synthetic``, else ``~/.cache/xlsr-curriculum/synthetic``."""
    cache = os.environ.get("XLSR_CACHE")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache" / "xlsr-curriculum"
    return base / "synthetic"


def _counts(size: str) -> dict:
    if size not in SIZES:
        raise ValueError(f"Unknown synthetic corpus size {size!r}; choose one of {', '.join(SIZES)}.")
    c = dict(SIZES[size])
    c["speakers"] = list(c["speakers"])
    for k in ("train", "dev", "test", "validated_extra", "other", "invalidated"):
        c.setdefault(k, 0)
    return c


def corpus_dir(language: str = "tr", size: str = "tiny", seed: int = 0, root: str | Path | None = None) -> Path:
    """Where :func:`make_corpus` puts (or has put) this corpus; builds nothing."""
    spec = _resolve(language)
    _counts(size)
    base = Path(root).expanduser() if root is not None else default_root()
    return base / f"{size}-seed{int(seed)}" / "cv-synthetic" / spec.locale


def _is_complete(folder: Path, expected: dict) -> bool:
    try:
        record = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all(record.get(k) == v for k, v in expected.items())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _workers(workers: int | None) -> int:
    if workers:
        return max(1, int(workers))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


def make_corpus(language: str = "tr", size: str = "tiny", seed: int = 0, root: str | Path | None = None,
                progress: bool = True, *, workers: int | None = None, encoder: str | None = None) -> Path:
    """Build (or reuse) a synthetic corpus in Common Voice layout and return its ``<root>/.../<locale>`` folder.

    language: a bundled sentence set (:data:`BUNDLED_LANGUAGES`, default ``tr``) or any other language of
        the installed espeak-ng (pseudo-words); see :func:`available_languages`.
    size: a key of :data:`SIZES` (``tiny`` for tests, ``demo`` for ``make demo``, ``small``).
    seed: the same seed gives the same TSVs, byte for byte; another seed gives other speakers and sentences.
    root: cache folder (default :func:`default_root`); the corpus lands in
        ``<root>/<size>-seed<seed>/cv-synthetic/<locale>``.
    progress: show a progress bar over the clips.
    workers: parallel synthesis jobs (default: the CPU cores available).
    encoder: "torchcodec" (libav's mp3 encoder in process; the default when torchcodec can encode) or
        "ffmpeg" (the ffmpeg command, one process per clip: slower). Both give 48 kHz mono 64 kbit/s mp3
        and the same TSVs.

    A finished corpus carries a build record (:data:`MARKER`), written last; a second call returns at
    once. The corpus is built in a temporary sibling folder and renamed into place when complete, so an
    interrupted build is never half-used: it is built again by the next call.
    """
    spec = _resolve(language)
    counts = _counts(size)
    final = corpus_dir(spec.locale, size, seed, root)
    expected = dict(version=VERSION, locale=spec.locale, voice=spec.voice, size=size, seed=int(seed), counts=counts)
    if _is_complete(final, expected):
        return final

    tools = _require_tools()
    if encoder is None:
        encoder = "torchcodec" if _torchcodec_encoder_available() else "ffmpeg"
    if encoder not in ("torchcodec", "ffmpeg"):
        raise ValueError(f"encoder must be 'torchcodec' or 'ffmpeg', not {encoder!r}")
    if not spec.bundled:
        spec = _resolve(language, check=True)
    _check_voice(spec, tools["espeak-ng"])
    t0 = time.perf_counter()
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.glob(f".{spec.locale}.tmp-*"):  # left by a killed build
        try:
            pid = int(stale.name.rsplit("-", 2)[-2])
        except ValueError:
            continue
        if not _pid_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = parent / f".{spec.locale}.tmp-{os.getpid()}-{time.time_ns()}"
    try:
        _build(spec, counts, int(seed), tmp, tools, encoder, progress, _workers(workers))
        record = dict(expected, name=spec.name, bundled=spec.bundled, espeak_ng=_espeak_version(), encoder=encoder,
                      build_seconds=round(time.perf_counter() - t0, 2),
                      rows={f: sum(1 for _ in open(tmp / f"{f}.tsv", encoding="utf-8")) - 1 for f in CLIP_TSVS})
        (tmp / MARKER).write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        if final.exists():
            if _is_complete(final, expected):  # another process finished first
                return final
            shutil.rmtree(final)
        try:
            os.rename(tmp, final)
        except OSError:
            if _is_complete(final, expected):
                return final
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _build(spec: LanguageSpec, counts: dict, seed: int, out: Path, tools: dict, encoder: str, progress: bool,
           workers: int):
    speakers, rows, unvalidated, reported = _plan(spec, counts, seed)
    clips_dir = out / "clips"
    clips_dir.mkdir(parents=True)
    for name in CLIP_TSVS:
        _write_tsv(out / f"{name}.tsv", TSV_COLUMNS, [_clip_row(c, speakers, spec.locale) for c in rows[name]])

    # every clip once (validated repeats train/dev/test rows)
    clips: dict[str, _Clip] = {}
    for name in ("validated", "other", "invalidated"):
        for c in rows[name]:
            clips[c.path] = c
    counts_per_sentence: dict[str, int] = {}
    for c in clips.values():
        counts_per_sentence[c.sentence] = counts_per_sentence.get(c.sentence, 0) + 1
    _write_tsv(out / "validated_sentences.tsv",
               ("sentence_id", "sentence", "sentence_domain", "source", "is_used", "clips_count"),
               [(_sentence_id(s), s, "", "xlsr-synthetic", 1, n) for s, n in counts_per_sentence.items()]
               + [(_sentence_id(s), s, "", "xlsr-synthetic", 0, 0) for s in unvalidated[: len(unvalidated) // 2]])
    _write_tsv(out / "unvalidated_sentences.tsv", ("sentence_id", "sentence", "sentence_domain", "source"),
               [(_sentence_id(s), s, "", "xlsr-synthetic") for s in unvalidated[len(unvalidated) // 2:]])
    _write_tsv(out / "reported.tsv", ("sentence_id", "sentence", "locale", "reason"),
               [(_sentence_id(s), s, spec.locale, "grammar-or-spelling") for s in reported])

    jobs = []
    for c in clips.values():
        s = speakers[c.speaker]
        jobs.append((tools["espeak-ng"], tools["ffmpeg"], encoder, f"{spec.voice}+{s.variant}", s.pitch, s.speed,
                     s.amplitude, c.spoken, c.lead_ms, c.trail_ms, clips_dir / c.path))
    durations: dict[str, int] = {}
    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_synthesize, job): job[-1].name for job in jobs}
        try:
            bar = tqdm(as_completed(futures), total=len(futures), disable=not progress, unit="clip",
                       desc=f"synthetic {spec.locale} corpus")
            for fut in bar:
                durations[futures[fut]] = fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    _write_tsv(out / "clip_durations.tsv", ("clip", "duration[ms]"),
               [(p, durations[p]) for p in sorted(durations)])
