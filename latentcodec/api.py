"""The Python API, exported at the package's top level, with soundfile's habits: encode arrays or audio files,
decode files to arrays (1-D for mono unless ``always_2d``), and read latents without decoding audio.

    import latentcodec
    latentcodec.encode(samples, 44100, "x.alat")           # samples: (frames,) or (frames, channels)
    latentcodec.encode("in.flac", "x.alat")                # or any audio file soundfile reads
    samples, rate = latentcodec.decode("x.alat")            # (frames,) for mono, else (frames, channels)
    with latentcodec.open("x.alat") as r:
        z = r.latents(0)                                    # (8, time/4 in mel frames, 16) float32
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import numpy as np

from latentcodec.errors import AudioError, LatentCodecError
from latentcodec.format.container import AlatReader
from latentcodec.format.header import MAX_CHANNELS
from latentcodec.options import DecodeOptions, EncodeOptions, option_names

if TYPE_CHECKING:
    from latentcodec.codec import EncodeResult

Destination = str | Path | BinaryIO
Options = TypeVar("Options", EncodeOptions, DecodeOptions)


def encode(
    samples: np.ndarray | str | Path | BinaryIO,
    sample_rate: int | Destination | None = None,
    path: Destination | None = None,
    options: EncodeOptions | None = None,
    *,
    overwrite: bool = True,
    **opts: Any,
) -> EncodeResult:
    """Encode to a .alat at ``path``: ``samples`` of shape (frames,) or (frames, channels) at ``sample_rate``
    Hz, or an audio file (a path or a binary file object), its rate read from it:
    ``encode(x, 44100, "x.alat")``, ``encode("in.wav", "x.alat", quality=6)``. The options are
    :class:`latentcodec.options.EncodeOptions`' fields, as an object or by keyword (a keyword overrides the
    object's field; a misspelt one raises TypeError here).
    """
    from latentcodec.codec import encode_audio, encode_file

    options = _options(EncodeOptions, options, opts, "encode")
    if not isinstance(samples, np.ndarray):
        if path is None and not isinstance(sample_rate, int):
            sample_rate, path = None, sample_rate
        if sample_rate is not None or path is None:
            raise LatentCodecError("encode(audio_file, path): a file's rate is its own; give the .alat path after it")
        return encode_file(samples, path, options, overwrite=overwrite)
    if not isinstance(sample_rate, int) or path is None:
        raise LatentCodecError("encode(samples, sample_rate, path): give the rate in Hz and the .alat path")
    return encode_audio(_audio(samples, sample_rate, options.mono), path, options, overwrite=overwrite)


def _options(kind: type[Options], given: Options | None, fields: dict[str, Any], call: str) -> Options:
    """``given`` (or the defaults) with ``fields`` replaced; a name that is no field fails as Python's own
    keyword check does, naming the API's function and the options it takes."""
    unknown = sorted(set(fields) - set(option_names(kind)))
    if unknown:
        raise TypeError(
            f"{call}() got an unexpected keyword argument {unknown[0]!r} (its options: {', '.join(option_names(kind))})"
        )
    return replace(given or kind(), **fields)


def _audio(samples: np.ndarray, sample_rate: int, mono: bool) -> Any:
    """The array as the codec's Audio; a (channels, frames) array (torchaudio's layout) is named as such."""
    from latentcodec.audio.io import audio_from_array

    if samples.ndim == 2 and samples.shape[1] > MAX_CHANNELS >= samples.shape[0]:
        raise AudioError(
            f"samples of shape {samples.shape} read as {samples.shape[1]} channels of "
            f"{samples.shape[0]} frames: samples are (frames, channels), as soundfile gives them; "
            f"for a (channels, frames) array such as torchaudio's, pass samples.T"
        )
    return audio_from_array(samples, sample_rate, mono)


def decode(
    path: str | Path | BinaryIO,
    always_2d: bool = False,
    salvage: bool = DecodeOptions.salvage,
    options: DecodeOptions | None = None,
    **opts: Any,
) -> tuple[np.ndarray, int]:
    """Decode a .alat file to (float32 samples, sample rate): (frames,) for one channel unless ``always_2d``,
    else (frames, channels), as soundfile's ``read``. 16 kHz unless ``sample_rate`` ('original' or Hz);
    ``start``/``duration`` in seconds decode a part; ``vocoder``: a name or a callable; ``decoder``: 'own' (the
    writer's) or a model of the file's model's latent space (None: the pairing's). The options are
    :class:`latentcodec.options.DecodeOptions`' fields, as an object or by keyword."""
    from latentcodec.codec import decode_blocks

    options = _options(
        DecodeOptions, options, {"salvage": salvage or bool(options and options.salvage), **opts}, "decode"
    )
    with AlatReader(path, salvage=options.salvage) as reader:
        blocks, rate, frames = decode_blocks(reader, options)
        out = np.concatenate(list(blocks)) if frames else np.zeros((0, reader.header.channels), np.float32)
    return (out if always_2d or out.shape[1] > 1 else out[:, 0]), rate


def open(path: str | Path | BinaryIO, salvage: bool = False) -> AlatReader:  # noqa: A001 (the API's name)
    """A reader of a .alat file: ``header``, ``latent(k, channel)`` and ``latents(channel)`` (dequantized
    float32, no audio decoded). Use it in a ``with`` block, or call ``close()``."""
    return AlatReader(path, salvage=salvage)
