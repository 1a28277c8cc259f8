"""A small profiler: seconds per stage of an encode or decode, as `--json` reports them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Timings:
    """Seconds spent per stage, summed over the file. A stage entered inside another (the vocoder
    pulling mel) is counted only in the inner one. Each thread nests its own stages: stages on two threads
    (the VAE decoding the next batch beside the vocoder) overlap in time, and their sum exceeds the wall time."""

    seconds: dict[str, float] = field(default_factory=dict)
    _local: threading.local = field(default_factory=threading.local)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        inner: list[float] = self._local.__dict__.setdefault("inner", [])  # this thread's open stages
        t = time.perf_counter()
        inner.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - t
            own = elapsed - inner.pop()
            self.seconds[name] = self.seconds.get(name, 0.0) + own  # one thread per stage name at a time
            if inner:
                inner[-1] += elapsed
