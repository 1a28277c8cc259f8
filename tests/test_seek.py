"""`alat decode --start S --duration D` through the real CLI: the same samples as that span of a whole
decode, read from only the chunks it needs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from latentcodec.audio.mel import AUDIOLDM_MEL, log_mel_frames
from latentcodec.format.container import AlatReader
from latentcodec.metrics import log_mel_distance
from tests.test_cli import _error, run

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"


@pytest.fixture(scope="module")
def long_alat(tmp_path_factory, tiny_model):  # noqa: ANN201
    """37 s of stereo (8 chunks of 5 s; the vocoder's windows are 10 s) encoded with the tiny model."""
    from tests.conftest import tone

    folder = tmp_path_factory.mktemp("seek")
    sf.write(str(folder / "in.wav"), tone(37.0, 16000, 2), 16000)
    assert main_ok("encode", str(folder / "in.wav"), str(folder / "in.alat"), "--model", tiny_model)
    return folder / "in.alat"


def main_ok(*argv: str) -> bool:
    from latentcodec.cli import main

    return main(list(argv)) == 0


@pytest.mark.parametrize("start,duration", [(0.0, 3.0), (12.3, 5.0), (9.99, 0.5), (19.6, 1.0), (33.0, 9.0)])
def test_span_equals_the_whole_decode(capsys, tmp_path, long_alat, tiny_model, start: float, duration: float) -> None:
    whole, part = tmp_path / "whole.wav", tmp_path / "part.wav"
    assert run(capsys, "decode", str(long_alat), str(whole), "--vocoder", "hifigan", "--model", tiny_model)[0] == 0
    code, out, _ = run(capsys, "decode", str(long_alat), str(part), "--vocoder", "hifigan", "--model", tiny_model, "--start", str(start),
                       "--duration", str(duration), "--json")
    assert code == 0
    ref, _ = sf.read(str(whole), always_2d=True)
    y, _ = sf.read(str(part), always_2d=True)
    a = round(start * 16000)
    want = ref[a:a + round(duration * 16000)]
    res = json.loads(out)
    assert y.shape == want.shape and res["frames"] == len(want) and res["duration_s"] == len(want) / 16000
    assert np.abs(y - want).max() <= 2 / 32768  # the same 16-bit samples, to a step of float rounding


def test_span_reads_only_its_chunks(capsys, tmp_path, long_alat, tiny_model, monkeypatch) -> None:
    read: list[int] = []
    original = AlatReader.read
    monkeypatch.setattr(AlatReader, "read", lambda self, k, c: read.append(k) or original(self, k, c))
    assert run(capsys, "decode", str(long_alat), str(tmp_path / "p.wav"), "--model", tiny_model, "--start", "21", "--duration", "2")[0] == 0
    # the vocoder window of 20-30 s reads mel from 19.68 s (chunk 3) to 30.32 s (chunk 6), plus one neighbour each side
    assert sorted(set(read)) == [2, 3, 4, 5, 6, 7]


def test_griffin_lim_span_sounds_the_same(capsys, tmp_path, long_alat, tiny_model) -> None:
    """Griffin-Lim's phase starts afresh at the first window, so samples differ; the spectrum does not."""
    whole, part = tmp_path / "whole.wav", tmp_path / "part.wav"
    assert run(capsys, "decode", str(long_alat), str(whole), "--model", tiny_model)[0] == 0
    assert run(capsys, "decode", str(long_alat), str(part), "--model", tiny_model, "--start", "12", "--duration", "5")[0] == 0
    ref = sf.read(str(whole), always_2d=True, dtype="float32")[0][12 * 16000:17 * 16000]
    y = sf.read(str(part), always_2d=True, dtype="float32")[0]
    n = 5 * 100 - 4
    d = [log_mel_distance(log_mel_frames(ref[:, c], 2, n, AUDIOLDM_MEL, 0.0, 1.0),
                          log_mel_frames(y[:, c], 2, n, AUDIOLDM_MEL, 0.0, 1.0))["log_mel_l1_db"] for c in range(2)]
    assert max(d) < 1.0, d


def test_span_errors(capsys, tmp_path, long_alat, tiny_model) -> None:
    out = tmp_path / "x.wav"
    _error(capsys, out, "decode", str(long_alat), str(out), "--model", tiny_model, "--start", "40", match="--start: a start at 40 s is outside")
    code, _, err = run(capsys, "decode", str(long_alat), str(out), "--model", tiny_model, "--duration", "0")
    assert code == 2 and "alat: error: Invalid value for '--duration'" in err
