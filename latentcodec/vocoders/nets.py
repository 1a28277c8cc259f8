"""Saving and loading our vocoder networks (``vocos.VocosGenerator``, ``magnitude_net.MagnitudeNet``): a
folder of config.json, with the architecture's name, and model.safetensors."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from latentcodec.errors import ModelError
from latentcodec.models.checked import check_int, check_weights, meta_shapes, read_config, weight_shapes
from latentcodec.vocoders.magnitude_net import MagnitudeNet
from latentcodec.vocoders.vocos import MelConvNeXt, VocosConfig, VocosGenerator

WEIGHTS_FILE = "model.safetensors"
# Bounds on the size fields of a network's config.json, checked before it is built (the shipped ones: dim 192,
# intermediate 576, 4 layers, kernels 7 and 5, n_fft 1024, hop 160).
NET_BOUNDS = {"n_mels": (1, 512), "dim": (1, 4096), "intermediate": (1, 16384), "layers": (1, 64), "kernel": (1, 63),
              "embed_kernel": (1, 63), "n_fft": (2, 16384), "hop": (1, 16384), "nnls_iters": (0, 1000),
              "gl_iters": (1, 10000)}


def _net_class(architecture: str | None) -> type[MelConvNeXt] | None:
    return {c.architecture: c for c in (VocosGenerator, MagnitudeNet)}.get(architecture or "")


def is_net_folder(folder: Path) -> bool:
    """True for a folder written by ``save_net`` (either of our vocoder networks)."""
    cfg = folder / "config.json"
    return cfg.is_file() and _net_class(str(read_config(cfg).get("architecture"))) is not None


def net_config(raw: dict, where: Path) -> VocosConfig:
    """A network's shape from its config.json entries (the architecture's name taken out), every size field
    within NET_BOUNDS."""
    for key, (lo, hi) in NET_BOUNDS.items():
        if key in raw:
            check_int(raw[key], key, lo, hi, where)
    floor = raw.get("log_floor", VocosConfig.log_floor)
    if not isinstance(floor, float) or not 0 < floor < 1:
        raise ModelError(f"{where}: log_floor is {str(floor)[:20]}, not a number between 0 and 1", "vocoder")
    try:
        return VocosConfig(**raw)
    except TypeError as e:
        raise ModelError(f"{where}: not a vocoder network's config ({e})", "vocoder") from e


def save_net(net: MelConvNeXt, folder: Path, dtype: torch.dtype = torch.float32) -> None:
    """config.json (with the architecture's name) + model.safetensors (in ``dtype``; float16 halves the size)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    (folder / "config.json").write_text(json.dumps({"architecture": net.architecture, **asdict(net.cfg)}, indent=1))


def load_net(folder: Path, device: str = "cpu") -> MelConvNeXt:
    """The network saved in ``folder``, in float32 whatever dtype it was stored in; its config is bounded and
    checked against the weights' header before the network is built."""
    from safetensors.torch import load_file

    raw = read_config(folder / "config.json")
    cls = _net_class(str(raw.pop("architecture", None)))
    if cls is None:
        raise ModelError(f"{folder}: not a vocoder network written by alat train-vocoder", "vocoder")
    cfg, weights = net_config(raw, folder / "config.json"), folder / WEIGHTS_FILE
    check_weights(meta_shapes(lambda: cls(cfg), folder / "config.json"), weight_shapes(weights), weights)
    net = cls(cfg)
    net.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})
    return net.to(device).eval().requires_grad_(False)
