"""Decoders as pairings of a latent space: a file names the model whose encoder wrote it; any model with that
encoder (the same ``encoder.*`` and ``quant_conv.*`` weights, as ``alat train --freeze-encoder`` keeps them)
decodes it with its own decoder, when asked (``--decoder``) or paired (``vocoders.registry.Pairing``), and
``--decoder own`` decodes exactly as the writer's decoder did."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from latentcodec.cli import main
from latentcodec.errors import ModelError
from latentcodec.models.loader import file_fingerprint, latent_space_print, shipped_decoders
from tests.conftest import save_tiny_vae, tone


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """A tiny writer, a decoder of its latent space (its decoder's weights moved) and a model of another."""
    import torch
    from diffusers import AutoencoderKL

    root = tmp_path_factory.mktemp("decoders")
    writer = save_tiny_vae(root / "writer", seed=0)
    vae = AutoencoderKL.from_pretrained(writer)
    torch.manual_seed(5)
    with torch.no_grad():
        for p in [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]:
            p.add_(0.05 * torch.randn_like(p))
    vae.save_pretrained(root / "decoder")
    other = save_tiny_vae(root / "other", seed=1)
    return {"writer": str(writer), "decoder": str(root / "decoder"), "other": str(other), "root": str(root)}


@pytest.fixture(scope="module")
def written(models) -> Path:
    path = Path(models["root"]) / "x.wav"
    sf.write(path, tone(3.0, 16000, 1), 16000)
    assert main(["encode", str(path), str(path.with_suffix(".alat")), "--model", models["writer"], "-q"]) == 0
    return path.with_suffix(".alat")


def decode(src: Path, out: Path, *args: str) -> np.ndarray:
    """The samples of `alat decode` with Griffin-Lim's 2 iterations."""
    assert main(["decode", str(src), str(out), "-q", "--vocoder", "griffinlim", "--gl-iters", "2", *args]) == 0
    return sf.read(out, dtype="int16")[0]


def test_the_latent_space_print_covers_the_encoder_alone(models) -> None:
    assert latent_space_print(models["writer"]) == latent_space_print(models["decoder"])
    assert latent_space_print(models["writer"]) != latent_space_print(models["other"])
    assert file_fingerprint(models["writer"]) != file_fingerprint(models["decoder"])
    assert shipped_decoders("latentcodec-small-v4")[0] == "latentcodec-small-v4" and shipped_decoders("nothing") == []


def test_a_decoder_of_the_latent_space_decodes_and_own_decodes_as_written(models, written, tmp_path) -> None:
    own = decode(written, tmp_path / "own.wav", "--model", models["writer"])
    asked_own = decode(written, tmp_path / "asked_own.wav", "--model", models["writer"], "--decoder", "own")
    other = decode(written, tmp_path / "dec.wav", "--model", models["writer"], "--decoder", models["decoder"])
    assert np.array_equal(own, asked_own) and own.shape == other.shape
    assert np.abs(own.astype(np.int32) - other).mean() > 1  # another decoder: other samples


def test_the_report_names_the_decoder_that_ran(models, written, tmp_path, capsys) -> None:
    for decoder, named in (("own", "own"), (models["decoder"], models["decoder"])):
        assert main(["decode", str(written), str(tmp_path / "a.wav"), "--json", "--vocoder", "griffinlim", "-y",
                     "--gl-iters", "1", "--model", models["writer"], "--decoder", decoder]) == 0
        assert json.loads(capsys.readouterr().out)["decoder"] == named


def test_a_decoder_of_another_latent_space_is_refused_in_one_line(models, written, tmp_path, capsys) -> None:
    out = tmp_path / "y.wav"
    assert main(["decode", str(written), str(out), "--model", models["writer"], "--decoder", models["other"],
                 "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("alat: error: --decoder: decoder ")
    assert "was not made for the latents of model" in err and not out.exists()
    # --force decodes with it anyway, as with other weights than the file names
    assert main(["decode", str(written), str(out), "--model", models["writer"], "--decoder", models["other"], "-q",
                 "--force", "--vocoder", "griffinlim", "--gl-iters", "1"]) == 0


def test_the_writer_is_still_checked_by_its_fingerprint(models, written, tmp_path, capsys) -> None:
    """A decoder of the right latent space does not make another writer's weights pass for the file's."""
    assert main(["decode", str(written), str(tmp_path / "y.wav"), "--model", models["decoder"], "--decoder",
                 models["writer"], "-q"]) == 1
    assert "has other weights than the ones that made this file" in capsys.readouterr().err


def test_a_pairing_names_the_default_decoder(models, written, tmp_path, monkeypatch) -> None:
    from latentcodec.codec import model_for_file
    from latentcodec.format.container import AlatReader
    from latentcodec.options import DecodeOptions
    from latentcodec.vocoders import registry

    with AlatReader(written) as r:
        h = r.header
    monkeypatch.setitem(registry.PAIRINGS, h.model_name, registry.Pairing("griffinlim", decoder=models["decoder"]))
    paired = decode(written, tmp_path / "paired.wav", "--model", models["writer"])
    asked = decode(written, tmp_path / "asked.wav", "--model", models["writer"], "--decoder", models["decoder"])
    own = decode(written, tmp_path / "own.wav", "--model", models["writer"], "--decoder", "own")
    assert np.array_equal(paired, asked) and not np.array_equal(paired, own)
    m = model_for_file(h, DecodeOptions(model=models["writer"], runtime="torch"))
    assert (m.name, m.decodes_for) == (models["decoder"], h.model_name)
    with pytest.raises(ModelError) as e:
        model_for_file(h, DecodeOptions(model=models["writer"], decoder=models["other"], runtime="torch"))
    assert e.value.param == "decoder"


def test_a_folder_decodes_with_the_decoder_asked(models, written, tmp_path) -> None:
    """The folder jobs load the decoder once per worker and give the samples of a single decode."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.alat").write_bytes(written.read_bytes())
    args = ["--model", models["writer"], "--decoder", models["decoder"], "--vocoder", "griffinlim", "--gl-iters", "2"]
    assert main(["decode", str(folder), str(tmp_path / "out"), "-q", *args]) == 0
    assert main(["decode", str(written), str(tmp_path / "one.wav"), "-q", *args]) == 0
    one = sf.read(tmp_path / "one.wav", dtype="int16")[0]
    assert all(np.array_equal(sf.read(tmp_path / "out" / f"{n}.wav", dtype="int16")[0], one) for n in ("a", "b"))
