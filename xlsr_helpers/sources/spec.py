"""``DATA_SOURCE``, one source or several joined with ``+``, read into rows.

- ``synthetic``             the espeak-ng corpus of :mod:`xlsr_helpers.synthetic` (Common Voice layout)
- ``common_voice:<dir>``    an extracted Common Voice release of any version (:mod:`.common_voice`)
- ``hub:<dataset id>``      any ``datasets.load_dataset`` path with an audio and a text column (:mod:`.hub`)
- ``audiofolder:<dir>``     audio files + ``metadata.csv`` (:mod:`.audiofolder`)
- ``mdc:<dataset id>``      a Common Voice release from the Mozilla Data Collective, downloaded, verified and
                            extracted to local disk (:mod:`.mdc`), then read as ``common_voice:<that folder>``

Every row gets its leakage key (:func:`xlsr_helpers.leakage.sentence_key`) here, once.
"""

from __future__ import annotations

from ..config import Config
from ..leakage import sentence_keys
from .audiofolder import read_audiofolder
from .common_voice import cv_splits, read_common_voice
from .hub import read_hub
from .rows import SourceRows


def parse_sources(data_source: str) -> list[tuple[str, str, str]]:
    """``DATA_SOURCE`` -> [(spec, kind, argument)]."""
    parts = [p.strip() for p in data_source.split("+") if p.strip()]
    if not parts:
        raise ValueError("DATA_SOURCE is empty")
    out = []
    for part in parts:
        kind, _, arg = part.partition(":")
        kind = kind.strip().lower()
        if kind == "synthetic" and not arg:
            out.append((part, kind, ""))
        elif kind in ("common_voice", "hub", "audiofolder", "mdc") and arg.strip():
            out.append((part, kind, arg.strip()))
        else:
            raise ValueError(f"DATA_SOURCE part {part!r} is not one of: synthetic, common_voice:<dir>, "
                             "hub:<dataset id>, audiofolder:<dir>, mdc:<dataset id>")
    return out


def read_sources(cfg: Config) -> list[SourceRows]:
    """The rows of every source of ``DATA_SOURCE``, each with its :func:`~xlsr_helpers.leakage.sentence_key`."""
    sources = []
    for spec, kind, arg in parse_sources(cfg.data_source):
        if kind == "synthetic":
            sources.append(read_synthetic(cfg, spec))
        elif kind == "common_voice":
            sources.append(read_common_voice(arg, cfg.language, spec, cv_splits(cfg)))
        elif kind == "hub":
            sources.append(read_hub(arg, spec, cfg))
        elif kind == "mdc":
            sources.append(read_mdc(arg, spec, cfg))
        else:
            sources.append(read_audiofolder(arg, spec, cfg))
    for source in sources:
        for row, key in zip(source.rows, sentence_keys([row.sentence for row in source.rows])):
            row.key = key
    return sources


def read_synthetic(cfg: Config, spec: str) -> SourceRows:
    """The built-in corpus of LANGUAGE (built once, then reused), read as the Common Voice release it is."""
    from ..synthetic import make_corpus  # lazy: espeak-ng is only needed for this source

    folder = make_corpus(cfg.language, cfg.synthetic_size, seed=0)
    out = read_common_voice(folder, cfg.language, spec, cv_splits(cfg))
    out.kind = "synthetic"
    out.info["size"] = cfg.synthetic_size
    return out


def read_mdc(dataset_id: str, spec: str, cfg: Config) -> SourceRows:
    """A Common Voice release of the Mozilla Data Collective: downloaded once to local disk (or reused), then read
    as the release folder it is; the dataset's id, name and release go into step 01's report."""
    from .mdc import prepare_mdc  # lazy: the Collective's client is imported only for this source

    dataset = prepare_mdc(dataset_id, sample=cfg.mdc_sample)
    out = read_common_voice(dataset.folder, cfg.language, spec, cv_splits(cfg))
    out.kind = "mdc"
    out.info["mdc"] = dataset.to_json()
    return out
