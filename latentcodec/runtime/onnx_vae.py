"""The shipped models as ONNX graphs on onnxruntime: what ``alat`` runs by default, without torch.

Why: importing torch and diffusers took 5 of the 6.6 s that a 1 s clip cost to encode, and onnxruntime
imports in 0.2-0.4 s. The graphs (a VAE's ``encoder.onnx`` and ``decoder.onnx``, a magnitude network's
``magnitude.onnx``) are made from the safetensors weights by ``alat export`` (``export.py``). A graph holds
no copy of the weights and no value of one model: its initializers are external data at the tensors' bytes
in the weights file (float16, cast at load; the arithmetic is float32), so every model whose file has the
same layout (tensor names, dtypes, shapes and offsets, :func:`weights_layout`) runs the same graph, stored
once in ``weights/graphs/LAYOUT/`` and loaded with the model's own folder as where its external data lie.
Each graph records the layout it reads, and one recorded for another layout is refused before onnxruntime
sees it. A model is still named by its weights' fingerprint (:func:`weights_fingerprint`), whichever
runtime decodes it.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from latentcodec.constants import PRECISIONS
from latentcodec.errors import LatentCodecError, ModelError
from latentcodec.runtime.cores import cpu_threads

ENCODER, DECODER, MAGNITUDE = "encoder.onnx", "decoder.onnx", "magnitude.onnx"
DECODER_OPENVINO = "decoder-openvino.onnx"  # the decoder in the form OpenVINO runs fastest (upsample.py)
VAE_GRAPHS = (ENCODER, DECODER, DECODER_OPENVINO)  # a VAE's graphs, in the order alat export writes them
LAYOUT_KEY = "latentcodec.layout"  # the graph's metadata: the hex layout of the weights files it reads
GRAPHS = Path(str(files("latentcodec"))) / "weights" / "graphs"  # the shipped graphs, GRAPHS/LAYOUT/ (graph_folder)
LAYOUT_DIGITS = 16  # of the layout's hex in its folder's name
_VAE_WEIGHTS = "diffusion_pytorch_model.safetensors"  # loader.VAE_WEIGHTS (loader imports this module)


def onnxruntime_installed() -> bool:
    """Whether onnxruntime can be imported (without importing it: that costs 0.2 s)."""
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None


def weights_fingerprint(path: Path, parts: tuple[str, ...] = ()) -> bytes:
    """SHA-256 of a safetensors file's tensors as ``loader.fingerprint`` hashes a model loaded in float32
    (names sorted, then name|dtype|shape and the float32 bytes of each), computed without torch; ``parts``:
    only the tensors whose names start with one of these (all when empty)."""
    from safetensors import safe_open

    h = hashlib.sha256()
    with safe_open(str(path), "np") as f:
        keys = sorted(k for k in f.keys() if not parts or k.startswith(parts))
        tensors = [(k, f.get_tensor(k)) for k in keys]  # only what is hashed is read
    for key, t in tensors:
        t = np.ascontiguousarray(t, np.float32)
        h.update(f"{key}|torch.float32|{tuple(t.shape)}".encode())
        h.update(t.tobytes())
    return h.digest()


def weights_layout(path: Path) -> str:
    """SHA-256 (hex) of all that a graph reading the safetensors file ``path`` depends on: where the tensors'
    data start, and each tensor's name, dtype, shape and offsets (the JSON header, its ``__metadata__`` left
    out, keys sorted). Files of one layout run one graph, each with its own values."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
        header.pop("__metadata__", None)
    except OSError as e:
        raise ModelError(f"cannot read the weights {path}: {e.strerror or e}") from e
    except (ValueError, AttributeError) as e:  # not JSON, or JSON but not an object
        raise ModelError(f"{path}: not a safetensors file ({type(e).__name__})") from e
    text = json.dumps({"data_start": 8 + size, "tensors": header}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def graph_folder(weights: Path, root: Path = GRAPHS) -> Path:
    """The folder under ``root`` of the graphs that read the safetensors file ``weights``: its layout's."""
    return root / weights_layout(weights)[:LAYOUT_DIGITS]


def session(graph: Path, weights: Path, threads: int | None = None) -> Any:
    """An onnxruntime session of the graph at ``graph`` reading its weights (ONNX external data) from the
    safetensors file ``weights``: the graph is given as bytes, with ``weights``' folder as where its external
    data lie, so one graph serves every model of its layout. Refused when the graph was made for another
    layout (``weights_layout``; its offsets would read other tensors) or the file is cut short.
    ``threads``: onnxruntime's intra-op threads (None: those asked for with cores.set_threads, else the
    cores this process may run on)."""
    import onnxruntime as ort

    layout = weights_layout(weights)
    if graph.parent.name != layout[:LAYOUT_DIGITS]:  # its folder names its layout (graph_folder): before any read
        raise ModelError(f"the graph {graph} was made for weights of another layout than {weights}: run alat export")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or cpu_threads()
    opts.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: the vocoder's numpy work runs between the graph calls.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.model_external_initializers_file_folder_path", str(weights.parent))
    try:
        s = ort.InferenceSession(graph.read_bytes(), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types for a damaged graph or weights file
        raise ModelError(f"cannot load the graph {graph}: {str(e).splitlines()[0][:200]} (run alat export)") from e
    if s.get_modelmeta().custom_metadata_map.get(LAYOUT_KEY) != layout:  # the whole hash, recorded by export
        raise ModelError(f"the graph {graph} was made for weights of another layout than {weights}: run alat export")
    return s


def has_graphs(folder: Path, root: Path = GRAPHS) -> bool:
    """Whether the graphs of the VAE in ``folder`` (those of its weights' layout, under ``root``) are there."""
    weights = folder / _VAE_WEIGHTS
    if not weights.is_file():
        return False
    graphs = graph_folder(weights, root)
    return all((graphs / name).is_file() for name in VAE_GRAPHS)


class BatchGraph:
    """A graph run over a batch of windows as ``cores.run_parts`` runs torch: one part of the batch per
    thread, each on a single-threaded session, rather than one call on onnxruntime's threads (2 cores,
    loaded, 4 windows: decoder 1.25 -> 1.00 s, encoder 0.52 -> 0.45 s); a single window runs on all
    threads. Each session is made when first needed (0.05-0.1 s each, start-up). ``weights``: the
    safetensors file the graph at ``path`` reads (``session``); ``name``: the graph's input."""

    def __init__(self, path: Path, weights: Path, name: str):
        self.path, self.weights, self.name = path, weights, name
        self.threads = cpu_threads()
        self._sessions: dict[int, Any] = {}
        self._pool: ThreadPoolExecutor | None = None

    def _session(self, threads: int) -> Any:
        if threads not in self._sessions:
            self._sessions[threads] = session(self.path, self.weights, threads)
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
    """``base.VaeRunner`` over the encoder and decoder graphs of a VAE's weights layout, found under
    ``graphs`` (the shipped graphs by default), reading the weights in ``folder``: the CPU, float32 only.
    ``config``: the diffusers config.json's entries; ``fingerprint``: the weights' (``weights_fingerprint``),
    what files name the model by."""

    runtime, device = "onnx", "cpu"

    def __init__(self, folder: Path, fingerprint: bytes, graphs: Path = GRAPHS):
        self.config = SimpleNamespace(**json.loads((folder / "config.json").read_text()))
        self.fingerprint, weights = fingerprint, folder / _VAE_WEIGHTS
        where = graph_folder(weights, graphs)
        self.encoder = BatchGraph(where / ENCODER, weights, "mel")
        self.decoder = BatchGraph(where / DECODER, weights, "latent")

    def encode(self, mels: np.ndarray, precision: str = "float32") -> np.ndarray:
        """(B, frames, n_mels) log-mel -> (B, C, frames/4, n_mels/4) posterior means."""
        return self.encoder(mels)

    def decode(self, latents: np.ndarray, precision: str = "float32") -> np.ndarray:
        """(B, C, t, m) latents -> (B, 4t, 4m) log-mel (float32, what :meth:`precision` resolves to)."""
        return self.decoder(latents)

    def precision(self, asked: str) -> str:
        """float32, the graphs' arithmetic; bfloat16 is OpenVINO's and torch's (choose_runtime sends it there)."""
        if asked == "bfloat16":
            raise LatentCodecError("bfloat16 runs on the openvino and torch runtimes only", "precision")
        if asked not in PRECISIONS:
            raise LatentCodecError(f"unknown precision '{asked}': choose one of {', '.join(PRECISIONS)}", "precision")
        return "float32"
