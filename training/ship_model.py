"""Copy a trained model folder into the package as float16 safetensors (half the size; the loader
computes in float32), with its training record.

    python training/ship_model.py /data/model-small latentcodec/weights/latentcodec-small
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL


def main(src: Path, dst: Path) -> None:
    vae = AutoencoderKL.from_pretrained(str(src), torch_dtype=torch.float32, low_cpu_mem_usage=False)
    if dst.exists():
        shutil.rmtree(dst)
    vae.to(torch.float16).save_pretrained(str(dst), safe_serialization=True)
    shutil.copy(src / "training.json", dst / "training.json")
    size = sum(p.stat().st_size for p in dst.iterdir())
    print(f"{dst}: {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
