"""The discriminators the vocoder and the VAE are trained against (training only; never shipped).

Multi-period (HiFi-GAN, Kong et al. 2020): the waveform folded into (samples / p, p) columns for
periods 2, 3, 5, 7, 11, so each sees the periodic structure a mel hides. Multi-resolution (UnivNet,
Jang et al. 2021, as Vocos uses it): 2-D convolutions over STFT magnitudes at three resolutions, which
punish the buzz and the wrong noise floor of a vocoder that only learned the mel. Both are far
narrower than the published ones (16-128 channels, not 32-1024) so a training step fits one CPU core.
The VAE's: a patch discriminator on the log-mel (:class:`MelPatchDiscriminator`).
Each returns, per sub-discriminator, its logits and its feature maps (for feature matching).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

Outputs = list[tuple[torch.Tensor, list[torch.Tensor]]]


def _run_stack(x: torch.Tensor, convs: nn.ModuleList, post: nn.Module) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Leaky-ReLU conv stack then the output conv: (flattened logits, every layer's output for feature matching)."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        feats.append(x)
    x = post(x)
    feats.append(x)
    return x.flatten(1), feats


class PeriodDiscriminator(nn.Module):
    """(batch, samples) -> logits over (samples / period / 3^4, period) cells."""

    def __init__(self, period: int, channels: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        self.period = period
        chans = (1, *channels)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0))) for a, b in zip(chans[:-1], chans[1:])
        )
        self.convs.append(weight_norm(nn.Conv2d(chans[-1], chans[-1], (5, 1), padding=(2, 0))))
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pad = (-x.shape[-1]) % self.period
        x = F.pad(x, (0, pad), mode="reflect")
        x = x.view(x.shape[0], 1, -1, self.period)
        return _run_stack(x, self.convs, self.post)


class ResolutionDiscriminator(nn.Module):
    """(batch, samples) -> logits over a (frames, bins) STFT magnitude, compressed by a power 0.3 so the
    quiet bins (where a vocoder's noise floor shows) weigh as well as the loud ones."""

    window: torch.Tensor  # a registered buffer (torch types module attributes as Tensor | Module)

    def __init__(self, n_fft: int, channels: int = 16):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        # UnivNet's first layer keeps every bin; here it halves them too, which halves the cost
        self.convs = nn.ModuleList(
            [weight_norm(nn.Conv2d(1, channels, (3, 9), (1, 2), padding=(1, 4)))]
            + [weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))) for _ in range(3)]
            + [weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1)))]
        )
        self.post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x, self.n_fft, self.n_fft // 4, self.n_fft, self.window, center=True, return_complex=True)
        x = (spec.abs() + 1e-9).pow(0.3).transpose(1, 2)[:, None]  # (batch, 1, frames, bins)
        return _run_stack(x, self.convs, self.post)


class MultiDiscriminator(nn.Module):
    """A list of sub-discriminators applied to the same waveform."""

    def __init__(self, subs: list[nn.Module]):
        super().__init__()
        self.subs = nn.ModuleList(subs)

    def forward(self, x: torch.Tensor) -> Outputs:
        return [d(x) for d in self.subs]


def multi_period(periods: tuple[int, ...] = (2, 3, 5, 7, 11)) -> MultiDiscriminator:
    return MultiDiscriminator([PeriodDiscriminator(p) for p in periods])


def multi_resolution(sizes: tuple[int, ...] = (256, 512, 1024)) -> MultiDiscriminator:
    return MultiDiscriminator([ResolutionDiscriminator(n) for n in sizes])


def discriminator_loss(real: Outputs, fake: Outputs) -> torch.Tensor:
    """Hinge loss, averaged over sub-discriminators."""
    loss = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for (r, _), (f, _) in zip(real, fake))
    assert isinstance(loss, torch.Tensor), "no sub-discriminator outputs"
    return loss / len(real)


def generator_loss(fake: Outputs) -> torch.Tensor:
    """Hinge loss of the generator, averaged over sub-discriminators."""
    loss = sum(F.relu(1 - f).mean() for f, _ in fake)
    assert isinstance(loss, torch.Tensor), "no sub-discriminator outputs"
    return loss / len(fake)


def feature_matching_loss(real: Outputs, fake: Outputs) -> torch.Tensor:
    """L1 between the feature maps of real and generated audio, summed over layers (as HiFi-GAN and
    Vocos do) and averaged over sub-discriminators."""
    total: torch.Tensor | float = 0.0
    for (_, fr), (_, ff) in zip(real, fake):
        total = total + sum(F.l1_loss(b, a.detach()) for a, b in zip(fr, ff))
    assert isinstance(total, torch.Tensor), "no sub-discriminator outputs"
    return total / len(real)


class MelPatchDiscriminator(nn.Module):
    """(batch, 1, frames, 64) log-mel -> logits over (frames / 4, mels / 4) patches, each seeing 26 frames
    x 26 mel bands: the scale of a harmonic's shape and a syllable's texture, which an L1 loss
    smears (a patch GAN as AudioLDM's and Stable Diffusion's VAEs are trained against, taming-transformers'
    NLayerDiscriminator, 32-128 channels instead of 64-512 so that a step fits a 2-core CPU)."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        a, b, c = channels
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(1, a, 4, 2, padding=1)),
                weight_norm(nn.Conv2d(a, b, 4, 2, padding=1)),
                weight_norm(nn.Conv2d(b, c, 3, 1, padding=1)),
            ]
        )
        self.post = weight_norm(nn.Conv2d(c, 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> Outputs:
        return [_run_stack(x, self.convs, self.post)]


def real_fake_accuracy(real: Outputs, fake: Outputs) -> tuple[float, float]:
    """Share of patches the discriminator calls right: real logits > 0, fake logits < 0."""
    return (
        float(torch.cat([r.flatten() for r, _ in real]).gt(0).float().mean()),
        float(torch.cat([f.flatten() for f, _ in fake]).lt(0).float().mean()),
    )
