"""Folder mode through the real CLI: a nested tree, one broken file, worker processes, a resumed run."""
from __future__ import annotations

import pytest
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.conftest import tone

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"

ALAT = str(Path(sys.executable).parent / "alat")
ROOT = Path(__file__).resolve().parents[1]


def alat(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([ALAT, *argv], capture_output=True, text=True, env=env)


def test_nested_tree_broken_file_and_resume(tmp_path, tiny_model) -> None:
    src, enc, dec = tmp_path / "in", tmp_path / "enc", tmp_path / "dec"
    names = ["a.wav", "music/b.flac", "music/live/c.wav", "speech/d.ogg"]
    for i, name in enumerate(names):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(src / name), tone(1.0 + i, 16000 if i % 2 else 22050, 1 + i % 2, seed=i), 16000 if i % 2 else 22050)
    (src / "speech" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (src / "notes.txt").write_text("not audio, not an input")

    r = alat("encode", str(src), str(enc), "--model", tiny_model, "--jobs", "2", "--json")
    assert r.returncode == 1, r.stderr  # one file failed: the status says so, the rest were written
    res = json.loads(r.stdout)
    assert (res["written"], res["skipped"], res["failed"]) == (4, 0, 1)
    assert r.stderr.strip().splitlines() == [f"alat: failed: {src / 'speech' / 'broken.wav'}: unsupported or "
                                             f"unreadable audio (Error opening {str(src / 'speech' / 'broken.wav')!r}: "
                                             f"Format not recognised.)"]
    outs = sorted(str(p.relative_to(enc)) for p in enc.rglob("*.alat"))
    assert outs == ["a.alat", "music/b.alat", "music/live/c.alat", "speech/d.alat"]

    # one output lost, one cut short (not ours: an interrupted run leaves none): the rerun with -y writes
    # just those two
    (enc / "a.alat").unlink()
    data = (enc / "music" / "b.alat").read_bytes()
    (enc / "music" / "b.alat").write_bytes(data[:len(data) // 2])
    before = (enc / "music" / "live" / "c.alat").stat().st_mtime_ns
    r = alat("encode", str(src), str(enc), "--model", tiny_model, "--json", "-y")
    res = json.loads(r.stdout)
    assert (res["written"], res["skipped"], res["failed"]) == (2, 2, 1)
    assert (enc / "music" / "b.alat").read_bytes() == data
    assert (enc / "music" / "live" / "c.alat").stat().st_mtime_ns == before

    r = alat("decode", str(enc), str(dec), "--gl-iters", "2", "--jobs", "2", "--json", "--model", tiny_model)
    assert r.returncode == 0 and json.loads(r.stdout)["written"] == 4, r.stderr
    for i, name in enumerate(names):
        y, rate = sf.read(str((dec / name).with_suffix(".wav")), always_2d=True)
        assert rate == 16000 and y.shape == (round((1.0 + i) * 16000), 1 + i % 2) and np.abs(y).max() > 0
    r = alat("decode", str(enc), str(dec), "--json", "--model", tiny_model)
    assert r.returncode == 0 and json.loads(r.stdout)["skipped"] == 4


def test_eval_folder_rows_and_means(capsys, tmp_path, tiny_model) -> None:
    from tests.test_cli import run

    for i, name in enumerate(["a.wav", "b.wav", "sub/c.wav"]):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        sf.write(str(tmp_path / name), tone(1.0 + i, 16000, 1, seed=i), 16000)
    (tmp_path / "sub" / "bad.wav").write_bytes(b"no audio")
    args = ("eval", str(tmp_path), "--model", tiny_model, "--gl-iters", "2")
    code, out, err = run(capsys, *args, "--json")
    res = json.loads(out)
    assert code == 1 and [r["file"] for r in res["rows"]] == ["a.wav", "b.wav", "sub/c.wav"]
    assert err.strip().startswith(f"alat: failed: {tmp_path / 'sub' / 'bad.wav'}: unsupported or unreadable audio")
    means = {g["folder"]: g for g in res["folder_means"]}
    assert (means["."]["files"], means["sub"]["files"]) == (3, 1)
    assert means["."]["log_mel_l1_db"] == np.mean([r["log_mel_l1_db"] for r in res["rows"]])
    assert means["sub"]["duration_s"] == 3.0
    code, out, _ = run(capsys, *args, "--csv")
    lines = out.strip().splitlines()
    assert lines[0].startswith("file,folder,files,duration_s,channels,bytes,kbps") and len(lines) == 1 + 3 + 2
    assert lines[1].startswith("a.wav,,,1.0,1,") and lines[4].startswith(",.,3,2.0,1,")  # the means apart


def test_worker_threads_keep_a_single_calls_count() -> None:
    """oneDNN rounds differently with another thread count: one worker keeps torch's default (a single
    call's, so the same bytes), N workers share it out, --threads sets it."""
    import torch

    from latentcodec.jobs.worker import WorkerSetup, init_worker
    from latentcodec.options import DecodeOptions

    default = torch.get_num_threads()
    try:
        init_worker(WorkerSetup("decode", DecodeOptions(device="cpu")))
        assert torch.get_num_threads() == default
        init_worker(WorkerSetup("decode", DecodeOptions(device="cpu"), workers=2))
        assert torch.get_num_threads() == max(1, default // 2)
        init_worker(WorkerSetup("decode", DecodeOptions(device="cpu"), threads=3, workers=2))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(default)


def test_folder_decode_format_resume_and_errors(capsys, tmp_path, tiny_model) -> None:
    from tests.test_cli import run

    src, enc = tmp_path / "in", tmp_path / "enc"
    for i, name in enumerate(["a.wav", "sub/b.wav"]):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(src / name), tone(1.0 + i, 16000, 1 + i, seed=i), 16000)
    assert run(capsys, "encode", str(src), str(enc), "--model", tiny_model)[0] == 0
    for fmt, suffix in (("flac", ".flac"), (".ogg", ".ogg")):
        out = tmp_path / fmt.strip(".")
        code, text, err = run(capsys, "decode", str(enc), str(out), "--format", fmt, "--gl-iters", "2", "--json",
                                 "--model", tiny_model)
        assert code == 0 and json.loads(text)["written"] == 2, err
        for i, name in enumerate(["a", "sub/b"]):
            y, rate = sf.read(str(out / f"{name}{suffix}"), always_2d=True)
            assert rate == 16000 and y.shape == (16000 * (1 + i), 1 + i)
        code, text, _ = run(capsys, "decode", str(enc), str(out), "--format", fmt, "--json", "--model", tiny_model)
        assert code == 0 and json.loads(text)["skipped"] == 2  # complete outputs of that format are kept
    code, _, err = run(capsys, "decode", str(enc), str(tmp_path / "x"), "--format", "xyz")
    assert code == 1 and err.startswith("alat: error: --format: cannot write audio as '.xyz': use .wav, .flac")
    code, _, err = run(capsys, "decode", str(enc / "a.alat"), str(tmp_path / "a.wav"), "--format", "flac")
    assert code == 2 and err.splitlines()[-1] == ("alat: error: --format is for folder mode: the suffix of "
                                                  f"{tmp_path / 'a.wav'} names its format")
