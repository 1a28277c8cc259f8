"""Training on stored latents: a torch Dataset of fixed-length latent crops over a folder of .alat files
(e.g. for a latent-diffusion model), read chunk by chunk without decoding audio."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from latentcodec.errors import LatentCodecError
from latentcodec.format.container import AlatReader


class LatentCrops(Dataset):
    """Every ``crop_frames``-frame latent crop (stride ``stride``, default ``crop_frames``) of every audio
    channel of every .alat file under ``folder``, within the audio (not the last chunk's padding).

    Item i is a float32 tensor (latent channels, crop_frames, n_mels / 4). Files are opened per item, so
    DataLoader workers share nothing; only the chunks a crop overlaps are read.
    """

    def __init__(self, folder: str | Path, crop_frames: int, stride: int | None = None):
        self.crop, stride = crop_frames, stride or crop_frames
        self.items: list[tuple[Path, int, int]] = []  # (file, audio channel, first latent frame)
        self.chunk_latent_frames: dict[Path, int] = {}
        for path in sorted(Path(folder).rglob("*.alat")):
            with AlatReader(path) as r:
                h = r.header
            frames = h.num_samples // h.mel.hop // 4  # latent frames inside the audio
            self.chunk_latent_frames[path] = h.chunk_frames // 4
            self.items += [(path, c, f) for c in range(h.channels) for f in range(0, frames - crop_frames + 1, stride)]
        if not self.items:
            raise LatentCodecError(f"{folder}: no .alat file holds a crop of {crop_frames} latent frames")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        path, channel, first = self.items[i]
        per = self.chunk_latent_frames[path]
        k0, k1 = first // per, (first + self.crop - 1) // per
        with AlatReader(path) as r:
            z = np.concatenate([r.latent(k, channel) for k in range(k0, k1 + 1)], axis=1)
        start = first - k0 * per
        return torch.from_numpy(np.ascontiguousarray(z[:, start:start + self.crop]))
