import numpy as np
import pytest

from latentcodec.format.quantize import BITS, dequantize, pack_codes, payload_size, quantize, unpack_codes

SHAPE = (8, 125, 16)


def _data(kind: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    if kind == "normal":
        return rng.normal(size=SHAPE).astype(np.float16)
    if kind == "heavy":
        x = rng.standard_cauchy(size=SHAPE)
        return np.clip(x, -6e4, 6e4).astype(np.float16)
    x = rng.normal(size=SHAPE).astype(np.float16)
    x[0] = 0.0
    x[5] = -3.25
    return x


@pytest.mark.parametrize("kind", ["normal", "heavy", "constant"])
@pytest.mark.parametrize("bits", BITS)
def test_round_trip_within_half_step(kind: str, bits: int) -> None:
    x = _data(kind)
    stats, payload = quantize(x, bits)
    assert len(payload) == payload_size(x.size, bits) == -(-x.size * bits // 8)
    y = dequantize(stats, payload, bits, SHAPE)
    assert y.dtype == np.float32 and y.shape == SHAPE
    if bits == 16:
        assert np.array_equal(y, x.astype(np.float32))
        return
    step = stats[:, 1].astype(np.float64)[:, None, None]
    err = np.abs(y.astype(np.float64) - x.astype(np.float64))
    assert np.all(err <= step / 2 * (1 + 1e-6) + 1e-6 * np.abs(x.astype(np.float64)))
    if kind == "constant":
        assert stats[0, 1] == 0 and np.array_equal(y[0], x[0].astype(np.float32))
        assert np.array_equal(y[5], x[5].astype(np.float32))


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
def test_packing_is_lsb_first_and_tight(bits: int) -> None:
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 1 << bits, size=1001).astype(np.uint8)
    packed = pack_codes(codes, bits)
    assert len(packed) == payload_size(1001, bits)
    assert np.array_equal(unpack_codes(packed, bits, 1001), codes)
    stream = int.from_bytes(packed, "little")
    assert all((stream >> (i * bits)) & ((1 << bits) - 1) == c for i, c in enumerate(codes[:50]))


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        quantize(np.zeros(SHAPE, np.float16), 7)
    x = np.zeros(SHAPE, np.float16)
    x[1, 2, 3] = np.inf
    with pytest.raises(ValueError):
        quantize(x, 4)
