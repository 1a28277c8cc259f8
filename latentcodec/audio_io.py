"""Reading any common audio file into 16 kHz float32 channels, and writing wav.

Reading streams blocks through soxr, so only the 16 kHz result is held in memory, never the
original at its own rate as float.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError
from .mel import SAMPLE_RATE

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".w64", ".rf64"}
BLOCK = 1 << 18


@dataclass
class Audio:
    """Channels at 16 kHz, shape (channels, samples), and facts about the original."""

    samples: np.ndarray
    original_rate: int
    original_channels: int
    original_frames: int
    file_size: int


def read_audio(path: str | Path, mono: bool = False) -> Audio:
    """Decode ``path`` and resample to 16 kHz; ``mono`` averages the channels."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    try:
        f = sf.SoundFile(str(path))
    except Exception as e:  # libsndfile reports every format problem as one generic error type
        raise AudioError(f"{path}: unsupported or unreadable audio ({_first_line(e)})") from e
    with f:
        rate, channels = f.samplerate, f.channels
        out_channels = 1 if mono else channels
        stream = soxr.ResampleStream(rate, SAMPLE_RATE, out_channels, dtype="float32", quality="HQ") \
            if rate != SAMPLE_RATE else None
        parts, frames = [], 0
        try:
            while True:
                block = f.read(BLOCK, dtype="float32", always_2d=True)
                last = len(block) < BLOCK
                frames += len(block)
                if not np.isfinite(block).all():
                    raise AudioError(f"{path}: contains NaN or infinite samples")
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
            raise AudioError(f"{path}: cannot decode audio ({_first_line(e)})") from e
    if frames == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    samples = np.concatenate(parts, axis=1) if parts else np.zeros((out_channels, 0), np.float32)
    want = max(1, int(round(frames * SAMPLE_RATE / rate)))  # soxr's stream length can differ by a sample
    samples = samples[:, :want] if samples.shape[1] >= want else np.pad(samples, ((0, 0), (0, want - samples.shape[1])))
    return Audio(np.ascontiguousarray(samples, np.float32), rate, channels, frames, path.stat().st_size)


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
