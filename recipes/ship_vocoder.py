"""Copy a trained vocoder (an ``alat train-vocoder`` output folder) into the package as float16
safetensors (half the size; the loader computes in float32), with its training record.

    python recipes/ship_vocoder.py /data/vocoder-run latentcodec/weights/latentcodec-vocos-v1
    python recipes/ship_vocoder.py /data/maggl-s2 latentcodec/weights/latentcodec-maggl-small-v2 --gl-iters 8

Only the generator ships (the discriminators and optimisers stay in the run's checkpoint.safetensors, from
which ``--resume`` goes on). ``--gl-iters`` sets a magnitude network's Griffin-Lim iterations when a
decode asks for none, ``--nnls-iters`` its steps towards the input mel (a run validated with other
values than it ships with says so in its MODEL.md). MODEL.md in the destination is kept.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from latentcodec.vocoders.nets import load_net, save_net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--gl-iters", type=int)
    ap.add_argument("--nnls-iters", type=int)
    args = ap.parse_args()
    gen = load_net(args.src)
    changes = {k: v for k, v in (("gl_iters", args.gl_iters), ("nnls_iters", args.nnls_iters)) if v is not None}
    gen.cfg = dataclasses.replace(gen.cfg, **changes)
    save_net(gen, args.dst, torch.float16)
    record = json.loads((args.src / "training.json").read_text())
    (args.dst / "training.json").write_text(json.dumps(record, indent=1))
    size = sum(p.stat().st_size for p in args.dst.iterdir())
    params = sum(p.numel() for p in gen.parameters())
    print(f"{args.dst}: {params / 1e6:.2f} M parameters, step {record['steps_done']}, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
