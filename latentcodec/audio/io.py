"""Reading any common audio file into 16 kHz float32 channels, and writing any format soundfile writes.

Reading streams blocks through soxr, so only the 16 kHz result is held in memory, never the
original at its own rate as float. Writing takes blocks as they come, so no decoded file is held whole.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from latentcodec.constants import SAMPLE_RATE
from latentcodec.errors import AudioError
from latentcodec.fs import lookup

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".w64", ".rf64"}
BLOCK = 1 << 18
# Output suffix -> (soundfile format, subtype): 16-bit PCM where the format has it, else its codec.
WRITE_FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".oga": ("OGG", "VORBIS"),
    ".opus": ("OGG", "OPUS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
    ".aiff": ("AIFF", "PCM_16"),
    ".aif": ("AIFF", "PCM_16"),
    ".w64": ("W64", "PCM_16"),
    ".rf64": ("RF64", "PCM_16"),
    ".caf": ("CAF", "PCM_16"),
    ".au": ("AU", "PCM_16"),
}

# The sample rates libsndfile 1.2 writes in each format (tried: Vorbis crashes above 200 kHz, FLAC refuses
# above 655,350 Hz, Opus and MP3 take only their standard rates); a rate outside is refused before writing.
_MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
RATE_LIMITS: dict[str, tuple[int, ...] | range] = {
    "VORBIS": range(1, 200001),
    "OPUS": (8000, 12000, 16000, 24000, 48000),
    "MPEG_LAYER_III": _MPEG_RATES,
    "PCM_16": range(1, 655351),
}


@dataclass
class Audio:
    """Channels at 16 kHz, shape (channels, samples), and facts about the original."""

    samples: np.ndarray
    original_rate: int
    original_channels: int
    original_frames: int
    file_size: int


def read_audio(source: str | Path | BinaryIO, mono: bool = False) -> Audio:
    """Decode a file (a path, or a binary file object such as stdin) and resample to 16 kHz; ``mono``
    averages the channels. A file object that cannot seek (a pipe) is read whole first."""
    f, name, size = _open_sound(source)
    with f:
        rate, channels = f.samplerate, f.channels
        out_channels = 1 if mono else channels
        stream = (
            soxr.ResampleStream(rate, SAMPLE_RATE, out_channels, dtype="float32", quality="HQ")
            if rate != SAMPLE_RATE
            else None
        )
        parts, frames = [], 0
        try:
            while True:
                block = f.read(BLOCK, dtype="float32", always_2d=True)
                last = len(block) < BLOCK
                frames += len(block)
                if not np.isfinite(block).all():
                    raise AudioError(f"{name}: contains NaN or infinite samples")
                if mono:
                    block = block.mean(axis=1, keepdims=True)
                if stream is not None:
                    block = stream.resample_chunk(np.ascontiguousarray(block), last=last)
                parts.append(block.T.copy())
                if last:
                    break
        except AudioError:
            raise
        except Exception as e:
            raise AudioError(f"{name}: cannot decode audio ({_first_line(e)})") from e
    if frames == 0:
        raise AudioError(f"{name}: the file holds no audio samples")
    samples = np.concatenate(parts, axis=1) if parts else np.zeros((out_channels, 0), np.float32)
    want = max(1, int(round(frames * SAMPLE_RATE / rate)))  # soxr's stream length can differ by a sample
    samples = samples[:, :want] if samples.shape[1] >= want else np.pad(samples, ((0, 0), (0, want - samples.shape[1])))
    return Audio(np.ascontiguousarray(samples, np.float32), rate, channels, frames, size)


def audio_from_array(samples: np.ndarray, sample_rate: int, mono: bool = False) -> Audio:
    """Samples as soundfile gives them, (frames,) or (frames, channels), at any rate -> 16 kHz Audio."""
    x = np.asarray(samples, np.float32)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or len(x) == 0:
        raise AudioError(f"samples of shape {np.shape(samples)}: give (frames,) or (frames, channels), frames > 0")
    if not np.isfinite(x).all():
        raise AudioError("the samples contain NaN or infinite values")
    frames, channels = x.shape
    y = x.mean(axis=1, keepdims=True) if mono else x
    if sample_rate != SAMPLE_RATE:
        y = soxr.resample(y, sample_rate, SAMPLE_RATE, quality="HQ")
        want = max(1, int(round(frames * SAMPLE_RATE / sample_rate)))  # as read_audio: one sample in at 44.1 kHz
        y = y[:want] if len(y) >= want else np.pad(y, ((0, want - len(y)), (0, 0)))  # gives none out of soxr
    return Audio(np.ascontiguousarray(y.T, np.float32), sample_rate, channels, frames, x.nbytes)


def _open_sound(source: str | Path | BinaryIO) -> tuple[sf.SoundFile, str, int]:
    """(an open SoundFile, the name for messages, the file's size in bytes)."""
    target: str | bytes | BinaryIO  # a name for soundfile, or a seekable stream
    if isinstance(source, (str, Path)):
        path = Path(source)
        st = lookup(path)
        if st is None:
            raise AudioError(f"{path}: no such file")
        if stat.S_ISDIR(st.st_mode):
            raise AudioError(f"{path}: is a folder, not an audio file")
        name, size, target = str(path), st.st_size, sound_path(path)
    else:
        name = getattr(source, "name", "<stream>")
        target = source if source.seekable() else io.BytesIO(source.read())
        size = target.seek(0, io.SEEK_END)
        target.seek(0)
    try:
        return sf.SoundFile(target), name, size
    except Exception as e:  # libsndfile reports every format problem as one generic error type
        raise AudioError(f"{name}: unsupported or unreadable audio ({_first_line(e)})") from e


def sound_path(path: str | Path) -> str | bytes:
    """A name for soundfile: it encodes a str name strictly, so a name holding bytes that are not valid in
    the file system's encoding (Python keeps them as surrogates) goes as its raw bytes."""
    try:
        str(path).encode(sys.getfilesystemencoding())
        return str(path)
    except UnicodeEncodeError:
        return os.fsencode(path)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def writable_suffixes() -> list[str]:
    """The output suffixes this machine's libsndfile can write."""
    return [x for x, fmt in WRITE_FORMATS.items() if sf.check_format(*fmt)]


def output_suffix(suffix: str) -> str:
    """``suffix`` ('flac' or '.flac') as an output suffix this machine can write, with its dot."""
    suffix = "." + suffix.lower().lstrip(".")
    if suffix not in writable_suffixes():
        raise AudioError(f"cannot write audio as '{suffix}': use {', '.join(writable_suffixes())}", "format")
    return suffix


def output_format(path: str | Path) -> tuple[str, str]:
    """(format, subtype) for an output file, chosen by its suffix; an AudioError for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in writable_suffixes():
        raise AudioError(
            f"{path}: cannot write audio as '{suffix or 'no suffix'}': use {', '.join(writable_suffixes())}"
        )
    return WRITE_FORMATS[suffix]


def check_rate(fmt: tuple[str, str], rate: int, name: str) -> None:
    """Refuse a rate that ``fmt`` cannot hold, before anything is written (libsndfile may crash on it)."""
    allowed = RATE_LIMITS[fmt[1]]
    if rate not in allowed:
        held = (
            f"{allowed.start} to {allowed.stop - 1} Hz"
            if isinstance(allowed, range)
            else ", ".join(map(str, allowed)) + " Hz"
        )
        raise AudioError(f"{name}: {fmt[0]}/{fmt[1]} cannot hold {rate} Hz (it holds {held})", "sample_rate")


class _CheckedFile:
    """A file for libsndfile's virtual I/O that keeps the first write error: libsndfile's FLAC and Vorbis
    writers drop them (a full disk gave a cut file and no error), so the writer asks afterwards."""

    def __init__(self, f: io.FileIO):
        self.f = f
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        view, done = memoryview(data), 0
        try:
            while done < len(view):
                done += self.f.write(view[done:])
        except OSError as e:
            self.error = self.error or e
        return done

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def readinto(self, buffer: bytearray) -> int:
        return self.f.readinto(buffer)


def write_audio(
    path: Path, blocks: Iterable[np.ndarray], rate: int, channels: int, fmt: tuple[str, str], name: str
) -> int:
    """Write (frames, channels) float32 blocks to ``path`` as ``fmt``; returns the frames written.

    ``name`` is the output as the user named it (``path`` may be its temporary file), for messages. A write
    error (a full disk) is raised as the OSError it was, so the caller's
    :func:`~latentcodec.fs.atomic_output` names it in one line; the file is then read back, and one that
    does not hold what was written (rate, channels, frames) is an error too.
    """
    with open(path, "w+b", buffering=0) as f:
        checked = _CheckedFile(f)
        written = _write_blocks(checked, blocks, rate, channels, fmt, name)
    if checked.error is not None:
        raise checked.error
    try:
        got = sf.info(sound_path(path))
    except sf.LibsndfileError as e:
        raise AudioError(f"{name}: the {fmt[0]} file written does not read back ({_first_line(e)}): not kept") from e
    if (got.samplerate, got.channels, got.frames) != (rate, channels, written):
        raise AudioError(
            f"{name}: the {fmt[0]} file written reads back as {got.frames} frames x {got.channels} ch at "
            f"{got.samplerate} Hz, not the {written} x {channels} ch at {rate} Hz written: not kept"
        )
    return written


def _write_blocks(
    f: _CheckedFile, blocks: Iterable[np.ndarray], rate: int, channels: int, fmt: tuple[str, str], name: str
) -> int:
    """The blocks through libsndfile onto ``f``; a failure it reports is the write error ``f`` kept, if any."""
    try:
        out = sf.SoundFile(f, "w", rate, channels, subtype=fmt[1], format=fmt[0])
    except sf.LibsndfileError as e:
        raise f.error or AudioError(
            f"{name}: cannot write {fmt[0]}/{fmt[1]} at {rate} Hz x {channels} ch ({_first_line(e)})"
        ) from e
    written = 0
    with out:
        for y in blocks:
            try:
                out.write(y)
            except (sf.LibsndfileError, AssertionError) as e:  # soundfile asserts on a short write
                raise f.error or AudioError(f"{name}: cannot write audio ({_first_line(e)})") from e
            written += len(y)
    return written


def write_wav_stream(f: BinaryIO, blocks: Iterable[np.ndarray], rate: int, channels: int, frames: int) -> int:
    """16-bit PCM WAV onto a stream that cannot seek (a pipe): the header gives the exact length, known
    before the first sample, so a reader of the pipe needs no patched header. Returns the frames written."""
    data_bytes = frames * channels * 2
    if data_bytes > 0xFFFFFFFF - 36:
        raise AudioError(f"{frames} frames x {channels} ch do not fit in a WAV (4 GiB): write a .w64 or .rf64 file")
    f.write(
        struct.pack(
            "<4sI4s4sIHHIIHH4sI",
            b"RIFF",
            36 + data_bytes,
            b"WAVE",
            b"fmt ",
            16,
            1,
            channels,
            rate,
            rate * channels * 2,
            channels * 2,
            16,
            b"data",
            data_bytes,
        )
    )
    written = 0
    for y in blocks:
        f.write(np.round(y * 32767).astype("<i2").tobytes())
        written += len(y)
    f.flush()
    return written
