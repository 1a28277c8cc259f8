"""A folder run as one library call: plan, skip complete outputs, run the rest on workers (or Ray actors),
pack shards as files finish, and say what happened in a result object. The CLI's folder mode only draws
its progress and prints the result; Python drives the same run:

    from latentcodec.jobs.folder_run import FolderRun, run_folder
    result = run_folder(FolderRun(input=Path("wavs"), output=Path("alats"), options=EncodeOptions(), workers=2))
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from latentcodec.errors import LatentCodecError
from latentcodec.jobs.folders import kind_of, model_name, prepare
from latentcodec.jobs.worker import Job, Outcome, WorkerSetup
from latentcodec.options import DecodeOptions, EncodeOptions

if TYPE_CHECKING:
    from latentcodec.jobs.packing import ShardPacker

Progress = Callable[[int, int, float], None]  # (files done, files to do, hours of audio done); first at (0, n, 0)


@dataclass(frozen=True, kw_only=True)
class FolderRun:
    """Every file under ``input`` encoded (``EncodeOptions``) or decoded (``DecodeOptions``) into ``output``."""

    input: Path
    output: Path
    options: EncodeOptions | DecodeOptions
    overwrite: bool = False  # replace a file in the way that is not this run's complete output
    workers: int = 1  # processes, or Ray actors with ``ray``, each loading the model once
    ray: str | None = None  # 'local', 'auto' or a cluster's address: run on Ray
    threads: int | None = None  # the runtime's threads per worker (None: the cores shared out)
    suffix: str = ".wav"  # decoding: the outputs' format
    shard_size: int | None = None  # encoding: pack the outputs into tar shards of at most this many bytes


@dataclass
class FolderResult:
    """What a folder run did. ``interrupted``: stopped by Ctrl-C; the same run again resumes it."""

    written: int
    reused: int  # outputs already complete (or already in a shard) from an earlier run
    failed: list[Outcome]
    interrupted: bool
    hours_of_audio: float
    seconds: float
    runtime: str  # what ran the workers' model: onnx or torch
    to_do: int  # files this run set out to code
    shards_written: list[Path] = field(default_factory=list)


WORKER_BYTES = 600 << 20  # what one folder worker holds: the model, a batch's activations, the vocoder


def max_workers() -> int:
    """Workers this machine can hold: its usable cores, and its memory at ~600 MB a worker."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(1, min(len(os.sched_getaffinity(0)), memory // WORKER_BYTES))


def workers_problem(workers: int, ray: str | None) -> str | None:
    """Why ``workers`` do not fit this machine, or None (a Ray cluster's actors run elsewhere: not bounded)."""
    if (ray is None or ray == "local") and workers > max_workers():
        return (
            f"{workers} workers: this machine holds at most {max_workers()} (its cores, and "
            f"{WORKER_BYTES >> 20} MB of memory each)"
        )
    return None


def folder_runtime(run: FolderRun) -> str:
    """What runs the workers' model (decoding: the one asked for, else the default), by the rule they load
    it with; refused here, before any work, when it cannot run."""
    from latentcodec.models.loader import choose_runtime
    from latentcodec.vocoders.registry import decode_precision, decoder_name

    o = run.options
    name = model_name(o)
    if isinstance(o, EncodeOptions):
        return choose_runtime(o.runtime, name, o.device, o.precision, "encode", None)  # workers start once
    runs = decoder_name(name, o.decoder) or name
    precision = decode_precision(name, o.vocoder, o.decoder_precision)
    return choose_runtime(o.runtime, runs, o.device, precision, "decode", None)


def run_folder(run: FolderRun, progress: Progress | None = None) -> FolderResult:
    """Run ``run`` to its end (or Ctrl-C): one bad file never stops it, and its error comes back in
    ``failed``; outputs appear whole or not at all."""
    from latentcodec.jobs.folders import run_batch

    problem = workers_problem(run.workers, run.ray)
    if problem:
        raise LatentCodecError(problem, "jobs")
    runtime = folder_runtime(run)
    todo, reused, packer = _plan(run)
    t, done = time.perf_counter(), []

    def step(outcome: Outcome) -> None:
        done.append(outcome)
        if packer is not None:
            packer.add(outcome)
        if progress:
            progress(len(done), len(todo), sum(o.seconds for o in done) / 3600)

    if progress:
        progress(0, len(todo), 0.0)
    setup = WorkerSetup(kind_of(run.options), run.options, run.overwrite, run.threads, run.workers)
    interrupted = False
    try:
        run_batch(todo, setup, step, run.ray)
    except KeyboardInterrupt:
        interrupted = True
    if packer is not None and not interrupted:
        packer.finish()
    failed = [o for o in done if o.error]
    return FolderResult(
        written=len(done) - len(failed),
        reused=reused,
        failed=failed,
        interrupted=interrupted,
        hours_of_audio=sum(o.seconds for o in done) / 3600,
        seconds=time.perf_counter() - t,
        runtime=runtime,
        to_do=len(todo),
        shards_written=packer.written if packer else [],
    )


def _plan(run: FolderRun) -> tuple[list[Job], int, ShardPacker | None]:
    """(jobs to run, outputs already complete, the shard packer when packing)."""
    if run.shard_size:
        from latentcodec.jobs.packing import prepare_shards

        if not isinstance(run.options, EncodeOptions):
            raise LatentCodecError("shards are written when encoding a folder", "shard_size")
        todo, held, packer = prepare_shards(run.input, run.output, run.options, run.shard_size)
        return todo, held, packer
    if isinstance(run.options, DecodeOptions) and (run.options.start or run.options.duration is not None):
        raise LatentCodecError("a folder run decodes whole files: give no start or duration", "start")
    todo, skipped = prepare(run.input, run.output, run.options, run.suffix)
    return todo, len(skipped), None
