"""The listening page of `make bench`: people judge a codec by ear, not by tables.

    python bench/listen.py [--corpus DIR] [--out bench/listen]

For each dev clip it writes the original (16 kHz mono, what the codec receives), the default codec
decoded with Griffin-Lim, with the default model's vocoder and with the second-stage vocoder (one .alat, so
one size), and Opus at the bitrate
nearest the codec's real kbps; each as 16-bit 16 kHz WAV (every browser plays it) with a spectrogram on
the colour scale of its row, and ``index.html`` with a player per version. Generated, never committed.
"""
from __future__ import annotations

import argparse
import html
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ffmpeg_round_trip, kind_of  # noqa: E402

import latentcodec  # noqa: E402
from latentcodec.audio.io import read_audio  # noqa: E402
from latentcodec.codec import encode_audio  # noqa: E402
from latentcodec.format.rate import DEFAULT_QUALITY  # noqa: E402
from latentcodec.models.loader import Model, load_model  # noqa: E402
from latentcodec.models.registry import DEFAULT_MODEL
from latentcodec.vocoders.registry import default_vocoder  # noqa: E402
from latentcodec.options import EncodeOptions

RATE = 16000
VOCODER = default_vocoder(DEFAULT_MODEL)  # the default model's own vocoder
OPUS_MIN_KBPS = 6  # below this libopus is not worth hearing
DB_RANGE = 80.0  # dB shown below the loudest bin of a row


@dataclass
class Version:
    """One player on the page: what it is, its real bitrate (None for the original) and its samples."""

    slug: str
    label: str
    kbps: float | None
    samples: np.ndarray


def codec_versions(x: np.ndarray, clip: Path, model: Model, out: Path) -> list[Version]:
    """The default codec's file (kept beside the page) decoded by Griffin-Lim, by the default model's vocoder
    and by the second-stage vocoder."""
    alat = out / f"{clip.stem}.alat"
    enc = encode_audio(read_audio(clip, mono=True), alat, EncodeOptions(model=model, quality=DEFAULT_QUALITY))
    kbps = enc.file_size * 8 / (len(x) / RATE) / 1000
    name = f"latentcodec q{DEFAULT_QUALITY:g}"
    return [Version(slug, f"{name} + {label}", kbps, latentcodec.decode(alat, model=model, vocoder=voc)[0])
            for slug, label, voc in (("gl", "Griffin-Lim", "griffinlim"), ("vocoder", VOCODER, VOCODER))]


def opus_version(x: np.ndarray, target_kbps: float) -> Version:
    """Opus (ffmpeg libopus) asked for the whole kbps nearest ``target_kbps``; its real kbps is the Ogg file's."""
    asked = max(OPUS_MIN_KBPS, round(target_kbps))
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "in.wav"
        sf.write(str(wav), x, RATE, subtype="PCM_16")
        nbytes, deg = ffmpeg_round_trip(wav, ["-c:a", "libopus", "-b:a", f"{asked}k"], "ogg", Path(tmp))
    return Version("opus", f"Opus {asked}k", nbytes * 8 / (len(x) / RATE) / 1000, deg)


def stft_db(x: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Magnitude STFT in dB, (bins, frames): finer than the codec's 64 mel bands, so vocoder artefacts show."""
    padded = np.pad(x.astype(np.float32), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * np.hanning(n_fft)
    return 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)).T + 1e-7)


def save_spectrogram(db: np.ndarray, duration: float, vmax: float, path: Path) -> None:
    """A small PNG on the row's colour scale (``vmax`` down to ``vmax - DB_RANGE``), so rows compare by eye."""
    fig = Figure(figsize=(3.9, 1.7), dpi=100)
    ax = fig.add_subplot()
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=vmax - DB_RANGE, vmax=vmax,
              extent=(0, duration, 0, RATE / 2000), interpolation="nearest")
    ax.set_xlabel("s", fontsize=7, labelpad=1)
    ax.set_ylabel("kHz", fontsize=7, labelpad=1)
    ax.tick_params(labelsize=6, pad=1)
    fig.savefig(path, bbox_inches="tight", pad_inches=0.02)


def write_clip(clip: Path, model: Model, out: Path) -> list[Version]:
    """Every version of one clip as WAV + PNG under ``out``; returns them for the page."""
    x = read_audio(clip, mono=True).samples[0]
    codec = codec_versions(x, clip, model, out)
    versions = [Version("orig", "Original (16 kHz mono)", None, x), *codec, opus_version(x, codec[0].kbps)]
    dbs = [stft_db(v.samples) for v in versions]
    vmax = max(float(d.max()) for d in dbs)
    for v, db in zip(versions, dbs):
        sf.write(str(out / f"{clip.stem}.{v.slug}.wav"), np.clip(v.samples, -1, 1), RATE, subtype="PCM_16")
        save_spectrogram(db, len(v.samples) / RATE, vmax, out / f"{clip.stem}.{v.slug}.png")
    return versions


def clip_section(clip: Path, versions: list[Version]) -> str:
    """One clip's section: its kind, then a column per version with bitrate, player and spectrogram."""
    cells = []
    for v in versions:
        rate = "uncompressed" if v.kbps is None else f"{v.kbps:.1f} kbps"
        base = html.escape(f"{clip.stem}.{v.slug}")
        cells.append(f'<figure><figcaption><b>{html.escape(v.label)}</b><br>{rate}</figcaption>'
                     f'<audio controls preload="metadata" src="{base}.wav"></audio>'
                     f'<img src="{base}.png" alt="spectrogram: {html.escape(v.label)}"></figure>')
    name = html.escape(clip.stem)
    return (f'<section><h2>{name} <small>{html.escape(kind_of(clip))} · '
            f'<a href="{name}.alat">.alat file</a></small></h2><div class="row">{"".join(cells)}</div></section>')


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>latentcodec: listening page</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; max-width: 1280px; }}
.row {{ display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; }}
figure {{ margin: 0; }} figcaption {{ min-height: 3.9em; font-size: 13px; }}
audio, img {{ width: 100%; display: block; }} audio {{ height: 32px; margin: 4px 0; }}
h2 {{ font-size: 16px; margin: 1.4em 0 .4em; }} small {{ font-weight: normal; color: #555; }}
</style></head><body>
<h1>latentcodec: listen</h1>
<p>The dev clips, each as the codec receives it (16 kHz mono), through the default codec (quality {quality:g})
decoded by Griffin-Lim and by {vocoder} (the default: a network gives Griffin-Lim the magnitude; where the
decoded mel is speech, one trained on the VAE's decoded mels), all from the same .alat file, and through Opus
at the whole kbps nearest the codec's real bitrate (at least {opus_min}k). Bitrates are real file sizes over
duration. All players are 16-bit 16 kHz WAV. Spectrograms: STFT magnitude 0 to 8 kHz, {db:g} dB below the loudest bin of the row, the same
scale across a row. Generated by <code>bench/listen.py</code>.</p>
{sections}
</body></html>
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = Path(__file__).resolve().parent.parent
    ap.add_argument("--corpus", type=Path, default=root.parent / "shared" / "corpus" / "dev")
    ap.add_argument("--out", type=Path, default=root / "bench" / "listen")
    args = ap.parse_args()
    clips = sorted(args.corpus.glob("*.wav"))
    if not clips:
        sys.exit(f"listen: no .wav clips in {args.corpus}")
    args.out.mkdir(parents=True, exist_ok=True)
    model, t0, sections = load_model(DEFAULT_MODEL), time.perf_counter(), []
    for clip in clips:
        sections.append(clip_section(clip, write_clip(clip, model, args.out)))
        print(f"listen: {clip.name} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    page = PAGE.format(quality=DEFAULT_QUALITY, vocoder=VOCODER, opus_min=OPUS_MIN_KBPS,
                       db=DB_RANGE, sections="\n".join(sections))
    (args.out / "index.html").write_text(page)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"listen: {args.out / 'index.html'}: {len(clips)} clips, folder {size:.1f} MB, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
