"""The reader's own costs at corpus scale: one real 10 s ``.alat`` file (a dev clip encoded by the default
model) copied into shards of 1,000 members (with their index, as ``alat encode --shard-size`` writes them),
at each size of ``--sizes``; for each, in a fresh process: LatentCrops' index time and memory beyond torch's
import (RSS), the proportional set size (PSS) of the process and of its 2 DataLoader workers after reading,
time to the first batch, shuffled crops/s (LatentCrops, DataLoader, 2 workers) and streamed crops/s
(LatentStream, 2 workers). ``--encode N``: ``alat encode --shard-size`` of N short clips, files/s and peak memory.

    python bench/scale.py --sizes 10000 100000 1000000 --work /tmp/scale
    python bench/scale.py --sizes --encode 100000 --work /tmp/scale
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "corpus" / "dev" / "speech_asterisk_en.wav"
PER_SHARD = 1000


def _rss() -> int:
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) * 1024


def _pss(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return int(next(line for line in f if line.startswith("Pss:")).split()[1]) * 1024


def one_clip(work: Path) -> bytes:
    """The dev clip's first 10 s encoded by the default model (kept between runs)."""
    out = work / "clip10s.alat"
    if not out.exists():
        import soundfile as sf

        from latentcodec import encode

        audio, rate = sf.read(str(CLIP), dtype="float32")
        encode(audio[:10 * rate], rate, out)
    return out.read_bytes()


def build(folder: Path, clips: int, data: bytes) -> None:
    """``clips`` copies of ``data`` in shards of PER_SHARD members and their index (kept between runs)."""
    from latentcodec import open as open_alat
    from latentcodec.format.shards import INDEX_NAME, index_bytes

    if (folder / "done").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with open_alat(io.BytesIO(data)) as r:
        h = r.header
    facts = (h.channels, h.num_samples, h.mel.hop, h.chunk_frames)
    for s in range(-(-clips // PER_SHARD)):
        names = [f"c{s:04d}/{i:04d}.alat" for i in range(min(PER_SHARD, clips - s * PER_SHARD))]
        with tarfile.open(folder / f"{s:06d}.tar", "w", format=tarfile.PAX_FORMAT) as t:
            for name in names + [INDEX_NAME]:
                body = data if name != INDEX_NAME else index_bytes([(n, len(data), facts) for n in names])
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(body), 0o644
                t.addfile(info, io.BytesIO(body))
    (folder / "done").touch()


def measure(folder: str, crop: int, stride: int, batch: int, batches: int) -> dict[str, float]:
    """Run in a fresh process: every figure of one size."""
    import torch
    from torch.utils.data import DataLoader

    from latentcodec import LatentCrops, LatentStream

    torch.set_num_threads(1)
    base = _rss()
    t = time.perf_counter()
    ds = LatentCrops(folder, crop_frames=crop, stride=stride)
    index_s = time.perf_counter() - t
    out = {"clips": len(ds.facts), "crops": len(ds), "index_s": index_s, "index_mb": (_rss() - base) / 2 ** 20}
    it, out["first_batch_s"], out["shuffled_crops_s"] = _read(
        DataLoader(ds, batch_size=batch, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0)),
        batches)
    out["pss_main_mb"] = _pss(os.getpid()) / 2 ** 20  # with torch's RandomSampler's list: ~36 bytes a crop
    out["pss_workers_mb"] = sum(_pss(w.pid) for w in it._workers) / 2 ** 20
    del it
    stream = LatentStream(folder, crop_frames=crop, stride=stride, shuffle=1000)
    _, out["stream_first_batch_s"], out["streamed_crops_s"] = _read(DataLoader(stream, batch_size=batch,
                                                                               num_workers=2), batches)
    return out


def _read(loader: Any, batches: int) -> tuple[Any, float, float]:
    """(the loader's iterator, seconds to its first batch (workers started), crops/s over ``batches`` more)."""
    t = time.perf_counter()
    it = iter(loader)
    next(it)
    first = time.perf_counter() - t
    t, n = time.perf_counter(), 0
    for _ in range(batches):
        n += len(next(it))
    return it, first, n / (time.perf_counter() - t)


def encode_side(work: Path, clips: int) -> dict[str, float]:
    """``alat encode --shard-size 1GB`` of ``clips`` 1 s clips (noise), timed with /usr/bin/time -v."""
    import soundfile as sf

    src = work / f"short-{clips}"
    if not (src / "done").exists():
        shutil.rmtree(src, ignore_errors=True)
        rng = np.random.default_rng(0)
        for i in range(clips):
            (src / f"{i // 1000:04d}").mkdir(parents=True, exist_ok=True)
            sf.write(str(src / f"{i // 1000:04d}" / f"{i:06d}.wav"), rng.normal(0, 0.1, 16000).astype(np.float32),
                     16000)
        (src / "done").touch()
    out = work / f"short-{clips}-shards"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-v", str(Path(sys.executable).parent / "alat"), "encode", str(src),
                        str(out), "--shard-size", "1GB", "-q", "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - t
    peak = int(next(line for line in r.stderr.splitlines() if "Maximum resident" in line).split()[-1]) * 1024
    return {"clips": clips, "exit": r.returncode, "seconds": seconds, "files_s": clips / seconds,
            "peak_rss_mb": peak / 2 ** 20, "shards": len(list(out.glob("*.tar")))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--work", type=Path, default=Path("/tmp/alat-scale"))
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--encode", type=int, default=0, help="clips for the encode side (0: none)")
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # the child process's job
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.crop, args.stride, args.batch, args.batches)))
        return 0
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; crop {args.crop}, stride "
          f"{args.stride}, batch {args.batch}")
    args.work.mkdir(parents=True, exist_ok=True)
    data = one_clip(args.work) if args.sizes else b""
    for n in args.sizes:
        free = shutil.disk_usage(args.work).free
        if free < n * (len(data) + 1024) * 1.2 and not (args.work / str(n) / "done").exists():
            print(f"{n} clips: skipped, {free / 1e9:.1f} GB free")
            continue
        t = time.perf_counter()
        build(args.work / str(n), n, data)
        built = time.perf_counter() - t
        r = subprocess.run([sys.executable, __file__, "--measure", str(args.work / str(n)), "--crop", str(args.crop),
                            "--stride", str(args.stride), "--batch", str(args.batch), "--batches", str(args.batches)],
                           capture_output=True, text=True)
        if r.returncode:
            print(r.stderr[-2000:])
            return 1
        print(json.dumps({**json.loads(r.stdout.splitlines()[-1]), "built_s": round(built, 1)}), flush=True)
    if args.encode:
        print(json.dumps(encode_side(args.work, args.encode)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
