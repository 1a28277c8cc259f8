"""A hub model's own HiFi-GAN (transformers' SpeechT5HifiGan, in the model's ``vocoder/`` folder)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latentcodec.errors import ModelError
from latentcodec.models.loader import Model


class HifiGanVocoder:
    """A SpeechT5HifiGan: (frames, 64) log-mel -> frames * hop samples (its extra samples cropped)."""

    def __init__(self, model: torch.nn.Module, device: str = "cpu", hop: int = 160):
        self.model, self.device, self.hop = model, device, hop

    @torch.inference_mode()
    def __call__(self, log_mel: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        x = torch.from_numpy(log_mel).float().to(self.device)[None]
        wave = self.model(x).reshape(-1).float().cpu().numpy()
        return wave[:(len(log_mel) - 1) * self.hop]


def load_hifigan(model: Model, device: str = "cpu") -> torch.nn.Module:
    """The model's HiFi-GAN (``vocoder/``, transformers' SpeechT5HifiGan), in float32."""
    try:
        from transformers import SpeechT5HifiGan
    except ImportError as e:
        raise ModelError("the HiFi-GAN vocoder needs the transformers package: pip install transformers",
                         "vocoder") from e
    local = Path(model.location)
    try:
        if local.exists():
            if not (local / "vocoder" / "config.json").is_file():
                raise ModelError(f"model '{model.name}' has no HiFi-GAN (no vocoder/ folder)", "vocoder")
            voc = SpeechT5HifiGan.from_pretrained(str(local / "vocoder"))
        else:
            voc = SpeechT5HifiGan.from_pretrained(model.location, subfolder="vocoder")
    except ModelError:
        raise
    except Exception as e:
        raise ModelError(f"cannot load the HiFi-GAN of '{model.name}': {str(e).splitlines()[0][:200]}") from e
    return voc.to(device).eval().requires_grad_(False)
