"""Tar shards of .alat files in WebDataset's layout: ``NNNNNN.tar``, each member ``KEY.alat`` where KEY is
a path relative to the data set's root without its suffix (one sample per key, one field, ``alat``).

Why tar: clusters and object stores serve a few large files far better than millions of small ones, and
WebDataset (which stable-audio-tools reads) streams such shards. Reading one member needs no extraction:
a shard's table of members (offset, size) is read once, then each member is a byte range of the shard.
Python's ``tarfile`` parses; nothing in a member's name or size is trusted before it is checked.
"""
from __future__ import annotations

import io
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable

from latentcodec.errors import AlatFormatError

SHARD_NAME = re.compile(r"\d{6}\.tar")  # what a writer names its shards: 000000.tar, 000001.tar, ...
MEMBER_SUFFIX = ".alat"
BLOCK = 512  # a tar block: each member costs one header block plus its data rounded up to whole blocks


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


def is_shard(path: Path) -> bool:
    return path.suffix == ".tar" and path.is_file()


def safe_key(name: str) -> str | None:
    """The key of member ``name`` (``KEY.alat``), or None when the name could leave a folder it is
    mirrored into (absolute, '..', empty parts) or is not a .alat member."""
    p = PurePosixPath(name)
    if not name.endswith(MEMBER_SUFFIX) or p.is_absolute() or any(part in ("", ".", "..") for part in p.parts) \
            or "\\" in name or "\0" in name:
        return None
    key = name[:-len(MEMBER_SUFFIX)]
    return key if key and not key.endswith("/") else None


def members(shard: Path) -> list[Member]:
    """The .alat members of ``shard`` in the order stored. A member whose name could leave the folder it
    is mirrored into, or whose data lies past the shard's end, makes the shard unreadable (format error)."""
    size = shard.stat().st_size
    out: list[Member] = []
    try:
        with tarfile.open(shard, "r:") as tar:
            for info in tar:
                if not info.isfile() or not info.name.endswith(MEMBER_SUFFIX):
                    continue
                key = safe_key(info.name)
                if key is None:
                    raise AlatFormatError(f"{shard}: member {info.name!r} names a path outside the shard's folder")
                if info.offset_data + info.size > size:
                    raise AlatFormatError(f"{shard}: member {info.name} lies past the end of the shard (truncated)")
                out.append(Member(shard, key, info.offset_data, info.size))
    except (tarfile.TarError, EOFError) as e:
        raise AlatFormatError(f"{shard}: not a readable tar shard ({e})") from None
    except OSError as e:
        raise AlatFormatError(f"{shard}: cannot read ({e.strerror or e})") from None
    return out


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


def sources_under(folder: Path) -> list[Source]:
    """Every .alat file under ``folder`` and every .alat member of its .tar shards, sorted by key (the
    path below ``folder`` without suffix; a member's key is its name in the shard). Hidden folders, such as
    the staging folder of a shard writer, are skipped."""
    found: list[tuple[str, Source]] = []
    for p in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(folder).parts[:-1]) or not p.is_file():
            continue
        if p.suffix.lower() == MEMBER_SUFFIX:
            found.append((p.relative_to(folder).with_suffix("").as_posix(), p))
        elif p.suffix.lower() == ".tar":
            found += [(m.key, m) for m in members(p)]
    return [s for _, s in sorted(found, key=lambda x: x[0])]


def tar_bytes(size: int) -> int:
    """What a member of ``size`` bytes with a short name adds to a shard: its header block and its data in
    whole blocks (a name over 100 bytes adds a PAX header of its own)."""
    return BLOCK + -(-size // BLOCK) * BLOCK


def write_shard(out: BinaryIO, files: Iterable[tuple[str, Path]]) -> None:
    """A shard of ``(key, .alat path)`` onto ``out``, in the order given. Members carry no owner and time 0,
    so the same files make the same bytes."""
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for key, path in files:
            info = tarfile.TarInfo(key + MEMBER_SUFFIX)
            info.size, info.mode, info.mtime = os.stat(path).st_size, 0o644, 0
            with open(path, "rb") as f:
                tar.addfile(info, f)
