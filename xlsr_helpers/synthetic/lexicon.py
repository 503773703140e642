"""A language's lexicon (:class:`LanguageSpec`), and pseudo-lexicons for languages without a bundled one.

A :class:`LanguageSpec` is all the sentence maker knows of a language: a closed vocabulary of about 30
words, a few special words (proper nouns, an apostrophe, a hyphen), numbers, its punctuation and quotes,
and what espeak-ng is given to read where the written form is not what it should read (pinyin for
hanzi). The bundled languages fill it from data/synthetic_sentences.json (see ``languages``); every other
language that espeak-ng speaks gets :func:`pseudo_language`: pseudo-words built from syllables of its
script, the same for every seed, checked against espeak-ng at build time.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

from .synthesis import reads_natively


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

    def spoken_vocabulary(self) -> str:
        """Every word and special word as espeak-ng is given it, in one line."""
        return " ".join(self.say.get(w, w) for w in self.words + self.specials)


# --- syllables per script ---------------------------------------------------------------------------
SCRIPT_OF = {
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
LATIN_CONSONANTS = {
    "mi": "h k m n p r t w", "haw": "h k l m n p w", "quc": "b k l m n p r s t w x",
    "ga": "b d f g l m n p r s t", "tk": "b d g k l m n p r s t",
}
NATIVE_DIGITS = {
    "devanagari": "२ ३ ५ १०", "bengali": "২ ৩ ৫ ১০", "assamese": "২ ৩ ৫ ১০", "arabic": "۲ ۳ ۵ ۱۰",
    "gurmukhi": "੨ ੩ ੫ ੧੦", "gujarati": "૨ ૩ ૫ ૧૦", "oriya": "୨ ୩ ୫ ୧୦", "thai": "๒ ๓ ๕ ๑๐",
}
ABUGIDA = {  # consonants, vowel signs ("" = inherent vowel)
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
ALPHABET = {  # consonants, vowels
    "latin": ("b d f g k l m n p r s t v", "a e i o u"),
    "cyrillic": ("б в г д з к л м н п р с т", "а о у е"),
    "greek": ("β γ δ κ λ μ ν π ρ σ τ", "α ε ι ο"),
    "armenian": ("բ գ դ զ լ մ ն պ ռ ս տ", "ա ե ի ո"),
    "georgian": ("ბ გ დ ვ ზ თ კ ლ მ ნ პ რ ს ტ", "ა ე ი ო უ"),
}
KANA = "かきくけこさしすせそたてとなにぬねのはひふへほまみむめもらりるれろ"
HANZI_YUE = "我你佢哋食飯飲水茶去嚟睇書貓狗屋學校老師朋友好大細唔係有講今日聽人山"
CASED_SCRIPTS = {"latin", "cyrillic", "greek", "armenian"}
CJK_PUNCT = {".": "。", ",": "，", "?": "？", "!": "！", ":": "：", ";": "；", "...": "……"}
SCRIPT_PUNCT = {
    "arabic": {",": "،", "?": "؟", ";": "؛"},
    "devanagari": {".": "।"}, "bengali": {".": "।"}, "assamese": {".": "।"}, "gurmukhi": {".": "।"},
    "ethiopic": {".": "።", ",": "፣"},
    "kana": {**CJK_PUNCT, ",": "、"}, "hanzi": CJK_PUNCT,
}
ETHIOPIC_ROWS = (0x1208, 0x1218, 0x1228, 0x1230, 0x1260, 0x1270, 0x1290, 0x12A8, 0x12C8, 0x12F0, 0x1308)
HANGUL_L = (0, 2, 3, 5, 6, 7, 9, 12)  # ㄱ ㄴ ㄷ ㄹ ㅁ ㅂ ㅅ ㅈ
HANGUL_V = (0, 4, 8, 13, 20)  # ㅏ ㅓ ㅗ ㅜ ㅣ


def script(voice: str) -> str:
    """The script a voice's language is written in (latin unless known otherwise)."""
    if "latn" in voice.lower():
        return "latin"
    return SCRIPT_OF.get(voice.split("-")[0].lower(), "latin")


def syllables(script: str) -> list[str]:
    """Written syllables of a script, from which pseudo-words are put together."""
    if script in ALPHABET:
        cons, vows = (s.split() for s in ALPHABET[script])
        return [c + v for c in cons for v in vows]
    if script in ABUGIDA:
        cons, signs = ABUGIDA[script]
        return [c + s for c in cons.split() for s in signs]
    if script == "ethiopic":
        return [chr(base + order) for base in ETHIOPIC_ROWS for order in range(7)]
    if script == "hangul":
        return [chr(0xAC00 + (lead * 21 + vowel) * 28) for lead in HANGUL_L for vowel in HANGUL_V]
    if script == "kana":
        return list(KANA)
    if script == "vietnamese":  # one syllable per word, with its tone mark
        return [c + v for c in "b đ h l m n t s v".split()
                for v in "a á à ả ã ạ ô ố ồ ơ ớ ờ u ú ù ư ứ ê ế i í".split()]
    raise KeyError(script)


def pseudo_language(locale: str, voice: str, check: bool = False) -> LanguageSpec:
    """Pseudo-words from the syllables of the language's script; fixed per language (not per seed).

    With ``check``, words that espeak-ng does not read in the language itself (it switches to English
    for letters it does not know) are dropped; that needs espeak-ng, so it is done at build time."""
    written = script(voice)
    base = voice.split("-")[0].lower()
    rng = random.Random(zlib.crc32(f"pseudo-{voice}".encode()))
    cased = written in CASED_SCRIPTS
    space = "" if written in ("kana", "hanzi") else " "
    if written == "hanzi":
        chars = list(HANZI_YUE)
        rng.shuffle(chars)
        words, names, compounds, apostrophes = chars[:30], ["".join(chars[30:32]), "".join(chars[32:34])], [], []
    else:
        if written == "latin" and base in LATIN_CONSONANTS:
            syl = [c + v for c in LATIN_CONSONANTS[base].split() for v in "a e i o u".split()]
        else:
            syl = syllables(written)
        seen: set[str] = set()
        lengths = (1, 1, 1) if written == "vietnamese" else (1, 2, 3)

        def word(n_syl: int) -> str:
            for _ in range(1000):
                w = "".join(rng.choice(syl) for _ in range(n_syl))
                if w not in seen:
                    seen.add(w)
                    return w
            raise RuntimeError(f"not enough syllables for pseudo-words in {locale}")

        n_words = min(60, len(syl) - 12) if written == "vietnamese" else 60
        words = [word(rng.choices(lengths, weights=(2, 5, 3))[0]) for _ in range(n_words)]
        names = [word(lengths[1]) for _ in range(6)]
        if cased:
            names = [n[0].upper() + n[1:] for n in names]
        compounds = [f"{word(lengths[1])}-{word(lengths[1])}" for _ in range(3)] if space else []
        apostrophes = [f"{word(2)}'{rng.choice(syl)}" for _ in range(2)] if written == "latin" else []
    numbers = ["2", "3", "5", "10"]
    if check:
        words = [w for w, ok in zip(words, reads_natively(voice, words)) if ok]
        names = [w for w, ok in zip(names, reads_natively(voice, names)) if ok]
        compounds = [w for w, ok in zip(compounds, reads_natively(voice, compounds)) if ok]
        apostrophes = [w for w, ok in zip(apostrophes, reads_natively(voice, apostrophes)) if ok]
        numbers = [n for n, ok in zip(numbers, reads_natively(voice, numbers)) if ok]
        if not numbers and written in NATIVE_DIGITS:
            native = NATIVE_DIGITS[written].split()
            numbers = [n for n, ok in zip(native, reads_natively(voice, native)) if ok]
        if len(words) < 10:
            raise RuntimeError(f"espeak-ng voice {voice!r} reads too few pseudo-words of {locale} itself; "
                               f"this language is not supported by the synthetic corpus")
    words = words[:30]
    specials = names[:3] + compounds[:1] + apostrophes[:1]
    punct = dict(SCRIPT_PUNCT.get(written, {}))
    said, end = words[0], punct.get(".", ".")
    sep = "" if space == "" else " "
    templates = [
        {"text": f'"{{q}}"{sep}{said}{end}', "say": f"{{q}} {said}."},
        {"text": (f"「{{q}}」{said}{end}" if written in ("kana", "hanzi") else f"“{{q}}”{sep}{said}{end}"),
         "say": f"{{q}} {said}."},
    ]
    return LanguageSpec(
        locale=locale, name=f"{locale} (espeak-ng pseudo-words)", voice=voice, bundled=False, words=words,
        specials=specials, numbers=numbers, cased=cased, space=space, punct=punct,
        quote_templates=templates,
    )
