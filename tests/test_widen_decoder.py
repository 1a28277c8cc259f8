"""recipes/widen_decoder.py: a decoder widened at full resolution (32 -> 64 channels) computes what the narrow
one computes, before its noise; with noise, what it computes moves."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from latentcodec.models.loader import SMALL_VAE_CONFIG

_SPEC = importlib.util.spec_from_file_location("widen_decoder",
                                               Path(__file__).parents[1] / "recipes" / "widen_decoder.py")
widen_decoder = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(widen_decoder)


def test_widening_is_exact_and_the_noise_breaks_the_twins() -> None:
    torch.manual_seed(0)
    vae = AutoencoderKL(**SMALL_VAE_CONFIG).eval()
    for p in vae.decoder.parameters():  # trained-looking weights: GroupNorm's affine away from 1 and 0
        p.data.add_(0.1 * torch.randn_like(p))
    z = torch.randn(2, 8, 12, 16)
    with torch.no_grad():
        narrow = vae.decoder(z)
        exact = widen_decoder.wide_decoder(vae, 0.0)
        noisy = widen_decoder.wide_decoder(vae, 0.05)
        assert exact.up_blocks[2].resnets[1].conv1.weight.shape == (64, 64, 3, 3)
        assert (exact(z) - narrow).abs().max() < 1e-4 * narrow.abs().max()
        assert (noisy(z) - narrow).abs().max() > 1e-3 * narrow.abs().max()
