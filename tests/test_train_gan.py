"""`alat train --gan-weight`: the patch-GAN and feature-matching terms train, balance by the adaptive weight,
resume exactly, and leave a run without them as it was."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

import latentcodec.training.vae as vae_training
from latentcodec.cli import main
from latentcodec.models.loader import SMALL_VAE_CONFIG
from latentcodec.training.checkpoint import CHECKPOINT, load_state
from latentcodec.training.discriminators import MelPatchDiscriminator
from latentcodec.training.vae import (
    Run,
    TrainConfig,
    adaptive_weight,
    adversarial_loss,
    reconstruction_loss,
    train,
)

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"

TINY = {**SMALL_VAE_CONFIG, "block_out_channels": (16, 16, 16)}
GAN_FIGURES = ("gan", "fm", "adaptive_weight", "disc", "disc_acc_real", "disc_acc_fake")


def _voiced(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Harmonics of a gliding f0 in syllable-rate bursts, with a little noise: speech enough for PESQ's VAD."""
    t = np.arange(int(seconds * 16000)) / 16000
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 0.8 * t))
    x = sum(np.sin(2 * np.pi * k * np.cumsum(f) / 16000) / k for k in range(1, 16))
    x = x * np.sin(np.pi * 3.0 * t) ** 2 + 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A training folder (music/, speech/) and a validation folder with a speech clip and a music clip."""
    data, val = tmp_path / "data", tmp_path / "val"
    for kind, f0 in (("music", 330.0), ("speech", 120.0)):
        (data / kind).mkdir(parents=True)
        sf.write(data / kind / "a.wav", _voiced(3.0, f0, 0), 16000)
    val.mkdir()
    sf.write(val / "speech_x.wav", _voiced(3.0, 140.0, 1), 16000)
    sf.write(val / "music_x.wav", _voiced(2.0, 262.0, 2), 16000)
    return data, val


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"steps": 4, "batch_size": 2, "crop_frames": 64, "vae_config": TINY, "warmup": 1,
                          "val_every": 2, "checkpoint_every": 2, "quant_step": 0.4, "rate_weight": 0.004,
                          "val_vocoder": "griffinlim", **kw})


def _steps(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]


def test_gan_trains_with_finite_losses_and_starts_when_told(folders, tmp_path) -> None:
    """GAN on from step 0: every figure finite, the accuracies shares; with --gan-start 3 --disc-warmup 1 the
    discriminator trains from step 2 and the VAE meets its loss from step 3; PESQ-wb is in the history."""
    pytest.importorskip("pesq")
    data, val = folders
    info = train(data, tmp_path / "on", _cfg(gan_weight=0.5), val=val, log=lambda s: None)
    for s in _steps(tmp_path / "on"):
        assert all(math.isfinite(s[k]) for k in ("l1_db", "kbps", *GAN_FIGURES)), s
        assert 0 <= s["disc_acc_real"] <= 1 and 0 <= s["disc_acc_fake"] <= 1 and s["adaptive_weight"] >= 0
    assert [h["step"] for h in info["history"]] == [0, 2, 4]
    assert all(math.isfinite(info["history"][-1][f"train_{k}"]) for k in GAN_FIGURES)
    assert all(0 < h["val_pesq_wb_speech"] < 5 and 0 < h["val_stoi_speech"] <= 1 for h in info["history"])
    assert info["config"]["gan_weight"] == 0.5

    train(data, tmp_path / "late", _cfg(gan_weight=0.5, gan_start=3, disc_warmup=1), val=val, log=lambda s: None)
    keys = [set(s) for s in _steps(tmp_path / "late")]  # entry i is the step that began at step i
    assert [("disc" in k, "gan" in k) for k in keys] == [(False, False), (False, False), (True, False), (True, True)]


def test_adaptive_weight_is_the_gradient_norm_ratio() -> None:
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
    a, b = torch.tensor([[3.0, 0.0], [0.0, 4.0]]), torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    weight = adaptive_weight((w * a).sum(), (w * w * b).sum(), w)  # gradients a and 2 w b
    assert weight.item() == pytest.approx(5.0 / (torch.linalg.norm(2 * w.detach() * b).item() + 1e-4), rel=1e-6)
    assert not weight.requires_grad
    assert adaptive_weight((w * a).sum(), (w * 0).sum(), w).item() == pytest.approx(1e4)  # clamped


def test_adversarial_gradient_at_the_last_layer_is_gan_weight_times_the_reconstructions() -> None:
    """What the adaptive weight is for: at decoder.conv_out the adversarial term pulls gan_weight times as hard
    as the reconstruction, whatever the scale of the GAN and feature-matching losses."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(**TINY)
    run = Run(vae, torch.optim.AdamW(vae.parameters()), disc=MelPatchDiscriminator())
    x = torch.randn(2, 1, 64, 64)
    rec = vae.decode(vae.encode(x).latent_dist.mode()).sample
    rec_loss = reconstruction_loss(rec, x, (2, 4, 8))
    last = vae.decoder.conv_out.weight
    g_rec, = torch.autograd.grad(rec_loss, last, retain_graph=True)
    for fm_weight in (0.0, 1.0, 10.0):
        adv, figures = adversarial_loss(run, rec, x, rec_loss, TrainConfig(gan_weight=0.5, fm_weight=fm_weight))
        g_adv, = torch.autograd.grad(adv, last, retain_graph=True)
        assert g_adv.norm().item() == pytest.approx(0.5 * g_rec.norm().item(), rel=1e-2)  # less the 1e-4 guard
        assert figures["adaptive_weight"] > 0
    assert all(p.grad is None for p in run.disc.parameters())  # the VAE's step leaves the discriminator alone


class _Stop(Exception):
    pass


def test_resume_with_the_gan_is_exact(folders, tmp_path, monkeypatch, capsys) -> None:
    """Killed after the step-2 checkpoint and resumed: the VAE, the discriminator and both optimisers end as in
    the run never stopped; a checkpoint without the GAN is not resumed with it."""
    data, val = folders
    cfg = _cfg(gan_weight=0.5, clean_fraction=0.5)
    train(data, tmp_path / "whole", cfg, val=val, log=lambda s: None)
    save = vae_training.save_checkpoint

    def save_then_stop(run, *args) -> None:
        save(run, *args)
        raise _Stop

    monkeypatch.setattr(vae_training, "save_checkpoint", save_then_stop)
    with pytest.raises(_Stop):
        train(data, tmp_path / "cut", cfg, val=val, log=lambda s: None)
    monkeypatch.setattr(vae_training, "save_checkpoint", save)
    train(data, tmp_path / "cut", cfg, val=val, resume=True, log=lambda s: None)
    whole, cut = (load_state(tmp_path / n / CHECKPOINT) for n in ("whole", "cut"))
    assert whole["step"] == cut["step"] == 4
    for part in ("model", "disc"):
        assert whole[part].keys() == cut[part].keys()
        assert all(torch.equal(whole[part][k], cut[part][k]) for k in whole[part]), part
    for part in ("opt", "disc_opt"):
        a, b = whole[part]["state"], cut[part]["state"]
        assert all(torch.equal(a[i]["exp_avg_sq"], b[i]["exp_avg_sq"]) for i in a), part
    assert not torch.equal(whole["disc"]["post.bias"], torch.zeros_like(whole["disc"]["post.bias"]))

    args = ["--val", str(val), "--batch-size", "2", "--crop-frames", "64", "--channels", "16,16,16", "--quiet"]
    assert main(["train", str(data), str(tmp_path / "plain"), "--steps", "1", *args]) == 0
    capsys.readouterr()
    assert main(["train", str(data), str(tmp_path / "plain"), "--steps", "2", "--resume", "--gan-weight", "1",
                 *args]) == 1
    assert "written without the GAN" in capsys.readouterr().err


def test_gan_weight_zero_is_the_run_without_the_gan(folders, tmp_path, monkeypatch) -> None:
    """--gan-weight 0 never builds a discriminator nor enters the GAN's step, whatever the other GAN options
    say, and the vocoder that scores the speech clips moves no training noise: the weights are those of the
    path without any of it."""
    data, val = folders
    cfg = _cfg(gan_weight=0.0, gan_start=0, fm_weight=3.0, disc_lr=1e-2, val_vocoder="latentcodec-maggl-routed-v1")
    train(data, tmp_path / "zero", cfg, val=val, log=lambda s: None)

    def never(*args, **kwargs):
        raise AssertionError("the GAN's code ran with --gan-weight 0")

    for name in ("MelPatchDiscriminator", "adversarial_loss", "disc_step", "load_vocoder"):
        monkeypatch.setattr(vae_training, name, never)
    monkeypatch.setattr(vae_training, "listening_vocoder", lambda *args: None)
    train(data, tmp_path / "without", _cfg(), val=val, log=lambda s: None)
    a, b = (load_file(str(tmp_path / n / "diffusion_pytorch_model.safetensors")) for n in ("zero", "without"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "val_pesq_wb_speech" not in json.loads((tmp_path / "without" / "training.json").read_text())["history"][0]
