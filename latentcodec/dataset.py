"""Training on stored latents: torch datasets of fixed-length latent crops over .alat files and tar shards of
them (e.g. for a latent-diffusion model), read chunk by chunk without decoding audio.

``LatentCrops`` is a map-style dataset (shuffled reading through a DataLoader's sampler). Why its index is a
few numpy arrays: a corpus of millions of clips would make a list of tuples per crop cost gigabytes, and
forked DataLoader workers would copy its pages as they touch its reference counts; arrays are a few objects,
shared by forked workers as they are. Crops are computed from a cumulative count, not listed.

``LatentStream`` is an iterable dataset for shards read in order (object storage, many nodes): shards split by
rank and by worker, a shuffle buffer, a seed per epoch, resumable from a position.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

try:
    import torch
    from torch.utils.data import Dataset, IterableDataset, get_worker_info
except ImportError as e:  # the plain install has no torch
    raise ImportError("latentcodec's datasets are torch datasets: pip install 'latentcodec[torch]'") from e

from latentcodec.errors import AlatFormatError, LatentCodecError
from latentcodec.format.container import AlatReader
from latentcodec.format.shards import (
    MEMBER_SUFFIX,
    Member,
    Source,
    open_source,
    read_table,
    refuse_twice,
    stream_members,
    walk,
)

OPEN_FILES = 64  # readers kept open per process; more files than this are reopened as needed


class _Strings:
    """Many strings as one UTF-8 byte array and an offset array: two objects however many strings."""

    def __init__(self, strings: list[str]):
        data = [s.encode("utf-8", "surrogateescape") for s in strings]
        self.bytes = np.frombuffer(b"".join(data), np.uint8)
        self.ends = np.cumsum([len(d) for d in data], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> str:
        start = int(self.ends[i - 1]) if i else 0
        return self.bytes[start : int(self.ends[i])].tobytes().decode("utf-8", "surrogateescape")

    @staticmethod
    def join(parts: list[_Strings]) -> _Strings:
        out = _Strings([])
        out.bytes = np.concatenate([p.bytes for p in parts] or [np.zeros(0, np.uint8)])
        lengths = [np.diff(p.ends, prepend=0) for p in parts]
        out.ends = np.cumsum(np.concatenate(lengths or [np.zeros(0, np.int64)]), dtype=np.int64)
        return out


FACTS = ("shard", "offset", "size", "channels", "samples", "hop", "chunk_frames")  # per file; shard -1: loose


def _group_facts(shard_id: int, offsets: np.ndarray, sizes: np.ndarray, header_facts: np.ndarray) -> np.ndarray:
    """(files, 7) rows of FACTS for one group: a shard's members (``shard_id``) or the loose files (-1)."""
    n = len(header_facts)
    return np.column_stack([np.full(n, shard_id), offsets, sizes, header_facts]).astype(np.int64).reshape(n, 7)


def _header_facts(sources: list[Source]) -> np.ndarray:
    """(channels, samples, hop, chunk frames) of each source, from its own header (shards without an index)."""
    rows = []
    for s in sources:
        with AlatReader(open_source(s)) as r:
            h = r.header
        rows.append((h.channels, h.num_samples, h.mel.hop, h.chunk_frames))
    return np.asarray(rows, np.int64).reshape(len(rows), 4)


def index_files(folder: Path) -> tuple[list[Path], _Strings, np.ndarray]:
    """(shard paths, names, facts) of every sample under ``folder``, sorted by key, each key once.

    ``names``: a loose file's path below ``folder``, a member's key; ``facts``: (files, 7) int64 of
    ``FACTS``. A shard's facts come from its index where it has one (checked against its headers), else from
    each member's header."""
    loose, shards = walk(folder)
    groups: list[tuple[list[str], np.ndarray]] = []
    if loose:
        names = [p.relative_to(folder).as_posix() for p in loose]
        facts = _header_facts(list(loose))
        groups.append((names, _group_facts(-1, np.zeros(len(names)), np.full(len(names), -1), facts)))
    for i, shard in enumerate(shards):
        t = read_table(shard)
        facts = t.facts if t.facts is not None else _header_facts(list(t.members()))
        groups.append((t.keys, _group_facts(i, t.offsets, t.sizes, facts)))
    order = _sorted_groups(groups)
    strings = _Strings.join([_Strings(groups[g][0]) for g in order])
    table = np.concatenate([groups[g][1] for g in order] or [np.zeros((0, 7), np.int64)])
    del groups
    keys = _Keys(strings, table[:, 0] < 0)
    if not keys.ascending():  # groups that interleave: sort the whole set (and find a key held twice)
        every = [keys[i] for i in range(len(strings))]
        perm = sorted(range(len(every)), key=every.__getitem__)
        refuse_twice([(every[i], _source_of(shards, folder, strings[i], table[i])) for i in perm])
        strings = _Strings([strings[i] for i in perm])
        table = table[perm]
    return shards, strings, table


def _sorted_groups(groups: list[tuple[list[str], np.ndarray]]) -> list[int]:
    """The groups (loose files, then each shard) in order of their first key."""

    def first(g: int) -> str:
        names, facts = groups[g]
        return names[0][: -len(MEMBER_SUFFIX)] if facts[0, 0] < 0 else names[0]

    return sorted((g for g in range(len(groups)) if groups[g][0]), key=first)


class _Keys:
    """The key of each file of a table: a member's name, or a loose file's path without its suffix."""

    def __init__(self, names: _Strings, loose: np.ndarray):
        self.names, self.loose = names, loose

    def __getitem__(self, i: int) -> str:
        name = self.names[i]
        return name[: -len(MEMBER_SUFFIX)] if self.loose[i] else name

    def ascending(self) -> bool:
        """Each key greater than the one before: sorted, and none twice."""
        prev = None
        for i in range(len(self.names)):
            key = self[i]
            if prev is not None and key <= prev:
                return False
            prev = key
        return True


def _source_of(shards: list[Path], folder: Path, name: str, facts: np.ndarray) -> Source:
    if facts[0] < 0:
        return folder / name
    return Member(shards[int(facts[0])], name, int(facts[1]), int(facts[2]))


class LatentCrops(Dataset):
    """Every ``crop_frames``-frame latent crop (stride ``stride``, default ``crop_frames``) of every audio
    channel of every .alat file under ``folder`` and in its tar shards (``alat encode --shard-size``), within
    the audio (not the last chunk's padding), in the order of the files' keys, then channel, then frame.

    Item i is a float32 tensor (latent channels, crop_frames, n_mels / 4). Decoded chunks are kept in a
    least-recently-used cache of ``cache_mb`` MiB per process (0: none), so a shuffled epoch over a data set
    that fits decodes each chunk once; a sequential pass needs only a few chunks.
    """

    def __init__(self, folder: str | Path, crop_frames: int, stride: int | None = None, cache_mb: float = 256.0):
        if crop_frames < 1 or (stride is not None and stride < 1):
            raise LatentCodecError(
                f"a crop of {crop_frames} frames at a stride of {stride}: both must be at least 1", "crop_frames"
            )
        self.folder, self.crop, self.stride = Path(folder), crop_frames, stride or crop_frames
        self.cache_bytes = int(cache_mb * 2**20)
        self.shards, self.names, self.facts = index_files(self.folder)
        frames = self.facts[:, 4] // self.facts[:, 5] // 4  # latent frames inside the audio
        self.per_channel = np.maximum(0, (frames - crop_frames) // self.stride + 1)
        self.ends = np.cumsum(self.per_channel * self.facts[:, 3], dtype=np.int64)
        if not len(self.ends) or not self.ends[-1]:
            raise LatentCodecError(f"{folder}: no .alat file holds a crop of {crop_frames} latent frames")
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._readers: OrderedDict[int, AlatReader] = OrderedDict()
        self._chunks: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self._cached = 0

    def __getstate__(self) -> dict:
        """What a spawned DataLoader worker gets: the index, no open file or cache."""
        state = dict(self.__dict__)
        for k in ("_readers", "_chunks"):
            state[k] = OrderedDict()
        state["_cached"] = 0
        return state

    def __len__(self) -> int:
        return int(self.ends[-1])

    def item(self, i: int) -> tuple[Source, int, int]:
        """(file or shard member, audio channel, first latent frame) of crop ``i``."""
        f, channel, first = self._locate(i)
        return self._source(f), channel, first

    def _locate(self, i: int) -> tuple[int, int, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"crop {i} of {len(self)}")
        f = int(np.searchsorted(self.ends, i, side="right"))
        r = i - (int(self.ends[f - 1]) if f else 0)
        n = int(self.per_channel[f])
        return f, r // n, (r % n) * self.stride

    def _source(self, f: int) -> Source:
        return _source_of(self.shards, self.folder, self.names[f], self.facts[f])

    def _reader(self, f: int) -> AlatReader:
        if self._pid != os.getpid():  # a forked worker: the parent's handles share file offsets with it
            self._reset()
        r = self._readers.pop(f, None)
        if r is None:
            source = self._source(f)
            r = AlatReader(open_source(source))
            h = r.header
            if (h.channels, h.num_samples, h.mel.hop, h.chunk_frames) != tuple(int(x) for x in self.facts[f, 3:]):
                r.close()
                raise AlatFormatError(f"{source}: its header disagrees with its shard's index (damaged shard)")
        self._readers[f] = r
        if len(self._readers) > OPEN_FILES:
            self._readers.popitem(last=False)[1].close()
        return r

    def _chunk(self, f: int, k: int, channel: int) -> np.ndarray:
        """Chunk ``k``'s latent of ``channel``, (latent channels, chunk frames, mel), from the cache if there."""
        key = (f, k, channel)
        z = self._chunks.pop(key, None)
        if z is None:
            z = self._reader(f).latent(k, channel)
            self._cached += z.nbytes
        self._chunks[key] = z
        while self._cached > self.cache_bytes and self._chunks:
            self._cached -= self._chunks.popitem(last=False)[1].nbytes
        return z

    def __getitem__(self, i: int) -> torch.Tensor:
        f, channel, first = self._locate(i)
        per = int(self.facts[f, 6]) // 4
        k0, k1 = first // per, (first + self.crop - 1) // per
        start = first - k0 * per
        if k0 == k1:
            return torch.from_numpy(self._chunk(f, k0, channel)[:, start : start + self.crop].copy())
        z = np.concatenate([self._chunk(f, k, channel) for k in range(k0, k1 + 1)], axis=1)
        return torch.from_numpy(np.ascontiguousarray(z[:, start : start + self.crop]))


def _open_shard(url: str) -> BinaryIO:
    """A local path, or (where webdataset is installed) any URL its ``gopen`` reads: pipe:, http(s), s3 via
    pipe, ..."""
    if os.path.exists(url) or "://" not in url and not url.startswith("pipe:"):
        return open(url, "rb")
    try:
        from webdataset import gopen
    except ImportError:
        raise LatentCodecError(f"{url}: reading shards from URLs needs webdataset (pip install webdataset)") from None
    return gopen(url, "rb")


def shard_urls(shards: str | Path | Sequence[str | Path]) -> list[str]:
    """A folder (its shards, sorted), one path or URL, a brace pattern (``d/{000000..000099}.tar``, expanded
    with braceexpand, which webdataset brings), or a list of them."""
    if isinstance(shards, (list, tuple)):
        return [u for s in shards for u in shard_urls(s)]
    text = str(shards)
    if Path(text).is_dir():
        return [str(p) for p in walk(Path(text))[1]]
    if "{" in text:
        try:
            from braceexpand import braceexpand
        except ImportError:
            raise LatentCodecError(f"{text}: a brace pattern needs braceexpand (pip install webdataset)") from None
        return list(braceexpand(text))
    return [text]


Lazy = tuple[bytes, str, int, int]  # a crop not yet decoded: (member bytes, its name, channel, first frame)


def _member_crops(data: bytes, label: str, crop: int, stride: int, decode: bool) -> list[np.ndarray | Lazy]:
    """Every crop of one member in LatentCrops' order: decoded (each channel's latents once), or lazy."""
    with AlatReader(_named(data, label)) as r:
        h = r.header
        frames = h.num_samples // h.mel.hop // 4
        firsts = range(0, frames - crop + 1, stride)
        if not decode:
            return [(data, label, c, f) for c in range(h.channels) for f in firsts]
        out: list[np.ndarray | Lazy] = []
        for c in range(h.channels):
            z = r.latents(c)
            out += [np.ascontiguousarray(z[:, f : f + crop]) for f in firsts]
        return out


def _named(data: bytes, label: str) -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.name = label
    return stream


def _tensor(item: np.ndarray | Lazy, crop: int) -> torch.Tensor:
    """A crop as a tensor; a lazy one decodes the one or two chunks it spans."""
    if isinstance(item, np.ndarray):
        return torch.from_numpy(item)
    data, label, channel, first = item
    with AlatReader(_named(data, label)) as r:
        per = r.header.chunk_frames // 4
        k0 = first // per
        z = np.concatenate([r.latent(k, channel) for k in range(k0, (first + crop - 1) // per + 1)], axis=1)
    start = first - k0 * per
    return torch.from_numpy(np.ascontiguousarray(z[:, start : start + crop]))


class LatentStream(IterableDataset):
    """The crops of :class:`LatentCrops` read from shards in order, for training from object storage on many
    nodes: each epoch the shards are shuffled (``seed``, ``epoch``) and split by rank, then by DataLoader
    worker, so that every crop of an epoch is read once by one worker; each worker shuffles its crops
    through a buffer of ``shuffle`` crops (0: the stored order).

    ``shards``: see :func:`shard_urls`. ``rank``/``world_size`` default to torch.distributed's. A position
    (:meth:`state_dict`: the epoch and how many crops this rank's DataLoader delivered) resumes the rest of
    the epoch with :meth:`load_state_dict`, given the DataLoader's ``batch_size`` and ``num_workers`` (it
    replays, without decoding, the crops each worker had sent: the DataLoader takes whole batches from its
    workers in turn)."""

    def __init__(
        self,
        shards: str | Path | Sequence[str | Path],
        crop_frames: int,
        stride: int | None = None,
        shuffle: int = 1000,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        self.urls, self.crop, self.stride = shard_urls(shards), crop_frames, stride or crop_frames
        if not self.urls:
            raise LatentCodecError(f"{shards}: no shards")
        if crop_frames < 1 or self.stride < 1 or shuffle < 0:
            raise LatentCodecError(
                f"a crop of {crop_frames} frames, stride {stride}, buffer {shuffle}: "
                f"crop and stride at least 1, buffer at least 0",
                "crop_frames",
            )
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        if rank is None or world_size is None:
            dist = torch.distributed
            ready = dist.is_available() and dist.is_initialized()
            rank, world_size = (dist.get_rank(), dist.get_world_size()) if ready else (0, 1)
        self.rank, self.world_size = rank, world_size
        self.skips: list[int] | None = None  # crops each worker of this rank already sent (a resumed epoch)
        self.rotation = 0  # a resumed epoch: the DataLoader's first worker plays the one whose turn came next

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose shard order and shuffle to use (call it before each epoch, as DistributedSampler)."""
        self.epoch, self.skips, self.rotation = epoch, None, 0

    def state_dict(self, delivered: int) -> dict[str, int]:
        """The position after this rank's DataLoader delivered ``delivered`` crops of the current epoch."""
        return {"epoch": self.epoch, "seed": self.seed, "delivered": delivered}

    def load_state_dict(self, state: dict[str, int], batch_size: int, num_workers: int) -> None:
        """Resume at ``state`` (from :meth:`state_dict`) with a DataLoader of ``batch_size`` and ``num_workers``."""
        self.epoch, self.seed = state["epoch"], state["seed"]
        workers = max(1, num_workers)
        totals = [sum(self._count(u) for u in self._worker_urls(w, workers)) for w in range(workers)]
        self.skips, self.rotation = delivered_by_worker(state["delivered"], batch_size, totals)

    def _worker_urls(self, worker: int, workers: int) -> list[str]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.urls))
        mine = [self.urls[i] for i in order][self.rank :: self.world_size]
        return mine[worker::workers]

    def _members(self, url: str) -> Iterator[tuple[bytes, str]]:
        with _open_shard(url) as f:
            for key, data in stream_members(f, url):
                yield data, f"{url}:{key}{MEMBER_SUFFIX}"

    def _count(self, url: str) -> int:
        return sum(len(_member_crops(d, label, self.crop, self.stride, False)) for d, label in self._members(url))

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = get_worker_info()
        workers = info.num_workers if info else 1
        worker = ((info.id if info else 0) + self.rotation) % workers
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker])
        skip = self.skips[worker] if self.skips else 0
        buffer: list[np.ndarray | Lazy] = []
        sent = 0
        for url in self._worker_urls(worker, workers):
            for data, label in self._members(url):
                buffer += _member_crops(data, label, self.crop, self.stride, decode=sent >= skip)
                while len(buffer) > self.shuffle:
                    sent += 1
                    item = _pop(buffer, rng)
                    if sent > skip:
                        yield _tensor(item, self.crop)
        while buffer:
            sent += 1
            item = _pop(buffer, rng)
            if sent > skip:
                yield _tensor(item, self.crop)


def _pop(buffer: list[Any], rng: np.random.Generator) -> Any:
    """A random element of ``buffer``, removed in O(1) (the last takes its place)."""
    j = int(rng.integers(len(buffer)))
    buffer[j], buffer[-1] = buffer[-1], buffer[j]
    return buffer.pop()


def delivered_by_worker(delivered: int, batch_size: int, totals: list[int]) -> tuple[list[int], int]:
    """(crops each worker had sent, the worker whose batch comes next) when a DataLoader delivered
    ``delivered`` crops in order: it takes one batch from each worker in turn, a worker's last batch may be
    short, and an exhausted worker drops out of the turn."""
    sent, left, turn = [0] * len(totals), delivered, 0
    while left > 0:
        if all(sent[w] >= totals[w] for w in range(len(totals))):
            raise LatentCodecError(f"a position of {delivered} crops: the epoch holds {sum(totals)}", "state")
        w = turn % len(totals)
        turn += 1
        take = min(batch_size, totals[w] - sent[w])
        if take > left:
            raise LatentCodecError(f"a position of {delivered} crops is not at a batch's end", "state")
        sent[w] += take
        left -= take
    return sent, turn % len(totals)
