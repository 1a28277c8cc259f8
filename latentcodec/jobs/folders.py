"""Folder mode: encode or decode every file of a tree (decoding: also every member of its tar shards) into
a mirrored tree, in worker processes that each load the model once. One bad file never stops the batch;
outputs that are already complete and valid are skipped, so an interrupted batch resumes where it stopped
(outputs appear whole or not at all)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from latentcodec.audio.io import AUDIO_SUFFIXES, output_suffix, sound_path
from latentcodec.errors import LatentCodecError
from latentcodec.format.shards import Member, Source, open_source, sources_under
from latentcodec.fs import is_folder, remove_stale_temporaries
from latentcodec.jobs.worker import Job, Outcome, WorkerSetup, init_worker, run_job
from latentcodec.options import DecodeOptions, EncodeOptions


def plan(in_dir: Path, out_dir: Path, kind: str, suffix: str = ".wav") -> list[Job]:
    """Every input under ``in_dir`` (audio files to encode; .alat files and the members of .tar shards to
    decode) with its output under ``out_dir`` at the same relative path (a member's: its key), the suffix
    changed (to ``suffix`` when decoding: its format). Two inputs that would share an output (``a.wav`` and
    ``a.flac``, or one key in two shards) are refused before any work: one of them would be lost, and a
    rerun could not tell which one the output holds."""
    new_suffix = ".alat" if kind == "encode" else output_suffix(suffix)
    inside = out_dir.resolve()
    jobs = [
        Job(s, out_dir / (relative_key(s, in_dir) + new_suffix))
        for s in input_files(in_dir, kind)
        if inside not in (s.shard if isinstance(s, Member) else s).resolve().parents
    ]
    first: dict[Path, Source] = {}
    clashes = []
    for j in jobs:
        if first.setdefault(j.target, j.source) != j.source:
            clashes.append((first[j.target], j.source, j.target))
    if clashes:
        a, b, target = (x.name if isinstance(x, Member) else x for x in clashes[0])
        more = f" (and {len(clashes) - 1} more such pairs)" if len(clashes) > 1 else ""
        raise LatentCodecError(
            f"{a} and {b} would both be written to {target}{more}: rename one, or "
            f"{kind} them into separate folders; nothing was done"
        )
    return jobs


def relative_key(source: Source, in_dir: Path) -> str:
    """The input's path below ``in_dir`` without its suffix (a shard member's key as stored)."""
    return source.key if isinstance(source, Member) else source.relative_to(in_dir).with_suffix("").as_posix()


def prepare(
    in_dir: Path, out_dir: Path, options: EncodeOptions | DecodeOptions, suffix: str = ".wav"
) -> tuple[list[Job], list[Job]]:
    """(jobs to run, jobs whose output is already complete) of a folder run; removes the temporary files
    an interrupted earlier run left beside the outputs."""
    jobs = plan(in_dir, out_dir, kind_of(options), suffix)
    remove_stale_temporaries(*(j.target for j in jobs))
    done = [j for j in jobs if is_complete(j, options)]
    return [j for j in jobs if j not in done], done


def input_files(in_dir: Path, kind: str) -> list[Source]:
    """The audio files (kind 'encode') under ``in_dir``, or its .alat files and shard members ('decode'),
    sorted. A folder that cannot be listed fails the run in one line (its files would be lost in silence);
    a file that cannot be looked up is a job, whose worker says why it fails."""
    if not is_folder(in_dir):
        raise LatentCodecError(f"{in_dir}: no such folder")
    try:
        return list(sources_under(in_dir)) if kind == "decode" else list(_audio_files(in_dir))
    except OSError as e:
        raise LatentCodecError(f"{e.filename or in_dir}: cannot read ({e.strerror or e}); nothing was done") from e


def audio_files(in_dir: Path) -> list[Path]:
    """The audio files under ``in_dir``, sorted, by :func:`input_files`' rules."""
    return [p for p in input_files(in_dir, "encode") if isinstance(p, Path)]


def _audio_files(in_dir: Path) -> list[Path]:
    """Audio files by suffix under ``in_dir`` (links to files followed, links to folders not)."""

    def refuse(e: OSError) -> None:
        raise e

    found = []
    for root, _, files in os.walk(in_dir, onerror=refuse):
        for name in files:
            path = Path(root, name)
            if path.suffix.lower() in AUDIO_SUFFIXES and _file_or_unknown(path):
                found.append(path)
    return sorted(found)


def _file_or_unknown(path: Path) -> bool:
    """A file, or something that cannot be looked up (a link into a folder that may not be read)."""
    try:
        return path.is_file()
    except OSError:
        return True


def kind_of(options: EncodeOptions | DecodeOptions) -> str:
    """'encode' or 'decode': the direction the options are for."""
    return "encode" if isinstance(options, EncodeOptions) else "decode"


def model_name(options: EncodeOptions | DecodeOptions) -> str:
    """The name of the model an encode run writes with (a file records it)."""
    from latentcodec.models.registry import DEFAULT_MODEL

    model = options.model
    return (model if isinstance(model, str) or model is None else model.name) or DEFAULT_MODEL


def is_complete(job: Job, options: EncodeOptions | DecodeOptions) -> bool:
    """An output that a finished run of the same job wrote: a .alat whose index and end marker hold, made
    from an input of the source's size with the model asked for; or audio that soundfile reads with the
    rate asked for and the frame count its .alat promises."""
    from latentcodec.format.container import AlatReader

    try:
        if not job.target.is_file():  # may raise: a key's name too long for the file system
            return False
        if isinstance(options, EncodeOptions):
            with AlatReader(job.target) as r:
                h = r.header
            return h.input_size == os.stat(job.source_path).st_size and h.model_name == model_name(options)
        import soundfile as sf

        from latentcodec.codec import output_frames, output_rate

        with AlatReader(open_source(job.source)) as r:
            h = r.header
        info = sf.info(sound_path(job.target))
        return (
            info.samplerate == output_rate(h, options.sample_rate)
            and info.channels == h.channels
            and info.frames == output_frames(h, info.samplerate)
        )
    except (LatentCodecError, RuntimeError, OSError):
        return False


def run_batch(
    jobs: list[Job], setup: WorkerSetup, progress: Callable[[Outcome], None] | None = None, ray: str | None = None
) -> list[Outcome]:
    """Run ``jobs`` on ``setup.workers`` processes (1: in this process), or, given ``ray`` ('local', 'auto' or
    a cluster's address), on that many Ray actors; returns every outcome.

    ``setup.threads``: the runtime's threads per worker; by default the cores shared out between the
    processes, one per Ray actor. Outputs are byte-identical only between runs with the same count
    (oneDNN's convolutions round differently with another one)."""
    if not jobs:
        return []
    if ray:
        from latentcodec.jobs.ray_actors import ray_outcomes

        source = ray_outcomes(jobs, setup, ray)
    else:
        source = _outcomes(jobs, setup)
    outcomes = []
    for outcome in source:
        outcomes.append(outcome)
        if progress:
            progress(outcome)
    return outcomes


def _outcomes(jobs: list[Job], setup: WorkerSetup) -> Iterator[Outcome]:
    if setup.workers == 1 or len(jobs) <= 1:
        init_worker(setup)
        yield from map(run_job, jobs)
        return
    with _sigint_ignored():
        pool = mp.get_context("spawn").Pool(setup.workers, init_worker, (setup,))
    try:
        with pool:  # on leaving, the pool ends its workers (SIGTERM) and waits for them
            yield from pool.imap_unordered(run_job, jobs)
    except BaseException:  # Ctrl-C, or the consumer gone: the workers were ended mid-write, so what they
        remove_stale_temporaries(*(j.target for j in jobs))  # were writing goes now, not on the rerun
        raise


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while the pool's processes start: they keep it ignored from their first instruction
    (Python leaves an inherited SIG_IGN alone), so Ctrl-C, which the terminal sends to the whole process
    group, is the parent's alone to report, once, never a worker's traceback, not even mid-import."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
