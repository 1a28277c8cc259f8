"""A Vocos-style neural vocoder (Siuzdak 2023) for the AudioLDM log-mel: it works at the frame rate and
lets an inverse STFT make the samples, so it is small and fast on a CPU.

Written on plain torch: the ``vocos`` package needs torchaudio (and encodec), and no torchaudio wheel
is built for our torch 2.13 CPU build. Layout: Conv1d embedding of the (frames, 64) log-mel, LayerNorm,
ConvNeXt blocks (depthwise conv, LayerNorm, pointwise MLP, layer scale, residual), LayerNorm, a linear
head giving per frame the log-magnitude and a phase angle of an STFT with hop 160, then ``torch.istft``.
One change to Vocos: the head's log-magnitude is a correction added to the input log-mel interpolated
onto the STFT bins (a fixed matrix, plus the mel-to-STFT gain), so the level of every bin, silence at
the mel's floor included, is right from the first step instead of being learned over thousands of steps
(Vocos has a million of them; we have a few thousand on a CPU).

The trunk (``MelConvNeXt``) also carries ``magnitude_net.MagnitudeNet``; ``nets.save_net``/``load_net``
store either under its architecture's name.

Alignment: the mel frames are centred (frame t on sample t * hop) and so is the iSTFT, so F frames give
(F - 1) * hop samples, sample 0 at frame 0's centre: the contract of ``vocoder.vocode_stream``, as for
Griffin-Lim. The receptive field (``reach_frames``) is kept within what the codec's window overlap
leaves on each side of a cross-fade, so a mel vocoded in windows gives, in every sample it keeps, the
same samples as the whole mel vocoded at once (``tests/test_vocos.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentcodec.audio.mel import AUDIOLDM_MEL, MelConfig, _hz_to_mel_slaney, _mel_to_hz_slaney
from latentcodec.constants import DEFAULT_GL_ITERS, LOG_FLOOR

ARCHITECTURE = "latentcodec-vocos"


@dataclass(frozen=True)
class VocosConfig:
    """The generator's shape; saved as config.json beside its weights."""

    n_mels: int = 64
    dim: int = 192  # 1.1 M parameters: about 200x real time on one core of this CPU (256: 1.8 M, 85x)
    intermediate: int = 576
    layers: int = 4
    kernel: int = 7
    embed_kernel: int = 5
    n_fft: int = 640
    hop: int = 160
    log_floor: float = LOG_FLOOR  # the mel front end's clamp: inputs below log(floor) are raised to it
    nnls_iters: int = 10  # magnitude network only: steps from its output towards the input mel (magnitude_net)
    gl_iters: int = DEFAULT_GL_ITERS  # magnitude network only: Griffin-Lim's iterations unless a decode asks

    @property
    def reach_frames(self) -> int:
        """Frames on each side of a sample's nearest frame that can change it (convs, then the iSTFT)."""
        return self.embed_kernel // 2 + self.layers * (self.kernel // 2) + self.n_fft // (2 * self.hop)


def mel_to_bins(cfg: VocosConfig, mel: MelConfig = AUDIOLDM_MEL) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) matrix interpolating a log-mel linearly in frequency between band centres
    onto the STFT's bins (the first and last band held flat beyond their centres)."""
    centres = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(mel.fmin), _hz_to_mel_slaney(mel.fmax),
                                            cfg.n_mels + 2))[1:-1]
    bins = np.linspace(0.0, mel.sample_rate / 2, cfg.n_fft // 2 + 1)
    eye = np.eye(cfg.n_mels)
    return np.stack([np.interp(bins, centres, eye[k]) for k in range(cfg.n_mels)], axis=1).astype(np.float32)


def mel_to_stft_gain(cfg: VocosConfig, mel: MelConfig = AUDIOLDM_MEL) -> float:
    """log(|STFT| / mel) of noise: a slaney mel band of a flat spectrum reads |STFT_mel| / bin width (Hz),
    and the magnitude of noise scales with the square root of the window length."""
    return float(np.log(mel.sample_rate / mel.n_fft) + 0.5 * np.log(cfg.n_fft / mel.n_fft))


class ConvNeXtBlock(nn.Module):
    """Depthwise conv over time, LayerNorm, MLP, layer scale; on (batch, dim, frames)."""

    def __init__(self, dim: int, intermediate: int, kernel: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.up = nn.Linear(dim, intermediate)
        self.down = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(F.gelu(self.up(self.norm(self.dwconv(x).transpose(1, 2)))))
        return x + (self.gamma * y).transpose(1, 2)


class MelConvNeXt(nn.Module):
    """The frame-rate trunk both our vocoders share: (batch, frames, n_mels) log-mel -> (batch, frames, dim)."""

    architecture = ""

    def __init__(self, cfg: VocosConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.n_mels, cfg.dim, cfg.embed_kernel, padding=cfg.embed_kernel // 2)
        self.norm_in = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(cfg.dim, cfg.intermediate, cfg.kernel, 1.0 / cfg.layers)
                                    for _ in range(cfg.layers))
        self.norm_out = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.register_buffer("mel_to_bins", torch.from_numpy(mel_to_bins(cfg)), persistent=False)
        self.gain = mel_to_stft_gain(cfg)

    def features(self, log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(trunk output (batch, frames, dim), the floored mel (batch, n_mels, frames))."""
        m = log_mel.clamp(min=float(np.log(self.cfg.log_floor))).transpose(1, 2)
        x = self.norm_in(self.embed(m).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.norm_out(x.transpose(1, 2)), m

    def log_magnitude(self, correction: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """The head's (batch, bins, frames) correction on top of the mel interpolated onto the STFT bins."""
        return correction + self.mel_to_bins @ m + self.gain


class VocosGenerator(MelConvNeXt):
    """(batch, frames, n_mels) natural-log mel -> (batch, (frames - 1) * hop) waveform."""

    architecture = ARCHITECTURE

    def __init__(self, cfg: VocosConfig = VocosConfig()):
        super().__init__(cfg)
        self.head = nn.Linear(cfg.dim, cfg.n_fft + 2)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def spectrum(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Complex STFT (batch, n_fft // 2 + 1, frames) predicted from the mel."""
        x, m = self.features(log_mel)
        log_mag, phase = self.head(x).transpose(1, 2).chunk(2, dim=1)
        log_mag = self.log_magnitude(log_mag, m)
        mag = torch.exp(log_mag).clamp(max=1e2)  # as Vocos: an exploding magnitude early in training is cut
        return torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        length = (log_mel.shape[1] - 1) * c.hop
        return torch.istft(self.spectrum(log_mel), c.n_fft, c.hop, c.n_fft, self.window, center=True, length=length)


class NeuralVocoder:
    """A generator as a ``vocode_stream`` vocoder: (frames, n_mels) log-mel -> (frames - 1) * hop samples."""

    def __init__(self, generator: VocosGenerator, device: str = "cpu"):
        self.generator, self.device = generator.to(device).eval(), device

    @torch.inference_mode()
    def __call__(self, log_mel: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(log_mel, dtype=np.float32)).to(self.device)[None]
        return self.generator(x)[0].cpu().numpy()
