"""Fixtures: tiny AutoencoderKLs saved with save_pretrained and loaded through the real loader, and
synthetic audio files. Nothing here touches the network."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DEV = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "dev"


def save_tiny_vae(folder: Path, seed: int, subfolder: bool = False, latent_channels: int = 8) -> Path:
    """A ~60k-parameter AutoencoderKL with AudioLDM2's layout (1 -> 8 channels, 4x down on both axes)."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=1, out_channels=1, latent_channels=latent_channels, block_out_channels=(8, 16, 16),
                        layers_per_block=1, norm_num_groups=4, down_block_types=("DownEncoderBlock2D",) * 3,
                        up_block_types=("UpDecoderBlock2D",) * 3)
    vae.save_pretrained(folder / "vae" if subfolder else folder)
    return folder


def save_tiny_hifigan(folder: Path) -> None:
    """A ~10k-parameter SpeechT5HifiGan (64 mel bands in, 160 samples per frame out) in ``folder/vocoder``."""
    import torch
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(0)
    cfg = SpeechT5HifiGanConfig(model_in_dim=64, sampling_rate=16000, upsample_initial_channel=16,
                                upsample_rates=[4, 4, 10], upsample_kernel_sizes=[8, 8, 20], resblock_kernel_sizes=[3],
                                resblock_dilation_sizes=[[1, 3]], normalize_before=False)
    SpeechT5HifiGan(cfg).save_pretrained(folder / "vocoder")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = save_tiny_vae(tmp_path_factory.mktemp("tiny"), seed=0, subfolder=True)
    save_tiny_hifigan(folder)
    return str(folder)


@pytest.fixture(scope="session")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(save_tiny_vae(tmp_path_factory.mktemp("other"), seed=1))


def default_sigint() -> None:
    """For a child that a test interrupts: SIGINT as a terminal's shell gives it. A child started with SIGINT
    ignored keeps it ignored (Python installs its handler only where it is not), and in a long suite the test
    process itself may have it ignored at the system level by a library it loaded."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def tone(seconds: float, rate: int, channels: int, seed: int = 0) -> np.ndarray:
    """A chord with a little noise and an amplitude envelope; channels differ."""
    n = max(1, int(round(seconds * rate)))
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    out = [0.3 * np.sin(2 * np.pi * (220 * (c + 1)) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))
           + 0.02 * rng.standard_normal(n) for c in range(channels)]
    return np.stack(out, axis=1).astype(np.float32)


@pytest.fixture
def make_wav(tmp_path: Path):
    def make(name: str, seconds: float, rate: int = 16000, channels: int = 1, subtype: str = "PCM_16") -> Path:
        path = tmp_path / name
        sf.write(str(path), tone(seconds, rate, channels), rate, subtype=subtype)
        return path
    return make
