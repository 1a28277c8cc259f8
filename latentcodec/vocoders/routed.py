"""A vocoder that gives each frame the magnitude network that suits it: a second stage fitted to a VAE's
decoded mels where the decoded mel is speech, the first stage (``latentcodec-maggl-v1``, fitted to exact
mels) elsewhere, then one Griffin-Lim over the blend. The shipped routers pair ``latentcodec-maggl-v1`` with
``latentcodec-maggl-small-v2c`` (routed-v1), ``-small-v3`` (routed-v2) and ``-small-v4`` (routed-v3).

Why: measured end to end on the dev clips, the second stage lifts speech from PESQ-wb 1.28 to 1.87, but
the bass harmonics it adds to music are partly wrong ones (music ViSQOL 0.024-0.031 under Griffin-Lim's over
three seeds, ``bench/vocoder_seeds.py``), where stage 1 is at or above Griffin-Lim on every kind. Codecs choose
a mode by the signal (Opus: SILK for speech, CELT for music); here the decoder chooses from the decoded
mel alone (``speech_detector``), so the file format is unchanged and files already written get it too.
The two magnitudes are blended, not the waveforms, so a change of network inside a window needs no
cross-fade of two phases. A folder holds config.json (the two networks' names, the detector's settings)
and the detector's weights; the networks are the shipped ones, which never change under their names. The
registry resolves the two names (``registry.load_vocoder``); this module reads the folder and blends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from latentcodec.constants import DEFAULT_GL_ITERS
from latentcodec.errors import ModelError
from latentcodec.models.checked import check_int, read_config
from latentcodec.vocoders.speech_detector import DetectorConfig, SpeechDetector

if TYPE_CHECKING:
    import torch

ARCHITECTURE = "latentcodec-routed-magnitude"
# Bounds on its config's numbers (the shipped routers: 16, 100, 25).
ROUTER_BOUNDS = {"gl_iters": (1, 10000), "context_frames": (1, 1000), "smooth_frames": (0, 1000)}
A = TypeVar("A", np.ndarray, "torch.Tensor")  # the onnx runtime's arrays or the torch runtime's


@dataclass(frozen=True)
class Router:
    """A router folder, read and checked: the networks' names, Griffin-Lim's iterations, the detector."""

    speech: str
    other: str
    gl_iters: int
    detector: SpeechDetector


def is_routed_folder(folder: Path) -> bool:
    """True for a folder written by :func:`save_router`."""
    cfg = folder / "config.json"
    return cfg.is_file() and read_config(cfg).get("architecture") == ARCHITECTURE


def save_router(
    folder: Path, speech: str, other: str, detector: SpeechDetector, gl_iters: int = DEFAULT_GL_ITERS
) -> None:
    """config.json + the detector's weights; ``speech`` and ``other`` name the magnitude networks."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {
        "architecture": ARCHITECTURE,
        "speech": speech,
        "other": other,
        "gl_iters": gl_iters,
        **detector.save(folder),
    }
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))


def read_router(folder: Path, n_mels: int) -> Router:
    """The router saved in ``folder``, for mels of ``n_mels`` bands: its numbers within ROUTER_BOUNDS and
    the detector's tensors checked before they are read."""
    where = folder / "config.json"
    cfg = read_config(where)
    for key, (lo, hi) in ROUTER_BOUNDS.items():
        check_int(cfg.get(key), key, lo, hi, where)
    if not all(isinstance(cfg.get(role), str) for role in ("speech", "other")):
        raise ModelError(f"{where}: 'speech' and 'other' must name the two magnitude networks", "vocoder")
    detector = SpeechDetector.load(folder, DetectorConfig(cfg["context_frames"], cfg["smooth_frames"]), n_mels)
    return Router(cfg["speech"], cfg["other"], cfg["gl_iters"], detector)


def routed_magnitude(detector: SpeechDetector, speech: Callable[[A], A], other: Callable[[A], A]) -> Callable[[A], A]:
    """(frames, n_mels) log-mel -> (bins, frames), numpy or torch as the two sources are: ``speech`` weighted
    by the detector, ``other`` by the rest; a window that is all one runs that network alone."""

    def magnitude(log_mel: A) -> A:
        w = detector(log_mel)
        if bool((w == 1).all()):
            return speech(log_mel)
        if bool((w == 0).all()):
            return other(log_mel)
        o = other(log_mel)
        if isinstance(o, np.ndarray):
            return o + w[None] * (speech(log_mel) - o)
        return o.lerp(speech(log_mel), w[None])  # torch's lerp, as the torch runtime always blended

    return magnitude
