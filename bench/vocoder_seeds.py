"""End to end on the dev clips, each Griffin-Lim-based vocoder decoding the same files from several seeds
of Griffin-Lim's starting phase: per kind the mean over seeds and the range of the per-seed means, so a
difference between two vocoders can be told from the metrics' reaction to another, equally good, phase.

    python bench/vocoder_seeds.py [--vocoders V W ...] [--seeds 0 1 2] [--quality 4] [--mel-below HZ ...]
                                  [--corpus DIR] [--json OUT]

``--mel-below HZ`` also decodes with each network's magnitude replaced below HZ by the mel's own
inverse (what plain Griffin-Lim starts from), blended back to the network's over the octave above HZ:
where in frequency a vocoder gains or loses against Griffin-Lim. Vocoders that are not Griffin-Lim
(Vocos, HiFi-GAN) have no seed and run once.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from coder_rd import DEV, SCORES, scores  # noqa: E402

from latentcodec.audio.io import read_audio  # noqa: E402
from latentcodec.codec import decode_file, encode_audio  # noqa: E402
from latentcodec.metrics import Visqol  # noqa: E402
from latentcodec.models.loader import load_model  # noqa: E402
from latentcodec.models.registry import DEFAULT_MODEL
from latentcodec.vocoders.registry import load_vocoder  # noqa: E402
from latentcodec.vocoders.griffinlim import GriffinLimVocoder, mel_to_linear
from latentcodec.vocoders.windows import Vocoder
from latentcodec.options import DecodeOptions, EncodeOptions


def mel_below(voc: GriffinLimVocoder, hz: float) -> None:
    """``voc``'s magnitude below ``hz`` from the mel's inverse, log-blended to its own over the next octave."""
    own, cfg = voc.magnitude, voc.cfg
    freqs = torch.arange(cfg.n_fft // 2 + 1) * cfg.sample_rate / cfg.n_fft
    w = torch.clamp(torch.log2(freqs.clamp(min=1.0) / hz), 0, 1)[:, None]  # 0: the inverse, 1: its own

    def magnitude(log_mel: torch.Tensor) -> torch.Tensor:
        logs = [torch.log(m.clamp(min=1e-8)) for m in (own(log_mel), mel_to_linear(log_mel, cfg))]
        return torch.exp(w * logs[0] + (1 - w) * logs[1])

    voc.magnitude = magnitude


def variants(names: list[str], below: list[float]) -> dict[str, Callable[[int], Vocoder]]:
    """Label -> (seed -> vocoder), for every name and, for networks, every ``--mel-below``."""
    def make(name: str, hz: float | None) -> Callable[[int], Vocoder]:
        def build(seed: int) -> Vocoder:
            voc = load_vocoder(name)
            if isinstance(voc, GriffinLimVocoder):
                voc.seed = seed
                if hz is not None:
                    mel_below(voc, hz)
            return voc
        return build

    out = {}
    for name in names:
        out[name] = make(name, None)
        if name != "griffinlim" and isinstance(load_vocoder(name), GriffinLimVocoder):
            out.update({f"{name}, mel's inverse below {hz:g} Hz": make(name, hz) for hz in below})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocoders", nargs="+", default=["griffinlim", "latentcodec-maggl-v1",
                                                      "latentcodec-maggl-small-v2c"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--quality", type=float, default=4.0)
    ap.add_argument("--mel-below", type=float, nargs="*", default=[])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--corpus", type=Path, default=DEV)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    model, visqol = load_model(args.model), Visqol()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = []
        for path in sorted(args.corpus.glob("*.wav")):
            audio, alat = read_audio(path), Path(tmp) / f"{path.stem}.alat"
            encode_audio(audio, alat, EncodeOptions(model=model, quality=args.quality))
            clips.append((path.stem, path.stem.split("_")[0], audio.samples[0], alat))
        for label, build in variants(args.vocoders, args.mel_below).items():
            seeds = args.seeds if isinstance(build(0), GriffinLimVocoder) else args.seeds[:1]
            rows = []  # one per (seed, clip)
            for seed in seeds:
                voc = build(seed)
                for stem, kind, ref, alat in clips:
                    decode_file(alat, Path(tmp) / "d.wav", DecodeOptions(model=model, vocoder=voc))
                    deg = sf.read(str(Path(tmp) / "d.wav"), dtype="float32")[0]
                    rows.append({"seed": seed, "clip": stem, "kind": kind, **scores(ref, deg, kind, visqol)})
            results[label] = rows
            print(summary(label, rows, seeds), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def summary(label: str, rows: list[dict], seeds: list[int]) -> str:
    """Per kind: each score's mean over seeds and clips, and in brackets the range of its per-seed means."""
    parts = []
    for kind in sorted({r["kind"] for r in rows}):
        sel = [r for r in rows if r["kind"] == kind]
        figs = []
        for key in (k for k in SCORES if all(k in r for r in sel)):
            per_seed = [np.mean([r[key] for r in sel if r["seed"] == s]) for s in seeds]
            figs.append(f"{key} {np.mean(per_seed):.3f} [{min(per_seed):.3f}-{max(per_seed):.3f}]")
        parts.append(f"{kind}: " + ", ".join(figs))
    return f"{label} ({len(seeds)} seed{'s' * (len(seeds) > 1)})\n    " + "\n    ".join(parts)


if __name__ == "__main__":
    main()
