"""The Python API at the package's top level, and the Dataset of stored latent crops."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import latentcodec
from latentcodec.errors import AudioError, LatentCodecError
from tests.conftest import tone
from tests.test_cli import run


def test_encode_decode_arrays_match_the_cli(capsys, tmp_path, tiny_model) -> None:
    x = tone(6.0, 22050, 2)
    res = latentcodec.encode(x, 22050, tmp_path / "a.alat", model=tiny_model)
    assert (res.header.channels, res.header.original_rate, res.header.num_samples) == (2, 22050, 6 * 16000)
    y, rate = latentcodec.decode(tmp_path / "a.alat", model=tiny_model, vocoder="hifigan")
    assert rate == 16000 and y.shape == (6 * 16000, 2) and y.dtype == np.float32
    assert run(capsys, "decode", str(tmp_path / "a.alat"), str(tmp_path / "a.wav"), "--vocoder", "hifigan",
               "--model", tiny_model)[0] == 0
    ref, _ = sf.read(str(tmp_path / "a.wav"), always_2d=True, dtype="float32")
    assert np.abs(y - ref).max() <= 2 / 32768  # the CLI's file is the same samples in 16 bits
    part, _ = latentcodec.decode(tmp_path / "a.alat", model=tiny_model, vocoder="hifigan", start=2.0,
                                 duration=1.0)
    assert np.abs(part - y[32000:48000]).max() < 1e-5
    y, rate = latentcodec.decode(tmp_path / "a.alat", model=tiny_model, sample_rate="original", gl_iters=2)
    assert rate == 22050 and y.shape == (6 * 22050, 2)
    with pytest.raises(AudioError, match="give \\(frames,\\) or \\(frames, channels\\)"):
        latentcodec.encode(np.zeros((2, 3, 4)), 16000, tmp_path / "b.alat", model=tiny_model)


def test_reader_gives_latents_without_audio(tmp_path, tiny_model) -> None:
    latentcodec.encode(tone(12.0, 16000, 2), 16000, tmp_path / "a.alat", model=tiny_model, bits=16)
    with latentcodec.open(tmp_path / "a.alat") as r:
        h = r.header
        z = r.latents(1)
        assert z.shape == (8, h.num_chunks * h.chunk_frames // 4, 16) and z.dtype == np.float32
        assert np.array_equal(r.latent(2, 1), z[:, 250:375]) and not np.array_equal(r.latent(2, 0), r.latent(2, 1))
        assert np.array_equal(r.latent(0, 0), r.read(0, 0))


def test_latent_crops_over_a_folder(tmp_path, tiny_model) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    latentcodec.encode(tone(12.0, 16000, 2), 16000, tmp_path / "d" / "a.alat", model=tiny_model)
    latentcodec.encode(tone(3.0, 16000, 1, seed=1), 16000, tmp_path / "d" / "sub" / "b.alat", model=tiny_model)
    ds = latentcodec.LatentCrops(tmp_path / "d", crop_frames=64, stride=32)
    # a: 12 s -> 300 latent frames inside the audio, crops at 0, 32, ..., 224 (8) x 2 channels; b: 75 -> 1
    assert len(ds) == 8 * 2 + 1
    with latentcodec.open(tmp_path / "d" / "a.alat") as r:
        whole = r.latents(1)
    path, channel, first = ds.item(8 + 4)
    assert (path.name, channel, first) == ("a.alat", 1, 128)  # crosses the chunk border at latent frame 125
    assert torch.equal(ds[8 + 4], torch.from_numpy(whole[:, 128:192]))
    batches = list(torch.utils.data.DataLoader(ds, batch_size=5, num_workers=2))
    assert [b.shape for b in batches][0] == (5, 8, 64, 16) and sum(len(b) for b in batches) == 17
    with pytest.raises(LatentCodecError, match="no .alat file holds a crop"):
        latentcodec.LatentCrops(tmp_path / "d", crop_frames=400)


def test_decode_takes_a_vocoder_itself(tmp_path, tiny_model) -> None:
    from latentcodec.vocoders.griffinlim import GriffinLimVocoder

    latentcodec.encode(tone(6.0, 16000, 1), 16000, tmp_path / "a.alat", model=tiny_model)
    named, _ = latentcodec.decode(tmp_path / "a.alat", model=tiny_model, vocoder="griffinlim", gl_iters=4)
    same, _ = latentcodec.decode(tmp_path / "a.alat", model=tiny_model, vocoder=GriffinLimVocoder(4))
    other, _ = latentcodec.decode(tmp_path / "a.alat", model=tiny_model, vocoder=GriffinLimVocoder(4, seed=1))
    assert np.array_equal(named, same)  # the name's vocoder starts from seed 0
    assert not np.allclose(named, other, atol=1e-3)  # another starting phase, other samples
    calls = []
    silent, _ = latentcodec.decode(tmp_path / "a.alat", model=tiny_model, vocoder=lambda mel, prev: calls.append(len(mel)) or
                                   np.zeros((len(mel) - 1) * 160, np.float32))
    assert calls and silent.shape == named.shape and np.abs(silent).max() < 1e-3  # its samples, de-normalised


def test_latent_crops_cache_is_bounded_and_changes_nothing(tmp_path, tiny_model) -> None:
    (tmp_path / "d").mkdir()
    latentcodec.encode(tone(12.0, 16000, 2), 16000, tmp_path / "d" / "a.alat", model=tiny_model)
    cached = latentcodec.LatentCrops(tmp_path / "d", crop_frames=64, stride=8)
    small = latentcodec.LatentCrops(tmp_path / "d", crop_frames=64, stride=8, cache_mb=1.5 * 8 * 125 * 16 * 4 / 2**20)
    plain = latentcodec.LatentCrops(tmp_path / "d", crop_frames=64, stride=8, cache_mb=0)
    order = np.random.default_rng(0).permutation(len(plain))
    for i in order:
        assert torch.equal(cached[i], plain[i]) and torch.equal(small[i], plain[i])
        assert small._cached <= small.cache_bytes and not plain._chunks  # within its budget; none
    assert len(cached._chunks) == 3 * 2  # every chunk of both channels, each decoded once
