"""The .alat container: header, chunk records, index and end marker. Plain numpy and bytes.

spec/alat-format.md is the normative description; this module follows it field by field. Every
length read from a file is checked against the file's real size before anything is allocated, and
every problem is an :class:`AlatFormatError` naming what is wrong and where.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from latentcodec.errors import AlatFormatError
from latentcodec.format.entropy import EntropyError
from latentcodec.format.header import (
    CRC,
    END_MAGIC,
    FLAG_ZSTD,
    INDEX_MAGIC,
    MAX_HEADER,
    RECORD,
    RECORD_MAGIC,
    TRAILER,
    Header,
    parse_header,
    writable_problem,
)
from latentcodec.format.quantize import dequantize, quantize
from latentcodec.format.transform_coder import decode_codes_of, dequantize_codes, encode_latent


class AlatWriter:
    """Writes a .alat stream: header first, each record as soon as it exists, then index and end marker.

    Records come in chunk order, channels within a chunk: ``write(chunk, channel, latent)``.
    """

    def __init__(self, f: BinaryIO, header: Header):
        self.f, self.header = f, header
        problem = writable_problem(header)
        if problem:  # before the first byte: no file its own reader refuses
            raise AlatFormatError(f"refusing to write a header the reader refuses: {problem}")
        if header.version >= 2:
            self._steps, self._transform = np.asarray(header.steps), np.asarray(header.transform)
        self._zstd = zstd_module() if header.zstd_level else None
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
        if tuple(latent.shape) != h.record_shape(chunk):
            raise ValueError(f"latent shape {latent.shape} is not {h.record_shape(chunk)}")
        if h.version >= 2:
            stats, payload = encode_latent(latent, self._steps, self._transform)
        else:
            st, payload = quantize(latent, h.bits)
            stats = st.astype("<f4").tobytes()
        flags = 0
        if self._zstd is not None:
            packed = self._zstd.compress(payload, level=h.zstd_level)
            if len(packed) < len(payload):
                payload, flags = packed, FLAG_ZSTD
        rec = RECORD.pack(RECORD_MAGIC, chunk, channel, flags, 0, len(payload)) + stats + payload
        rec += CRC.pack(zlib.crc32(rec))
        self.f.write(rec)
        self.offsets.append(self.pos)
        self.pos += len(rec)
        return len(rec)

    def close(self) -> int:
        """Write index and end marker; returns the file's total size."""
        if len(self.offsets) != self.header.num_records:
            raise ValueError(f"{len(self.offsets)} records written, header promises {self.header.num_records}")
        index = INDEX_MAGIC + struct.pack("<I", len(self.offsets)) + np.asarray(self.offsets, "<u8").tobytes()
        index += CRC.pack(zlib.crc32(index))
        off = struct.pack("<Q", self.pos)
        self.f.write(index + TRAILER.pack(self.pos, zlib.crc32(off), END_MAGIC))
        self.pos += len(index) + TRAILER.size
        return self.pos


def _open(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise AlatFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AlatFormatError(f"{path}: is a folder, not a .alat file") from None
    except OSError as e:
        raise AlatFormatError(f"{path}: cannot open ({e.strerror})") from None


def _read_stream(stream: BinaryIO, where: str) -> io.BytesIO:
    """A stream that cannot seek (a pipe), read whole, as the index lies at the end; its header is checked
    from the first bytes before the rest is read, so that what is no .alat file (gigabytes of zeros piped
    in) is refused at once, not held in memory."""
    head = stream.read(MAX_HEADER + 64)  # more than the longest header: magic, version, length, body, CRC
    parse_header(io.BytesIO(head), len(head), where)
    buffer = io.BytesIO()
    buffer.write(head)
    shutil.copyfileobj(stream, buffer)
    buffer.seek(0)
    return buffer


class AlatReader:
    """Reads a .alat file: header, then any record by (chunk, channel) through the index.

    ``salvage=True`` never trusts the index: it scans for records whose CRC holds, keeps those, and
    lists the (chunk, channel) pairs it could not find in ``lost``.
    """

    def __init__(self, path: str | Path | BinaryIO, salvage: bool = False):
        """``path`` may be a binary file object; one that cannot seek (a pipe) is read whole first, as
        the index lies at the end. The reader closes only what it opened."""
        self._owned = isinstance(path, (str, Path))
        if isinstance(path, (str, Path)):
            self.where = str(path)
            self.f: BinaryIO = _open(Path(path))
        else:
            self.where = getattr(path, "name", "<stream>")
            self.f = path if path.seekable() else _read_stream(path, self.where)
        try:
            self.file_size = self.f.seek(0, os.SEEK_END)
            self.f.seek(0)
            self.header, self.data_start = parse_header(self.f, self.file_size, self.where)
            h = self.header
            self.record_min = RECORD.size + h.stats_size + CRC.size
            self.salvage = salvage
            self.lost: list[tuple[int, int]] = []
            if salvage:
                self.offsets = self._scan()
            else:
                self.offsets = self._read_index()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> AlatReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self.f.close()

    def _read_at(self, offset: int, size: int) -> bytes:
        if offset < 0 or offset + size > self.file_size:
            raise AlatFormatError(
                f"{self.where}: truncated: {size} bytes at offset {offset} lie past the end ({self.file_size} bytes)"
            )
        self.f.seek(offset)
        return self.f.read(size)

    def _trailer(self) -> int:
        """The index offset the end marker gives, or a format error."""
        if self.file_size < self.data_start + TRAILER.size:
            raise AlatFormatError(f"{self.where}: truncated: no end marker (file ends at byte {self.file_size})")
        off_bytes = self._read_at(self.file_size - TRAILER.size, TRAILER.size)
        index_off, crc, magic = TRAILER.unpack(off_bytes)
        if magic != END_MAGIC:
            raise AlatFormatError(f"{self.where}: truncated or damaged: no end marker at offset {self.file_size - 4}")
        if zlib.crc32(off_bytes[:8]) != crc:
            raise AlatFormatError(f"{self.where}: end marker CRC mismatch at offset {self.file_size - TRAILER.size}")
        return index_off

    def _check_room(self, tail: int) -> None:
        """The header's K x C records of at least the minimum size, and ``tail`` bytes after them, must fit
        in the file: no count a file cannot hold ever sizes an allocation (salvage too, with ``tail`` 0)."""
        n = self.header.num_records
        if self.data_start + n * self.record_min + tail > self.file_size:
            raise AlatFormatError(
                f"{self.where}: truncated or damaged: {n} records cannot fit in {self.file_size} "
                f"bytes (each at least {self.record_min} bytes)"
            )

    def _read_index(self) -> list[int]:
        n = self.header.num_records
        index_size = 8 + 8 * n + CRC.size
        self._check_room(index_size + TRAILER.size)
        index_off = self._trailer()
        if index_off + index_size + TRAILER.size != self.file_size:
            raise AlatFormatError(
                f"{self.where}: index offset {index_off} in the end marker does not match the file size"
            )
        raw = self._read_at(index_off, index_size)
        if raw[:4] != INDEX_MAGIC or struct.unpack_from("<I", raw, 4)[0] != n:
            raise AlatFormatError(f"{self.where}: damaged index at offset {index_off}")
        if zlib.crc32(raw[:-4]) != CRC.unpack_from(raw, len(raw) - 4)[0]:
            raise AlatFormatError(f"{self.where}: index CRC mismatch at offset {index_off}")
        offsets = np.frombuffer(raw, "<u8", count=n, offset=8).astype(np.int64).tolist()
        bounds = [self.data_start] + offsets[1:] + [index_off]
        if offsets and (
            offsets[0] != self.data_start or any(b - a < self.record_min for a, b in zip(offsets, bounds[1:]))
        ):
            raise AlatFormatError(f"{self.where}: index at offset {index_off} holds impossible record offsets")
        self.index_offset = index_off
        return offsets

    def _parse_record(self, offset: int, limit: int) -> tuple[int, int, int, bytes, bytes] | str:
        """(chunk, channel, size, stats, payload) of the record at ``offset``, or why it is bad."""
        h = self.header
        if offset + self.record_min > limit:
            return "truncated record"
        head = self._read_at(offset, RECORD.size)
        magic, chunk, channel, flags, reserved, plen = RECORD.unpack(head)
        if magic != RECORD_MAGIC:
            return "no record magic"
        if flags & ~FLAG_ZSTD or (flags & FLAG_ZSTD and not h.zstd_level):
            return f"record flags {flags:#x} are not allowed here"
        if reserved:
            return f"reserved byte {reserved:#x} at record offset 11 is not 0"
        if h.version >= 2:
            bad_length = plen % 4 or plen > h.max_payload_size
        else:
            bad_length = not (plen < h.raw_payload_size if flags & FLAG_ZSTD else plen == h.raw_payload_size)
        if bad_length or (plen == 0 and h.version == 1):
            return f"payload length {plen} is impossible"
        size = self.record_min + plen
        if offset + size > limit:
            return f"record of {size} bytes runs past byte {limit}"
        body = head + self._read_at(offset + RECORD.size, size - RECORD.size)
        if zlib.crc32(body[:-4]) != CRC.unpack_from(body, size - 4)[0]:
            return "record CRC mismatch"
        if chunk >= h.num_chunks or channel >= h.channels:
            return f"chunk {chunk} channel {channel} out of range"
        stats = body[RECORD.size : RECORD.size + h.stats_size]
        return chunk, channel, size, stats, body[RECORD.size + h.stats_size : -4]

    def _scan(self) -> list[int]:
        """Salvage: offsets of every intact record found between the header and the index (or EOF)."""
        h = self.header
        self._check_room(0)
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
            raise AlatFormatError(f"{self.where}: chunk {chunk} channel {channel} at offset {off}: {rec}")
        if not self.salvage and off + rec[2] != limit:
            raise AlatFormatError(
                f"{self.where}: chunk {chunk} channel {channel} at offset {off} ends at byte "
                f"{off + rec[2]}, but the next structure begins at byte {limit}"
            )
        if (rec[0], rec[1]) != (chunk, channel):
            raise AlatFormatError(
                f"{self.where}: record at offset {off} is chunk {rec[0]} channel {rec[1]}, "
                f"the index says chunk {chunk} channel {channel}"
            )
        return rec[2], rec[3], rec[4], off

    def read(self, chunk: int, channel: int) -> np.ndarray | None:
        """The dequantized latent (float32, channels x time x mel) of one record; None if salvage lost it."""
        h = self.header
        if self.salvage and self.offsets[chunk * h.channels + channel] < 0:
            return None
        if h.version >= 2:
            return dequantize_codes(self.codes(chunk, channel), np.asarray(h.steps), np.asarray(h.transform))
        _, stats, payload, off = self.record(chunk, channel)
        if len(payload) != h.raw_payload_size:
            payload = self._unzstd(payload, chunk, channel, off)
        if payload[-1] >> (h.values * h.bits % 8 or 8):  # the writer pads with 0: one byte string per record
            raise AlatFormatError(
                f"{self.where}: chunk {chunk} channel {channel}: unused bits of the payload's last byte are not 0"
            )
        st = np.frombuffer(stats, "<f4").reshape(h.latent_channels, -1)
        if h.bits != 16 and not np.isfinite(st).all():
            raise AlatFormatError(f"{self.where}: chunk {chunk} channel {channel}: non-finite quantizer stats")
        with np.errstate(over="ignore"):  # a forged stat's overflow is refused just below
            latent = dequantize(st, payload, h.bits, h.latent_shape)
        if not np.isfinite(latent).all():  # float16 values, or min + q x step past the binary32 range
            raise AlatFormatError(f"{self.where}: chunk {chunk} channel {channel}: non-finite latent values")
        return latent

    def latent(self, chunk: int, channel: int = 0) -> np.ndarray:
        """Chunk ``chunk``'s dequantized latent of audio channel ``channel``: float32 (latent channels,
        chunk_frames / 4, n_mels / 4), without decoding audio."""
        latent = self.read(chunk, channel)
        if latent is None:
            raise AlatFormatError(f"{self.where}: chunk {chunk} channel {channel} is lost (damaged)")
        return latent

    def latents(self, channel: int = 0) -> np.ndarray:
        """Every chunk's latent of audio channel ``channel`` joined along time: float32 (latent channels,
        frames, n_mels / 4); versions 1 and 2 hold the last chunk's padding past the audio too (num_chunks x
        chunk_frames / 4 frames), version 3 only the frames that cover audio."""
        return np.concatenate([self.latent(k, channel) for k in range(self.header.num_chunks)], axis=1)

    def codes(self, chunk: int, channel: int) -> np.ndarray:
        """Version 2: the integer codes (int64, components x time x mel) of one record, as coded."""
        _, stats, payload, off = self.record(chunk, channel)
        try:
            return decode_codes_of(stats, payload, self.header.record_shape(chunk))
        except EntropyError as e:
            raise AlatFormatError(f"{self.where}: chunk {chunk} channel {channel} at offset {off}: {e}") from None

    def _unzstd(self, payload: bytes, chunk: int, channel: int, off: int) -> bytes:
        zstd = zstd_module()
        want = self.header.raw_payload_size
        try:  # capped: the output never grows past want + 1 bytes, whatever size the frame header claims
            size = zstd_frame_size(payload)
            if size != len(payload):  # a decompressor stops at the frame's end, or skips a skippable frame, silently
                raise ValueError(f"the frame ends at byte {size} of the payload's {len(payload)}")
            z = zstd.ZstdDecompressor()
            out = z.decompress(payload, max_length=want + 1)
        except (zstd.ZstdError, ValueError) as e:
            raise AlatFormatError(
                f"{self.where}: chunk {chunk} channel {channel} at offset {off}: bad zstd data ({e})"
            ) from e
        if len(out) != want or not z.eof:
            raise AlatFormatError(
                f"{self.where}: chunk {chunk} channel {channel} at offset {off}: zstd data gives "
                f"{len(out)} bytes, not {want}"
            )
        return out

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray | None]]:
        """(chunk, channel, latent) in file order; latent None for records salvage lost."""
        for i in range(self.header.num_records):
            chunk, channel = divmod(i, self.header.channels)
            yield chunk, channel, self.read(chunk, channel)

    def record_sizes(self) -> list[int]:
        """Bytes on disk of each record, in file order (-1 where salvage lost it)."""
        return [self.record(*divmod(i, self.header.channels))[0] if o >= 0 else -1 for i, o in enumerate(self.offsets)]

    def verify(self) -> None:
        """Check every record's CRC and decoding; raises AlatFormatError at the first problem."""
        for _ in self:
            pass


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def zstd_module() -> Any:
    """The standard library's zstd (``compression.zstd``, Python 3.14), else its backport (``backports.zstd``,
    the same API): one small binding rather than the 24 MB ``zstandard`` wheel."""
    try:
        from compression import zstd
    except ImportError:
        from backports import zstd
    return zstd


def zstd_frame_size(data: bytes) -> int:
    """Bytes of the zstd frame that ``data`` begins with (RFC 8878 3.1.1: the frame header, sized by its
    descriptor byte; blocks up to the last; then the checksum if the descriptor says so), from the headers
    alone; ValueError if it begins with none."""
    if data[:4] != ZSTD_MAGIC or len(data) < 5:
        raise ValueError("no zstd frame magic")
    fhd = data[4]
    if fhd & 0x08:
        raise ValueError("the frame header's reserved bit is set")
    single_segment, checksum = fhd >> 5 & 1, fhd >> 2 & 1
    content_size = (single_segment, 2, 4, 8)[fhd >> 6]
    pos = 5 + (1 - single_segment) + (0, 1, 2, 4)[fhd & 3] + content_size  # window byte, dictionary id, size
    last = 0
    while not last:
        if pos + 3 > len(data):
            raise ValueError("the frame ends inside a block header")
        head = int.from_bytes(data[pos : pos + 3], "little")
        last, kind, size = head & 1, head >> 1 & 3, head >> 3
        pos += 3 + (1 if kind == 1 else size)  # an RLE block stores one byte
    return pos + 4 * checksum


def write_bytes(header: Header, latents: list[np.ndarray]) -> bytes:
    """A whole .alat file in memory, records in order (for tests and tools)."""
    buf = io.BytesIO()
    w = AlatWriter(buf, header)
    for i, lat in enumerate(latents):
        w.write(*divmod(i, header.channels), lat)
    w.close()
    return buf.getvalue()
