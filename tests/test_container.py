from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.fft import dctn, idctn

from latentcodec.errors import AlatFormatError
from latentcodec.format.container import AlatReader, write_bytes
from latentcodec.format.quantize import BITS, dequantize, quantize
from tests.alat_fixtures import make_file, make_header
from tests.vectors.vector_spec import vector_header, vector_latents

VECTORS = Path(__file__).parent / "vectors"


def _write(tmp_path: Path, data: bytes, name: str = "f.alat") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("zstd", [0, 3])
def test_round_trip(tmp_path: Path, bits: int, zstd: int) -> None:
    h = make_header(bits=bits, zstd=zstd)
    data, lats = make_file(h)
    with AlatReader(_write(tmp_path, data)) as r:
        assert r.header == h
        for (chunk, ch, got), lat in zip(r, lats):
            want = dequantize(*quantize(lat, bits), bits, h.latent_shape)
            assert np.array_equal(got, want)
            if bits == 16:
                assert np.array_equal(got, lat.astype(np.float32))
        assert sum(r.record_sizes()) + r.data_start + 8 + 8 * h.num_records + 4 + 16 == len(data)


def test_seek_reads_one_chunk_directly(tmp_path: Path) -> None:
    h = make_header(channels=2, seconds=30)
    data, lats = make_file(h)
    with AlatReader(_write(tmp_path, data)) as r:
        got = r.read(4, 1)
    assert np.allclose(got, lats[4 * 2 + 1], atol=float(np.ptp(lats[9])) / 15)


def test_overhead_under_one_percent_for_60s_mono_8bit() -> None:
    h = make_header(channels=1, seconds=60, bits=8)
    data, _ = make_file(h)
    payload = h.num_records * h.raw_payload_size
    overhead = (len(data) - payload) / len(data)
    assert overhead < 0.01, overhead


def _joined(arrays: list[np.ndarray], version: int) -> np.ndarray:
    """As the vectors pin them: stacked, or in version 3 (records of two shapes) flattened and concatenated."""
    return np.stack(arrays) if version < 3 else np.concatenate([a.reshape(-1) for a in arrays])


@pytest.mark.parametrize("version", [1, 2, 3])
def test_vector_reads_as_pinned(version: int) -> None:
    """Each stored vector decodes to its pinned latents (versions 2 and 3: to their pinned integer codes, bit
    for bit), and writing its content again gives its bytes: a change of the bytes without a version bump
    fails here."""
    path = VECTORS / f"v{version}.alat"
    expected = np.load(VECTORS / f"v{version}_expected.npy")
    h = vector_header(version)
    with AlatReader(path) as r:
        assert r.header == h and r.header.version == version
        got = _joined([lat for _, _, lat in r], version)
        if version >= 2:
            codes = _joined([r.codes(*divmod(i, h.channels)) for i in range(h.num_records)], version)
            assert np.array_equal(codes, np.load(VECTORS / f"v{version}_codes.npy"))
    if version == 1:
        assert np.array_equal(got, expected)
    else:  # the inverse DCT's last bits may differ between FFT libraries; the codes may not
        assert np.allclose(got, expected, rtol=0, atol=1e-4)
    assert write_bytes(h, vector_latents(h)) == path.read_bytes()


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("channels", [1, 2])
def test_v2_round_trip_error_within_half_step(tmp_path: Path, channels: int, version: int) -> None:
    """The entropy coder is lossless on the codes: the latent error is the quantizer's alone (version 3's
    short last records too)."""
    h = make_header(channels=channels, seconds=11)
    h2 = replace(h, steps=[0.4] * 8, transform=np.eye(8).tolist(), bits=0, coder_version=version)
    data, lats = make_file(h2)
    with AlatReader(_write(tmp_path, data)) as r:
        assert r.header.version == version
        for (_, _, got), lat in zip(r, lats):
            coefs = dctn(lat.astype(np.float64), axes=(1, 2), norm="ortho")
            want = idctn(np.rint(coefs / 0.4) * 0.4, axes=(1, 2), norm="ortho")
            assert np.allclose(got, want, atol=1e-5)
            assert np.sqrt(np.mean((got - lat) ** 2)) < 0.4 / np.sqrt(12) * 1.1


def _expect(tmp_path: Path, data: bytes, pattern: str, salvage: bool = False) -> None:
    with pytest.raises(AlatFormatError, match=pattern):
        with AlatReader(_write(tmp_path, data, "bad.alat"), salvage=salvage) as r:
            r.verify()


def test_damage_is_named(tmp_path: Path) -> None:
    h = make_header()
    data, _ = make_file(h)
    _expect(tmp_path, b"RIFF" + data[4:], "not a .alat file")
    _expect(tmp_path, b"", "truncated")
    _expect(tmp_path, data[:3], "truncated")
    _expect(tmp_path, data[:8] + struct.pack("<H", 4) + data[10:], "version 4 is not supported")
    flipped = bytearray(data)
    flipped[40] ^= 1
    _expect(tmp_path, bytes(flipped), "header CRC mismatch")
    huge = bytearray(data)
    huge[10:14] = struct.pack("<I", 1 << 30)
    _expect(tmp_path, bytes(huge), "header length")
    _expect(tmp_path, data[:-1], "truncated|end marker")
    _expect(tmp_path, data[:len(data) // 2], "truncated")
    rec = bytearray(data)
    r0 = AlatReader(_write(tmp_path, data))
    off = r0.offsets[3]
    r0.close()
    rec[off + 100] ^= 0x10
    _expect(tmp_path, bytes(rec), r"chunk 1 channel 1 at offset \d+: record CRC mismatch")


def test_absurd_counts_allocate_nothing(tmp_path: Path) -> None:
    """A header claiming a year of audio in a small file is refused before anything is read."""
    h = make_header(channels=1, seconds=10)
    h.num_samples = 16000 * 3600 * 24 * 365
    data, _ = make_file(make_header(channels=1, seconds=10))
    forged = h.encode() + data[len(make_header(channels=1, seconds=10).encode()):]
    _expect(tmp_path, forged, "records cannot fit")


def test_salvage_skips_damaged_records(tmp_path: Path) -> None:
    h = make_header(channels=2, seconds=20)
    data, lats = make_file(h)
    good = AlatReader(_write(tmp_path, data))
    want = [lat for _, _, lat in good]
    damaged = bytearray(data)
    damaged[good.offsets[2] + 50] ^= 0xFF  # chunk 1 channel 0
    damaged[good.offsets[5] + 30:good.offsets[5] + 60] = bytes(30)  # chunk 2 channel 1
    good.close()
    path = _write(tmp_path, bytes(damaged[:-10]), "bad.alat")  # and no end marker
    with pytest.raises(AlatFormatError):
        AlatReader(path)
    with AlatReader(path, salvage=True) as r:
        assert r.lost == [(1, 0), (2, 1)]
        for (chunk, ch, got), w in zip(r, want):
            if (chunk, ch) in r.lost:
                assert got is None
            else:
                assert np.array_equal(got, w)


def test_v3_last_chunk_holds_the_frames_that_cover_audio() -> None:
    """R mel frames of the file in the last chunk: its records hold ceil(R / 4) latent frames; version 2's
    records of the same header all hold a whole chunk."""
    h3, h2 = vector_header(3), vector_header(2)
    rest = h3.num_samples // h3.mel.hop + 1 - (h3.num_chunks - 1) * h3.chunk_frames
    assert rest == 1 and h3.record_shape(h3.num_chunks - 1) == (8, 1, 16)
    assert [h3.record_shape(k) for k in range(h3.num_chunks - 1)] == [h3.latent_shape] * (h3.num_chunks - 1)
    assert {h2.record_shape(k) for k in range(h2.num_chunks)} == {h2.latent_shape}
    whole = replace(make_header(channels=1, seconds=10), steps=[0.4] * 8)  # 1001 mel frames, 2 chunks of 500
    assert whole.version == 3 and whole.record_shape(1) == whole.latent_shape
