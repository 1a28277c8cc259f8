"""The shard fuzzer of tests/shard_fuzzing.py in CI: 10,000 mutants of valid shards, each refused with the
package's error or read alike by the table and the stream, within its memory and time bounds
(bench/fuzz.py --shards runs a million)."""
from __future__ import annotations

import pytest
from tests import shard_fuzzing

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"


def test_fuzz_the_shard_reader() -> None:
    tally = shard_fuzzing.run(10_000, seed=40)
    print(tally.text())
    assert tally.failures == [], "\n".join(tally.failures[:5])
    assert tally.refused > 1000 and tally.read > 1000  # both paths taken


def test_every_base_shard_reads() -> None:
    import io

    from latentcodec.format.shards import stream_members

    for data in shard_fuzzing.bases():
        assert list(stream_members(io.BytesIO(data), "base"))
