"""A vocoder that gives each frame the magnitude network that suits it: the second stage
(``latentcodec-maggl-small-v2c``) where the decoded mel is speech, stage 1 (``latentcodec-maggl-v1``)
elsewhere, then one Griffin-Lim over the blend.

Why: measured end to end on the dev clips, the second stage lifts speech from PESQ-wb 1.28 to 1.87, but
the bass harmonics it adds to music are partly wrong ones (music ViSQOL 0.024-0.031 under Griffin-Lim's over
three seeds, ``bench/vocoder_seeds.py``), where stage 1 is at or above Griffin-Lim on every kind. Codecs choose
a mode by the signal (Opus: SILK for speech, CELT for music); here the decoder chooses from the decoded
mel alone (``speech_detector``), so the file format is unchanged and files already written get it too.
The two magnitudes are blended, not the waveforms, so a change of network inside a window needs no
cross-fade of two phases. A folder holds config.json (the two networks' names, the detector's settings)
and the detector's weights; the networks are the shipped ones, which never change under their names.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from latentcodec.audio.mel import AUDIOLDM_MEL, MelConfig
from latentcodec.constants import DEFAULT_GL_ITERS
from latentcodec.errors import ModelError
from latentcodec.models.checked import check_int, read_config
from latentcodec.vocoders.griffinlim import GriffinLimVocoder
from latentcodec.vocoders.speech_detector import DetectorConfig, SpeechDetector

ARCHITECTURE = "latentcodec-routed-magnitude"
# Bounds on its config's numbers (the shipped routers: 16, 100, 25).
ROUTER_BOUNDS = {"gl_iters": (1, 10000), "context_frames": (1, 1000), "smooth_frames": (0, 1000)}
Magnitude = Callable[[torch.Tensor], torch.Tensor]


def is_routed_folder(folder: Path) -> bool:
    """True for a folder written by :func:`save_router`."""
    cfg = folder / "config.json"
    return cfg.is_file() and read_config(cfg).get("architecture") == ARCHITECTURE


def save_router(folder: Path, speech: str, other: str, detector: SpeechDetector,
                gl_iters: int = DEFAULT_GL_ITERS) -> None:
    """config.json + the detector's weights; ``speech`` and ``other`` name the magnitude networks."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"architecture": ARCHITECTURE, "speech": speech, "other": other, "gl_iters": gl_iters,
           **detector.save(folder)}
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))


def routed_magnitude(detector: SpeechDetector, speech: Magnitude, other: Magnitude) -> Magnitude:
    """(frames, n_mels) log-mel -> (bins, frames): ``speech`` weighted by the detector, ``other`` by the
    rest; a window that is all one runs that network alone."""

    def magnitude(log_mel: torch.Tensor) -> torch.Tensor:
        w = detector(log_mel)
        if bool((w == 1).all()):
            return speech(log_mel)
        if bool((w == 0).all()):
            return other(log_mel)
        return torch.lerp(other(log_mel), speech(log_mel), w[None])

    return magnitude


def load_routed(folder: Path, part: Callable[[str], Magnitude], mel: MelConfig = AUDIOLDM_MEL,
                device: str = "cpu", gl_iters: int | None = None) -> GriffinLimVocoder:
    """The routed vocoder saved in ``folder``, for mels of ``mel``; ``part`` gives the magnitude source of
    each network the folder names (the registry's loader, so that this module never imports it)."""
    where = folder / "config.json"
    cfg = read_config(where)
    for key, (lo, hi) in ROUTER_BOUNDS.items():
        check_int(cfg.get(key), key, lo, hi, where)
    if not all(isinstance(cfg.get(role), str) for role in ("speech", "other")):
        raise ModelError(f"{where}: 'speech' and 'other' must name the two magnitude networks", "vocoder")
    detector = SpeechDetector.load(folder, DetectorConfig(cfg["context_frames"], cfg["smooth_frames"]), mel.n_mels)
    return GriffinLimVocoder(gl_iters or cfg["gl_iters"], device, mel,
                             routed_magnitude(detector, part(cfg["speech"]), part(cfg["other"])))
