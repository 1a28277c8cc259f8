"""A reader of the tar subset that shards use (ustar headers, PAX and GNU long-name extensions, regular files
and directories), with bounded work per byte.

Why not ``tarfile``: it is a general reader. It follows GNU sparse maps, parses PAX headers in quadratic time
and memory (CVE-2024-6232), normalises names (``./x`` reads as ``x``) and treats a file that ends inside a
header as a clean end. Shards are untrusted input read by millions, so this reader takes the subset
spec/shards.md names and refuses everything else: every header is one 512-byte block whose checksum holds,
an extension's data is at most ``MAX_EXTENSION`` bytes, a member's data must lie inside the input, and the
archive must end with its two zero blocks (anything else is truncation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from latentcodec.errors import AlatFormatError

BLOCK = 512
MAX_EXTENSION = 64 * 1024  # a PAX header's or GNU long name's data, at most (a name is at most MAX_NAME bytes)
MAX_NAME = 4096
MAX_SIZE_DIGITS = 20  # a PAX size record: at most 2^64
REGULAR, DIRECTORY = b"0", b"5"
_KINDS = {
    b"1": "a hard link",
    b"2": "a symbolic link",
    b"3": "a character device",
    b"4": "a block device",
    b"6": "a FIFO",
    b"S": "a GNU sparse file",
    b"K": "a GNU long link name",
    b"g": "a global PAX header",
}
_READ_PIECE = 1 << 20
Fail = Callable[[str], AlatFormatError]


@dataclass(frozen=True)
class Entry:
    """A member: its name as stored (bytes decoded as UTF-8, undecodable bytes kept as surrogates), whether
    it is a regular file (else a directory), and where its data lies in the input."""

    name: str
    is_file: bool
    offset: int
    size: int


class TarReader:
    """The members of one tar input, read forward once. ``size``: the input's length where known (a file),
    so that a member's data past the end is refused before it is read; ``seekable``: data is skipped by
    seeking rather than read."""

    def __init__(self, f: BinaryIO, label: str, size: int | None = None, seekable: bool = False):
        self.f, self.label, self.size, self.seekable = f, label, size, seekable
        self.pos = 0
        self.last: str | None = None  # the last member's name, for errors

    def _fail(self, what: str) -> AlatFormatError:
        after = f"; the last member read whole: {self.last!r}" if self.last is not None else "; no member before it"
        return AlatFormatError(f"{self.label}: {what}{after}")

    def _read(self, n: int, what: str) -> bytes:
        """Exactly ``n`` bytes, read in pieces so that a size the input does not hold costs no memory."""
        if self.size is not None and self.pos + n > self.size:
            raise self._fail(f"ends inside {what} (truncated)")
        parts, left = [], n
        while left:
            piece = self.f.read(min(left, _READ_PIECE))
            if not piece:
                raise self._fail(f"ends inside {what} (truncated)")
            parts.append(piece)
            left -= len(piece)
        self.pos += n
        return b"".join(parts)

    def _skip(self, n: int, what: str) -> None:
        if self.seekable:
            if self.size is not None and self.pos + n > self.size:
                raise self._fail(f"ends inside {what} (truncated)")
            self.pos += n
            self.f.seek(self.pos)
        else:
            while n:
                step = min(n, _READ_PIECE)
                self._read(step, what)
                n -= step

    def entries(self, with_data: bool = False) -> Iterator[tuple[Entry, bytes | None]]:
        """Each member in order, with its data when ``with_data`` (else None: the data is skipped)."""
        ext: dict[str, str] = {}
        chain = 0
        while True:
            block = self._read(BLOCK, "a header")
            if block == bytes(BLOCK):
                if self._read(BLOCK, "the end-of-archive marker") != bytes(BLOCK):
                    raise self._fail("has one zero block where a header or the end-of-archive marker belongs")
                return
            kind, name, size = _header(block, self._fail)
            if kind in (b"x", b"L"):
                chain += 1
                if size > MAX_EXTENSION or chain > 2:
                    raise self._fail("has an extended header over 64 KiB, or a chain of more than two")
                record = self._read(_padded(size), "an extended header")[:size]
                ext.update(_pax(record, self._fail) if kind == b"x" else {"path": _gnu_name(record, self._fail)})
                continue
            name = ext.get("path", name)
            if kind in _KINDS or kind not in (REGULAR, DIRECTORY):
                what = _KINDS.get(kind, f"of type {kind!r}")
                raise self._fail(f"holds member {name!r}, {what}: a shard holds regular files only")
            size = int(ext.get("size", size))
            ext, chain = {}, 0
            if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
                raise self._fail(f"names a member in over {MAX_NAME} bytes")
            entry = Entry(name, kind == REGULAR, self.pos, size if kind == REGULAR else 0)
            data: bytes | None = None
            if with_data and kind == REGULAR:
                data = self._read(size, f"member {name!r}")
                self._skip(_padded(size) - size, f"member {name!r}")
            else:
                self._skip(_padded(size), f"member {name!r}")
            self.last = name
            yield entry, data


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _octal(field: bytes, fail: Fail, what: str) -> int:
    digits = field.rstrip(b"\0 ").lstrip(b" ")
    if not digits or any(c not in b"01234567" for c in digits):
        if field and field[0] & 0x80:
            raise fail(f"has a {what} in base-256 (only octal, or a PAX record, is read)")
        raise fail(f"has a header whose {what} field is not octal")
    return int(digits, 8)


def _header(block: bytes, fail: Fail) -> tuple[bytes, str, int]:
    """(type flag, name, size) of a ustar header block, its checksum and magic checked."""
    checksum = _octal(block[148:156], fail, "checksum")
    if checksum != sum(block[:148]) + 8 * 32 + sum(block[156:]):
        raise fail("has a header whose checksum does not match (damaged, or not a tar file)")
    magic = block[257:265]
    if magic not in (b"ustar\x0000", b"ustar  \0"):
        raise fail("has a header without the ustar magic (only ustar, PAX and GNU headers are read)")
    size = _octal(block[124:136], fail, "size")
    name = block[:100].split(b"\0", 1)[0]
    prefix = block[345:500].split(b"\0", 1)[0] if magic == b"ustar\x0000" else b""
    full = prefix + b"/" + name if prefix else name
    kind = block[156:157]
    return (REGULAR if kind in (b"\0", b"7") else kind), full.decode("utf-8", "surrogateescape"), size


def _pax(data: bytes, fail: Fail) -> dict[str, str]:
    """A PAX extended header's records (``LEN key=value\\n``), read in one pass. Only ``path`` and ``size``
    matter to a shard; a sparse map refuses the member."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos, pos + 12)
        if space < 0 or not data[pos:space].isdigit():
            raise fail("has a malformed PAX record")
        length = int(data[pos:space])
        record = data[space + 1 : pos + length]
        if length < 5 or pos + length > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise fail("has a malformed PAX record")
        key, value = record[:-1].split(b"=", 1)
        if key.startswith(b"GNU.sparse"):
            raise fail("holds a GNU sparse member: a shard holds regular files only")
        if key == b"path":
            out["path"] = value.decode("utf-8", "surrogateescape")
        elif key == b"size":
            if not value.isdigit() or len(value) > MAX_SIZE_DIGITS:
                raise fail("has a PAX size record that is not a decimal size")
            out["size"] = value.decode()
        pos += length
    return out


def _gnu_name(data: bytes, fail: Fail) -> str:
    name = data.split(b"\0", 1)[0]
    if not name:
        raise fail("has an empty GNU long name")
    return name.decode("utf-8", "surrogateescape")
