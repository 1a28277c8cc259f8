"""What a .alat file holds and what it costs: real bytes on disk, kbps and compression ratios."""
from __future__ import annotations

import math
import os
from pathlib import Path

from .container import AlatReader, Header
from .rate import DEFAULT_QUALITY, step_for_quality


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


def coder_summary(h: Header) -> dict:
    """The coder settings of a file: version 1's bits and zstd level, or version 2's step and quality."""
    if h.version == 1:
        return {"format_version": 1, "bits": h.bits, "zstd_level": h.zstd_level}
    step = h.steps[0]
    quality = DEFAULT_QUALITY - 2 * math.log2(step / step_for_quality(DEFAULT_QUALITY))
    return {"format_version": 2, "step": step, "quality": round(quality, 3)}


def coder_text(h: Header) -> str:
    """One phrase for the coder settings, e.g. '4 bits, zstd 19' or 'entropy-coded, quality 4 (step 0.4)'."""
    c = coder_summary(h)
    if c["format_version"] == 1:
        return f"{c['bits']} bits" + (f", zstd {c['zstd_level']}" if c["zstd_level"] else ", no zstd")
    return f"entropy-coded, quality {c['quality']:g} (step {c['step']:.4g})"


def file_info(path: str | Path) -> dict:
    """Header, per-record sizes and rate figures of a .alat file (verifying every record's CRC)."""
    with AlatReader(path) as r:
        sizes = r.record_sizes()
        h, record_min = r.header, r.record_min
    size = os.stat(path).st_size
    payload = sum(s - record_min for s in sizes)
    records = [{"chunk": i // h.channels, "channel": i % h.channels, "bytes": s} for i, s in enumerate(sizes)]
    return {"path": str(path), "header": h.to_dict(), "coder_text": coder_text(h), **rate_figures(size, h),
            "payload_bytes": payload,
            "overhead_bytes": size - payload, "records": records}
