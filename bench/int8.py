"""The shipped encoder in int8 on onnxruntime, judged on quality: what issue 27 asks of a runtime without
bfloat16. The float32 graph quantized statically (QDQ: int8 weights per channel, uint8 activations,
calibrated on windows of training audio, never the dev clips), whole or with its first and last
convolutions kept in float32; then the encoder's time at the codec's batch of 4 windows (2 threads) and,
on the dev clips, the share of codes identical to the float32 graph's and the decoded log-mel L1 (both
files decoded by the float32 decoder).

    python bench/int8.py --calib /data/alat-train-all/speech --calib /data/alat-train-all/music
    # needs onnx (pip install '.[export]'); take the times on a quiet machine
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from latentcodec.codec import encode_file
from latentcodec.models.loader import VAE_WEIGHTS, Model, load_model
from latentcodec.options import EncodeOptions
from latentcodec.runtime.onnx_vae import ENCODER, BatchGraph, OnnxVae, graph_folder
from runtimes import DEV, coded  # bench/, the folder of this script


def encoder_graph(model: Model, folder: Path) -> Path:
    """The model's encoder graph in ``folder`` beside a copy of its weights, its nodes named: the shipped
    graph is shared by every model of its weights' layout and reads them from the model's folder when
    onnxruntime loads it, while onnx's tools read external data beside the graph and name nodes by name."""
    weights = Path(model.location) / VAE_WEIGHTS
    g = onnx.load(str(graph_folder(weights) / ENCODER), load_external_data=False)
    for i, node in enumerate(g.graph.node):
        node.name = node.name or f"n{i}"
    onnx.save(g, str(folder / ENCODER))
    (folder / VAE_WEIGHTS).write_bytes(weights.read_bytes())
    # Folded by onnxruntime (the float16 weights cast, the phase kernels built): the quantizer wants plain
    # float32 initializers, not the nodes that make them.
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(folder / "folded.onnx")
    ort.InferenceSession(str(folder / ENCODER), opts, providers=["CPUExecutionProvider"])
    return folder / "folded.onnx"


def outer_convolutions(path: Path) -> list[str]:
    """The graph's first convolution and its last two (the encoder's conv_out and the quant_conv)."""
    convs = [n.name for n in onnx.load(str(path), load_external_data=False).graph.node if n.op_type == "Conv"]
    return [convs[0], *convs[-2:]]


def calibration_windows(model: Model, folders: list[Path], files: int) -> list[np.ndarray]:
    """The encoder's input windows, (1, frames, n_mels) each, of the first ``files`` files (by path) of each folder."""
    seen: list[np.ndarray] = []
    graph = model.runner.encoder
    model.runner.encoder = lambda x: (seen.extend(np.array_split(x, len(x))), graph(x))[1]
    with tempfile.TemporaryDirectory() as tmp:
        for folder in folders:
            for path in sorted(folder.rglob("*.flac"))[:files]:
                encode_file(path, Path(tmp) / "c.alat", EncodeOptions(model=model))
    model.runner.encoder = graph
    return seen


class Windows(CalibrationDataReader):
    """The calibration windows as onnxruntime's quantizer asks for them: one input a call, then None."""

    def __init__(self, windows: list[np.ndarray]):
        self.rest = iter(windows)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self.rest, None)
        return None if x is None else {"mel": x.astype(np.float32)}


def quantized(model: Model, src: Path, windows: list[np.ndarray], out: Path, keep_float: list[str]) -> Model:
    """``model`` with its encoder graph ``src`` quantized into ``out`` (the layout record copied over)."""
    quantize_static(str(src), str(out), Windows(windows), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=keep_float)
    q, meta = onnx.load(str(out)), onnx.load(str(src), load_external_data=False).metadata_props
    del q.metadata_props[:]
    q.metadata_props.extend(meta)
    onnx.save(q, str(out))
    vae = OnnxVae(Path(model.location), model.fingerprint)
    vae.encoder = BatchGraph(out, Path(model.location) / VAE_WEIGHTS, "mel")
    return dataclasses.replace(model, runner=vae)


def encoder_ms(model: Model, x: np.ndarray, repeats: int = 15) -> float:
    model.runner.encoder(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.runner.encoder(x)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calib", type=Path, action="append", required=True, help="folder of training audio (FLAC)")
    ap.add_argument("--files", type=int, default=8, help="files of each --calib folder")
    ap.add_argument("--corpus", type=Path, default=DEV)
    args = ap.parse_args()
    base = load_model("latentcodec-small-v2", runtime="onnx")
    windows = calibration_windows(base, args.calib, args.files)
    batch = np.concatenate(windows[:4])
    print(f"calibration: {len(windows)} windows; encoder, 4 windows: float32 {encoder_ms(base, batch):.0f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        src = encoder_graph(base, Path(tmp))
        outer = outer_convolutions(src)
        for label, keep in (("int8, every layer", []), ("int8, first and last convolutions float32", outer)):
            q = quantized(base, src, windows, Path(tmp) / f"{len(keep)}.onnx", keep)
            same = total = 0
            diffs = []
            for clip in sorted(args.corpus.glob("*.wav")):
                (cf, lf), (cq, lq) = (coded(clip, Path(tmp), {"model": m}, {"model": base}) for m in (base, q))
                same, total = same + int((cf == cq).sum()), total + len(cf)
                diffs.append(lq - lf)
            print(f"{label}: encoder {encoder_ms(q, batch):.0f} ms; {100 * same / total:.2f} % of {total:,} codes "
                  f"identical; decoded L1 {np.mean(diffs):+.4f} dB on average, at most {np.max(np.abs(diffs)):.4f}")


if __name__ == "__main__":
    main()
