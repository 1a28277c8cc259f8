"""Quality metrics, shared by `alat eval`, the benchmarks and users.

Griffin-Lim invents phase, so waveform metrics (MSE, SNR, correlation, SI-SDR) say little about a
mel codec; they are reported for comparison with the first test report. Judge by the spectral ones:
log-mel distance in dB on the codec's own front end, and a multi-resolution STFT log-magnitude
distance in dB. Perceptual scores (ViSQOL, and PESQ-wb and STOI on speech) come from their own packages
when they are installed (the ``bench`` extra), and are left out otherwise.
"""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache

import numpy as np
import soxr

from latentcodec.audio.mel import hann, log_mel
from latentcodec.constants import DB_PER_NEPER, LOG_FLOOR

MRSTFT_SIZES = (512, 1024, 2048)
MAG_FLOOR = LOG_FLOOR  # -100 dB, the same floor as the mel front end


def _align(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = min(len(ref), len(est))
    return ref[:n].astype(np.float64), est[:n].astype(np.float64)


def waveform_metrics(ref: np.ndarray, est: np.ndarray) -> dict[str, float]:
    """MSE, SNR (dB), Pearson correlation and SI-SDR (dB) of one channel."""
    r, e = _align(ref, est)
    err = r - e
    mse = float(np.mean(err**2))
    p_ref = float(np.sum(r**2))
    snr = 10 * math.log10(p_ref / max(float(np.sum(err**2)), 1e-20)) if p_ref > 0 else float("nan")
    rc, ec = r - r.mean(), e - e.mean()
    denom = math.sqrt(float(np.sum(rc**2) * np.sum(ec**2)))
    corr = float(np.sum(rc * ec) / denom) if denom > 0 else float("nan")
    alpha = float(np.dot(e, r) / p_ref) if p_ref > 0 else 0.0
    target = alpha * r
    resid = e - target
    t_pow = float(np.sum(target**2))
    si_sdr = 10 * math.log10(t_pow / max(float(np.sum(resid**2)), 1e-20)) if t_pow > 0 else float("nan")
    return {"mse": mse, "snr_db": snr, "correlation": corr, "si_sdr_db": si_sdr}


def log_mel_distance(ref_mel: np.ndarray, est_mel: np.ndarray) -> dict[str, float]:
    """L1 and RMSE in dB between two natural-log mels (frames, bands) of the same length."""
    n = min(len(ref_mel), len(est_mel))
    d = (ref_mel[:n].astype(np.float64) - est_mel[:n].astype(np.float64)) * DB_PER_NEPER
    return {"log_mel_l1_db": float(np.mean(np.abs(d))), "log_mel_rmse_db": float(np.sqrt(np.mean(d**2)))}


def mrstft_db(ref: np.ndarray, est: np.ndarray, sizes: tuple[int, ...] = MRSTFT_SIZES) -> float:
    """Mean over STFT sizes of the mean |dB difference| of magnitudes (hop = size/4, Hann)."""
    r, e = (a.astype(np.float32) for a in _align(ref, est))
    out = []
    for n in sizes:
        if len(r) < n // 2 + 1:
            continue
        mags = [
            np.maximum(
                np.abs(
                    np.fft.rfft(
                        np.lib.stride_tricks.sliding_window_view(np.pad(a, n // 2, mode="reflect"), n)[:: n // 4]
                        * hann(n),
                        axis=1,
                    )
                ),
                np.float32(MAG_FLOOR),
            )
            for a in (r, e)
        ]
        out.append(float(np.abs(20 * (np.log10(mags[0]) - np.log10(mags[1]))).mean()))
    return float(np.mean(out)) if out else float("nan")


def quality(ref: np.ndarray, est: np.ndarray) -> dict[str, float]:
    """All metrics of a (channels, samples) reference and estimate at 16 kHz, averaged over channels."""
    per = []
    for r, e in zip(np.atleast_2d(ref), np.atleast_2d(est)):
        m = waveform_metrics(r, e)
        m.update(log_mel_distance(log_mel(r.astype(np.float32)), log_mel(e.astype(np.float32))))
        m["mrstft_db"] = mrstft_db(r, e)
        per.append(m)
    return {k: float(np.mean([p[k] for p in per])) for k in per[0]}


def speech_scores(ref: np.ndarray, deg: np.ndarray) -> dict[str, float]:
    """PESQ-wb and STOI of one 16 kHz speech channel (needs the pesq and pystoi packages)."""
    from pesq import pesq
    from pystoi import stoi

    r, d = _align(ref, deg)
    return {"pesq_wb": float(pesq(16000, r, d, "wb")), "stoi": float(stoi(r, d, 16000))}


class Visqol:
    """ViSQOL v3 MOS-LQO (the visqol-python package): audio mode at 48 kHz; speech mode at 16 kHz for speech."""

    def __init__(self) -> None:
        from visqol import VisqolApi

        self.audio, self.speech = VisqolApi(), VisqolApi()
        self.audio.create(mode="audio")
        self.speech.create(mode="speech", use_lattice_model=False)

    def __call__(self, ref: np.ndarray, deg: np.ndarray, kind: str) -> float:
        ref, deg = _align(ref, deg)
        if kind == "speech":
            return float(self.speech.measure_from_arrays(ref, deg, 16000).moslqo)
        up = [soxr.resample(a, 16000, 48000, quality="HQ") for a in (ref, deg)]
        return float(self.audio.measure_from_arrays(up[0], up[1], 48000).moslqo)


@lru_cache(maxsize=1)
def _visqol() -> Visqol:
    return Visqol()


def perceptual_available() -> list[str]:
    """The perceptual scores this installation can give: visqol, pesq_wb and stoi (speech only)."""
    have = importlib.util.find_spec
    return (["visqol"] if have("visqol") else []) + (["pesq_wb", "stoi"] if have("pesq") and have("pystoi") else [])


def perceptual(ref: np.ndarray, est: np.ndarray, speech: bool) -> dict[str, float]:
    """The perceptual scores installed, of (channels, samples) 16 kHz audio, averaged over channels: ViSQOL
    (speech or audio mode; none for a clip too short for its patches, about a second), and on speech PESQ-wb
    and STOI."""
    names = perceptual_available()
    per = []
    for r, e in zip(np.atleast_2d(ref), np.atleast_2d(est)):
        s = {}
        if "visqol" in names:
            try:
                s["visqol"] = _visqol()(r, e, "speech" if speech else "audio")
            except ValueError:  # ViSQOL's patches need about a second: a shorter clip gets no score
                pass
        if speech and "pesq_wb" in names:
            s.update(speech_scores(r, e))
        per.append(s)
    return {k: float(np.mean([p[k] for p in per])) for k in per[0] if all(k in p for p in per)}
