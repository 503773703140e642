"""Colab's secrets (the key icon of the left bar), as the stand-in has them: a secret NAME exists when the
environment holds COLAB_STAND_IN_SECRET_<NAME>; the rehearsal sets none, so every lookup raises
:class:`SecretNotFoundError`, as on a Colab without secrets."""

from __future__ import annotations

import os

from .errors import Error


class SecretNotFoundError(Error):
    def __init__(self, key: str):
        super().__init__(f"Secret {key} does not exist.")


class NotebookAccessError(Error):
    def __init__(self, key: str):
        super().__init__(f"Notebook does not have access to secret {key}")


def get(key: str) -> str:
    value = os.environ.get(f"COLAB_STAND_IN_SECRET_{key}")
    if value is None:
        raise SecretNotFoundError(key)
    return value
