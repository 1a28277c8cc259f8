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
from tests.forge import forge, read_field, seal_header
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
            _refused(forge(base, bits=bits, quantizer=1), f"header is inconsistent: bits per value {bits} ")


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
    name = "mel kind" if field == "mel_kind" else "latent axis order"
    _refused(forge(data, **{field: value}), f"header is inconsistent: {name} {value}$")


# 5. The reserved byte and the unused bits of version 1's last byte: both checked.

def test_reserved_record_byte_is_checked() -> None:
    data, _ = make_file(make_header(channels=1, seconds=1, chunk_frames=100))
    with AlatReader(io.BytesIO(data)) as r:
        off = r.offsets[0]
    forged = bytearray(data)
    forged[off + 11] = 1
    _refused(reseal(bytes(forged)), "chunk 0 channel 0 at offset \\d+: reserved byte 0x1 at record offset 11 is not 0")


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


# Issue 40, 1. The bits field of versions 2 and 3: 0, anything else refused (the vectors store 0).

@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("bits", [1, 5, 255])
def test_bits_field_of_versions_2_and_3_must_be_0(version: int, bits: int) -> None:

    data = (VECTORS / f"v{version}.alat").read_bytes()
    assert read_field(data, "bits") == 0 and len(_read_all(data)) == 6
    _refused(forge(data, bits=bits), rf"header is inconsistent: bits per value {bits} \(versions 2 and 3 store 0\)")


# Issue 40, 2. X <= F stands; the writer writes X = min(32, F), and writes no header its reader refuses.

def test_the_writer_refuses_a_header_its_reader_refuses_before_writing_a_byte() -> None:
    h = replace(make_header(channels=1, seconds=0.16, chunk_frames=16), context_frames=32)
    out = io.BytesIO()
    with pytest.raises(AlatFormatError, match="refusing to write .*: header is inconsistent: context 32 frames for "
                                              "chunks of 16"):
        write_bytes(h, [])
    with pytest.raises(AlatFormatError, match=r"step nan of component 0"):
        from latentcodec.format.container import AlatWriter

        AlatWriter(out, _v2(steps=[float("nan")] + [0.5] * 7))
    assert out.getvalue() == b""
    _refused(_file(replace(h, context_frames=36), []), "context 36 frames for chunks of 16")


def test_files_of_0_2_0_with_more_context_than_chunk_still_decode(tmp_path: Path, tiny_model: str) -> None:
    """latentcodec 0.2.0 wrote X = 32 whatever F: such a file reads, and decodes with min(X, F) of context."""
    import latentcodec

    x = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    latentcodec.encode(x, 16000, tmp_path / "new.alat", model=tiny_model, chunk_seconds=0.16)
    data = (tmp_path / "new.alat").read_bytes()
    assert read_field(data, "context") == 16
    (tmp_path / "old.alat").write_bytes(forge(data, context=32))
    new, _ = latentcodec.decode(tmp_path / "new.alat", model=tiny_model, gl_iters=2)
    old, _ = latentcodec.decode(tmp_path / "old.alat", model=tiny_model, gl_iters=2)
    assert np.array_equal(new, old) and len(old) == 8000


@pytest.mark.parametrize("seconds, frames, context", [(0.04, 4, 4), (0.16, 16, 16), (0.28, 28, 28), (0.32, 32, 32),
                                                      (5.0, 500, 32), (20.0, 2000, 32)])
def test_encoder_writes_context_at_most_the_chunk(tmp_path: Path, tiny_model: str, seconds: float, frames: int,
                                                  context: int) -> None:
    import latentcodec

    res = latentcodec.encode(np.zeros(800, np.float32), 16000, tmp_path / "x.alat", model=tiny_model,
                             chunk_seconds=seconds)
    assert (res.header.chunk_frames, res.header.context_frames) == (frames, context)
    with AlatReader(tmp_path / "x.alat") as r:
        assert (r.header.chunk_frames, r.header.context_frames) == (frames, context)
    assert "*min(32, F)*" in SPEC.read_text()


@pytest.mark.parametrize("seconds", [0.0, 0.01, 20.5, 600.0, float("nan"), float("inf")])
def test_chunks_outside_the_writers_bound_are_refused_naming_the_argument(seconds: float) -> None:
    from latentcodec.codec import chunk_frames_for
    from latentcodec.errors import LatentCodecError

    with pytest.raises(LatentCodecError, match=r"a chunk must be 0.04 to 20 s") as e:
        chunk_frames_for(seconds)
    assert e.value.param == "chunk_seconds"
    assert "latentcodec writes F <= 2,000 (20 s" in SPEC.read_text()


# Issue 40, 4. latents() in version 3: (K - 1) T + T' frames; K T in versions 1 and 2.

@pytest.mark.parametrize("version, frames", [(1, 12), (2, 12), (3, 9)])
def test_latents_frames_are_k_t_or_k_minus_1_t_plus_t_prime(version: int, frames: int) -> None:
    with AlatReader(VECTORS / f"v{version}.alat") as r:
        h = r.header
        assert r.latents(1).shape == (h.latent_channels, frames, h.latent_shape[2])
    assert "(K - 1) × T + T' in version 3" in " ".join(SPEC.read_text().split())


# Issue 40, 5. A relative tolerance for z, which scales with the step; T > 128 along time through an FFT.

def _exact_latent(codes: np.ndarray, steps: list[float], klt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z from the spec's formulas in binary64 matrices, and the tolerance's Z[i] (broadcast to z's shape)."""
    ct, cw = _dct_matrix(codes.shape[1]), _dct_matrix(codes.shape[2])
    coef = codes * np.asarray(steps)[:, None, None]
    z = np.einsum("li,ltw->itw", klt, np.einsum("ut,luv,vw->ltw", ct, coef, cw))
    scale = np.abs(ct[:, :1]) @ np.abs(cw[:1, :]) * np.sqrt(codes.shape[1] * codes.shape[2])  # s(kt) s(kw)
    bound = np.abs(klt).T @ np.einsum("luv,uv->l", np.abs(coef), scale)
    return z, np.broadcast_to(bound[:, None, None], z.shape)


@pytest.mark.parametrize("frames", [16, 800, 4000])
def test_latents_agree_within_the_relative_tolerance_at_any_step(frames: int) -> None:
    rng = np.random.default_rng(frames)
    klt = np.linalg.qr(rng.normal(size=(4, 4)))[0].astype(np.float16).astype(np.float64)
    steps = [65504.0, 1.0, 1e-3, 300.0]
    h = replace(make_header(channels=1, seconds=frames / 100 - 0.01), chunk_frames=frames, context_frames=8,
                latent_channels=4, steps=steps, transform=klt.tolist(), coder_version=2)
    codes = rng.integers(-30, 31, size=h.latent_shape)
    rec = _record(0, 0, _stats([40] * 4), encode_codes(codes, np.full(codes.shape, 40, np.uint8)))
    z = _read_all(_file(h, [rec]))[0]
    exact, bound = _exact_latent(codes, steps, klt)
    assert (np.abs(z - exact) <= 2.0 ** -20 * bound).all()
    assert np.abs(z - exact).max() > 1e-4  # an absolute tolerance would fail at a step of 65504


@pytest.mark.parametrize("version", [2, 3])
def test_vectors_are_within_the_relative_tolerance(version: int) -> None:
    expected = np.load(VECTORS / f"v{version}_expected.npy")
    h = vector_header(version)
    codes = np.concatenate([c.ravel() for c in _vector_codes(version, h)])
    klt = np.asarray(h.transform)
    got, bounds = [], []
    with AlatReader(VECTORS / f"v{version}.alat") as r:
        for n in range(h.num_records):
            q = r.codes(*divmod(n, h.channels))
            z, b = _exact_latent(q, h.steps, klt)
            got.append(z.ravel()), bounds.append(b.ravel())
            assert np.array_equal(r.read(*divmod(n, h.channels)).ravel(), expected.reshape(-1)[
                sum(x.size for x in got[:-1]):sum(x.size for x in got)])  # the reference reader: bit for bit
    assert (np.abs(np.concatenate(got) - expected.ravel()) <= 2.0 ** -20 * np.concatenate(bounds)).all()
    assert codes.size == expected.size


def _vector_codes(version: int, h: Header) -> list[np.ndarray]:
    with AlatReader(VECTORS / f"v{version}.alat") as r:
        return [r.codes(*divmod(n, h.channels)) for n in range(h.num_records)]


def test_a_long_chunk_needs_no_t_by_t_matrix() -> None:
    """A version-2 file of F = 60,000 at hop 1 and 4 bands (T = 15,000, V = 15,000): its latent costs a few
    times V bytes, where a T x T DCT matrix took 3.5 GB."""
    import tracemalloc

    mel = replace(AUDIOLDM_MEL, n_fft=2, hop=1, win=2, n_mels=4)
    h = replace(_v2(num_samples=1, original_frames=1, latent_channels=1, steps=[1.0], transform=[[1.0]]),
                chunk_frames=60000, context_frames=32, mel=mel)
    data = _file(h, [_record(0, 0, _stats([20]), b"")])
    tracemalloc.start()
    z = _read_all(data)[0]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert z.shape == (1, 15000, 1) and peak < 64 * h.values + (2 << 20), peak
    kt, q = np.arange(15000), -(half_width(20) - 1)  # every code of table 20's lowest, W = 1: s(0, 1) = 1
    scale = np.where(kt == 0, np.sqrt(1 / 15000), np.sqrt(2 / 15000))
    for t in (0, 1, 7499, 14999):
        exact = np.sum(scale * q * np.cos(np.pi * kt * (2 * t + 1) / 30000))
        assert abs(z[0, t, 0] - exact) <= 2.0 ** -20 * np.sum(scale * abs(q))


# Issue 40, 6. θ: ldexp of correctly rounded constants, as the spec writes them.

def test_theta_is_ldexp_of_the_spec_constants() -> None:
    from decimal import Decimal, getcontext

    from latentcodec.format.entropy import QUARTER_OCTAVES, laplace_scale

    getcontext().prec = 50
    spec_constants = re.findall(r"2\^0\.(25|5|75) = (0x1\.[0-9a-f]+p\+0)", SPEC.read_text())
    assert [float.fromhex(c) for _, c in spec_constants] == list(QUARTER_OCTAVES[1:])
    for f, c in enumerate(QUARTER_OCTAVES):
        exact = Decimal(2) ** (Decimal(f) / 4)
        assert all(abs(Decimal(c) - exact) <= abs(Decimal(n) - exact) for n in (np.nextafter(c, 0), np.nextafter(c, 2)))
    for j in range(64):
        theta = laplace_scale(j)
        assert theta == QUARTER_OCTAVES[(j - 20) % 4] * 2.0 ** ((j - 20) // 4)
        assert j % 4 == 0 or abs(16 * theta - round(16 * theta)) > 0.007


# Issue 40, 7. The header's check order: H >= 80 before any field, then the layout, then the rules in order.

def test_header_checks_run_in_the_spec_order() -> None:
    data, _ = make_file(make_header(channels=1, seconds=1, chunk_frames=100))
    short = bytearray(data)
    struct.pack_into("<I", short, 10, 79)
    _refused(seal_header(short), "header length 79 at offset 10 is impossible \\(80 to 65536\\)")
    _refused(forge(data, channels=0, mel_kind=1), r"inconsistent: 0 channels")  # C before the kinds
    _refused(forge(data, mel_kind=1, samples=0), r"inconsistent: mel kind 1$")  # the kinds before the rules
    _refused(forge(data, chunk_frames=3), r"inconsistent: latent shape 8x25x16 for 3 x 64 mel$")  # T = F / 4 first
    _refused(forge(data, samples=0, context=6), r"inconsistent: sample count 0$")  # N before X
    _refused(forge(data, context=6, hop=0), r"inconsistent: context 6 frames for chunks of 100")  # X before the hop
    _refused(forge(data, chunks=7, bits=7), r"inconsistent: bits per value 7 ")  # the rules before K
    long_name = bytearray(data)
    struct.pack_into("<H", long_name, 14 + 80 + 8 + 32, 5000)
    _refused(seal_header(long_name), "the model name \\(5000 bytes\\) runs past the body")
    assert "**80 <= H <= 65,536**, before any field of the body is read" in SPEC.read_text()


# Issue 40, 8. Each error names the field that failed.

@pytest.mark.parametrize("fields, message", [
    (dict(steps=[0.5] * 3 + [float("nan")] + [0.5] * 4), r"step nan of component 3 \(finite, 0 < step <= 65504\)"),
    (dict(steps=[0.5] * 7 + [70000.0]), r"step 70000 of component 7"),
    (dict(transform=np.where(np.eye(8) == 1, 1.0, 0.0) + np.where(np.arange(64).reshape(8, 8) == 10, np.inf, 0)),
     r"transform entry KLT\[1\]\[2\] is not finite"),
    (dict(zstd_level=3), r"zstd level 3 \(versions 2 and 3 store 0\)"),
    (dict(offsets=[float("inf")]), r"channel 0's offset inf / gain 1"),
    (dict(gains=[0.0]), r"channel 0's offset 0 / gain 0 \(finite, gain > 0\)"),
])
def test_header_errors_name_the_field(fields: dict, message: str) -> None:
    h = _v2(**fields)
    _refused(_file(h, [_record(k, 0, _stats([0] * 8), b"") for k in range(2)]), "header is inconsistent: " + message)


# Issue 40, memory: a chunk longer than the writer's bound decodes in pieces of a bounded VAE window.

def test_a_long_chunk_is_decoded_in_pieces_of_a_bounded_window() -> None:
    from types import SimpleNamespace

    from latentcodec.codec import MAX_WRITE_FRAMES, _MelSource, latent_window
    from latentcodec.timings import Timings

    seen: list[int] = []

    def decode(z: np.ndarray, precision: str = "float32") -> np.ndarray:  # a local "VAE": each latent frame's channel sum, 4x along both axes
        seen.append(z.shape[::2])
        return np.repeat(np.repeat(z.sum(axis=1), 4, axis=1), 4, axis=2)

    model = SimpleNamespace(runner=SimpleNamespace(decode=decode))
    n = 2 * 2404 * 160 - 100
    h = _v2(chunk_frames=2404, num_samples=n, original_frames=n)  # T = 601, two chunks, both full of audio
    rng = np.random.default_rng(11)
    codes = [rng.integers(-5, 6, size=h.record_shape(k)) for k in range(2)]
    recs = [_record(k, 0, _stats([20] * 8), encode_codes(q, np.full(q.shape, 20, np.uint8)))
            for k, q in enumerate(codes)]
    with AlatReader(io.BytesIO(_file(h, recs))) as r:
        source = _MelSource(r, model, 4, Timings(), None, None)
        mel = list(source.blocks(0))
        whole = [decode(latent_window(lambda k: source._latent(k, 0), k, 8)[None])[0][32:32 + 2404]
                 for k in range(2)]
    assert seen == [(4, MAX_WRITE_FRAMES // 4 + 16)] + [(1, 601 + 16)] * 2  # two pieces a chunk in one call
    assert all(np.array_equal(a, b) for a, b in zip(mel, whole))
    seen.clear()
    n = 2404 * 160 + 5  # the second chunk covers 2 frames of audio: only its first piece is decoded
    with AlatReader(io.BytesIO(_file(replace(h, num_samples=n, original_frames=n), recs))) as r:
        mel = list(_MelSource(r, model, 4, Timings(), None, None).blocks(0))
    assert seen == [(3, MAX_WRITE_FRAMES // 4 + 16)]  # the whole pieces of chunk 0, the first of chunk 1
    assert np.array_equal(mel[1][:2000], whole[1][:2000])
    assert (mel[1][2000:] == np.float32(np.log(h.mel.log_floor))).all()
