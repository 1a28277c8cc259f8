"""A vocoder's second-stage training set: files of a training folder joined into clips of about 30 s.

`alat train-vocoder --coded-by MODEL` codes every file through the VAE first, one 5 s chunk at least per file;
the speech and effects of the training set are files of one to three seconds, so joined they code in a
fraction of the time, and the coding of a few hours is what bounds such a run. A kind's files are drawn in a
seeded order until its hours are reached (every file where no hours are given) and joined with 0.1 s of
silence, under OUT/KIND/ as `alat train-vocoder` reads them.

    python recipes/join_clips.py /data/alat-train-all /data/voc-data --hours music=2.5
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
GAP = np.zeros(SR // 10, np.float32)


def join_kind(files: list[Path], out: Path, hours: float | None, seconds: float, seed: int) -> float:
    """Join ``files`` (seeded order) into ``seconds``-long WAVs under ``out``; returns the hours written."""
    order = np.random.default_rng(seed).permutation(len(files))
    budget = SR * 3600 * hours if hours is not None else float("inf")
    out.mkdir(parents=True, exist_ok=True)
    parts: list[np.ndarray] = []
    filled = total = written = 0
    for i in order:
        if total >= budget:
            break
        x, rate = sf.read(str(files[i]), dtype="float32", always_2d=True)
        if rate != SR:
            raise SystemExit(f"{files[i]}: {rate} Hz, not {SR} (a build_dataset.py folder is 16 kHz)")
        parts += [x.mean(axis=1), GAP]
        filled += len(x) + len(GAP)
        total += len(x)
        if filled >= seconds * SR:
            sf.write(str(out / f"{out.name}_{written:05d}.wav"), np.concatenate(parts), SR)
            parts, filled, written = [], 0, written + 1
    if parts:
        sf.write(str(out / f"{out.name}_{written:05d}.wav"), np.concatenate(parts), SR)
    return total / SR / 3600


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a training folder with KIND/ sub-folders (build_dataset.py)")
    ap.add_argument("out", type=Path)
    ap.add_argument("--hours", default="", help="KIND=H,...: at most H hours of that kind (default: all)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    caps = {k: float(v) for k, v in (kv.split("=") for kv in a.hours.split(",") if kv)}
    for kind in sorted(p.name for p in a.data.iterdir() if p.is_dir()):
        files = sorted(p for p in (a.data / kind).rglob("*") if p.suffix.lower() in {".flac", ".wav"})
        got = join_kind(files, a.out / kind, caps.get(kind), a.seconds, a.seed)
        print(f"{kind}: {got:.2f} h from {len(files)} files")


if __name__ == "__main__":
    main()
