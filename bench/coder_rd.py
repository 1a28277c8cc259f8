"""Rate-distortion of the coders and models on the dev clips, per kind: real file sizes, end-to-end
log-mel L1, and with --visqol ViSQOL (speech mode for speech), PESQ-wb and STOI (speech); Opus beside.

    python bench/coder_rd.py [bits=4 quality=4 kbps=6 ...] [--corpus DIR] [--models A B ...]
                             [--vocoders V W ...] [--exact-mel] [--visqol] [--opus 6 8 12] [--json OUT]

Each argument is one setting (``bits=N`` for version 1 with zstd 19, ``quality=Q`` or ``kbps=K`` for the
version-2 entropy coder); the default list runs version 1 at 4 bits and version 2 from about 3 kbps up.
Every model given runs every setting (default: the package's default model), so two models compare at
equal kbps in one run; every vocoder given decodes every file (default: each model's own), and with
--exact-mel each also runs from the clips' exact mels (no codec: a vocoder's ceiling).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import exact_mel_vocoded, ffmpeg_round_trip  # noqa: E402

from latentcodec.audio.io import read_audio  # noqa: E402
from latentcodec.evaluate import round_trip  # noqa: E402
from latentcodec.info import rate_figures  # noqa: E402
from latentcodec.metrics import Visqol, speech_scores  # noqa: E402
from latentcodec.metrics import quality as quality_metrics  # noqa: E402
from latentcodec.models.loader import load_model  # noqa: E402
from latentcodec.models.registry import DEFAULT_MODEL
from latentcodec.vocoders.registry import default_vocoder  # noqa: E402

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "dev"
SETTINGS = ["bits=4", "quality=2", "quality=3", "quality=4", "quality=5", "quality=6", "kbps=3", "kbps=6"]
SCORES = ("log_mel_l1_db", "visqol", "pesq_wb", "stoi")


def setting(text: str) -> dict:
    key, value = text.split("=")
    return {key: int(value) if key == "bits" else float(value)}


def scores(ref: np.ndarray, deg: np.ndarray, kind: str, visqol: Visqol | None) -> dict[str, float]:
    """Log-mel L1 always; ViSQOL, PESQ-wb and STOI (speech) when ``visqol`` is given."""
    out = {"log_mel_l1_db": quality_metrics(ref[None], deg[None])["log_mel_l1_db"]}
    if visqol is not None:
        out["visqol"] = visqol(ref, deg, kind)
        out.update(speech_scores(ref, deg) if kind == "speech" else {})
    return out


def summary(rows: list[dict], label: str, kinds: list[str]) -> str:
    """One line: mean kbps and scores over all clips, then per kind."""
    def means(sel: list[dict]) -> str:
        vals = [f"{np.mean([r['kbps'] for r in sel]):.2f} kbps"]
        vals += [f"{k} {np.mean([r[k] for r in sel]):.3f}" for k in SCORES if all(k in r for r in sel)]
        return " ".join(vals)
    return f"{label:<40} all {means(rows)}  |  " + "  |  ".join(
        f"{k}: {means([r for r in rows if r['kind'] == k])}" for k in sorted(set(kinds)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("settings", nargs="*", default=SETTINGS)
    ap.add_argument("--corpus", type=Path, default=DEV)
    ap.add_argument("--models", nargs="*", default=[DEFAULT_MODEL], help="none: only --exact-mel and --opus rows")
    ap.add_argument("--vocoders", nargs="+", default=[None], help="decode with each (default: the model's own)")
    ap.add_argument("--exact-mel", action="store_true", help="also each vocoder from the exact mel (no codec)")
    ap.add_argument("--visqol", action="store_true", help="also ViSQOL, and PESQ-wb and STOI on speech")
    ap.add_argument("--opus", type=int, nargs="*", default=[], metavar="KBPS", help="Opus at these bitrates")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    clips = sorted(args.corpus.glob("*.wav"))
    audio = [read_audio(p, mono=True) for p in clips]
    kinds = [p.stem.split("_")[0] for p in clips]
    visqol = Visqol() if args.visqol else None
    rows = []
    for name in args.models:
        model = load_model(name)
        for text in args.settings:
            for voc in args.vocoders:
                mine = []
                for p, a, kind in zip(clips, audio, kinds):
                    rt = round_trip(a, EncodeOptions(model=model, **setting(text)), DecodeOptions(vocoder=voc))
                    mine.append({"model": name, "setting": text, "vocoder": voc or default_vocoder(name),
                                 "clip": p.stem, "kind": kind, "kbps": rate_figures(rt.file_size, rt.header)["kbps"],
                                 **scores(a.samples[0], rt.decoded[0], kind, visqol),
                                 "vae_alone_l1_db": rt.latent_mel_l1_db})
                rows += mine
                print(summary(mine, f"{name} {text} {voc or default_vocoder(name)}", kinds), flush=True)
    for voc in args.vocoders if args.exact_mel else []:
        voc = voc or default_vocoder(DEFAULT_MODEL)
        mine = [{"model": "exact mel", "setting": "", "vocoder": voc, "clip": p.stem, "kind": kind, "kbps": 256.0,
                 **scores(a.samples[0], exact_mel_vocoded(a.samples[0], voc).astype(np.float32), kind, visqol)}
                for p, a, kind in zip(clips, audio, kinds)]
        rows += mine
        print(summary(mine, f"exact mel {voc}", kinds), flush=True)
    for k in args.opus:
        mine = []
        with tempfile.TemporaryDirectory() as tmp:
            for p, a, kind in zip(clips, audio, kinds):
                wav = Path(tmp) / "in.wav"
                sf.write(str(wav), a.samples[0], 16000, subtype="PCM_16")
                nbytes, deg = ffmpeg_round_trip(wav, ["-c:a", "libopus", "-b:a", f"{k}k"], "ogg", Path(tmp))
                mine.append({"model": "opus", "setting": f"{k}k", "clip": p.stem, "kind": kind,
                             "kbps": nbytes * 8 / (a.samples.shape[1] / 16000) / 1000,
                             **scores(a.samples[0], deg, kind, visqol)})
        rows += mine
        print(summary(mine, f"opus {k}k", kinds), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
