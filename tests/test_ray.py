"""Folder mode on Ray Data through the real CLI, on a local Ray instance of 2 CPUs: the same bytes as
folder mode in processes, a resumed run with one broken file, and decoding; the one-line errors."""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import tone
from tests.test_cli import run
from tests.test_folders import alat

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"

NO_RAY = importlib.util.find_spec("ray") is None


@pytest.mark.skipif(NO_RAY, reason="ray is not installed (pip install 'latentcodec[ray]')")
def test_ray_encode_resume_and_decode(tmp_path, tiny_model) -> None:
    src, ref, enc, dec = (tmp_path / d for d in ("in", "ref", "enc", "dec"))
    names = ["a.wav", "music/b.flac", "music/live/c.wav"]
    for i, name in enumerate(names):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(src / name), tone(1.0 + i, 22050, 1 + i % 2, seed=i), 22050)
    (src / "broken.wav").write_bytes(b"RIFF not really a wave file")
    r = alat("encode", str(src), str(ref), "--model", tiny_model, "--threads", "1", "--json")
    assert json.loads(r.stdout)["written"] == 3, r.stderr

    # a batch interrupted before: one output complete, one cut short (kept without -y); Ray writes the other two
    (enc / "music").mkdir(parents=True)
    shutil.copy(ref / "a.alat", enc / "a.alat")
    (enc / "music" / "b.alat").write_bytes((ref / "music" / "b.alat").read_bytes()[:100])
    r = alat("encode", str(src), str(enc), "--model", tiny_model, "--ray", "local", "--jobs", "2", "--json", "-y")
    assert r.returncode == 1, r.stderr  # the broken file
    res = json.loads(r.stdout)
    assert (res["written"], res["skipped"], res["failed"]) == (2, 1, 1)
    assert [x for x in r.stderr.splitlines() if x.startswith("alat:")] == [
        f"alat: failed: {res['failures'][0]['input']}: unsupported or unreadable audio (Error opening "
        f"{res['failures'][0]['input']!r}: Format not recognised.)"]
    for name in names:  # one torch thread per actor, as in the reference run: the same bytes
        alat_name = name.rsplit(".", 1)[0] + ".alat"
        assert (enc / alat_name).read_bytes() == (ref / alat_name).read_bytes(), name

    r = alat("decode", str(enc), str(dec), "--ray", "local", "--jobs", "2", "--gl-iters", "2", "--json",
             "--model", tiny_model)
    assert r.returncode == 0 and json.loads(r.stdout)["written"] == 3, r.stderr
    for i, name in enumerate(names):
        y, rate = sf.read(str((dec / name).with_suffix(".wav")), always_2d=True)
        assert rate == 16000 and y.shape == (round((1.0 + i) * 16000), 1 + i % 2) and np.abs(y).max() > 0


def test_ray_needs_a_folder_and_the_package(capsys, monkeypatch, tmp_path, make_wav) -> None:
    wav = make_wav("a.wav", 1.0)
    code, _, err = run(capsys, "encode", str(wav), str(tmp_path / "a.alat"), "--ray", "local")
    assert code == 2 and err.splitlines()[-1] == f"alat: error: --ray runs folder mode: {wav} is not a folder"
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: importing it fails
    code, _, err = run(capsys, "encode", str(tmp_path), str(tmp_path / "out"), "--ray", "local")
    assert code == 1 and err == "alat: error: --ray: running on Ray needs the ray package: " \
                                "pip install 'latentcodec[ray]'\n"
