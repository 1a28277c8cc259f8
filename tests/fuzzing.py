"""The mutation fuzzer of .alat files that tests/test_mutations.py runs in CI and bench/fuzz.py runs long.

A case takes a valid file of any version, changes it (any byte, or one field of any structure: every
header field, record field, stat, payload word, index entry and end-marker field), recomputes every CRC
it can find by walking the bytes as the spec lays them out (most of the time: the rest tests the CRCs),
and reads the result strictly and in salvage mode; some cases also decode it to audio. A case passes when
the reader refuses it with the package's error or gives finite latents of the header's shape, within a
memory bound (traced) and a time bound.
"""
from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from latentcodec.errors import AlatFormatError, LatentCodecError
from latentcodec.format.container import AlatReader
from latentcodec.options import DecodeOptions
from tests.alat_fixtures import make_file, make_header

MEMORY_SLOPE, MEMORY_PER_VALUE, MEMORY_BASE = 16, 64, 2 << 20  # bytes: per file byte, per latent value, fixed
SECONDS = 5.0  # per case, reading (decoding to audio: DECODE_SECONDS); a case takes ~2 ms, 2 s on a starved CPU
DECODE_SECONDS = 20.0
HEADER_FIELDS = "<IIHHQQQIIHHHHfffBBHHHBBbBI"


def bases() -> list[bytes]:
    """Small valid files: version 1 at 3 bits (2 channels), 8 bits with zstd, float16; version 2 (2 channels);
    version 3 (2 channels, its last chunk short)."""
    v2 = replace(make_header(channels=2, seconds=2, chunk_frames=100), steps=[0.3] * 8, transform=np.eye(8).tolist(),
                 coder_version=2)
    heads = [make_header(channels=2, seconds=2, bits=3, chunk_frames=100),
             make_header(channels=1, seconds=2, bits=8, zstd=5, chunk_frames=100),
             make_header(channels=1, seconds=1, bits=16, chunk_frames=100), v2,
             replace(v2, num_samples=27_000, original_frames=27_000, coder_version=3)]
    return [make_file(h, seed=i)[0] for i, h in enumerate(heads)]


def decode_bases() -> list[bytes]:
    """Mono files of 2 s in each version (version 3: 1.7 s), for cases decoded to audio."""
    v1 = make_header(channels=1, seconds=2, bits=4, chunk_frames=100)
    v2 = replace(v1, steps=[0.3] * 8, transform=np.eye(8).tolist(), coder_version=2)
    return [make_file(h)[0] for h in (v1, v2, replace(v2, num_samples=27_000, original_frames=27_000, coder_version=3))]


def _u(d: bytes | bytearray, fmt: str, at: int) -> int:
    return struct.unpack_from("<" + fmt, d, at)[0]


def _stats_size(d: bytes | bytearray) -> int:
    lc, bits = _u(d, "H", 14 + 66), d[14 + 72]
    return 3 * lc if _u(d, "H", 8) >= 2 else (0 if bits == 16 else 8 * lc)


def _put_crc(d: bytearray, start: int, end: int) -> None:
    if 0 <= start <= end and end + 4 <= len(d):
        d[end:end + 4] = struct.pack("<I", zlib.crc32(bytes(d[start:end])))


def reseal(data: bytes) -> bytes:
    """Every CRC recomputed that the spec's layout leads to: the header's, each record's from the header's
    end for as long as record magic follows, the end marker's and the index's it points to."""
    d = bytearray(data)
    if len(d) < 18 + 80:
        return bytes(d)
    h = _u(d, "I", 10)
    _put_crc(d, 0, 14 + h)
    stats, pos = _stats_size(d), 18 + h
    while pos + 16 <= len(d) and d[pos:pos + 4] == b"ALCK":
        end = pos + 16 + stats + _u(d, "I", pos + 12)
        if end + 4 > len(d):
            break
        _put_crc(d, pos, end)
        pos = end + 4
    if len(d) >= 16 and d[-4:] == b"ALND":
        _put_crc(d, len(d) - 16, len(d) - 8)
        idx = _u(d, "Q", len(d) - 16)
        if idx + 8 <= len(d) and d[idx:idx + 4] == b"ALIX":
            _put_crc(d, idx, idx + 8 + 8 * _u(d, "I", idx + 4))
    return bytes(d)


def fields_of(data: bytes) -> list[tuple[int, str]]:
    """(offset, struct code) of every field of every structure of a valid file."""
    out = [(0, "8s"), (8, "H"), (10, "I")]
    pos = 14
    for code in HEADER_FIELDS[1:]:
        out.append((pos, code))
        pos += struct.calcsize("<" + code)
    ch = _u(data, "H", 14 + 8)
    out += [(14 + 80 + 4 * i, "f") for i in range(2 * ch)]
    pos = 14 + 80 + 8 * ch
    out += [(pos + i, "B") for i in range(32)] + [(pos + 32, "H")]
    pos += 34 + _u(data, "H", pos + 32)
    out += [(pos, "H")]
    pos += 2 + _u(data, "H", pos)
    lc = _u(data, "H", 14 + 66)
    if _u(data, "H", 8) >= 2:
        out += [(pos + 4 * i, "f") for i in range(lc)] + [(pos + 4 * lc + 2 * i, "e") for i in range(lc * lc)]
    with AlatReader(io.BytesIO(data)) as r:
        offsets, index = r.offsets, r.index_offset
    stats = _stats_size(data)
    for off in offsets:
        out += [(off, "4s"), (off + 4, "I"), (off + 8, "H"), (off + 10, "B"), (off + 11, "B"), (off + 12, "I")]
        out += [(off + 16 + i, "B" if stats == 3 * lc else "f") for i in range(0, stats, 1 if stats == 3 * lc else 4)]
        plen = _u(data, "I", off + 12)
        out += [(off + 16 + stats + i, "I" if plen % 4 == 0 else "B") for i in range(0, min(plen, 64), 4)]
    out += [(index, "4s"), (index + 4, "I")] + [(index + 8 + 8 * i, "Q") for i in range(len(offsets))]
    n = len(data)
    return out + [(n - 16, "Q"), (n - 8, "I"), (n - 4, "4s")]


def _value(code: str, old: Any, rng: np.random.Generator) -> Any:
    """A value for a field of struct ``code``: its edges, its neighbours, or anything."""
    if code.endswith("s"):
        size, j = int(code[:-1]), int(rng.integers(int(code[:-1])))
        return bytes(rng.integers(0, 256, size, dtype=np.uint8)) if rng.random() < 0.5 else \
            old[:j] + bytes([old[j] ^ (1 << int(rng.integers(8)))]) + old[j + 1:]
    if code in "fe":
        picks = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, 3.4e38, -1.0, 65504.0, 65520.0, 1e-5, 0.5, 16000.0,
                 float(old) * float(rng.uniform(-4, 4)), float(rng.standard_normal()) * 10.0 ** rng.integers(-8, 9)]
        return picks[int(rng.integers(len(picks)))]
    bits = 8 * struct.calcsize("<" + code)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if code.islower() else (0, (1 << bits) - 1)
    picks = [0, 1, 2, 3, 4, 5, 8, 64, 65, old - 1, old + 1, old * 2, old // 2, old * 4, hi, hi - 1, lo,
             1 << (bits - 1), int(rng.integers(0, 1 << min(bits, 62)))]
    return int(np.clip(picks[int(rng.integers(len(picks)))], lo, hi))


def mutate(data: bytes, fields: list[tuple[int, str]], rng: np.random.Generator) -> tuple[bytes, str]:
    """One mutant of ``data`` and its kind: a forged field (one to three), or a byte-level change; CRCs
    recomputed nine times in ten."""
    d = bytearray(data)
    if rng.random() < 0.7:
        kind = "field"
        for _ in range(int(rng.integers(1, 4))):
            off, code = fields[int(rng.integers(len(fields)))]
            old = struct.unpack_from("<" + code, d, off)[0]
            value = _value(code, old, rng)
            if code in "fe":  # past the type's range it rounds to infinity, as a forger's bytes may say
                with np.errstate(over="ignore"):
                    d[off:off + struct.calcsize(code)] = np.array([value], "<f4" if code == "f" else "<f2").tobytes()
            else:
                struct.pack_into("<" + code, d, off, value)
    else:
        kind = ["truncate", "flip", "overwrite", "insert", "delete"][int(rng.integers(5))]
        pos = int(rng.integers(len(d)))
        if kind == "truncate":
            d = d[:pos]
        elif kind == "flip":
            d[pos] ^= 1 << int(rng.integers(8))
        elif kind == "overwrite":
            d[pos:pos + 8] = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
        elif kind == "insert":
            d[pos:pos] = bytes(rng.integers(0, 256, int(rng.integers(1, 33)), dtype=np.uint8))
        else:
            del d[pos:pos + int(rng.integers(1, 65))]
    return (reseal(bytes(d)) if rng.random() < 0.9 else bytes(d)), kind


@dataclass
class Tally:
    """Counts of a fuzz run, and its worst case's memory against its file's size."""

    cases: int = 0
    refused: int = 0
    finite: int = 0
    decoded: int = 0  # of the finite ones decoded to audio
    failures: list[str] = field(default_factory=list)
    worst_peak: int = 0
    worst_size: int = 0
    worst_ratio: float = 0.0  # peak / (MEMORY_SLOPE x size + MEMORY_PER_VALUE x values + MEMORY_BASE)
    slowest: float = 0.0

    def text(self) -> str:
        return (f"cases {self.cases}, refused {self.refused}, finite {self.finite} (decoded to audio "
                f"{self.decoded}), failures {len(self.failures)}; worst peak memory {self.worst_peak:,} bytes "
                f"for a file of {self.worst_size:,} bytes ({self.worst_ratio:.3f} of the bound); slowest case "
                f"{self.slowest:.3f} s")


def _read_all(data: bytes, salvage: bool) -> int:
    """Read every record; returns the header's values per record. Non-finite or misshapen latents fail."""
    with AlatReader(io.BytesIO(data), salvage=salvage) as r:
        for chunk, _, z in r:
            if z is not None and not (z.shape == r.header.record_shape(chunk) and np.isfinite(z).all()):
                raise AssertionError(f"latent of shape {z.shape}, finite {np.isfinite(z).all()}")
        return r.header.values


def check(data: bytes, tally: Tally, model: Any = None) -> None:
    """One case into ``tally``: strict read, salvage read, and with ``model`` a decode to audio."""
    tally.cases += 1
    t = time.perf_counter()
    tracemalloc.start()
    values, why = 0, None
    try:
        values = _read_all(data, False)
    except AlatFormatError:
        tally.refused += 1
    except Exception as e:  # noqa: BLE001 (anything else is a failure to report)
        why = f"strict: {type(e).__name__}: {e}"
    try:
        _read_all(data, True)
    except AlatFormatError:
        pass
    except Exception as e:  # noqa: BLE001
        why = why or f"salvage: {type(e).__name__}: {e}"
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    seconds = time.perf_counter() - t
    ratio = peak / (MEMORY_SLOPE * len(data) + MEMORY_PER_VALUE * values + MEMORY_BASE)
    if ratio > tally.worst_ratio:
        tally.worst_peak, tally.worst_size, tally.worst_ratio = peak, len(data), ratio
    tally.slowest = max(tally.slowest, seconds)
    if why is None and (ratio > 1 or seconds > SECONDS):
        why = f"{peak:,} bytes traced ({ratio:.2f} of the bound), {seconds:.2f} s"
    if why is None and values and model is not None:
        why = _decode(data, model, tally)
    if why is None and values:
        tally.finite += 1
    if why is not None:
        tally.failures.append(why)


def _decode(data: bytes, model: Any, tally: Tally) -> str | None:
    """Decode a file the reader took to audio (Griffin-Lim, one iteration): the package's error, or finite
    samples of the header's length; None when it holds."""
    from latentcodec.codec import decode_blocks
    from latentcodec.vocoders.griffinlim import GriffinLimVocoder

    t = time.perf_counter()
    try:
        with AlatReader(io.BytesIO(data)) as r:
            blocks, _, frames = decode_blocks(r, DecodeOptions(model=model, vocoder=GriffinLimVocoder(1), force=True))
            y = np.concatenate(list(blocks))
            channels = r.header.channels
    except LatentCodecError:
        return None
    except Exception as e:  # noqa: BLE001
        return f"decode: {type(e).__name__}: {e}"
    if y.shape != (frames, channels) or not np.isfinite(y).all() or time.perf_counter() - t > DECODE_SECONDS:
        return f"decode: samples of shape {y.shape}, finite {np.isfinite(y).all()}, {time.perf_counter() - t:.1f} s"
    tally.decoded += 1
    return None


def run(cases: int, seed: int, model: Any = None, decode_every: int = 0, tally: Tally | None = None) -> Tally:
    """``cases`` mutants of the bases, every ``decode_every``-th of a decode base decoded to audio with
    ``model`` (0: none)."""
    tally = tally or Tally()
    rng = np.random.default_rng(seed)
    plain = [(b, fields_of(b)) for b in bases()]
    audio = [(b, fields_of(b)) for b in decode_bases()] if model is not None and decode_every else []
    for i in range(cases):
        decode = bool(audio) and i % decode_every == 0
        base, fields = (audio if decode else plain)[int(rng.integers(len(audio if decode else plain)))]
        check(mutate(base, fields, rng)[0], tally, model if decode else None)
    return tally
