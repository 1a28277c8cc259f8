"""A .alat file from anywhere cannot hurt its reader (issue 25), through the real CLI and API only: each
failure found on 9aa8742 (allocation bombs, forged fields behind valid CRCs, a file choosing its model,
options, pipes, names, folder runs) is reproduced here and must end in one line, or not happen."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import latentcodec
from latentcodec.cli import main
from latentcodec.errors import AlatFormatError, LatentCodecError
from tests.conftest import save_tiny_vae, tone
from tests.forge import build, forge, read_field, rename_model

ALAT = str(Path(sys.executable).parent / "alat")
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, starts: str) -> None:
    lines = [x for x in err.splitlines() if x.startswith("alat:")]
    assert len(lines) == 1 and lines[0].startswith(starts) and "Traceback" not in err, err


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> dict[str, bytes]:
    """Version-2 and version-1 (zstd) files of 3 s of mono, made with the tiny model."""
    folder = tmp_path_factory.mktemp("made")
    out = {}
    for key, opts in (("v2", {}), ("v1", {"bits": 4, "zstd_level": 19})):
        latentcodec.encode(tone(3.0, 16000, 1), 16000, folder / f"{key}.alat", model=tiny_model, **opts)
        out[key] = (folder / f"{key}.alat").read_bytes()
    return out


def peak_of(fn) -> tuple[int, BaseException | None]:  # noqa: ANN001
    """Peak traced bytes while ``fn`` runs, and what it raised."""
    tracemalloc.start()
    raised = None
    try:
        fn()
    except BaseException as e:  # noqa: BLE001 (what it raised is the result)
        raised = e
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, raised


# ---- 1. allocation bombs: every shape and count bounded by the file before anything is allocated ----

@pytest.mark.parametrize("latent_channels,chunk_frames,mels", [(8, 60000, 65532), (64, 500, 65532),
                                                               (64, 60000, 64), (8, 60000, 1024)])
def test_forged_latent_shapes_allocate_nothing(tmp_path, latent_channels, chunk_frames, mels) -> None:
    path = tmp_path / "bomb.alat"
    path.write_bytes(build(latent_channels, chunk_frames, mels))

    def read() -> None:
        with latentcodec.open(path) as r:
            r.latents(0)

    peak, raised = peak_of(read)
    assert isinstance(raised, AlatFormatError) and "header is inconsistent" in str(raised), raised
    assert peak < 4 << 20, peak


def test_zstd_record_cannot_inflate_past_its_size(tmp_path) -> None:
    """A version-1 zstd frame whose header claims 64 MB: read through a capped decompressor."""
    from latentcodec.format.container import zstd_module

    zstd = zstd_module()

    bomb = zstd.compress(bytes(64 << 20), level=19)
    assert len(bomb) < 8000  # shorter than the raw payload (8 x 125 x 16 values at 4 bits): a legal length
    path = tmp_path / "z.alat"
    path.write_bytes(build(8, 500, 64, version=1, bits=4, zstd=19, payloads=[bomb]))
    peak, raised = peak_of(lambda: latentcodec.open(path).latents(0))
    assert isinstance(raised, AlatFormatError) and "zstd" in str(raised), raised
    assert peak < 8 << 20, peak


@pytest.mark.parametrize("chunks", [50_000_000, 4_000_000_000])
def test_forged_chunk_count_is_refused_by_salvage_too(tmp_path, chunks) -> None:
    path = tmp_path / "many.alat"
    path.write_bytes(forge(build(8, 500, 64), chunks=chunks, samples=chunks * 500 * 160))
    for salvage in (False, True):
        t = time.perf_counter()
        peak, raised = peak_of(lambda: latentcodec.open(path, salvage=salvage).close())
        assert isinstance(raised, AlatFormatError) and "cannot fit" in str(raised), raised
        assert peak < 4 << 20 and time.perf_counter() - t < 2


# ---- 2. forged fields: refused with the format error when the header is read ----

@pytest.mark.parametrize("fields", [{"hop": 0}, {"chunk_frames": 0, "latent_frames": 0}, {"win": 512},
                                    {"n_fft": 65535, "win": 65535}, {"context": 1000}])
def test_zero_and_impossible_fields_are_format_errors(tmp_path, made, fields) -> None:
    path = tmp_path / "f.alat"
    path.write_bytes(forge(made["v2"], **fields))
    with pytest.raises(AlatFormatError, match="header is inconsistent"):
        latentcodec.open(path)


def test_overflowing_stats_are_refused(tmp_path, made) -> None:
    """Version 1: min + q x step past the binary32 range gives infinite latents: the record is damaged."""
    data = bytearray(made["v1"])
    start = 18 + int.from_bytes(data[10:14], "little")
    plen = int.from_bytes(data[start + 12:start + 16], "little")
    data[start + 16:start + 24] = np.array([3e38, 3e38], "<f4").tobytes()  # channel 0's min and step
    end = start + 16 + 64 + plen
    data[end:end + 4] = zlib.crc32(bytes(data[start:end])).to_bytes(4, "little")
    (tmp_path / "s.alat").write_bytes(bytes(data))
    with pytest.raises(AlatFormatError, match="non-finite"):
        latentcodec.open(tmp_path / "s.alat").latents(0)


@pytest.mark.parametrize("fields,says", [({"floor": 0.5}, "mel front end"), ({"hop": 1000}, "mel front end"),
                                         ({"fmax": 4000.0}, "mel front end"), ({"win": 512}, "inconsistent"),
                                         ({"n_fft": 65534, "win": 65534}, "mel front end")])
def test_fields_the_decoder_cannot_honour_end_in_one_line(capsys, tmp_path, made, tiny_model, fields, says) -> None:
    path, out = tmp_path / "f.alat", tmp_path / "f.wav"
    path.write_bytes(forge(made["v2"], **fields))
    t = time.perf_counter()
    code, _, err = run(capsys, "decode", str(path), str(out), "--model", tiny_model, "--gl-iters", "2")
    assert code == 1 and says in err and time.perf_counter() - t < 20
    one_line(err, f"alat: error: {path}: ")
    assert not out.exists() and not list(tmp_path.glob(".f.wav.*"))


# ---- 3. a file never chooses code or weights ----

def test_a_file_naming_a_folder_or_hub_id_is_refused(capsys, tmp_path, monkeypatch, made, tiny_model) -> None:
    save_tiny_vae(tmp_path / "evil", seed=0)  # an unpacked archive: x.alat beside the weights it names
    monkeypatch.chdir(tmp_path)
    for name in ("evil", str(tmp_path / "evil"), "cvssp/audioldm2-music"):
        (tmp_path / "x.alat").write_bytes(rename_model(made["v2"], name))
        code, _, err = run(capsys, "decode", "x.alat", "y.wav", "--gl-iters", "2")
        assert code == 1 and err.strip() == (f"alat: error: file names model '{name}', which is not shipped with "
                                             f"latentcodec: the model itself must be given to decode it; pass it with --model")
        assert not (tmp_path / "y.wav").exists()
        with pytest.raises(LatentCodecError, match="not shipped"):
            latentcodec.decode(tmp_path / "x.alat", gl_iters=2)
    (tmp_path / "x.alat").write_bytes(rename_model(made["v2"], tiny_model))
    assert run(capsys, "decode", "x.alat", "y.wav", "--gl-iters", "2", "--model", tiny_model)[0] == 0


def test_folder_decode_never_loads_what_a_file_names(tmp_path, made, tiny_model) -> None:
    (tmp_path / "in").mkdir()
    save_tiny_vae(tmp_path / "evil", seed=0)
    (tmp_path / "in" / "x.alat").write_bytes(rename_model(made["v2"], str(tmp_path / "evil")))
    r = subprocess.run([ALAT, "decode", "in", "out", "--json"], cwd=tmp_path, capture_output=True, text=True, env=ENV)
    assert r.returncode == 1 and json.loads(r.stdout)["failed"] == 1
    one_line(r.stderr, f"alat: failed: file names model '{tmp_path / 'evil'}', which is not shipped")


# ---- 4. folder runs lose nothing ----

def test_two_inputs_sharing_an_output_are_refused_before_any_work(capsys, tmp_path, tiny_model) -> None:
    src = tmp_path / "in"
    src.mkdir()
    sf.write(str(src / "a.wav"), tone(0.7, 16000, 1), 16000)
    sf.write(str(src / "a.flac"), tone(3.0, 16000, 1), 16000)
    code, _, err = run(capsys, "encode", str(src), str(tmp_path / "out"), "--model", tiny_model)
    assert code == 1 and err.strip() == (f"alat: error: {src / 'a.flac'} and {src / 'a.wav'} would both be written "
                                         f"to {tmp_path / 'out' / 'a.alat'}: rename one, or encode them into "
                                         f"separate folders; nothing was done")
    assert not (tmp_path / "out").exists()


def test_a_file_in_the_way_is_kept_unless_y(capsys, tmp_path, tiny_model) -> None:
    src, enc, dec = tmp_path / "in", tmp_path / "enc", tmp_path / "dec"
    src.mkdir()
    sf.write(str(src / "a.wav"), tone(1.0, 16000, 1), 16000)
    enc.mkdir()
    (enc / "a.alat").write_bytes(b"mine")
    code, out, err = run(capsys, "encode", str(src), str(enc), "--model", tiny_model, "--json")
    assert code == 1 and json.loads(out)["failed"] == 1 and (enc / "a.alat").read_bytes() == b"mine"
    one_line(err, f"alat: failed: {enc / 'a.alat'}: exists and is not a complete output of this job: kept")
    assert run(capsys, "encode", str(src), str(enc), "--model", tiny_model, "-y")[0] == 0
    dec.mkdir()
    (dec / "a.wav").write_bytes(b"precious")
    code, _, err = run(capsys, "decode", str(enc), str(dec), "--model", tiny_model, "--gl-iters", "2")
    assert code == 1 and (dec / "a.wav").read_bytes() == b"precious"
    assert run(capsys, "decode", str(enc), str(dec), "--model", tiny_model, "--gl-iters", "2", "-y")[0] == 0
    assert sf.info(str(dec / "a.wav")).frames == 16000
    code, _, err = run(capsys, "decode", str(enc), str(dec), "--model", tiny_model, "--start", "0.5")
    assert code == 2 and err.splitlines()[-1].startswith("alat: error: --start and --duration are for one file")
    code, _, err = run(capsys, "decode", str(enc), str(dec), "--model", tiny_model, "--duration", "1")
    assert code == 2


def test_output_path_errors_are_failure_lines_and_stale_temporaries_go(capsys, tmp_path, tiny_model) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    for name in ("a.wav", "sub/b.wav", "c.wav"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(src / name), tone(0.5, 16000, 1), 16000)
    out.mkdir()
    (out / "sub").write_bytes(b"a file where a folder goes")
    stale = out / ".a.alat.k3j_x9q2.part"
    stale.write_bytes(b"left by a SIGKILLed run")
    code, text, err = run(capsys, "encode", str(src), str(out), "--model", tiny_model, "--json")
    assert code == 1 and json.loads(text)["written"] == 2 and not stale.exists()
    one_line(err, f"alat: failed: {out / 'sub' / 'b.alat'}: cannot create its folder")
    (tmp_path / "file").write_bytes(b"x")
    code, text, err = run(capsys, "encode", str(src), str(tmp_path / "file"), "--model", tiny_model, "--json")
    assert code == 1 and json.loads(text)["failed"] == 3 and "Traceback" not in err
    assert len([x for x in err.splitlines() if x.startswith("alat: failed:")]) == 3


# ---- 5. every option a user can type ----

@pytest.mark.parametrize("argv", [["decode", "x.alat", "y.wav", "--start", v] for v in ("nan", "inf", "-1")]
                         + [["decode", "x.alat", "y.wav", "--duration", v] for v in ("nan", "inf", "0")]
                         + [["encode", "x.wav", "y.alat", "--chunk-seconds", v] for v in ("nan", "inf", "-5")]
                         + [["encode", "x.wav", "y.alat", "--quality", "nan"], ["encode", "x.wav", "y.alat", "--kbps", "inf"],
                            ["encode", "x.wav", "y.alat", "--kbps", "1e9"], ["decode", "x.alat", "y.wav", "--sample-rate", "0"],
                            ["decode", "x.alat", "y.wav", "--sample-rate", "99999999999"],
                            ["encode", "x.wav", "y.alat", "--batch-size", "1000000000"],
                            ["encode", "x.wav", "y.alat", "--jobs", "100000"]]
                         + [["train", "x.wav", "out", opt, v] for opt in ("--lr", "--min-lr", "--clean-fraction",
                                                                         "--gan-weight", "--rate-weight") for v in ("nan", "inf")]
                         + [["train", "x.wav", "out", "--lr", "-1"], ["train", "x.wav", "out", "--warmup", "-1"],
                            ["train-vocoder", "x.wav", "out", "--lr", "nan"]])
def test_absurd_option_values_exit_2_in_one_line(capsys, tmp_path, monkeypatch, argv) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.wav").mkdir()  # --jobs is checked in folder mode
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.splitlines()[-1].startswith("alat: error: Invalid value for") and "Traceback" not in err


@pytest.mark.slow
def test_rates_a_format_cannot_hold_are_refused_before_writing(tmp_path, made, tiny_model) -> None:
    (tmp_path / "x.alat").write_bytes(made["v2"])
    for out, rate in (("y.ogg", "384000"), ("y.mp3", "44000"), ("y.opus", "44100")):
        r = subprocess.run([ALAT, "decode", "x.alat", out, "--sample-rate", rate, "--model", tiny_model, "--gl-iters",
                            "2"], cwd=tmp_path, capture_output=True, text=True, env=ENV)
        assert r.returncode == 1, (r.returncode, r.stderr)
        one_line(r.stderr, f"alat: error: --sample-rate: {out}: ")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["x.alat"]


def test_an_original_rate_of_2_32_is_refused_cleanly(capsys, tmp_path, made, tiny_model) -> None:
    n = read_field(made["v2"], "samples")
    (tmp_path / "x.alat").write_bytes(forge(made["v2"], original_rate=2**32 - 1,
                                            original_frames=round(n * (2**32 - 1) / 16000)))
    code, _, err = run(capsys, "decode", str(tmp_path / "x.alat"), str(tmp_path / "y.wav"), "--sample-rate",
                       "original", "--model", tiny_model)
    assert code == 1 and "4294967295 Hz" in err
    one_line(err, "alat: error: --sample-rate: ")


def sh(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=cwd, capture_output=True, env=ENV)


@pytest.mark.slow
def test_a_broken_or_closed_stdout_ends_quietly(tmp_path, made, tiny_model) -> None:
    (tmp_path / "x.alat").write_bytes(made["v2"])
    sf.write(str(tmp_path / "x.wav"), tone(3.0, 16000, 1), 16000)
    a, m = shlex.quote(ALAT), f"--model {shlex.quote(tiny_model)}"
    r = sh(f"{a} decode x.alat - {m} --gl-iters 2 | head -c 10 > /dev/null", tmp_path)
    assert (r.returncode, r.stderr) == (141, b"")  # as a tool killed by SIGPIPE
    r = sh(f"{a} encode x.wav - {m} | head -c 10 > /dev/null", tmp_path)
    assert (r.returncode, r.stderr) == (141, b"")
    for cmd in (f"{a} encode x.wav - {m} >&-", f"{a} decode x.alat - {m} --gl-iters 2 >&-"):
        r = sh(cmd, tmp_path)
        assert r.returncode == 1 and r.stderr.decode().strip() == "alat: error: <stdout>: is closed"


@pytest.mark.slow
def test_names_in_any_bytes(tmp_path, tiny_model) -> None:
    src = os.fsdecode(tmp_path) + os.fsdecode(b"/\xff.wav")
    sf.write(os.fsencode(src), tone(1.0, 16000, 1), 16000)
    r = subprocess.run([ALAT, b"encode", b"\xff.wav", b"\xfe.alat", b"--model", tiny_model.encode()], cwd=tmp_path,
                       capture_output=True, env=ENV)
    assert r.returncode == 0 and b"\xfe.alat: 1.00 s" in r.stdout, r.stderr
    r = subprocess.run([ALAT, b"decode", b"\xfe.alat", b"\xfd.wav", b"--model", tiny_model.encode(), b"--gl-iters",
                        b"2"], cwd=tmp_path, capture_output=True, env=ENV)
    assert r.returncode == 0, r.stderr
    assert sf.info(os.fsencode(tmp_path / os.fsdecode(b"\xfd.wav"))).frames == 16000



def test_encoder_refuses_records_the_reader_would_refuse(capsys, tmp_path) -> None:
    """A VAE of 32 latent channels in 600 s chunks would make records of 7.7 M values, over the format's 2^21:
    chunks are at most 20 s (issue 40), refused in one line before any work, and 20 s chunks of the widest
    VAE fit (32 x 500 x 16 = 256,000 values), rather than a file no reader accepts."""
    model = save_tiny_vae(tmp_path / "wide", seed=0, latent_channels=32)
    wav = tmp_path / "a.wav"
    sf.write(str(wav), tone(1.0, 16000, 1), 16000)
    code, _, err = run(capsys, "encode", str(wav), str(tmp_path / "a.alat"), "--model", str(model), "--chunk-seconds", "600")
    assert code == 2 and err.strip().splitlines()[-1].startswith("alat: error: Invalid value for '--chunk-seconds'")
    assert not (tmp_path / "a.alat").exists()
    assert run(capsys, "encode", str(wav), str(tmp_path / "a.alat"), "--model", str(model), "--chunk-seconds", "20",
               "-q")[0] == 0


def test_a_model_folder_named_in_another_encoding_is_refused_in_one_line(capsys, tmp_path, tiny_model) -> None:
    """The header names the model in UTF-8 (a reader refuses other bytes): such a folder is refused before any work."""
    import shutil

    folder = Path(os.fsdecode(bytes(tmp_path) + b"/mod\xe8le"))
    shutil.copytree(tiny_model, folder)
    wav = tmp_path / "a.wav"
    sf.write(str(wav), tone(1.0, 16000, 1), 16000)
    code, _, err = run(capsys, "encode", str(wav), str(tmp_path / "a.alat"), "--model", str(folder))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "is not UTF-8, which the weights" in err, err
    assert not (tmp_path / "a.alat").exists()
