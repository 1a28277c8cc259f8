"""The .alat container: header, chunk records, index and end marker. Plain numpy and bytes.

spec/alat-format.md is the normative description; this module follows it field by field. Every
length read from a file is checked against the file's real size before anything is allocated, and
every problem is an :class:`AlatFormatError` naming what is wrong and where.
"""
from __future__ import annotations

import io
import math
import os
import struct
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from latentcodec.errors import AlatFormatError
from latentcodec.audio.mel import AUDIOLDM_MEL, MelConfig
from latentcodec.format.entropy import EntropyError
from latentcodec.format.quantize import BITS, dequantize, payload_size, quantize, stats_size
from latentcodec.format.transform_coder import PARAM_BYTES, decode_codes_of, dequantize_codes, encode_latent

MAGIC = b"\x89ALAT\r\n\x1a"
FORMAT_VERSION = 2  # the newest; a writer writes version 1 for --bits, version 2 for the entropy coder
VERSIONS = (1, 2)
QUANT_FLOAT16, QUANT_MINMAX, QUANT_TRANSFORM = 0, 1, 2
MAX_STEP = 65504.0  # the float16 range: a larger step could not code any latent value but 0
RECORD_MAGIC = b"ALCK"
INDEX_MAGIC = b"ALIX"
END_MAGIC = b"ALND"

_PREAMBLE = struct.Struct("<8sHI")  # magic, version, header body length
_FIXED = struct.Struct("<IIHHQQQIIHHHHfffBBHHHBBbBI")
_RECORD = struct.Struct("<4sIHBBI")  # magic, chunk, channel, flags, reserved, payload length
_TRAILER = struct.Struct("<QI4s")  # index offset, its CRC32, end magic
_CRC = struct.Struct("<I")
MAX_HEADER = 1 << 16
MAX_CHANNELS = 64
FLAG_ZSTD = 1
FLAG_MONO_DOWNMIX = 1


@dataclass
class Header:
    """Everything decoding needs, as stored in the header (spec: "Header")."""

    channels: int
    num_samples: int
    original_rate: int
    original_channels: int
    original_frames: int
    input_size: int
    model_name: str
    model_fingerprint: bytes
    offsets: list[float]
    gains: list[float]
    bits: int = 4
    zstd_level: int = 0
    mono_downmix: bool = False
    chunk_frames: int = 500
    context_frames: int = 32
    mel: MelConfig = AUDIOLDM_MEL
    latent_channels: int = 8
    tool_version: str = field(default_factory=lambda: _tool_version())
    steps: list[float] | None = None  # version 2: quantizer step per transform component (bits is then 0)
    transform: list[list[float]] | None = None  # version 2: L x L matrix K, component = K @ latent channels

    def __post_init__(self) -> None:
        """Hold float fields as the float32 values the file stores, so a header equals its reading."""
        f32 = lambda v: float(np.float32(v))  # noqa: E731
        m = self.mel
        self.mel = replace(m, fmin=f32(m.fmin), fmax=f32(m.fmax), log_floor=f32(m.log_floor))
        self.offsets, self.gains = [f32(v) for v in self.offsets], [f32(v) for v in self.gains]
        if self.steps is not None:
            self.bits = 0
            self.steps = [f32(v) for v in self.steps]
            k = np.eye(self.latent_channels) if self.transform is None else np.asarray(self.transform)
            self.transform = k.astype(np.float16).astype(np.float64).tolist()

    @property
    def version(self) -> int:
        """1: min/max quantizer (``bits``), optional zstd; 2: transform coder with ANS (``steps``)."""
        return 1 if self.steps is None else 2

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(channels, time, mel) of one chunk's latent."""
        return self.latent_channels, self.chunk_frames // 4, self.mel.n_mels // 4

    @property
    def num_chunks(self) -> int:
        return max(1, math.ceil(self.num_samples / (self.chunk_frames * self.mel.hop)))

    @property
    def num_records(self) -> int:
        return self.num_chunks * self.channels

    @property
    def values(self) -> int:
        """Latent values per record, V."""
        return int(np.prod(self.latent_shape))

    @property
    def raw_payload_size(self) -> int:
        """Version 1: the payload's size before zstd."""
        return payload_size(self.values, self.bits)

    @property
    def max_payload_size(self) -> int:
        """Version 2: the most bytes a record's ANS words can take (56 bits a value, two words of state)."""
        return 4 * (-(-7 * self.values // 4) + 2)

    @property
    def stats_size(self) -> int:
        return stats_size(self.latent_channels, self.bits) if self.version == 1 else PARAM_BYTES * self.latent_channels

    @property
    def duration(self) -> float:
        return self.num_samples / self.mel.sample_rate

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model_fingerprint"] = self.model_fingerprint.hex()
        d.update(format_version=self.version, num_chunks=self.num_chunks, latent_shape=list(self.latent_shape),
                 latent_axes="channels,time,mel", duration_s=self.duration)
        return d

    @property
    def quantizer(self) -> int:
        if self.version == 2:
            return QUANT_TRANSFORM
        return QUANT_FLOAT16 if self.bits == 16 else QUANT_MINMAX

    def encode(self) -> bytes:
        """The header's bytes: preamble, body and CRC32."""
        name, tool = self.model_name.encode(), self.tool_version.encode()
        if len(self.model_fingerprint) != 32:
            raise ValueError("model fingerprint must be 32 bytes")
        lc, lt, lm = self.latent_shape
        m = self.mel
        body = _FIXED.pack(m.sample_rate, self.original_rate, self.channels, self.original_channels,
                           self.num_samples, self.original_frames, self.input_size, self.chunk_frames,
                           self.context_frames, m.n_fft, m.hop, m.win, m.n_mels, m.fmin, m.fmax, m.log_floor, 0, 0,
                           lc, lt, lm, self.bits, self.quantizer, self.zstd_level,
                           FLAG_MONO_DOWNMIX if self.mono_downmix else 0, self.num_chunks)
        body += b"".join(struct.pack("<ff", o, g) for o, g in zip(self.offsets, self.gains))
        body += self.model_fingerprint + struct.pack("<H", len(name)) + name + struct.pack("<H", len(tool)) + tool
        if self.version == 2:
            body += np.asarray(self.steps, "<f4").tobytes() + np.asarray(self.transform, "<f2").tobytes()
        head = _PREAMBLE.pack(MAGIC, self.version, len(body)) + body
        return head + _CRC.pack(zlib.crc32(head))


def _tool_version() -> str:
    from latentcodec import __version__

    return f"latentcodec {__version__}"


def _fail(msg: str) -> AlatFormatError:
    return AlatFormatError(msg)


def parse_header(f: BinaryIO, file_size: int, where: str) -> tuple[Header, int]:
    """Read and check the header at the start of ``f``; returns it and the offset after it."""
    pre = f.read(_PREAMBLE.size)
    if len(pre) < 8 or pre[:8] != MAGIC:
        if len(pre) < 8 and MAGIC.startswith(pre):
            raise _fail(f"{where}: truncated: the file ends inside the magic bytes ({file_size} bytes)")
        raise _fail(f"{where}: not a .alat file (bad magic bytes at offset 0)")
    if len(pre) < _PREAMBLE.size:
        raise _fail(f"{where}: truncated: the file ends inside the header (at byte {file_size})")
    _, version, body_len = _PREAMBLE.unpack(pre)
    if version not in VERSIONS:
        raise _fail(f"{where}: .alat format version {version} is not supported (this reader knows versions "
                    f"{', '.join(map(str, VERSIONS))}); use a latentcodec that reads it")
    end = _PREAMBLE.size + body_len + _CRC.size
    if body_len < _FIXED.size or body_len > MAX_HEADER:
        raise _fail(f"{where}: header length {body_len} at offset 8 is impossible")
    if end > file_size:
        raise _fail(f"{where}: truncated: the header needs {end} bytes, the file has {file_size}")
    body = f.read(body_len)
    (crc,) = _CRC.unpack(f.read(_CRC.size))
    if zlib.crc32(pre + body) != crc:
        raise _fail(f"{where}: header CRC mismatch (bytes 0..{end - 1}): the header is damaged")
    try:
        return _header_fields(body, version, where), end
    except (struct.error, UnicodeDecodeError, IndexError, ValueError) as e:
        raise _fail(f"{where}: malformed header fields ({e})") from e


def _coder_block(body: bytes, pos: int, lc: int) -> tuple[list[float], list[list[float]], int]:
    """Version 2's steps (L x f32) and transform (L x L f16, row-major) at ``pos``; and the end."""
    end = pos + 4 * lc + 2 * lc * lc
    if end > len(body):
        raise ValueError("the coder block runs past the header body")
    steps = np.frombuffer(body, "<f4", lc, pos).astype(np.float64)
    k = np.frombuffer(body, "<f2", lc * lc, pos + 4 * lc).astype(np.float64).reshape(lc, lc)
    return steps.tolist(), k.tolist(), end


def _header_fields(body: bytes, version: int, where: str) -> Header:
    (sr, orig_sr, ch, orig_ch, n, orig_n, in_size, chunk, ctx, n_fft, hop, win, n_mels, fmin, fmax, floor,
     mel_kind, axes, lc, lt, lm, bits, quant, zlevel, flags, n_chunks) = _FIXED.unpack_from(body)
    pos = _FIXED.size
    if not 1 <= ch <= MAX_CHANNELS:
        raise _fail(f"{where}: header says {ch} channels (1..{MAX_CHANNELS} allowed)")
    norm = [struct.unpack_from("<ff", body, pos + 8 * i) for i in range(ch)]
    pos += 8 * ch
    fp = body[pos:pos + 32]
    pos += 32
    (name_len,) = struct.unpack_from("<H", body, pos)
    name = body[pos + 2:pos + 2 + name_len].decode()
    pos += 2 + name_len
    (tool_len,) = struct.unpack_from("<H", body, pos)
    tool = body[pos + 2:pos + 2 + tool_len].decode()
    pos += 2 + tool_len
    steps, transform = None, None
    if version == 2 and 1 <= lc <= 64 and pos <= len(body):
        steps, transform, pos = _coder_block(body, pos, lc)
    if pos != len(body) or len(fp) != 32:
        raise _fail(f"{where}: header length does not match its fields")
    h = Header(channels=ch, num_samples=n, original_rate=orig_sr, original_channels=orig_ch, original_frames=orig_n,
               input_size=in_size, model_name=name, model_fingerprint=fp, offsets=[o for o, _ in norm],
               gains=[g for _, g in norm], bits=bits, zstd_level=zlevel, mono_downmix=bool(flags & FLAG_MONO_DOWNMIX),
               chunk_frames=chunk, context_frames=ctx, latent_channels=lc, tool_version=tool,
               mel=MelConfig(sr, n_fft, hop, win, n_mels, fmin, fmax, floor), steps=steps, transform=transform)
    finite = np.isfinite(h.offsets + h.gains + [fmin, fmax, floor]).all()
    if version == 1:
        quantizer_ok = bits in BITS and quant == h.quantizer and 0 <= zlevel <= 22
    else:
        quantizer_ok = bits == 0 and quant == QUANT_TRANSFORM and zlevel == 0 and np.isfinite(transform).all() \
            and all(0 < v <= MAX_STEP for v in steps)
    problems = [
        (n < 1, f"sample count {n}"),
        (sr < 1 or orig_sr < 1 or hop < 1 or win < 1 or n_fft < win, "sample rate, hop, window or n_fft"),
        (chunk < 4 or chunk % 4 or ctx % 4 or n_mels < 4 or n_mels % 4,
         f"chunk length {chunk} / context {ctx} / {n_mels} mel bands not multiples of 4"),
        ((lt, lm) != (chunk // 4, n_mels // 4) or not 1 <= lc <= 64, f"latent shape {lc}x{lt}x{lm}"),
        (mel_kind != 0 or axes != 0, f"mel kind {mel_kind} / axis order {axes}"),
        (not quantizer_ok, f"quantizer {quant} at {bits} bits, zstd level {zlevel}"),
        (flags & ~FLAG_MONO_DOWNMIX or (flags & FLAG_MONO_DOWNMIX and ch != 1), f"flags {flags:#x} with {ch} channels"),
        (n_chunks != h.num_chunks, f"chunk count {n_chunks}"),
        (not finite or min(h.gains) <= 0 or not 0 <= fmin < fmax or floor <= 0, "offset, gain or mel numbers"),
    ]
    for bad, what in problems:
        if bad:
            raise _fail(f"{where}: header is inconsistent: {what}")
    return h


def fixed_size(h: Header) -> int:
    """Bytes of a file that do not depend on the payloads: header, record framing and stats, index, end marker."""
    return len(h.encode()) + h.num_records * (_RECORD.size + h.stats_size + _CRC.size) + 8 + 8 * h.num_records \
        + _CRC.size + _TRAILER.size


class AlatWriter:
    """Writes a .alat stream: header first, each record as soon as it exists, then index and end marker.

    Records come in chunk order, channels within a chunk: ``write(chunk, channel, latent)``.
    """

    def __init__(self, f: BinaryIO, header: Header):
        self.f, self.header = f, header
        if header.version == 1 and header.bits not in BITS:
            raise ValueError(f"bits must be one of {BITS}")
        if not 0 <= header.zstd_level <= (22 if header.version == 1 else 0):
            raise ValueError("zstd level must be 0 (off) to 22, and 0 with the entropy coder")
        if header.version == 2:
            self._steps, self._transform = np.asarray(header.steps), np.asarray(header.transform)
        self._zstd = None
        if header.zstd_level:
            import zstandard

            self._zstd = zstandard.ZstdCompressor(level=header.zstd_level)
        data = header.encode()
        f.write(data)
        self.pos = len(data)
        self.offsets: list[int] = []

    def write(self, chunk: int, channel: int, latent: np.ndarray) -> int:
        """Quantize and append one record; returns its size in bytes."""
        h = self.header
        expect = len(self.offsets)
        if (chunk, channel) != divmod(expect, h.channels):
            raise ValueError(f"record {chunk}/{channel} out of order: expected {divmod(expect, h.channels)}")
        if tuple(latent.shape) != h.latent_shape:
            raise ValueError(f"latent shape {latent.shape} is not {h.latent_shape}")
        if h.version == 2:
            stats, payload = encode_latent(latent, self._steps, self._transform)
        else:
            st, payload = quantize(latent, h.bits)
            stats = st.astype("<f4").tobytes()
        flags = 0
        if self._zstd is not None:
            packed = self._zstd.compress(payload)
            if len(packed) < len(payload):
                payload, flags = packed, FLAG_ZSTD
        rec = _RECORD.pack(RECORD_MAGIC, chunk, channel, flags, 0, len(payload)) + stats + payload
        rec += _CRC.pack(zlib.crc32(rec))
        self.f.write(rec)
        self.offsets.append(self.pos)
        self.pos += len(rec)
        return len(rec)

    def close(self) -> int:
        """Write index and end marker; returns the file's total size."""
        if len(self.offsets) != self.header.num_records:
            raise ValueError(f"{len(self.offsets)} records written, header promises {self.header.num_records}")
        index = INDEX_MAGIC + struct.pack("<I", len(self.offsets)) + np.asarray(self.offsets, "<u8").tobytes()
        index += _CRC.pack(zlib.crc32(index))
        off = struct.pack("<Q", self.pos)
        self.f.write(index + _TRAILER.pack(self.pos, zlib.crc32(off), END_MAGIC))
        self.pos += len(index) + _TRAILER.size
        return self.pos


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise _fail(f"{path}: no such file") from None
    except IsADirectoryError:
        raise _fail(f"{path}: is a folder, not a .alat file") from None
    except OSError as e:
        raise _fail(f"{path}: cannot open ({e.strerror})") from None


class AlatReader:
    """Reads a .alat file: header, then any record by (chunk, channel) through the index.

    ``salvage=True`` never trusts the index: it scans for records whose CRC holds, keeps those, and
    lists the (chunk, channel) pairs it could not find in ``lost``.
    """

    def __init__(self, path: str | Path | BinaryIO, salvage: bool = False):
        """``path`` may be a binary file object; one that cannot seek (a pipe) is read whole first, as
        the index lies at the end. The reader closes only what it opened."""
        self._owned = isinstance(path, (str, Path))
        if self._owned:
            self.where = str(path)
            self.f: BinaryIO = _open(Path(path))
        else:
            self.where = getattr(path, "name", "<stream>")
            self.f = path if path.seekable() else io.BytesIO(path.read())
        try:
            self.file_size = self.f.seek(0, os.SEEK_END)
            self.f.seek(0)
            self.header, self.data_start = parse_header(self.f, self.file_size, self.where)
            h = self.header
            self.record_min = _RECORD.size + h.stats_size + _CRC.size
            self.salvage = salvage
            self.lost: list[tuple[int, int]] = []
            if salvage:
                self.offsets = self._scan()
            else:
                self.offsets = self._read_index()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "AlatReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self.f.close()

    def _read_at(self, offset: int, size: int) -> bytes:
        if offset < 0 or offset + size > self.file_size:
            raise _fail(f"{self.where}: truncated: {size} bytes at offset {offset} lie past the end "
                        f"({self.file_size} bytes)")
        self.f.seek(offset)
        return self.f.read(size)

    def _trailer(self) -> int:
        """The index offset the end marker gives, or a format error."""
        if self.file_size < self.data_start + _TRAILER.size:
            raise _fail(f"{self.where}: truncated: no end marker (file ends at byte {self.file_size})")
        off_bytes = self._read_at(self.file_size - _TRAILER.size, _TRAILER.size)
        index_off, crc, magic = _TRAILER.unpack(off_bytes)
        if magic != END_MAGIC:
            raise _fail(f"{self.where}: truncated or damaged: no end marker at offset {self.file_size - 4}")
        if zlib.crc32(off_bytes[:8]) != crc:
            raise _fail(f"{self.where}: end marker CRC mismatch at offset {self.file_size - _TRAILER.size}")
        return index_off

    def _read_index(self) -> list[int]:
        h = self.header
        n = h.num_records
        index_size = 8 + 8 * n + _CRC.size
        if self.data_start + n * self.record_min + index_size + _TRAILER.size > self.file_size:
            raise _fail(f"{self.where}: truncated: {n} records cannot fit in {self.file_size} bytes")
        index_off = self._trailer()
        if index_off + index_size + _TRAILER.size != self.file_size:
            raise _fail(f"{self.where}: index offset {index_off} in the end marker does not match the file size")
        raw = self._read_at(index_off, index_size)
        if raw[:4] != INDEX_MAGIC or struct.unpack_from("<I", raw, 4)[0] != n:
            raise _fail(f"{self.where}: damaged index at offset {index_off}")
        if zlib.crc32(raw[:-4]) != _CRC.unpack_from(raw, len(raw) - 4)[0]:
            raise _fail(f"{self.where}: index CRC mismatch at offset {index_off}")
        offsets = np.frombuffer(raw, "<u8", count=n, offset=8).astype(np.int64).tolist()
        bounds = [self.data_start] + offsets[1:] + [index_off]
        if offsets and (offsets[0] != self.data_start
                        or any(b - a < self.record_min for a, b in zip(offsets, bounds[1:]))):
            raise _fail(f"{self.where}: index at offset {index_off} holds impossible record offsets")
        self.index_offset = index_off
        return offsets

    def _parse_record(self, offset: int, limit: int) -> tuple[int, int, int, bytes, bytes] | str:
        """(chunk, channel, size, stats, payload) of the record at ``offset``, or why it is bad."""
        h = self.header
        if offset + self.record_min > limit:
            return "truncated record"
        head = self._read_at(offset, _RECORD.size)
        magic, chunk, channel, flags, reserved, plen = _RECORD.unpack(head)
        if magic != RECORD_MAGIC:
            return "no record magic"
        if flags & ~FLAG_ZSTD or reserved or (flags & FLAG_ZSTD and not h.zstd_level):
            return f"record flags {flags:#x} are not allowed here"
        if h.version == 2:
            bad_length = plen % 4 or plen > h.max_payload_size
        else:
            bad_length = not (plen < h.raw_payload_size if flags & FLAG_ZSTD else plen == h.raw_payload_size)
        if bad_length or (plen == 0 and h.version == 1):
            return f"payload length {plen} is impossible"
        size = self.record_min + plen
        if offset + size > limit:
            return f"record of {size} bytes runs past byte {limit}"
        body = head + self._read_at(offset + _RECORD.size, size - _RECORD.size)
        if zlib.crc32(body[:-4]) != _CRC.unpack_from(body, size - 4)[0]:
            return "record CRC mismatch"
        if chunk >= h.num_chunks or channel >= h.channels:
            return f"chunk {chunk} channel {channel} out of range"
        stats = body[_RECORD.size:_RECORD.size + h.stats_size]
        return chunk, channel, size, stats, body[_RECORD.size + h.stats_size:-4]

    def _scan(self) -> list[int]:
        """Salvage: offsets of every intact record found between the header and the index (or EOF)."""
        h = self.header
        try:
            limit = min(self._trailer(), self.file_size)
        except AlatFormatError:
            limit = self.file_size
        self.f.seek(0)
        data = self.f.read(limit)
        found: dict[int, int] = {}
        pos = data.find(RECORD_MAGIC, self.data_start)
        while pos != -1:
            rec = self._parse_record(pos, limit)
            if isinstance(rec, str):
                pos = data.find(RECORD_MAGIC, pos + 1)
                continue
            found.setdefault(rec[0] * h.channels + rec[1], pos)
            pos = data.find(RECORD_MAGIC, pos + rec[2])
        offsets = [found.get(i, -1) for i in range(h.num_records)]
        self.lost = [divmod(i, h.channels) for i, o in enumerate(offsets) if o < 0]
        return offsets

    def record(self, chunk: int, channel: int) -> tuple[int, bytes, bytes, int]:
        """One checked record: its size on disk, stats bytes, stored payload, and its offset."""
        h = self.header
        if not (0 <= chunk < h.num_chunks and 0 <= channel < h.channels):
            raise IndexError(f"chunk {chunk} channel {channel} not in this file")
        i = chunk * h.channels + channel
        off = self.offsets[i]
        if self.salvage:
            limit = self.file_size
        else:  # a record must end where the next one (or the index) begins
            limit = self.offsets[i + 1] if i + 1 < len(self.offsets) else self.index_offset
        rec = self._parse_record(off, limit)
        if isinstance(rec, str):
            raise _fail(f"{self.where}: chunk {chunk} channel {channel} at offset {off}: {rec}")
        if not self.salvage and off + rec[2] != limit:
            raise _fail(f"{self.where}: chunk {chunk} channel {channel} at offset {off} ends at byte "
                        f"{off + rec[2]}, but the next structure begins at byte {limit}")
        if (rec[0], rec[1]) != (chunk, channel):
            raise _fail(f"{self.where}: record at offset {off} is chunk {rec[0]} channel {rec[1]}, "
                        f"the index says chunk {chunk} channel {channel}")
        return rec[2], rec[3], rec[4], off

    def read(self, chunk: int, channel: int) -> np.ndarray | None:
        """The dequantized latent (float32, channels x time x mel) of one record; None if salvage lost it."""
        h = self.header
        if self.salvage and self.offsets[chunk * h.channels + channel] < 0:
            return None
        if h.version == 2:
            return dequantize_codes(self.codes(chunk, channel), np.asarray(h.steps), np.asarray(h.transform))
        _, stats, payload, off = self.record(chunk, channel)
        if len(payload) != h.raw_payload_size:
            payload = self._unzstd(payload, chunk, channel, off)
        st = np.frombuffer(stats, "<f4").reshape(h.latent_channels, -1)
        if h.bits != 16 and not np.isfinite(st).all():
            raise _fail(f"{self.where}: chunk {chunk} channel {channel}: non-finite quantizer stats")
        latent = dequantize(st, payload, h.bits, h.latent_shape)
        if h.bits == 16 and not np.isfinite(latent).all():
            raise _fail(f"{self.where}: chunk {chunk} channel {channel}: non-finite float16 values")
        return latent

    def latent(self, chunk: int, channel: int = 0) -> np.ndarray:
        """Chunk ``chunk``'s dequantized latent of audio channel ``channel``: float32 (latent channels,
        chunk_frames / 4, n_mels / 4), without decoding audio."""
        latent = self.read(chunk, channel)
        if latent is None:
            raise _fail(f"{self.where}: chunk {chunk} channel {channel} is lost (damaged)")
        return latent

    def latents(self, channel: int = 0) -> np.ndarray:
        """Every chunk's latent of audio channel ``channel`` joined along time: float32 (latent channels,
        num_chunks x chunk_frames / 4, n_mels / 4); the last chunk's padding past the audio included."""
        return np.concatenate([self.latent(k, channel) for k in range(self.header.num_chunks)], axis=1)

    def codes(self, chunk: int, channel: int) -> np.ndarray:
        """Version 2: the integer codes (int64, components x time x mel) of one record, as coded."""
        _, stats, payload, off = self.record(chunk, channel)
        try:
            return decode_codes_of(stats, payload, self.header.latent_shape)
        except EntropyError as e:
            raise _fail(f"{self.where}: chunk {chunk} channel {channel} at offset {off}: {e}") from None

    def _unzstd(self, payload: bytes, chunk: int, channel: int, off: int) -> bytes:
        import zstandard

        want = self.header.raw_payload_size
        try:
            out = zstandard.ZstdDecompressor().decompress(payload, max_output_size=want)
        except zstandard.ZstdError as e:
            raise _fail(f"{self.where}: chunk {chunk} channel {channel} at offset {off}: bad zstd data ({e})") from e
        if len(out) != want:
            raise _fail(f"{self.where}: chunk {chunk} channel {channel} at offset {off}: zstd data gives "
                        f"{len(out)} bytes, not {want}")
        return out

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray | None]]:
        """(chunk, channel, latent) in file order; latent None for records salvage lost."""
        for i in range(self.header.num_records):
            chunk, channel = divmod(i, self.header.channels)
            yield chunk, channel, self.read(chunk, channel)

    def record_sizes(self) -> list[int]:
        """Bytes on disk of each record, in file order (-1 where salvage lost it)."""
        return [self.record(*divmod(i, self.header.channels))[0] if o >= 0 else -1
                for i, o in enumerate(self.offsets)]

    def verify(self) -> None:
        """Check every record's CRC and decoding; raises AlatFormatError at the first problem."""
        for _ in self:
            pass


def write_bytes(header: Header, latents: list[np.ndarray]) -> bytes:
    """A whole .alat file in memory, records in order (for tests and tools)."""
    buf = io.BytesIO()
    w = AlatWriter(buf, header)
    for i, lat in enumerate(latents):
        w.write(*divmod(i, header.channels), lat)
    w.close()
    return buf.getvalue()
