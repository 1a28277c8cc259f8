"""What `alat` writes, through the real CLI: the format its suffix names, the user's umask, never over
an existing file unless told, never over its input, and a full disk in one line."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.test_cli import _error, run

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"

ALAT = str(Path(sys.executable).parent / "alat")


@pytest.fixture
def alat_file(capsys, tmp_path, make_wav, tiny_model) -> Path:
    src = make_wav("in.wav", 3.0, 22050, 2)
    out = tmp_path / "in.alat"
    assert run(capsys, "encode", str(src), str(out), "--model", tiny_model)[0] == 0
    return out


def test_formats_by_suffix(capsys, tmp_path, alat_file, tiny_model) -> None:
    wav, flac, ogg = tmp_path / "y.wav", tmp_path / "y.flac", tmp_path / "y.ogg"
    for path in (wav, flac, ogg):
        assert run(capsys, "decode", str(alat_file), str(path), "--gl-iters", "2", "--sample-rate", "original",
                   "--model", tiny_model)[0] == 0
    assert (sf.info(str(flac)).format, sf.info(str(ogg)).format, sf.info(str(ogg)).subtype) == ("FLAC", "OGG", "VORBIS")
    ref, rate = sf.read(str(wav), always_2d=True)
    assert rate == 22050 and ref.shape == (3 * 22050, 2)
    y, rate = sf.read(str(flac), always_2d=True)
    assert rate == 22050 and np.abs(y - ref).max() <= 2 / 32768  # 16-bit PCM of the same decode, to a step or two
    y, rate = sf.read(str(ogg), always_2d=True)
    assert rate == 22050 and y.shape == ref.shape
    assert min(np.corrcoef(y[:, c], ref[:, c])[0, 1] for c in range(2)) > 0.9  # lossy, but the same sound
    bad = tmp_path / "y.xyz"
    _error(capsys, bad, "decode", str(alat_file), str(bad), match="cannot write audio as '.xyz': use .wav, .flac")


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_users_umask(tmp_path, make_wav, tiny_model, umask: int, mode: int) -> None:
    src, alat, wav = make_wav("a.wav", 1.0), tmp_path / "a.alat", tmp_path / "decoded.wav"
    for argv in (["encode", str(src), str(alat), "--model", tiny_model], ["decode", str(alat), str(wav), "--model", tiny_model]):
        r = subprocess.run([ALAT, *argv], capture_output=True, text=True, preexec_fn=lambda: os.umask(umask))
        assert r.returncode == 0, r.stderr
    assert (alat.stat().st_mode & 0o777, wav.stat().st_mode & 0o777) == (mode, mode)


def test_existing_output_kept_unless_overwrite(capsys, tmp_path, alat_file, tiny_model) -> None:
    wav = tmp_path / "keep.wav"
    wav.write_bytes(b"precious")
    code, _, err = run(capsys, "decode", str(alat_file), str(wav), "--model", tiny_model)
    assert code == 1 and err.strip() == f"alat: error: {wav}: exists; use --overwrite (-y) to replace it"
    assert wav.read_bytes() == b"precious" and not list(tmp_path.glob(".keep.wav.*"))
    assert run(capsys, "decode", str(alat_file), str(wav), "-y", "--model", tiny_model)[0] == 0 and sf.info(str(wav)).frames == 3 * 16000
    src = tmp_path / "in.wav"
    before = src.read_bytes()
    code, _, err = run(capsys, "encode", str(src), str(src), "--model", tiny_model, "-y")
    assert code == 1 and err.strip() == f"alat: error: {src}: is the input itself; write the output elsewhere"
    assert src.read_bytes() == before


def test_full_disk_on_decode_is_one_line(capsys, tmp_path, alat_file, tiny_model) -> None:
    small = tmp_path / "small"
    small.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)]).returncode:
        pytest.skip("needs root to mount a 64 KiB tmpfs")
    try:
        out = small / "y.wav"  # 3 s x 2 ch of 16-bit PCM at 22050 Hz: 265 KB
        _error(capsys, out, "decode", str(alat_file), str(out), "--sample-rate", "original", "--model", tiny_model,
               match=f"{out}: no space left on the device; nothing was written")
        assert not list(small.iterdir())
    finally:
        subprocess.run(["umount", str(small)], check=True)


def _limited(limit: int):
    """A child's set-up: files of at most ``limit`` bytes, a write past it failing (EFBIG) as on a full disk."""
    def setup() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return setup


@pytest.mark.parametrize("suffix", [".flac", ".ogg", ".wav"])
def test_a_disk_that_fills_up_leaves_no_cut_file(tmp_path, alat_file, tiny_model, suffix: str) -> None:
    """libsndfile's FLAC and Vorbis writers drop the error of a write that fails near the end of a file (a full
    disk gave exit 0 and a cut file): every output is whole or absent."""
    argv = [ALAT, "decode", str(alat_file), "--gl-iters", "2", "--model", tiny_model]
    full = tmp_path / f"full{suffix}"
    assert subprocess.run(argv[:3] + [str(full)] + argv[3:], capture_output=True).returncode == 0
    out = tmp_path / f"cut{suffix}"
    for limit in (full.stat().st_size - 64, full.stat().st_size // 2):
        r = subprocess.run(argv[:3] + [str(out)] + argv[3:], capture_output=True, text=True, preexec_fn=_limited(limit))
        assert r.returncode == 1 and r.stderr == f"alat: error: {out}: larger than the file system (or this process's " \
                                                 f"file size limit) allows; nothing was written\n", r.stderr
        assert not out.exists() and not list(tmp_path.glob(f".{out.name}.*"))


def test_a_writer_that_drops_frames_is_caught(capsys, monkeypatch, tmp_path, alat_file, tiny_model) -> None:
    real = sf.SoundFile.write
    monkeypatch.setattr(sf.SoundFile, "write", lambda self, data: real(self, data[:len(data) // 2]))
    out = tmp_path / "y.flac"
    _error(capsys, out, "decode", str(alat_file), str(out), "--gl-iters", "2", "--model", tiny_model,
           match=f"{out}: the FLAC file written reads back as 24000 frames x 2 ch at 16000 Hz, not the 48000 x 2 ch at "
                 f"16000 Hz written: not kept")


def test_a_rerun_removes_what_a_killed_run_left(tmp_path, make_wav, tiny_model) -> None:
    """SIGKILL skips every clean-up: the hidden temporary output stays until the same command runs again (a
    folder run removes them too); one that a live writer holds (its lock) is left alone."""
    import fcntl

    src, alat, out = make_wav("in.wav", 60.0, 16000, 2), tmp_path / "long.alat", tmp_path / "long.wav"
    assert subprocess.run([ALAT, "encode", str(src), str(alat), "--model", tiny_model]).returncode == 0
    argv = [ALAT, "decode", str(alat), str(out), "--gl-iters", "32", "--model", tiny_model]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not list(tmp_path.glob(".long.wav.*.part")) and p.poll() is None:
        time.sleep(0.01)
    p.kill()
    assert p.wait() == -9
    (stale,) = tmp_path.glob(".long.wav.*.part")
    held = tmp_path / ".long.wav.abcdefgh.part"  # another run's, at work: locked
    with open(held, "wb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        assert subprocess.run(argv, capture_output=True).returncode == 0
        assert not stale.exists() and held.exists() and sf.info(str(out)).frames == 60 * 16000


@pytest.mark.parametrize("suffix", [".flac", ".ogg"])
def test_a_disk_full_at_the_last_block(capsys, tmp_path, alat_file, tiny_model, suffix: str) -> None:
    """The case libsndfile lost: the disk fills while FLAC or Vorbis writes its last bytes, on a real file system."""
    full = tmp_path / f"full{suffix}"
    argv = ["--gl-iters", "2", "--sample-rate", "original", "--model", tiny_model]
    assert run(capsys, "decode", str(alat_file), str(full), *argv)[0] == 0
    small = tmp_path / "small"
    small.mkdir()
    size = (full.stat().st_size - 1) // 4096 * 4096  # in pages, short of the file by less than one
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(small)]).returncode:
        pytest.skip("needs root to mount a tmpfs")
    try:
        out = small / f"y{suffix}"
        _error(capsys, out, "decode", str(alat_file), str(out), *argv,
               match=f"{out}: no space left on the device; nothing was written")
        assert not list(small.iterdir())
    finally:
        subprocess.run(["umount", str(small)], check=True)
