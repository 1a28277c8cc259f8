"""The version-2 rate knobs through the real encoder: --kbps lands on the file's own rate, quality sets
the step, and version 1 stays one option away."""
from __future__ import annotations

from pathlib import Path

import pytest

from latentcodec.audio.io import read_audio
from latentcodec.codec import encode_audio
from latentcodec.errors import LatentCodecError
from latentcodec.info import rate_figures
from latentcodec.models.loader import load_model
from latentcodec.options import EncodeOptions

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"


@pytest.fixture(scope="module")
def shipped():  # noqa: ANN201
    return load_model(), read_audio(EXAMPLE)


@pytest.mark.parametrize("kbps", [3.0, 8.0])
def test_kbps_lands_on_the_files_rate(tmp_path: Path, shipped, kbps: float) -> None:  # noqa: ANN001
    model, audio = shipped
    res = encode_audio(audio, tmp_path / "x.alat", EncodeOptions(model=model, kbps=kbps))
    assert res.header.version == 3
    assert abs(rate_figures(res.file_size, res.header)["kbps"] / kbps - 1) < 0.05


def test_quality_sets_the_step_and_bits_write_version_1(tmp_path: Path, shipped) -> None:  # noqa: ANN001
    model, audio = shipped
    fine = encode_audio(audio, tmp_path / "a.alat", EncodeOptions(model=model, quality=6))
    coarse = encode_audio(audio, tmp_path / "b.alat", EncodeOptions(model=model, quality=2))
    assert fine.header.steps[0] == pytest.approx(0.2) and coarse.header.steps[0] == pytest.approx(0.8)
    assert fine.file_size > 1.5 * coarse.file_size
    v1 = encode_audio(audio, tmp_path / "c.alat", EncodeOptions(model=model, bits=4))
    assert v1.header.version == 1 and v1.header.zstd_level == 19
    for bad in (dict(bits=4, quality=3), dict(quality=3, kbps=4), dict(zstd_level=3), dict(kbps=0.01),
                dict(quality=40)):
        with pytest.raises(LatentCodecError):
            encode_audio(audio, tmp_path / "d.alat", EncodeOptions(model=model, **bad))
    assert not (tmp_path / "d.alat").exists()
