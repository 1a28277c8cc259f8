"""A model folder's ``coder.json`` (version 2's transform across latent channels), read and checked where it
is used, when a file is encoded: decoding never needs it, so a damaged table must not stop a decode, and a
table that is not JSON, is nested without end, ragged, of strings or not orthonormal ends in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentcodec.errors import ModelError
from latentcodec.format.rate import CODER_TABLE, load_coder_table

MAX_TABLE_BYTES = 1 << 20  # the shipped tables are about 2 KB
ORTHONORMAL_TOLERANCE = 1e-2  # K K^T against the identity: tables are stored to 8 digits, files in float16


def read_coder_table(folder: str | Path | None, latent_channels: int) -> dict | None:
    """The checked coder table of the model folder ``folder``, or None when it has none."""
    path = Path(folder) / CODER_TABLE if folder else None
    if path is None or not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_TABLE_BYTES:
            raise ValueError(f"{path.stat().st_size:,} bytes, more than a table's {MAX_TABLE_BYTES:,}")
        table = load_coder_table(path.parent)
    except (OSError, ValueError, RecursionError) as e:  # not UTF-8 or not JSON are ValueErrors
        raise ModelError(f"{path}: not a readable coder table ({type(e).__name__}: {str(e)[:100]})") from e
    check_transform(table, latent_channels, path)
    return table


def check_transform(table: object, n: int, path: Path) -> None:
    """``table['transform']`` is an n x n matrix of numbers with orthonormal rows, as a KLT has: the decoder
    inverts it by its transpose, and files store it in float16."""
    k = table.get("transform") if isinstance(table, dict) else None
    if not (
        isinstance(k, list)
        and len(k) == n
        and all(
            isinstance(row, list)
            and len(row) == n
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row)
            for row in k
        )
    ):
        raise ModelError(f"{path}: needs a 'transform' of {n} rows of {n} numbers (the model's latent channels)")
    m = np.asarray(k, np.float64)
    if (
        not np.isfinite(m).all()
        or np.abs(m).max() > 1 + ORTHONORMAL_TOLERANCE
        or np.abs(m @ m.T - np.eye(n)).max() > ORTHONORMAL_TOLERANCE
    ):
        raise ModelError(f"{path}: its transform is not orthonormal (finite, rows of unit length at right angles)")
