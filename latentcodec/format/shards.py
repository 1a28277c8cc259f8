"""Tar shards of .alat files in WebDataset's layout: ``NNNNNN.tar``, each member ``KEY.alat`` where KEY is
a path relative to the data set's root without its suffix (one sample per key, one field, ``alat``), and
last an index member, ``__alat_index__`` (each member's name, size and header facts), which WebDataset
skips as metadata.

Why tar: clusters and object stores serve a few large files far better than millions of small ones, and
WebDataset (which stable-audio-tools reads) streams such shards. Reading one member needs no extraction:
a shard's table of members (offset, size) is read once from its headers (``format/tar.py``, the subset we
write, with bounded work), then each member is a byte range of the shard. Why the index: a training set's
index of crops needs each member's channels and frames; reading them from the index is one read a shard
instead of one a member. It is checked against the shard's own headers and never trusted beyond them.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from latentcodec.errors import AlatFormatError, LatentCodecError
from latentcodec.format.tar import BLOCK, TarReader

SHARD_NAME = re.compile(r"\d{6}\.tar")  # what a writer names its shards: 000000.tar, 000001.tar, ...
MEMBER_SUFFIX = ".alat"
INDEX_NAME = "__alat_index__"
INDEX_VERSION = 1
INDEX_FACTS = ("channels", "samples", "hops", "chunk_frames")  # per member: the header's own fields
INDEX_FIXED_BYTES = 256  # an index's bytes beyond its members' entries, at most
INDEX_ENTRY_BYTES = 72  # one entry beside its quoted name, at most: six numbers of at most 20 digits, separators


@dataclass(frozen=True)
class Member:
    """One .alat file inside a shard: its key and the byte range of its data."""

    shard: Path
    key: str
    offset: int
    size: int

    @property
    def name(self) -> str:
        """How errors and listings name it: ``SHARD:KEY.alat``."""
        return f"{self.shard}:{self.key}{MEMBER_SUFFIX}"


Source = Path | Member  # a .alat file on its own, or one in a shard


def is_sample(name: str) -> bool:
    """A member or file that holds a sample: named ``*.alat`` in any case."""
    return name[-len(MEMBER_SUFFIX) :].lower() == MEMBER_SUFFIX


def check_name(name: str, shard: Path, is_file: bool) -> None:
    """Refuse the shard when a member's name could leave a folder it is mirrored into (absolute, an empty,
    ``.`` or ``..`` part, a backslash, a NUL byte). A directory's name may end in one ``/``."""
    bare = name[:-1] if not is_file and name.endswith("/") else name
    if (
        not bare
        or bare.startswith("/")
        or "\\" in bare
        or "\0" in bare
        or any(part in ("", ".", "..") for part in bare.split("/"))
    ):
        raise AlatFormatError(f"{shard}: member {name!r} names a path outside the shard's folder")


@dataclass
class ShardTable:
    """A shard's samples in stored order: keys, data offsets and sizes, and the index's header facts
    (an (n, 4) array of ``INDEX_FACTS``) when the shard carries a valid index, else None."""

    shard: Path
    keys: list[str]
    offsets: np.ndarray
    sizes: np.ndarray
    facts: np.ndarray | None

    def members(self) -> list[Member]:
        return [Member(self.shard, k, int(o), int(n)) for k, o, n in zip(self.keys, self.offsets, self.sizes)]


def read_table(shard: Path) -> ShardTable:
    """Every sample of ``shard`` from its tar headers, every name checked, a key twice refused; the index
    member, where there is one, checked against them. Any failure makes the whole shard unreadable."""
    try:
        with open(shard, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            keys, offsets, sizes, index = _scan(TarReader(f, str(shard), size, seekable=True), shard)
            facts = None
            if index is not None:
                f.seek(index[0])
                facts = parse_index(f.read(index[1]), keys, sizes, shard)
    except OSError as e:
        raise AlatFormatError(f"{shard}: cannot read ({e.strerror or e})") from None
    return ShardTable(shard, keys, np.asarray(offsets, np.int64), np.asarray(sizes, np.int64), facts)


def _scan(reader: TarReader, shard: Path) -> tuple[list[str], list[int], list[int], tuple[int, int] | None]:
    keys: list[str] = []
    offsets: list[int] = []
    sizes: list[int] = []
    seen: set[str] = set()
    index = None
    for entry, _ in reader.entries():
        check_name(entry.name, shard, entry.is_file)
        if entry.is_file and entry.name == INDEX_NAME:
            index = (entry.offset, entry.size)
        elif entry.is_file and is_sample(entry.name):
            key = entry.name[: -len(MEMBER_SUFFIX)]
            if key in seen:
                raise AlatFormatError(f"{shard}: holds key {key!r} twice")
            seen.add(key)
            keys.append(key)
            offsets.append(entry.offset)
            sizes.append(entry.size)
    return keys, offsets, sizes, index


def members(shard: Path) -> list[Member]:
    """The .alat members of ``shard`` in the order stored (see :func:`read_table` for what is refused)."""
    return read_table(shard).members()


def index_bound(names: list[str]) -> int:
    """The most bytes an index of members ``names`` may take: what the writer can write, no more."""
    return INDEX_FIXED_BYTES + sum(len(json.dumps(n)) + INDEX_ENTRY_BYTES for n in names)


def parse_index(data: bytes, keys: list[str], sizes: list[int], shard: Path) -> np.ndarray:
    """The index's header facts, (members, 4) int64, after checking that it lists exactly the shard's
    samples (names and sizes, in order) with facts inside the header's own bounds."""
    names = [k + MEMBER_SUFFIX for k in keys]
    bad = AlatFormatError(f"{shard}: its index ({INDEX_NAME}) does not match its members (damaged shard)")
    if len(data) > index_bound(names):
        raise bad
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad from None
    columns = ("names", "sizes", *INDEX_FACTS)
    if (
        not isinstance(doc, dict)
        or doc.get("version") != INDEX_VERSION
        or any(not isinstance(doc.get(c), list) or len(doc[c]) != len(names) for c in columns)
    ):
        raise bad
    if doc["names"] != names or doc["sizes"] != list(sizes):
        raise bad
    cols = [doc[c] for c in INDEX_FACTS]
    if any(type(v) is not int or not 0 <= v < 1 << 62 for col in cols for v in col):
        raise bad
    facts = np.array(cols, np.int64).T.reshape(len(names), len(INDEX_FACTS))
    if len(names) and ((facts[:, 0] < 1).any() or (facts[:, 2] < 1).any() or (facts[:, 3] < 4).any()):
        raise bad
    return facts


def index_bytes(files: list[tuple[str, int, tuple[int, int, int, int]]]) -> bytes:
    """An index of ``(member name, size, (channels, samples, hop, chunk frames))`` in stored order."""
    doc: dict[str, object] = {
        "version": INDEX_VERSION,
        "names": [n for n, _, _ in files],
        "sizes": [s for _, s, _ in files],
    }
    for i, col in enumerate(INDEX_FACTS):
        doc[col] = [f[i] for _, _, f in files]
    return json.dumps(doc, separators=(",", ":")).encode()


def open_source(source: Source) -> Path | BinaryIO:
    """What :class:`AlatReader` takes for ``source``: the path, or the member's bytes as a named stream."""
    if isinstance(source, Path):
        return source
    try:
        with open(source.shard, "rb") as f:
            f.seek(source.offset)
            data = f.read(source.size)
    except OSError as e:
        raise AlatFormatError(f"{source.shard}: cannot read ({e.strerror or e})") from None
    if len(data) != source.size:
        raise AlatFormatError(f"{source.name}: truncated (the shard changed since it was listed)")
    stream = io.BytesIO(data)
    stream.name = source.name
    return stream


def walk(folder: Path) -> tuple[list[Path], list[Path]]:
    """(loose .alat files, .tar shards) under ``folder``, each sorted; hidden folders (a shard writer's
    staging folder) are skipped, and links to folders not followed (as ``Path.rglob``)."""
    loose: list[Path] = []
    shards: list[Path] = []

    def refuse(e: OSError) -> None:
        raise LatentCodecError(f"{e.filename or folder}: cannot read ({e.strerror or e})")

    try:
        for root, dirs, files in os.walk(folder, onerror=refuse):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                path = Path(root, name)
                if is_sample(name) and path.is_file():
                    loose.append(path)
                elif name[-4:].lower() == ".tar" and path.is_file():
                    shards.append(path)
    except OSError as e:
        refuse(e)
    return sorted(loose), sorted(shards)


def sources_under(folder: Path) -> list[Source]:
    """Every .alat file under ``folder`` and every .alat member of its .tar shards, sorted by key (the
    path below ``folder`` without suffix; a member's key is its name in the shard). A key that two shards,
    or a shard and a loose file, both hold is refused before any work: which one is meant is unknown."""
    loose, shards = walk(folder)
    found: list[tuple[str, Source]] = [(p.relative_to(folder).as_posix()[: -len(MEMBER_SUFFIX)], p) for p in loose]
    for shard in shards:
        found += [(m.key, m) for m in members(shard)]
    found.sort(key=lambda x: x[0])
    refuse_twice(found)
    return [s for _, s in found]


def refuse_twice(found: list[tuple[str, Source]]) -> None:
    """``found``, sorted by key, must hold each key once."""
    for (a, sa), (b, sb) in zip(found, found[1:]):
        if a == b:
            raise LatentCodecError(
                f"key {a!r} is held by both {source_name(sa)} and {source_name(sb)}: remove one "
                f"of them; nothing was done"
            )


def source_name(source: Source) -> str:
    return source.name if isinstance(source, Member) else str(source)


def tar_bytes(size: int) -> int:
    """What a member of ``size`` bytes with a short name adds to a shard: its header block and its data in
    whole blocks (a name over 100 bytes adds a PAX header of its own)."""
    return BLOCK + -(-size // BLOCK) * BLOCK


def write_shard(out: BinaryIO, files: Iterable[tuple[str, Path]]) -> None:
    """A shard of ``(key, .alat path)`` onto ``out``, in the order given, then its index. Members carry no
    owner and time 0, so the same files make the same bytes."""
    from latentcodec.format.container import AlatReader

    entries = []
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for key, path in files:
            with AlatReader(path) as r:
                h = r.header
            info = tarfile.TarInfo(key + MEMBER_SUFFIX)
            info.size, info.mode, info.mtime = os.stat(path).st_size, 0o644, 0
            entries.append((info.name, info.size, (h.channels, h.num_samples, h.mel.hop, h.chunk_frames)))
            with open(path, "rb") as f:
                tar.addfile(info, f)
        data = index_bytes(entries)
        info = tarfile.TarInfo(INDEX_NAME)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tar.addfile(info, io.BytesIO(data))


def stream_members(f: BinaryIO, label: str) -> Iterator[tuple[str, bytes]]:
    """``(key, .alat bytes)`` of each sample of a shard read forward once (a pipe, an object store's
    stream), with the same rules as :func:`read_table` except that an index is not needed and not read."""
    seen: set[str] = set()
    shard = Path(label)
    for entry, data in TarReader(f, label).entries(with_data=True):
        check_name(entry.name, shard, entry.is_file)
        if entry.is_file and is_sample(entry.name):
            key = entry.name[: -len(MEMBER_SUFFIX)]
            if key in seen:
                raise AlatFormatError(f"{label}: holds key {key!r} twice")
            seen.add(key)
            assert data is not None
            yield key, data
