"""The config of a step: a notebook's parameters, on top of what the earlier steps saved in run.json, resolved
once (the model family and its recipe: ``families.resolve``) and saved back.

Every notebook calls :func:`from_params` in its first code cell, and ``xlsr train`` does the same.
"""

from __future__ import annotations

from typing import Callable

from .config import Config, read_run_record
from .families import resolve

# The steps that load MODEL itself (the processor around its feature extractor, the model): they fetch MODEL's
# config.json from the Hub when it is not at hand, so that the family is read from it rather than from the name.
MODEL_STEPS = ("03_vocab", "04_train")


def from_params(params: dict, step: str | None = None, save: bool = True, log: Callable = print) -> Config:
    """Build the config of a notebook from its parameters cell, resolved for ``step``.

    ``params`` is usually ``globals()``: every UPPER_CASE name that is a config field is taken. Fields the
    notebook does not declare come from run.json (what earlier steps used), so that e.g. 05_evaluate knows the
    language and model of the run; the recipe fields that the run left open follow the recipe of *this* step's
    MODEL, and the family an earlier step decided for the same MODEL is kept (said when MODEL's config.json has
    changed since). The result is saved to run.json (``save``) as the run's config and as ``step``'s.
    """
    given = {k.lower(): v for k, v in params.items() if k.isupper() and k.lower() in Config.field_names()}
    base = Config(**{k: given[k] for k in ("language", "run_dir") if k in given})
    record = read_run_record(base.run_path)
    if record:
        earlier = dict(record["config"])
        for name in record.get("recipe_fields_from_recipe", []):  # filled again, from this step's MODEL's recipe
            earlier[name] = None
        config = Config.from_dict(earlier).updated(**given)
    else:
        config = Config(**given)
    config = resolve(config, step=step or "", download=step in MODEL_STEPS, log=log)
    if save:
        config.save(step)
    return config
