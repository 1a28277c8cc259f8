"""The magnitude networks' ONNX graphs (``magnitude.onnx`` beside their weights), made as the VAEs' are
(``models/export.py``): what ``magnitude_net`` runs on onnxruntime."""
from __future__ import annotations

from pathlib import Path

import torch

from latentcodec.models.export import BATCH, save_graph
from latentcodec.models.graphs import MAGNITUDE, weights_fingerprint
from latentcodec.vocoders import shipped_vocoders
from latentcodec.vocoders.magnitude_net import MagnitudeNet
from latentcodec.vocoders.nets import WEIGHTS_FILE, is_net_folder, load_net


def export_magnitude_net(folder: Path) -> Path:
    """The graph of the network in ``folder``: (B, frames, n_mels) log-mel -> (B, bins, frames) magnitude,
    before the NNLS steps; it records the fingerprint of ``model.safetensors``."""
    net = load_net(folder)
    frames = torch.export.Dim("frames", min=16, max=100000)
    save_graph(net, torch.zeros(1, 400, net.cfg.n_mels), folder / MAGNITUDE, ("log_mel", "magnitude"),
               {0: BATCH, 1: frames}, weights_fingerprint(folder / WEIGHTS_FILE))
    return folder / MAGNITUDE


def export_magnitude_nets() -> list[Path]:
    """The graphs of every shipped magnitude network."""
    return [export_magnitude_net(f) for f in shipped_vocoders().values()
            if is_net_folder(f) and isinstance(load_net(f), MagnitudeNet)]
