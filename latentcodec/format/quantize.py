"""Uniform scalar quantizers for latents, plain numpy (see spec/alat-format.md, "Quantizer").

Per latent channel the stats are (min, step): code = round((x - min) / step), clipped to
[0, 2^bits - 1], packed LSB-first into exactly ceil(values * bits / 8) bytes. Min/max (not mean/std
with a clip) keeps every value within half a step, outliers included. ``bits`` 16 stores the
float16 latent as it is, with no stats.
"""

from __future__ import annotations

import numpy as np

from latentcodec.constants import BITS, DEFAULT_ZSTD  # noqa: F401 (DEFAULT_ZSTD: part of this module's interface)

STAT_BYTES = 8  # float32 min + float32 step per latent channel


def stats_size(channels: int, bits: int) -> int:
    """Bytes of stats a record carries: none for float16."""
    return 0 if bits == 16 else channels * STAT_BYTES


def payload_size(values: int, bits: int) -> int:
    """Bytes of a packed payload before any zstd."""
    return (values * bits + 7) // 8


def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Pack unsigned codes < 2^bits, LSB first, into ceil(n * bits / 8) bytes."""
    codes = codes.astype(np.uint8, copy=False).ravel()
    if bits == 8:
        return codes.tobytes()
    planes = (codes[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
    return np.packbits(planes.ravel(), bitorder="little").tobytes()


def unpack_codes(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`; ``data`` must hold exactly ``payload_size(count, bits)`` bytes."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if bits == 8:
        return raw[:count]
    planes = np.unpackbits(raw, bitorder="little")[: count * bits].reshape(count, bits)
    return (planes << np.arange(bits, dtype=np.uint8)).sum(axis=1, dtype=np.uint8)


def quantize(latent: np.ndarray, bits: int) -> tuple[np.ndarray, bytes]:
    """Quantize a (channels, ...) float16 latent; returns (stats float32 (channels, 2), payload)."""
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, not {bits}")
    latent = np.asarray(latent, dtype=np.float16)
    if not np.isfinite(latent).all():
        raise ValueError("latent holds NaN or infinite values")
    if bits == 16:
        return np.zeros((latent.shape[0], 0), np.float32), latent.astype("<f2").tobytes()
    x = latent.reshape(latent.shape[0], -1).astype(np.float64)
    levels = (1 << bits) - 1
    lo = x.min(axis=1).astype(np.float32)
    step = ((x.max(axis=1) - lo) / levels).astype(np.float32)
    safe = np.where(step > 0, step, 1.0).astype(np.float64)[:, None]
    codes = np.clip(np.rint((x - lo[:, None]) / safe), 0, levels)
    codes[step == 0] = 0
    return np.stack([lo, step], axis=1), pack_codes(codes, bits)


def dequantize(stats: np.ndarray, payload: bytes, bits: int, shape: tuple[int, ...]) -> np.ndarray:
    """Values of a payload as float32 of ``shape`` (channels first): min + code * step, in float64."""
    count = int(np.prod(shape))
    if bits == 16:
        return np.frombuffer(payload, dtype="<f2", count=count).astype(np.float32).reshape(shape)
    codes = unpack_codes(payload, bits, count).reshape(shape[0], -1).astype(np.float64)
    st = np.asarray(stats, dtype=np.float64)
    return (st[:, :1] + codes * st[:, 1:2]).astype(np.float32).reshape(shape)
