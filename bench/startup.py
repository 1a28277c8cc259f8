"""What a user waits for: the wall time of ``alat`` commands, for builds (installs) compared in one run.

For each build, taken in turns: a 1 s clip encoded and decoded (and ``alat info``), the median of
``--repeats``; then a 60 s and a 600 s file (the dev clips joined, looped) encoded and decoded, the fastest of
``--repeats``, and the throughput beyond start-up, (600 - 60) s of audio / (t600 - t60), in x real time.

    python bench/startup.py --build new=/tmp/plain/bin/alat \\
        --build "old=env PYTHONPATH=/work/old $PWD/.venv/bin/python -m latentcodec.cli" \\
        --build torch=$PWD/.venv/bin/alat --options "torch=--runtime torch" [--json]

The commands run in a temporary folder, so their paths are absolute.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from latentcodec.audio.io import read_audio

DEV = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dev"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"
RATE = 16000


def inputs(tmp: Path, corpus: Path) -> dict[str, Path]:
    """The 1 s clip (the example's first second) and the 60 s and 600 s files, as 16 kHz WAV."""
    joined = np.concatenate([read_audio(str(p), mono=True).samples[0]
                             for p in sorted(corpus.glob("*.wav"))])
    out = {"1s": tmp / "1s.wav", "60s": tmp / "60s.wav", "600s": tmp / "600s.wav"}
    sf.write(out["1s"], read_audio(str(EXAMPLE), mono=True).samples[0][:RATE], RATE)
    for key, seconds in (("60s", 60), ("600s", 600)):
        sf.write(out[key], np.resize(joined, seconds * RATE), RATE)
    return out


def wall(command: list[str], cwd: Path) -> float:
    """Seconds one command takes, run in ``cwd`` (not this tree: ``python -m`` would import it first)."""
    t = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=cwd)
    return time.perf_counter() - t


def round_of(alat: list[str], options: list[str], files: dict[str, Path], tmp: Path, tag: str) -> dict[str, float]:
    """One pass of every command of one build (``options`` given to encode and decode): seconds of wall time."""
    t: dict[str, float] = {}
    for key, wav in files.items():
        coded, back = tmp / f"{tag}-{key}.alat", tmp / f"{tag}-{key}.wav"
        t[f"encode {key}"] = wall([*alat, "encode", "-y", "--quiet", *options, str(wav), str(coded)], tmp)
        t[f"decode {key}"] = wall([*alat, "decode", "-y", "--quiet", *options, str(coded), str(back)], tmp)
        if key == "1s":
            t["info 1s"] = wall([*alat, "info", str(coded)], tmp)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="append", required=True, help="NAME=COMMAND that runs alat")
    ap.add_argument("--options", action="append", default=[], help="NAME=OPTIONS for that build's encode and decode")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--corpus", type=Path, default=DEV)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    builds = dict(b.split("=", 1) for b in args.build)
    options = {name: shlex.split(o) for name, o in (b.split("=", 1) for b in args.options)}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = inputs(tmp, args.corpus)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in builds}
        for _ in range(args.repeats):
            for name, command in builds.items():
                runs[name].append(round_of(shlex.split(command), options.get(name, []), files, tmp, name))
    result = {}
    for name, rounds in runs.items():
        r = {k: (statistics.median if "1s" in k else min)(x[k] for x in rounds) for k in rounds[0]}
        for op in ("encode", "decode"):
            r[f"{op} x real time beyond start-up"] = 540 / (r[f"{op} 600s"] - r[f"{op} 60s"])
        result[name] = r
    if args.json:
        print(json.dumps(result, indent=1))
        return
    for name, r in result.items():
        print(name + ": " + ", ".join(f"{k} {v:.2f}" + ("x" if "real time" in k else " s") for k, v in r.items()))


if __name__ == "__main__":
    main()
