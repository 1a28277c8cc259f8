"""Property test: no mutation of a valid file escapes as anything but AlatFormatError, and salvage
yields exactly the intact records, bit-identical to the original's."""
from __future__ import annotations

import pytest
import struct
import tempfile
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentcodec.errors import AlatFormatError
from latentcodec.format.container import AlatReader
from tests.alat_fixtures import make_file, make_header

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"

HEADER = make_header(channels=2, seconds=11, bits=3, zstd=0, chunk_frames=100)
ORIGINAL, _ = make_file(HEADER)
ZHEADER = make_header(channels=1, seconds=4, bits=8, zstd=5, chunk_frames=100)
ZORIGINAL, _ = make_file(ZHEADER)
V2HEADER = replace(make_header(channels=2, seconds=6, chunk_frames=100), steps=[0.3] * 8, transform=np.eye(8).tolist())
V2ORIGINAL, _ = make_file(V2HEADER)
TMP = Path(tempfile.mkdtemp())


def _records(data: bytes, salvage: bool) -> dict[tuple[int, int], np.ndarray | None]:
    path = TMP / "m.alat"
    path.write_bytes(data)
    with AlatReader(path, salvage=salvage) as r:
        return {(c, ch): lat for c, ch, lat in r}


REFERENCE = {id(d): _records(d, False) for d in (ORIGINAL, ZORIGINAL, V2ORIGINAL)}


@st.composite
def mutants(draw: st.DrawFn) -> tuple[bytes, bytes]:
    original = draw(st.sampled_from([ORIGINAL, ZORIGINAL, V2ORIGINAL]))
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


def test_v2_forged_crc_payload_flips_end_in_format_errors_or_finite_latents() -> None:
    """A flipped payload bit behind a recomputed CRC reaches the ANS decoder (the CRC is the guard against
    damage; ANS decodes any words): it must give the package's format error or finite latents, within
    the file's size, never a hang or another exception."""
    with AlatReader(_path(V2ORIGINAL)) as r:
        off, size = r.offsets[1], r.record(0, 1)[0]
    start, rng = off + 16 + 24, np.random.default_rng(5)
    for _ in range(200):
        data = bytearray(V2ORIGINAL)
        pos = int(rng.integers(start, off + size - 4))
        data[pos] ^= 1 << int(rng.integers(0, 8))
        data[off + size - 4:off + size] = struct.pack("<I", zlib.crc32(bytes(data[off:off + size - 4])))
        try:
            latents = _records(bytes(data), salvage=False)
        except AlatFormatError:
            continue
        assert all(np.isfinite(lat).all() and lat.shape == V2HEADER.latent_shape for lat in latents.values())


def _path(data: bytes) -> Path:
    path = TMP / "p.alat"
    path.write_bytes(data)
    return path


def test_fuzz_every_field_of_both_versions(tiny_model) -> None:
    """20,000 mutants of version-1, 2 and 3 files (forged fields of every structure and byte-level
    changes, CRCs recomputed), read strictly and salvaged, and 300 more decoded to audio with the tiny model:
    the package's error or finite latents and samples, within the memory and time bounds of tests/fuzzing.py."""
    from latentcodec.models.loader import load_model
    from tests import fuzzing

    tally = fuzzing.run(20_000, seed=25)
    fuzzing.run(300, seed=26, model=load_model(tiny_model), decode_every=1, tally=tally)
    print(tally.text())
    assert not tally.failures, tally.failures[:5]
    assert tally.refused > 10_000 and tally.finite > 1000 and tally.decoded > 50


def test_the_fuzzer_reaches_every_field() -> None:
    """Every header field of the spec, and each record, index and end-marker field, is one the fuzzer forges."""
    from tests import fuzzing
    from tests.forge import FIELDS

    for data in fuzzing.bases():
        offsets = {off for off, _ in fuzzing.fields_of(data)}
        assert {14 + off for off, _ in FIELDS.values()} <= offsets
        with AlatReader(_path(data)) as r:
            assert all({o, o + 4, o + 8, o + 10, o + 11, o + 12} <= offsets for o in r.offsets)
            assert {r.index_offset, r.index_offset + 4, len(data) - 16, len(data) - 8, len(data) - 4} <= offsets
