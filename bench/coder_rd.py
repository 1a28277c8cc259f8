"""Rate-distortion of the coders on the dev clips, per kind: real file sizes, end-to-end log-mel L1.

    python bench/coder_rd.py [--corpus DIR] [bits=4 quality=4 kbps=6 ...] [--json OUT]

Each argument is one setting (``bits=N`` for version 1 with zstd 19, ``quality=Q`` or ``kbps=K`` for the
version-2 entropy coder); the default list runs version 1 at 4 bits and version 2 from about 3 kbps up.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from latentcodec.audio_io import read_audio
from latentcodec.evaluate import round_trip
from latentcodec.fileinfo import rate_figures
from latentcodec.metrics import quality as quality_metrics
from latentcodec.models import DEFAULT_MODEL, load_model

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "dev"
SETTINGS = ["bits=4", "quality=2", "quality=3", "quality=4", "quality=5", "quality=6", "kbps=3", "kbps=6"]


def setting(text: str) -> dict:
    key, value = text.split("=")
    return {key: int(value) if key == "bits" else float(value)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("settings", nargs="*", default=SETTINGS)
    ap.add_argument("--corpus", type=Path, default=DEV)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    model = load_model(DEFAULT_MODEL)
    clips = sorted(args.corpus.glob("*.wav"))
    audio = [read_audio(p) for p in clips]
    kinds = [p.stem.split("_")[0] for p in clips]
    rows = []
    for text in args.settings:
        for p, a, kind in zip(clips, audio, kinds):
            rt = round_trip(a, model, **setting(text))
            rows.append({"setting": text, "clip": p.stem, "kind": kind,
                         "kbps": rate_figures(rt.file_size, rt.header)["kbps"],
                         "log_mel_l1_db": quality_metrics(a.samples, rt.decoded)["log_mel_l1_db"],
                         "vae_alone_l1_db": rt.latent_mel_l1_db})
        mine = [r for r in rows if r["setting"] == text]
        per_kind = "  ".join(f"{k} {np.mean([r['kbps'] for r in mine if r['kind'] == k]):.2f} kbps "
                             f"{np.mean([r['log_mel_l1_db'] for r in mine if r['kind'] == k]):.3f} dB"
                             for k in sorted(set(kinds)))
        kb = [r["kbps"] for r in mine]
        print(f"{text:<12} all {np.mean(kb):.2f} kbps (min {min(kb):.2f}, max {max(kb):.2f}) "
              f"{np.mean([r['log_mel_l1_db'] for r in mine]):.3f} dB  |  {per_kind}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
