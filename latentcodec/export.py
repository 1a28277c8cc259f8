"""Making the ONNX graphs that ``runtime/onnx_vae.py`` runs, from the shipped safetensors weights: ``alat export
DEST`` (the VAEs' encoder and decoder, the magnitude networks' ``magnitude.onnx``), with torch, diffusers, onnx
and onnxscript installed (``pip install 'latentcodec[export]'``).

The graphs take a dynamic batch and a dynamic number of frames (any chunk length), opset 18. The
decoder's sub-pixel upsamplers are exported with their phases interleaved by stacking for onnxruntime
(``decoder.onnx``) and by a pixel shuffle for OpenVINO (``decoder-openvino.onnx``; ``upsample.py``): the
in-place copies torch runs fastest become ScatterElements in a graph, which made onnxruntime's decoder 2.4x
slower than torch's; stacked it is as fast.

A graph holds no second copy of its weights. Why: the graphs held them all again, half of the installed
package (65 MB). Each weight that is a tensor of the safetensors file, as stored, transposed (the exporter's
MatMul operands), repeated once per phase (the upsamplers' biases) or summed into the upsamplers' phase
kernels, is ONNX external data at that tensor's bytes in the file, and a Cast to float32, a Transpose, a
Tile or the phase sums (the order of ``phase_kernels``' adds) in the graph make of it the very float32
tensor the exporter had; onnxruntime folds them when the graph loads, so the arithmetic sees the same bits.
What else the exporter made (folded constants, the mel interpolation matrix) stays inside: in float16 and a
Cast where float16 holds it exactly, sparse where it is mostly zeros. The exporter's records for people (each
node's stack trace) are dropped; the tensors' shapes are kept, as onnxruntime's optimizer reads them.

A graph holds no value of one model either, and names the weights file only by its name: so it is stored once
per weights layout (``onnx_vae.weights_layout``), in DEST/graphs/LAYOUT/, and serves every model of that
layout, each reading its own file. Why: 4 models of one architecture had 4 graphs that differed by a few
biases. The export checks what sharing needs: every tensor of the weights is read (one left unread means its
values, or some made of them, sit in the graph), and the models of one layout give the same graph bytes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentcodec.models.loader import VAE_WEIGHTS, load_model
from latentcodec.models.registry import shipped_models
from latentcodec.runtime.onnx_vae import (
    DECODER,
    DECODER_OPENVINO,
    ENCODER,
    LAYOUT_KEY,
    MAGNITUDE,
    graph_folder,
    weights_layout,
)
from latentcodec.runtime.upsample import _TAPS, ShuffledSubpixelUpsample, StackedSubpixelUpsample, export_form
from latentcodec.vocoders.nets import NET_WEIGHTS, MagnitudeNet, is_net_folder, load_net
from latentcodec.vocoders.registry import shipped_vocoders

OPSET = 18  # the exporter's own: its converter to 17 fails on Pad and leaves the VAE graphs at 18
BATCH = torch.export.Dim("batch", min=1, max=4096)
_QUARTERS = torch.export.Dim("quarters", min=2, max=15000)  # latent frames: mel frames / 4
# The safetensors dtypes a graph can point into.
_DTYPES: dict[str, np.dtype] = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4")}
_SMALL = 16  # elements: smaller initializers stay as the exporter made them (not worth a reference or a Cast)
_SPARSE_SAVES = 1024  # bytes a sparse initializer must save over a dense one (sparse_initializers)


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


@dataclass(frozen=True)
class Stored:
    """A tensor of a safetensors file: ``offset``, where its bytes start in the file; ``values``, those bytes."""

    name: str
    offset: int
    values: np.ndarray


def stored_tensors(path: Path) -> list[Stored]:
    """The float16 and float32 tensors of the safetensors file ``path``: an 8-byte little-endian header length,
    the JSON header, then the data, each tensor's ``data_offsets`` counted from the data's start."""
    raw = path.read_bytes()
    start = 8 + int.from_bytes(raw[:8], "little")
    tensors = []
    for name, t in json.loads(raw[8:start]).items():
        if name == "__metadata__" or t["dtype"] not in _DTYPES:
            continue
        lo, hi = t["data_offsets"]
        dtype = _DTYPES[t["dtype"]]
        values = np.frombuffer(raw, dtype, (hi - lo) // dtype.itemsize, start + lo).reshape(t["shape"])
        tensors.append(Stored(name, start + lo, values))
    return tensors


def _phase_plan() -> np.ndarray:
    """(4, 16): for each cell (a, b, p, q) of ``upsample.phase_kernels``' output (output phase a, b; kernel
    tap p, q), the rows of the flattened 3x3 kernel it adds, in its loops' order; 9, a zero row, pads."""
    cells: list[list[int]] = [[] for _ in range(16)]
    for a in range(2):
        for b in range(2):
            for r in range(3):
                for s in range(3):
                    cells[((2 * a + b) * 2 + _TAPS[a][r]) * 2 + _TAPS[b][s]].append(3 * r + s)
    return np.array([c + [9] * (4 - len(c)) for c in cells], np.int64).T


def phase_sums(w: np.ndarray) -> np.ndarray:
    """``upsample.phase_kernels`` of a float32 (Co, Ci, 3, 3) kernel as the graph computes it: each cell the
    same float32 adds in the same order, from zero (adding the zero row changes no sum)."""
    co, ci = w.shape[:2]
    rows = np.concatenate([w.transpose(2, 3, 0, 1).reshape(9, co, ci), np.zeros((1, co, ci), np.float32)])
    plan = _phase_plan()
    acc = np.float32(0) + rows[plan[0]]
    for k in plan[1:]:
        acc = acc + rows[k]
    return acc.reshape(2, 2, 2, 2, co, ci).transpose(0, 1, 4, 5, 2, 3).reshape(4 * co, ci, 2, 2)


class Sources:
    """The tensors of a safetensors file by what the exporter makes of them: their float32 values in their
    order (whatever shape the graph gives them: the norms' (C,) weights become (C, 1, 1)), transposed (2-D),
    repeated 4 times (1-D: the upsamplers' biases, one per phase), the 3x3 kernels whose phase kernels
    (``phase_sums``) a graph may hold, and by name (the small ones, whose values alone could be a
    constant's)."""

    def __init__(self, stored: list[Stored]):
        self.exact: dict[bytes, Stored] = {}
        self.transposed: dict[tuple[tuple[int, ...], bytes], Stored] = {}
        self.tiled: dict[bytes, Stored] = {}
        self.kernels: dict[tuple[int, int], list[Stored]] = defaultdict(list)
        self.named = {s.name: s for s in stored}
        for s in stored:
            f = s.values.astype(np.float32)
            self.exact.setdefault(f.tobytes(), s)
            if f.ndim == 1:
                self.tiled.setdefault(np.tile(f, 4).tobytes(), s)
            if f.ndim == 2:
                self.transposed.setdefault((f.T.shape, np.ascontiguousarray(f.T).tobytes()), s)
            if f.ndim == 4 and f.shape[2:] == (3, 3):
                self.kernels[(4 * f.shape[0], f.shape[1])].append(s)

    def find(self, x: np.ndarray, name: str = "") -> tuple[Stored, str] | None:
        """The stored tensor that the float32 ``x`` is, bit for bit, and how: stored, transposed, tiled or
        phases. One under 16 values is found only by ``name``, torch's for it (the module's path to the
        tensor, e.g. ``vae.decoder.conv_out.bias`` for the stored ``decoder.conv_out.bias``)."""
        if x.size < _SMALL:
            parts = name.split(".")
            s = next((self.named[n] for n in (".".join(parts[k:]) for k in range(len(parts))) if n in self.named), None)
            if s is None or s.values.shape != x.shape or s.values.astype(np.float32).tobytes() != x.tobytes():
                return None
            return s, "stored"
        if x.tobytes() in self.exact:
            return self.exact[x.tobytes()], "stored"
        if (x.shape, x.tobytes()) in self.transposed:
            return self.transposed[(x.shape, x.tobytes())], "transposed"
        if x.ndim == 1 and x.tobytes() in self.tiled:
            return self.tiled[x.tobytes()], "tiled"
        if x.ndim != 4 or x.shape[2:] != (2, 2):
            return None
        for s in self.kernels.get(x.shape[:2], []):
            if phase_sums(s.values.astype(np.float32)).tobytes() == x.tobytes():
                return s, "phases"
        return None


def _external(name: str, s: Stored, location: str, dims: list[int] | None = None) -> Any:
    """An initializer ``name`` whose data are ``s``'s bytes in the file named ``location`` (in the folder its
    loader gives onnxruntime), of shape ``dims`` (default: ``s``'s)."""
    import onnx

    t = onnx.TensorProto(
        name=name,
        data_type=onnx.helper.np_dtype_to_tensor_dtype(s.values.dtype),
        dims=s.values.shape if dims is None else dims,
        data_location=onnx.TensorProto.EXTERNAL,
    )
    for key, value in (("location", location), ("offset", str(s.offset)), ("length", str(s.values.nbytes))):
        t.external_data.add(key=key, value=value)
    return t


def _phase_nodes(src: str, out: str, co: int, ci: int) -> tuple[list[Any], list[Any]]:
    """Initializers and nodes making ``out``, the (4 Co, Ci, 2, 2) phase kernels, of the float32 (Co, Ci, 3, 3)
    ``src`` as ``phase_sums`` does."""
    from onnx import helper, numpy_helper

    p, plan = out + ".phases", _phase_plan()
    consts = {
        "rows_shape": np.array([9, co, ci]),
        "pad": np.array([0, 0, 0, 1, 0, 0]),
        "zero": np.array(0, np.float32),
        "cells_shape": np.array([2, 2, 2, 2, co, ci]),
        "out_shape": np.array([4 * co, ci, 2, 2]),
        **{f"take{k}": plan[k] for k in range(4)},
    }
    inits = [numpy_helper.from_array(v, f"{p}.{k}") for k, v in consts.items()]
    nodes = [
        helper.make_node("Transpose", [src], [f"{p}.taps"], perm=[2, 3, 0, 1]),
        helper.make_node("Reshape", [f"{p}.taps", f"{p}.rows_shape"], [f"{p}.rows9"]),
        helper.make_node("Pad", [f"{p}.rows9", f"{p}.pad"], [f"{p}.rows"]),
    ]
    acc = f"{p}.zero"
    for k in range(4):
        nodes.append(helper.make_node("Gather", [f"{p}.rows", f"{p}.take{k}"], [f"{p}.term{k}"], axis=0))
        nodes.append(helper.make_node("Add", [acc, f"{p}.term{k}"], [f"{p}.sum{k}"]))
        acc = f"{p}.sum{k}"
    nodes += [
        helper.make_node("Reshape", [acc, f"{p}.cells_shape"], [f"{p}.cells"]),
        helper.make_node("Transpose", [f"{p}.cells"], [f"{p}.kernels"], perm=[0, 1, 4, 5, 2, 3]),
        helper.make_node("Reshape", [f"{p}.kernels", f"{p}.out_shape"], [out]),
    ]
    return inits, nodes


def stored_weight(name: str, dims: list[int], s: Stored, how: str, location: str) -> tuple[list[Any], list[Any]]:
    """Initializers and nodes making the float32 initializer ``name`` (of shape ``dims``) of ``s`` in the file
    ``location``: ``how`` (stored, transposed, tiled or phases) as ``Sources.find`` said."""
    import onnx
    from onnx import helper, numpy_helper

    shape = dims if how == "stored" else None
    if how == "stored" and s.values.dtype == np.float32:
        return [_external(name, s, location, shape)], []
    src = _external(f"{name}.{'f16' if s.values.dtype == np.float16 else 'f32'}", s, location, shape)
    inits, nodes, x = [src], [], src.name
    if s.values.dtype != np.float32:
        nodes.append(
            helper.make_node("Cast", [x], [name if how == "stored" else f"{name}.f32"], to=onnx.TensorProto.FLOAT)
        )
        x = nodes[-1].output[0]
    if how == "transposed":
        nodes.append(helper.make_node("Transpose", [x], [name], perm=[1, 0]))
    elif how == "tiled":
        inits.append(numpy_helper.from_array(np.array([4], np.int64), f"{name}.repeats"))
        nodes.append(helper.make_node("Tile", [x, f"{name}.repeats"], [name]))
    elif how == "phases":
        more, phase_nodes = _phase_nodes(x, name, s.values.shape[0], s.values.shape[1])
        inits, nodes = inits + more, nodes + phase_nodes
    return inits, nodes


def external_weights(g: Any, weights: Path) -> None:
    """Point each float32 initializer of the graph ``g`` that is a tensor of the safetensors file ``weights``
    (``Sources.find``) into that file, named by its name only (where it lies is the loader's to say)."""
    import onnx
    from onnx import numpy_helper

    sources, graph_inputs = Sources(stored_tensors(weights)), {i.name for i in g.graph.input}
    kept, added, nodes = [], [], []
    for init in g.graph.initializer:
        float32 = init.data_type == onnx.TensorProto.FLOAT and init.name not in graph_inputs
        found = sources.find(numpy_helper.to_array(init), init.name) if float32 else None
        if found is None:
            kept.append(init)
            continue
        inits, made = stored_weight(init.name, list(init.dims), *found, weights.name)
        added += inits
        nodes += made
    del g.graph.initializer[:]
    g.graph.initializer.extend(kept + added)
    _prepend(g, nodes)


def _prepend(g: Any, nodes: list[Any]) -> None:
    """``nodes`` (of initializers only) before the graph's own, which keeps the graph in topological order."""
    everything = nodes + list(g.graph.node)
    del g.graph.node[:]
    g.graph.node.extend(everything)


def float16_initializers(g: Any) -> None:
    """Store every float32 initializer of ``g`` that float16 holds exactly in float16, with a Cast back to
    float32 (folded by onnxruntime when the graph loads)."""
    import onnx
    from onnx import helper, numpy_helper

    casts = []
    for init in g.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or init.data_location == onnx.TensorProto.EXTERNAL:
            continue
        x = numpy_helper.to_array(init)
        if x.size < _SMALL or not np.array_equal(x.astype(np.float16).astype(np.float32), x):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(x.astype(np.float16), name + ".f16"))
        casts.append(helper.make_node("Cast", [name + ".f16"], [name], to=onnx.TensorProto.FLOAT))
    _prepend(g, casts)


def sparse_initializers(g: Any) -> None:
    """Store each initializer of ``g`` held in the graph that is mostly zeros (the mel interpolation matrix) as
    a sparse one, its non-zero values and their flat positions (onnxruntime makes it dense at load); a -0.0
    counts as non-zero, so the values are the same bits. Only where that saves at least _SPARSE_SAVES bytes:
    OpenVINO reads no sparse initializer, and the VAE graphs' one (16 zeros) saved 64 bytes."""
    import onnx
    from onnx import helper, numpy_helper

    kept = []
    for init in g.graph.initializer:
        if (
            init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
            and init.data_location != onnx.TensorProto.EXTERNAL
        ):
            x = numpy_helper.to_array(init).reshape(-1)
            where = np.flatnonzero(x.view(f"u{x.itemsize}"))
            if x.size >= _SMALL and where.size * (8 + x.itemsize) * 2 + _SPARSE_SAVES <= x.nbytes:
                values = numpy_helper.from_array(x[where], init.name)
                g.graph.sparse_initializer.append(
                    helper.make_sparse_tensor(values, numpy_helper.from_array(where.astype(np.int64)), list(init.dims))
                )
                continue
        kept.append(init)
    del g.graph.initializer[:]
    g.graph.initializer.extend(kept)


def strip_records(g: Any) -> None:
    """Drop what the exporter records for people, not for onnxruntime: each node's source location and stack
    trace, doc string, and torch's names for the graph's tensors (together three quarters of a graph without
    its weights). The intermediate tensors' shapes stay: onnxruntime's optimizations read them (without them
    the encoder's outputs changed in the last bit)."""
    del g.graph.metadata_props[:]
    for record in [*g.graph.node, *g.graph.value_info, *g.graph.input, *g.graph.output, *g.graph.initializer]:
        del record.metadata_props[:]
        record.doc_string = ""


def short_names(g: Any) -> None:
    """Every tensor inside the graph renamed to a short number (its inputs' and outputs' names stay: callers
    use them), and node names dropped: torch's long dotted names were a third of what is left of a graph."""
    keep = {v.name for v in [*g.graph.input, *g.graph.output]} | {""}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        return name if name in keep else names.setdefault(name, format(len(names), "x"))

    for node in g.graph.node:
        node.name = ""
        node.input[:] = [short(x) for x in node.input]
        node.output[:] = [short(x) for x in node.output]
    for record in [*g.graph.initializer, *g.graph.value_info]:
        record.name = short(record.name)
    for sparse in g.graph.sparse_initializer:
        sparse.values.name = short(sparse.values.name)


def inside_bytes(g: Any) -> int:
    """The bytes of the initializers that ``g`` holds itself (not in an external file)."""
    import onnx

    return sum(i.ByteSize() for i in g.graph.initializer if i.data_location != onnx.TensorProto.EXTERNAL) + sum(
        s.ByteSize() for s in g.graph.sparse_initializer
    )


def graph_of(
    module: torch.nn.Module, example: torch.Tensor, names: tuple[str, str], dynamic: dict[int, Any], weights: Path
) -> Any:
    """``module`` as an ONNX graph whose weights are read from a safetensors file of the layout of ``weights``
    (by the file's name, in whatever folder its loader says), recording that layout."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        torch.onnx.export(
            module.eval(),
            (example,),
            str(Path(tmp) / "graph.onnx"),
            opset_version=OPSET,
            dynamo=True,
            optimize=True,
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_shapes=(dynamic,),
            external_data=False,
            verbose=False,
        )
        g = onnx.load(str(Path(tmp) / "graph.onnx"))
        external_weights(g, weights)
        float16_initializers(g)
        sparse_initializers(g)
        strip_records(g)
        short_names(g)
        onnx.helper.set_model_props(g, {LAYOUT_KEY: weights_layout(weights)})
        onnx.save(g, str(Path(tmp) / "graph.onnx"))
        shutil.copyfile(weights, Path(tmp) / weights.name)  # the checker reads external data beside the graph
        onnx.checker.check_model(str(Path(tmp) / "graph.onnx"))
    return g


@dataclass(frozen=True)
class Made:
    """The graphs made from one model (``source``, for messages), by file name, for the layout of its
    safetensors file ``weights``."""

    source: str
    weights: Path
    graphs: dict[str, Any]


def read_offsets(graphs: list[Any]) -> set[int]:
    """The offsets of the external data that ``graphs`` read."""
    return {int(e.value) for g in graphs for i in g.graph.initializer for e in i.external_data if e.key == "offset"}


def check_all_read(made: Made) -> None:
    """Refuse graphs that leave a tensor of their weights unread: its values (or some made of them) would be
    held inside, and a graph shared by the models of a layout would compute with one model's. A bug."""
    read = read_offsets(list(made.graphs.values()))
    unread = [s.name for s in stored_tensors(made.weights) if s.offset not in read]
    if unread:
        raise RuntimeError(
            f"{made.source}: the graphs do not read {len(unread)} tensors of {made.weights.name} "
            f"({', '.join(unread[:3])}): they would hold this model's values, not its layout's"
        )


def write_graphs(made: list[Made], dest: Path) -> list[Path]:
    """Write the graphs into ``dest``/graphs/LAYOUT/, once for all the models of a layout, after checking that
    they all gave the same bytes (else a model's value is held in a graph: a bug, refused before anything is
    written); the paths written."""
    out: dict[Path, tuple[str, bytes]] = {}
    for m in made:
        check_all_read(m)
        folder = graph_folder(m.weights, dest / "graphs")
        for name, g in m.graphs.items():
            raw = g.SerializeToString()
            first = out.setdefault(folder / name, (m.source, raw))
            if first[1] != raw:
                raise RuntimeError(
                    f"{first[0]} and {m.source} share the weights layout {folder.name} but not the "
                    f"graph {name}: a value of one model is held in it"
                )
    for path, (_, raw) in out.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    return list(out)


def vae_graphs(name: str) -> Made:
    """Model ``name``'s encoder and decoder graphs (a shipped name or a folder): the decoder in the form each
    runtime runs fastest (``upsample.py``)."""
    model = load_model(name, runtime="torch")
    vae = model.module.to(memory_format=torch.contiguous_format)
    weights = Path(model.folder or model.location) / VAE_WEIGHTS
    mels = torch.zeros(2, 4 * 141, vae.config.in_channels * 64)
    z = torch.zeros(2, model.latent_channels, 141, 16)
    graphs = {ENCODER: graph_of(_Encoder(vae), mels, ("mel", "latent"), {0: BATCH, 1: 4 * _QUARTERS}, weights)}
    for graph, form in ((DECODER, StackedSubpixelUpsample), (DECODER_OPENVINO, ShuffledSubpixelUpsample)):
        export_form(vae, form)
        graphs[graph] = graph_of(_Decoder(vae), z, ("latent", "mel"), {0: BATCH, 2: _QUARTERS}, weights)
    return Made(name, weights, graphs)


def export_vae(name: str, dest: Path) -> list[Path]:
    """Model ``name``'s encoder and decoder graphs, written into ``dest``/graphs/LAYOUT/."""
    return write_graphs([vae_graphs(name)], dest)


def export_vaes(dest: Path) -> list[Path]:
    """The graphs of every shipped VAE, in ``dest``/graphs/LAYOUT/: once for the models of a layout."""
    return write_graphs([vae_graphs(name) for name in shipped_models()], dest)


def magnitude_graph(folder: Path) -> Made:
    """The graph of the magnitude network in ``folder``: (B, frames, n_mels) log-mel -> (B, bins, frames)
    magnitude, before the NNLS steps."""
    net = load_net(folder)
    frames = torch.export.Dim("frames", min=16, max=100000)
    g = graph_of(
        net, torch.zeros(1, 400, net.cfg.n_mels), ("log_mel", "magnitude"), {0: BATCH, 1: frames}, folder / NET_WEIGHTS
    )
    return Made(str(folder), folder / NET_WEIGHTS, {MAGNITUDE: g})


def export_magnitude_net(folder: Path, dest: Path) -> Path:
    """The graph of the magnitude network in ``folder``, written into ``dest``/graphs/LAYOUT/."""
    return write_graphs([magnitude_graph(folder)], dest)[0]


def export_magnitude_nets(dest: Path) -> list[Path]:
    """The graphs of every shipped magnitude network, in ``dest``/graphs/LAYOUT/: once for those of a layout."""
    return write_graphs(
        [
            magnitude_graph(f)
            for f in shipped_vocoders().values()
            if is_net_folder(f) and isinstance(load_net(f), MagnitudeNet)
        ],
        dest,
    )
