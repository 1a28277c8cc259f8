"""Any VAE is coded as tightly: a model without coder.json gets a transform fitted on the file's own latents,
and `alat calibrate` writes the table, on an AudioLDM2-sized AutoencoderKL loaded through the real loader."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from latentcodec.audio.io import read_audio
from latentcodec.cli import main
from latentcodec.codec import FIT_CHUNKS, encode_audio
from latentcodec.format.container import AlatReader
from latentcodec.format.transform_coder import fit_transform
from latentcodec.models.loader import load_model
from latentcodec.options import EncodeOptions
from tests.conftest import tone

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"

AUDIOLDM2_VAE = dict(in_channels=1, out_channels=1, latent_channels=8, block_out_channels=(128, 256, 512),
                     layers_per_block=2, norm_num_groups=32, down_block_types=("DownEncoderBlock2D",) * 3,
                     up_block_types=("UpDecoderBlock2D",) * 3)


@pytest.fixture(scope="module")
def audioldm2_sized(tmp_path_factory) -> str:
    import torch
    from diffusers import AutoencoderKL

    folder = tmp_path_factory.mktemp("audioldm2-sized")
    torch.manual_seed(0)
    AutoencoderKL(**AUDIOLDM2_VAE).save_pretrained(folder / "vae")
    return str(folder)


def _latents(path, model) -> list[np.ndarray]:
    buf = io.BytesIO()
    encode_audio(read_audio(path, mono=True), buf, EncodeOptions(model=model, bits=16, zstd_level=0, precision="float32"))
    buf.seek(0)
    with AlatReader(buf) as r:
        return [z for _, _, z in r]


def test_a_model_without_a_table_codes_with_the_files_own_transform(tmp_path, make_wav, tiny_model) -> None:
    model = load_model(tiny_model)
    assert model.coder is None
    src = make_wav("a.wav", 17.0, 16000, 1)  # 4 chunks: the transform is fitted on the first FIT_CHUNKS
    buf = io.BytesIO()
    encode_audio(read_audio(src, mono=True), buf, EncodeOptions(model=model, precision="float32"))
    buf.seek(0)
    with AlatReader(buf) as r:
        k = np.asarray(r.header.transform)
    expected = fit_transform(_latents(src, model)[:FIT_CHUNKS]).astype(np.float16).astype(np.float64)
    assert np.array_equal(k, expected) and not np.allclose(k, np.eye(8))
    assert np.allclose(k @ k.T, np.eye(8), atol=2e-3)


def test_calibrate_writes_the_table_the_encoder_then_uses(capsys, tmp_path, audioldm2_sized) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for i in range(3):
        sf.write(str(data / "sub" / f"{i}.wav"), tone(4.0, 16000, 1, seed=i)[:, 0], 16000)
    (data / "notes.txt").write_text("not audio")
    args = ["calibrate", audioldm2_sized, str(data), "--files", "2", "--seconds", "3", "--min-seconds", "1"]
    assert main(args) == 0
    assert "coder.json: fitted on 2 files" in capsys.readouterr().out
    table = json.loads((Path(audioldm2_sized) / "vae" / "coder.json").read_text())
    k = np.asarray(table["transform"])
    assert k.shape == (8, 8) and np.allclose(k @ k.T, np.eye(8), atol=1e-6)
    assert table["calibration"]["files"] == ["sub/0.wav", "sub/2.wav"]
    assert list(table["component_variance"]) == sorted(table["component_variance"], reverse=True)
    assert main(args) == 1 and "exists" in capsys.readouterr().err  # not replaced without -y
    model = load_model(audioldm2_sized)
    buf = io.BytesIO()
    encode_audio(read_audio(data / "sub" / "1.wav", mono=True), buf, EncodeOptions(model=model))
    buf.seek(0)
    with AlatReader(buf) as r:
        assert np.array_equal(np.asarray(r.header.transform), k.astype(np.float16).astype(np.float64))
