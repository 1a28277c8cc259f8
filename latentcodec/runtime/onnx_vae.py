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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from latentcodec.errors import ModelError
from latentcodec.runtime.cores import cpu_threads

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
    those of ``fingerprint`` (a stale export). ``threads``: onnxruntime's intra-op threads (None: those
    asked for with cores.set_threads, else the cores this process may run on)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or cpu_threads()
    opts.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: the vocoder's numpy work runs between the graph calls.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
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


class BatchGraph:
    """A graph run over a batch of windows as ``cores.run_parts`` runs torch: one part of the batch per
    thread, each on a single-threaded session, rather than one call on onnxruntime's threads (2 cores,
    loaded, 4 windows: decoder 1.25 -> 1.00 s, encoder 0.52 -> 0.45 s); a single window runs on all
    threads. Each session is made when first needed (0.05-0.1 s each, start-up)."""

    def __init__(self, path: Path, fingerprint: bytes, name: str):
        self.path, self.fingerprint, self.name = path, fingerprint, name
        self.threads = cpu_threads()
        self._sessions: dict[int, Any] = {}
        self._pool: ThreadPoolExecutor | None = None

    def _session(self, threads: int) -> Any:
        if threads not in self._sessions:
            self._sessions[threads] = session(self.path, self.fingerprint, threads)
        return self._sessions[threads]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        parts = min(len(x), self.threads)
        if parts < 2:
            return self._session(self.threads).run(None, {self.name: x})[0]
        one = self._session(1)
        self._pool = self._pool or ThreadPoolExecutor(self.threads)
        outs = self._pool.map(lambda part: one.run(None, {self.name: part})[0], np.array_split(x, parts))
        return np.concatenate(list(outs))


class OnnxVae:
    """A shipped VAE's encoder and decoder graphs, on numpy arrays: (B, frames, n_mels) log-mel ->
    (B, C, frames/4, n_mels/4) posterior means, and back. ``config``: the diffusers config.json's entries."""

    def __init__(self, folder: Path, fingerprint: bytes):
        self.config = SimpleNamespace(**json.loads((folder / "config.json").read_text()))
        self.encode = BatchGraph(folder / ENCODER, fingerprint, "mel")
        self.decode = BatchGraph(folder / DECODER, fingerprint, "latent")
