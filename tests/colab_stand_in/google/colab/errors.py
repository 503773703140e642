"""Colab's error classes (the stand-in's): huggingface_hub catches ``google.colab.errors.Error``."""


class Error(Exception):
    """Base class of Colab's errors."""
