"""What a .alat file (or a folder or shard of them) holds and what it costs: real bytes on disk, kbps and
compression ratios."""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

from latentcodec.errors import LatentCodecError
from latentcodec.fs import is_folder, lookup
from latentcodec.format.container import AlatReader
from latentcodec.format.header import Header
from latentcodec.format.rate import DEFAULT_QUALITY, step_for_quality
from latentcodec.format.shards import Member, members, open_source, sources_under
from latentcodec.models.registry import shipped_models


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
    return {"format_version": h.version, "step": step, "quality": round(quality, 3)}


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
            "overhead_bytes": size - payload, "records": records,
            "model_shipped": h.model_name in shipped_models()}


def collection_info(path: Path) -> dict:
    """Totals of a folder of .alat files and tar shards, or of one shard: files, audio, real bytes (the
    .alat files' own, and on disk with the shards' tar blocks), mean kbps, models and versions; files that
    do not read are listed, not fatal."""
    if lookup(path) is None:
        raise LatentCodecError(f"{path}: no such file or folder")
    try:
        sources = sources_under(path) if is_folder(path) else members(path)
    except OSError as e:  # a link into a folder that may not be read
        raise LatentCodecError(f"{e.filename or path}: cannot read ({e.strerror or e})") from e
    shards = sorted({s.shard for s in sources if isinstance(s, Member)} | ({path} if path.is_file() else set()))
    models: Counter[str] = Counter()
    versions: Counter[int] = Counter()
    seconds, alat_bytes, failures = 0.0, 0, []
    for s in sources:
        try:
            with AlatReader(open_source(s)) as r:
                h, size = r.header, r.file_size
        except LatentCodecError as e:
            failures.append({"input": s.name if isinstance(s, Member) else str(s), "error": str(e)})
            continue
        models[h.model_name] += 1
        versions[h.version] += 1
        seconds += h.duration
        alat_bytes += size
    loose = sum(os.stat(s).st_size for s in sources if isinstance(s, Path))
    disk = loose + sum(p.stat().st_size for p in shards)
    files = len(sources) - len(failures)
    def kbps(size: int) -> float:
        return size * 8 / seconds / 1000 if seconds else 0.0

    return {"path": str(path), "files": files, "shards": len(shards), "hours_of_audio": seconds / 3600,
            "alat_bytes": alat_bytes, "bytes_on_disk": disk, "kbps": kbps(alat_bytes), "kbps_on_disk": kbps(disk),
            "models": dict(models),
            "format_versions": {str(k): v for k, v in sorted(versions.items())}, "failures": failures}


def _counts(d: dict) -> str:
    return ", ".join(f"{k} ({v})" for k, v in d.items()) or "none"


def collection_text(info: dict) -> str:
    """The lines `alat info` prints for :func:`collection_info`'s dict."""
    in_shards = f" in {info['shards']} shards" if info["shards"] else ""
    return "\n".join([
        f"{info['path']}: {info['files']} .alat files{in_shards}, {info['hours_of_audio']:.3f} h of audio"
        + (f", {len(info['failures'])} unreadable" if info["failures"] else ""),
        f"  models    {_counts(info['models'])}",
        f"  versions  {_counts(info['format_versions'])}",
        f"  size      {info['alat_bytes']:,} bytes of .alat files, {info['kbps']:.2f} kbps; {info['bytes_on_disk']:,} "
        f"bytes on disk, {info['kbps_on_disk']:.2f} kbps"])


def last_chunk_text(h: dict) -> str:
    """Version 3's short last chunk, in words; nothing when it holds a whole chunk."""
    frames = h["last_chunk_frames"]
    return "" if frames == h["latent_shape"][1] else f" (the last one {frames} frames, what covers the audio)"


def info_text(info: dict) -> str:
    """The lines `alat info` prints for :func:`file_info`'s dict."""
    h = info["header"]
    chunk_s = h["chunk_frames"] * h["mel"]["hop"] / h["mel"]["sample_rate"]
    return "\n".join([
        f"{info['path']}: .alat version {h['format_version']}, written by {h['tool_version']}",
        f"  audio     {h['duration_s']:.3f} s, {h['channels']} ch coded at {h['mel']['sample_rate']} Hz "
        f"({h['num_samples']} samples); input {h['original_rate']} Hz, {h['original_channels']} ch"
        f"{', mixed to mono' if h['mono_downmix'] else ''}",
        f"  model     {h['model_name']} (fingerprint {h['model_fingerprint'][:16]}"
        f"{', shipped with this package' if info['model_shipped'] else ', not shipped: decode with --model DIR'})",
        f"  latent    {'x'.join(map(str, h['latent_shape']))} ({h['latent_axes']}) per {chunk_s:g} s chunk, "
        f"{h['num_chunks']} chunks{last_chunk_text(h)}; {info['coder_text']}",
        f"  size      {info['bytes']:,} bytes on disk ({info['payload_bytes']:,} payload, "
        f"{info['overhead_bytes']:,} header/stats/CRC/index), {info['kbps']:.2f} kbps",
        f"  ratios    {info['ratio_vs_pcm16_16k']:.1f}x vs 16-bit PCM at 16 kHz, "
        f"{info['ratio_vs_pcm16_original']:.1f}x vs 16-bit PCM at {h['original_rate']} Hz x "
        f"{h['original_channels']} ch, {info['ratio_vs_input_file']:.1f}x vs the input file",
        "  chunks    " + " ".join(str(r["bytes"]) for r in info["records"][:24])
        + (" ..." if len(info["records"]) > 24 else "")])
