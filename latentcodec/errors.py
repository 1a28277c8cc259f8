"""Errors a user can cause. The CLI prints their message as one line and exits non-zero."""

from __future__ import annotations


class LatentCodecError(Exception):
    """Base of every error caused by input, files or settings rather than by a bug.

    ``param`` names the library argument the error is about (``force``, ``chunk_seconds``, ...): the
    message speaks of values, not of options, and a front end (the CLI) names its own option for it.
    """

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class AlatFormatError(LatentCodecError):
    """A .alat file is not one, is of an unknown version, or is damaged or truncated."""


class AudioError(LatentCodecError):
    """Input audio is missing, unreadable, unsupported, empty or not finite."""


class ModelError(LatentCodecError):
    """A model cannot be found or loaded, or does not match the file."""
