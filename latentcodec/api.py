"""The Python API, exported at the package's top level: encode arrays, decode files to arrays, and read
latents without decoding audio.

    import latentcodec
    latentcodec.encode(samples, 44100, "x.alat")           # samples: (frames,) or (frames, channels)
    samples, rate = latentcodec.decode("x.alat")            # (frames, channels) float32, 16 kHz
    with latentcodec.open("x.alat") as r:
        z = r.latents(0)                                    # (8, time/4 in mel frames, 16) float32
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from latentcodec.format.container import AlatReader

if TYPE_CHECKING:
    from latentcodec.codec import EncodeResult


def encode(samples: np.ndarray, sample_rate: int, path: str | Path | BinaryIO, mono: bool = False,
           overwrite: bool = True, **opts: Any) -> EncodeResult:
    """Encode (frames,) or (frames, channels) samples at ``sample_rate`` Hz to a .alat at ``path``.

    Options as :func:`latentcodec.codec.encode_audio`: ``model``, ``quality``, ``kbps``, ``bits``,
    ``zstd_level``, ``chunk_seconds``, ``batch_size``, ``device``, ``precision``.
    """
    from latentcodec.audio.io import audio_from_array
    from latentcodec.codec import encode_audio

    return encode_audio(audio_from_array(samples, sample_rate, mono), path, mono=mono, overwrite=overwrite, **opts)


def decode(path: str | Path | BinaryIO, salvage: bool = False, **opts: Any) -> tuple[np.ndarray, int]:
    """Decode a .alat file to ((frames, channels) float32 samples, sample rate).

    Options as :func:`latentcodec.codec.decode_blocks`: ``model``, ``vocoder``, ``sample_rate``, ``start``,
    ``duration``, ``device``, ...
    """
    from latentcodec.codec import decode_blocks

    with AlatReader(path, salvage=salvage) as reader:
        blocks, rate, frames = decode_blocks(reader, **opts)
        out = np.concatenate(list(blocks)) if frames else np.zeros((0, reader.header.channels), np.float32)
    return out, rate


def open(path: str | Path | BinaryIO, salvage: bool = False) -> AlatReader:  # noqa: A001 (the API's name)
    """A reader of a .alat file: ``header``, ``latent(k, channel)`` and ``latents(channel)`` (dequantized
    float32, no audio decoded). Use it in a ``with`` block, or call ``close()``."""
    return AlatReader(path, salvage=salvage)
