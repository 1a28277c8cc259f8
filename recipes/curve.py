"""The learning curve end to end: each model (a shipped name, or a checkpoint folder with its training.json)
coded and decoded by ``alat eval`` on each corpus, per kind: kbps, log-mel L1, ViSQOL, and on speech
PESQ-wb and STOI. A markdown table on stdout; with ``--json``, the rows too.

    python recipes/curve.py latentcodec-small-v2 recipes/runs/small-v3-gan-b-step750 \\
        --corpus dev=../shared/corpus/dev --corpus heldout=/data/heldout-clips [--vocoder V] [--quality Q]
        [--runtime R] [--decoder own --decoder RUN ...] [--json OUT]

``--decoder`` (repeated): each model's files decoded by each of these decoders of its latent space (``own``,
or a folder of ``alat train --freeze-encoder``), a row each, the step and hours the decoder's.

A file's kind is the first part of its name or of a folder above it (``speech_...``, ``music/...``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

KINDS = ("music", "effects", "speech")


def kind_of(path: str) -> str:
    """'music', 'effects' or 'speech', from the file's name or a folder above it."""
    for part in reversed(Path(path).parts):
        for kind in KINDS:
            if part.lower().startswith(kind):
                return kind
    raise SystemExit(f"{path}: no kind in its name or folders")


def run_eval(corpus: Path, model: str, decoder: str | None, options: argparse.Namespace) -> list[dict]:
    """``alat eval`` of the whole folder with the options given: its per-file rows."""
    cmd = [sys.executable, "-m", "latentcodec.cli", "eval", str(corpus), "--model", model, "--json"]
    cmd += ["--decoder", decoder] if decoder else []
    for flag in ("vocoder", "runtime", "quality", "decoder_precision"):
        value = getattr(options, flag)
        cmd += [f"--{flag.replace('_', '-')}", str(value)] if value is not None else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["rows"]


def summary(rows: list[dict]) -> dict[str, float]:
    """kbps over all files (their bytes over their seconds), mean L1 over all, per kind mean L1 and ViSQOL,
    speech's PESQ-wb and STOI."""
    out = {"kbps": 8 * sum(r["bytes"] for r in rows) / sum(r["duration_s"] for r in rows) / 1000,
           "l1": float(np.mean([r["log_mel_l1_db"] for r in rows]))}
    for kind in KINDS:
        mine = [r for r in rows if kind_of(r["file"]) == kind]
        if mine:
            out[f"{kind}_l1"] = float(np.mean([r["log_mel_l1_db"] for r in mine]))
            out[f"{kind}_visqol"] = float(np.mean([r["visqol"] for r in mine]))
    speech = [r for r in rows if kind_of(r["file"]) == "speech"]
    if speech:
        out["pesq_wb"] = float(np.mean([r["pesq_wb"] for r in speech]))
        out["stoi"] = float(np.mean([r["stoi"] for r in speech]))
    return out


def position(model: str) -> tuple[str, str]:
    """(step, hours) of a checkpoint folder (checkpoint_model.py's) or of an ``alat train`` output folder,
    from its training.json; ('-', '-') for a shipped name."""
    record = Path(model) / "training.json"
    if not record.is_file():
        return "-", "-"
    t = json.loads(record.read_text())
    if "step" in t:
        return str(t["step"]), f"{t['hours']:.2f}"
    return str(t["config"]["steps"]), f"{t['train_minutes'] / 60:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--corpus", action="append", required=True, help="NAME=FOLDER")
    ap.add_argument("--vocoder", help="default: each model's own default")
    ap.add_argument("--quality", type=float, help="the coder's quality (default: the codec's), to compare at a rate")
    ap.add_argument("--runtime", help="default: alat's auto")
    ap.add_argument("--decoder-precision", help="default: each model's pairing's (float32: a model folder's)")
    ap.add_argument("--decoder", action="append", help="a decoder of the models' latent space (repeated)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    corpora = dict(c.split("=", 1) for c in args.corpus)
    print("| model | decoder | step | hours | corpus | kbps | L1 dB | ViSQOL music | effects | speech | PESQ-wb"
          " | STOI |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    table = []
    for model in args.models:
        for decoder in args.decoder or [None]:
            step, hours = position(decoder if decoder not in (None, "own") else model)
            for name, folder in corpora.items():
                rows = run_eval(Path(folder), model, decoder, args)
                s = summary(rows)
                table.append({"model": model, "decoder": decoder, "step": step, "hours": hours, "corpus": name, **s,
                              "rows": rows})
                cells = [f"{s[k]:.3f}" if k in s else "-" for k in
                         ("kbps", "l1", "music_visqol", "effects_visqol", "speech_visqol", "pesq_wb", "stoi")]
                print(f"| {model} | {decoder or '-'} | {step} | {hours} | {name} | " + " | ".join(cells) + " |",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
