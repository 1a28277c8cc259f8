"""`alat eval`: encode and decode in a temporary folder, then measure bytes, speed and quality."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from latentcodec.audio.io import Audio, read_audio
from latentcodec.audio.mel import log_mel_frames
from latentcodec.codec import decode_file, encode_audio, resolve_model
from latentcodec.constants import OWN_DECODER
from latentcodec.errors import LatentCodecError
from latentcodec.format.header import Header
from latentcodec.info import coder_summary, rate_figures
from latentcodec.metrics import log_mel_distance, perceptual, perceptual_available
from latentcodec.metrics import quality as quality_metrics
from latentcodec.options import DecodeOptions, EncodeOptions
from latentcodec.timings import Timings
from latentcodec.vocoders.registry import decoder_name, default_vocoder


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


def round_trip(audio: Audio, encode: EncodeOptions, decode: DecodeOptions, timings: Timings | None = None) -> RoundTrip:
    """Encode ``audio`` to a temporary .alat, decode it to a temporary wav, and read that back."""
    timings = timings or Timings()
    mels: dict[int, list[np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="alat-eval-") as tmp:
        alat, wav = Path(tmp) / "x.alat", Path(tmp) / "x.wav"
        t0 = time.perf_counter()
        enc = encode_audio(audio, alat, encode, timings=timings)
        t1 = time.perf_counter()
        decode_file(
            alat,
            wav,
            replace(decode, model=decode.model or encode.model),
            timings=timings,
            mel_sink=lambda k, c, m: mels.setdefault(c, []).append(m),
        )
        t2 = time.perf_counter()
        decoded = sf.read(str(wav), dtype="float32", always_2d=True)[0].T
    h = enc.header
    n_frames = h.num_samples // h.mel.hop + 1
    dist = [
        log_mel_distance(log_mel_frames(x, 0, n_frames, h.mel, o, g), np.concatenate(mels[c])[:n_frames])
        for c, (x, o, g) in enumerate(zip(audio.samples, h.offsets, h.gains))
    ]
    return RoundTrip(
        enc.file_size,
        decoded,
        float(np.mean([d["log_mel_l1_db"] for d in dist])),
        float(np.mean([d["log_mel_rmse_db"] for d in dist])),
        h,
        timings,
        t1 - t0,
        t2 - t1,
    )


def evaluate(
    in_path: str | Path,
    encode: EncodeOptions = EncodeOptions(),
    decode: DecodeOptions = DecodeOptions(),
    kind: str = "auto",
) -> dict:
    """Round trip one file; quality is measured at 16 kHz against the resampled input.

    ``latent_mel_l1_db`` compares the VAE's decoded mel with the input's mel before any vocoder (the
    VAE and quantizer alone); the other quality figures re-analyse the decoded waveform. ``kind``
    'speech' adds PESQ-wb and STOI and scores ViSQOL in speech mode, 'audio' does neither, 'auto' takes
    speech when the file's name or a folder above it starts with "speech" (where those packages are installed).
    The model is loaded once for both directions (``encode.model``; ``decode.model`` when given).
    """
    timings = Timings()
    model = resolve_model(encode, precision=encode.precision)
    encode = replace(encode, model=model)
    vocoder = decode.vocoder or default_vocoder(model.name)
    t0 = time.perf_counter()
    with timings.stage("load_resample"):
        audio = read_audio(in_path, mono=encode.mono)
    rt = round_trip(audio, encode, replace(decode, vocoder=vocoder), timings)
    h = rt.header
    return {
        "input": str(in_path),
        "model": model.name,
        **coder_summary(h),
        "vocoder": vocoder,
        "decoder": decoder_name(model.name, decode.decoder) or OWN_DECODER,
        "gl_iters": decode.gl_iters,
        "duration_s": h.duration,
        "channels": h.channels,
        **rate_figures(rt.file_size, h),
        "latent_mel_l1_db": rt.latent_mel_l1_db,
        "latent_mel_rmse_db": rt.latent_mel_rmse_db,
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


ROW_KEYS = (
    "duration_s",
    "channels",
    "bytes",
    "kbps",
    "ratio_vs_pcm16_16k",
    "log_mel_l1_db",
    "log_mel_rmse_db",
    "mrstft_db",
    "latent_mel_l1_db",
    "snr_db",
    "si_sdr_db",
    "correlation",
    "encode_x_realtime",
    "decode_x_realtime",
)
PERCEPTUAL = ("visqol", "pesq_wb", "stoi")  # where their packages are installed; PESQ-wb and STOI on speech only


def row_keys() -> list[str]:
    """The figures of a row of `alat eval` on a folder: ROW_KEYS and the perceptual scores installed."""
    return [*ROW_KEYS, *(k for k in PERCEPTUAL if k in perceptual_available())]


def evaluate_folder(
    folder: Path, encode: EncodeOptions = EncodeOptions(), decode: DecodeOptions = DecodeOptions(), kind: str = "auto"
) -> dict:
    """:func:`evaluate` on every audio file under ``folder``: one row per file (``ROW_KEYS``), the mean
    of each figure per sub-folder and over all ("."), and the files that failed with their one line."""
    from latentcodec.jobs.folders import audio_files

    keys = row_keys()
    encode = replace(encode, model=resolve_model(encode, precision=encode.precision, seconds=None))  # many files
    rows, failures = [], []
    for path in audio_files(folder):
        try:
            r = evaluate(path, encode, decode, kind)
        except LatentCodecError as e:
            failures.append({"input": str(path), "error": str(e)})
            continue
        rows.append({"file": str(path.relative_to(folder)), **{k: r[k] for k in keys if k in r}})
    groups: dict[str, list[dict]] = {".": rows}
    for row in rows:
        parts = Path(row["file"]).parts[:-1]
        for i in range(1, len(parts) + 1):
            groups.setdefault(str(Path(*parts[:i])), []).append(row)
    means = [
        {
            "folder": name,
            "files": len(g),
            **{k: float(np.mean([r[k] for r in g if k in r])) for k in keys if any(k in r for r in g)},
        }
        for name, g in sorted(groups.items())
        if g
    ]
    return {"rows": rows, "folder_means": means, "failures": failures}
