"""Copy a trained model folder into the package as float16 safetensors (half the size; the loader
computes in float32), with its training record.

    python recipes/ship_model.py /data/model-ft latentcodec/weights/latentcodec-small

A model fine-tuned from another (``alat train --init``, a folder or a shipped name) carries the record of
the run it started from, as ``init_training``, so the shipped ``training.json`` tells the whole story. MODEL.md is kept.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latentcodec.models.registry import shipped_models  # noqa: E402


def training_record(folder: Path) -> dict:
    """The training.json of ``folder``, with the records of the models it was started from."""
    info = json.loads((folder / "training.json").read_text())
    init = info["config"].get("init")
    start = shipped_models().get(init, Path(init)) if init else None
    if start is not None and (start / "training.json").exists():
        info["init_training"] = training_record(start)
    return info


def main(src: Path, dst: Path) -> None:
    vae = AutoencoderKL.from_pretrained(str(src), torch_dtype=torch.float32, low_cpu_mem_usage=False,
                                        use_safetensors=True)
    dst.mkdir(parents=True, exist_ok=True)
    vae.to(torch.float16).save_pretrained(str(dst), safe_serialization=True)
    (dst / "training.json").write_text(json.dumps(training_record(src), indent=1))
    size = sum(p.stat().st_size for p in dst.iterdir())
    print(f"{dst}: {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
