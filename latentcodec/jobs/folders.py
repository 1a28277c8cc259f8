"""Folder mode: encode or decode every file of a tree into a mirrored tree, in worker processes that each
load the model once. One bad file never stops the batch; outputs that are already complete and valid
are skipped, so an interrupted batch resumes where it stopped (outputs appear whole or not at all)."""
from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .audio_io import AUDIO_SUFFIXES, output_suffix
from .errors import LatentCodecError

_WORKER: dict[str, Any] = {}  # the model and options of this worker process


@dataclass
class Job:
    source: Path
    target: Path


@dataclass
class Outcome:
    job: Job
    error: str | None  # one line, or None when the file was written
    seconds: float  # of audio


def plan(in_dir: Path, out_dir: Path, kind: str, suffix: str = ".wav") -> list[Job]:
    """Every input under ``in_dir`` (audio files to encode, .alat files to decode) with its output under
    ``out_dir`` at the same relative path, the suffix changed (to ``suffix`` when decoding: its format)."""
    new_suffix = ".alat" if kind == "encode" else output_suffix(suffix)
    sources = [p for p in input_files(in_dir, kind) if out_dir.resolve() not in p.resolve().parents]
    return [Job(p, out_dir / p.relative_to(in_dir).with_suffix(new_suffix)) for p in sources]


def input_files(in_dir: Path, kind: str) -> list[Path]:
    """The audio files (kind 'encode') or .alat files ('decode') under ``in_dir``, sorted."""
    if not in_dir.is_dir():
        raise LatentCodecError(f"{in_dir}: no such folder")
    wanted = AUDIO_SUFFIXES if kind == "encode" else {".alat"}
    return sorted(p for p in in_dir.rglob("*") if p.suffix.lower() in wanted and p.is_file())


def is_complete(job: Job, kind: str) -> bool:
    """An output that a finished run wrote: a .alat whose index and end marker hold, or audio that
    soundfile reads with the frame count its .alat promises."""
    if not job.target.is_file():
        return False
    from .container import AlatReader

    try:
        if kind == "encode":
            with AlatReader(job.target):
                return True
        import soundfile as sf

        with AlatReader(job.source) as r:
            h = r.header
        info = sf.info(str(job.target))
        from .codec import output_frames

        return info.channels == h.channels and info.frames == output_frames(h, info.samplerate)
    except (LatentCodecError, RuntimeError):
        return False


def _init(kind: str, opts: dict[str, Any], threads: int | None, workers: int = 1) -> None:
    """Worker start: load the model once. torch's threads as given, or its default shared out between the
    ``workers`` (one worker keeps a single call's count, and so its exact bytes)."""
    import torch

    from .models import DEFAULT_MODEL, load_model, pick_device

    torch.set_num_threads(threads or max(1, torch.get_num_threads() // workers))
    device = pick_device(opts.pop("device", "auto"))
    if kind == "encode":
        opts["model"] = load_model(opts.get("model") or DEFAULT_MODEL, device)
    _WORKER.update(kind=kind, opts={**opts, "device": device}, models={})


def _run(job: Job) -> Outcome:
    """One file, in a worker; any error a user can cause comes back as one line."""
    from .codec import decode_file, encode_file

    kind, opts = _WORKER["kind"], dict(_WORKER["opts"])
    job.target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "encode":
            h = encode_file(job.source, job.target, overwrite=True, **opts).header
        else:
            model = _decode_model(job.source, opts)  # takes "model" out of opts
            h = decode_file(job.source, job.target, model, overwrite=True, **opts).header
        return Outcome(job, None, h.duration)
    except LatentCodecError as e:
        return Outcome(job, str(e), 0.0)


def _decode_model(source: Path, opts: dict[str, Any]) -> Any:
    """The model a .alat names (or the one asked for), loaded once per worker and name."""
    from .codec import model_for_file
    from .container import AlatReader

    with AlatReader(source) as r:
        h = r.header
    name = opts.pop("model", None) or h.model_name
    if name not in _WORKER["models"]:
        _WORKER["models"][name] = model_for_file(h, name, True, opts["device"])
    return model_for_file(h, _WORKER["models"][name], opts.get("force", False), opts["device"])


def run_batch(jobs: list[Job], kind: str, opts: dict[str, Any], workers: int,
              progress: Callable[[Outcome], None] | None = None, ray: str | None = None,
              threads: int | None = None) -> list[Outcome]:
    """Run ``jobs`` on ``workers`` processes (1: in this process), or, given ``ray`` ('local', 'auto' or a
    cluster's address), on ``workers`` Ray actors; returns every outcome.

    ``threads``: torch's threads per worker; by default its own default shared out between the processes,
    one per Ray actor. Outputs are byte-identical only between runs with the same count (oneDNN's
    convolutions round differently with another one)."""
    if not jobs:
        return []
    if ray:
        from .raybatch import ray_outcomes

        source = ray_outcomes(jobs, kind, opts, workers, ray, threads or 1)
    else:
        source = _outcomes(jobs, kind, opts, workers, threads)
    outcomes = []
    for outcome in source:
        outcomes.append(outcome)
        if progress:
            progress(outcome)
    return outcomes


def _outcomes(jobs: list[Job], kind: str, opts: dict[str, Any], workers: int,
              threads: int | None) -> Iterator[Outcome]:
    if workers == 1 or len(jobs) <= 1:
        _init(kind, dict(opts), threads)
        yield from map(_run, jobs)
        return
    with mp.get_context("spawn").Pool(workers, _init, (kind, opts, threads, workers)) as pool:
        yield from pool.imap_unordered(_run, jobs)
