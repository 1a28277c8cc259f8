"""Copy a trained vocoder (an ``alat train-vocoder`` output folder) into the package as float16
safetensors (half the size; the loader computes in float32), with its training record.

    python training/ship_vocoder.py /data/vocoder-run latentcodec/weights/vocoders/latentcodec-vocos-v1

Only the generator ships (the discriminators and optimisers stay in the run's checkpoint.pt, from
which ``--resume`` goes on). MODEL.md in the destination is kept.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from latentcodec.vocos import load_net, save_net


def main(src: Path, dst: Path) -> None:
    gen = load_net(src)
    save_net(gen, dst, torch.float16)
    record = json.loads((src / "training.json").read_text())
    (dst / "training.json").write_text(json.dumps(record, indent=1))
    size = sum(p.stat().st_size for p in dst.iterdir())
    params = sum(p.numel() for p in gen.parameters())
    print(f"{dst}: {params / 1e6:.2f} M parameters, step {record['steps_done']}, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
