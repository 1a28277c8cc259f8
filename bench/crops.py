"""Read-back of stored latents at a training loop's pace: ``LatentCrops`` over .alat files against the same
latents as float16 ``.npy`` files memory-mapped (how stable-audio-tools' ``pre_encode.py`` users keep them),
and over the same .alat files packed in one tar shard (``alat encode --shard-size``'s layout), crops/s in one process (in order, and shuffled after a first epoch) and through a DataLoader with workers,
and the bytes each takes on disk.

    python bench/crops.py --copies 4 --workers 2      # the dev clips, each file encoded --copies times
"""
from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from latentcodec import LatentCrops, encode, open as open_alat
from latentcodec.format.shards import write_shard

DEV = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dev"


class MemmapCrops(Dataset):
    """The same crops from float16 (latent channels, frames, mel) .npy files, memory-mapped once per process."""

    def __init__(self, items: list[tuple[Path, int, int]], crop: int):
        self.items, self.crop, self.maps = items, crop, {}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        path, _, first = self.items[i]
        if path not in self.maps:
            self.maps[path] = np.load(path, mmap_mode="r")
        return torch.from_numpy(self.maps[path][:, first:first + self.crop].astype(np.float32))


def rate(ds: Dataset, order: np.ndarray) -> float:
    t = time.perf_counter()
    for i in order:
        ds[int(i)]
    return len(order) / (time.perf_counter() - t)


def loader_rate(ds: Dataset, workers: int, batch: int) -> float:
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=True,
                        generator=torch.Generator().manual_seed(0))
    for _ in loader:  # the first epoch fills the workers' state (memmaps, readers, decoded chunks)
        pass
    t, n = time.perf_counter(), 0
    for b in loader:
        n += len(b)
    return n / (time.perf_counter() - t)


def build(root: Path, copies: int) -> tuple[Path, Path, Path]:
    """The dev clips encoded at the default setting ``copies`` times each, the same files in one shard, and
    their latents as .npy."""
    alat, shards, npy = root / "alat", root / "shards", root / "npy"
    for d in (alat, shards, npy):
        d.mkdir()
    for clip in sorted(DEV.glob("*.wav")):
        encode(clip, alat / f"{clip.stem}.alat")
        for i in range(1, copies):
            shutil.copy(alat / f"{clip.stem}.alat", alat / f"{clip.stem}-{i}.alat")
    for f in sorted(alat.glob("*.alat")):
        with open_alat(f) as r:
            frames = r.header.num_samples // r.header.mel.hop // 4
            for c in range(r.header.channels):
                np.save(npy / f"{f.stem}.{c}.npy", r.latents(c)[:, :frames].astype(np.float16))
    with open(shards / "000000.tar", "wb") as out:
        write_shard(out, [(f.stem, f) for f in sorted(alat.glob("*.alat"))])
    return alat, shards, npy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=4, help="copies of each dev clip's file")
    ap.add_argument("--crop", type=int, default=64, help="latent frames per crop (64: 2.56 s)")
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        alat, shards, npy = build(Path(tmp), args.copies)
        ours = LatentCrops(alat, args.crop, args.stride)
        sharded = LatentCrops(shards, args.crop, args.stride)
        items = [ours.item(i) for i in range(len(ours))]
        mm = MemmapCrops([(npy / f"{p.stem}.{c}.npy", c, f) for p, c, f in items], args.crop)
        order = np.arange(len(ours))
        shuffled = np.random.default_rng(0).permutation(len(ours))
        rows = {}
        for name, ds in (("alat LatentCrops", ours), ("alat LatentCrops, one tar shard", sharded),
                         ("float16 .npy memmap", mm)):
            seq = rate(ds, order)
            rate(ds, shuffled)  # a first shuffled epoch: caches filled
            rows[name] = (seq, rate(ds, shuffled), loader_rate(ds, args.workers, args.batch))
        size = {name: sum(p.stat().st_size for p in d.iterdir()) for name, d in zip(rows, (alat, shards, npy))}
    print(f"# {len(ours)} crops of {args.crop} latent frames (stride {args.stride}) from "
          f"{len(list(DEV.glob('*.wav'))) * args.copies} files; {platform.processor() or platform.machine()}, "
          f"torch threads 1, DataLoader workers {args.workers}, batch {args.batch}")
    print("| storage | bytes on disk | crops/s in order | crops/s shuffled (2nd epoch) | crops/s DataLoader |")
    print("|---|---|---|---|---|")
    for name, (seq, shuf, dl) in rows.items():
        print(f"| {name} | {size[name]:,} | {seq:,.0f} | {shuf:,.0f} | {dl:,.0f} |")
    m = rows["float16 .npy memmap"]
    for name in ("alat LatentCrops", "alat LatentCrops, one tar shard"):
        a = rows[name]
        print(f"{name} / memmap: {a[0] / m[0]:.2f}x in order, {a[1] / m[1]:.2f}x shuffled, {a[2] / m[2]:.2f}x "
              f"DataLoader; bytes {size['float16 .npy memmap'] / size[name]:.1f}x fewer")


if __name__ == "__main__":
    main()
