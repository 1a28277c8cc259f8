""".alat files forged byte by byte from spec/alat-format.md alone, every CRC recomputed, so that the
checks behind the CRCs are reached: header fields rewritten, the model name replaced, and files of any
latent shape built from nothing. No package code is used, so these tests read any version of it."""
from __future__ import annotations

import struct
import zlib

# Header body fields (spec "Header"): offset from the body's start (byte 14) and struct type.
FIELDS = {"rate": (0, "I"), "original_rate": (4, "I"), "channels": (8, "H"), "samples": (12, "Q"),
          "original_frames": (20, "Q"), "input_size": (28, "Q"), "chunk_frames": (36, "I"), "context": (40, "I"),
          "n_fft": (44, "H"), "hop": (46, "H"), "win": (48, "H"), "mels": (50, "H"), "fmin": (52, "f"),
          "fmax": (56, "f"), "floor": (60, "f"), "mel_kind": (64, "B"), "axes": (65, "B"),
          "latent_channels": (66, "H"), "latent_frames": (68, "H"), "latent_mels": (70, "H"), "bits": (72, "B"),
          "quantizer": (73, "B"), "zstd": (74, "b"), "flags": (75, "B"), "chunks": (76, "I")}
FIXED = struct.Struct("<IIHHQQQIIHHHHfffBBHHHBBbBI")


def body_length(data: bytes) -> int:
    return struct.unpack_from("<I", data, 10)[0]


def seal_header(d: bytearray) -> bytes:
    h = body_length(d)
    struct.pack_into("<I", d, 14 + h, zlib.crc32(bytes(d[:14 + h])))
    return bytes(d)


def forge(data: bytes, **fields: float) -> bytes:
    """``data`` with header fields set (by :data:`FIELDS` name) and the header CRC recomputed."""
    d = bytearray(data)
    for name, value in fields.items():
        off, kind = FIELDS[name]
        struct.pack_into("<" + kind, d, 14 + off, value)
    return seal_header(d)


def read_field(data: bytes, name: str) -> float:
    off, kind = FIELDS[name]
    return struct.unpack_from("<" + kind, data, 14 + off)[0]


def rename_model(data: bytes, name: str) -> bytes:
    """``data`` naming model ``name``: header rebuilt, every record offset moved, index and end marker resealed."""
    channels, h = read_field(data, "channels"), body_length(data)
    at = 14 + 112 + 8 * channels
    old = struct.unpack_from("<H", data, at)[0]
    raw = name.encode("utf-8", "surrogateescape")
    body = data[14:at] + struct.pack("<H", len(raw)) + raw + data[at + 2 + old:14 + h]
    head = bytearray(data[:10] + struct.pack("<I", len(body)) + body + b"\0\0\0\0")
    head = seal_header(head)
    index_off = struct.unpack_from("<Q", data, len(data) - 16)[0]
    shift = len(head) - (18 + h)
    n = struct.unpack_from("<I", data, index_off + 4)[0]
    offsets = [o + shift for o in struct.unpack_from(f"<{n}Q", data, index_off + 8)]
    return head + data[18 + h:index_off] + _tail(offsets, index_off + shift)


def _tail(offsets: list[int], index_off: int) -> bytes:
    index = b"ALIX" + struct.pack("<I", len(offsets)) + struct.pack(f"<{len(offsets)}Q", *offsets)
    off = struct.pack("<Q", index_off)
    return index + struct.pack("<I", zlib.crc32(index)) + off + struct.pack("<I", zlib.crc32(off)) + b"ALND"


def record(chunk: int, stats: bytes, payload: bytes, flags: int = 0) -> bytes:
    rec = b"ALCK" + struct.pack("<IHBBI", chunk, 0, flags, 0, len(payload)) + stats + payload
    return rec + struct.pack("<I", zlib.crc32(rec))


def build(latent_channels: int, chunk_frames: int, mels: int, chunks: int = 1, version: int = 2,
          samples: int | None = None, bits: int = 4, zstd: int = 0, payloads: list[bytes] | None = None) -> bytes:
    """A mono file of any shape whose header, records, index and end marker all hold their CRCs (version 2:
    one ANS word a record; version 1: ``payloads``, zero stats)."""
    lc, hop = latent_channels, 160
    n = samples if samples is not None else chunks * chunk_frames * hop
    fixed = FIXED.pack(16000, 16000, 1, 1, n, n, 0, chunk_frames, 32, 1024, hop, 1024, mels, 0.0, 8000.0, 1e-5, 0, 0,
                       lc, chunk_frames // 4, mels // 4, 0 if version == 2 else bits,
                       2 if version == 2 else int(bits != 16), zstd, 0, chunks)
    name, tool = b"latentcodec-small-v2", b"forged"
    body = fixed + struct.pack("<ff", 0.0, 1.0) + bytes(32) + struct.pack("<H", len(name)) + name \
        + struct.pack("<H", len(tool)) + tool
    if version == 2:
        body += struct.pack(f"<{lc}f", *[0.4] * lc) + bytes(2 * lc * lc)
    head = seal_header(bytearray(b"\x89ALAT\r\n\x1a" + struct.pack("<HI", version, len(body)) + body + bytes(4)))
    stats = bytes(3 * lc) if version == 2 else bytes(8 * lc if bits != 16 else 0)
    recs, offsets, pos = b"", [], len(head)
    for k in range(chunks):
        rec = record(k, stats, payloads[k] if payloads else struct.pack("<I", 1), 1 if zstd else 0)
        offsets.append(pos)
        recs += rec
        pos += len(rec)
    return head + recs + _tail(offsets, pos)
