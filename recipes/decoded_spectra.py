"""Are the harmonics above 2 kHz there? Speech clips coded at the default settings and decoded end to end
(VAE decoder in float32 on torch, so that decoders differ by their weights alone, and the paired vocoder) by
each decoder of the model's latent space, against the original: per band
(0-2, 2-4, 4-8 kHz) the log-spectral distance and the harmonic contrast (mean |second difference along
frequency| of the dB spectrum over the louder half of the frames, where a smeared harmonic flattens); the row
"exact mel" is the original's own log-mel through the same vocoder (what no VAE decoder can pass); with
``--png`` the first clip's spectrograms side by side.

    python recipes/decoded_spectra.py latentcodec-small-v4 --decoder own --decoder /data/dec-v4-gan-step250 \\
        --clips ../shared/corpus/dev --png recipes/records/spectra.png   # matplotlib for --png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import latentcodec  # noqa: E402
from latentcodec.audio.io import read_audio  # noqa: E402
from latentcodec.audio.mel import AUDIOLDM_MEL, log_mel  # noqa: E402
from latentcodec.vocoders.registry import default_vocoder, load_vocoder  # noqa: E402
from latentcodec.vocoders.windows import vocode_stream  # noqa: E402

N_FFT, HOP, RATE = 1024, 160, 16000
BANDS = ((0, 2000), (2000, 4000), (4000, 8000))


def spectrum_db(x: np.ndarray) -> np.ndarray:
    """(frames, N_FFT / 2 + 1) STFT magnitude in dB, Hann window, floored 100 dB under the clip's peak."""
    import librosa

    db = 20 * np.log10(np.abs(librosa.stft(x, n_fft=N_FFT, hop_length=HOP)).T + 1e-9)
    return np.maximum(db, db.max() - 100)


def band_figures(ref: np.ndarray, out: np.ndarray) -> list[tuple[float, float]]:
    """(log-spectral distance dB, harmonic contrast dB) of ``out`` per band; ``ref`` picks the louder frames."""
    n = min(len(ref), len(out))
    ref, out = ref[:n], out[:n]
    loud = ref.mean(axis=1) >= np.median(ref.mean(axis=1))
    figures = []
    for lo, hi in BANDS:
        b = slice(lo * N_FFT // RATE, hi * N_FFT // RATE + 1)
        lsd = float(np.sqrt(((out[loud, b] - ref[loud, b]) ** 2).mean(axis=1)).mean())
        figures.append((lsd, float(np.abs(np.diff(out[loud, b], 2, axis=1)).mean())))
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--decoder", action="append", required=True, help="own, or a decoder of the model's latent space")
    ap.add_argument("--clips", type=Path, action="append", required=True, help="folders; speech* files are used")
    ap.add_argument("--png", type=Path)
    args = ap.parse_args()
    clips = sorted(p for folder in args.clips for p in folder.rglob("speech*.wav"))
    rows: dict[str, list[list[tuple[float, float]]]] = {
        "original": [],
        "exact mel": [],
        **{d: [] for d in args.decoder},
    }
    vocoder = load_vocoder(default_vocoder(args.model), runtime="onnx")
    first: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            x = read_audio(str(clip), mono=True).samples[0]
            ref = spectrum_db(x)
            first.setdefault("original", ref)
            rows["original"].append(band_figures(ref, ref))
            mel = log_mel(x)
            exact = np.concatenate(
                list(vocode_stream([mel], len(mel), len(x), vocoder, float(np.log(AUDIOLDM_MEL.log_floor))))
            )
            rows["exact mel"].append(band_figures(ref, spectrum_db(exact)))
            coded = Path(tmp) / "x.alat"
            latentcodec.encode(x, RATE, coded, model=args.model, runtime="torch")
            for d in args.decoder:
                y, _ = latentcodec.decode(coded, decoder=d, runtime="torch", decoder_precision="float32")
                out = spectrum_db(y[:, 0] if y.ndim == 2 else y)
                first.setdefault(d, out)
                rows[d].append(band_figures(ref, out))
    print(f"{len(clips)} speech clips; per band: log-spectral distance dB / harmonic contrast dB (louder frames)")
    print("| decoder | " + " | ".join(f"{lo / 1000:g}-{hi / 1000:g} kHz" for lo, hi in BANDS) + " |")
    print("|---|" + "---|" * len(BANDS))
    for name, r in rows.items():
        m = np.mean(r, axis=0)
        print(f"| {name} | " + " | ".join(f"{lsd:.2f} / {c:.2f}" for lsd, c in m) + " |")
    if args.png:
        plot(first, clips[0].name, args.png)


def plot(spectra: dict[str, np.ndarray], clip: str, png: Path) -> None:
    """The first 3 s of each spectrogram, 0-8 kHz, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(spectra), figsize=(4 * len(spectra), 3.4), sharey=True)
    for ax, (name, db) in zip(axes, spectra.items()):
        ax.imshow(
            db[:300].T,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=db.max() - 80,
            vmax=db.max(),
            extent=(0, 3, 0, 8),
        )
        ax.axhline(2, color="w", lw=0.5, ls=":")
        ax.set_title(Path(name).name, fontsize=9)
        ax.set_xlabel("s")
    axes[0].set_ylabel(f"kHz ({clip})")
    fig.tight_layout()
    fig.savefig(png, dpi=80)


if __name__ == "__main__":
    main()
