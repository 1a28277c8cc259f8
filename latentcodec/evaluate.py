"""`alat eval`: encode and decode in a temporary folder, then measure bytes, speed and quality."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio_io import read_audio
from .codec import Timings, decode_file, encode_audio
from .fileinfo import rate_figures
from .mel import log_mel_frames, normalization_stats
from .metrics import log_mel_distance, quality
from .models import Model


def evaluate(in_path: str | Path, model: Model, bits: int = 4, zstd_level: int = 0, chunk_seconds: float = 5.0,
             mono: bool = False, device: str = "cpu", batch_size: int = 4, vocoder: str = "griffinlim",
             gl_iters: int = 32) -> dict:
    """Round trip one file; quality is measured at 16 kHz against the resampled input.

    ``latent_mel_l1_db`` compares the VAE's decoded mel with the input's mel before any vocoder (the
    VAE and quantizer alone); the other quality figures re-analyse the decoded waveform.
    """
    timings = Timings()
    t0 = time.perf_counter()
    with timings.stage("load_resample"):
        audio = read_audio(in_path, mono=mono)
    decoded_mels: dict[int, list[np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="alat-eval-") as tmp:
        alat, wav = Path(tmp) / "x.alat", Path(tmp) / "x.wav"
        t_enc = time.perf_counter()
        enc = encode_audio(audio, alat, model, bits=bits, zstd_level=zstd_level, chunk_seconds=chunk_seconds,
                           batch_size=batch_size, mono=mono, device=device, timings=timings)
        t_dec = time.perf_counter()
        decode_file(alat, wav, model, vocoder=vocoder, gl_iters=gl_iters, device=device, batch_size=batch_size,
                    timings=timings, mel_sink=lambda k, c, m: decoded_mels.setdefault(c, []).append(m))
        t_end = time.perf_counter()
        rec = sf.read(str(wav), dtype="float32", always_2d=True)[0].T
    h = enc.header
    n_frames = h.num_samples // h.hop + 1
    latent = [log_mel_distance(log_mel_frames(x, 0, n_frames, offset=o, gain=g),
                               np.concatenate(decoded_mels[c])[:n_frames])
              for c, (x, (o, g)) in enumerate(zip(audio.samples, (normalization_stats(x) for x in audio.samples)))]
    duration = h.duration
    return {
        "input": str(in_path), "model": model.name, "bits": bits, "zstd_level": zstd_level, "vocoder": vocoder,
        "gl_iters": gl_iters if vocoder == "griffinlim" else None, "duration_s": duration, "channels": h.channels,
        **rate_figures(enc.file_size, h),
        "latent_mel_l1_db": float(np.mean([d["log_mel_l1_db"] for d in latent])),
        "latent_mel_rmse_db": float(np.mean([d["log_mel_rmse_db"] for d in latent])),
        **quality(audio.samples, rec),
        "timings_s": {k: round(v, 4) for k, v in timings.seconds.items()},
        "encode_x_realtime": duration / max(t_dec - t_enc, 1e-9),
        "decode_x_realtime": duration / max(t_end - t_dec, 1e-9),
        "total_s": time.perf_counter() - t0,
    }
