"""Our vocoder networks, on torch: a ConvNeXt trunk at the mel's frame rate (:class:`MelConvNeXt`, shaped by
:class:`NetConfig`) under one of two heads, Vocos' (:class:`VocosGenerator`: a complex STFT, then its inverse;
the vocoder ``vocos``) or a linear magnitude for Griffin-Lim (:class:`MagnitudeNet`; the vocoder
``magnitude_net``); and their folders, config.json (with the architecture's name) and model.safetensors.
Trained by ``training/vocoder.py``, exported to ONNX graphs by ``export.py``.

Written on plain torch: the ``vocos`` package needs torchaudio (and encodec), and no torchaudio wheel
is built for our torch 2.13 CPU build. Layout: Conv1d embedding of the (frames, 64) log-mel, LayerNorm,
ConvNeXt blocks (depthwise conv, LayerNorm, pointwise MLP, layer scale, residual), LayerNorm, a linear
head. One change to Vocos: the head's log-magnitude is a correction added to the input log-mel interpolated
onto the STFT bins (a fixed matrix, plus the mel-to-STFT gain), so the level of every bin, silence at
the mel's floor included, is right from the first step instead of being learned over thousands of steps
(Vocos has a million of them; we have a few thousand on a CPU).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latentcodec.audio.mel import AUDIOLDM_MEL, MelConfig, _hz_to_mel_slaney, _mel_to_hz_slaney
from latentcodec.constants import DEFAULT_GL_ITERS, LOG_FLOOR
from latentcodec.errors import ModelError
from latentcodec.models.checked import check_int, check_weights, meta_shapes, read_config, weight_shapes

NET_WEIGHTS = "model.safetensors"
# Bounds on the size fields of a network's config.json, checked before it is built (the shipped ones: dim 192,
# intermediate 576, 4 layers, kernels 7 and 5, n_fft 1024, hop 160).
NET_BOUNDS = {
    "n_mels": (1, 512),
    "dim": (1, 4096),
    "intermediate": (1, 16384),
    "layers": (1, 64),
    "kernel": (1, 63),
    "embed_kernel": (1, 63),
    "n_fft": (2, 16384),
    "hop": (1, 16384),
    "nnls_iters": (0, 1000),
    "gl_iters": (1, 10000),
}


@dataclass(frozen=True)
class NetConfig:
    """Either network's shape, and the magnitude network's Griffin-Lim settings; saved as config.json beside
    its weights (every field, whichever head: the files on disk are read as they were written)."""

    n_mels: int = 64
    dim: int = 192  # 1.1 M parameters: about 200x real time on one core of this CPU (256: 1.8 M, 85x)
    intermediate: int = 576
    layers: int = 4
    kernel: int = 7
    embed_kernel: int = 5
    n_fft: int = 640  # Vocos' own STFT; the magnitude network's is the mel's (1024)
    hop: int = 160
    log_floor: float = LOG_FLOOR  # the mel front end's clamp: inputs below log(floor) are raised to it
    nnls_iters: int = 10  # magnitude network only: steps from its output towards the input mel (magnitude_net)
    gl_iters: int = DEFAULT_GL_ITERS  # magnitude network only: Griffin-Lim's iterations unless a decode asks

    @property
    def reach_frames(self) -> int:
        """Frames on each side of a sample's nearest frame that can change it (convs, then the iSTFT)."""
        return self.embed_kernel // 2 + self.layers * (self.kernel // 2) + self.n_fft // (2 * self.hop)


def mel_to_bins(cfg: NetConfig, mel: MelConfig = AUDIOLDM_MEL) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) matrix interpolating a log-mel linearly in frequency between band centres
    onto the STFT's bins (the first and last band held flat beyond their centres)."""
    centres = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(mel.fmin), _hz_to_mel_slaney(mel.fmax), cfg.n_mels + 2))[
        1:-1
    ]
    bins = np.linspace(0.0, mel.sample_rate / 2, cfg.n_fft // 2 + 1)
    eye = np.eye(cfg.n_mels)
    return np.stack([np.interp(bins, centres, eye[k]) for k in range(cfg.n_mels)], axis=1).astype(np.float32)


def mel_to_stft_gain(cfg: NetConfig, mel: MelConfig = AUDIOLDM_MEL) -> float:
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
    """The frame-rate trunk both our networks share: (batch, frames, n_mels) log-mel -> (batch, frames, dim)."""

    architecture = ""
    mel_to_bins: torch.Tensor  # a registered buffer (torch types module attributes as Tensor | Module)

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.n_mels, cfg.dim, cfg.embed_kernel, padding=cfg.embed_kernel // 2)
        self.norm_in = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.dim, cfg.intermediate, cfg.kernel, 1.0 / cfg.layers) for _ in range(cfg.layers)
        )
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
    """(batch, frames, n_mels) natural-log mel -> (batch, (frames - 1) * hop) waveform: per frame a
    log-magnitude and a phase angle of an STFT with hop 160, then ``torch.istft``."""

    architecture = "latentcodec-vocos"
    window: torch.Tensor  # a registered buffer

    def __init__(self, cfg: NetConfig = NetConfig()):
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


class MagnitudeNet(MelConvNeXt):
    """(batch, frames, n_mels) natural-log mel -> (batch, n_fft // 2 + 1, frames) linear STFT magnitude, at
    the mel's own STFT (n_fft 1024): Griffin-Lim's magnitude source (why: ``magnitude_net``)."""

    architecture = "latentcodec-magnitude-gl"

    def __init__(self, cfg: NetConfig = NetConfig(n_fft=1024)):
        super().__init__(cfg)
        self.head = nn.Linear(cfg.dim, cfg.n_fft // 2 + 1)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        x, m = self.features(log_mel)
        return torch.exp(self.log_magnitude(self.head(x).transpose(1, 2), m).clamp(max=math.log(1e2)))


def _net_class(architecture: str | None) -> type[MelConvNeXt] | None:
    return {c.architecture: c for c in (VocosGenerator, MagnitudeNet)}.get(architecture or "")


def is_net_folder(folder: Path) -> bool:
    """True for a folder written by ``save_net`` (either of our vocoder networks)."""
    cfg = folder / "config.json"
    return cfg.is_file() and _net_class(str(read_config(cfg).get("architecture"))) is not None


def net_config(raw: dict, where: Path) -> NetConfig:
    """A network's shape from its config.json entries (the architecture's name taken out), every size field
    within NET_BOUNDS."""
    for key, (lo, hi) in NET_BOUNDS.items():
        if key in raw:
            check_int(raw[key], key, lo, hi, where)
    floor = raw.get("log_floor", NetConfig.log_floor)
    if not isinstance(floor, float) or not 0 < floor < 1:
        raise ModelError(f"{where}: log_floor is {str(floor)[:20]}, not a number between 0 and 1", "vocoder")
    try:
        return NetConfig(**raw)
    except TypeError as e:
        raise ModelError(f"{where}: not a vocoder network's config ({e})", "vocoder") from e


def save_net(net: MelConvNeXt, folder: Path, dtype: torch.dtype = torch.float32) -> None:
    """config.json (with the architecture's name) + model.safetensors (in ``dtype``; float16 halves the size)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / NET_WEIGHTS))
    (folder / "config.json").write_text(json.dumps({"architecture": net.architecture, **asdict(net.cfg)}, indent=1))


def load_net(folder: Path, device: str = "cpu") -> MelConvNeXt:
    """The network saved in ``folder``, in float32 whatever dtype it was stored in; its config is bounded and
    checked against the weights' header before the network is built."""
    from safetensors.torch import load_file

    raw = read_config(folder / "config.json")
    cls = _net_class(str(raw.pop("architecture", None)))
    if cls is None:
        raise ModelError(f"{folder}: not a vocoder network written by alat train-vocoder", "vocoder")
    cfg, weights = net_config(raw, folder / "config.json"), folder / NET_WEIGHTS
    check_weights(meta_shapes(lambda: cls(cfg), folder / "config.json"), weight_shapes(weights), weights)
    net = cls(cfg)
    net.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})
    return net.to(device).eval().requires_grad_(False)
