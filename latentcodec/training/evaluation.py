"""Listening figures of a vocoder on validation clips, for both trainers: the vocoder's (its own output) and
the VAE's (the mels it decodes, vocoded by a fixed vocoder, so PESQ-wb follows the VAE's steps)."""

from __future__ import annotations

import math

import numpy as np

from latentcodec.audio.mel import AUDIOLDM_MEL, log_mel
from latentcodec.metrics import log_mel_distance
from latentcodec.vocoders.windows import Vocoder, vocode_stream


def evaluate_vocoder(vocoder: Vocoder, clips: list[tuple[str, str, np.ndarray, np.ndarray]]) -> dict:
    """Log-mel L1 (dB) against the audio's exact mel of each clip's mel vocoded through the codec's
    windowing; PESQ-wb and STOI on speech."""
    from pesq import pesq
    from pystoi import stoi

    by_kind: dict[str, list[float]] = {}
    pesqs, stois = [], []
    for _, kind, x, mel in clips:
        y = np.concatenate(
            list(vocode_stream(iter([mel]), len(mel), len(x), vocoder, math.log(AUDIOLDM_MEL.log_floor)))
        )
        by_kind.setdefault(kind, []).append(log_mel_distance(log_mel(x), log_mel(y))["log_mel_l1_db"])
        if kind == "speech":
            pesqs.append(float(pesq(AUDIOLDM_MEL.sample_rate, x.astype(np.float64), y.astype(np.float64), "wb")))
            stois.append(float(stoi(x, y, AUDIOLDM_MEL.sample_rate)))
    return {
        "log_mel_l1_db": float(np.mean([v for vs in by_kind.values() for v in vs])),
        "log_mel_l1_db_by_kind": {k: float(np.mean(v)) for k, v in sorted(by_kind.items())},
        "pesq_wb_speech": float(np.mean(pesqs)) if pesqs else None,
        "stoi_speech": float(np.mean(stois)) if stois else None,
    }
