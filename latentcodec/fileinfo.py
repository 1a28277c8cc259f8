"""What a .alat file holds and what it costs: real bytes on disk, kbps and compression ratios."""
from __future__ import annotations

import os
from pathlib import Path

from .container import AlatReader, Header


def rate_figures(file_size: int, h: Header) -> dict[str, float]:
    """kbps and ratios of a file of ``file_size`` bytes (its true size on disk) with header ``h``.

    Ratios are how many times smaller the .alat is than 16-bit PCM at 16 kHz with the coded channels,
    than 16-bit PCM at the input's own rate and channels, and than the input file.
    """
    pcm16k = 2 * h.num_samples * h.channels
    pcm_orig = 2 * h.original_frames * h.original_channels
    return {
        "bytes": file_size,
        "kbps": file_size * 8 / h.duration / 1000,
        "ratio_vs_pcm16_16k": pcm16k / file_size,
        "ratio_vs_pcm16_original": pcm_orig / file_size,
        "ratio_vs_input_file": h.input_size / file_size if h.input_size else float("nan"),
    }


def file_info(path: str | Path) -> dict:
    """Header, per-record sizes and rate figures of a .alat file (verifying every record's CRC)."""
    with AlatReader(path) as r:
        sizes = r.record_sizes()
        h, record_min = r.header, r.record_min
    size = os.stat(path).st_size
    payload = sum(s - record_min for s in sizes)
    records = [{"chunk": i // h.channels, "channel": i % h.channels, "bytes": s} for i, s in enumerate(sizes)]
    return {"path": str(path), "header": h.to_dict(), **rate_figures(size, h), "payload_bytes": payload,
            "overhead_bytes": size - payload, "records": records}
