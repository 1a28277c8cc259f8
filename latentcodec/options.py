"""The options of encoding and decoding, as frozen keyword-only objects carried from the API and the CLI
through the pipeline, the folder jobs and evaluation, so that each default is written once, here, and a
misspelt option fails where it is given. Plain Python: the CLI imports this at start-up.

``tests/test_argspec.py`` holds the API's and the CLI's options to these fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latentcodec.models.loader import Model
    from latentcodec.vocoders.windows import Vocoder


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What runs the model, for either direction."""

    model: Model | str | None = None  # a loaded Model, a shipped name, a diffusers folder or a hub id;
    # None: the default model (encoding), the one the file names (decoding)
    device: str = "auto"  # cpu, cuda, or auto: a GPU where torch sees one (shipped models run on the CPU)
    runtime: str = "auto"  # onnx, torch, or auto (models/loader.choose_runtime's rule)
    batch_size: int = 4  # chunk windows per VAE call


@dataclass(frozen=True, kw_only=True)
class EncodeOptions(RunOptions):
    """How audio becomes a .alat: the coder (``codec.choose_coder``), chunks, channels, arithmetic."""

    quality: float | None = None  # the entropy coder at this quality (None and no kbps: constants.DEFAULT_QUALITY)
    kbps: float | None = None  # ... or at the quality that gives about this rate
    bits: int | None = None  # version 1: the min/max quantizer with this many bits per value
    zstd_level: int | None = None  # version 1: zstd level per payload (None: constants.DEFAULT_ZSTD)
    chunk_seconds: float = 5.0
    mono: bool = False  # average the channels and code one
    precision: str = "auto"  # the encoder's arithmetic (runtime/precision.py)


@dataclass(frozen=True, kw_only=True)
class DecodeOptions(RunOptions):
    """How a .alat becomes audio: vocoder, output rate, the span decoded, trust in the file."""

    vocoder: str | Vocoder | None = None  # a name, a folder or a callable; None: the model's pairing
    decoder: Model | str | None = None  # the VAE decoder: 'own' (the writer's) or one of its latent space; None: paired
    decoder_precision: str | None = None  # the VAE decoder's arithmetic (auto, float32, bfloat16); None: the pairing's
    gl_iters: int | None = None  # Griffin-Lim iterations (None: the vocoder's own)
    sample_rate: int | str | None = None  # Hz, or 'original'; None: 16 kHz
    force: bool = False  # decode with other weights than the file names
    salvage: bool = False  # damaged chunks decode as silence instead of stopping
    start: float = 0.0  # seconds: decode from here
    duration: float | None = None  # seconds: decode this long (None: to the end)


def option_names(kind: type[RunOptions]) -> list[str]:
    """The fields of an options class, in order."""
    return [f.name for f in fields(kind)]


def defaults(kind: type[RunOptions]) -> dict[str, Any]:
    """Each field's default."""
    return {f.name: f.default for f in fields(kind)}
