"""Property test: no mutation of a valid file escapes as anything but AlatFormatError, and salvage
yields exactly the intact records, bit-identical to the original's."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentcodec.container import AlatReader
from latentcodec.errors import AlatFormatError
from tests.alat_fixtures import make_file, make_header

HEADER = make_header(channels=2, seconds=11, bits=3, zstd=0, chunk_frames=100)
ORIGINAL, _ = make_file(HEADER)
ZHEADER = make_header(channels=1, seconds=4, bits=8, zstd=5, chunk_frames=100)
ZORIGINAL, _ = make_file(ZHEADER)
TMP = Path(tempfile.mkdtemp())


def _records(data: bytes, salvage: bool) -> dict[tuple[int, int], np.ndarray | None]:
    path = TMP / "m.alat"
    path.write_bytes(data)
    with AlatReader(path, salvage=salvage) as r:
        return {(c, ch): lat for c, ch, lat in r}


REFERENCE = {id(ORIGINAL): _records(ORIGINAL, False), id(ZORIGINAL): _records(ZORIGINAL, False)}


@st.composite
def mutants(draw: st.DrawFn) -> tuple[bytes, bytes]:
    original = draw(st.sampled_from([ORIGINAL, ZORIGINAL]))
    data = bytearray(original)
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "delete"]))
    pos = draw(st.integers(0, len(data) - 1))
    if kind == "truncate":
        data = data[:pos]
    elif kind == "flip":
        for p in [pos] + draw(st.lists(st.integers(0, len(data) - 1), max_size=3)):
            data[p] ^= 1 << draw(st.integers(0, 7))
    elif kind == "overwrite":
        blob = draw(st.binary(min_size=1, max_size=64))
        data[pos:pos + len(blob)] = blob
    elif kind == "insert":
        data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
    else:
        del data[pos:pos + draw(st.integers(1, 64))]
    return original, bytes(data)


@settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(mutants())
def test_mutants_fail_cleanly_or_salvage_exactly(case: tuple[bytes, bytes]) -> None:
    original, mutant = case
    reference = REFERENCE[id(original)]
    try:
        strict = _records(mutant, salvage=False)
    except AlatFormatError:
        pass
    else:  # a mutation that changes nothing the reader sees (e.g. overwriting with the same bytes)
        assert all(np.array_equal(strict[k], reference[k]) for k in reference)
    try:
        salvaged = _records(mutant, salvage=True)
    except AlatFormatError:
        return  # the header itself is damaged: nothing can be trusted
    for key, lat in salvaged.items():
        if lat is not None:
            assert np.array_equal(lat, reference[key]), key
