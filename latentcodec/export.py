"""Making the ONNX graphs that ``runtime/onnx_vae.py`` runs, from the shipped safetensors weights: ``alat export``
(the VAEs' encoder and decoder, the magnitude networks' ``magnitude.onnx``), with torch, diffusers, onnx and onnxscript installed
(``pip install 'latentcodec[export]'``).

The graphs take a dynamic batch and a dynamic number of frames (any chunk length), opset 18. The
decoder's sub-pixel upsamplers are exported with their phases interleaved by stacking (``upsample.py``):
the in-place copies torch runs fastest become ScatterElements in a graph, which made onnxruntime's
decoder 2.4x slower than torch's; stacked it is as fast. A float32 weight that float16 holds exactly (the
shipped weights are stored in float16) is stored in float16 and cast back when the graph loads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentcodec.runtime.onnx_vae import DECODER, ENCODER, FINGERPRINT_KEY, MAGNITUDE, weights_fingerprint
from latentcodec.models.loader import load_model
from latentcodec.models.registry import shipped_models
from latentcodec.runtime.upsample import stack_phases
from latentcodec.vocoders.magnitude_net import MagnitudeNet
from latentcodec.vocoders.nets import WEIGHTS_FILE as NET_WEIGHTS
from latentcodec.vocoders.nets import is_net_folder, load_net
from latentcodec.vocoders.registry import shipped_vocoders

OPSET = 18  # the exporter's own: its converter to 17 fails on Pad and leaves the VAE graphs at 18
BATCH = torch.export.Dim("batch", min=1, max=4096)
_QUARTERS = torch.export.Dim("quarters", min=2, max=15000)  # latent frames: mel frames / 4


class _Encoder(torch.nn.Module):
    def __init__(self, vae: Any):
        super().__init__()
        self.vae = vae

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(mel[:, None]).latent_dist.mode()


class _Decoder(torch.nn.Module):
    def __init__(self, vae: Any):
        super().__init__()
        self.vae = vae

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent).sample[:, 0]


def float16_initializers(path: Path) -> None:
    """Rewrite the graph at ``path`` with every float32 initializer that float16 holds exactly stored in
    float16 and a Cast back to float32 (folded by onnxruntime when the graph loads)."""
    import onnx
    from onnx import helper, numpy_helper

    g = onnx.load(str(path))
    casts = []
    for init in g.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        x = numpy_helper.to_array(init)
        if x.size < 16 or not np.array_equal(x.astype(np.float16).astype(np.float32), x):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(x.astype(np.float16), name + ".f16"))
        casts.append(helper.make_node("Cast", [name + ".f16"], [name], to=onnx.TensorProto.FLOAT))
    nodes = casts + list(g.graph.node)
    del g.graph.node[:]
    g.graph.node.extend(nodes)
    onnx.checker.check_model(g)
    onnx.save(g, str(path))


def save_graph(module: torch.nn.Module, example: torch.Tensor, path: Path, names: tuple[str, str],
          dynamic: dict[int, Any], fingerprint: bytes) -> None:
    import onnx

    torch.onnx.export(module.eval(), (example,), str(path), opset_version=OPSET, dynamo=True, optimize=True,
                      input_names=[names[0]], output_names=[names[1]], dynamic_shapes=(dynamic,),
                      external_data=False, verbose=False)
    float16_initializers(path)
    g = onnx.load(str(path))
    onnx.helper.set_model_props(g, {FINGERPRINT_KEY: fingerprint.hex()})
    onnx.save(g, str(path))


def export_vae(name: str) -> list[Path]:
    """The shipped model ``name``'s encoder and decoder graphs, written beside its weights."""
    model = load_model(name, runtime="torch")
    vae = model.vae.to(memory_format=torch.contiguous_format)
    stack_phases(vae)
    folder = Path(model.location)
    mels = torch.zeros(2, 4 * 141, vae.config.in_channels * 64)
    save_graph(_Encoder(vae), mels, folder / ENCODER, ("mel", "latent"), {0: BATCH, 1: 4 * _QUARTERS},
               model.fingerprint)
    z = torch.zeros(2, model.latent_channels, 141, 16)
    save_graph(_Decoder(vae), z, folder / DECODER, ("latent", "mel"), {0: BATCH, 2: _QUARTERS}, model.fingerprint)
    return [folder / ENCODER, folder / DECODER]


def export_vaes() -> list[Path]:
    """Every shipped VAE's graphs."""
    return [p for name in shipped_models() for p in export_vae(name)]


def export_magnitude_net(folder: Path) -> Path:
    """The graph of the network in ``folder``: (B, frames, n_mels) log-mel -> (B, bins, frames) magnitude,
    before the NNLS steps; it records the fingerprint of ``model.safetensors``."""
    net = load_net(folder)
    frames = torch.export.Dim("frames", min=16, max=100000)
    save_graph(net, torch.zeros(1, 400, net.cfg.n_mels), folder / MAGNITUDE, ("log_mel", "magnitude"),
               {0: BATCH, 1: frames}, weights_fingerprint(folder / NET_WEIGHTS))
    return folder / MAGNITUDE


def export_magnitude_nets() -> list[Path]:
    """The graphs of every shipped magnitude network."""
    return [export_magnitude_net(f) for f in shipped_vocoders().values()
            if is_net_folder(f) and isinstance(load_net(f), MagnitudeNet)]
