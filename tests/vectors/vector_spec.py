"""The content of the format test vectors: small two-channel, three-chunk files.

Version 1 at 5 bits (smooth values, a heavy tail and a constant channel: every quantizer path);
version 2 with the entropy coder (a fixed rotation across latent channels, steps that differ per
component, and values large enough to escape their tables); version 3 the same, its last chunk's records
holding the one latent frame that covers the file's last mel frame.
"""
import numpy as np

from latentcodec.format.header import Header


def vector_header(version: int = 1) -> Header:
    coder: dict = dict(bits=5)
    if version >= 2:
        q, _ = np.linalg.qr(np.random.default_rng(99).normal(size=(8, 8)))
        coder = dict(steps=[0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.6], transform=q.tolist(), coder_version=version)
    return Header(channels=2, num_samples=16 * 160 * 2 + 7, original_rate=44100, original_channels=2,
                  original_frames=14131, input_size=56568, model_name="test-vector-model",
                  model_fingerprint=bytes(range(32)), offsets=[0.001, -0.002], gains=[1.5, 2.25],
                  zstd_level=0, chunk_frames=16, context_frames=8, tool_version="latentcodec test-vector", **coder)


def vector_latents(h: Header) -> list[np.ndarray]:
    rng = np.random.default_rng(1234)
    out = []
    for i in range(h.num_records):
        lat = rng.standard_t(3, size=h.latent_shape).astype(np.float16)[:, :h.record_shape(i // h.channels)[1]]
        lat[2] = 0.75
        if h.version >= 2:
            lat[5, min(1, lat.shape[1] - 1), 3] = 900.0 * (i + 1)  # escapes
        out.append(lat)
    return out
