"""Which frames of a decoded log-mel are speech: what ``routed_vocoder`` chooses its magnitude network by.

A logistic regression on statistics of the mel over a context of each frame (its spectral shape, how much
each band moves, the level's spread), fitted on the mels the VAE decodes from the training audio
(``recipes/train_speech_detector.py``). Why so small: it runs inside every decode, beside a network of
a million parameters, and it only has to tell speech from music and effects, which such statistics do
(modulation and gaps are the classic cues of speech/music discrimination, Scheirer and Slaney 1997).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from latentcodec.audio.mel import AUDIOLDM_MEL

WEIGHTS_FILE = "detector.safetensors"


@dataclass(frozen=True)
class DetectorConfig:
    """The statistics' context and the smoothing of the decisions; saved in the router's config.json."""

    context_frames: int = 100  # on each side of a frame (1 s at hop 160)
    smooth_frames: int = 25  # decisions averaged over this many frames on each side into the weight


def _box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """(frames, n) -> (frames, n): the mean over [t - radius, t + radius], of the frames that exist. From
    a float64 running sum: a tenth of avg_pool1d's time at a 201-frame kernel, and a mean of 0/1
    decisions comes out exactly 0 or 1 where they all agree."""
    sums = F.pad(torch.cumsum(x.double(), 0), (0, 0, 1, 0))
    t = torch.arange(len(x))
    lo, hi = (t - radius).clamp(min=0), (t + radius + 1).clamp(max=len(x))
    return ((sums[hi] - sums[lo]) / (hi - lo)[:, None]).to(x.dtype)


def mel_features(log_mel: torch.Tensor, cfg: DetectorConfig = DetectorConfig()) -> torch.Tensor:
    """(frames, n_mels) natural-log mel -> (frames, 3 n_mels + 1): over each frame's context, the mean
    spectral shape (level removed), each band's standard deviation and mean absolute frame-to-frame
    change, and the standard deviation of the frame level."""
    x = log_mel.float()
    level = x.mean(1, keepdim=True)
    flux = torch.cat([torch.zeros_like(x[:1]), (x[1:] - x[:-1]).abs()])
    r = cfg.context_frames
    mean, mean_sq = _box_mean(x, r), _box_mean(x * x, r)
    level_mean, level_sq = _box_mean(level, r), _box_mean(level * level, r)
    std = (mean_sq - mean * mean).clamp(min=0).sqrt()
    level_std = (level_sq - level_mean * level_mean).clamp(min=0).sqrt()
    return torch.cat([mean - level_mean, std, _box_mean(flux, r), level_std], 1)


class SpeechDetector:
    """(frames, n_mels) log-mel -> (frames,) weight in [0, 1] of speech: 1 where every decision within
    ``smooth_frames`` says speech, 0 where none does (so a pure stretch runs one network alone)."""

    def __init__(self, params: dict[str, torch.Tensor], cfg: DetectorConfig = DetectorConfig()):
        self.cfg = cfg
        self.mean, self.scale = params["mean"].float(), params["scale"].float()
        self.weight, self.bias = params["weight"].float(), params["bias"].float()

    def logits(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(frames,) the log-odds of speech."""
        return ((mel_features(log_mel.cpu(), self.cfg) - self.mean) / self.scale) @ self.weight + self.bias

    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor:
        decisions = (self.logits(log_mel) > 0).float()[:, None]
        return _box_mean(decisions, self.cfg.smooth_frames)[:, 0].to(log_mel.device)

    def save(self, folder: Path) -> dict:
        """Write its parameters into ``folder``; returns the config entries the router stores for it."""
        from safetensors.torch import save_file

        save_file({"mean": self.mean, "scale": self.scale, "weight": self.weight, "bias": self.bias},
                  str(folder / WEIGHTS_FILE))
        return asdict(self.cfg)

    @classmethod
    def load(cls, folder: Path, cfg: DetectorConfig, n_mels: int = AUDIOLDM_MEL.n_mels) -> "SpeechDetector":
        """The detector saved in ``folder`` for mels of ``n_mels`` bands, its tensors' shapes checked first."""
        from safetensors.torch import load_file

        from latentcodec.models.checked import check_weights, weight_shapes

        n = 3 * n_mels + 1  # features per frame (mel_features)
        check_weights({"mean": (n,), "scale": (n,), "weight": (n,), "bias": ()}, weight_shapes(folder / WEIGHTS_FILE),
                      folder / WEIGHTS_FILE)
        return cls(load_file(str(folder / WEIGHTS_FILE)), cfg)


def fit_detector(features: torch.Tensor, labels: torch.Tensor, sample_weight: torch.Tensor,
                 cfg: DetectorConfig = DetectorConfig(), l2: float = 1e-3) -> SpeechDetector:
    """Weighted logistic regression (L-BFGS, an L2 penalty) on standardised (frames, F) features, labels 1
    for speech; convex, so the fit is the same from any start."""
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

