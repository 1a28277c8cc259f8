"""The shipped model's encoder and decoder on each engine and arithmetic, by themselves: 4 windows of 5 s (the
codec's batch), the fastest of ``--repeats`` calls after one to warm up, on the threads this process may use.

    python bench/engines.py [--model NAME] [--repeats 5]    # torch's rows need the torch extra

onnxruntime runs the graphs in float32, OpenVINO in float32 and bfloat16 (native only on CPUs with AVX512-BF16
or AMX), torch its modules in float32 and bfloat16. The decoder runs in bfloat16 where a model's pairing says
so (``vocoders.registry.Pairing``: latentcodec-small-v4's files), else in float32.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from latentcodec.models.loader import load_model, torch_installed
from latentcodec.models.registry import DEFAULT_MODEL
from latentcodec.runtime.cores import prepare_process


def fastest(fn: Callable[[], object], repeats: int) -> float:
    """Milliseconds of the fastest of ``repeats`` calls, after one that warms up (OpenVINO compiles then)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    prepare_process()
    rng = np.random.default_rng(0)
    mels = (rng.standard_normal((4, 564, 64)) * 2 - 6).astype(np.float32)  # 500 frames + 2 x 32 of context
    latents = rng.standard_normal((4, 8, 141, 16)).astype(np.float32)
    rows = [("onnx", "float32"), ("openvino", "float32"), ("openvino", "bfloat16")]
    rows += [("torch", "float32"), ("torch", "bfloat16")] if torch_installed() else []
    for runtime, precision in rows:
        runner = load_model(args.model, "cpu", runtime, precision).runner
        enc = fastest(lambda r=runner, p=precision: r.encode(mels, p), args.repeats)
        dec = fastest(lambda r=runner, p=precision: r.decode(latents, p), args.repeats)
        print(f"{runtime:<9} {precision:<9} encoder {enc:5.0f} ms, decoder {dec:5.0f} ms", flush=True)


if __name__ == "__main__":
    main()
