"""Folder encode into tar shards (``--shard-size``): every input is encoded as in folder mode, into a hidden
staging folder of OUT_DIR, and the finished files are packed, in the plan's order, into ``NNNNNN.tar``
shards of at most the given size (one file larger than that gets a shard of its own).

Why staging: a shard is written whole or not at all (a temporary file renamed), so an interrupted run
leaves complete shards and complete staged files; the same command again skips the keys the shards
hold and the staged files that are complete, encodes the rest and packs on. A staged file is removed once
a shard holds it."""

from __future__ import annotations

import json
from pathlib import Path

from latentcodec.errors import LatentCodecError
from latentcodec.format.container import AlatReader
from latentcodec.format.shards import (
    BLOCK,
    INDEX_ENTRY_BYTES,
    INDEX_FIXED_BYTES,
    SHARD_NAME,
    Member,
    members,
    open_source,
    tar_bytes,
    write_shard,
)
from latentcodec.fs import atomic_output, remove_stale_temporaries
from latentcodec.jobs.folders import model_name, prepare, relative_key
from latentcodec.jobs.worker import Job, Outcome
from latentcodec.options import EncodeOptions

STAGING = ".alat-staging"  # OUT_DIR's hidden folder of encoded files not yet in a shard
TAR_END = 21 * BLOCK  # at most what tarfile adds at the end: two zero blocks, then padding to a 10,240-byte record
INDEX_COST = BLOCK + tar_bytes(INDEX_FIXED_BYTES)  # the index member with no entries, its padding at most a block
MAX_SHARD_BYTES = 1 << 40


def member_cost(key: str, size: int) -> int:
    """Upper bound of what one member adds to a shard (a long or non-ASCII name takes a PAX header), its
    entry in the shard's index included."""
    name = (key + ".alat").encode("utf-8", "surrogateescape")
    long = len(name) > 100 or not name.isascii()
    entry = len(json.dumps(key + ".alat")) + INDEX_ENTRY_BYTES
    return tar_bytes(size) + entry + (2 * BLOCK + -(-(len(name) + 64) // BLOCK) * BLOCK if long else 0)


class ShardPacker:
    """Packs staged files into shards as the run finishes them, always in the plan's order, so that the
    shards' membership does not depend on which worker finished first."""

    def __init__(
        self, out_dir: Path, staging: Path, order: list[Job], staged: set[Path], shard_size: int, first_number: int
    ):
        self.out_dir, self.staging, self.order, self.size = out_dir, staging, order, shard_size
        self.state: dict[Path, bool] = {t: True for t in staged}  # target -> written (False: failed)
        self.pos, self.group_bytes, self.number = 0, TAR_END + INDEX_COST, first_number
        self.group: list[Job] = []
        self.written: list[Path] = []

    def add(self, outcome: Outcome) -> None:
        """One finished job; packs every shard that is full."""
        self.state[outcome.job.target] = outcome.error is None
        self._advance()

    def finish(self) -> None:
        """The run is over: the rest goes into one last shard; the staging folder goes if empty."""
        self._advance()
        if self.group:
            self._write()
        for d in sorted((p for p in self.staging.rglob("*") if p.is_dir()), reverse=True) + [self.staging]:
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()

    def _advance(self) -> None:
        while self.pos < len(self.order) and self.order[self.pos].target in self.state:
            job = self.order[self.pos]
            self.pos += 1
            if not self.state[job.target]:
                continue  # failed: listed by the run; a rerun retries it into a later shard
            cost = member_cost(self._key(job), job.target.stat().st_size)
            if self.group and self.group_bytes + cost > self.size:
                self._write()
            self.group.append(job)
            self.group_bytes += cost

    def _key(self, job: Job) -> str:
        return job.target.relative_to(self.staging).with_suffix("").as_posix()

    def _write(self) -> None:
        path = self.out_dir / f"{self.number:06d}.tar"
        with atomic_output(path, overwrite=False) as tmp, open(tmp, "wb") as f:
            write_shard(f, [(self._key(j), j.target) for j in self.group])
        for j in self.group:
            j.target.unlink()
        self.written.append(path)
        self.number += 1
        self.group, self.group_bytes = [], TAR_END + INDEX_COST


def prepare_shards(
    in_dir: Path, out_dir: Path, options: EncodeOptions, shard_size: int
) -> tuple[list[Job], int, ShardPacker]:
    """(jobs to encode, inputs already encoded (in a shard or staged), the packer) of a sharded folder encode. A shard
    that holds a key made from another input (another size or model) is refused before any work."""
    if not 0 < shard_size <= MAX_SHARD_BYTES:
        raise LatentCodecError(f"a shard size of {shard_size} bytes: use 1 byte to 1 TiB", "shard_size")
    if out_dir.exists() and not out_dir.is_dir():
        raise LatentCodecError(f"{out_dir}: exists and is not a folder")
    staging = out_dir / STAGING
    todo, staged = prepare(in_dir, staging, options)
    shards = sorted(p for p in out_dir.glob("*.tar") if SHARD_NAME.fullmatch(p.name)) if out_dir.is_dir() else []
    next_number = max((int(p.stem) for p in shards), default=-1) + 1
    remove_stale_temporaries(out_dir / f"{next_number:06d}.tar")  # the shard an interrupted run was writing
    held = {m.key: m for p in shards for m in members(p)}
    jobs = {relative_key(j.source, in_dir): j for j in todo + staged}
    for key in held.keys() & jobs.keys():
        _check_held(held[key], jobs[key], options)
    for j in staged:
        if relative_key(j.source, in_dir) in held:  # packed just before an interruption could remove it
            j.target.unlink()
    order = [j for k, j in sorted(jobs.items()) if k not in held]
    pending = {j.target for j in order}
    packer = ShardPacker(out_dir, staging, order, {j.target for j in staged} & pending, shard_size, next_number)
    run = [j for j in todo if j.target in pending]
    return run, len(jobs) - len(run), packer


def _check_held(member: Member, job: Job, options: EncodeOptions) -> None:
    """A key a shard holds must come from this input and model, as a complete folder output must."""
    with AlatReader(open_source(member)) as r:
        h = r.header
    if h.input_size != job.source_path.stat().st_size or h.model_name != model_name(options):
        raise LatentCodecError(
            f"{member.name} was encoded from another input or model than {job.source}: remove "
            f"that shard (or write to another folder) to encode it again; nothing was done"
        )
