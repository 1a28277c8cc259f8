"""Folder mode on Ray Data, for trees larger than one machine. Planning, resuming, atomic writes and the
failure list are :mod:`folders`'s; only the execution differs: the jobs become rows of a Ray dataset,
mapped by a pool of actors that each load the model once and run :func:`worker.run_job` on one file at a time
(a row carries its job pickled, with absolute paths).

Every node must see the input and output paths (a shared filesystem, at the same mount point) and have
latentcodec installed with its ``ray`` extra."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from latentcodec.errors import LatentCodecError
from latentcodec.jobs.worker import Job, Outcome, WorkerSetup, init_worker, run_job

INSTALL = "pip install 'latentcodec[ray]'"
OBJECT_STORE_BYTES = 256 << 20  # a local instance's: the rows are file names, the audio never passes through Ray


class _Actor:
    """One Ray actor: the model loaded once (on ``threads`` torch threads), then one file per row. A model
    that cannot be loaded comes back on every row as ``fatal``, and the driver raises it: Ray would
    otherwise restart the actor again and again and end in a traceback."""

    def __init__(self, setup: WorkerSetup):
        self.fatal: LatentCodecError | None = None
        try:
            init_worker(setup)
        except LatentCodecError as e:
            self.fatal = e

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(rows["index"])
        if self.fatal:
            errors, seconds = [str(self.fatal)] * n, [0.0] * n
        else:
            outs = [run_job(pickle.loads(job)) for job in rows["job"]]
            errors, seconds = [o.error or "" for o in outs], [o.seconds for o in outs]
        return {
            "index": rows["index"],
            "error": np.array(errors, dtype=object),
            "seconds": np.array(seconds),
            "fatal": np.full(n, self.fatal is not None),
            "param": np.array([getattr(self.fatal, "param", None) or ""] * n, dtype=object),
        }


def connect(address: str, cpus: int) -> bool:
    """Start a local Ray instance of ``cpus`` CPUs ('local') or join the cluster at ``address`` ('auto' or
    host:port). Returns whether this call did it (and so should shut it down)."""
    try:
        import ray
    except ImportError as e:
        raise LatentCodecError(f"running on Ray needs the ray package: {INSTALL}", "ray") from e
    if ray.is_initialized():
        return False
    # Ray's own chatter stays in its logs (/tmp/ray/session_latest/logs); stderr keeps alat's lines.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    local = address == "local"  # start one on this machine, else join the cluster at address
    try:
        ray.init(
            address=None if local else address,
            num_cpus=cpus if local else None,
            object_store_memory=OBJECT_STORE_BYTES if local else None,
            logging_level=logging.ERROR,
            log_to_driver=False,
            include_dashboard=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise LatentCodecError(
            f"cannot reach a Ray cluster at {address!r}: {str(e).splitlines()[0][:200]}", "ray"
        ) from e
    return True


def ray_outcomes(jobs: list[Job], setup: WorkerSetup, address: str) -> Iterator[Outcome]:
    """Run ``jobs`` on ``setup.workers`` Ray actors of ``setup.threads`` CPUs each (default 1; a local
    instance gets workers x threads CPUs); yields each outcome as its file is done, in any order. Ray Data restarts
    an actor whose node is lost and retries its file (and logs one line of its own about that at the start,
    ray#53727); should the whole run stop, the same command again resumes it."""
    threads, actors = setup.threads or 1, setup.workers
    setup = replace(setup, threads=threads, workers=1)  # each actor's own share: all of its threads
    started = connect(address, actors * threads)
    import ray
    import ray.data

    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the CLI draws its own bar over files and hours
        ctx.print_on_execution_start = False
        rows = [{"index": i, "job": pickle.dumps(j.absolute())} for i, j in enumerate(jobs)]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _Actor,
            fn_constructor_args=(setup,),
            batch_size=1,
            num_cpus=threads,
            compute=ray.data.ActorPoolStrategy(size=actors),
        )
        for row in ds.iter_rows():
            if row["fatal"]:
                raise LatentCodecError(row["error"], row["param"] or None)
            yield Outcome(jobs[int(row["index"])], row["error"] or None, float(row["seconds"]))
    finally:
        if started:
            ray.shutdown()
