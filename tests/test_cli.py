"""The real CLI (alat's main) on tiny models and synthetic audio: round trips and user mistakes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from latentcodec.cli import main
from latentcodec.options import EncodeOptions


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name,seconds,rate,channels", [
    ("mono.wav", 6.3, 16000, 1), ("stereo.wav", 3.0, 16000, 2), ("cd.wav", 2.5, 44100, 2),
    ("one.wav", 1 / 16000, 16000, 1), ("long.flac", 23.7, 22050, 1)])
def test_round_trip_length_and_channels(capsys, tmp_path, make_wav, tiny_model, name, seconds, rate, channels) -> None:
    src = make_wav(name, seconds, rate, channels)
    alat, out = tmp_path / "x.alat", tmp_path / "y.wav"
    code, text, _ = run(capsys, "encode", str(src), str(alat), "--model", tiny_model, "--json")
    assert code == 0
    enc = json.loads(text)
    assert enc["bytes"] == alat.stat().st_size and enc["channels"] == channels
    assert run(capsys, "decode", str(alat), str(out), "--gl-iters", "2", "--model", tiny_model)[0] == 0
    y, sr = sf.read(str(out), always_2d=True)
    assert sr == 16000 and y.shape == (max(1, round(seconds * 16000)), channels)
    assert run(capsys, "decode", str(alat), str(out), "--gl-iters", "2", "--sample-rate", "original", "-y",
               "--model", tiny_model)[0] == 0
    info = sf.info(str(out))
    assert (info.samplerate, info.frames, info.channels) == (rate, sf.info(str(src)).frames, channels)
    code, text, _ = run(capsys, "info", str(alat), "--json")
    info = json.loads(text)
    assert code == 0 and info["bytes"] == alat.stat().st_size == enc["bytes"]
    assert info["header"]["num_samples"] == y.shape[0]


def test_hifigan_vocoder(capsys, tmp_path, make_wav, tiny_model, other_model) -> None:
    src = make_wav("h.wav", 7.3, 22050, 2)
    alat, out = tmp_path / "h.alat", tmp_path / "decoded.wav"
    assert run(capsys, "encode", str(src), str(alat), "--model", tiny_model)[0] == 0
    assert run(capsys, "decode", str(alat), str(out), "--vocoder", "hifigan", "--model", tiny_model)[0] == 0
    y, sr = sf.read(str(out), always_2d=True)
    assert (sr, y.shape) == (16000, (round(7.3 * 16000), 2)) and np.abs(y).max() > 0
    assert run(capsys, "encode", str(src), str(alat), "--model", other_model, "--overwrite")[0] == 0
    other = tmp_path / "x.wav"
    _error(capsys, other, "decode", str(alat), str(other), "--vocoder", "hifigan", "--model", other_model, match="has no HiFi-GAN")


def test_mono_flag_and_silence(capsys, tmp_path, tiny_model) -> None:
    src = tmp_path / "silence.wav"
    sf.write(str(src), np.zeros((8000, 2), np.float32), 16000)
    alat, out = tmp_path / "s.alat", tmp_path / "s.wav"
    assert run(capsys, "encode", str(src), str(alat), "--model", tiny_model, "--mono")[0] == 0
    assert run(capsys, "decode", str(alat), str(out), "--model", tiny_model)[0] == 0
    y, _ = sf.read(str(out), always_2d=True)
    assert y.shape == (8000, 1) and np.isfinite(y).all()


def test_eval_reports_every_metric(capsys, make_wav, tiny_model) -> None:
    src = make_wav("e.wav", 3.0)
    code, text, _ = run(capsys, "eval", str(src), "--model", tiny_model, "--gl-iters", "4", "--json")
    r = json.loads(text)
    assert code == 0
    for key in ["bytes", "kbps", "ratio_vs_pcm16_16k", "ratio_vs_pcm16_original", "ratio_vs_input_file", "mse",
                "snr_db", "correlation", "si_sdr_db", "log_mel_l1_db", "log_mel_rmse_db", "mrstft_db",
                "latent_mel_l1_db", "encode_x_realtime", "decode_x_realtime"]:
        assert np.isfinite(r[key]), key
    assert {"mel", "vae_encode", "vae_decode", "vocoder"} <= set(r["timings_s"])


def _error(capsys, out_path: Path | None, *argv: str, match: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alat: error: ") and match in lines[0], err
    assert "Traceback" not in err
    if out_path is not None:
        assert not out_path.exists()
        assert not list(out_path.parent.glob(f".{out_path.name}.*")), "temporary file left behind"


def test_user_errors(capsys, tmp_path, make_wav, tiny_model, other_model) -> None:
    good = make_wav("good.wav", 2.0)
    out = tmp_path / "out.alat"
    m = ("--model", tiny_model)
    _error(capsys, out, "encode", str(tmp_path / "missing.wav"), str(out), *m, match="no such file")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    _error(capsys, out, "encode", str(text), str(out), *m, match="unsupported or unreadable")
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0, 1), np.float32), 16000)
    _error(capsys, out, "encode", str(empty), str(out), *m, match="no audio samples")
    nan = tmp_path / "nan.wav"
    sf.write(str(nan), np.array([[0.1], [np.nan], [0.2]], np.float32), 16000, subtype="FLOAT")
    _error(capsys, out, "encode", str(nan), str(out), *m, match="NaN or infinite")
    _error(capsys, None, "encode", str(good), str(tmp_path / "no" / "dir" / "x.alat"), *m, match="does not exist")
    ro = Path("/sys") if os.geteuid() == 0 else tmp_path / "ro"
    if ro != Path("/sys"):
        ro.mkdir()
        ro.chmod(0o555)
    _error(capsys, None, "encode", str(good), str(ro / "x.alat"), *m, match="cannot write")
    code, _, err = run(capsys, "encode", str(good), str(out), *m, "--chunk-seconds", "0.001")
    assert code == 2 and err.splitlines()[-1] == ("alat: error: Invalid value for '--chunk-seconds': 0.001 is not "
                                                  "in the range 0.04<=x<=20.")
    _error(capsys, out, "encode", str(good), str(out), *m, "--quality", "3", "--kbps", "4",
           match="--kbps: give a quality or a rate, not both")
    _error(capsys, out, "encode", str(good), str(out), "--model", str(tmp_path / "nowhere"), match="not found")
    _error(capsys, out, "encode", str(good), str(out), "--model", "no-such-org/no-such-model",
           match="cannot load model 'no-such-org/no-such-model' from the Hugging Face hub")
    not_a_model = tmp_path / "empty_model"
    not_a_model.mkdir()
    _error(capsys, out, "encode", str(good), str(out), "--model", str(not_a_model), match="not a diffusers model")

    alat = tmp_path / "good.alat"
    assert run(capsys, "encode", str(good), str(alat), *m)[0] == 0
    wav = tmp_path / "out.wav"
    _error(capsys, wav, "decode", str(good), str(wav), match="not a .alat file")
    _error(capsys, wav, "decode", str(tmp_path / "none.alat"), str(wav), match="no such file")
    data = alat.read_bytes()
    bad = tmp_path / "bad.alat"
    bad.write_bytes(data[:len(data) - 100])
    _error(capsys, wav, "decode", str(bad), str(wav), match="truncated")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 4
    bad.write_bytes(bytes(flipped))
    _error(capsys, wav, "decode", str(bad), str(wav), *m, match="CRC mismatch")
    _error(capsys, wav, "decode", str(alat), str(wav), "--model", other_model, match="use --force")
    assert run(capsys, "decode", str(alat), str(wav), "--model", other_model, "--force")[0] == 0
    _error(capsys, None, "info", str(bad), match="CRC mismatch")


def test_salvage_decodes_the_rest(capsys, tmp_path, make_wav, tiny_model) -> None:
    src = make_wav("s.wav", 12.0)
    alat, wav = tmp_path / "s.alat", tmp_path / "salvaged.wav"
    assert run(capsys, "encode", str(src), str(alat), "--model", tiny_model)[0] == 0
    from latentcodec.format.container import AlatReader

    with AlatReader(alat) as r:
        off = r.offsets[1]
    data = bytearray(alat.read_bytes())
    data[off + 40] ^= 1
    alat.write_bytes(bytes(data))
    code, _, err = run(capsys, "decode", str(alat), str(wav), "--salvage", "--gl-iters", "2", "--model", tiny_model)
    assert code == 0 and "chunk 1 channel 0 (5.00-10.00 s) was damaged" in err
    y, _ = sf.read(str(wav))
    assert len(y) == 12 * 16000
    assert np.abs(y[6 * 16000:9 * 16000]).max() < 1e-3 < np.abs(y[:4 * 16000]).max()


def test_entry_point_exit_status(tmp_path) -> None:
    """The installed `alat` script: one line on stderr, status 1, no traceback."""
    exe = Path(sys.executable).parent / "alat"
    r = subprocess.run([str(exe), "info", str(tmp_path / "missing.alat")], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip() == f"alat: error: {tmp_path / 'missing.alat'}: no such file"
    r = subprocess.run([str(exe), "encode"], capture_output=True, text=True)
    assert r.returncode == 2 and "Usage: alat encode" in r.stderr
    assert r.stderr.strip().splitlines()[-1] == "alat: error: Missing argument 'INPUT'."


def test_library_errors_name_no_options(tmp_path, make_wav, tiny_model) -> None:
    """The library speaks of values; only the CLI knows its options' spelling."""
    from latentcodec.codec import encode_file
    from latentcodec.errors import LatentCodecError

    with pytest.raises(LatentCodecError) as e:
        encode_file(make_wav("x.wav", 1.0), tmp_path / "x.alat", EncodeOptions(model=tiny_model, chunk_seconds=0.001))
    assert e.value.param == "chunk_seconds" and "--" not in str(e.value)


def test_shell_completion(tmp_path) -> None:
    """click's completion through the installed script: the bash source, then commands and vocoders."""
    exe = str(Path(sys.executable).parent / "alat")
    env = {**os.environ, "_ALAT_COMPLETE": "bash_source"}
    r = subprocess.run([exe], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "_alat_completion" in r.stdout and "complete " in r.stdout
    env.update(_ALAT_COMPLETE="bash_complete", COMP_WORDS="alat de", COMP_CWORD="1")
    r = subprocess.run([exe], capture_output=True, text=True, env=env)
    assert r.stdout.split() == ["plain,decode"]
    env.update(COMP_WORDS="alat decode x.alat y.wav --vocoder g", COMP_CWORD="5")
    r = subprocess.run([exe], capture_output=True, text=True, env=env)
    assert r.stdout.split() == ["plain,griffinlim"]


@pytest.mark.parametrize("argv", [["--help"], ["info", "{alat}"], ["info", "{alat}", "--json"], ["encode", "--help"]])
def test_help_and_info_load_no_torch(capsys, tmp_path, make_wav, tiny_model, argv: list[str]) -> None:
    """Start-up: these commands never import torch or diffusers (each costs seconds), nor scipy (0.2 s)."""
    alat = tmp_path / "a.alat"
    assert run(capsys, "encode", str(make_wav("a.wav", 1.0)), str(alat), "--model", tiny_model)[0] == 0
    code = ("import sys; from latentcodec.cli import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'scipy') if m in sys.modules)); "
            "sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, *(a.format(alat=alat) for a in argv)], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "[]", r.stdout + r.stderr
