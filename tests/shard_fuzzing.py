"""The mutation fuzzer of tar shards that tests/test_shard_fuzz.py runs in CI and bench/fuzz.py runs long.

A case takes a valid shard (with and without an index, long names through PAX and GNU headers, a
directory), changes it (a byte, a header field with its checksum recomputed most of the time, a PAX
record, the index's JSON, a truncation, a block repeated or dropped) and reads it as every reader does:
the shard's table from a file (``read_table``) and its members from a stream (``stream_members``). A case
passes when both refuse it with the package's error, or the table's members lie inside the shard and the
stream yields the same keys with the same bytes, within a memory bound (traced) of ``MEMORY_SLOPE`` times
the input's size plus ``MEMORY_BASE``, and a time bound.
"""
from __future__ import annotations

import io
import tarfile
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentcodec.errors import AlatFormatError
from latentcodec.format.shards import INDEX_NAME, index_bytes, read_table, stream_members

MEMORY_SLOPE, MEMORY_BASE = 10, 256 << 10
RATIO_FROM = 2048
SECONDS = 5.0
BLOCK = 512


def _tar(entries: list[tuple[str, bytes | None]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
            else:
                info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def bases() -> list[bytes]:
    """Small valid shards: with an index; without; a PAX long and non-ASCII name; a GNU long name and a
    directory."""
    rng = np.random.default_rng(0)
    members = [(f"k{i}.alat", rng.bytes(int(rng.integers(1, 1500)))) for i in range(3)]
    index = index_bytes([(n, len(d), (1, 16000 * (i + 1), 160, 500)) for i, (n, d) in enumerate(members)])
    long = ("d/" + "é" * 60 + ".alat", rng.bytes(700))
    return [_tar(members + [(INDEX_NAME, index)]), _tar(members), _tar([long, members[0]]),
            _tar([("dir/", None), ("dir/" + "x" * 120 + ".alat", rng.bytes(300))], tarfile.GNU_FORMAT)]


def _headers(data: bytes) -> list[int]:
    """Offsets of the header blocks, walking sizes as the tar layout lays them out."""
    out, pos = [], 0
    while pos + BLOCK <= len(data) and data[pos:pos + BLOCK] != bytes(BLOCK):
        out.append(pos)
        try:
            size = int(data[pos + 124:pos + 136].rstrip(b"\0 ") or b"0", 8)
        except ValueError:
            break
        pos += BLOCK + -(-size // BLOCK) * BLOCK
    return out


def _checksum(d: bytearray, at: int) -> None:
    block = d[at:at + BLOCK]
    if len(block) == BLOCK:
        total = sum(block[:148]) + 8 * 32 + sum(block[156:])
        d[at + 148:at + 156] = b"%06o\0 " % (total & 0o777777)


FIELDS = [(0, 100), (100, 8), (124, 12), (136, 12), (156, 1), (257, 8), (345, 155)]  # name, mode, size, mtime...


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One mutant of ``data`` (see the module's docstring)."""
    d = bytearray(data)
    heads = _headers(data) or [0]
    kind = int(rng.integers(9))
    at = int(rng.choice(heads))
    if kind == 0:  # any byte
        d[int(rng.integers(len(d)))] = int(rng.integers(256))
    elif kind in (1, 2):  # a header field, checksum recomputed (kind 1) or not
        off, width = FIELDS[int(rng.integers(len(FIELDS)))]
        values = [b"", b"0" * width, b"7" * (width - 1), b"%o" % int(rng.integers(1 << 33)), b"\x80" + bytes(width - 1),
                  bytes(rng.integers(0, 256, width, dtype=np.uint8)), b"../x.alat", b"./a.alat", b"a//b.alat",
                  b"12345670123", bytes([int(rng.choice(list(b"0125xLgSK734V")))])]
        v = values[int(rng.integers(len(values)))][:width]
        d[at + off:at + off + width] = v + bytes(width - len(v))
        if kind == 1:
            _checksum(d, at)
    elif kind == 3:  # a PAX header of records, the next member's
        recs = [b"%d path=%s\n", b"%d size=%s\n", b"%d GNU.sparse.map=%s\n", b"%d x=%s\n"]
        body = b""
        for _ in range(int(rng.integers(1, 40))):
            rec = recs[int(rng.integers(len(recs)))]
            value = str(int(rng.integers(1 << 40))).encode() if rng.random() < 0.5 else b"a" * int(rng.integers(0, 300))
            n = len(rec % (0, value))
            n += len(str(n)) - 1
            body += rec % (n + int(rng.integers(-2, 3)) * (rng.random() < 0.2), value)
        head = tarfile.TarInfo("PaxHeader")
        head.type, head.size = tarfile.XHDTYPE, len(body)
        d[at:at] = head.tobuf(tarfile.USTAR_FORMAT) + body + bytes(-len(body) % BLOCK)
    elif kind == 4:  # cut anywhere
        del d[int(rng.integers(len(d))):]
    elif kind == 5:  # a block repeated or dropped
        b = int(rng.integers(len(d) // BLOCK)) * BLOCK
        if rng.random() < 0.5:
            d[b:b] = d[b:b + BLOCK]
        else:
            del d[b:b + BLOCK]
    elif kind == 6:  # the index's JSON changed in place (same size, checksum untouched)
        i = data.find(b'{"version"')
        if i >= 0:
            j = i + int(rng.integers(data.index(b"}", i) - i + 1))
            d[j] = int(rng.choice(list(b'0123456789[]{},":-e. ')))
    elif kind == 7:  # a huge size with the checksum right
        d[at + 124:at + 136] = b"%011o\0" % int(rng.integers(1 << 33))
        _checksum(d, at)
    else:  # the end-of-archive blocks gone, or garbage after
        end = _headers(data)[-1] if _headers(data) else 0
        d = d[:end + BLOCK * int(rng.integers(1, 4))] if rng.random() < 0.5 else d + bytes(rng.integers(0, 256, 700,
                                                                                                        dtype=np.uint8))
    return bytes(d)


@dataclass
class Tally:
    cases: int = 0
    refused: int = 0
    read: int = 0
    worst_memory_per_byte: float = 0.0  # over inputs of at least RATIO_FROM bytes (below, fixed costs rule)
    worst_memory: int = 0
    slowest: float = 0.0
    failures: list[str] = field(default_factory=list)

    def text(self) -> str:
        return (f"{self.cases} cases: {self.refused} refused, {self.read} read, {len(self.failures)} failures; "
                f"worst memory {self.worst_memory_per_byte:.2f} x the input (inputs of {RATIO_FROM} bytes or more), "
                f"{self.worst_memory / 1024:.0f} KiB at most, slowest {self.slowest * 1000:.1f} ms")


def check(data: bytes, path: Path) -> tuple[str | None, bool]:
    """(None when every reader handles ``data`` as the module's docstring says, else why not; whether the
    shard was read)."""
    path.write_bytes(data)
    try:
        table = read_table(path)
    except AlatFormatError:
        table = None
    try:
        streamed = list(stream_members(io.BytesIO(data), str(path)))
    except AlatFormatError:
        streamed = None
    if table is None:
        return None, False
    if ((table.offsets + table.sizes) > len(data)).any() or (table.offsets < 0).any():
        return "a member lies past the shard", True
    if streamed is None or [k for k, _ in streamed] != table.keys:
        return f"the stream read {streamed and [k for k, _ in streamed]}, the table {table.keys}", True
    for (_, got), o, n in zip(streamed, table.offsets, table.sizes):
        if got != data[int(o):int(o) + int(n)]:
            return "the stream's bytes differ from the table's", True
    return None, True


def run(cases: int, seed: int, tally: Tally | None = None) -> Tally:
    tally = tally or Tally()
    rng = np.random.default_rng(seed)
    shards = bases()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "000000.tar"
        for _ in range(cases):
            data = mutate(shards[int(rng.integers(len(shards)))], rng)
            tracemalloc.start()
            t = time.perf_counter()
            try:
                why, was_read = check(data, path)
            except Exception as e:  # anything but the package's error is a failure
                why, was_read = f"{type(e).__name__}: {e}", False
            seconds = time.perf_counter() - t
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            if why is None and peak > MEMORY_SLOPE * len(data) + MEMORY_BASE:
                why = f"{peak} bytes of memory for {len(data)} input bytes"
            if why is None and seconds > SECONDS:
                why = f"{seconds:.1f} s"
            tally.cases += 1
            tally.slowest = max(tally.slowest, seconds)
            tally.worst_memory = max(tally.worst_memory, peak)
            if len(data) >= RATIO_FROM:
                tally.worst_memory_per_byte = max(tally.worst_memory_per_byte, peak / len(data))
            if why:
                tally.failures.append(f"{why} (input {data[:64]!r}... {len(data)} bytes)")
            elif was_read:
                tally.read += 1
            else:
                tally.refused += 1
    return tally
