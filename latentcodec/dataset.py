"""Training on stored latents: a torch Dataset of fixed-length latent crops over a folder of .alat files
and tar shards of them (e.g. for a latent-diffusion model), read chunk by chunk without decoding audio.

Why it keeps state: a training loop reads many overlapping crops of each file. Parsing a file's header and
index once per process, and decoding each chunk once for all the crops that overlap it, is what brings
read-back to the speed of float16 ``.npy`` memmaps (``bench/crops.py``); the state is per process, so
DataLoader workers (forked or spawned) each build their own and share no file handle.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset
except ImportError as e:  # the plain install has no torch
    raise ImportError("latentcodec.LatentCrops is a torch Dataset: pip install 'latentcodec[torch]'") from e

from latentcodec.errors import LatentCodecError
from latentcodec.format.container import AlatReader
from latentcodec.format.shards import Source, open_source, sources_under

OPEN_FILES = 64  # readers kept open per process; more files than this are reopened as needed


class LatentCrops(Dataset):
    """Every ``crop_frames``-frame latent crop (stride ``stride``, default ``crop_frames``) of every audio
    channel of every .alat file under ``folder`` and in its tar shards (``alat encode --shard-size``), within
    the audio (not the last chunk's padding).

    Item i is a float32 tensor (latent channels, crop_frames, n_mels / 4). Decoded chunks are kept in a
    least-recently-used cache of ``cache_mb`` MiB per process (0: none), so a shuffled epoch over a data set
    that fits decodes each chunk once; a sequential pass needs only a few chunks.
    """

    def __init__(self, folder: str | Path, crop_frames: int, stride: int | None = None, cache_mb: float = 256.0):
        self.crop, stride = crop_frames, stride or crop_frames
        self.cache_bytes = int(cache_mb * 2 ** 20)
        self.items: list[tuple[Source, int, int]] = []  # (file or shard member, audio channel, first latent frame)
        self.chunk_latent_frames: dict[Source, int] = {}
        for path in sources_under(Path(folder)):
            with AlatReader(open_source(path)) as r:
                h = r.header
            frames = h.num_samples // h.mel.hop // 4  # latent frames inside the audio
            self.chunk_latent_frames[path] = h.chunk_frames // 4
            self.items += [(path, c, f) for c in range(h.channels) for f in range(0, frames - crop_frames + 1, stride)]
        if not self.items:
            raise LatentCodecError(f"{folder}: no .alat file holds a crop of {crop_frames} latent frames")
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._readers: OrderedDict[Source, AlatReader] = OrderedDict()
        self._chunks: OrderedDict[tuple[Source, int, int], np.ndarray] = OrderedDict()
        self._cached = 0

    def __getstate__(self) -> dict:
        """What a spawned DataLoader worker gets: the item list, no open file or cache."""
        state = dict(self.__dict__)
        for k in ("_readers", "_chunks"):
            state[k] = OrderedDict()
        state["_cached"] = 0
        return state

    def __len__(self) -> int:
        return len(self.items)

    def _reader(self, path: Source) -> AlatReader:
        if self._pid != os.getpid():  # a forked worker: the parent's handles share file offsets with it
            self._reset()
        r = self._readers.pop(path, None) or AlatReader(open_source(path))
        self._readers[path] = r
        if len(self._readers) > OPEN_FILES:
            self._readers.popitem(last=False)[1].close()
        return r

    def _chunk(self, path: Source, k: int, channel: int) -> np.ndarray:
        """Chunk ``k``'s latent of ``channel``, (latent channels, chunk frames, mel), from the cache if there."""
        key = (path, k, channel)
        z = self._chunks.pop(key, None)
        if z is None:
            z = self._reader(path).latent(k, channel)
            self._cached += z.nbytes
        self._chunks[key] = z
        while self._cached > self.cache_bytes and self._chunks:
            self._cached -= self._chunks.popitem(last=False)[1].nbytes
        return z

    def __getitem__(self, i: int) -> torch.Tensor:
        path, channel, first = self.items[i]
        per = self.chunk_latent_frames[path]
        k0, k1 = first // per, (first + self.crop - 1) // per
        start = first - k0 * per
        if k0 == k1:
            return torch.from_numpy(self._chunk(path, k0, channel)[:, start:start + self.crop].copy())
        z = np.concatenate([self._chunk(path, k, channel) for k in range(k0, k1 + 1)], axis=1)
        return torch.from_numpy(np.ascontiguousarray(z[:, start:start + self.crop]))
