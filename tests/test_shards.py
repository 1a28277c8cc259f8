"""Tar shards through the real CLI: a nested tree with one broken file encoded to shards, interrupted and
resumed, decoded back, listed by `alat info`, read by LatentCrops and by WebDataset; and shards from
anywhere (names that leave the folder, truncated members) refused in one line."""
from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from latentcodec.format.shards import members
from tests.conftest import default_sigint, tone
from tests.test_folders import ALAT, alat

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"

NAMES = ["a.wav", "music/b.flac", "music/live/c.wav", "speech/d.wav", "speech/e.wav"]
SHARD = 13_000  # bytes: one or two small members a shard, beside tarfile's 10 KiB record padding


def _tree(src: Path) -> None:
    for i, name in enumerate(NAMES):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(src / name), tone(0.5 + 0.5 * i, 16000, 1, seed=i), 16000)
    sf.write(str(src / "zz_long.wav"), tone(900.0, 16000, 1, seed=9), 16000)  # last in order: where we interrupt
    (src / "speech" / "broken.wav").write_bytes(b"RIFF not really a wave file")


def _keys(out: Path) -> list[str]:
    return [m.key for p in sorted(out.glob("*.tar")) for m in members(p)]


def test_shards_interrupted_resumed_decoded_and_read(tmp_path, tiny_model) -> None:
    src, out, dec = tmp_path / "in", tmp_path / "out", tmp_path / "dec"
    _tree(src)
    argv = [ALAT, "encode", str(src), str(out), "--model", tiny_model, "--shard-size", str(SHARD), "--json"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=default_sigint)
    deadline = time.monotonic() + 120
    while not list((out / ".alat-staging").glob(".zz_long.alat.*.part")) and p.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)  # while the long file is encoded (the last): the small ones are staged or packed
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "the same command resumes" in err
    first = _keys(out)
    assert first and "zz_long" not in first
    stale = out / f".{len(list(out.glob('*.tar'))):06d}.tar.abcdefgh.part"  # atomic_output's, for the next shard
    stale.write_bytes(b"left by a killed run")

    r = alat("encode", str(src), str(out), "--model", tiny_model, "--shard-size", str(SHARD), "--json")
    assert r.returncode == 1, r.stderr  # the broken file
    res = json.loads(r.stdout)
    assert (res["written"], res["skipped"], res["failed"]) == (1, len(NAMES), 1)  # the long one; the rest was done
    assert [f["input"] for f in res["failures"]] == [str(src / "speech" / "broken.wav")]
    assert r.stderr.count("alat: failed:") == 1
    keys = _keys(out)
    assert sorted(keys) == sorted([Path(n).with_suffix("").as_posix() for n in NAMES] + ["zz_long"])
    assert len(set(keys)) == len(keys)  # each once
    assert sorted(x.name for x in out.iterdir()) == [f"{i:06d}.tar" for i in range(len(list(out.glob("*.tar"))))]
    for shard in out.glob("*.tar"):  # whole tars, at most SHARD bytes unless one member alone is larger
        with tarfile.open(shard) as t:
            names = [m.name for m in t.getmembers()]
        assert names[-1] == "__alat_index__" and all(n.endswith(".alat") for n in names[:-1])  # the index last
        assert shard.stat().st_size <= SHARD or len(names) == 2

    again = alat("encode", str(src), str(out), "--model", tiny_model, "--shard-size", str(SHARD), "--json")
    assert json.loads(again.stdout)["written"] == 0 and json.loads(again.stdout)["shards_written"] == []

    r = alat("info", str(out), "--json")
    info = json.loads(r.stdout)
    assert r.returncode == 0 and (info["files"], info["failures"]) == (len(NAMES) + 1, [])
    assert info["bytes_on_disk"] == sum(p.stat().st_size for p in out.glob("*.tar"))

    r = alat("decode", str(out), str(dec), "--model", tiny_model, "--gl-iters", "1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["written"] == len(NAMES) + 1, r.stderr
    for i, name in enumerate(NAMES):
        y, rate = sf.read(str((dec / name).with_suffix(".wav")))
        assert rate == 16000 and len(y) == round((0.5 + 0.5 * i) * 16000)

    from latentcodec.dataset import LatentCrops

    crops = LatentCrops(out, crop_frames=8, stride=4)
    assert len(crops) > 0 and all(np.isfinite(crops[i].numpy()).all() for i in range(0, len(crops), 97))


@pytest.mark.skipif(importlib.util.find_spec("webdataset") is None, reason="webdataset is not installed")
def test_webdataset_reads_the_shards(tmp_path, tiny_model) -> None:
    import webdataset as wds

    import latentcodec

    src, out = tmp_path / "in", tmp_path / "out"
    for i, name in enumerate(NAMES[:3]):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(src / name), tone(1.0, 16000, 1, seed=i), 16000)
    r = alat("encode", str(src), str(out), "--model", tiny_model, "--shard-size", "1MB", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["shards_written"] == [str(out / "000000.tar")], r.stderr
    samples = list(wds.WebDataset(str(out / "000000.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["a", "music/b", "music/live/c"]
    for s in samples:
        with latentcodec.open(io.BytesIO(s["alat"])) as reader:
            assert reader.latents(0).shape[0] == reader.header.latent_channels


def _shard(path: Path, entries: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def test_shards_from_anywhere_are_refused_in_one_line(tmp_path) -> None:
    for name in ["../evil.alat", "/abs/x.alat", "a/../../x.alat"]:
        _shard(tmp_path / "000000.tar", [(name, b"ALATxxxx")])
        r = alat("decode", str(tmp_path), str(tmp_path / "dec"))
        assert r.returncode == 1 and r.stderr.strip().splitlines() == [
            f"alat: error: {tmp_path / '000000.tar'}: member {name!r} names a path outside the shard's folder"]
        assert not (tmp_path / "dec").exists() and not (tmp_path.parent / "evil.wav").exists()
    _shard(tmp_path / "000000.tar", [("x.alat", bytes(2000))])
    (tmp_path / "000000.tar").write_bytes((tmp_path / "000000.tar").read_bytes()[:1000])  # the data cut off
    r = alat("info", str(tmp_path / "000000.tar"))
    assert (r.returncode, r.stderr) == (1, f"alat: error: {tmp_path / '000000.tar'}: ends inside member 'x.alat' "
                                           f"(truncated); no member before it\n")


def test_shard_size_is_for_folders_and_parsed(tmp_path) -> None:
    wav = tmp_path / "a.wav"
    sf.write(str(wav), tone(0.5, 16000, 1), 16000)
    r = alat("encode", str(wav), str(tmp_path / "a.alat"), "--shard-size", "1GB")
    assert r.returncode == 2 and "--shard-size is for folder mode" in r.stderr
    for bad in ["nan", "-1", "0", "2TiB", "1 parsec"]:
        r = alat("encode", str(tmp_path), str(tmp_path / "out"), f"--shard-size={bad}")
        assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("alat: error: Invalid value"), bad
