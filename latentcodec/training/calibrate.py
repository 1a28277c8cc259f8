"""A model's version-2 coder table, ``coder.json`` beside its weights: the KLT across latent channels of its
latents over typical audio. A model without one codes as tightly (the encoder fits the transform on each
file's first chunks, within 1 % of the shipped table's bytes on the dev clips); the table makes a long file
that opens untypically (silence, a jingle) code as well as the rest, and records what it was fitted on.

The files (at least ``min_seconds`` long: typical audio, not a one-second syllable) are taken evenly spaced
through the sorted audio under the data folder, by kind when it has ``music/``, ``speech/`` and ``effects/``
sub-folders (half, a third and a sixth of them); ``seconds`` from the middle of each are coded.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from latentcodec.audio.io import AUDIO_SUFFIXES, Audio, read_audio
from latentcodec.codec import encode_audio
from latentcodec.errors import LatentCodecError
from latentcodec.format.container import AlatReader
from latentcodec.format.rate import CODER_TABLE
from latentcodec.format.transform_coder import fit_transform
from latentcodec.fs import atomic_output, check_output
from latentcodec.models.loader import Model
from latentcodec.options import EncodeOptions

KIND_SHARES = {"music": 1 / 2, "speech": 1 / 3, "effects": 1 / 6}


def pick_files(data: Path, files: int, min_seconds: float) -> list[Path]:
    """``files`` audio files of at least ``min_seconds``, evenly spaced (by kind where there are kinds)."""
    kinds = [k for k in KIND_SHARES if (data / k).is_dir()]
    groups = {k: (data / k, KIND_SHARES[k] / sum(KIND_SHARES[j] for j in kinds)) for k in kinds} or {".": (data, 1.0)}
    out: list[Path] = []
    for folder, share in groups.values():
        found = [
            p
            for p in sorted(folder.rglob("*"))
            if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file() and _seconds(p) >= min_seconds
        ]
        n = min(len(found), max(1, round(files * share)))
        out += [found[i] for i in np.unique(np.linspace(0, len(found) - 1, n).round().astype(int))] if found else []
    if not out:
        raise LatentCodecError(f"{data}: no audio file of at least {min_seconds:g} s to calibrate on")
    return out


def _seconds(path: Path) -> float:
    try:
        return sf.info(str(path)).duration
    except RuntimeError:  # not audio soundfile reads: not a calibration file
        return 0.0


def latents_of(path: Path, seconds: float, model: Model) -> list[np.ndarray]:
    """The stored (L, T, M) latents, exact (float16), of ``seconds`` from the middle of a file."""
    a = read_audio(path, mono=True)
    n = int(seconds * 16000)
    start = max(0, (a.samples.shape[1] - n) // 2)
    part = Audio(a.samples[:, start : start + n], a.original_rate, 1, a.original_frames, a.file_size)
    buf = io.BytesIO()
    encode_audio(part, buf, EncodeOptions(model=model, bits=16, zstd_level=0, precision="float32"))
    buf.seek(0)
    latents: list[np.ndarray] = []
    with AlatReader(buf) as r:
        for _, _, z in r:
            assert z is not None, "a reader without salvage reads every record"
            latents.append(z)
    return latents


def calibrate(
    model: Model,
    model_dir: Path,
    data: Path,
    files: int = 30,
    seconds: float = 30.0,
    min_seconds: float = 10.0,
    overwrite: bool = False,
) -> dict:
    """Fit and write ``model_dir/coder.json`` for ``model`` (loaded from that folder); returns the table."""
    target = model_dir / CODER_TABLE
    check_output(target, overwrite)
    picked = pick_files(data, files, min_seconds)
    latents = [z for p in picked for z in latents_of(p, seconds, model)]
    k = fit_transform(latents)
    var = np.var(np.einsum("ij,njtm->nitm", k, np.stack(latents).astype(np.float64)), axis=(0, 2, 3))
    table = {
        "model": model.name,
        "fingerprint": model.fingerprint.hex(),
        "transform": k.round(8).tolist(),
        "component_variance": var.round(6).tolist(),
        "calibration": {
            "data": str(data),
            "files": [str(p.relative_to(data)) for p in picked],
            "seconds_per_file": seconds,
            "min_seconds": min_seconds,
            "chunk_seconds": 5.0,
        },
    }
    with atomic_output(target, overwrite) as tmp:
        Path(tmp).write_text(json.dumps(table, indent=1))
    return table
