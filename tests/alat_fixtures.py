"""Small valid .alat files built in memory for the container tests."""
from __future__ import annotations

import numpy as np

from latentcodec.format.container import write_bytes
from latentcodec.format.header import Header


def make_header(channels: int = 2, seconds: float = 12.0, bits: int = 4, zstd: int = 0,
                chunk_frames: int = 500) -> Header:
    n = int(seconds * 16000)
    return Header(channels=channels, num_samples=n, original_rate=16000, original_channels=channels,
                  original_frames=n, input_size=2 * n * channels + 44, model_name="latentcodec-small",
                  model_fingerprint=bytes(range(32)), offsets=[0.0] * channels, gains=[1.0] * channels,
                  bits=bits, zstd_level=zstd, chunk_frames=chunk_frames)


def make_file(h: Header, seed: int = 0) -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    lats = [(rng.normal(size=h.record_shape(i // h.channels)) * rng.uniform(0.1, 3)).astype(np.float16)
            for i in range(h.num_records)]
    return write_bytes(h, lats), lats
