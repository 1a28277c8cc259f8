"""Where a mel vocoder loses speech quality: Griffin-Lim and phase from oracle magnitudes on the dev speech.

    python bench/vocoder_oracles.py [--corpus DIR]

For each speech clip, from its exact AudioLDM mel: Griffin-Lim (16 iterations) on the mel's least-squares
inverse (what plain Griffin-Lim gets), on the true |STFT|, and on the inverse with the true |STFT| put in
below 1, 2 and 4 kHz; and the inverse magnitude with the true phase. PESQ-wb and STOI, means over clips.
This is why `latentcodec-maggl-v1` predicts the magnitude and leaves the phase to Griffin-Lim.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from pesq import pesq
from pystoi import stoi

from latentcodec.audio.mel import AUDIOLDM_MEL as C
from latentcodec.audio.mel import log_mel
from latentcodec.training.vocoder import dev_clips
from latentcodec.vocoders.griffinlim import griffin_lim, mel_to_linear, phase_of

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "dev"


def variants(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each oracle's waveform for one clip (samples at 16 kHz, a whole number of hops)."""
    win = torch.hann_window(C.win)
    true = torch.stft(x, C.n_fft, C.hop, C.win, win, center=True, return_complex=True).abs()
    nnls = mel_to_linear(torch.from_numpy(log_mel(x.numpy())))

    def true_below(hz: float) -> torch.Tensor:
        k = int(hz / (C.sample_rate / 2) * (C.n_fft // 2))
        return torch.cat([true[:k], nnls[k:]])

    out = {"Griffin-Lim on the mel's inverse": griffin_lim(nnls), "Griffin-Lim on the true |STFT|": griffin_lim(true)}
    out |= {f"Griffin-Lim, true |STFT| below {hz / 1000:g} kHz": griffin_lim(true_below(hz)) for hz in (1000, 2000, 4000)}
    out["the mel's inverse with the true phase"] = torch.istft(nnls * phase_of(x), C.n_fft, C.hop, C.win, win,
                                                               center=True, length=len(x))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEV)
    args = ap.parse_args()
    scores: dict[str, list[tuple[float, float]]] = {}
    for _, kind, audio, _ in dev_clips(args.corpus):
        if kind != "speech":
            continue
        x = torch.from_numpy(audio[:(len(audio) - 1) // C.hop * C.hop]).float()
        ref = x.numpy().astype(np.float64)
        for name, y in variants(x).items():
            deg = y.numpy().astype(np.float64)[:len(ref)]
            scores.setdefault(name, []).append((pesq(C.sample_rate, ref, deg, "wb"), stoi(ref, deg, C.sample_rate)))
    for name, s in scores.items():
        a = np.array(s)
        print(f"{name:<45} PESQ-wb {a[:, 0].mean():.2f}  STOI {a[:, 1].mean():.3f}")


if __name__ == "__main__":
    main()
