"""A diffusers VAE run on torch over numpy windows (the torch runtime): channels-last, the batch shared
out over the cores (``cores``), the encoder in the arithmetic ``precision`` resolves."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from latentcodec.runtime.cores import run_parts
from latentcodec.runtime.precision import autocast, resolve


def device_of(vae: Any) -> torch.device:
    return next(vae.parameters()).device


def encode_windows(vae: Any, mels: np.ndarray, precision: str = "float32") -> np.ndarray:
    """(B, frames, n_mels) log-mel windows -> (B, C, frames/4, n_mels/4) posterior means (float32)."""
    device = device_of(vae)
    x = torch.from_numpy(mels)[:, None].to(device, memory_format=torch.channels_last)

    def encode(part: torch.Tensor) -> torch.Tensor:
        with autocast(precision, device):
            return vae.encode(part).latent_dist.mode().float()

    return run_parts(encode, x).cpu().numpy()


def decode_windows(vae: Any, latents: np.ndarray, precision: str = "float32") -> np.ndarray:
    """(B, C, t, m) latents -> (B, 4t, 4m) log-mel (float32), computed in ``precision``."""
    device = device_of(vae)
    z = torch.from_numpy(latents).float().to(device, memory_format=torch.channels_last)

    def decode(part: torch.Tensor) -> torch.Tensor:
        with autocast(precision, device):
            return vae.decode(part).sample[:, 0].float()

    return run_parts(decode, z).cpu().numpy()


class TorchVae:
    """``base.VaeRunner`` over a diffusers ``AutoencoderKL`` (``module``), on the device it lies on."""

    runtime = "torch"

    def __init__(self, module: Any):
        self.module = module
        self.config = module.config
        self.device = device_of(module).type

    def encode(self, mels: np.ndarray, precision: str) -> np.ndarray:
        return encode_windows(self.module, mels, precision)

    def decode(self, latents: np.ndarray, precision: str = "float32") -> np.ndarray:
        return decode_windows(self.module, latents, precision)

    def precision(self, asked: str) -> str:
        return resolve(asked, device_of(self.module))
