"""A hub model's own HiFi-GAN (transformers' SpeechT5HifiGan, in the model's ``vocoder/`` folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentcodec.errors import ModelError
from latentcodec.models.checked import check_int, check_weights, hub_folder, meta_shapes, read_config, weight_shapes
from latentcodec.models.loader import Model

HIFIGAN_WEIGHTS = "model.safetensors"  # transformers' name for a SpeechT5HifiGan's weights
# Bounds on its config's size fields (AudioLDM2's: 64 mels, 1024 channels, 5 upsamplers, kernels to 16, dilations
# to 5); a list field's every entry is bounded, and holds at most 8 of them.
HIFIGAN_BOUNDS = {
    "model_in_dim": (1, 512),
    "upsample_initial_channel": (1, 4096),
    "upsample_rates": (1, 64),
    "upsample_kernel_sizes": (1, 128),
    "resblock_kernel_sizes": (1, 128),
    "resblock_dilation_sizes": (1, 64),
}


class HifiGanVocoder:
    """A SpeechT5HifiGan: (frames, 64) log-mel -> frames * hop samples (its extra samples cropped)."""

    def __init__(self, model: torch.nn.Module, device: str = "cpu", hop: int = 160):
        self.model, self.device, self.hop = model, device, hop

    @torch.inference_mode()
    def __call__(self, log_mel: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        x = torch.from_numpy(log_mel).float().to(self.device)[None]
        wave = self.model(x).reshape(-1).float().cpu().numpy()
        return wave[: (len(log_mel) - 1) * self.hop]


def load_hifigan(model: Model, device: str = "cpu") -> torch.nn.Module:
    """The model's HiFi-GAN (``vocoder/``, transformers' SpeechT5HifiGan), in float32."""
    try:
        from transformers import SpeechT5HifiGan
    except ImportError as e:
        raise ModelError(
            "the HiFi-GAN vocoder needs the transformers package: pip install transformers", "vocoder"
        ) from e
    local = Path(model.location)
    folder = (
        local / "vocoder" if local.exists() else hub_folder(model.location, "vocoder", ("config.json", HIFIGAN_WEIGHTS))
    )
    if not (folder / "config.json").is_file():
        raise ModelError(f"model '{model.name}' has no HiFi-GAN (no vocoder/ folder)", "vocoder")
    check_hifigan_folder(folder)
    try:
        voc = SpeechT5HifiGan.from_pretrained(str(folder), use_safetensors=True)
    except Exception as e:  # transformers raises many types (OSError, JSON, safetensors)
        raise ModelError(f"cannot load the HiFi-GAN of '{model.name}': {str(e).splitlines()[0][:200]}") from e
    # transformers declares PreTrainedModel.to through functools.wraps(Module.to), which mypy reads unbound
    return voc.to(device).eval().requires_grad_(False)  # type: ignore[arg-type]


def check_hifigan_folder(folder: Path) -> None:
    """Its config's size fields within HIFIGAN_BOUNDS (lists of at most 8), then the network it describes,
    built on the meta device, against the tensors in its safetensors header."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    where, weights = folder / "config.json", folder / HIFIGAN_WEIGHTS
    cfg = read_config(where)
    for key, (lo, hi) in HIFIGAN_BOUNDS.items():
        for v in _entries(cfg.get(key, lo), key, where):
            check_int(v, key, lo, hi, where)
    if not weights.is_file():
        raise ModelError(
            f"{folder}: no {HIFIGAN_WEIGHTS} (weights are read from safetensors only, never from a pickled .bin)",
            "vocoder",
        )
    expected = meta_shapes(lambda: SpeechT5HifiGan(SpeechT5HifiGanConfig.from_dict(cfg)), where)
    check_weights(expected, weight_shapes(weights), weights)


def _entries(value: Any, key: str, where: Path, depth: int = 2) -> list:
    """The values of a config field: itself, or a list's entries, lists in it too (``depth`` deep), at most 8
    per list."""
    if not isinstance(value, list):
        return [value]
    if len(value) > 8 or depth == 0:
        raise ModelError(f"{where}: {key} is not a list of up to 8 entries", "vocoder")
    return [x for v in value for x in _entries(v, key, where, depth - 1)]
