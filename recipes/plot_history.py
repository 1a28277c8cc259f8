"""Training curves against hours, from runs' own validation (``alat train``'s history): speech PESQ-wb and STOI
through the run's validation vocoder, and the coded log-mel L1 per kind; dashed, the bounds given with
``--bound``. Each run is LABEL=PATH, PATH a run folder's checkpoint.safetensors or a model's training.json.

    python recipes/plot_history.py "run C=/data/dec-v4-gan/checkpoint.safetensors" --bound pesq=2.45 \\
        --bound stoi=0.925 --png recipes/records/curve.png      # needs the torch extra and matplotlib
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PANELS = (("val_pesq_wb_speech", "speech PESQ-wb", "pesq"), ("val_stoi_speech", "speech STOI", "stoi"))
KINDS = ("music", "effects", "speech")


def history(path: Path) -> list[dict]:
    """The validation entries of a checkpoint (safetensors, read as data) or of a training.json."""
    if path.suffix == ".json":
        return json.loads(path.read_text())["history"]
    from latentcodec.training.checkpoint import load_state

    return load_state(path)["history"]


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="LABEL=PATH")
    ap.add_argument("--bound", action="append", default=[], help="pesq=X or stoi=X")
    ap.add_argument("--png", type=Path, required=True)
    args = ap.parse_args()
    bounds = {k: float(v) for k, v in (b.split("=", 1) for b in args.bound)}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for label, path in (r.split("=", 1) for r in args.runs):
        h = history(Path(path))
        hours = [e["hours"] for e in h]
        for ax, (key, _, _) in zip(axes, PANELS):
            ax.plot(hours, [e[key] for e in h], "o-", label=label)
        for kind in KINDS:
            axes[2].plot(hours, [e[f"val_coded_l1_db_{kind}"] for e in h], "o-", label=f"{label}: {kind}")
    for ax, (_, title, bound) in zip(axes, PANELS):
        if bound in bounds:
            ax.axhline(bounds[bound], ls="--", color="k", lw=0.8, label=f"bound {bounds[bound]:g}")
        ax.set_title(title, fontsize=10)
    axes[2].set_title("coded log-mel L1, dB", fontsize=10)
    for ax in axes:
        ax.set_xlabel("hours of training")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.png, dpi=80)


if __name__ == "__main__":
    main()
