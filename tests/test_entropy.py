"""The version-2 entropy coder: pinned tables, exact round trips, and a decoder written from the spec's
words alone (pure Python integers) that reproduces the pinned codes of the v2 test vector."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from latentcodec.format.container import AlatReader
from latentcodec.format.entropy import (
    N_SCALES,
    EntropyError,
    decode_codes,
    encode_codes,
    frequency_table,
    half_width,
    tables_digest,
)
from latentcodec.format.transform_coder import octave_index

VECTORS = Path(__file__).parent / "vectors"
TABLES_SHA256 = "6caf2667fe97b72b9d14b9f7a3ece613a3cff8621dce8c7c26e95a4970f93045"  # spec/alat-format.md


def test_tables_are_pinned_and_valid() -> None:
    assert tables_digest() == TABLES_SHA256
    for s in range(N_SCALES):
        f = frequency_table(s)
        assert f.sum() == 1 << 24 and f.min() >= 1 and len(f) == 2 * half_width(s)


def test_octave_index_has_no_ties() -> None:
    """U[k] = round(16 log2(1 + k)) is the same in any correct float64 log2: no value is near a tie."""
    x = 16 * np.log2(1 + np.arange(65536, dtype=np.float64))
    assert np.abs(x - np.floor(x) - 0.5).min() > 1e-6
    assert np.array_equal(octave_index(65536), np.floor(x + 0.5).astype(np.int64))


@pytest.mark.parametrize("seed", range(5))
def test_codes_round_trip_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scales = rng.integers(0, N_SCALES, size=(8, 30, 16)).astype(np.uint8)
    b = 2.0 ** ((scales.astype(float) - 20) / 4)
    codes = np.rint(rng.laplace(scale=b)).astype(np.int64)
    codes[0, 0, :3] = [2**31 - 1, -(2**31) + 1, 70000]  # escapes at the extremes
    payload = encode_codes(codes, scales)
    assert np.array_equal(decode_codes(payload, scales), codes)
    with pytest.raises(EntropyError):
        decode_codes(payload + b"\x01\x00\x00\x00", scales)  # words left over
    with pytest.raises(EntropyError):
        decode_codes(payload[:-1], scales)


class _SpecAns:
    """spec/alat-format.md, "ANS decoding", in plain integers."""

    def __init__(self, payload: bytes) -> None:
        self.words = [int.from_bytes(payload[i:i + 4], "little") for i in range(0, len(payload), 4)]
        self.state = 0
        if self.words:
            self.state = self.words.pop()
            assert self.state != 0
            while self.words and self.state < 1 << 32:
                self.state = (self.state << 32) | self.words.pop()

    def decode(self, freq: list[int]) -> int:
        q, cum = self.state & ((1 << 24) - 1), 0
        for i, f in enumerate(freq):
            if q < cum + f:
                break
            cum += f
        self.state = (self.state >> 24) * f + (q - cum)
        if self.state < 1 << 32 and self.words:
            self.state = (self.state << 32) | self.words.pop()
        return i

    def finished(self) -> bool:
        return self.state == 0 and not self.words


def _spec_decode_record(stats: bytes, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """Codes of one record from the spec's words: table indices, coding order, escapes."""
    comps, t, m = shape
    u = [math.floor(16 * math.log2(1 + k) + 0.5) for k in range(max(t, m))]
    sidx = []
    for c in range(comps):
        a = stats[3 * c]
        b, cc = (int.from_bytes(stats[3 * c + j:3 * c + j + 1], "little", signed=True) for j in (1, 2))
        sidx += [min(63, max(0, a + (b * u[kt] + cc * u[km] + 16) // 32)) for kt in range(t) for km in range(m)]
    ans, codes, escaped = _SpecAns(payload), [0] * len(sidx), []
    for i in sorted(range(len(sidx)), key=lambda i: (sidx[i], i)):
        r = half_width(sidx[i])
        sym = ans.decode(frequency_table(sidx[i]).tolist())
        if sym == 2 * r - 1:
            escaped.append(i)
        else:
            codes[i] = sym - r + 1
    uniform = [256] * 65536
    for i in sorted(escaped):
        low, high = ans.decode(uniform), ans.decode(uniform)
        codes[i] = low + (high << 16) - (1 << 31)
    assert ans.finished()
    return np.array(codes, np.int64).reshape(shape)


@pytest.mark.parametrize("version", [2, 3])
def test_spec_decoder_reproduces_the_vector_codes(version: int) -> None:
    expected = np.load(VECTORS / f"v{version}_codes.npy").reshape(-1)
    assert (np.abs(expected) >= 4096).any()  # the vector exercises escapes
    with AlatReader(VECTORS / f"v{version}.alat") as r:
        h = r.header
        pos = 0
        for i in range(h.num_records):
            k, c = divmod(i, h.channels)
            _, stats, payload, _ = r.record(k, c)
            codes = _spec_decode_record(stats, payload, h.record_shape(k)).reshape(-1)
            assert np.array_equal(codes, expected[pos:pos + len(codes)])
            pos += len(codes)
        assert pos == len(expected)
