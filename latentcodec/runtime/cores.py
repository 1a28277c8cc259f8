"""How the codec uses the CPU: a batch of VAE windows shared out over the cores as single-threaded torch
calls side by side, rather than one call on torch's intra-op threads, and, once per process before the
coding work (:func:`prepare_process`), freed memory kept for reuse and BLAS on one thread. Why the first:
on this project's 2-core machine the VAE ran 4 decoder windows in 0.62 s as one call on both cores and in
0.48 s as two calls of 2 windows on one core each (encoder: 0.23-0.27 s and 0.18 s). Running the VAE of
the next windows beside the vocoder as well was tried and dropped: on 2 cores the decode got no faster
(18-21x against 22.5-22.9x real time).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:  # torch is imported where it runs: prepare_process serves the onnx runtime too
    import torch

T = TypeVar("T")
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}  # by (process, size): a forked worker makes its own
_THREAD_POOLS: dict[tuple[int, str], ThreadPoolExecutor] = {}  # by (process, name): process_thread's
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_PREPARED: set[int] = set()  # processes that called prepare_process
_THREADS: list[int] = []  # the thread count asked for (set_threads), for whichever runtime loads


def set_threads(threads: int) -> None:
    """The intra-op threads of the runtime this process will load (torch's now if torch is loaded):
    recorded, so that asking costs no import of torch."""
    _THREADS[:] = [threads]
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def threads_asked() -> int | None:
    """What :func:`set_threads` recorded, or None."""
    return _THREADS[0] if _THREADS else None


def cpu_threads() -> int:
    """The threads a runtime of this process uses: those asked for with :func:`set_threads`, else the cores
    this process may run on."""
    return threads_asked() or len(os.sched_getaffinity(0))


def map_rows(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, min_rows: int = 64) -> np.ndarray:
    """``fn`` over ``x`` split along its first axis into one part per thread (:func:`cpu_threads`), the
    results joined: for numpy work that releases the GIL (its FFTs; they run on one core otherwise), with
    the same result as ``fn(x)`` row for row. Inline for fewer than ``min_rows`` rows a part."""
    parts = min(cpu_threads(), len(x) // min_rows)
    if parts < 2:
        return fn(x)
    key = (os.getpid(), -parts)  # negative: apart from torch's pools, whose workers set torch's threads
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(parts)
    return np.concatenate(list(_POOLS[key].map(fn, np.array_split(x, parts))))


def process_thread(name: str) -> ThreadPoolExecutor:
    """This process's one thread called ``name``, for work that runs beside the caller's (a forked worker
    makes its own)."""
    key = (os.getpid(), name)
    if key not in _THREAD_POOLS:
        _THREAD_POOLS[key] = ThreadPoolExecutor(1, thread_name_prefix=name)
    return _THREAD_POOLS[key]


def prepare_process() -> None:
    """Once per process, before its first coding work: :func:`retain_freed_memory` and BLAS (numpy's
    OpenBLAS, behind the mel front end's and Griffin-Lim's matrix products) on one thread. Why the second:
    the codec shares its work over the cores itself (:func:`map_rows`, :func:`run_parts`, the runtime's
    threads), so BLAS's threads oversubscribe the cores, and OpenBLAS's idle threads spin, taking time from
    the runtime's (600 s on the 2-core AVX-512 EPYC, plain install: encode 3.81 s wall with BLAS on 2
    threads, 2.64 s on one; decode 12.45 s and 11.48 s)."""
    if os.getpid() in _PREPARED:
        return
    _PREPARED.add(os.getpid())
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    retain_freed_memory()


def retain_freed_memory() -> None:
    """Have glibc's malloc keep the blocks it frees (up to 32 MiB each, 512 MiB at the top of the heap)
    for the next allocation instead of handing them back to the kernel. Why: the VAE's activations, tens
    of MB a batch, otherwise come back as fresh pages on every call, and their page faults cost a third
    of the VAE's time (measured on 2 cores, 4 windows: encoder 0.22-0.27 s, 0.15-0.19 s with freed memory
    kept; decoder 0.56-0.59 s, 0.37-0.49 s). Only memory once used is kept, so peak memory stays flat in
    a file's length (decoding 10 minutes: 866 MB peak, 759 MB before, the second core's worker included).
    A no-op where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # the largest glibc takes on 64-bit systems
    mallopt(_M_TRIM_THRESHOLD, 512 << 20)


def _pool() -> ThreadPoolExecutor | None:
    """This process's pool of as many workers as torch has intra-op threads, each on one torch thread;
    None when torch has one thread."""
    import torch

    if torch.get_num_threads() < 2:
        return None
    key = (os.getpid(), torch.get_num_threads())
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(key[1], initializer=torch.set_num_threads, initargs=(1,))
    return _POOLS[key]


def _no_grad(fn: Callable[..., T]) -> Callable[..., T]:
    import torch

    def run(*args: object) -> T:
        with torch.inference_mode():  # thread-local, as is grad mode
            return fn(*args)

    return run


def run_parts(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn`` over ``x`` (batch first) as one task per core, each on a slice of the batch, their outputs
    joined along the batch; inline off the CPU, with one thread or with one window."""
    import torch

    pool = _pool()
    parts = min(len(x), torch.get_num_threads())
    if pool is None or x.device.type != "cpu" or parts < 2:
        return _no_grad(fn)(x)
    return torch.cat(list(pool.map(_no_grad(fn), torch.tensor_split(x, parts))))
