"""Folder mode against one process per file, in one run: `alat encode IN OUT --jobs 1`, `--jobs 2`, and
N separate `alat encode` calls over N short clips; wall seconds and which outputs differ in bytes.

    python bench/folder.py [--clips 100] [--seed 0] [--json]

The clips are 1-3 s cuts of the shipped example (examples/speech_codec2_male.wav) at random offsets,
written to a temporary folder. Each mode starts from an empty output folder; the separate calls run one
after another, as a shell loop would.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"
ALAT = [sys.executable, "-m", "latentcodec.cli"]  # what the `alat` script runs


def make_clips(folder: Path, n: int, seed: int) -> float:
    """``n`` cuts of 1-3 s of the example into ``folder``; returns their seconds in all."""
    x, rate = sf.read(str(EXAMPLE), dtype="float32")
    rng = np.random.default_rng(seed)
    total = 0.0
    for i in range(n):
        seconds = rng.uniform(1.0, 3.0)
        start = rng.uniform(0.0, len(x) / rate - seconds)
        sf.write(str(folder / f"clip{i:04d}.wav"), x[int(start * rate):int((start + seconds) * rate)], rate)
        total += seconds
    return total


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t


def separate_calls(src: Path, out: Path) -> float:
    out.mkdir()
    return sum(timed([*ALAT, "encode", str(p), str(out / f"{p.stem}.alat"), "--quiet"])
               for p in sorted(src.glob("*.wav")))


def differing(a: Path, b: Path) -> list[str]:
    """Names of the .alat files whose bytes differ between folders ``a`` and ``b``."""
    return [p.name for p in sorted(a.glob("*.alat")) if p.read_bytes() != (b / p.name).read_bytes()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        audio = make_clips(src, args.clips, args.seed)
        seconds = {f"jobs{j}": timed([*ALAT, "encode", str(src), str(Path(tmp) / f"jobs{j}"), "--jobs", str(j),
                                      "--quiet"]) for j in (1, 2)}
        seconds["separate"] = separate_calls(src, Path(tmp) / "separate")
        diff = {k: differing(Path(tmp) / k, Path(tmp) / "separate") for k in ("jobs1", "jobs2")}
    res = {"clips": args.clips, "audio_seconds": audio, "wall_seconds": seconds,
           "per_clip_seconds": {k: v / args.clips for k, v in seconds.items()},
           "bytes_differ_from_separate": {k: len(v) for k, v in diff.items()}, "differing_files": diff}
    if args.json:
        print(json.dumps(res, indent=1))
        return
    print(f"{args.clips} clips, {audio:.1f} s of audio")
    for k, label in (("jobs1", "alat encode IN OUT --jobs 1"), ("jobs2", "alat encode IN OUT --jobs 2"),
                     ("separate", f"{args.clips} separate alat encode calls")):
        extra = f", {len(diff[k])} outputs differ in bytes from the separate calls'" if k in diff else ""
        print(f"{label:36s} {seconds[k]:7.1f} s  ({seconds[k] / args.clips:.2f} s a clip{extra})")


if __name__ == "__main__":
    main()
