"""Output files appear whole or not at all: written to a temporary file beside the target, renamed at
the end, removed on any failure. They get the mode a new file gets under the user's umask (the
temporary file's private 0600 would otherwise survive the rename)."""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from latentcodec.errors import LatentCodecError


def _os_message(path: Path, e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return f"{path}: no space left on the device; nothing was written"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{path}: cannot write here (permission denied)"
    return f"{path}: cannot write ({e.strerror or e})"


def new_file_mode() -> int:
    """0666 less the process's umask: what open() would give a new file (0644 under umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def check_output(path: str | Path, overwrite: bool, source: str | Path | None = None) -> None:
    """Refuse an output that exists (unless ``overwrite``) or that is the input ``source`` itself."""
    path = Path(path)
    if source is not None and path.exists() and Path(source).exists() and os.path.samefile(path, source):
        raise LatentCodecError(f"{path}: is the input itself; write the output elsewhere")
    if path.is_dir():
        raise LatentCodecError(f"{path}: is a folder")
    if path.exists() and not overwrite:
        raise LatentCodecError(f"{path}: exists", "overwrite")


@contextmanager
def stream_output(name: str) -> Iterator[None]:
    """A write error on a stream (stdout) as one LatentCodecError; a closed pipe stays BrokenPipeError."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as e:
        raise LatentCodecError(f"{name}: cannot write ({e.strerror or e})") from e


TEMP_SUFFIX = ".part"
_TEMP_RANDOM = 8  # the characters tempfile.mkstemp puts between prefix and suffix


def temporary_prefix(path: Path) -> str:
    """The name of :func:`atomic_output`'s temporary files for ``path`` begins so: hidden, beside it."""
    return f".{path.name}."


def remove_stale_temporaries(path: str | Path) -> int:
    """Remove the temporary files an interrupted writer of ``path`` left beside it (a SIGKILL skips every
    clean-up); returns how many. Only names of exactly :func:`atomic_output`'s pattern are touched."""
    path = Path(path)
    prefix, n = temporary_prefix(path), 0
    if not path.parent.is_dir():
        return 0
    for p in path.parent.iterdir():
        name = p.name
        if name.startswith(prefix) and name.endswith(TEMP_SUFFIX) \
                and len(name) == len(prefix) + _TEMP_RANDOM + len(TEMP_SUFFIX) and p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


@contextmanager
def atomic_output(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise LatentCodecError(f"{path}: the folder {folder} does not exist")
    check_output(path, overwrite)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=TEMP_SUFFIX, dir=folder)
        os.fchmod(fd, new_file_mode())
        os.close(fd)
    except OSError as e:
        raise LatentCodecError(_os_message(path, e)) from e
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise LatentCodecError(_os_message(path, e)) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
