"""The content of the format test vector: a small two-channel, three-chunk file at 5 bits."""
import numpy as np

from latentcodec.container import Header


def vector_header() -> Header:
    return Header(channels=2, num_samples=16 * 160 * 2 + 7, original_rate=44100, original_channels=2,
                  original_frames=14131, input_size=56568, model_name="test-vector-model",
                  model_fingerprint=bytes(range(32)), offsets=[0.001, -0.002], gains=[1.5, 2.25], bits=5,
                  zstd_level=0, chunk_frames=16, context_frames=8, tool_version="latentcodec test-vector")


def vector_latents(h: Header) -> list[np.ndarray]:
    """Smooth values, a heavy tail and a constant channel: every quantizer path."""
    rng = np.random.default_rng(1234)
    out = []
    for _ in range(h.num_records):
        lat = rng.standard_t(3, size=h.latent_shape).astype(np.float16)
        lat[2] = 0.75
        out.append(lat)
    return out
