"""Step 01's readers: each source of ``DATA_SOURCE`` -> rows with their split (no filter, no decoding).

- :mod:`.spec`          the ``DATA_SOURCE`` string (``synthetic``, ``common_voice:<dir>``, ``hub:<id>``,
                        ``audiofolder:<dir>``, joined with ``+``) and :func:`read_sources`
- :mod:`.common_voice`  an extracted Common Voice release (TSVs parsed by header name); also the synthetic corpus
- :mod:`.hub`           a Hub dataset with an audio and a text column
- :mod:`.audiofolder`   audio files + ``metadata.csv``
- :mod:`.mdc`           the Mozilla Data Collective: a release downloaded with its client, verified, extracted
- :mod:`.rows`          :class:`Row` and :class:`SourceRows`, what every reader yields

What happens to the rows (filters, audio checks, the leakage guard, saving) is :mod:`xlsr_helpers.load`'s.
"""

from .audiofolder import read_audiofolder
from .common_voice import find_cv_folder, read_clip_durations, read_common_voice, read_cv_tsv
from .hub import read_hub
from .rows import Row, SourceRows
from .spec import parse_sources, read_mdc, read_sources, read_synthetic

__all__ = ["Row", "SourceRows", "find_cv_folder", "parse_sources", "read_audiofolder", "read_clip_durations",
           "read_common_voice", "read_cv_tsv", "read_hub", "read_mdc", "read_sources", "read_synthetic"]
