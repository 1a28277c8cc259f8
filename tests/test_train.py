"""`alat train`: writes a model folder the loader takes, is seeded, and resumes from its checkpoint."""
from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from latentcodec.cli import main
from latentcodec.models import load_model


def _weights(folder) -> dict:
    return load_file(str(folder / "diffusion_pytorch_model.safetensors"))


def test_train_resume_and_reproducible(tmp_path, make_wav, capsys) -> None:
    data = tmp_path / "data"
    (data / "music").mkdir(parents=True)
    (data / "speech").mkdir()
    make_wav("a.wav", 3.0).rename(data / "music" / "a.wav")
    make_wav("b.wav", 2.0, 22050).rename(data / "speech" / "b.wav")
    args = ["--val", str(data / "music"), "--batch-size", "2", "--crop-frames", "64", "--quiet"]
    assert main(["train", str(data), str(tmp_path / "m1"), "--steps", "3", *args]) == 0
    assert main(["train", str(data), str(tmp_path / "m2"), "--steps", "3", *args]) == 0
    w1, w2 = _weights(tmp_path / "m1"), _weights(tmp_path / "m2")
    assert all(torch.equal(w1[k], w2[k]) for k in w1)  # same seed, same weights
    assert load_model(str(tmp_path / "m1")).latent_channels == 8
    assert main(["train", str(data), str(tmp_path / "m1"), "--steps", "4", "--resume", *args]) == 0
    info = json.loads((tmp_path / "m1" / "training.json").read_text())
    assert info["history"][-1]["step"] == 4
    assert "trained 4 steps" in capsys.readouterr().out


def test_train_init_starts_from_given_weights(tmp_path, make_wav, tiny_model, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    make_wav("a.wav", 3.0).rename(data / "a.wav")
    args = ["--val", str(data), "--batch-size", "2", "--crop-frames", "64", "--quiet"]
    assert main(["train", str(data), str(tmp_path / "base"), "--steps", "2", *args]) == 0
    # learning rate 0: a fine-tuning run must give back exactly the weights it started from
    assert main(["train", str(data), str(tmp_path / "ft"), "--steps", "1", "--init", str(tmp_path / "base"),
                 "--lr", "0", "--min-lr", "0", *args]) == 0
    base, ft = _weights(tmp_path / "base"), _weights(tmp_path / "ft")
    assert all(torch.equal(base[k], ft[k]) for k in base)
    info = json.loads((tmp_path / "ft" / "training.json").read_text())
    assert info["init_fingerprint"] == load_model(str(tmp_path / "base")).fingerprint.hex()
    capsys.readouterr()
    assert main(["train", str(data), str(tmp_path / "bad"), "--steps", "1", "--init", tiny_model, *args]) == 1
    err = capsys.readouterr().err
    assert "another architecture" in err and "Traceback" not in err
