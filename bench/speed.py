"""Speed of each codec stage, x real time, for the shipped model and an AudioLDM2-sized VAE.

    python bench/speed.py [--seconds 60] [--batch-sizes 1 8] [--models small audioldm2 NAME...]
                          [--vocoders NAME...] [--precisions auto float32 bfloat16] [--gl-iters N]
                          [--runtimes torch openvino onnx] [--repeats R] [--json OUT]

'small' is the package's default model; any other NAME a shipped model's name or a model folder. The
AudioLDM2-sized VAE has AudioLDM2's architecture with random weights (no hub here): it runs at
the same speed as the real one. Every vocoder given decodes (default: each model's own), at its own
Griffin-Lim iterations unless --gl-iters, and is also timed alone ("vocoder alone": the exact mel of
the input through the decoder's windows, no VAE). ``--runtimes``: each row on each runtime, side by side
(the plain install's are openvino and onnx; OpenVINO compiles a graph on its first call, 0.1-0.2 s
of the first row; a whole build against another, start-up included, is
``bench/startup.py``'s). Input: the dev clips joined (or a synthetic tone
when absent). ``--repeats`` runs each setting R times and keeps the fastest (this machine's timings vary
by 10-20 % between runs).
"""
from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from safetensors.numpy import load_file

from latentcodec.audio.mel import AUDIOLDM_MEL, log_mel, normalization_stats
from latentcodec.options import DecodeOptions, EncodeOptions
from latentcodec.codec import Timings, decode_file, encode_file
from latentcodec.constants import PRECISIONS, RUNTIMES
from latentcodec.models.loader import VAE_WEIGHTS, load_model
from latentcodec.models.registry import DEFAULT_MODEL
from latentcodec.vocoders.registry import default_vocoder, load_vocoder
from latentcodec.vocoders.windows import vocode_stream

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "dev"
AUDIOLDM2_VAE = dict(in_channels=1, out_channels=1, latent_channels=8, block_out_channels=(128, 256, 512),
                     layers_per_block=2, norm_num_groups=32, down_block_types=("DownEncoderBlock2D",) * 3,
                     up_block_types=("UpDecoderBlock2D",) * 3, sample_size=1024)


AUDIOLDM2_LABEL = "audioldm2-sized (random weights)"  # how the rows of --models audioldm2 are named


def test_audio(seconds: float, folder: Path) -> np.ndarray:
    clips = [sf.read(str(p), dtype="float32")[0] for p in sorted(folder.glob("*.wav"))] if folder.is_dir() else []
    if not clips:
        t = np.arange(int(16000 * 10)) / 16000
        clips = [(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)]
    joined = np.concatenate(clips)
    reps = int(np.ceil(seconds * 16000 / len(joined)))
    return np.tile(joined, reps)[:int(seconds * 16000)]


def audioldm2_sized(folder: Path) -> str:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    AutoencoderKL(**AUDIOLDM2_VAE).save_pretrained(folder / "vae")
    return str(folder)


CODERS = {"default": {}, "bits4": {"bits": 4}}  # version 2 at the default quality; version 1 at 4 bits + zstd


def vocoder_alone(name: str, x: np.ndarray, gl_iters: int | None, device: str, runtime: str = "torch") -> float:
    """x real time of the vocoder by itself on the exact mel of ``x``, in the decoder's windows, in the form
    ``runtime`` runs it (numpy and onnxruntime for the graph runtimes, torch for torch)."""
    off, gain = normalization_stats(x)
    mel = log_mel((x - off) * gain)
    voc = load_vocoder(name, AUDIOLDM_MEL, None, device, gl_iters, runtime)
    t0 = time.perf_counter()
    for _ in vocode_stream(iter([mel]), len(mel), len(x), voc, float(np.log(AUDIOLDM_MEL.log_floor))):
        pass
    return len(x) / AUDIOLDM_MEL.sample_rate / (time.perf_counter() - t0)


def fastest(runs: list[dict]) -> dict:
    """Of repeated runs of one setting, the fastest encode and the fastest decode (with its stages)."""
    best = min(runs, key=lambda r: r["decode_s"])
    enc = min(runs, key=lambda r: r["encode_s"])
    return {**best, **{k: enc[k] for k in ("encode_s", "encode_x_realtime", "vae_encode_s_per_5s_chunk")},
            "repeats": len(runs)}


def run(model_ref: str, label: str, wav: Path, seconds: float, batch: int, gl_iters: int | None, device: str,
        coder: str = "default", vocoder: str | None = None, precision: str = "auto", runtime: str = "torch") -> dict:
    model = load_model(model_ref, device, runtime=runtime)
    with tempfile.TemporaryDirectory() as tmp:
        alat, out = Path(tmp) / "x.alat", Path(tmp) / "y.wav"
        te, td = Timings(), Timings()
        t0 = time.perf_counter()
        encode_file(wav, alat, EncodeOptions(model=model, batch_size=batch, device=device, precision=precision,
                                             **CODERS[coder]), timings=te)
        t1 = time.perf_counter()
        decode_file(alat, out, DecodeOptions(model=model, batch_size=batch, gl_iters=gl_iters, device=device,
                                             vocoder=vocoder), timings=td)
        t2 = time.perf_counter()
    params = (sum(p.numel() for p in model.module.parameters()) if model.runtime == "torch"
              else sum(t.size for t in load_file(str(Path(model.folder) / VAE_WEIGHTS)).values()))
    stages = {k: seconds / v for k, v in {**te.seconds, **td.seconds}.items() if v > 0}
    return {"model": label, "runtime": model.runtime, "params_m": params / 1e6,
            "batch": batch, "device": device, "coder": coder, "vocoder": vocoder or default_vocoder(model.name),
            "encoder_precision": model.runner.precision(precision),
            "seconds_audio": seconds, "encode_s": t1 - t0, "decode_s": t2 - t1,
            "encode_x_realtime": seconds / (t1 - t0), "decode_x_realtime": seconds / (t2 - t1),
            "stage_x_realtime": stages,
            "vae_encode_s_per_5s_chunk": te.seconds["vae_encode"] / (seconds / 5),
            "vae_decode_s_per_5s_chunk": td.seconds["vae_decode"] / (seconds / 5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--models", nargs="+", default=["small", "audioldm2"])
    ap.add_argument("--vocoders", nargs="+", default=[None])
    ap.add_argument("--gl-iters", type=int)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--corpus", type=Path, default=DEV)
    ap.add_argument("--coders", nargs="+", default=["default"], choices=list(CODERS))
    ap.add_argument("--precisions", nargs="+", default=["auto"], choices=PRECISIONS, help="the encoder's")
    ap.add_argument("--runtimes", nargs="+", default=["torch"], choices=[r for r in RUNTIMES if r != "auto"],
                    help="side by side (the AudioLDM2-sized model: torch only, it has no graphs)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "in.wav"
        sf.write(str(wav), test_audio(args.seconds, args.corpus), 16000)
        refs = {name: name for name in args.models} | {"small": DEFAULT_MODEL}
        if "audioldm2" in args.models:
            refs["audioldm2"] = audioldm2_sized(Path(tmp) / "audioldm2")
        x = sf.read(str(wav), dtype="float32")[0]
        for name in args.models:
            for b, coder, voc, prec, rt in itertools.product(args.batch_sizes, args.coders, args.vocoders,
                                                             args.precisions, args.runtimes):
                if name == "audioldm2" and rt != "torch" or rt == "onnx" and prec == "bfloat16":
                    continue
                label = AUDIOLDM2_LABEL if name == "audioldm2" else refs[name]
                r = fastest([run(refs[name], label, wav, args.seconds, b, args.gl_iters, args.device, coder, voc, prec,
                                 rt) for _ in range(args.repeats)])
                r["vocoder_alone_x_realtime"] = max(vocoder_alone(r["vocoder"], x, args.gl_iters, args.device, rt)
                                                    for _ in range(args.repeats))
                rows.append(r)
                print(f"{r['model']:<34} {r['runtime']:<8} {r['params_m']:6.1f} M  batch {b} {coder} "
                      f"{r['encoder_precision']} "
                      f"{r['vocoder']}: "
                      f"encode {r['encode_x_realtime']:6.1f}x, "
                      f"decode {r['decode_x_realtime']:6.1f}x real time; VAE {r['vae_encode_s_per_5s_chunk']:.3f} s "
                      f"enc / {r['vae_decode_s_per_5s_chunk']:.3f} s dec per 5 s chunk", flush=True)
                print("    stages x real time: " + ", ".join(f"{k} {v:.0f}" for k, v in r["stage_x_realtime"].items())
                      + f"; vocoder alone {r['vocoder_alone_x_realtime']:.0f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
