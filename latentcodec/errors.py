"""Errors a user can cause. The CLI prints their message as one line and exits non-zero."""


class LatentCodecError(Exception):
    """Base of every error caused by input, files or settings rather than by a bug."""


class AlatFormatError(LatentCodecError):
    """A .alat file is not one, is of an unknown version, or is damaged or truncated."""


class AudioError(LatentCodecError):
    """Input audio is missing, unreadable, unsupported, empty or not finite."""


class ModelError(LatentCodecError):
    """A model cannot be found or loaded, or does not match the file."""
