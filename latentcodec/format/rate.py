"""The rate knobs of the version-2 coder: ``--quality`` (constant quality: one quantizer step) and
``--kbps`` (the step that gives the file that rate, found by bisection on its own latents).

Quality Q maps to the step in latent units as ``step = 0.4 x 2^((4 - Q) / 2)``: each point of Q halves
or doubles the squared error; Q 4 (step 0.4) gives the same end-to-end log-mel distance as version 1's
4 bits on the dev clips, at well under half the bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from latentcodec.constants import DEFAULT_QUALITY, MAX_KBPS, MIN_KBPS, QUALITY_RANGE  # noqa: F401 (this module's interface)
from latentcodec.errors import LatentCodecError
from latentcodec.format.header import Header, fixed_size
from latentcodec.format.transform_coder import encode_latent

CODER_TABLE = "coder.json"


def step_for_quality(quality: float) -> float:
    """Quantizer step (latent units) of a quality level."""
    lo, hi = QUALITY_RANGE
    if not lo <= quality <= hi:
        raise LatentCodecError(f"quality {quality:g} is out of range ({lo:g} to {hi:g})", "quality")
    return 0.4 * 2.0 ** ((DEFAULT_QUALITY - quality) / 2)


def load_coder_table(folder: str | Path) -> dict | None:
    """A model folder's coder.json (its decorrelating transform), or None."""
    path = Path(folder) / CODER_TABLE
    return json.loads(path.read_text()) if path.is_file() else None


def step_for_rate(latents: list[np.ndarray], kbps: float, header: Header, samples: int = 16) -> float:
    """The step at which the file of ``header`` with these (L, T, M) latents takes about ``kbps``.

    Bisection on log(step) within the quality range; payloads are measured on up to ``samples`` records
    evenly spaced through the file and scaled to all of them; header, index and framing are counted exactly.
    """
    pick = np.unique(np.linspace(0, len(latents) - 1, min(samples, len(latents))).round().astype(int))
    transform = np.asarray(header.transform)
    budget = kbps * 1000 * header.duration / 8 - fixed_size(header)
    lo, hi = np.log(step_for_quality(QUALITY_RANGE[1])), np.log(step_for_quality(QUALITY_RANGE[0]))
    for _ in range(12):
        mid = (lo + hi) / 2
        steps = np.full(len(transform), np.exp(mid))
        size = sum(len(encode_latent(latents[i], steps, transform)[1]) for i in pick) * len(latents) / len(pick)
        lo, hi = (mid, hi) if size > budget else (lo, mid)
    return float(np.exp(hi))


def transform_of(table: dict | None, latent_channels: int) -> np.ndarray | None:
    """The model's decorrelating transform (L x L), or None when it has none (the encoder then fits one
    on the file's own latents)."""
    if table is None:
        return None
    k = np.asarray(table["transform"], np.float64)
    if k.shape != (latent_channels, latent_channels):
        raise LatentCodecError(f"{CODER_TABLE}: transform of shape {k.shape} for {latent_channels} latent channels")
    return k
