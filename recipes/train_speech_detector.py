"""Fit the speech detector of a routed vocoder (``latentcodec/routed_vocoder.py``) on the mels that a VAE
decodes from training audio, and write the router's folder.

    python recipes/train_speech_detector.py /data/alat-train latentcodec/weights/latentcodec-maggl-routed-v1 \
        --val ../shared/corpus/dev

A seeded sample of files of each kind (at most ``--seconds`` of each, from a random start) is coded at the
default setting by ``--coded-by``; every decoded frame is an example, labelled speech by its folder. A fifth
of the files is held out for the frame accuracy the record reports. The dev clips (``--val``, never fitted)
get the share of their frames routed to the speech network, by kind. Writes config.json, the detector's
weights and training.json; MODEL.md in the destination is kept.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from latentcodec.audio.io import AUDIO_SUFFIXES, read_audio
from latentcodec.audio.mel import normalization_stats
from latentcodec.models.registry import DEFAULT_MODEL
from latentcodec.training.vocoder import coded_pairs, dev_clips
from latentcodec.vocoders.routed import save_router
from latentcodec.vocoders.speech_detector import DetectorConfig, SpeechDetector, fit_detector, mel_features

KIND_WEIGHTS = {"speech": 0.5, "music": 0.3, "effects": 0.2}  # each kind's share of the fit's total weight


def sample_audio(data: Path, per_kind: int, seconds: float, rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """Up to ``per_kind`` files of each kind folder, each normalised as the codec does and cut to ``seconds``."""
    groups: dict[str, list[np.ndarray]] = {}
    for kind in KIND_WEIGHTS:
        paths = sorted(p for p in (data / kind).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        for i in rng.permutation(len(paths))[:per_kind]:
            x = read_audio(paths[i], mono=True).samples[0]
            n = int(seconds * 16000)
            start = int(rng.integers(0, max(1, len(x) - n + 1)))
            off, gain = normalization_stats(x)
            groups.setdefault(kind, []).append(((x[start:start + n] - off) * gain).astype(np.float32))
    return groups


def frames_of(mels: list[np.ndarray], cfg: DetectorConfig) -> torch.Tensor:
    return torch.cat([mel_features(torch.from_numpy(m.astype(np.float32)), cfg) for m in mels])


def frame_accuracy(detector: SpeechDetector, mels: dict[str, list[np.ndarray]]) -> dict[str, float]:
    """Per kind, the share of frames (features file by file) whose decision matches the kind."""
    return {k: float(np.mean(np.concatenate([(detector.logits(torch.from_numpy(m)) > 0).numpy() == (k == "speech")
                                             for m in v]))) for k, v in mels.items() if v}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--val", type=Path)
    ap.add_argument("--coded-by", default=DEFAULT_MODEL)
    ap.add_argument("--speech", default="latentcodec-maggl-small-v2c")
    ap.add_argument("--other", default="latentcodec-maggl-v1")
    ap.add_argument("--files-per-kind", type=int, default=250)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0, cfg = time.time(), DetectorConfig()
    groups = sample_audio(args.data, args.files_per_kind, args.seconds, np.random.default_rng(args.seed))
    mels = {k: [m.astype(np.float32) for _, m in v] for k, v in coded_pairs(groups, args.coded_by, print).items()}
    fit, held = {k: v[len(v) // 5:] for k, v in mels.items()}, {k: v[:len(v) // 5] for k, v in mels.items()}
    feats = {k: frames_of(v, cfg) for k, v in fit.items()}
    x = torch.cat(list(feats.values()))
    y = torch.cat([torch.full((len(f),), float(k == "speech")) for k, f in feats.items()])
    w = torch.cat([torch.full((len(f),), KIND_WEIGHTS[k] / len(f)) for k, f in feats.items()])
    detector = fit_detector(x, y, w, cfg)
    record: dict = {"coded_by": args.coded_by, "seed": args.seed, "files_per_kind": args.files_per_kind,
                    "seconds_per_file": args.seconds, "kind_weights": KIND_WEIGHTS,
                    "fitted_frames": {k: len(f) for k, f in feats.items()}}
    record["held_out_frame_accuracy"] = frame_accuracy(detector, held)
    if args.val:
        record["dev_speech_share"] = {name: float(detector(torch.from_numpy(m)).mean())
                                      for name, _, _, m in dev_clips(args.val, args.coded_by)}
    record["seconds"] = round(time.time() - t0, 1)
    save_router(args.out, args.speech, args.other, detector)
    (args.out / "training.json").write_text(json.dumps(record, indent=1))
    print(json.dumps({k: v for k, v in record.items() if k != "fitted_frames"}, indent=1))


if __name__ == "__main__":
    main()
