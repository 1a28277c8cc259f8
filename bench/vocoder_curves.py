"""The vocoder candidates' learning curves side by side: validation PESQ-wb (dev speech) and log-mel L1
against training hours, from each run's training.json (the shipped vocoders' by default), with
Griffin-Lim's figures on the same mels as dashed lines.

    python bench/vocoder_curves.py [training.json ...] [--out bench/vocoder_curves.png]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from latentcodec.vocoders.registry import shipped_vocoders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "vocoder_curves.png")
    args = ap.parse_args()
    records = args.records or [folder / "training.json" for folder in shipped_vocoders().values()]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for path in records:
        r = json.loads(path.read_text())
        label = f"{path.parent.name} ({r['config'].get('architecture', 'vocos')}" \
                f"{', on ' + r['config']['coded_by'] + ' mels' if r['config'].get('coded_by') else ''})"
        hist = [h for h in r["history"] if "val" in h]
        for ax, key in zip(axes, ("pesq_wb_speech", "log_mel_l1_db")):
            line, = ax.plot([h["hours"] for h in hist], [h["val"][key] for h in hist], marker=".", label=label)
            ax.axhline(r["griffinlim"][key], ls="--", c=line.get_color(), lw=0.8)
        print(f"{label}: " + ", ".join(f"step {h['step']} ({h['hours']:.2f} h) PESQ-wb {h['val']['pesq_wb_speech']:.2f}"
                                       for h in hist[:: max(1, len(hist) // 6)] + hist[-1:]))
    for ax, title in zip(axes, ("PESQ-wb, dev speech (higher is better)", "log-mel L1 dB, dev clips (lower is better)")):
        ax.set_title(title)
        ax.set_xlabel("training hours (2-core CPU)")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Validation against training time; dashed: Griffin-Lim on the same mels", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
