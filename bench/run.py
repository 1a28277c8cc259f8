"""One command for every benchmark: writes bench/REPORT.md and bench/*.png.

    python bench/run.py [--corpus DIR] [--out bench] [--quick]

- rate-distortion of the shipped model: version 2 (entropy coder) at several qualities and rates, and
  version 1 at every bit depth, with and without zstd, on real bytes;
- bits per latent value of candidate probability models (bench/entropy_models.py); what the version-2
  bytes are made of; the cost of a file that is half silence;
- the same metrics for Opus, MP3 and Vorbis (ffmpeg, from Debian), for Griffin-Lim, our magnitude
  network + Griffin-Lim and the default vocoder from the exact mel (the ceilings of a mel codec with
  each), for the default file decoded with Griffin-Lim, stage 1 alone and the second stage alone instead
  of the default model's vocoder, and for 0.1.0's model at the default quality and at 6 kbps;
- ViSQOL v3 (visqol-python): audio mode at 48 kHz, speech mode (16 kHz) for speech clips; PESQ-wb
  (pesq) and STOI (pystoi) on speech;
- speed per stage for the shipped model and an AudioLDM2-sized VAE, batch 1 and 8;
- peak memory and time for 1, 10 and 60 minute inputs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from entropy_models import run as entropy_models_run  # noqa: E402
from speed import AUDIOLDM2_LABEL, DEV, audioldm2_sized, test_audio  # noqa: E402
from speed import run as speed_run

from latentcodec.audio.io import read_audio  # noqa: E402
from latentcodec.audio.mel import log_mel, normalization_stats  # noqa: E402
from latentcodec.codec import encode_audio  # noqa: E402
from latentcodec.constants import DEFAULT_GL_ITERS
from latentcodec.evaluate import round_trip  # noqa: E402
from latentcodec.info import file_info  # noqa: E402
from latentcodec.format.quantize import DEFAULT_ZSTD  # noqa: E402
from latentcodec.format.rate import DEFAULT_QUALITY  # noqa: E402
from latentcodec.metrics import Visqol, quality, speech_scores  # noqa: E402
from latentcodec.models.loader import load_model  # noqa: E402
from latentcodec.models.registry import DEFAULT_MODEL
from latentcodec.vocoders.registry import (
    default_vocoder,  # noqa: E402
    load_vocoder,
)
from latentcodec.vocoders.windows import vocode_stream  # noqa: E402
from latentcodec.options import DecodeOptions, EncodeOptions

BITS = (16, 8, 6, 5, 4, 3, 2)
ZSTD_LEVEL = DEFAULT_ZSTD
CLASSIC = ([("opus", f"{k}k", ["-c:a", "libopus", "-b:a", f"{k}k"], "ogg") for k in (6, 8, 12, 16, 24)]
           + [("mp3", f"{k}k", ["-c:a", "libmp3lame", "-b:a", f"{k}k"], "mp3") for k in (8, 16, 24, 32)]
           + [("vorbis", f"q{q}", ["-c:a", "libvorbis", "-q:a", str(q)], "ogg") for q in (-1, 0)])
QUALITIES = (0, 2, 3, 4, 5, 6, 8)
V2, V1 = "latentcodec-v2", "latentcodec-v1+zstd"
VOCODER = default_vocoder(DEFAULT_MODEL)  # what the default model's files decode with
# from the exact mel: Griffin-Lim, ours (stage 1), the default (stage 1, or the second stage where it is speech)
EXACT_MEL_VOCODERS = ("griffinlim", "latentcodec-maggl-v1", VOCODER)
# the default file decoded with these too (those of them that are not the default)
OTHER_VOCODERS = ("griffinlim", "latentcodec-maggl-v1", "latentcodec-maggl-small-v4")
OLD_MODEL = "latentcodec-small"  # 0.1.0's model, at the same rates
PREVIOUS_MODEL = "latentcodec-small-v3"  # the default before, with its own vocoder, at the default quality
DEFAULT = (V2, f"quality {DEFAULT_QUALITY:g}")
METRICS = ("log_mel_l1_db", "log_mel_rmse_db", "mrstft_db", "si_sdr_db", "snr_db", "correlation", "visqol", "pesq_wb",
           "stoi")


def kind_of(path: Path) -> str:
    return path.stem.split("_")[0] if path.stem.split("_")[0] in ("music", "speech", "effects") else "audio"


def ffmpeg_round_trip(src: Path, args: list[str], ext: str, tmp: Path) -> tuple[int, np.ndarray]:
    enc, dec = tmp / f"c.{ext}", tmp / "d.wav"
    for cmd in (["ffmpeg", "-v", "error", "-y", "-i", str(src), *args, str(enc)],
                ["ffmpeg", "-v", "error", "-y", "-i", str(enc), "-ar", "16000", "-ac", "1", str(dec)]):
        subprocess.run(cmd, check=True)
    return enc.stat().st_size, sf.read(str(dec), dtype="float32")[0]


def exact_mel_vocoded(x: np.ndarray, vocoder: str) -> np.ndarray:
    """A vocoder from the exact mel of the normalised input, level restored: the ceiling of a mel codec
    decoded with it."""
    off, gain = normalization_stats(x)
    mel = log_mel((x - off) * gain)
    wave = np.concatenate(list(vocode_stream(iter([mel]), len(mel), len(x), load_vocoder(vocoder),
                                             float(np.log(1e-5)))))
    return wave / gain + off


def rate_distortion(clips: list[Path], quick: bool, visqol: Visqol | None) -> list[dict]:
    model, old_model, previous = load_model(DEFAULT_MODEL), load_model(OLD_MODEL), load_model(PREVIOUS_MODEL)
    rows = []
    bits_list = (16, 4) if quick else BITS
    for clip in clips:
        audio = read_audio(clip, mono=True)
        x, kind, dur = audio.samples[0], kind_of(clip), audio.samples.shape[1] / 16000
        base = {"clip": clip.name, "kind": kind}

        def add(codec: str, setting: str, nbytes: int, deg: np.ndarray, **extra: float) -> dict:
            q = quality(x[None], deg[None])
            q["visqol"] = visqol(x, deg, kind) if visqol else float("nan")
            q.update(speech_scores(x, deg) if kind == "speech" else {})
            return same(codec, setting, nbytes, {**q, **extra})

        def same(codec: str, setting: str, nbytes: int, measured: dict) -> dict:
            """A row for other bytes of the same decoded audio (zstd changes bytes, not samples)."""
            rows.append({**base, "codec": codec, "setting": setting, "bytes": nbytes,
                         "kbps": nbytes * 8 / dur / 1000, "ratio_vs_pcm16": 2 * len(x) / nbytes, **measured})
            return measured

        for q in (DEFAULT_QUALITY,) if quick else QUALITIES:
            rt = round_trip(audio, EncodeOptions(model=model, quality=q), DecodeOptions())
            add(V2, f"quality {q:g}", rt.file_size, rt.decoded[0], latent_mel_l1_db=rt.latent_mel_l1_db,
                **(v2_bytes(audio, model, q) if q == DEFAULT_QUALITY else {}))
        rt = round_trip(audio, EncodeOptions(model=model, kbps=6.0), DecodeOptions())
        add(V2, "--kbps 6", rt.file_size, rt.decoded[0], latent_mel_l1_db=rt.latent_mel_l1_db)
        for voc in (v for v in OTHER_VOCODERS if v != VOCODER):
            rt = round_trip(audio, EncodeOptions(model=model, quality=DEFAULT_QUALITY), DecodeOptions(vocoder=voc))
            add(f"{V2} + {voc}", DEFAULT[1], rt.file_size, rt.decoded[0], latent_mel_l1_db=rt.latent_mel_l1_db)
        for setting, opts in ((DEFAULT[1], {"quality": DEFAULT_QUALITY}), ("--kbps 6", {"kbps": 6.0})):
            rt = round_trip(audio, EncodeOptions(model=old_model, **opts), DecodeOptions(vocoder="griffinlim"))
            add(f"{OLD_MODEL} (0.1.0 model)", setting, rt.file_size, rt.decoded[0],
                latent_mel_l1_db=rt.latent_mel_l1_db)
        rt = round_trip(audio, EncodeOptions(model=previous, quality=DEFAULT_QUALITY), DecodeOptions())
        add(f"{PREVIOUS_MODEL} (previous default)", DEFAULT[1], rt.file_size, rt.decoded[0],
            latent_mel_l1_db=rt.latent_mel_l1_db)
        for bits in bits_list:
            rt = round_trip(audio, EncodeOptions(model=model, bits=bits, zstd_level=0), DecodeOptions())
            measured = add("latentcodec-v1", f"{bits} bit", rt.file_size, rt.decoded[0],
                           latent_mel_l1_db=rt.latent_mel_l1_db)
            with tempfile.TemporaryDirectory() as tmp:
                z = encode_audio(audio, Path(tmp) / "z.alat", EncodeOptions(model=model, bits=bits, zstd_level=ZSTD_LEVEL))
            same(V1, f"{bits} bit", z.file_size, measured)
        for voc in EXACT_MEL_VOCODERS:
            add(f"{voc}-exact-mel", "no compression", 2 * len(x), exact_mel_vocoded(x, voc).astype(np.float32))
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "in.wav"
            sf.write(str(wav), x, 16000, subtype="PCM_16")
            for codec, setting, args, ext in (CLASSIC[:3] if quick else CLASSIC):
                nbytes, deg = ffmpeg_round_trip(wav, args, ext, Path(tmp))
                add(codec, setting, nbytes, deg)
        print(f"rate-distortion: {clip.name} done", flush=True)
    return rows


def v2_bytes(audio, model, quality: float) -> dict[str, float]:  # noqa: ANN001
    """What a version-2 file is made of: payload bits per latent value and the share of everything else."""
    with tempfile.TemporaryDirectory() as tmp:
        encode_audio(audio, Path(tmp) / "x.alat", EncodeOptions(model=model, quality=quality))
        info = file_info(Path(tmp) / "x.alat")
    h = info["header"]
    values = len(info["records"]) * int(np.prod(h["latent_shape"]))
    return {"payload_bits_per_value": info["payload_bytes"] * 8 / values,
            "side_info_share": info["overhead_bytes"] / info["bytes"]}


def silence_cost(clips: list[Path]) -> list[dict]:
    """kbps at the default of each clip alone and of the clip followed by as much digital silence."""
    model, rows = load_model(DEFAULT_MODEL), []
    for clip in clips:
        audio = read_audio(clip, mono=True)
        padded = replace(audio, samples=np.concatenate([audio.samples, np.zeros_like(audio.samples)], axis=1))
        with tempfile.TemporaryDirectory() as tmp:
            alone, half = (encode_audio(a, Path(tmp) / "x.alat", EncodeOptions(model=model)) for a in (audio, padded))
            row = {"clip": clip.name, "kbps_alone": alone.file_size * 8 / alone.header.duration / 1000,
                   "kbps_half_silence": half.file_size * 8 / half.header.duration / 1000}
        rows.append({**row, "ratio": row["kbps_half_silence"] / row["kbps_alone"]})
    return rows


def mean_rows(rows: list[dict], kind: str | None = None) -> list[dict]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if kind is None or r["kind"] == kind:
            groups.setdefault((r["codec"], r["setting"]), []).append(r)
    out = []
    for (codec, setting), rs in groups.items():
        m = {"codec": codec, "setting": setting, "clips": len(rs)}
        for k in ("kbps", "ratio_vs_pcm16", *METRICS, "latent_mel_l1_db", "payload_bits_per_value", "side_info_share"):
            vals = [r[k] for r in rs if k in r]
            m[k] = float(np.mean(vals)) if vals else float("nan")
        out.append(m)
    return out


def _vm_hwm_kb(pid: int) -> int:
    """Peak resident memory of a running process (VmHWM: its own, not its forking parent's)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM:")), 0)


def memory_and_length(minutes: list[float], tmp: Path) -> list[dict]:
    """Peak RSS (polled VmHWM) and time of `alat encode` / `alat decode` in child processes, per length."""
    exe = str(Path(sys.executable).parent / "alat")
    rows = []
    for mins in minutes:
        wav, alat, out = tmp / f"in{mins}.wav", tmp / f"in{mins}.alat", tmp / f"out{mins}.wav"
        sf.write(str(wav), test_audio(mins * 60, DEV), 16000, subtype="PCM_16")
        for stage, cmd in (("encode", [exe, "encode", str(wav), str(alat), "--quiet"]),
                           ("decode", [exe, "decode", str(alat), str(out), "--quiet"])):
            t = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
            peak_kb = 0
            while proc.poll() is None:
                peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
                time.sleep(0.05)
            secs = time.perf_counter() - t
            if proc.returncode != 0:
                raise RuntimeError(f"{cmd} failed")
            rows.append({"minutes": mins, "stage": stage, "seconds": secs, "s_per_minute": secs / mins,
                         "peak_rss_mb": peak_kb / 1024, "x_realtime": mins * 60 / secs})
            print(f"memory: {mins} min {stage}: {secs:.1f} s, {peak_kb / 1024:.0f} MB", flush=True)
        for p in (wav, alat, out):
            p.unlink()
    return rows


def versions() -> dict[str, str]:
    import diffusers
    import torch

    import latentcodec

    ff = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = next((ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")), "0")
    try:
        from importlib.metadata import version

        vq = version("visqol-python")
    except Exception:
        vq = "not installed"
    return {"machine": f"{cpu}, {os.cpu_count()} cores, {int(mem) / 2**20:.0f} GiB", "python": platform.python_version(),
            "torch": torch.__version__, "diffusers": diffusers.__version__, "latentcodec": latentcodec.__version__,
            "ffmpeg": ff[0] if ff else "missing", "visqol-python": vq, "date": time.strftime("%Y-%m-%d")}


def fmt(v: float, digits: int = 2) -> str:
    return "n/a" if v != v else f"{v:.{digits}f}"


def table(rows: list[dict], cols: list[tuple[str, str, int]]) -> str:
    head = "| " + " | ".join(c[1] for c in cols) + " |\n|" + "---|" * len(cols) + "\n"
    return head + "\n".join("| " + " | ".join(str(r[k]) if isinstance(r[k], str) or d < 0 else fmt(r[k], d)
                                              for k, _, d in cols) + " |" for r in rows) + "\n"


RD_COLS = [("codec", "codec", -1), ("setting", "setting", -1), ("kbps", "kbps", 2), ("ratio_vs_pcm16", "ratio", 1),
           ("log_mel_l1_db", "log-mel L1 dB", 3), ("log_mel_rmse_db", "log-mel RMSE dB", 3),
           ("mrstft_db", "MR-STFT dB", 3), ("visqol", "ViSQOL", 2), ("si_sdr_db", "SI-SDR dB", 1),
           ("snr_db", "SNR dB", 2), ("correlation", "corr", 3), ("pesq_wb", "PESQ-wb", 2), ("stoi", "STOI", 3)]


def plot(rows: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for metric, label in (("log_mel_l1_db", "log-mel L1 (dB, lower is better)"), ("visqol", "ViSQOL MOS-LQO"),
                          ("pesq_wb", "PESQ-wb (speech)")):
        kinds = sorted({r["kind"] for r in rows if r.get(metric, float("nan")) == r.get(metric)})
        if not kinds:
            continue
        fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 4), squeeze=False)
        for ax, kind in zip(axes[0], kinds):
            means = mean_rows(rows, kind)
            for codec in dict.fromkeys(r["codec"] for r in means):
                pts = sorted((r["kbps"], r[metric]) for r in means if r["codec"] == codec and r["kbps"] < 80)
                if pts and not codec.endswith("-exact-mel"):
                    ax.plot(*zip(*pts), marker="o", label=codec)
            for voc, style in zip(EXACT_MEL_VOCODERS, ("--", ":", "-.")):
                ceil = [r[metric] for r in means if r["codec"] == f"{voc}-exact-mel"]
                if ceil:
                    ax.axhline(ceil[0], ls=style, c="gray", label=f"{voc} from exact mel")
            ax.set_title(kind)
            ax.set_xlabel("kbps (real bytes on disk)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        name = f"rd_{metric}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        names.append(name)
    return names


def verdict(rows: list[dict]) -> list[str]:
    """Plain sentences: the default setting against Opus interpolated at equal kbps, per kind."""
    lines = []
    for kind in sorted({r["kind"] for r in rows}):
        means = mean_rows(rows, kind)
        ours = next((r for r in means if (r["codec"], r["setting"]) == DEFAULT), None)
        opus = sorted((r["kbps"], r) for r in means if r["codec"] == "opus")
        if not ours or len(opus) < 2:
            continue
        for metric, better_low, name in (("log_mel_l1_db", True, "log-mel L1"), ("visqol", False, "ViSQOL"),
                                         ("pesq_wb", False, "PESQ-wb"), ("stoi", False, "STOI")):
            ks = [k for k, _ in opus]
            ref = float(np.interp(ours["kbps"], ks, [r[metric] for _, r in opus]))
            if ref != ref or ours[metric] != ours[metric]:
                continue
            wins = ours[metric] < ref if better_low else ours[metric] > ref
            lines.append(f"- {kind}: at {ours['kbps']:.1f} kbps latentcodec (default: {DEFAULT[1]}) has "
                         f"{name} {ours[metric]:.2f} "
                         f"against Opus {ref:.2f} at the same kbps (interpolated): "
                         f"**{'better' if wins else 'worse'}**.")
    return lines


def standing(rows: list[dict]) -> list[str]:
    """Plain sentences on where the default loses, from the means over all clips."""
    means = {(r["codec"], r["setting"]): r for r in mean_rows(rows)}
    ours = means.get(DEFAULT)
    ceiling = means.get(("griffinlim-exact-mel", "no compression"))
    lines = []
    if ours:
        beats = [means[(c, s)] for c, s in means
                 if c == "opus" and means[(c, s)]["visqol"] > ours["visqol"]]
        loses = "no Opus setting measured"
        if beats:
            loses = (", ".join(f"Opus {b['setting']} ({b['kbps']:.1f} kbps, ViSQOL {b['visqol']:.2f})" for b in beats)
                     + f": from {min(b['kbps'] for b in beats):.0f} kbps up, Opus is the better codec by ear-model")
        lines.append(f"- Over all clips the default ({ours['kbps']:.1f} kbps) scores ViSQOL {ours['visqol']:.2f} and "
                     f"log-mel L1 {ours['log_mel_l1_db']:.2f} dB. It loses on ViSQOL to {loses}, and Opus keeps the "
                     "original's waveform (SNR, SI-SDR), which no Griffin-Lim codec offers.")
        lines.append("- At 6 and 8 kbps Opus's log-mel L1 (about 10 dB) is far worse than its ViSQOL suggests: "
                     "libopus cuts the band above 4 kHz at those rates (checked once by hand on music_asc_frontiers: "
                     "energy above 4 kHz -46 dB of the total at 8 kbps, -31 dB at 12 kbps, -30 dB in the original), "
                     "and an L1 over all 64 mel bands punishes every emptied band. Read both metrics.")
    exact = means.get((V1, "16 bit"))
    if ceiling and ours and exact:
        lines.append(f"- Griffin-Lim from the exact mel (no compression) reaches log-mel L1 "
                     f"{ceiling['log_mel_l1_db']:.2f} dB "
                     f"and ViSQOL {ceiling['visqol']:.2f}: the ceiling of any mel + Griffin-Lim codec. "
                     "Of the default's "
                     f"{ours['log_mel_l1_db'] - ceiling['log_mel_l1_db']:.2f} dB above it, the bits account for "
                     f"{ours['log_mel_l1_db'] - exact['log_mel_l1_db']:.2f} dB (16 bits against the default), "
                     "the shipped VAE for the rest.")
    return lines


def speed_and_memory(corpus: Path, quick: bool) -> tuple[float, list[dict], list[dict]]:
    """Seconds of audio timed, speed rows (both coders for the shipped model), memory rows."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speed.wav"
        secs = 10.0 if quick else 60.0
        sf.write(str(wav), test_audio(secs, corpus), 16000)
        refs = {"small": DEFAULT_MODEL, "audioldm2": audioldm2_sized(Path(tmp) / "a2")}
        labels = {"small": DEFAULT_MODEL, "audioldm2": AUDIOLDM2_LABEL}
        speed = [speed_run(refs[m], labels[m], wav, secs, b, None, "cpu", c) for m in refs for b in (1, 8)
                 for c in (("default", "bits4") if m == "small" else ("default",))]
        mem = memory_and_length([0.25, 0.5] if quick else [1, 10, 60], Path(tmp))
    return secs, speed, mem


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEV)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--quick", action="store_true", help="2 clips, fewer settings, short memory runs (a smoke test)")
    ap.add_argument("--no-visqol", action="store_true")
    ap.add_argument("--render", action="store_true", help="only redraw REPORT.md and plots from OUT/results.json")
    ap.add_argument("--speed-only", action="store_true",
                    help="measure speed and memory again (on a quiet machine) into OUT/results.json, and redraw")
    args = ap.parse_args()
    if args.render or args.speed_only:
        results = json.loads((args.out / "results.json").read_text())
        if args.speed_only:
            results["speed_seconds"], results["speed"], results["memory"] = speed_and_memory(args.corpus, args.quick)
            results["speed_command"] = "python bench/run.py --speed-only"
            (args.out / "results.json").write_text(json.dumps(results, indent=1))
        render(results, args.out)
        return
    if shutil.which("ffmpeg") is None:
        sys.exit("bench: ffmpeg is missing: apt-get install ffmpeg")
    t0 = time.time()
    clips = sorted(args.corpus.glob("*.wav"))[: 2 if args.quick else None]
    if not clips:
        sys.exit(f"bench: no .wav clips in {args.corpus} (give a folder with --corpus)")
    visqol = None if args.no_visqol else Visqol()
    rd = rate_distortion(clips, args.quick, visqol)
    entropy = entropy_models_run(args.corpus)
    silence = silence_cost(clips)
    secs, speed, mem = speed_and_memory(args.corpus, args.quick)
    results = {"versions": versions(), "command": f"python bench/run.py{' --quick' if args.quick else ''}",
               "minutes": (time.time() - t0) / 60, "corpus": str(args.corpus), "clips": len(clips),
               "speed_seconds": secs, "rate_distortion": rd, "entropy_models": entropy, "half_silence": silence,
               "speed": speed, "memory": mem}
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    render(results, args.out)
    print(f"wrote {args.out / 'REPORT.md'} in {(time.time() - t0) / 60:.1f} min")


def entropy_text(results: dict) -> str:
    """The candidates' bits per value, and what the default's bytes are made of."""
    means = {(r["codec"], r["setting"]): r for r in mean_rows(results["rate_distortion"])}
    d = means[DEFAULT]
    return (table(results["entropy_models"], [("model", "probability model / coder (step 0.4)", -1),
                                               ("bits_per_value", "bits per value", 3)])
            + f"\nIn the default's files: {d['payload_bits_per_value']:.3f} payload bits per latent value; header, "
            f"record framing, per-record table parameters, index and end marker are {100 * d['side_info_share']:.1f} % "
            "of the bytes (10 s clips: the header's share falls with length).\n")


def render(results: dict, out: Path) -> None:
    """REPORT.md and the plots from measured results (``--render`` redraws them from results.json)."""
    rd, speed, mem, v = results["rate_distortion"], results["speed"], results["memory"], results["versions"]
    secs = results["speed_seconds"]
    pngs = plot(rd, out)
    tags = {(V1, "16 bit"): "16", (V1, "4 bit"): "4", DEFAULT: "d"}
    by_clip: dict[str, dict] = {}
    for r in rd:
        tag = tags.get((r["codec"], r["setting"]))
        if tag:
            d = by_clip.setdefault(r["clip"], {"clip": r["clip"], "kind": r["kind"]})
            d[f"kbps{tag}"], d[f"vae{tag}"], d[f"e2e{tag}"] = r["kbps"], r["latent_mel_l1_db"], r["log_mel_l1_db"]
    clip_rows = list(by_clip.values())
    clip_rows.append({"clip": "**mean**", "kind": "", **{k: float(np.mean([c.get(k, np.nan) for c in clip_rows]))
                                                           for k in ("kbpsd", "kbps4", "vae16", "e2ed", "e2e4")}})
    rep = [f"# Benchmarks\n\nGenerated by `{results['command']}` in "
           f"{results['minutes']:.1f} min on {v['date']}. Corpus: `{results['corpus']}` ({results['clips']} clips, "
           f"16 kHz mono). Every kbps is a real file size on disk (header, index, container included) over the "
           f"clip's duration.\n",
           "## Machine and versions\n", "\n".join(f"- {k}: {val}" for k, val in v.items()) + "\n",
           "## Where latentcodec stands against Opus\n", "\n".join(verdict(rd) + standing(rd)) + "\n",
           "## Rate–distortion, mean over all clips\n",
           "Quality is measured at 16 kHz on the decoded waveform re-analysed (log-mel on the codec's own front end, "
           "MR-STFT over 512/1024/2048-point STFTs). Griffin-Lim invents phase, so SNR, SI-SDR and correlation are "
           "near zero for every mel codec: they are here for comparison with the first test report. "
           f"zstd level {ZSTD_LEVEL} (version 1). PESQ-wb and STOI are means over the speech clips.\n",
           table(mean_rows(rd), RD_COLS)]
    for kind in sorted({r["kind"] for r in rd}):
        rep += [f"### {kind}\n", table(mean_rows(rd, kind), RD_COLS)]
    rep += ["## Shipped model per clip\n", "VAE alone = version 1 at 16 bits, decoded mel against input mel before "
            f"any vocoder; default = version 2 at {DEFAULT[1]}; version 1 = 4 bits with zstd {DEFAULT_ZSTD}; "
            f"end to end = decoded with the default model's vocoder ({VOCODER}), re-analysed. The default's kbps column is the spread of its variable rate.\n",
            table(clip_rows, [("clip", "clip", -1), ("kind", "kind", -1), ("kbpsd", "kbps (default)", 2),
                              ("kbps4", "kbps (v1 4 bit)", 2), ("vae16", "VAE alone, dB", 3),
                              ("e2ed", "end to end, default, dB", 3), ("e2e4", "end to end, v1 4 bit, dB", 3)])]
    if "entropy_models" in results:
        rep += ["## Bits per latent value (bench/entropy_models.py)\n", entropy_text(results), "",
                "## A file that is half silence\n", "Each clip alone and followed by as much digital silence, at the "
                "default (constant quality: the silent half costs little).\n",
                table(results["half_silence"], [("clip", "clip", -1), ("kbps_alone", "kbps alone", 2),
                                                ("kbps_half_silence", "kbps half silence", 2),
                                                ("ratio", "ratio", 2)])]
    rep += ["\n\n".join(f"![{name[3:-4]} against kbps]({name})" for name in pngs) + "\n",
            "## Speed (CPU)\n", f"{secs:.0f} s of audio, Griffin-Lim {DEFAULT_GL_ITERS} iterations"
            f"{'; measured again by `' + results['speed_command'] + '`' if 'speed_command' in results else ''}. "
            "The first test report measured "
            "0.16 s encode and 0.05 s decode per 5 s chunk for AudioLDM2's VAE (on a GPU).\n",
            table([{**s, **{f"st_{k}": x for k, x in s["stage_x_realtime"].items()}} for s in speed],
                  [("model", "model", -1), ("params_m", "params (M)", 1), ("batch", "batch", 0), ("coder", "coder", -1),
                   ("encode_x_realtime", "encode x RT", 1), ("decode_x_realtime", "decode x RT", 1),
                   ("vae_encode_s_per_5s_chunk", "VAE enc s/5 s chunk", 3),
                   ("vae_decode_s_per_5s_chunk", "VAE dec s/5 s chunk", 3), ("st_mel", "mel x RT", 0),
                   ("st_vae_encode", "VAE enc x RT", 1), ("st_quantize_write", "quantize+write x RT", 0),
                   ("st_read_dequantize", "read+dequantize x RT", 0), ("st_vae_decode", "VAE dec x RT", 1),
                   ("st_vocoder", "vocoder x RT", 1)]),
            "## Memory and length\n", "Each stage in its own process (`alat encode` / `alat decode`, shipped model); "
            "peak resident memory of that process.\n",
            table(mem, [("minutes", "input (min)", 2), ("stage", "stage", -1), ("seconds", "seconds", 1),
                        ("s_per_minute", "s per minute", 2), ("x_realtime", "x real time", 1),
                        ("peak_rss_mb", "peak RSS (MB)", 0)])]
    (out / "REPORT.md").write_text("\n".join(rep))


if __name__ == "__main__":
    main()
