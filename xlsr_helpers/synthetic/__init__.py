"""A synthetic speech corpus in the layout of a Common Voice release, spoken by espeak-ng.

No machine here (and no CI) reaches Common Voice or the Hugging Face Hub, so the curriculum's built-in
data is made on the spot: sentences written for this project, read aloud by espeak-ng with several
"speakers", encoded like real Common Voice clips (48 kHz mono mp3, 64 kbit/s), and described by the
same TSV files as a Common Voice 17+ release. The reader of a real release therefore reads it unchanged.

Bundled sentence sets: see :data:`BUNDLED_LANGUAGES` (data/synthetic_sentences.json). Any other language
that espeak-ng speaks gets pseudo-words built from syllables of its script, read by its voice.

The modules, in the order they depend on each other:

- ``synthesis``  espeak-ng and the mp3 encoder: tools, installed voices, one clip from text to mp3
- ``lexicon``    a language's :class:`LanguageSpec`; pseudo-lexicons from a script's syllables
- ``languages``  which languages are offered; a language code resolved to its spec
- ``sentences``  random 2-5 word sentences with the normalization work of real text
- ``plan``       sizes, speakers and splits: every row of every file, deterministic by seed
- ``layout``     the release layout: where a corpus lies, its TSV files
- ``atomic``     a corpus folder appears whole or not at all, across processes
- ``build``      :func:`make_corpus`
"""

from __future__ import annotations

from .build import make_corpus
from .languages import BUNDLED_LANGUAGES, available_languages, language_info
from .layout import CLIP_TSVS, MARKER, TSV_COLUMNS, corpus_dir, default_root
from .plan import SIZES

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
