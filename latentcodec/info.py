"""What a .alat file (or a folder or shard of them) holds and what it costs: real bytes on disk, kbps and
compression ratios."""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

from latentcodec.errors import LatentCodecError
from latentcodec.format.container import AlatReader
from latentcodec.format.header import Header
from latentcodec.format.rate import DEFAULT_QUALITY, step_for_quality
from latentcodec.format.shards import Member, members, open_source, sources_under
from latentcodec.fs import is_folder, lookup
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
    assert h.steps, "the reader refuses a version-2+ header without steps"
    step = h.steps[0]
    quality = DEFAULT_QUALITY - 2 * math.log2(step / step_for_quality(DEFAULT_QUALITY))
    return {"format_version": h.version, "step": step, "quality": round(quality, 3)}


def file_info(path: str | Path) -> dict:
    """Header, per-record sizes and rate figures of a .alat file (verifying every record's CRC)."""
    with AlatReader(path) as r:
        sizes = r.record_sizes()
        h, record_min = r.header, r.record_min
    size = os.stat(path).st_size
    payload = sum(s - record_min for s in sizes)
    records = [{"chunk": i // h.channels, "channel": i % h.channels, "bytes": s} for i, s in enumerate(sizes)]
    return {
        "path": str(path),
        "header": h.to_dict(),
        "coder": coder_summary(h),
        **rate_figures(size, h),
        "payload_bytes": payload,
        "overhead_bytes": size - payload,
        "records": records,
        "model_shipped": h.model_name in shipped_models(),
        "decodes_with": _pairing(h.model_name),
    }


def _pairing(model: str) -> dict:
    """How a file of ``model`` decodes unless told otherwise (``vocoders.registry.Pairing``), and the shipped
    models whose decoders serve its latent space (``model`` itself first: its own decoder)."""
    from latentcodec.models.loader import shipped_decoders
    from latentcodec.vocoders.registry import pairing

    paired = pairing(model)
    return {
        "vocoder": paired.vocoder,
        "decoder_precision": paired.precision,
        "decoder": paired.decoder,
        "decoders": shipped_decoders(model),
    }


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

    return {
        "path": str(path),
        "files": files,
        "shards": len(shards),
        "hours_of_audio": seconds / 3600,
        "alat_bytes": alat_bytes,
        "bytes_on_disk": disk,
        "kbps": kbps(alat_bytes),
        "kbps_on_disk": kbps(disk),
        "models": dict(models),
        "format_versions": {str(k): v for k, v in sorted(versions.items())},
        "failures": failures,
    }


def shipped_info() -> dict:
    """The VAEs this package ships (name, default, pairing: vocoder, decoder and its precision, the decoders of
    its latent space, fingerprint, bytes on disk, summary) and the vocoders a user chooses from."""
    from latentcodec.models.loader import load_model
    from latentcodec.models.registry import DEFAULT_MODEL, summary
    from latentcodec.vocoders.registry import BUILTIN_VOCODERS, shipped_vocoders, vocoder_names

    vaes = [
        {
            "name": n,
            "default": n == DEFAULT_MODEL,
            **_pairing(n),  # the decoder's arithmetic by default (auto, float32) and the decoders of its latent space
            "fingerprint": load_model(n).fingerprint.hex(),
            "bytes": sum(p.stat().st_size for p in folder.iterdir()),
            "summary": summary(folder),
        }
        for n, folder in shipped_models().items()
    ]
    shipped = shipped_vocoders()
    vocoders = [
        {"name": n, "summary": BUILTIN_VOCODERS[n] if n in BUILTIN_VOCODERS else summary(shipped[n])}
        for n in vocoder_names()
    ]
    return {"models": vaes, "vocoders": vocoders}
