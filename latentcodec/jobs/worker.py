"""The worker side of a folder job, shared by local processes and Ray actors: load the model once, then
code one file per call, every error a user can cause coming back as one line."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from latentcodec.errors import LatentCodecError
from latentcodec.fs import lookup
from latentcodec.format.shards import Member, Source, open_source

_WORKER: dict[str, Any] = {}  # the model and options of this worker process


@dataclass
class Job:
    source: Source  # a file, or a .alat member of a shard (decoding)
    target: Path

    @property
    def name(self) -> str:
        """The input as messages name it (a shard member: ``SHARD:KEY.alat``)."""
        return self.source.name if isinstance(self.source, Member) else str(self.source)

    def absolute(self) -> "Job":
        """The same job with absolute paths, for workers that may run in another folder."""
        s = self.source
        return Job(replace(s, shard=s.shard.absolute()) if isinstance(s, Member) else s.absolute(),
                   self.target.absolute())


@dataclass
class Outcome:
    job: Job
    error: str | None  # one line, or None when the file was written
    seconds: float  # of audio



def init_worker(kind: str, opts: dict[str, Any], threads: int | None, workers: int = 1) -> None:
    """Worker start: load the model once. The runtime's threads as given, or the cores shared out between
    the ``workers`` (one worker keeps a single call's count, and so its exact bytes)."""
    import os

    from latentcodec.runtime.cores import set_threads
    from latentcodec.models.loader import folder_runtime, load_model
    from latentcodec.models.registry import DEFAULT_MODEL

    set_threads(threads or max(1, len(os.sched_getaffinity(0)) // workers))
    device = opts.pop("device", "auto")
    if kind == "encode":
        precision = opts.get("precision", "auto")
        runtime = folder_runtime("encode", opts.pop("runtime", "auto"), precision)
        opts["model"] = load_model(opts.get("model") or DEFAULT_MODEL, device, runtime, precision)
        device = opts["model"].device
    _WORKER.update(kind=kind, opts={**opts, "device": device}, models={})


def run_job(job: Job) -> Outcome:
    """One file, in a worker; any error a user can cause comes back as one line."""
    from latentcodec.codec import decode_file, encode_file

    kind, opts = _WORKER["kind"], dict(_WORKER["opts"])
    overwrite = opts.pop("overwrite", False)
    try:
        _make_folder(job.target)
        if lookup(job.target, "write") is not None and not overwrite:  # not this job's complete output (planner)
            raise LatentCodecError(f"{job.target}: exists and is not a complete output of this job: kept "
                                   f"(--overwrite, -y, replaces it)")
        if kind == "encode":
            h = encode_file(job.source, job.target, overwrite=True, **opts).header
        else:
            model = _decode_model(job.source, opts)  # takes "model" out of opts
            h = decode_file(open_source(job.source), job.target, model, overwrite=True, **opts).header
        return Outcome(job, None, h.duration)
    except LatentCodecError as e:
        return Outcome(job, str(e), 0.0)
    except OSError as e:  # what the system refused of this job alone: listed, and the batch goes on
        return Outcome(job, f"{e.filename or job.name}: {e.strerror or e}", 0.0)


def _make_folder(target: Path) -> None:
    """The output's folder, as one error line when a file stands in its way (or the disk refuses)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LatentCodecError(f"{target}: cannot create its folder {target.parent} ({e.strerror or e})") from e


def _decode_model(source: Source, opts: dict[str, Any]) -> Any:
    """The model asked for, or the shipped one a .alat names, loaded once per worker and name."""
    from latentcodec.codec import model_for_file
    from latentcodec.format.container import AlatReader
    from latentcodec.models.loader import folder_runtime

    with AlatReader(open_source(source)) as r:
        h = r.header
    given = opts.pop("model", None)  # None: the shipped model the file names (model_for_file refuses others)
    key = given or h.model_name
    if key not in _WORKER["models"]:
        runtime = folder_runtime("decode", opts.pop("runtime", "auto"))
        _WORKER["models"][key] = model_for_file(h, given, True, opts["device"], runtime)
    return model_for_file(h, _WORKER["models"][key], opts.get("force", False), opts["device"])
