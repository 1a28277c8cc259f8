"""Each point of spec/alat-format.md that an outside reader, writing a decoder from the page alone, had to
guess at (issue 23), pinned against the real reader and writer: files forged to break the rule must be
refused with the package's error, and the layouts are checked from the bytes."""
from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from latentcodec.audio.mel import AUDIOLDM_MEL, reflect_index
from latentcodec.errors import AlatFormatError
from latentcodec.format.container import AlatReader, write_bytes
from latentcodec.format.entropy import encode_codes, frequency_table, half_width
from latentcodec.format.header import Header
from latentcodec.format.quantize import BITS
from latentcodec.format.transform_coder import octave_index
from tests.alat_fixtures import make_file, make_header
from tests.forge import forge, seal_header
from tests.fuzzing import reseal
from tests.test_entropy import _SpecAns
from tests.vectors.vector_spec import vector_header

SPEC = Path(__file__).resolve().parents[1] / "spec" / "alat-format.md"
VECTORS = Path(__file__).parent / "vectors"
UNIFORM = ([256] * 65536, list(range(0, 1 << 24, 256)))


def _read_all(data: bytes) -> list[np.ndarray]:
    """Every record's latent, strictly: the package's reader, as a user runs it."""
    with AlatReader(io.BytesIO(data)) as r:
        return [z for _, _, z in r]


def _refused(data: bytes, match: str) -> None:
    with pytest.raises(AlatFormatError, match=match):
        _read_all(data)


def _record(k: int, c: int, stats: bytes, payload: bytes, flags: int = 0, reserved: int = 0) -> bytes:
    """One record as the spec lays it out, its CRC computed."""
    rec = b"ALCK" + struct.pack("<IHBBI", k, c, flags, reserved, len(payload)) + stats + payload
    return rec + struct.pack("<I", zlib.crc32(rec))


def _file(h: Header, blobs: list[bytes], offsets: list[int] | None = None) -> bytes:
    """The header, then ``blobs`` back to back, then an index (of where each blob begins, unless ``offsets``
    says otherwise) and the end marker, every CRC computed."""
    head = h.encode()
    starts = np.cumsum([len(head)] + [len(b) for b in blobs])
    index_off = int(starts[-1])
    offsets = [int(o) for o in starts[:-1]] if offsets is None else offsets
    index = b"ALIX" + struct.pack(f"<I{len(offsets)}Q", len(offsets), *offsets)
    end = struct.pack("<Q", index_off)
    return reseal(head + b"".join(blobs) + index + bytes(4) + end + bytes(4) + b"ALND")


def _v2(version: int = 2, **fields: object) -> Header:
    """A mono version-2 (or 3) header, identity transform, steps 0.5, two 1-s chunks of 100 mel frames."""
    h = replace(make_header(channels=1, seconds=2, chunk_frames=100), steps=[0.5] * 8, transform=np.eye(8).tolist(),
                coder_version=version)
    return replace(h, **fields)


def _stats(alpha: list[int], beta: list[int] | None = None, gamma: list[int] | None = None) -> bytes:
    """Version 2's stats: per component u8 α, i8 β, i8 γ, interleaved."""
    n = len(alpha)
    rows = zip(alpha, beta or [0] * n, gamma or [0] * n)
    return b"".join(struct.pack("<Bbb", a, b, g) for a, b, g in rows)


# 1. Bits per value: exactly 2, 3, 4, 5, 6, 8 and 16.

def test_bits_per_value_is_one_of_2_3_4_5_6_8_16() -> None:
    assert BITS == (16, 8, 6, 5, 4, 3, 2)
    base, _ = make_file(make_header(channels=1, seconds=1, bits=8, chunk_frames=100))
    for bits in range(18):
        if bits in (2, 3, 4, 5, 6, 8, 16):
            data, _ = make_file(make_header(channels=1, seconds=1, bits=bits, chunk_frames=100))
            assert len(_read_all(data)) == 1
        else:  # with the quantizer that bit depth would have, so that the bit depth alone is wrong
            _refused(forge(base, bits=bits, quantizer=1), f"header is inconsistent: quantizer at {bits} bits")


# 2 and 9. The ANS coder: coding order (decode order), the encoder's final flush, no zero last word.

def _tables(j: int) -> tuple[list[int], list[int]]:
    freq = frequency_table(j).tolist()
    return freq, [0] + np.cumsum(freq)[:-1].tolist()


def _coding_order(codes: np.ndarray, scales: np.ndarray) -> list[tuple[int, tuple[list[int], list[int]]]]:
    """(symbol, (freq, cum)) as the spec's "Coding order" lists them: the order a decoder pops them."""
    flat, sc = codes.ravel().tolist(), scales.ravel().tolist()
    out, escaped = [], []
    for n in sorted(range(len(flat)), key=lambda n: (sc[n], n)):
        r = half_width(sc[n])
        if abs(flat[n]) >= r:
            escaped.append(n)
        out.append((2 * r - 1 if abs(flat[n]) >= r else flat[n] + r - 1, _tables(sc[n])))
    for n in sorted(escaped):
        e = flat[n] + (1 << 31)
        out += [(e % (1 << 16), UNIFORM), (e >> 16, UNIFORM)]
    return out


def _spec_encode(symbols: list[tuple[int, tuple[list[int], list[int]]]]) -> bytes:
    """The spec's encoder: from state 0, each symbol pushed in the reverse of the coding order, then the flush
    (nothing for state 0, else the low word, then the high word when it is not 0)."""
    state, words = 0, []
    for sym, (freq, cum) in reversed(symbols):
        if state >> 40 >= freq[sym]:
            words.append(state & 0xFFFFFFFF)
            state >>= 32
        state = (state // freq[sym] << 24) + cum[sym] + state % freq[sym]
    if state:
        words.append(state & 0xFFFFFFFF)
        if state >> 32:
            words.append(state >> 32)
    return struct.pack(f"<{len(words)}I", *words)


def _codes_and_scales(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = rng.choice([0, 7, 20, 33], size=(2, 3, 5)).astype(np.uint8)
    codes = np.rint(rng.laplace(scale=2.0 ** ((scales.astype(float) - 20) / 4))).astype(np.int64)
    codes[0, 0, :2] = [5000, -(2**31) + 1]  # escapes
    return codes, scales


@pytest.mark.parametrize("seed", range(4))
def test_coding_order_is_the_decode_order_and_the_encoder_pushes_it_reversed(seed: int) -> None:
    codes, scales = _codes_and_scales(seed)
    order = _coding_order(codes, scales)
    payload = encode_codes(codes, scales)
    assert _spec_encode(order) == payload  # the package's encoder is the spec's, symbol for symbol
    ans = _SpecAns(payload)
    assert [ans.decode(freq) for _, (freq, _) in order] == [sym for sym, _ in order] and ans.finished()
    assert payload[-4:] != bytes(4)


def test_final_state_0_is_the_empty_payload_and_a_zero_last_word_is_damage() -> None:
    scales = np.array([[0, 20, 40, 63]], np.uint8)
    lowest = -(np.array([half_width(int(j)) for j in scales.ravel()]) - 1).reshape(scales.shape)
    assert encode_codes(lowest, scales) == b"" == _spec_encode(_coding_order(lowest, scales))
    one = np.zeros((1, 1), np.int64)
    assert encode_codes(one, np.zeros((1, 1), np.uint8)) == struct.pack("<I", 1)  # state 1: one word, not 0
    h = _v2()
    codes = np.zeros(h.latent_shape, np.int64)
    codes[0, 0, 0] = 3
    payload = encode_codes(codes, np.full(h.latent_shape, 20, np.uint8))
    good = [_record(k, 0, _stats([20] * 8), payload) for k in range(2)]
    assert len(_read_all(_file(h, good))) == 2
    bad = [good[0], _record(1, 0, _stats([20] * 8), payload + bytes(4))]
    _refused(_file(h, bad), "payload ends in a zero word")


# 3 and 6. Index offsets: contiguous; checked at open, then exactly at each record read.

def test_writer_writes_contiguous_offsets_and_a_gap_is_damage() -> None:
    h = make_header(channels=2, seconds=2, bits=4, chunk_frames=100)
    data, _ = make_file(h)
    with AlatReader(io.BytesIO(data)) as r:
        sizes = r.record_sizes()
        assert r.offsets[0] == r.data_start
        assert [b - a for a, b in zip(r.offsets, r.offsets[1:] + [r.index_offset])] == sizes
        blobs = [data[o:o + s] for o, s in zip(r.offsets, sizes)]
    gapped = _file(h, [blobs[0] + b"\0\0\0\0"] + blobs[1:])
    with AlatReader(io.BytesIO(gapped)) as r:  # the index passes its checks (it rises by more than the minimum)
        assert r.read(0, 1) is not None
        with pytest.raises(AlatFormatError, match=r"chunk 0 channel 0 at offset \d+ ends at byte \d+, but the next"):
            r.read(0, 0)
    starts = [len(h.encode()) + sum(sizes[:n]) for n in range(len(sizes))]
    starts[1] = starts[0] + 20 + h.stats_size - 1  # less than the minimum record size past the previous
    _refused(_file(h, blobs, offsets=starts), "impossible record offsets")


def test_last_offset_plus_the_minimum_record_size_is_at_most_the_index_offset() -> None:
    h = _v2()
    recs = [_record(k, 0, _stats([0] * 8), b"") for k in range(2)]  # empty payloads: minimum-size records
    data = _file(h, recs)
    assert len(_read_all(data)) == 2  # the last record ends exactly at the index: allowed
    head = len(h.encode())
    last = head + len(recs[0]) + 1  # still before the index, but a minimum record would run into it
    _refused(_file(h, recs, offsets=[head, last]), "impossible record offsets")


# 4. Mel kind and axis order: 0, anything else refused.

@pytest.mark.parametrize("field, value", [("mel_kind", 1), ("mel_kind", 255), ("axes", 1), ("axes", 255)])
def test_mel_kind_and_axis_order_other_than_0_are_refused(field: str, value: int) -> None:
    data, _ = make_file(make_header(channels=1, seconds=1, chunk_frames=100))
    assert len(_read_all(data)) == 1
    _refused(forge(data, **{field: value}), "header is inconsistent: mel kind")


# 5. The reserved byte and the unused bits of version 1's last byte: both checked.

def test_reserved_record_byte_is_checked() -> None:
    data, _ = make_file(make_header(channels=1, seconds=1, chunk_frames=100))
    with AlatReader(io.BytesIO(data)) as r:
        off = r.offsets[0]
    forged = bytearray(data)
    forged[off + 11] = 1
    _refused(reseal(bytes(forged)), "record flags")


def test_unused_high_bits_of_the_last_version_1_byte_are_checked() -> None:
    h = replace(make_header(channels=1, seconds=0.04, bits=3), chunk_frames=4, context_frames=0, latent_channels=1,
                mel=replace(AUDIOLDM_MEL, n_mels=12))
    assert (h.values, h.raw_payload_size, h.num_chunks) == (3, 2, 1)  # 9 bits: bits 1..7 of byte 1 unused
    data = write_bytes(h, [np.array([[[0.0, 1.0, 2.0]]], np.float16)])
    last = len(h.encode()) + 16 + 8 + 1
    assert data[last] == 1  # the third code, 7, has its high bit in bit 0; the writer pads with 0
    for flip, ok in ((1, True), (2, False), (128, False)):
        forged = bytearray(data)
        forged[last] ^= flip
        if ok:
            assert _read_all(reseal(bytes(forged)))[0][0, 0, 2] < 2.0  # a used bit: another code, no damage
        else:
            _refused(reseal(bytes(forged)), "unused bits of the payload's last byte are not 0")


# 7. zstd: exactly one frame, nothing after it; the strings: UTF-8.

def test_a_zstd_payload_is_exactly_one_frame() -> None:
    from latentcodec.format.container import zstd_module

    zstd = zstd_module()

    h = make_header(channels=1, seconds=1, bits=8, zstd=5, chunk_frames=100)
    frame = zstd.compress(bytes(h.raw_payload_size), level=5)
    skippable = b"\x50\x2a\x4d\x18" + struct.pack("<I", 4) + b"abcd"

    def with_payload(payload: bytes) -> bytes:
        return _file(h, [_record(0, 0, bytes(h.stats_size), payload, flags=1)])

    assert not _read_all(with_payload(frame))[0].any()
    for payload in (frame + b"\0", frame + skippable, frame + zstd.compress(b""),
                    frame + zstd.compress(b"x"), skippable + frame, frame[:-1]):
        _refused(with_payload(payload), "bad zstd data")


def test_every_form_of_zstd_frame_header_is_sized() -> None:
    """Frames with and without a content size (one-shot and streamed), with a checksum, with a dictionary
    id: each is found to end where it does (RFC 8878 3.1.1)."""
    from latentcodec.format.container import zstd_frame_size, zstd_module

    zstd = zstd_module()
    raw = bytes(range(256)) * 40
    streamed = zstd.ZstdCompressor()
    frames = [zstd.compress(raw), streamed.compress(raw) + streamed.flush(),
              zstd.compress(raw, options={zstd.CompressionParameter.checksum_flag: 1}),
              zstd.compress(raw, options={zstd.CompressionParameter.content_size_flag: 0}),
              zstd.compress(raw, zstd_dict=zstd.train_dict([bytes([i % 7]) * 100 + bytes(range(i % 50))
                                                            for i in range(2000)], 1024))]
    assert {f[4] for f in frames} == {0b1100000, 0b0, 0b1100100, 0b1100011}  # single segment or a window
    # byte, 8 content-size bytes or none, a checksum, a 4-byte dictionary id
    for frame in frames:
        assert zstd_frame_size(frame + b"tail") == len(frame)


@pytest.mark.parametrize("where", ["model name", "tool version"])
@pytest.mark.parametrize("bad", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
def test_model_name_and_tool_version_must_be_utf8(where: str, bad: bytes) -> None:
    h = replace(make_header(channels=1, seconds=1, chunk_frames=100), model_name="modèle-ü", tool_version="outil ✓")
    data, _ = make_file(h)
    with AlatReader(io.BytesIO(data)) as r:
        assert (r.header.model_name, r.header.tool_version) == ("modèle-ü", "outil ✓")
    at = data.index("modèle-ü".encode() if where == "model name" else "outil ✓".encode())
    forged = bytearray(data)
    forged[at:at + len(bad)] = bad  # same length: no field moves
    _refused(seal_header(forged), "malformed header fields")


# 8. A version-2 payload length that is not whole words, or too long: record damage, one error.

@pytest.mark.parametrize("length", [6, 4 * (-(-7 * 8 * 25 * 16 // 4) + 2) + 4])
def test_a_wrong_v2_payload_length_is_a_record_error(length: int) -> None:
    h = _v2()
    recs = [_record(k, 0, _stats([0] * 8), b"") for k in range(2)]
    data = bytearray(_file(h, recs[:1] + [_record(1, 0, _stats([0] * 8), bytes(length % 4 + 4))]))
    off = len(h.encode()) + len(recs[0])
    struct.pack_into("<I", data, off + 12, length)
    _refused(reseal(bytes(data)), rf"chunk 1 channel 0 at offset {off}: payload length {length} is impossible")


# 10. Stats layout: interleaved per latent channel (version 1) or component (versions 2 and 3).

def test_version_1_stats_are_min_and_step_interleaved_per_latent_channel() -> None:
    h = make_header(channels=1, seconds=1, bits=4, chunk_frames=100)
    lat = np.zeros(h.latent_shape, np.float16)
    for i in range(8):
        lat[i, 0, 0], lat[i, 1, 0] = -(i + 1), 2 * (i + 1)
    data = write_bytes(h, [lat])
    off = len(h.encode())
    for i in range(8):
        lo, step = struct.unpack_from("<ff", data, off + 16 + 8 * i)
        assert (lo, step) == (-(i + 1), np.float32(3 * (i + 1) / 15))
    two = vector_header(1)  # the header's per-channel offset and gain are interleaved too
    assert struct.unpack_from("<4f", two.encode(), 14 + 80) == tuple(np.float32([0.001, 1.5, -0.002, 2.25]))


def test_version_2_stats_are_alpha_beta_gamma_interleaved_per_component() -> None:
    h = _v2()
    stats = bytearray(_stats([0] * 8))
    stats[3], stats[4] = 40, 32  # component 1: α = 40, β = 32; under a grouped layout these would be α[3], α[4]
    with AlatReader(io.BytesIO(_file(h, [_record(k, 0, bytes(stats), b"") for k in range(2)]))) as r:
        codes = r.codes(0, 0)
    ut = octave_index(h.latent_shape[1])
    want = np.full(h.latent_shape, -1)  # table 0 everywhere else: R = 2
    want[1] = -(np.array([half_width(min(63, 40 + int(u))) for u in ut]) - 1)[:, None]  # j = 40 + U(kt)
    assert np.array_equal(codes, want)


# 11. The inverse DCT: orthonormal, at T and at version 3's shorter T'; then KLT transposed.

def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II of length n from the spec's formula: row u, column t."""
    u, t = np.arange(n)[:, None], np.arange(n)[None, :]
    return np.where(u == 0, np.sqrt(1 / n), np.sqrt(2 / n)) * np.cos(np.pi * u * (2 * t + 1) / (2 * n))


def test_idct_is_the_orthonormal_dct_iii_at_t_and_t_prime() -> None:
    klt = [[0.0, 1.0], [-1.0, 0.0]]  # a signed permutation, exact in f16: row l makes component l
    h = replace(make_header(channels=1, seconds=0.24), chunk_frames=16, context_frames=8, latent_channels=2,
                steps=[0.5, 2.0], transform=klt, coder_version=3)
    assert [h.record_shape(k) for k in range(h.num_chunks)] == [(2, 4, 16), (2, 3, 16)]  # F' = 9, T' = 3
    rng = np.random.default_rng(5)
    codes = [rng.integers(-20, 21, size=h.record_shape(k)) for k in range(2)]
    recs = [_record(k, 0, _stats([20, 20]), encode_codes(q, np.full(q.shape, 20, np.uint8)))
            for k, q in enumerate(codes)]
    with AlatReader(io.BytesIO(_file(h, recs))) as r:
        got = [r.read(k, 0) for k in range(2)]
    for q, z in zip(codes, got):
        coef = q * np.array([0.5, 2.0])[:, None, None]
        ct, cw = _dct_matrix(q.shape[1]), _dct_matrix(q.shape[2])
        y = np.einsum("ut,luv,vw->ltw", ct, coef, cw)
        want = np.einsum("li,ltw->itw", np.array(klt), y)
        assert np.allclose(z, want, rtol=1e-6, atol=1e-5)


# 12. Symbols: one meaning each.

def test_each_symbol_of_the_spec_means_one_thing() -> None:
    text = SPEC.read_text()
    table = text.split("## Symbols", 1)[1].split("\n## ", 1)[0]
    names = [n for row in re.findall(r"^\| (`[^|]+`) \|", table, re.M) for n in re.findall(r"`([^`]+)`", row)]
    assert len(names) == len(set(names)) and {"K", "KLT", "B", "C", "R", "D", "F'", "α", "β", "γ"} <= set(names)
    declared = re.findall(r"\(`([A-Z])`\)", text.split("## Header", 1)[1].split("## Bounds", 1)[0])
    assert set(declared) <= set(names) and len(declared) == len(set(declared))
    assert "`KLT[l][i]`" in text and "`u8 α` at 16 + 3l" in text


# 13. An empty version-2 payload: every code -(R - 1) of its table.

def test_an_empty_v2_payload_decodes_every_code_to_minus_r_minus_1() -> None:
    h = _v2()
    alpha = [0, 10, 20, 30, 40, 50, 60, 63]
    with AlatReader(io.BytesIO(_file(h, [_record(k, 0, _stats(alpha), b"") for k in range(2)]))) as r:
        codes = r.codes(1, 0)
        assert np.isfinite(r.read(1, 0)).all()
    for l, a in enumerate(alpha):
        assert (codes[l] == -(half_width(a) - 1)).all()


# 14. Mirroring: numpy's "reflect", the edge frame not repeated.

def test_mirroring_is_numpy_reflect_without_the_edge_frame() -> None:
    from latentcodec.codec import _MelSource, latent_window
    from latentcodec.timings import Timings

    for size in range(1, 6):
        pos = np.arange(-12, 12 + size)
        rem = np.mod(pos, max(1, 2 * (size - 1)))
        formula = np.zeros_like(pos) if size == 1 else np.where(rem < size, rem, 2 * (size - 1) - rem)
        assert np.array_equal(reflect_index(pos, size), formula)
        assert np.array_equal(np.pad(np.arange(size), (12, 12), mode="reflect"), formula)
    own = np.arange(5, dtype=np.float32)[None, :, None]  # frame t holds t
    window = latent_window(lambda k: own if k == 0 else None, 0, 3)
    assert window[0, :, 0].tolist() == [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]
    h = _v2(version=3, num_samples=21_000, original_frames=21_000)  # F' = 32, T' = 8 of T = 25
    rng = np.random.default_rng(7)
    codes = [rng.integers(-5, 6, size=h.record_shape(k)) for k in range(2)]
    recs = [_record(k, 0, _stats([20] * 8), encode_codes(q, np.full(q.shape, 20, np.uint8)))
            for k, q in enumerate(codes)]
    with AlatReader(io.BytesIO(_file(h, recs))) as r:
        short = r.read(1, 0)
        extended = _MelSource(r, None, 1, Timings(), None, None)._latent(1, 0)
    assert short.shape[1] == 8 and extended.shape[1] == 25
    assert np.array_equal(extended, short[:, [0, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7,
                                              6, 5, 4]])


# 15. The test vectors' layout.

@pytest.mark.parametrize("version", [2, 3])
def test_vector_codes_layout(version: int) -> None:
    with open(VECTORS / f"v{version}_codes.npy", "rb") as f:
        assert np.lib.format.read_magic(f) == (1, 0)
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    assert dtype == np.dtype("<i8") and not fortran
    codes = np.load(VECTORS / f"v{version}_codes.npy")
    with AlatReader(VECTORS / f"v{version}.alat") as r:
        h = r.header
        assert (h.num_chunks, h.channels, h.latent_shape) == (3, 2, (8, 4, 16))
        records = [r.codes(*divmod(n, h.channels)) for n in range(h.num_records)]
    if version == 2:
        assert shape == (6, 8, 4, 16)
        assert all(np.array_equal(codes[n], q) for n, q in enumerate(records))
    else:
        assert shape == (2304,) and [q.shape for q in records] == [(8, 4, 16)] * 4 + [(8, 1, 16)] * 2
        assert np.array_equal(codes, np.concatenate([q.ravel() for q in records]))


# 16. The transform a model without coder.json gets: fitted on the first FIT_CHUNKS chunks it has.

def test_transform_is_fitted_on_the_first_chunks_without_looking_ahead() -> None:
    from latentcodec.codec import FIT_CHUNKS, _fit_transform
    from latentcodec.format.transform_coder import fit_transform

    h = replace(make_header(channels=2, seconds=20), steps=[0.4] * 8)
    rng = np.random.default_rng(3)
    mix = rng.normal(size=(8, 8))
    lats = [np.einsum("ij,jtm->itm", mix, rng.normal(size=h.latent_shape)) for _ in range(h.num_records)]
    pulled = []

    def records() -> Iterator[tuple[int, int, np.ndarray]]:
        for n, z in enumerate(lats):
            pulled.append(n)
            yield (*divmod(n, h.channels), z)

    out, fitted = _fit_transform(records(), h)
    assert FIT_CHUNKS == 2 and len(pulled) == FIT_CHUNKS * h.channels  # the rest not yet made: a stream
    k = np.asarray(fitted.transform)
    assert np.array_equal(k, fit_transform(lats[:4]).astype(np.float16).astype(np.float64))
    assert np.allclose(k @ k.T, np.eye(8), atol=2e-3) and (k[np.arange(8), np.abs(k).argmax(axis=1)] > 0).all()
    z = np.concatenate([x.reshape(8, -1) for x in lats[:4]], axis=1)
    var = np.var(k @ z, axis=1)
    assert (np.diff(var) <= 1e-3 * var[0]).all()  # rows in order of falling variance
    assert all(z is lats[n] and (k, c) == divmod(n, 2) for n, (k, c, z) in enumerate(out))
    assert len(pulled) == len(lats)
