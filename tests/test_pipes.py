"""`-` for input and output, through real shell pipelines and the installed `alat` script."""
from __future__ import annotations

import pytest
import os
import shlex
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"

ALAT = shlex.quote(str(Path(sys.executable).parent / "alat"))
ROOT = Path(__file__).resolve().parents[1]


def sh(script: str) -> subprocess.CompletedProcess:
    """``script`` in bash with pipefail; this checkout's package first, whatever the working folder."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True, env=env)


def test_encode_decode_through_a_pipeline(tmp_path, make_wav, tiny_model) -> None:
    make_wav("in.wav", 7.5, 22050, 2)
    m = f"--model {shlex.quote(tiny_model)}"
    r = sh(f"cd {tmp_path} && cat in.wav | {ALAT} encode - - {m} | {ALAT} decode - - --gl-iters 2 {m} > out.wav")
    assert r.returncode == 0, r.stderr.decode()
    y, rate = sf.read(str(tmp_path / "out.wav"), always_2d=True)
    assert rate == 16000 and y.shape == (round(7.5 * 16000), 2) and np.abs(y).max() > 0
    # the streamed .alat is the file's bytes; stdout carried only the file, the summary went to stderr
    r = sh(f"cd {tmp_path} && {ALAT} encode in.wav file.alat {m} && {ALAT} encode in.wav - {m} > piped.alat")
    assert r.returncode == 0 and b"piped.alat" not in r.stdout and b"-: 7.50 s x 2 ch" in r.stderr
    assert (tmp_path / "piped.alat").read_bytes() == (tmp_path / "file.alat").read_bytes()
    # decoding to stdout writes a WAV whose header gives the exact length (nothing to patch in a pipe)
    r = sh(f"cd {tmp_path} && {ALAT} decode file.alat - --gl-iters 2 --sample-rate original {m} | cat > stdout.wav")
    data = (tmp_path / "stdout.wav").read_bytes()
    riff, data_len = struct.unpack_from("<I", data, 4)[0], struct.unpack_from("<I", data, 40)[0]
    assert r.returncode == 0 and riff == len(data) - 8 and data_len == len(data) - 44 == 7.5 * 22050 * 2 * 2
    assert sf.info(str(tmp_path / "stdout.wav")).samplerate == 22050


def test_pipe_errors_are_one_line(tmp_path, make_wav, tiny_model) -> None:
    make_wav("in.wav", 2.0)
    m = f"--model {shlex.quote(tiny_model)}"
    r = sh(f"cd {tmp_path} && echo 'not audio' | {ALAT} encode - x.alat {m}")
    assert r.returncode == 1 and r.stderr.decode().strip().startswith("alat: error: <stdin>: unsupported or unreadable")
    r = sh(f"cd {tmp_path} && {ALAT} encode in.wav - {m} > /dev/full")
    assert r.returncode == 1 and r.stderr.decode().strip() == "alat: error: <stdout>: cannot write (No space left on device)"
    r = sh(f"cd {tmp_path} && head -c 100 in.wav | {ALAT} decode - out.wav")
    assert r.returncode == 1 and r.stderr.decode().strip() == "alat: error: <stdin>: not a .alat file (bad magic bytes at offset 0)"
    assert not (tmp_path / "out.wav").exists()
