"""The onnx runtime against torch on the dev clips: each clip encoded and decoded whole by both, then the share
of identical codes and the log-mel L1 (dB) of each decoded clip against its 16 kHz original.

    python bench/runtimes.py [--corpus DIR] [--precision float32]    # needs both runtimes: pip install '.[torch]'

torch encodes in bfloat16 where the CPU computes it natively (the default, ``auto``), onnx in float32:
``--precision float32`` compares the runtimes alone.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from latentcodec.audio.io import read_audio
from latentcodec.audio.mel import log_mel
from latentcodec.codec import decode_file, encode_file
from latentcodec.constants import DB_PER_NEPER
from latentcodec.format.container import AlatReader
from latentcodec.options import DecodeOptions, EncodeOptions

DEV = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "dev"


def coded(clip: Path, tmp: Path, encode: dict[str, Any], decode: dict[str, Any]) -> tuple[np.ndarray, float]:
    """(every code of the clip's file, log-mel L1 in dB of its decoded audio), coded with the options
    ``encode`` of encode_file and ``decode`` of decode_file."""
    alat, wav = tmp / f"{clip.stem}.alat", tmp / f"{clip.stem}.wav"
    encode_file(clip, alat, EncodeOptions(**encode))
    with AlatReader(alat) as r:
        codes = np.concatenate([r.codes(*divmod(i, r.header.channels)).ravel() for i in range(r.header.num_records)])
    decode_file(alat, wav, DecodeOptions(**decode))
    x, y = (read_audio(str(p), mono=True).samples[0] for p in (clip, wav))
    return codes, float(np.abs(log_mel(x) - log_mel(y)).mean() * DB_PER_NEPER)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEV)
    ap.add_argument("--precision", default="auto", choices=["auto", "float32"],
                    help="the torch encoder's arithmetic")
    args = ap.parse_args()
    same = total = 0
    diffs = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in sorted(args.corpus.glob("*.wav")):
            (ct, lt), (co, lo) = (coded(clip, Path(tmp), {"runtime": r, "precision": args.precision}, {"runtime": r})
                                    for r in ("torch", "onnx"))
            same, total = same + int((ct == co).sum()), total + len(ct)
            diffs.append(lo - lt)
            print(f"{clip.stem:32s} codes identical {100 * (ct == co).mean():7.3f} %  log-mel L1 torch {lt:.4f}, "
                  f"onnx {lo:.4f} dB ({lo - lt:+.4f})", flush=True)
    print(f"all: {100 * same / total:.3f} % of {total:,} codes identical; L1 difference at most "
          f"{np.abs(diffs).max():.4f} dB a clip, mean {np.mean(diffs):+.4f} dB")


if __name__ == "__main__":
    main()
