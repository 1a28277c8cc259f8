"""What users of opusenc, flac and soundfile expect: -q prints nothing, --bitrate, arrays the soundfile way,
eval's CSV rounded with its means apart, a bar that says the model is loading, Ctrl-C that says how to resume."""
from __future__ import annotations

import csv
import io
import json
import sys

import numpy as np
import pytest

import latentcodec
from latentcodec.errors import AudioError
from tests.conftest import tone
from tests.test_cli import run


def test_quiet_prints_nothing_but_errors(capsys, tmp_path, make_wav, tiny_model) -> None:
    src = make_wav("a.wav", 2.0, 16000, 1)
    assert run(capsys, "encode", "-q", str(src), str(tmp_path / "a.alat"), "--model", tiny_model) == (0, "", "")
    assert run(capsys, "decode", "--quiet", str(tmp_path / "a.alat"), str(tmp_path / "out.wav"), "--gl-iters", "2",
               "--model", tiny_model) == (0, "", "")
    code, out, err = run(capsys, "encode", "-q", str(src), str(tmp_path / "a.alat"), "--model", tiny_model)
    assert code == 1 and out == "" and err.startswith("alat: error:") and err.count("\n") == 1  # exists, no -y
    code, out, _ = run(capsys, "encode", "-q", "--json", "-y", str(src), str(tmp_path / "a.alat"), "--model", tiny_model)
    assert code == 0 and json.loads(out)["bytes"] == (tmp_path / "a.alat").stat().st_size  # asked for, so printed


def test_bitrate_is_kbps(capsys, tmp_path, make_wav, tiny_model) -> None:
    src = make_wav("a.wav", 3.0, 16000, 1)
    assert run(capsys, "encode", str(src), str(tmp_path / "k.alat"), "--model", tiny_model, "--kbps", "6")[0] == 0
    assert run(capsys, "encode", str(src), str(tmp_path / "b.alat"), "--model", tiny_model, "--bitrate", "6")[0] == 0
    assert (tmp_path / "k.alat").read_bytes() == (tmp_path / "b.alat").read_bytes()


def test_api_as_soundfile(tmp_path, make_wav, tiny_model) -> None:
    latentcodec.encode(tone(2.0, 16000, 1), 16000, tmp_path / "m.alat", model=tiny_model)
    mono, rate = latentcodec.decode(tmp_path / "m.alat", model=tiny_model, gl_iters=2)
    assert rate == 16000 and mono.shape == (32000,)
    two_d, _ = latentcodec.decode(tmp_path / "m.alat", always_2d=True, model=tiny_model, gl_iters=2)
    assert two_d.shape == (32000, 1) and np.array_equal(two_d[:, 0], mono)
    latentcodec.encode(tone(2.0, 16000, 2), 16000, tmp_path / "s.alat", model=tiny_model)
    assert latentcodec.decode(tmp_path / "s.alat", model=tiny_model, gl_iters=2)[0].shape == (32000, 2)
    src = make_wav("f.wav", 2.0, 16000, 1)
    from_file = latentcodec.encode(src, tmp_path / "f.alat", model=tiny_model)
    from_array = latentcodec.encode(tone(2.0, 16000, 1), 16000, tmp_path / "g.alat", model=tiny_model)
    assert from_file.header.num_samples == from_array.header.num_samples == 32000
    with pytest.raises(AudioError, match=r"\(frames, channels\).*pass samples\.T"):
        latentcodec.encode(tone(2.0, 16000, 1)[None, :, 0], 16000, tmp_path / "t.alat", model=tiny_model)
    with pytest.raises(TypeError, match="decode"):  # a misspelt option names the API's own function
        latentcodec.decode(tmp_path / "m.alat", always2d=True)
    assert {"encode", "decode", "open", "LatentCrops"} <= set(dir(latentcodec))
    assert not {"Any", "import_module", "annotations"} & set(dir(latentcodec))


def test_eval_csv_rounded_with_means_apart(capsys, tmp_path, make_wav, tiny_model) -> None:
    for name in ("speech/a.wav", "music/b.wav"):
        (tmp_path / "d" / name).parent.mkdir(parents=True, exist_ok=True)
        make_wav(name.replace("/", "_"), 2.0, 16000, 1).rename(tmp_path / "d" / name)
    code, out, _ = run(capsys, "eval", str(tmp_path / "d"), "--model", tiny_model, "--gl-iters", "2", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    files, means = [r for r in rows if r["file"]], [r for r in rows if r["folder"]]
    assert [r["file"] for r in files] == ["music/b.wav", "speech/a.wav"] and not any(r["folder"] for r in files)
    assert [(r["folder"], r["files"]) for r in means] == [(".", "2"), ("music", "1"), ("speech", "1")]
    assert all(len(r["kbps"].split(".")[-1]) <= 3 and len(r["log_mel_l1_db"].split(".")[-1]) <= 3 for r in rows)
    assert files[0]["bytes"].isdigit()


def test_bar_description_before_and_after_the_first_chunk(monkeypatch) -> None:
    from latentcodec.cli.options import progress_bar

    err = io.StringIO()
    monkeypatch.setattr(err, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys, "stderr", err)
    with progress_bar(False, "encode") as update:
        before = err.getvalue()
        update(1, 3)
        after = err.getvalue()[len(before):]
    assert "encode: loading model" in before
    assert "encode:" in after and "1/3" in after and "loading model" not in after


def test_ctrl_c_in_a_folder_run_says_how_to_resume(capsys, monkeypatch, tmp_path, make_wav, tiny_model) -> None:
    from latentcodec.jobs import folders

    (tmp_path / "in").mkdir()
    for name in ("a.wav", "b.wav"):
        make_wav(name, 1.0, 16000, 1).rename(tmp_path / "in" / name)
    real = folders.run_batch

    def interrupted(jobs, setup, progress=None, ray=None):
        real(jobs[:1], setup, progress, ray)
        raise KeyboardInterrupt

    monkeypatch.setattr(folders, "run_batch", interrupted)
    code, out, err = run(capsys, "encode", str(tmp_path / "in"), str(tmp_path / "out"), "--model", tiny_model)
    assert code == 130 and out == ""
    assert err.strip() == "alat: interrupted: 1 of 2 outputs complete; the same command resumes"
    monkeypatch.setattr(folders, "run_batch", real)
    code, out, _ = run(capsys, "encode", str(tmp_path / "in"), str(tmp_path / "out"), "--model", tiny_model)
    assert code == 0 and "1 written, 1 already complete" in out
