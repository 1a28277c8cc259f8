"""Fit a model's version-2 coder table from training audio: the KLT across latent channels, written as
``coder.json`` beside the model's weights (the encoder copies it into each file's header).

    python training/calibrate_coder.py /data/alat-train latentcodec/weights/latentcodec-small \
        [--model latentcodec-small] [--files music=15,speech=10,effects=5] [--seconds 30]

The files (at least ``--min-seconds`` long: typical audio is not a one-second syllable padded with
silence) are taken evenly spaced through each kind's sorted list (never the dev clips: they are not in a
training folder); ``--seconds`` from the middle of each are coded. The KLT is the eigenvector basis of the
latent channels' covariance (rows sorted by falling variance, each row's largest entry positive).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from latentcodec.audio.io import Audio, read_audio
from latentcodec.codec import encode_audio
from latentcodec.format.container import AlatReader
from latentcodec.models.loader import load_model


def pick_files(data: Path, counts: dict[str, int], min_seconds: float) -> list[Path]:
    """``counts[kind]`` files of at least ``min_seconds``, evenly spaced through each kind's sorted list."""
    out = []
    for kind, n in counts.items():
        files = [p for p in sorted((data / kind).rglob("*.flac")) if sf.info(str(p)).duration >= min_seconds]
        out += [files[i] for i in np.linspace(0, len(files) - 1, n).round().astype(int)]
    return out


def latents_of(path: Path, seconds: float, model) -> np.ndarray:  # noqa: ANN001
    """(records, L, T, M) exact (16-bit) latents of ``seconds`` from the middle of a file."""
    a = read_audio(path, mono=True)
    start = max(0, (a.samples.shape[1] - int(seconds * 16000)) // 2)
    a = Audio(a.samples[:, start:start + int(seconds * 16000)], a.original_rate, a.original_channels,
              a.original_frames, a.file_size)
    with tempfile.TemporaryDirectory() as tmp:
        encode_audio(a, Path(tmp) / "x.alat", model, bits=16, zstd_level=0)
        with AlatReader(Path(tmp) / "x.alat") as r:
            return np.stack([lat for _, _, lat in r])


def klt(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L, L) orthonormal rows by falling variance, and those variances."""
    z = latents.transpose(1, 0, 2, 3).reshape(latents.shape[1], -1).astype(np.float64)
    z -= z.mean(axis=1, keepdims=True)
    var, vec = np.linalg.eigh(z @ z.T / z.shape[1])
    order = np.argsort(var)[::-1]
    k = vec[:, order].T
    k *= np.sign(k[np.arange(len(k)), np.abs(k).argmax(axis=1)])[:, None]
    return k, var[order]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("out", type=Path, help="the model's weights folder (coder.json goes there)")
    ap.add_argument("--model", default="latentcodec-small")
    ap.add_argument("--files", default="music=15,speech=10,effects=5")
    ap.add_argument("--seconds", type=float, default=30.0, help="excerpt from the middle of each file")
    ap.add_argument("--min-seconds", type=float, default=10.0, help="only files at least this long (default 10)")
    args = ap.parse_args()
    counts = {k: int(v) for k, v in (kv.split("=") for kv in args.files.split(","))}
    model = load_model(args.model)
    files = pick_files(args.data, counts, args.min_seconds)
    per_file = [latents_of(p, args.seconds, model) for p in files]
    k, var = klt(np.concatenate(per_file))
    table = {"model": args.model, "transform": k.round(8).tolist(), "component_variance": var.round(6).tolist(),
             "calibration": {"data": str(args.data), "files": [str(p.relative_to(args.data)) for p in files],
                             "seconds_per_file": args.seconds, "min_seconds": args.min_seconds,
                             "chunk_seconds": 5.0}}
    (args.out / "coder.json").write_text(json.dumps(table, indent=1))
    print(f"{args.out / 'coder.json'}: component variances {np.round(var, 3).tolist()}")


if __name__ == "__main__":
    main()
