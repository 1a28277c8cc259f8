"""Output files appear whole or not at all: written to a temporary file beside the target, renamed at
the end, removed on any failure. They get the mode a new file gets under the user's umask (the
temporary file's private 0600 would otherwise survive the rename)."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from latentcodec.errors import LatentCodecError

NAME_MAX = 255  # bytes in one name: what Linux's and macOS's common file systems hold


def os_message(path: str | Path, e: OSError, doing: str = "write") -> str:
    """One line for an OSError about ``path``, in words a user acts on (``doing``: read or write)."""
    if e.errno == errno.ENOSPC:
        return f"{path}: no space left on the device; nothing was written"
    if e.errno == errno.EFBIG:
        return f"{path}: larger than the file system (or this process's file size limit) allows; nothing was written"
    if e.errno == errno.ENAMETOOLONG:
        longest = max((len(os.fsencode(part)) for part in Path(path).parts), default=0)
        if longest <= NAME_MAX:  # each name fits: the whole path is over the system's bound (4096 bytes on Linux)
            return f"{path}: the path is too long for the system ({len(os.fsencode(path))} bytes)"
        return f"{path}: a name in the path is too long for the file system ({longest} bytes; most hold {NAME_MAX})"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{path}: cannot {doing} here (permission denied)"
    return f"{path}: cannot {doing} ({e.strerror or e})"


def lookup(path: str | Path, doing: str = "read") -> os.stat_result | None:
    """``path``'s status (following links), None when nothing is there; a path the system cannot look up
    (a name too long, a folder on the way that may not be read) is a LatentCodecError, not an absence."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise LatentCodecError(os_message(path, e, doing)) from e


def is_folder(path: str | Path) -> bool:
    """Path.is_dir, but a path that cannot be looked up is an error in words, not False (nor a traceback)."""
    st = lookup(path)
    return st is not None and stat.S_ISDIR(st.st_mode)


def new_file_mode() -> int:
    """0666 less the process's umask: what open() would give a new file (0644 under umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


def check_output(path: str | Path, overwrite: bool, source: str | Path | None = None) -> None:
    """Refuse an output that exists (unless ``overwrite``), that is the input ``source`` itself, or that is
    not a regular file (a folder, a device, a FIFO, a socket: replacing it would break what it is)."""
    path = Path(path)
    st = lookup(path, "write")
    if st is None:
        return
    src = lookup(source) if source is not None else None
    if src is not None and os.path.samestat(st, src):
        raise LatentCodecError(f"{path}: is the input itself; write the output elsewhere")
    if stat.S_ISDIR(st.st_mode):
        raise LatentCodecError(f"{path}: is a folder")
    if not stat.S_ISREG(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        raise LatentCodecError(
            f"{path}: is {kind}, not a file: refusing to replace it (to write a stream, give - and redirect stdout)"
        )
    if not overwrite:
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
    """The name of :func:`atomic_output`'s temporary files for ``path`` begins so: hidden, beside it; a
    long name is cut so that the temporary name still fits where the name itself fits."""
    room = NAME_MAX - len(TEMP_SUFFIX) - _TEMP_RANDOM - 2
    return f".{os.fsdecode(os.fsencode(path.name)[:room])}."


def _is_temporary(name: str, prefixes: set[str]) -> bool:
    """Whether ``name`` is of exactly :func:`atomic_output`'s pattern for one of ``prefixes``."""
    cut = len(name) - _TEMP_RANDOM - len(TEMP_SUFFIX)
    return name.endswith(TEMP_SUFFIX) and name[:cut] in prefixes


def remove_stale_temporaries(*paths: str | Path) -> int:
    """Remove the temporary files that interrupted writers of ``paths`` left beside them (a SIGKILL skips
    every clean-up); returns how many. Each folder is listed once. Only names of exactly
    :func:`atomic_output`'s pattern are touched, and only when no live writer holds them (its lock)."""
    wanted: dict[Path, set[str]] = {}
    for p in map(Path, paths):
        wanted.setdefault(p.parent, set()).add(temporary_prefix(p))
    n = 0
    for folder, prefixes in wanted.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:  # no folder (yet), or one that cannot be listed: nothing of ours can be there
            continue
        n += sum(_remove_if_stale(Path(e.path)) for e in entries if _is_temporary(e.name, prefixes))
    return n


def _remove_if_stale(tmp: Path) -> bool:
    """Unlink ``tmp`` unless a writer holds its lock (an unlocked one was left by a killed writer)."""
    try:
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: a writer is still at work on it
        return False
    finally:
        os.close(fd)
    tmp.unlink(missing_ok=True)
    return True


def _locked_temporary(path: Path, folder: Path) -> tuple[int, Path]:
    """A new temporary file for ``path`` in ``folder``, open and locked. Another process's
    :func:`remove_stale_temporaries` may unlink it between its creation and the lock: then it is made anew."""
    while True:
        fd, name = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=TEMP_SUFFIX, dir=folder)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(fd), os.stat(name)):
                return fd, Path(name)
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def atomic_output(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` if the block succeeds. The
    temporary file is locked while it is written, so that :func:`remove_stale_temporaries` run by another
    process leaves it alone."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not is_folder(folder):
        raise LatentCodecError(f"{path}: the folder {folder} does not exist")
    check_output(path, overwrite)
    try:
        fd, tmp = _locked_temporary(path, folder)
    except OSError as e:
        raise LatentCodecError(os_message(path, e)) from e
    try:
        os.fchmod(fd, new_file_mode())
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise LatentCodecError(os_message(path, e)) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
