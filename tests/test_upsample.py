"""The decoder's upsamplers computed on the low-resolution input give diffusers' nearest-2x + 3x3 conv."""
from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKL
from diffusers.models.upsampling import Upsample2D

from latentcodec.models.loader import SMALL_VAE_CONFIG
from latentcodec.runtime.upsample import (
    ShuffledSubpixelUpsample,
    StackedSubpixelUpsample,
    SubpixelUpsample,
    use_subpixel_upsamplers,
)


@pytest.mark.parametrize("shape", [(1, 8, 5, 7), (3, 8, 16, 4), (2, 8, 1, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("form", [SubpixelUpsample, StackedSubpixelUpsample, ShuffledSubpixelUpsample])
def test_subpixel_upsample_equals_upsample2d(shape: tuple[int, ...], channels_last: bool, form: type) -> None:
    """Each form (torch's copies, the graphs' stacking and pixel shuffle) gives diffusers' upsampler."""
    torch.manual_seed(0)
    up = Upsample2D(8, use_conv=True, out_channels=6)
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want, got = up(x), form(up.conv)(x)
    assert got.shape == want.shape == (shape[0], 6, 2 * shape[2], 2 * shape[3])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_vae_decodes_the_same_with_subpixel_upsamplers() -> None:
    torch.manual_seed(0)
    vae = AutoencoderKL(**SMALL_VAE_CONFIG).eval()
    z = torch.randn(2, 8, 13, 16)
    keys = {k: v.clone() for k, v in vae.state_dict().items()}
    with torch.no_grad():
        want = vae.decode(z).sample
        use_subpixel_upsamplers(vae)
        got = vae.decode(z).sample
    after = vae.state_dict()  # what training and pruning read from a loaded model
    assert after.keys() == keys.keys() and all(torch.equal(after[k], keys[k]) for k in keys)
    assert sum(isinstance(m, SubpixelUpsample) for m in vae.modules()) == 2
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_other_upsamplers_are_left_alone() -> None:
    vae = AutoencoderKL(**SMALL_VAE_CONFIG).eval()
    vae.decoder.up_blocks[0].upsamplers[0] = Upsample2D(128, use_conv_transpose=True, out_channels=128)
    use_subpixel_upsamplers(vae)
    kinds = [type(b.upsamplers[0]).__name__ for b in vae.decoder.up_blocks if b.upsamplers]
    assert kinds == ["Upsample2D", "SubpixelUpsample"]
