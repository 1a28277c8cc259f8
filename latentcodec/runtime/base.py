"""The one interface the pipeline runs a VAE through, whichever runtime holds it, so that the codec has no
branch on the runtime: numpy windows in, numpy windows out."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class VaeRunner(Protocol):
    """A VAE on a runtime. ``config``: its diffusers config entries (``latent_channels``, ...)."""

    runtime: str  # 'onnx' or 'torch'
    device: str  # 'cpu' or 'cuda'
    config: Any

    def encode(self, mels: np.ndarray, precision: str) -> np.ndarray:
        """(B, frames, n_mels) log-mel -> (B, C, frames/4, n_mels/4) posterior means, float32."""
        ...

    def decode(self, latents: np.ndarray, precision: str = "float32") -> np.ndarray:
        """(B, C, t, m) latents -> (B, 4t, 4m) log-mel, float32, computed in ``precision`` as resolved."""
        ...

    def precision(self, asked: str) -> str:
        """The VAE's arithmetic for ``asked`` (auto, float32, bfloat16) on this runtime."""
        ...


def torch_installed() -> bool:
    """Whether torch and diffusers can be imported (without importing them: seconds)."""
    from importlib.util import find_spec

    return find_spec("torch") is not None and find_spec("diffusers") is not None
