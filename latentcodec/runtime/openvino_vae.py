"""The shipped models' ONNX graphs on OpenVINO: what ``alat encode`` runs by default on a minute of audio or
more, or a folder, on a CPU that computes bfloat16 natively (AVX512-BF16, AMX), where OpenVINO is installed
(``loader.choose_runtime``); and ``alat decode`` for the files of a model whose pairing decodes in bfloat16
(``vocoders.registry.Pairing``).

Why a second engine for the same graphs: onnxruntime's CPU provider has no bfloat16 convolutions on x86, and
OpenVINO runs them in bfloat16. On the 2-core AMD EPYC with AVX512-BF16 (4 windows of 5 s, 2 threads): the
encoder 77 ms against onnxruntime's 133 ms in float32 (torch's bfloat16 encoder: 83 ms); the decoder 230 ms
against 340 ms, but its mel moves by up to 0.27 dB a value and Griffin-Lim's samples by 90-280 LSB on
average, so it runs in bfloat16 only where a pairing says so; in float32 OpenVINO is 5-15 % slower than
onnxruntime, which is why auto decodes other files on onnxruntime. It imports in 0.15 s and compiles a
graph in 0.07 s, as quick to start as onnxruntime.

The graphs are those of ``onnx_vae`` (one per weights layout, their initializers external data in the
model's safetensors file). OpenVINO reads external data only beside the graph, so each graph is read from a
private temporary folder that holds it and a link to (or copy of) the weights file, removed once read.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from latentcodec.constants import PRECISIONS
from latentcodec.errors import LatentCodecError, ModelError
from latentcodec.runtime.cores import cpu_threads
from latentcodec.runtime.onnx_vae import DECODER_OPENVINO, ENCODER, GRAPHS, LAYOUT_DIGITS, graph_folder, weights_layout

_VAE_WEIGHTS = "diffusion_pytorch_model.safetensors"  # loader.VAE_WEIGHTS (loader imports this module)
_HINTS = {"float32": "f32", "bfloat16": "bf16"}  # OpenVINO's INFERENCE_PRECISION_HINT for each precision


def openvino_installed() -> bool:
    """Whether OpenVINO can be imported (without importing it: 0.15 s)."""
    from importlib.util import find_spec

    return find_spec("openvino") is not None


@lru_cache(maxsize=1)
def _core() -> Any:
    import openvino as ov

    return ov.Core()


@lru_cache(maxsize=1)
def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively, as OpenVINO's CPU plugin reports it."""
    return "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def read_graph(graph: Path, weights: Path) -> Any:
    """The graph at ``graph`` as an OpenVINO model, reading its external data from the safetensors file
    ``weights``; refused when the graph's folder names another weights layout (``onnx_vae.session``, which
    also checks the layout the graph records: OpenVINO does not expose an ONNX graph's metadata)."""
    if graph.parent.name != weights_layout(weights)[:LAYOUT_DIGITS]:
        raise ModelError(f"the graph {graph} was made for weights of another layout than {weights}: run alat export")
    with tempfile.TemporaryDirectory(prefix="latentcodec-") as tmp:
        beside = Path(tmp) / weights.name
        try:
            os.link(weights, beside)
        except OSError:  # another file system, or no hard links there
            shutil.copyfile(weights, beside)
        (Path(tmp) / graph.name).write_bytes(graph.read_bytes())
        try:  # read into memory (no mapping of the folder's files): the folder goes when this returns
            return _core().read_model(str(Path(tmp) / graph.name), config={"ENABLE_MMAP": False})
        except Exception as e:  # OpenVINO raises RuntimeError for a damaged graph or weights file
            raise ModelError(f"cannot load the graph {graph}: {str(e).splitlines()[-1][:200]} (run alat export)") from e


class OpenVinoGraph:
    """One graph, compiled on first use for each precision asked (float32 or bfloat16), on the threads
    ``cores.cpu_threads`` gives (what a folder's worker was given)."""

    def __init__(self, path: Path, weights: Path):
        self.path, self.weights = path, weights
        self._model: Any = None
        self._requests: dict[str, Any] = {}

    def __call__(self, x: np.ndarray, precision: str) -> np.ndarray:
        if precision not in self._requests:
            self._model = self._model or read_graph(self.path, self.weights)
            config = {
                "INFERENCE_PRECISION_HINT": _HINTS[precision],
                "INFERENCE_NUM_THREADS": cpu_threads(),
                "ENABLE_CPU_PINNING": False,  # the decode's vocoder thread shares the cores (docs/performance.md)
            }
            self._requests[precision] = _core().compile_model(self._model, "CPU", config).create_infer_request()
        out = self._requests[precision].infer({0: np.ascontiguousarray(x, np.float32)})
        return np.array(out[0], np.float32)


class OpenVinoVae:
    """``base.VaeRunner`` over the encoder and decoder graphs of a VAE's weights layout (``onnx_vae``), on
    OpenVINO: either in bfloat16 where the CPU computes it natively (``auto``), else float32. ``fingerprint``:
    the weights' (``onnx_vae.weights_fingerprint``), what files name the model by."""

    runtime, device = "openvino", "cpu"

    def __init__(self, folder: Path, fingerprint: bytes, graphs: Path = GRAPHS):
        self.config = SimpleNamespace(**json.loads((folder / "config.json").read_text()))
        self.fingerprint, weights = fingerprint, folder / _VAE_WEIGHTS
        where = graph_folder(weights, graphs)
        self.encoder = OpenVinoGraph(where / ENCODER, weights)
        self.decoder = OpenVinoGraph(where / DECODER_OPENVINO, weights)

    def encode(self, mels: np.ndarray, precision: str = "auto") -> np.ndarray:
        """(B, frames, n_mels) log-mel -> (B, C, frames/4, n_mels/4) posterior means, in ``precision``."""
        return self.encoder(mels, self.precision(precision))

    def decode(self, latents: np.ndarray, precision: str = "float32") -> np.ndarray:
        """(B, C, t, m) latents -> (B, 4t, 4m) log-mel, in ``precision`` (float32: files decode as they did)."""
        return self.decoder(latents, self.precision(precision))

    def precision(self, asked: str) -> str:
        """bfloat16 for ``auto`` where the CPU computes it natively, else float32; as asked otherwise."""
        if asked not in PRECISIONS:
            raise LatentCodecError(f"unknown precision '{asked}': choose one of {', '.join(PRECISIONS)}", "precision")
        if asked == "auto":
            return "bfloat16" if native_bfloat16() else "float32"
        return asked
