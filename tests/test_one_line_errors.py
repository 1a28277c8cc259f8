"""Every error a user can cause ends in one line, ``alat: error: ...`` (exit 1 or 2), never a traceback: names too
long for the file system, stdout on a full device, links into folders that may not be read, empty names, devices
in the way, data that is not a .alat file piped in, a vocoder the plain install cannot run, Ctrl-C in a folder
run; and names print escaped, so that a file or shard member cannot forge a line."""
from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from latentcodec.format.shards import write_shard
from tests.conftest import default_sigint, tone
from tests.forge import rename_model
from tests.test_cli import _error, run

ALAT = str(Path(sys.executable).parent / "alat")
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
LONG = "a" * 256  # one byte over what ext4, xfs, btrfs and tmpfs hold in a name


def one_error_line(err: str) -> str:
    """The one ``alat: error:`` line of ``err`` (a usage line may stand before it)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len([x for x in lines if x.startswith("alat: ")]) == 1, err
    assert lines[-1].startswith("alat: error: "), err
    return lines[-1]


@pytest.fixture
def alat_file(capsys, tmp_path, make_wav, tiny_model) -> Path:
    out = tmp_path / "x.alat"
    assert run(capsys, "encode", str(make_wav("x.wav", 1.0)), str(out), "--model", tiny_model)[0] == 0
    return out


def test_names_too_long_for_the_file_system(capsys, tmp_path, make_wav, alat_file, tiny_model) -> None:
    m = ("--model", tiny_model)
    too_long = "too long for the file system (261 bytes; most hold 255)"
    _error(capsys, None, "encode", str(alat_file.with_suffix(".wav")), str(tmp_path / f"{LONG}.alat"), *m, match=too_long)
    _error(capsys, None, "decode", str(tmp_path / f"{LONG}.alat"), str(tmp_path / "o.wav"), *m, match=too_long)
    _error(capsys, None, "info", str(tmp_path / f"{LONG}.alat"), match=too_long)
    _error(capsys, None, "info", str(tmp_path / f"{LONG}.tar"), match=too_long.replace("261", "260"))
    # a 255-byte input (a name the file system holds) whose output name is 256 bytes: that file fails, listed
    src = tmp_path / "in"
    src.mkdir()
    sf.write(str(src / "ok.wav"), tone(1.0, 16000, 1), 16000)
    sf.write(str(src / f"{'b' * 251}.wav"), tone(1.0, 16000, 1), 16000)
    code, out, err = run(capsys, "encode", str(src), str(tmp_path / "enc"), *m)
    assert code == 1 and "1 written, 0 already complete, 1 failed" in out
    assert err.splitlines() == [f"alat: failed: {tmp_path / 'enc' / ('b' * 251)}.alat: a name in the path is too long "
                                f"for the file system (256 bytes; most hold 255)"]
    assert (tmp_path / "enc" / "ok.alat").is_file()


def test_a_shard_key_too_long_fails_alone(capsys, tmp_path, alat_file, tiny_model) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    with open(shards / "000000.tar", "wb") as f:
        write_shard(f, [(LONG, alat_file), ("ok", alat_file)])
    code, out, err = run(capsys, "decode", str(shards), str(tmp_path / "dec"), "--model", tiny_model, "--gl-iters", "2")
    assert code == 1 and "1 written, 0 already complete, 1 failed" in out, err
    assert err.splitlines() == [f"alat: failed: {tmp_path / 'dec' / LONG}.wav: a name in the path is too long for the "
                                f"file system (260 bytes; most hold 255)"]
    assert sf.info(str(tmp_path / "dec" / "ok.wav")).frames == 16000


@pytest.mark.parametrize("argv", [["info", "{alat}"], ["info", "{alat}", "--json"], ["models"], ["--version"], ["-h"],
                                  ["encode", "--help"]])
def test_stdout_on_a_full_device(alat_file, argv: list[str]) -> None:
    with open("/dev/full", "w") as full:
        r = subprocess.run([ALAT, *(a.format(alat=alat_file) for a in argv)], stdout=full, stderr=subprocess.PIPE,
                           text=True, env=ENV)
    assert r.returncode == 1 and r.stderr == "alat: error: <stdout>: cannot write (No space left on device)\n"


def test_a_link_into_a_folder_that_may_not_be_read(capsys, monkeypatch, tmp_path, alat_file, tiny_model) -> None:
    """As root every folder reads, so the system's refusals are played by os.stat (a link into a folder that
    may not be read: the link cannot be looked up) and os.scandir (a folder that may not be listed)."""
    (tmp_path / "secret").mkdir()
    for folder in ("in/private", "alats/private"):
        (tmp_path / folder).mkdir(parents=True)
    sf.write(str(tmp_path / "in" / "a.wav"), tone(1.0, 16000, 1), 16000)
    sf.write(str(tmp_path / "secret" / "b.wav"), tone(1.0, 16000, 1), 16000)
    os.symlink(tmp_path / "secret" / "b.wav", tmp_path / "in" / "b.wav")
    alat_file.rename(tmp_path / "alats" / "a.alat")
    os.symlink(tmp_path / "alats" / "a.alat", tmp_path / "secret" / "b.alat")
    os.symlink(tmp_path / "secret" / "b.alat", tmp_path / "alats" / "b.alat")
    real_stat, real_scandir = os.stat, os.scandir
    refused = {tmp_path / "in" / "b.wav", tmp_path / "alats" / "b.alat"}

    def stat(path, *args, **kwargs):
        if Path(path) in refused:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    def scandir(path="."):
        if Path(path) in refused:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "scandir", scandir)
    code, out, err = run(capsys, "encode", str(tmp_path / "in"), str(tmp_path / "enc"), "--model", tiny_model)
    assert code == 1 and "1 written, 0 already complete, 1 failed" in out  # the file alone fails, listed
    assert err.splitlines() == [f"alat: failed: {tmp_path / 'in' / 'b.wav'}: cannot read here (permission denied)"]
    decode = ["decode", str(tmp_path / "alats"), str(tmp_path / "dec"), "--model", tiny_model]
    for argv in (["info", str(tmp_path / "alats")], decode):
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == "" and "b.alat: cannot read (Permission denied)" in one_error_line(err)
    refused.clear()
    refused |= {tmp_path / "in" / "private", tmp_path / "alats" / "private"}  # a folder that cannot be listed fails the run: its files would be lost in silence
    for argv in (["info", str(tmp_path / "alats")], decode,
                 ["encode", str(tmp_path / "in"), str(tmp_path / "enc2"), "--model", tiny_model]):
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == "" and "private: cannot read (Permission denied)" in one_error_line(err)
    assert not (tmp_path / "dec").exists() and not (tmp_path / "enc2").exists()


def test_empty_names_are_refused(capsys, tmp_path, monkeypatch, alat_file) -> None:
    monkeypatch.chdir(alat_file.parent)  # '' was this folder: the whole of it decoded into a folder named o.wav
    for argv in (["decode", "", "o.wav"], ["encode", "x.wav", ""], ["info", ""], ["eval", ""]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and "an empty name names nothing" in one_error_line(err)
    code, _, err = run(capsys, "train", "", "out")
    assert code == 1 and "an empty name names no folder" in one_error_line(err)
    assert not (alat_file.parent / "o.wav").exists()


def test_what_is_not_a_regular_file_is_never_replaced(capsys, tmp_path, make_wav, tiny_model) -> None:
    src = make_wav("x.wav", 1.0)
    fifo, sock = tmp_path / "fifo.alat", tmp_path / "sock.alat"
    os.mkfifo(fifo)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock))
        for path, kind in ((fifo, "a FIFO"), (sock, "a socket")):
            code, _, err = run(capsys, "encode", str(src), str(path), "-y", "--model", tiny_model)
            assert code == 1 and f"{path}: is {kind}, not a file: refusing to replace it" in one_error_line(err)
        assert fifo.is_fifo() and sock.is_socket()
    if os.geteuid() == 0:  # a device node of our own (as /dev/null's), in the test's folder
        dev = tmp_path / "null.alat"
        os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))
        code, _, err = run(capsys, "encode", str(src), str(dev), "-y", "--model", tiny_model)
        assert code == 1 and "is a character device, not a file" in one_error_line(err) and dev.is_char_device()


def test_a_pipe_of_zeros_is_refused_from_its_first_bytes(tmp_path) -> None:
    p = subprocess.Popen([ALAT, "decode", "-", str(tmp_path / "o.wav")], stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=ENV)
    sent, block = 0, bytes(1 << 20)
    try:
        while sent < 400 << 20:  # the old reader took all of it before looking at the magic
            p.stdin.write(block)
            sent += len(block)
    except BrokenPipeError:
        pass
    p.stdin.close()
    err = p.stderr.read().decode()
    assert p.wait() == 1 and sent < 64 << 20, sent
    assert err == "alat: error: <stdin>: not a .alat file (bad magic bytes at offset 0)\n"


def test_names_print_escaped(capsys, tmp_path, alat_file, tiny_model) -> None:
    forged = "a\nalat: error: everything is fine"
    shards = tmp_path / "shards"
    shards.mkdir()
    bad = tmp_path / "bad.alat"
    bad.write_bytes(b"not a .alat file")
    with open(shards / "000000.tar", "wb") as f:
        write_shard(f, [("ok", alat_file)])
    with open(shards / "000001.tar", "wb") as f:  # a writer would never pack it, so it is packed by hand
        import tarfile

        with tarfile.open(fileobj=f, mode="w:", format=tarfile.PAX_FORMAT) as tar:
            tar.add(str(bad), arcname=forged + ".alat")
    for argv in (["info", str(shards)], ["info", str(shards / "000001.tar")],
                 ["decode", str(shards), str(tmp_path / "dec"), "--model", tiny_model, "--gl-iters", "2"]):
        code, out, err = run(capsys, *argv)
        assert code == 1, err
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("alat: failed: ") and "a\\nalat: error: everything" in lines[0]
    out_name = tmp_path / "o\x1b[2J.wav"
    code, out, _ = run(capsys, "decode", str(alat_file), str(out_name), "--model", tiny_model, "--gl-iters", "2")
    assert code == 0 and out.startswith(f"{tmp_path}/o\\x1b[2J.wav: 1.00 s") and "\x1b" not in out
    code, _, err = run(capsys, "decode", str(tmp_path / "no\rsuch.alat"), str(tmp_path / "o.wav"))
    assert code == 1 and err == f"alat: error: {tmp_path}/no\\rsuch.alat: no such file\n"
    evil = tmp_path / "evil.alat"  # what a file says of itself prints escaped too
    evil.write_bytes(rename_model(alat_file.read_bytes(), "m\n\x1b[31mx"))
    code, out, _ = run(capsys, "info", str(evil))
    assert code == 0 and "  model     m\\n\\x1b[31mx (fingerprint" in out and "\x1b" not in out


def test_a_vocoder_the_plain_install_cannot_run(tmp_path, make_wav) -> None:
    plain = "import sys; sys.modules.update(torch=None, diffusers=None); from latentcodec.cli import main; sys.exit(main())"
    src, alat = make_wav("x.wav", 0.5), tmp_path / "x.alat"
    r = subprocess.run([sys.executable, "-c", plain, "encode", str(src), str(alat)], capture_output=True, text=True,
                       env=ENV)
    assert r.returncode == 0, r.stderr
    for name in ("hifigan", "no-such-vocoder", str(tmp_path)):
        r = subprocess.run([sys.executable, "-c", plain, "decode", str(alat), str(tmp_path / "o.wav"), "--vocoder", name],
                           capture_output=True, text=True, env=ENV)
        assert r.returncode == 1 and r.stderr.startswith(f"alat: error: --vocoder: vocoder '{name}' needs the torch "
                                                         f"runtime, not installed: pip install 'latentcodec[torch]'")
        assert r.stderr.count("\n") == 1


@pytest.mark.slow
def test_ctrl_c_in_a_folder_run_is_reported_once(tmp_path, tiny_model) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(24):
        sf.write(str(src / f"{i:02d}.wav"), tone(4.0, 16000, 1, seed=i), 16000)
    argv = [ALAT, "encode", str(src), str(tmp_path / "out"), "--model", tiny_model, "--jobs", "2"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True,
                         preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "out").glob("*.alat")) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert err.splitlines() == [err.splitlines()[0]] and err.startswith("alat: interrupted: "), err
    assert err.rstrip().endswith("outputs complete; the same command resumes")
    assert not list((tmp_path / "out").glob(".*.part"))  # the workers, ended by the pool, removed theirs
    r = subprocess.run(argv + ["--json"], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0 and '"failed": 0' in r.stdout, r.stderr
    assert len(list((tmp_path / "out").glob("*.alat"))) == 24 and not list((tmp_path / "out").glob(".*"))
