"""Build the training set of the shipped VAE from free audio in Debian packages.

Downloads the packages of ``shared/corpus/TRAINING_SOURCES.md`` (never a package held out for
validation or evaluation), unpacks them without installing, decodes every audio file, mixes to mono,
resamples to 16 kHz (soxr) and writes FLAC files under OUT/{music,speech,effects}/ with a
MANIFEST.tsv that records each file's package, version, license, source sample rate and band.

    python recipes/build_dataset.py /data/alat-train-all --work /data/debian --max-minutes-per-package 0

soundfile reads the common formats; Debian's ffmpeg decodes the raw GSM prompts (`-f gsm`) and renders
the tracker modules (libopenmpt demuxer). A source at 8 kHz or less is *narrowband* (nothing above 4 kHz
once at 16 kHz): the manifest's ``band`` column says so, for a trainer to give it a small weight.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

PACKAGES: dict[str, str] = {
    "warzone2100-music": "music", "ufoai-music": "music", "planetblupi-music-ogg": "music",
    "wesnoth-1.16-music": "music", "hedgewars-data": "music", "nexuiz-music": "music",
    "btanks-data": "music", "zaz-data": "music", "fretsonfire-songs-muldjord": "music",
    "xmoto-data": "music", "extremetuxracer-data": "music", "lomiri-sounds": "music",
    "caveexpress-data": "music",
    "klettres-data": "speech", "ktuberling-data": "speech", "asterisk-prompt-it-menardi-wav": "speech",
    "asterisk-prompt-fr-armelle": "speech", "gcin-voice": "speech", "asterisk-prompt-es-co": "speech",
    "pingus-data": "effects", "lincity-ng-data": "effects", "tuxmath-data": "effects",
    "powermanga-data": "effects", "oxygen-sounds": "effects", "sound-theme-freedesktop": "effects",
    "chromium-bsu-data": "effects",
}
# Never train on these (validation clips' sources, their duplicates, held-out evaluation audio).
FORBIDDEN = re.compile(r"^(drascula.*|asc-music|tuxtype-data|asterisk-moh-opsound.*|asterisk-core-sounds-.*|"
                       r"codec2-examples|minetest-data|fb-music-high|linphone-common|tuxpaint.*|openarena.*|"
                       r"colobot.*|hyperrogue-music|singularity-music|frozen-bubble-data|fretsonfire-songs-sectoid)$")
AUDIO_EXT = {".ogg", ".oga", ".opus", ".wav", ".mp3", ".flac"}
FFMPEG_INPUT = {".gsm": ["-f", "gsm"], ".it": [], ".s3m": [], ".mod": [], ".xm": []}  # extra input options
TRACKER = {".it", ".s3m", ".mod", ".xm"}  # rendered music, whatever the package's kind
SR = 16000
NARROWBAND_HZ = 8000
# Our own test split (all three kinds): written under --held-out, never into the training folder.
HELD_OUT = ("xmoto-data", "zaz-data", "ktuberling-data", "powermanga-data")


def unpack(pkg: str, work: Path) -> tuple[Path, str, str]:
    """Download and unpack one package; return its root, version and license summary."""
    debs = work / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob(f"{pkg}_*.deb")):
        subprocess.run(["apt-get", "download", "-q", pkg], cwd=debs, check=True, capture_output=True)
    deb = sorted(debs.glob(f"{pkg}_*.deb"))[-1]
    root = work / "pkgs" / pkg
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        for pk3 in root.rglob("*.pk3"):
            with zipfile.ZipFile(pk3) as z:
                z.extractall(pk3.parent / f"_{pk3.stem}")
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    licenses = set()
    for cp in root.glob("usr/share/doc/*/copyright"):
        licenses |= {m.strip() for m in re.findall(r"^License:\s*(.+)$", cp.read_text(errors="replace"), re.M)}
    return root, version, " / ".join(sorted(licenses)) or "see copyright"


def ffmpeg_mono16k(path: Path) -> tuple[np.ndarray, int] | None:
    """Decode with ffmpeg to 16 kHz mono float32; the source rate as ffmpeg reports it (8000 for GSM)."""
    opts = FFMPEG_INPUT[path.suffix.lower()]
    run = subprocess.run(["ffmpeg", "-v", "error", *opts, "-i", str(path), "-ac", "1", "-ar", str(SR), "-f", "f32le",
                          "-"], capture_output=True)
    if run.returncode or not run.stdout:
        return None
    return np.frombuffer(run.stdout, np.float32).copy(), 8000 if opts else SR


def load_mono16k(path: Path) -> tuple[np.ndarray, int] | None:
    """(16 kHz mono samples, source sample rate), or None when the file is not audio we can read."""
    if path.suffix.lower() in FFMPEG_INPUT:
        return ffmpeg_mono16k(path)
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # unreadable or not audio: skipped, as the builder's contract says
        return None
    x = x.mean(axis=1)
    if sr != SR and len(x):
        x = soxr.resample(x, sr, SR, quality="HQ").astype(np.float32)
    return x, sr


def convert(pkg: str, kind: str, work: Path, out: Path, max_minutes: float) -> list[str]:
    root, version, lic = unpack(pkg, work)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXT | set(FFMPEG_INPUT)
                   and "usr/share/doc" not in str(p))
    rows, total = [], 0.0
    stems_done: set[Path] = set()
    for p in files:
        if max_minutes and total >= max_minutes * 60:
            break
        if pkg == "fretsonfire-songs-muldjord" and p.name in {"song.ogg", "guitar.ogg"}:
            if p.parent in stems_done:
                continue
            stems_done.add(p.parent)
            parts = [load_mono16k(p.parent / n) for n in ("song.ogg", "guitar.ogg") if (p.parent / n).exists()]
            parts = [a for a in parts if a is not None]
            n = min(len(a) for a, _ in parts) if parts else 0
            loaded = (sum(a[:n] for a, _ in parts), parts[0][1]) if parts else None
        else:
            loaded = load_mono16k(p)
        if loaded is None or len(loaded[0]) < 0.3 * SR or np.max(np.abs(loaded[0])) < 1e-4:
            continue
        x, source_rate = loaded
        file_kind = "music" if p.suffix.lower() in TRACKER else kind
        dest = out / file_kind / pkg
        dest.mkdir(parents=True, exist_ok=True)
        rel = str(p.relative_to(root))
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", rel)[-100:]  # non-ASCII names collapse: the hash keeps them apart
        target = dest / f"{Path(name).stem}-{hashlib.sha1(rel.encode()).hexdigest()[:8]}.flac"
        sf.write(str(target), np.clip(x, -1, 1), SR, subtype="PCM_16")
        total += len(x) / SR
        band = "narrow" if source_rate <= NARROWBAND_HZ else "wide"
        rows.append(f"{target.relative_to(out)}\t{file_kind}\t{pkg}\t{version}\t{lic}\t{len(x) / SR:.2f}\t"
                    f"{p.relative_to(root)}\t{source_rate}\t{band}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/data/debian"), help="download and unpack folder")
    ap.add_argument("--max-minutes-per-package", type=float, default=40.0, help="0: every file of every package")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--held-out", type=Path, default=None,
                    help=f"write the test split's packages ({', '.join(HELD_OUT)}) here instead of into OUT")
    args = ap.parse_args()
    assert not any(FORBIDDEN.match(p) for p in PACKAGES)
    if shutil.which("ffmpeg") is None:  # it decodes the GSM prompts and renders the tracker modules
        raise SystemExit("build_dataset: ffmpeg not found: apt-get install ffmpeg")
    for out in (args.out, args.held_out):
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.jobs) as ex:
        dest = {p: args.held_out if args.held_out and p in HELD_OUT else args.out for p in PACKAGES}
        futs = {p: ex.submit(convert, p, k, args.work, dest[p], args.max_minutes_per_package)
                for p, k in PACKAGES.items()}
        manifests: dict[Path, list[str]] = {}
        for p, f in futs.items():
            manifests.setdefault(dest[p], []).extend(f.result())
    for out, rows in manifests.items():
        write_manifest(out, rows)


def write_manifest(out: Path, rows: list[str]) -> None:
    """OUT/MANIFEST.tsv, and a line of hours by kind."""
    header = "file\tkind\tpackage\tversion\tlicense\tseconds\tsource\tsource_rate\tband"
    (out / "MANIFEST.tsv").write_text(header + "\n" + "\n".join(rows) + "\n")
    hours: dict[str, float] = {}
    for r in rows:
        f = r.split("\t")
        key = f[1] + (" (narrowband)" if f[8] == "narrow" else "")
        hours[key] = hours.get(key, 0.0) + float(f[5]) / 3600
    print(f"{out}: {len(rows)} files; hours by kind: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(hours.items())))


if __name__ == "__main__":
    main()
