"""Entropy coding of integer codes: fixed integer Laplace tables and constriction's stack ANS coder.

Plain numpy and bytes (see spec/alat-format.md, "Version 2 coder"). Every code is coded
with one of ``N_SCALES`` fixed frequency tables, chosen per code by a scale index that the decoder
computes from values it already has; the tables are integers summing to 2^24, so decoding is the
same on every machine. Codes are coded grouped by scale index (one constriction call per table
used, a few dozen per record) rather than one by one: a Python call per value would cost
milliseconds per chunk.

Why constriction's ``Categorical(perfect=False)`` reproduces these integer tables exactly: it gives
symbol i the left cumulative ``floor(sum(p[:i]) * (2^24 - n) / sum(p)) + i``; with ``p = freq - 1``
(integers, exact in float64) the factor is 1 and that is ``sum(freq[:i])``.
"""

from __future__ import annotations

import hashlib
import math
from functools import cache, lru_cache

import numpy as np

PRECISION = 24
TOTAL = 1 << PRECISION
N_SCALES = 64
MAX_HALF_WIDTH = 4096
ESCAPE_HALF = 1 << 16  # an escaped code travels as two 16-bit symbols of (code + 2^31)


class EntropyError(ValueError):
    """The coded bytes are not a valid stream for the codes they must hold."""


QUARTER_OCTAVES = (
    1.0,
    float.fromhex("0x1.306fe0a31b715p+0"),
    float.fromhex("0x1.6a09e667f3bcdp+0"),
    float.fromhex("0x1.ae89f995ad3adp+0"),
)  # 2^(f/4), correctly rounded (the spec's quarter)


def laplace_scale(s: int) -> float:
    """The Laplace scale (in quantizer steps) of table ``s``: quarter-octave steps from 2^-5, as the spec
    computes it, ldexp of a correctly rounded constant: exact, where pow's last bit depends on the libm."""
    return math.ldexp(QUARTER_OCTAVES[(s - 20) % 4], (s - 20) // 4)


def half_width(s: int) -> int:
    """Codes with |code| < half_width(s) have their own symbol in table s; others escape."""
    return int(min(MAX_HALF_WIDTH, max(2, np.ceil(16 * laplace_scale(s)))))


@cache
def frequency_table(s: int) -> np.ndarray:
    """Integer frequencies (int64, summing to 2^24, each >= 1) of table ``s``.

    Symbols 0 .. 2R-2 are the codes -(R-1) .. R-1, symbol 2R-1 is the escape; the remainder of the
    rounding goes to the code 0.
    """
    b, r = laplace_scale(s), half_width(s)
    v = np.abs(np.arange(-(r - 1), r, dtype=np.float64))
    mass = np.where(v == 0, -np.expm1(-0.5 / b), 0.5 * (np.exp(-(v - 0.5) / b) - np.exp(-(v + 0.5) / b)))
    mass = np.append(mass, np.exp(-(r - 0.5) / b))
    freq = 1 + np.floor(mass * (TOTAL - len(mass))).astype(np.int64)
    freq[r - 1] += TOTAL - freq.sum()
    return freq


def tables_digest() -> str:
    """SHA-256 over every table's frequencies as little-endian u32, table 0 first (pinned in the spec)."""
    h = hashlib.sha256()
    for s in range(N_SCALES):
        h.update(frequency_table(s).astype("<u4").tobytes())
    return h.hexdigest()


@cache
def _model(s: int):  # noqa: ANN202 (constriction has no type stubs)
    import constriction

    freq = frequency_table(s) if s >= 0 else np.full(ESCAPE_HALF, TOTAL // ESCAPE_HALF, np.int64)
    return constriction.stream.model.Categorical((freq - 1).astype(np.float64), perfect=False)


@lru_cache(maxsize=1)
def bit_costs() -> np.ndarray:
    """(N_SCALES, MAX_HALF_WIDTH + 1) float64: bits to code |code| = a with table s (escapes included)."""
    out = np.empty((N_SCALES, MAX_HALF_WIDTH + 1))
    for s in range(N_SCALES):
        freq, r = frequency_table(s), half_width(s)
        bits = PRECISION - np.log2(freq.astype(np.float64))
        out[s, :r] = bits[r - 1 : 2 * r - 1]
        out[s, r:] = bits[-1] + 32
    return out


@lru_cache(maxsize=1)
def _half_widths() -> np.ndarray:
    """half_width of every table, int64 (N_SCALES,): looked up per code on every record."""
    return np.array([half_width(s) for s in range(N_SCALES)])


def _order(scales: np.ndarray) -> np.ndarray:
    """Raster positions grouped by rising scale index; on uint8 keys numpy's stable sort is a radix sort
    (the same order as on int64, a twentieth of the time for a 16,000-value record)."""
    return np.argsort(scales.ravel().astype(np.uint8), kind="stable")


def encode_codes(codes: np.ndarray, scales: np.ndarray) -> bytes:
    """Code integer ``codes`` (any shape), each with the table of the same-shaped ``scales`` (uint8).

    Returns the ANS words as little-endian u32 bytes. Decoding order: codes grouped by rising scale
    index (raster order within a group), then the escaped codes' 16-bit halves (low, high) in raster order.
    """
    import constriction

    flat, sc = codes.ravel().astype(np.int64), scales.ravel().astype(np.int64)
    r = _half_widths()[sc]
    esc = np.abs(flat) >= r
    if esc.any() and np.abs(flat[esc]).max() >= 1 << 31:
        raise ValueError("a code does not fit in 32 bits")
    symbols = np.where(esc, 2 * r - 1, flat + r - 1)
    coder = constriction.stream.stack.AnsCoder()
    u = (flat[esc] + (1 << 31)).astype(np.uint64)
    halves = np.stack([u & 0xFFFF, u >> 16], axis=1).ravel().astype(np.int32)
    if len(halves):
        coder.encode_reverse(halves, _model(-1))
    order = _order(sc)
    bounds = np.searchsorted(sc[order], np.arange(N_SCALES + 1))
    for s in range(N_SCALES - 1, -1, -1):
        if bounds[s] < bounds[s + 1]:
            coder.encode_reverse(symbols[order[bounds[s] : bounds[s + 1]]].astype(np.int32), _model(s))
    return coder.get_compressed().astype("<u4").tobytes()


def decode_codes(payload: bytes, scales: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_codes`: int64 codes of ``scales``' shape, or :class:`EntropyError`.

    The stream must end exactly where the last code ends (state back to its start, every word read).
    """
    import constriction

    if len(payload) % 4:
        raise EntropyError(f"payload of {len(payload)} bytes is not whole 32-bit words")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    if len(words) and words[-1] == 0:
        raise EntropyError("payload ends in a zero word")
    coder = constriction.stream.stack.AnsCoder(words)
    sc = scales.ravel().astype(np.int64)
    order = _order(sc)
    bounds = np.searchsorted(sc[order], np.arange(N_SCALES + 1))
    r = _half_widths()[sc]
    symbols = np.empty(len(sc), np.int64)
    for s in range(N_SCALES):
        if bounds[s] < bounds[s + 1]:
            symbols[order[bounds[s] : bounds[s + 1]]] = coder.decode(_model(s), int(bounds[s + 1] - bounds[s]))
    codes = symbols - r + 1
    esc = symbols == 2 * r - 1
    if esc.any():
        halves = coder.decode(_model(-1), 2 * int(esc.sum())).astype(np.int64).reshape(-1, 2)
        codes[esc] = halves[:, 0] + (halves[:, 1] << 16) - (1 << 31)
        if (np.abs(codes[esc]) < r[esc]).any() or (codes[esc] == -(1 << 31)).any():
            raise EntropyError("an escaped code is out of its range")
    if not coder.is_empty() or coder.num_words() != 0:
        raise EntropyError("the coded stream does not end where its last code ends")
    return codes.reshape(scales.shape)
