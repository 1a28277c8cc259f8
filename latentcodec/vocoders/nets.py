"""Saving and loading our vocoder networks (``vocos.VocosGenerator``, ``magnitude_net.MagnitudeNet``): a
folder of config.json, with the architecture's name, and model.safetensors."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from latentcodec.errors import ModelError
from latentcodec.vocoders.magnitude_net import MagnitudeNet
from latentcodec.vocoders.vocos import MelConvNeXt, VocosConfig, VocosGenerator

WEIGHTS_FILE = "model.safetensors"


def _net_class(architecture: str | None) -> type[MelConvNeXt] | None:
    return {c.architecture: c for c in (VocosGenerator, MagnitudeNet)}.get(architecture or "")


def is_net_folder(folder: Path) -> bool:
    """True for a folder written by ``save_net`` (either of our vocoder networks)."""
    cfg = folder / "config.json"
    return cfg.is_file() and _net_class(json.loads(cfg.read_text()).get("architecture")) is not None


def save_net(net: MelConvNeXt, folder: Path, dtype: torch.dtype = torch.float32) -> None:
    """config.json (with the architecture's name) + model.safetensors (in ``dtype``; float16 halves the size)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    (folder / "config.json").write_text(json.dumps({"architecture": net.architecture, **asdict(net.cfg)}, indent=1))


def load_net(folder: Path, device: str = "cpu") -> MelConvNeXt:
    """The network saved in ``folder``, in float32 whatever dtype it was stored in."""
    from safetensors.torch import load_file

    raw = json.loads((folder / "config.json").read_text())
    cls = _net_class(raw.pop("architecture", None))
    if cls is None:
        raise ModelError(f"{folder}: not a vocoder network written by alat train-vocoder", "vocoder")
    net = cls(VocosConfig(**raw))
    net.load_state_dict({k: v.float() for k, v in load_file(str(folder / WEIGHTS_FILE)).items()})
    return net.to(device).eval().requires_grad_(False)
