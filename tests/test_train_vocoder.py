"""`alat train-vocoder`: seeded, resumable after a kill to the very weights of an uninterrupted run, and
its output folder is a vocoder the registry loads."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from latentcodec.audio.mel import AUDIOLDM_MEL
from latentcodec.cli import main
from latentcodec.training.checkpoint import CHECKPOINT
from latentcodec.training.vocoder import (
    VocoderTrainConfig,
    _magnitude_losses,
    _resynthesised,
    batch_log_mel,
    train_vocoder,
)
from latentcodec.vocoders.registry import load_vocoder
from latentcodec.vocoders.griffinlim import GriffinLimVocoder
from latentcodec.vocoders.vocos import NeuralVocoder

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"


class Killed(Exception):
    pass


@pytest.fixture
def data(tmp_path: Path, make_wav) -> tuple[Path, Path]:
    """Training folders by kind, and a validation folder with 2 s of real speech (PESQ needs speech)."""
    train = tmp_path / "data"
    for kind, secs in (("music", 2.0), ("speech", 0.5)):  # 0.5 s: shorter than a crop, padded with silence
        (train / kind).mkdir(parents=True)
        make_wav(f"{kind}.wav", secs).rename(train / kind / f"{kind}.wav")
    val = tmp_path / "val"
    val.mkdir()
    x, sr = sf.read(str(EXAMPLE), dtype="float32", frames=2 * 16000)
    sf.write(str(val / "speech_example.wav"), x, sr)
    return train, val


def _cfg(**kw) -> VocoderTrainConfig:
    return VocoderTrainConfig(steps=4, batch_size=2, crop_frames=20, gan_start=2, val_every=2, checkpoint_every=2,
                              generator={"dim": 16, "intermediate": 32}, **kw)


@pytest.mark.parametrize("architecture,consistency,losses", [
    ("vocos", 0.0, {"d", "g_adv", "fm", "mel_l1_db", "mrstft"}),
    ("magnitude-gl", 0.0, {"log_mag_l1_db", "sc"}),
    ("magnitude-gl", 1.0, {"log_mag_l1_db", "sc", "heard_log_mag_l1_db", "heard_mel_l1_db"})])
def test_resume_after_kill_gives_the_uninterrupted_weights(tmp_path, data, architecture: str, consistency: float,
                                                           losses: set) -> None:
    train, val = data
    cfg = _cfg(architecture=architecture, consistency_weight=consistency)
    full = train_vocoder(train, tmp_path / "a", cfg, val=val, log=lambda s: None)

    def kill_after_first_checkpoint(line: str) -> None:
        if line == "step 2: checkpoint written":
            raise Killed

    with pytest.raises(Killed):
        train_vocoder(train, tmp_path / "b", cfg, val=val, log=kill_after_first_checkpoint)
    resumed = train_vocoder(train, tmp_path / "b", cfg, val=val, resume=True, log=lambda s: None)
    a, b = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("a", "b"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert [h["step"] for h in resumed["history"]] == [2, 4] == [h["step"] for h in full["history"]]
    assert resumed["history"][-1]["val"] == full["history"][-1]["val"]
    assert [h["train"] for h in resumed["history"]] == [h["train"] for h in full["history"]]  # the loss curve
    assert (tmp_path / "b" / CHECKPOINT).is_file() and not (tmp_path / "b" / "checkpoint.pt").exists()
    assert losses <= set(full["history"][-1]["train"])  # vocos: GAN on after step 2
    assert ("heard_mel_l1_db" in full["history"][-1]["train"]) == (consistency > 0)
    assert full["griffinlim"]["pesq_wb_speech"] > 1.0
    voc = load_vocoder(str(tmp_path / "a"))  # the output folder is a vocoder by name
    assert isinstance(voc, NeuralVocoder if architecture == "vocos" else GriffinLimVocoder)


def test_cli_runs_and_records(tmp_path, data, capsys) -> None:
    train, val = data
    out = tmp_path / "v"
    assert main(["train-vocoder", str(train), str(out), "--val", str(val), "--steps", "2", "--batch-size", "2",
                 "--crop-frames", "20", "--gan-start", "1", "--val-every", "2", "--threads", "1",
                 "--kind-weights", "music=0.5,speech=0.5"]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    info = json.loads((out / "training.json").read_text())
    assert info["config"]["kind_weights"] == {"music": 0.5, "speech": 0.5} and info["config"]["lr"] == 5e-4
    assert info["history"][-1]["val"]["log_mel_l1_db_by_kind"].keys() == {"speech"}
    assert main(["train-vocoder", str(tmp_path / "nope"), str(out), "--quiet"]) == 1


def test_crop_mel_is_the_codec_mel_of_those_samples() -> None:
    """A crop with n_fft/2 of context on each side gives, uncentred, the whole signal's centred frames."""
    from latentcodec.audio.mel import log_mel

    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    whole = log_mel(x)
    crop = torch.from_numpy(x[1600 - 512:1600 + 20 * 160 + 512])[None]
    assert np.allclose(batch_log_mel(crop, center=False)[0].numpy(), whole[10:31], atol=1e-4)


def test_init_starts_from_the_given_generator(tmp_path, data) -> None:
    """At learning rate 0 a run started with --init gives back exactly the generator it started from."""
    train, val = data
    common = ["--steps", "1", "--batch-size", "2", "--crop-frames", "20", "--quiet"]
    assert main(["train-vocoder", str(train), str(tmp_path / "a"), *common]) == 0
    assert main(["train-vocoder", str(train), str(tmp_path / "b"), *common, "--init", str(tmp_path / "a"),
                 "--seed", "1", "--lr", "0", "--min-lr", "0"]) == 0
    a, b = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("a", "b"))
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert main(["train-vocoder", str(train), str(tmp_path / "c"), *common, "--init", str(tmp_path)]) == 1


def test_resynthesis_keeps_a_real_magnitude_and_scores_a_smoothed_one() -> None:
    """The consistency loss's Griffin-Lim resynthesis: a real speech magnitude comes back close (Griffin-Lim's
    16 iterations are not exact), one smoothed over 5 frames far, so the loss can tell them apart."""
    c = AUDIOLDM_MEL
    x, _ = sf.read(str(EXAMPLE), dtype="float32", start=16000, frames=100 * c.hop + c.n_fft)
    target = torch.stft(torch.from_numpy(x)[None], c.n_fft, c.hop, c.win, torch.hann_window(c.win), center=False,
                        return_complex=True).abs()
    smooth = torch.nn.functional.avg_pool1d(target, 5, 1, 2)
    inner = slice(4, -4)
    real = _magnitude_losses(_resynthesised(target)[..., inner], target[..., inner], 1.0)
    smoothed = _magnitude_losses(_resynthesised(smooth)[..., inner], target[..., inner], 1.0)
    assert real["log_l1"] < 0.25 and real["mel_l1"] < 0.1  # nepers; measured 0.18 and 0.056
    assert smoothed["log_l1"] > 0.35 and smoothed["mel_l1"] > 0.15  # measured 0.46 and 0.25
    holes = target.clone()
    holes[..., 1::2] = 0  # no signal has this magnitude: the overlap-add fills the silent frames
    filled = _resynthesised(holes)[..., 5:-5:2]
    assert filled.mean() > 0.3 * target[..., 5:-5:2].mean()  # measured 0.50
