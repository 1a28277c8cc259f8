"""`alat eval`: encode and decode in a temporary folder, then measure bytes, speed and quality."""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from latentcodec.audio.io import Audio, read_audio
from latentcodec.audio.mel import log_mel_frames
from latentcodec.codec import decode_file, encode_audio
from latentcodec.errors import LatentCodecError
from latentcodec.info import coder_summary, coder_text, rate_figures
from latentcodec.format.header import Header
from latentcodec.metrics import log_mel_distance, perceptual, perceptual_available
from latentcodec.metrics import quality as quality_metrics
from latentcodec.models.loader import Model
from latentcodec.timings import Timings
from latentcodec.vocoders.registry import default_vocoder


@dataclass
class RoundTrip:
    """What one encode + decode produced: real bytes, the decoded 16 kHz audio, and the VAE's mel."""

    file_size: int
    decoded: np.ndarray  # (channels, samples) at 16 kHz, as read back from the written wav
    latent_mel_l1_db: float  # VAE + quantizer alone: decoded mel vs input mel, before any vocoder
    latent_mel_rmse_db: float
    header: Header
    timings: Timings
    encode_s: float
    decode_s: float


def round_trip(audio: Audio, model: Model, bits: int | None = None, zstd_level: int | None = None,
               quality: float | None = None, kbps: float | None = None, chunk_seconds: float = 5.0, mono: bool = False,
               device: str = "cpu", batch_size: int = 4, vocoder: str | None = None,
               gl_iters: int | None = None, timings: Timings | None = None, precision: str = "auto") -> RoundTrip:
    """Encode ``audio`` to a temporary .alat, decode it to a temporary wav, and read that back."""
    timings = timings or Timings()
    mels: dict[int, list[np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="alat-eval-") as tmp:
        alat, wav = Path(tmp) / "x.alat", Path(tmp) / "x.wav"
        t0 = time.perf_counter()
        enc = encode_audio(audio, alat, model, bits=bits, zstd_level=zstd_level, quality=quality, kbps=kbps,
                           chunk_seconds=chunk_seconds,
                           batch_size=batch_size, mono=mono, device=device, timings=timings, precision=precision)
        t1 = time.perf_counter()
        decode_file(alat, wav, model, vocoder=vocoder, gl_iters=gl_iters, device=device, batch_size=batch_size,
                    timings=timings, mel_sink=lambda k, c, m: mels.setdefault(c, []).append(m))
        t2 = time.perf_counter()
        decoded = sf.read(str(wav), dtype="float32", always_2d=True)[0].T
    h = enc.header
    n_frames = h.num_samples // h.mel.hop + 1
    dist = [log_mel_distance(log_mel_frames(x, 0, n_frames, h.mel, o, g), np.concatenate(mels[c])[:n_frames])
            for c, (x, o, g) in enumerate(zip(audio.samples, h.offsets, h.gains))]
    return RoundTrip(enc.file_size, decoded, float(np.mean([d["log_mel_l1_db"] for d in dist])),
                     float(np.mean([d["log_mel_rmse_db"] for d in dist])), h, timings, t1 - t0, t2 - t1)


def evaluate(in_path: str | Path, model: Model, bits: int | None = None, zstd_level: int | None = None,
             quality: float | None = None, kbps: float | None = None, chunk_seconds: float = 5.0, mono: bool = False,
             device: str = "cpu", batch_size: int = 4, vocoder: str | None = None,
             gl_iters: int | None = None, precision: str = "auto", kind: str = "auto") -> dict:
    """Round trip one file; quality is measured at 16 kHz against the resampled input.

    ``latent_mel_l1_db`` compares the VAE's decoded mel with the input's mel before any vocoder (the
    VAE and quantizer alone); the other quality figures re-analyse the decoded waveform. ``kind``
    'speech' adds PESQ-wb and STOI and scores ViSQOL in speech mode, 'audio' does neither, 'auto' takes
    speech when the file's name or a folder above it starts with "speech" (where those packages are installed).
    """
    timings = Timings()
    vocoder = vocoder or default_vocoder(model.name)
    t0 = time.perf_counter()
    with timings.stage("load_resample"):
        audio = read_audio(in_path, mono=mono)
    rt = round_trip(audio, model, bits, zstd_level, quality, kbps, chunk_seconds, mono, device, batch_size, vocoder,
                    gl_iters, timings, precision)
    h = rt.header
    return {
        "input": str(in_path), "model": model.name, **coder_summary(h), "coder_text": coder_text(h), "vocoder": vocoder,
        "gl_iters": gl_iters, "duration_s": h.duration, "channels": h.channels,
        **rate_figures(rt.file_size, h),
        "latent_mel_l1_db": rt.latent_mel_l1_db, "latent_mel_rmse_db": rt.latent_mel_rmse_db,
        **quality_metrics(audio.samples, rt.decoded),
        **perceptual(audio.samples, rt.decoded, is_speech(Path(in_path), kind)),
        "timings_s": {k: round(v, 4) for k, v in timings.seconds.items()},
        "encode_x_realtime": h.duration / max(rt.encode_s, 1e-9),
        "decode_x_realtime": h.duration / max(rt.decode_s, 1e-9),
        "total_s": time.perf_counter() - t0,
    }


def is_speech(path: Path, kind: str) -> bool:
    """``kind`` 'speech' or 'audio' as given; 'auto': the file's name or a folder above it starts with "speech"."""
    if kind != "auto":
        return kind == "speech"
    return any(part.lower().startswith("speech") for part in path.parts)


def eval_text(r: dict) -> str:
    """The lines `alat eval` prints for one :func:`evaluate` result."""
    stages = ", ".join(f"{k} {v:.3f}" for k, v in r["timings_s"].items())
    return "\n".join([
        f"{r['input']}: {r['duration_s']:.2f} s x {r['channels']} ch, model {r['model']}, {r['coder_text']}, "
        f"{r['vocoder']}",
        f"  size      {r['bytes']:,} bytes, {r['kbps']:.2f} kbps; ratio {r['ratio_vs_pcm16_16k']:.1f}x vs 16 kHz PCM, "
        f"{r['ratio_vs_pcm16_original']:.1f}x vs original-rate PCM, {r['ratio_vs_input_file']:.1f}x vs input file",
        f"  spectral  log-mel L1 {r['log_mel_l1_db']:.3f} dB, RMSE {r['log_mel_rmse_db']:.3f} dB; "
        f"MR-STFT {r['mrstft_db']:.3f} dB; VAE+quantizer alone (before vocoder): log-mel L1 "
        f"{r['latent_mel_l1_db']:.3f} dB",
        f"  waveform  SNR {r['snr_db']:.2f} dB, SI-SDR {r['si_sdr_db']:.2f} dB, correlation {r['correlation']:.4f}, "
        f"MSE {r['mse']:.3g}  (phase is invented by the vocoder: judge by the spectral lines)",
        *(["  heard     " + ", ".join(f"{LABELS[k]} {r[k]:.3f}" for k in PERCEPTUAL if k in r)]
          if any(k in r for k in PERCEPTUAL) else []),
        f"  speed     encode {r['encode_x_realtime']:.1f}x, decode {r['decode_x_realtime']:.1f}x real time; "
        f"stages (s): {stages}"])


ROW_KEYS = ("duration_s", "channels", "bytes", "kbps", "ratio_vs_pcm16_16k", "log_mel_l1_db", "log_mel_rmse_db",
            "mrstft_db", "latent_mel_l1_db", "snr_db", "si_sdr_db", "correlation", "encode_x_realtime",
            "decode_x_realtime")
PERCEPTUAL = ("visqol", "pesq_wb", "stoi")  # where their packages are installed; PESQ-wb and STOI on speech only
LABELS = {"visqol": "ViSQOL", "pesq_wb": "PESQ-wb", "stoi": "STOI"}
DECIMALS = {"duration_s": 2, "channels": 0, "bytes": 0, "kbps": 3, "ratio_vs_pcm16_16k": 1, "snr_db": 2,
            "si_sdr_db": 2, "correlation": 4, "encode_x_realtime": 1, "decode_x_realtime": 1}  # the rest: 3


def row_keys() -> list[str]:
    """The figures of a row of `alat eval` on a folder: ROW_KEYS and the perceptual scores installed."""
    return [*ROW_KEYS, *(k for k in PERCEPTUAL if k in perceptual_available())]


def rounded(row: dict[str, Any]) -> dict[str, Any]:
    """A row's figures at the decimals they are worth (a score to 3, bytes whole); a score a file has
    not got (PESQ-wb of music) stays empty."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, float):
            d = DECIMALS.get(k, 3)
            v = int(round(v)) if d == 0 else round(v, d)
        out[k] = v
    return out


def evaluate_folder(folder: Path, model: Model, **opts: Any) -> dict:
    """:func:`evaluate` on every audio file under ``folder``: one row per file (``ROW_KEYS``), the mean
    of each figure per sub-folder and over all ("."), and the files that failed with their one line."""
    from latentcodec.jobs.folders import input_files

    keys = row_keys()
    rows, failures = [], []
    for path in input_files(folder, "encode"):
        try:
            r = evaluate(path, model, **opts)
        except LatentCodecError as e:
            failures.append({"input": str(path), "error": str(e)})
            continue
        rows.append({"file": str(path.relative_to(folder)), **{k: r[k] for k in keys if k in r}})
    groups: dict[str, list[dict]] = {".": rows}
    for row in rows:
        parts = Path(row["file"]).parts[:-1]
        for i in range(1, len(parts) + 1):
            groups.setdefault(str(Path(*parts[:i])), []).append(row)
    means = [{"folder": name, "files": len(g),
              **{k: float(np.mean([r[k] for r in g if k in r])) for k in keys if any(k in r for r in g)}}
             for name, g in sorted(groups.items()) if g]
    return {"rows": rows, "folder_means": means, "failures": failures}
