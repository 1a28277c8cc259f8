"""The worker side of a folder job, shared by local processes and Ray actors: load the model once, then
code one file per call, every error a user can cause coming back as one line."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from latentcodec.errors import LatentCodecError
from latentcodec.format.shards import Member, Source, open_source
from latentcodec.fs import lookup
from latentcodec.options import DecodeOptions, EncodeOptions

_WORKER: dict[str, Any] = {}  # this worker process's setup and models


@dataclass
class Job:
    source: Source  # a file, or a .alat member of a shard (decoding)
    target: Path

    @property
    def source_path(self) -> Path:
        """The input file (a shard member's: its shard)."""
        return self.source.shard if isinstance(self.source, Member) else self.source

    @property
    def name(self) -> str:
        """The input as messages name it (a shard member: ``SHARD:KEY.alat``)."""
        return self.source.name if isinstance(self.source, Member) else str(self.source)

    def absolute(self) -> Job:
        """The same job with absolute paths, for workers that may run in another folder."""
        s = self.source
        return Job(
            replace(s, shard=s.shard.absolute()) if isinstance(s, Member) else s.absolute(), self.target.absolute()
        )


@dataclass
class Outcome:
    job: Job
    error: str | None  # one line, or None when the file was written
    seconds: float  # of audio
    param: str | None = None  # what the error is about (errors.LatentCodecError.param), for a front end's advice


@dataclass(frozen=True)
class WorkerSetup:
    """What every worker of a folder run is told once: the direction, the options, whether an output that
    is not this job's may be replaced, and its runtime's threads (None: the cores shared out between the
    ``workers``; one worker keeps a single call's count, and so its exact bytes)."""

    kind: str  # encode or decode
    options: EncodeOptions | DecodeOptions
    overwrite: bool = False
    threads: int | None = None
    workers: int = 1


def init_worker(setup: WorkerSetup) -> None:
    """Worker start: the encoder's model loaded once (a decoder's per model name, on first use)."""
    import os

    from latentcodec.models.loader import Model, choose_runtime, load_model
    from latentcodec.models.registry import DEFAULT_MODEL
    from latentcodec.runtime.cores import set_threads

    set_threads(setup.threads or max(1, len(os.sched_getaffinity(0)) // setup.workers))
    options = setup.options
    if isinstance(options, EncodeOptions):
        model = options.model
        if not isinstance(model, Model):
            name = model or DEFAULT_MODEL
            runtime = choose_runtime(options.runtime, name, options.device, options.precision, "encode", None)
            model = load_model(name, options.device, runtime, options.precision)  # workers start once: seconds None
        options = replace(options, model=model, device=model.device)
    _WORKER.clear()
    _WORKER.update(setup=replace(setup, options=options), models={})


def _name(model: Any) -> str | None:
    """A model's name, whether the options hold it loaded or by name."""
    return getattr(model, "name", model)


def run_job(job: Job) -> Outcome:
    """One file, in a worker; any error a user can cause comes back as one line."""
    from latentcodec.codec import decode_file, encode_file, with_model

    setup: WorkerSetup = _WORKER["setup"]
    try:
        _make_folder(job.target)
        if lookup(job.target, "write") is not None and not setup.overwrite:  # not this job's complete output
            raise LatentCodecError(f"{job.target}: exists and is not a complete output of this job: kept", "overwrite")
        if isinstance(setup.options, EncodeOptions):
            assert isinstance(job.source, Path)  # the planner encodes files, never shard members
            h = encode_file(job.source, job.target, setup.options).header
        else:
            options = with_model(setup.options, _decode_model(job.source, setup.options))
            h = decode_file(open_source(job.source), job.target, options).header
        return Outcome(job, None, h.duration)
    except LatentCodecError as e:
        return Outcome(job, str(e), 0.0, e.param)
    except OSError as e:  # what the system refused of this job alone: listed, and the batch goes on
        return Outcome(job, f"{e.filename or job.name}: {e.strerror or e}", 0.0)


def _make_folder(target: Path) -> None:
    """The output's folder, as one error line when a file stands in its way (or the disk refuses)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LatentCodecError(f"{target}: cannot create its folder {target.parent} ({e.strerror or e})") from e


def _decode_model(source: Source, options: DecodeOptions) -> Any:
    """What decodes a .alat: the model asked for, or the shipped one it names, or the decoder asked for or
    paired with it, loaded once per worker and name."""
    from latentcodec.codec import model_for_file, with_model
    from latentcodec.format.container import AlatReader
    from latentcodec.models.loader import choose_runtime
    from latentcodec.vocoders.registry import decode_precision, decoder_name

    with AlatReader(open_source(source)) as r:
        h = r.header
    writer = _name(options.model) or h.model_name
    key = (writer, decoder_name(h.model_name, options.decoder))
    if key not in _WORKER["models"]:
        precision = decode_precision(writer, options.vocoder, options.decoder_precision)
        runtime = choose_runtime(options.runtime, key[1] or writer, options.device, precision, "decode", None)
        _WORKER["models"][key] = model_for_file(h, replace(options, runtime=runtime), force=True)
    return model_for_file(h, with_model(options, _WORKER["models"][key]), options.force)
