"""Output files appear whole or not at all: written to a temporary file beside the target, renamed at
the end, removed on any failure."""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import LatentCodecError


def _os_message(path: Path, e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return f"{path}: no space left on the device; nothing was written"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{path}: cannot write here (permission denied)"
    return f"{path}: cannot write ({e.strerror or e})"


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise LatentCodecError(f"{path}: the folder {folder} does not exist")
    if path.is_dir():
        raise LatentCodecError(f"{path}: is a folder")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
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
