"""Our own test split as 10 s clips named like the dev clips (``KIND/KIND_PACKAGE_N.wav``: `alat eval OUT` gives
the means per kind), from the packages that
``build_dataset.py --held-out`` kept out of training, so that every figure of the dev clips has its twin on audio
that no model we train sees (``latentcodec-small-v2`` predates the split: it was trained on these packages).

    python recipes/make_heldout_clips.py /data/alat-heldout /data/heldout-clips

Music: 10 s from the middle of each of the longest files, across the packages in turn. Speech (ktuberling's words,
about a second each) and effects (powermanga's short sounds; its three game tunes filed under effects are left out):
consecutive files of one folder (one language, one sound set) joined with 0.25 s of silence until 10 s are full
(one clip a language for speech).
The choice is by sorted name, so the same folder always gives the same clips.
"""
from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
CLIP = 10 * SR
GAP = np.zeros(SR // 4, np.float32)
COUNTS = {"music": 8, "speech": 8, "effects": 4}
PER_FOLDER = {"speech": 1, "effects": 1 << 30}  # speech: one clip a language; effects: as many as fit
MAX_EFFECT_SECONDS = 30.0  # longer files among the effects are music


def rows(root: Path) -> list[dict[str, str]]:
    with open(root / "MANIFEST.tsv", newline="") as f:
        return [r for r in csv.DictReader(f, delimiter="\t") if r["band"] == "wide"]


def music_clips(root: Path, items: list[dict[str, str]], n: int) -> list[tuple[str, np.ndarray]]:
    by_pkg: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in sorted(items, key=lambda r: (-float(r["seconds"]), r["file"])):
        if float(r["seconds"]) >= 12:
            by_pkg[r["package"]].append(r)
    out = []
    while len(out) < n and any(by_pkg.values()):
        for pkg in sorted(by_pkg):
            if by_pkg[pkg] and len(out) < n:
                x = sf.read(str(root / by_pkg[pkg].pop(0)["file"]), dtype="float32")[0]
                mid = len(x) // 2
                out.append((pkg, x[mid - CLIP // 2:mid + CLIP // 2]))
    return out


def joined_clips(root: Path, items: list[dict[str, str]], n: int, per_folder: int) -> list[tuple[str, np.ndarray]]:
    by_dir: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in sorted(items, key=lambda r: r["source"]):
        if float(r["seconds"]) <= MAX_EFFECT_SECONDS:
            by_dir[(r["package"], str(Path(r["source"]).parent))].append(r)
    out = []
    for (pkg, _), group in sorted(by_dir.items()):
        parts: list[np.ndarray] = []
        made = 0
        for r in group:
            parts += [sf.read(str(root / r["file"]), dtype="float32")[0], GAP]
            if sum(map(len, parts)) >= CLIP:
                out.append((pkg, np.concatenate(parts)[:CLIP]))
                parts, made = [], made + 1
            if made == per_folder or len(out) == n:
                break
        if len(out) == n:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("heldout", type=Path, help="the folder build_dataset.py --held-out wrote")
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    items = rows(args.heldout)
    args.out.mkdir(parents=True, exist_ok=True)
    for kind, n in COUNTS.items():
        of_kind = [r for r in items if r["kind"] == kind]
        clips = (music_clips(args.heldout, of_kind, n) if kind == "music" else
                 joined_clips(args.heldout, of_kind, n, PER_FOLDER[kind]))
        (args.out / kind).mkdir(exist_ok=True)
        for i, (pkg, x) in enumerate(clips):
            sf.write(str(args.out / kind / f"{kind}_{pkg.split('-')[0]}_{i}.wav"), x, SR, subtype="PCM_16")
        print(f"{kind}: {len(clips)} clips of 10 s")


if __name__ == "__main__":
    main()
