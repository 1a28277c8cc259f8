"""Are the harmonics sharp? The log-mel of speech clips as VAEs decode them (encoded and decoded whole, no
quantizer), against the original: log-mel L1 and the local contrast along frequency (mean |second
difference| over the lower 32 bands, where a smeared harmonic flattens) and along time; with ``--png``, the
first clip's mels side by side.

    python recipes/compare_mels.py latentcodec-small-v2 /data/v3-step375 --clips ../shared/corpus/dev \\
        --png recipes/records/mels.png    # needs the torch extra (and matplotlib for --png)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latentcodec.audio.io import read_audio  # noqa: E402
from latentcodec.audio.mel import log_mel  # noqa: E402
from latentcodec.constants import DB_PER_NEPER  # noqa: E402
from latentcodec.models.loader import load_model  # noqa: E402
from latentcodec.runtime.torch_vae import decode_windows, encode_windows  # noqa: E402


def contrasts(mel: np.ndarray) -> tuple[float, float]:
    """(frequency, time) local contrast of a (frames, n_mels) natural-log mel, in dB."""
    low = mel[:, :32] * DB_PER_NEPER
    return float(np.abs(np.diff(low, 2, axis=1)).mean()), float(np.abs(np.diff(low, 1, axis=0)).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="shipped model names or model folders")
    ap.add_argument("--clips", type=Path, action="append", required=True, help="folders; speech* files are used")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--png", type=Path)
    args = ap.parse_args()
    clips = sorted(p for folder in args.clips for p in folder.rglob("speech*.wav"))
    models = {name: load_model(name, runtime="torch") for name in args.models}
    rows: dict[str, list[tuple[float, float, float]]] = {"original": [], **{name: [] for name in models}}
    first: dict[str, np.ndarray] = {}
    for clip in clips:
        x = read_audio(str(clip), mono=True).samples[0][:int(16000 * args.seconds)]
        mel = log_mel(x).astype(np.float32)
        mel = mel[:len(mel) // 4 * 4]
        first.setdefault("original", mel)
        rows["original"].append((0.0, *contrasts(mel)))
        for name, m in models.items():
            out = decode_windows(m.module, encode_windows(m.module, mel[None]))[0]
            first.setdefault(name, out)
            rows[name].append((float(np.abs(out - mel).mean() * DB_PER_NEPER), *contrasts(out)))
    print(f"{len(clips)} speech clips; log-mel L1 dB, contrast along frequency and time, dB")
    for name, r in rows.items():
        l1, freq, time_ = np.mean(r, axis=0)
        print(f"{name}: L1 {l1:.3f}, frequency contrast {freq:.3f}, time contrast {time_:.3f}")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(first), figsize=(4 * len(first), 3.2), sharey=True)
        for ax, (name, mel) in zip(axes, first.items()):
            ax.imshow(mel[:300].T * DB_PER_NEPER, origin="lower", aspect="auto", cmap="magma", vmin=-90, vmax=10)
            ax.set_title(Path(name).name, fontsize=9)
            ax.set_xlabel("frame (10 ms)")
        axes[0].set_ylabel(f"mel band ({clips[0].name})")
        fig.tight_layout()
        fig.savefig(args.png, dpi=80)


if __name__ == "__main__":
    main()
