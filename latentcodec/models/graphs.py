"""The shipped models as ONNX graphs on onnxruntime: what ``alat`` runs by default, without torch.

Why: importing torch and diffusers took 5 of the 6.6 s that a 1 s clip cost to encode, and onnxruntime
imports in 0.2-0.4 s. The graphs (``encoder.onnx``, ``decoder.onnx`` beside a model's safetensors weights,
``magnitude.onnx`` beside a magnitude network's) are made from those weights by ``alat export``
(``export.py``); each records the fingerprint of the weights it was made from, and a graph whose record
differs from the weights beside it is refused, so a file's fingerprint names the same model whichever
runtime decodes it. Weights that are exact in float16 are stored so and cast at load (graph sizes as the
safetensors'); the arithmetic is float32.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from latentcodec.errors import ModelError

ENCODER, DECODER, MAGNITUDE = "encoder.onnx", "decoder.onnx", "magnitude.onnx"
FINGERPRINT_KEY = "latentcodec.fingerprint"  # the graph's metadata: the hex fingerprint of its weights


def onnxruntime_installed() -> bool:
    """Whether onnxruntime can be imported (without importing it: that costs 0.2 s)."""
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None


def weights_fingerprint(path: Path) -> bytes:
    """SHA-256 of a safetensors file's tensors as ``loader.fingerprint`` hashes a model loaded in float32
    (names sorted, then name|dtype|shape and the float32 bytes of each), computed without torch."""
    from safetensors.numpy import load_file

    h = hashlib.sha256()
    for key, t in sorted(load_file(str(path)).items()):
        t = np.ascontiguousarray(t, np.float32)
        h.update(f"{key}|torch.float32|{tuple(t.shape)}".encode())
        h.update(t.tobytes())
    return h.digest()


def session(path: Path, fingerprint: bytes, threads: int | None = None) -> Any:
    """An onnxruntime session of the graph at ``path``, refused when it was made from other weights than
    those of ``fingerprint`` (a stale export). ``threads``: onnxruntime's intra-op threads (None: the
    cores this process may run on)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    from latentcodec.models.cores import threads_asked

    opts.intra_op_num_threads = threads or threads_asked() or len(os.sched_getaffinity(0))
    opts.inter_op_num_threads = 1
    try:
        s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for a missing or damaged graph
        raise ModelError(f"cannot load the graph {path}: {str(e).splitlines()[0][:200]} (run alat export)") from e
    made_from = s.get_modelmeta().custom_metadata_map.get(FINGERPRINT_KEY)
    if made_from != fingerprint.hex():
        raise ModelError(f"the graph {path} was made from other weights than those beside it: run alat export")
    return s


def has_graphs(folder: Path) -> bool:
    """Whether a shipped model's folder holds both of its VAE's graphs."""
    return (folder / ENCODER).is_file() and (folder / DECODER).is_file()


class OnnxVae:
    """A shipped VAE's encoder and decoder graphs, on numpy arrays: (B, frames, n_mels) log-mel ->
    (B, C, frames/4, n_mels/4) posterior means, and back. ``config``: the diffusers config.json's entries."""

    def __init__(self, folder: Path, fingerprint: bytes, threads: int | None = None):
        self.config = SimpleNamespace(**json.loads((folder / "config.json").read_text()))
        self._encoder = session(folder / ENCODER, fingerprint, threads)
        self._decoder = session(folder / DECODER, fingerprint, threads)

    def encode(self, mels: np.ndarray) -> np.ndarray:
        return self._encoder.run(None, {"mel": np.ascontiguousarray(mels, np.float32)})[0]

    def decode(self, latents: np.ndarray) -> np.ndarray:
        return self._decoder.run(None, {"latent": np.ascontiguousarray(latents, np.float32)})[0]
