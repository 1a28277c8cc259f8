"""Which frames of a decoded log-mel are speech: what the routed vocoder (``routed``) chooses its magnitude
network by.

A logistic regression on statistics of the mel over a context of each frame (its spectral shape, how much
each band moves, the level's spread), fitted on the mels the VAE decodes from the training audio
(``recipes/train_speech_detector.py``). Why so small: it runs inside every decode, beside a network of
a million parameters, and it only has to tell speech from music and effects, which such statistics do
(modulation and gaps are the classic cues of speech/music discrimination, Scheirer and Slaney 1997).

One form, on numpy, serves both runtimes: its weights are 0/1 decisions averaged, so float rounding in the
statistics changes no weight unless a logit sits within rounding of 0 (on the example's mels and the
dev clips' the torch form it replaced gave the same weights). Torch is imported only to fit one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from latentcodec.audio.mel import AUDIOLDM_MEL
from latentcodec.errors import ModelError

if TYPE_CHECKING:
    import torch

DETECTOR_WEIGHTS = "detector.safetensors"
MAX_DETECTOR_BYTES = 1 << 20  # the shipped detector's file: 2.6 kB (4 x 193 float32 and a header)


@dataclass(frozen=True)
class DetectorConfig:
    """The statistics' context and the smoothing of the decisions; saved in the router's config.json."""

    context_frames: int = 100  # on each side of a frame (1 s at hop 160)
    smooth_frames: int = 25  # decisions averaged over this many frames on each side into the weight


def _numpy(x: Any) -> np.ndarray:
    """A numpy float32 array of ``x``, a numpy array or a torch tensor (on any device)."""
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float32)


def _like(x: np.ndarray, like: Any) -> Any:
    """``x`` as the caller's array: itself for a numpy ``like``, else a tensor on ``like``'s device."""
    if isinstance(like, np.ndarray):
        return x
    import torch

    return torch.from_numpy(x).to(like.device)


def _box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """(frames, n) -> (frames, n): the mean over [t - radius, t + radius], of the frames that exist. From
    a float64 running sum: a tenth of a pooling's time at a 201-frame kernel, and a mean of 0/1 decisions
    comes out exactly 0 or 1 where they all agree."""
    sums = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x.astype(np.float64), 0)])
    t = np.arange(len(x))
    lo, hi = np.maximum(t - radius, 0), np.minimum(t + radius + 1, len(x))
    return ((sums[hi] - sums[lo]) / (hi - lo)[:, None]).astype(x.dtype)


def _features(x: np.ndarray, r: int) -> np.ndarray:
    """(frames, n_mels) float32 -> (frames, 3 n_mels + 1) float32: see :func:`mel_features`."""
    level = x.mean(1, keepdims=True)
    flux = np.concatenate([np.zeros_like(x[:1]), np.abs(x[1:] - x[:-1])])
    mean, mean_sq = _box_mean(x, r), _box_mean(x * x, r)
    level_mean, level_sq = _box_mean(level, r), _box_mean(level * level, r)
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0))
    level_std = np.sqrt(np.maximum(level_sq - level_mean * level_mean, 0))
    return np.concatenate([mean - level_mean, std, _box_mean(flux, r), level_std], 1)


def mel_features(log_mel: np.ndarray | torch.Tensor, cfg: DetectorConfig = DetectorConfig()) -> Any:
    """(frames, n_mels) natural-log mel -> (frames, 3 n_mels + 1): over each frame's context, the mean
    spectral shape (level removed), each band's standard deviation and mean absolute frame-to-frame
    change, and the standard deviation of the frame level. Float32, numpy for numpy and a tensor for a
    tensor (what fitting takes: ``recipes/train_speech_detector.py``)."""
    return _like(_features(_numpy(log_mel), cfg.context_frames), log_mel)


class SpeechDetector:
    """(frames, n_mels) log-mel -> (frames,) float32 weight in [0, 1] of speech: 1 where every decision within
    ``smooth_frames`` says speech, 0 where none does (so a pure stretch runs one network alone). Computed on
    numpy whatever it is given; a tensor in gives a tensor out, on its device. ``params``: mean, scale,
    weight ((3 n_mels + 1,) each) and bias (), numpy arrays or tensors."""

    def __init__(self, params: Mapping[str, Any], cfg: DetectorConfig = DetectorConfig()):
        self.cfg = cfg
        self.mean, self.scale = _numpy(params["mean"]), _numpy(params["scale"])
        self.weight, self.bias = _numpy(params["weight"]), _numpy(params["bias"])

    def logits(self, log_mel: np.ndarray | torch.Tensor) -> Any:
        """(frames,) the log-odds of speech."""
        feats = _features(_numpy(log_mel), self.cfg.context_frames)
        return _like(((feats - self.mean) / self.scale) @ self.weight + self.bias, log_mel)

    def __call__(self, log_mel: np.ndarray | torch.Tensor) -> Any:
        decisions = _numpy(self.logits(log_mel) > 0)[:, None]
        return _like(_box_mean(decisions, self.cfg.smooth_frames)[:, 0], log_mel)

    def save(self, folder: Path) -> dict:
        """Write its parameters into ``folder``; returns the config entries the router stores for it."""
        from safetensors.numpy import save_file

        save_file(
            {"mean": self.mean, "scale": self.scale, "weight": self.weight, "bias": self.bias},
            str(folder / DETECTOR_WEIGHTS),
        )
        return asdict(self.cfg)

    @classmethod
    def load(cls, folder: Path, cfg: DetectorConfig, n_mels: int = AUDIOLDM_MEL.n_mels) -> SpeechDetector:
        """The detector saved in ``folder`` for mels of ``n_mels`` bands: a file of at most MAX_DETECTOR_BYTES,
        read on numpy (no torch on the onnx runtime), its tensors' names, shapes and dtypes checked before use."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        from latentcodec.models.checked import check_weights

        n, path = 3 * n_mels + 1, folder / DETECTOR_WEIGHTS  # features per frame (mel_features)
        try:
            if path.stat().st_size > MAX_DETECTOR_BYTES:
                raise ValueError(f"{path.stat().st_size:,} bytes")
            params = load_file(str(path))
        except (OSError, ValueError, SafetensorError) as e:
            raise ModelError(f"{path}: not readable detector weights ({type(e).__name__}: {str(e)[:120]})") from e
        found = {
            k: (v.shape, f"F{8 * v.dtype.itemsize}" if v.dtype.kind == "f" else str(v.dtype)) for k, v in params.items()
        }
        check_weights({"mean": (n,), "scale": (n,), "weight": (n,), "bias": ()}, found, path)
        return cls(params, cfg)


def fit_detector(
    features: torch.Tensor,
    labels: torch.Tensor,
    sample_weight: torch.Tensor,
    cfg: DetectorConfig = DetectorConfig(),
    l2: float = 1e-3,
) -> SpeechDetector:
    """Weighted logistic regression (L-BFGS, an L2 penalty) on standardised (frames, F) features, labels 1
    for speech; convex, so the fit is the same from any start. Training only: on torch, for its L-BFGS."""
    import torch
    import torch.nn.functional as F

    mean, scale = features.mean(0), features.std(0).clamp(min=1e-3)
    z = (features - mean) / scale
    w = torch.zeros(z.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")
    sw = sample_weight / sample_weight.sum()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (F.binary_cross_entropy_with_logits(z @ w + b, labels, reduction="none") * sw).sum() + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return SpeechDetector({"mean": mean, "scale": scale, "weight": w.detach(), "bias": b.detach()}, cfg)
