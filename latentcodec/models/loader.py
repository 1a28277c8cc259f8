"""Finding, loading and fingerprinting the VAE (and the optional HiFi-GAN) a .alat file names.

``--model`` takes a name the package registers (its shipped weights), a local directory in
diffusers layout (the VAE at its root or in ``vae/``), or a Hugging Face repo id (VAE in ``vae/``,
HiFi-GAN in ``vocoder/``) such as ``cvssp/audioldm2-music``.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from latentcodec.errors import ModelError
from latentcodec.format.rate import load_coder_table
from latentcodec.models.registry import DEFAULT_MODEL, shipped_models
from latentcodec.models.upsample import use_subpixel_upsamplers

# The shipped model's architecture: AudioLDM2's VAE layout (1 -> 8 channels, three blocks, 4x down
# on time and mel) scaled down for CPU speed; no mid-block attention, so a window's output depends on
# its neighbours only through convolutions and GroupNorm statistics.
SMALL_VAE_CONFIG: dict[str, Any] = dict(
    in_channels=1, out_channels=1, latent_channels=8, block_out_channels=(32, 64, 128), layers_per_block=1,
    norm_num_groups=16, down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
    mid_block_add_attention=False, sample_size=256,
)


@dataclass
class Model:
    """A loaded VAE with the identity the .alat header records."""

    name: str
    vae: Any  # diffusers AutoencoderKL
    fingerprint: bytes
    location: str  # local directory or hub id, where a ``vocoder/`` may be found
    coder: dict | None = None  # coder.json beside the weights: version 2's transform and rate calibration

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)


def fingerprint(vae: torch.nn.Module) -> bytes:
    """SHA-256 over parameter names, dtypes, shapes and bytes: the same weights give the same print,
    whatever file format or folder they were loaded from."""
    h = hashlib.sha256()
    for key, t in sorted(vae.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.digest()


def vae_dir(root: Path) -> Path | None:
    for cand in (root / "vae", root):
        if (cand / "config.json").is_file():
            return cand
    return None


def load_model(name: str = DEFAULT_MODEL, device: str = "cpu") -> Model:
    """Load the VAE ``name`` (shipped name, local directory or hub id) in float32 on ``device``."""
    from diffusers import AutoencoderKL
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    shipped = shipped_models()
    if name in shipped:
        location = str(shipped[name])
        kwargs: dict[str, Any] = {}
        path: str = location
    elif Path(name).exists():
        if not name.encode("utf-8", "surrogateescape").decode("utf-8", "replace") == name:  # undecodable bytes
            raise ModelError(f"model {name!r}: the folder's name is not UTF-8, which the weights' reader and a .alat "
                             f"header (naming its model) need: rename the folder")
        folder = vae_dir(Path(name))
        if folder is None:
            raise ModelError(f"{name}: no config.json at its root or in vae/: not a diffusers model directory")
        location, path, kwargs = str(Path(name)), str(folder), {}
    elif "/" in name and not name.startswith((".", "/")) and name.count("/") == 1:
        location, path, kwargs = name, name, {"subfolder": "vae"}
    else:
        known = ", ".join(shipped) or "none"
        raise ModelError(f"model '{name}' not found: not a shipped model ({known}), a local directory "
                         f"or a Hugging Face repo id")
    try:
        with warnings.catch_warnings():  # diffusers/hub deprecation chatter is not the user's business
            warnings.simplefilter("ignore")
            vae = AutoencoderKL.from_pretrained(path, torch_dtype=torch.float32, low_cpu_mem_usage=False, **kwargs)
    except Exception as e:  # diffusers/hub raise many types (OSError, HTTP, JSON, safetensors)
        if kwargs:
            raise ModelError(f"cannot load model '{name}' from the Hugging Face hub (offline, or not in the "
                             f"local cache): download it where you can and pass its folder with --model DIR") from e
        raise ModelError(f"cannot load model '{name}': {type(e).__name__}: {str(e).splitlines()[0][:200]}") from e
    if vae.config.in_channels != 1 or vae.config.out_channels != 1:
        raise ModelError(f"model '{name}' is not a mel VAE: it takes {vae.config.in_channels} input channels, not 1")
    vae = vae.to(device).eval().requires_grad_(False)
    coder = load_coder_table(path) if Path(path).is_dir() else None
    model = Model(name=name, vae=vae, fingerprint=fingerprint(vae), location=location, coder=coder)
    # Channels-last convolutions: oneDNN's fastest layout on a CPU (the small model, one core, 2 windows:
    # encoder 140 -> 125 ms, decoder 404 -> 328 ms; latents the same to 2e-5). After the fingerprint, which
    # reads the weights in plain layout: a channels-last weight with a size-1 axis passes as contiguous
    # but has no byte view (tried: loading then fails), and the print stays as it was.
    vae.to(memory_format=torch.channels_last)
    use_subpixel_upsamplers(vae)  # the same function, 2.25x fewer multiply-adds (upsample.py)
    return model


def pick_device(device: str) -> str:
    """'auto' takes a GPU when there is one."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("no CUDA GPU is available here", "device")
    return device
