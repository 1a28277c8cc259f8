"""The long fuzz runs: tests/fuzzing.py's mutants of version-1, 2 and 3 files, one in ``--decode-every``
decoded to audio with a tiny AutoencoderKL built in-process (as the tests' conftest builds it) and one
Griffin-Lim iteration; with ``--shards``, tests/shard_fuzzing.py's mutants of tar shards instead. Prints
the counts every ``--report`` cases and at the end:

    nice python bench/fuzz.py --cases 1000000
    nice python bench/fuzz.py --shards --cases 1000000
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latentcodec.models.loader import load_model  # noqa: E402
from tests import fuzzing, shard_fuzzing  # noqa: E402
from tests.conftest import save_tiny_vae  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--decode-every", type=int, default=100, help="one case in N decoded to audio (0: none)")
    ap.add_argument("--report", type=int, default=10_000, help="print the counts every N cases")
    ap.add_argument("--shards", action="store_true", help="fuzz the tar shard reader instead of .alat files")
    args = ap.parse_args()
    if args.shards:
        return _shards(args)
    model = load_model(str(save_tiny_vae(Path(tempfile.mkdtemp()), seed=0))) if args.decode_every else None
    tally, t, done = fuzzing.Tally(), time.perf_counter(), 0
    while done < args.cases:
        n = min(args.report, args.cases - done)
        fuzzing.run(n, args.seed + done, model, args.decode_every, tally)
        done += n
        print(f"{time.perf_counter() - t:.0f} s: {tally.text()}", flush=True)
        for why in tally.failures[-3:]:
            print(f"  failure: {why}", flush=True)
    return 1 if tally.failures else 0


def _shards(args: argparse.Namespace) -> int:
    tally, t, done = shard_fuzzing.Tally(), time.perf_counter(), 0
    while done < args.cases:
        n = min(args.report, args.cases - done)
        shard_fuzzing.run(n, args.seed + done, tally)
        done += n
        print(f"{time.perf_counter() - t:.0f} s: {tally.text()}", flush=True)
        for why in tally.failures[-3:]:
            print(f"  failure: {why}", flush=True)
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
