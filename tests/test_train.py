"""`alat train`: writes a model folder the loader takes, is seeded, and resumes from its checkpoint."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import latentcodec.training.vae
from latentcodec.cli import main
from latentcodec.errors import LatentCodecError
from latentcodec.models.loader import SMALL_VAE_CONFIG, file_fingerprint, latent_space_print, load_model
from latentcodec.training.checkpoint import CHECKPOINT
from latentcodec.training.vae import TrainConfig, train

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"


def _weights(folder) -> dict:
    return load_file(str(folder / "diffusion_pytorch_model.safetensors"))


def _trained_base(tmp_path, make_wav) -> tuple:
    """A one-file data folder and the options of a tiny run, and a model trained 2 steps on it in base/."""
    data = tmp_path / "data"
    data.mkdir()
    make_wav("a.wav", 3.0).rename(data / "a.wav")
    args = ["--val", str(data), "--batch-size", "2", "--crop-frames", "64", "--quiet"]
    assert main(["train", str(data), str(tmp_path / "base"), "--steps", "2", *args]) == 0
    return data, args


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
    capsys.readouterr()
    assert main(["train", str(data), str(tmp_path / "m1"), "--steps", "4", "--resume", *args]) == 0
    assert capsys.readouterr() == ("", "")  # -q: nothing but errors
    assert main(["train", str(data), str(tmp_path / "m1"), "--steps", "4", "--resume", *args[:-1]]) == 0
    info = json.loads((tmp_path / "m1" / "training.json").read_text())
    assert info["history"][-1]["step"] == 4
    assert "trained 4 steps" in capsys.readouterr().out


def test_train_init_starts_from_given_weights(tmp_path, make_wav, tiny_model, capsys) -> None:
    data, args = _trained_base(tmp_path, make_wav)
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


def test_a_frozen_encoder_trains_the_decoder_alone(tmp_path, make_wav, capsys) -> None:
    """--freeze-encoder: the encoder and quant_conv come out bit for bit as --init gave them (so every file
    that model wrote has the same latents for the result), the decoder moves; without --init it is refused."""
    data, args = _trained_base(tmp_path, make_wav)
    assert main(["train", str(data), str(tmp_path / "dec"), "--steps", "2", "--init", str(tmp_path / "base"),
                 "--freeze-encoder", "--lr", "1e-2", *args]) == 0
    base, dec = _weights(tmp_path / "base"), _weights(tmp_path / "dec")
    frozen = [k for k in base if k.startswith(("encoder.", "quant_conv."))]
    trained = [k for k in base if k.startswith(("decoder.", "post_quant_conv."))]
    assert frozen and trained and len(frozen) + len(trained) == len(base)
    assert all(torch.equal(base[k], dec[k]) for k in frozen)
    assert not all(torch.equal(base[k], dec[k]) for k in trained)
    # so the result is a decoder of base's latent space (tests/test_decoders.py), with weights of its own
    assert latent_space_print(tmp_path / "base") == latent_space_print(tmp_path / "dec")
    assert file_fingerprint(tmp_path / "base") != file_fingerprint(tmp_path / "dec")
    capsys.readouterr()
    assert main(["train", str(data), str(tmp_path / "bad"), "--steps", "1", "--freeze-encoder", *args]) == 1
    err = capsys.readouterr().err
    assert "--init: a frozen encoder is the one of the model the run starts from" in err and "Traceback" not in err


def test_channels_sets_the_block_widths(tmp_path, make_wav, capsys) -> None:
    """--channels 16,64,128 trains a VAE of those widths; resuming it without them, or a width that is no
    multiple of the norm groups, is refused in one line."""
    data = tmp_path / "data"
    data.mkdir()
    make_wav("a.wav", 3.0).rename(data / "a.wav")
    args = ["--val", str(data), "--batch-size", "2", "--crop-frames", "64", "--quiet"]
    assert main(["train", str(data), str(tmp_path / "narrow"), "--steps", "1", "--channels", "16,64,128", *args]) == 0
    assert load_model(str(tmp_path / "narrow")).runner.config.block_out_channels == [16, 64, 128]
    capsys.readouterr()
    assert main(["train", str(data), str(tmp_path / "narrow"), "--steps", "2", "--resume", *args]) == 1
    assert "--channels: " in (err := capsys.readouterr().err) and "resume with the block widths it was trained" in err
    assert main(["train", str(data), str(tmp_path / "bad"), "--steps", "1", "--channels", "24,64,128", *args]) == 2
    assert "multiple of 16" in capsys.readouterr().err


def test_clean_fraction_decides_which_crops_get_quantizer_noise(tmp_path, make_wav, monkeypatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    make_wav("a.wav", 3.0).rename(data / "a.wav")

    def run(name: str, clean_fraction: float) -> dict:
        cfg = TrainConfig(steps=2, batch_size=2, crop_frames=64, clean_fraction=clean_fraction)
        train(data, tmp_path / name, cfg, val=data, log=lambda s: None)
        return _weights(tmp_path / name)

    noisy, clean = run("noisy", 0.0), run("clean", 1.0)
    monkeypatch.setattr(latentcodec.training.vae, "quant_noise", lambda z, bits: z)
    exact = run("exact", 0.0)
    assert all(torch.equal(exact[k], clean[k]) for k in exact)  # a clean batch is one without noise
    assert not all(torch.equal(exact[k], noisy[k]) for k in exact)


def test_train_kind_weights_recorded_and_checked(tmp_path, make_wav, capsys) -> None:
    data = tmp_path / "data"
    for kind in ("music", "speech"):
        (data / kind).mkdir(parents=True)
        make_wav(f"{kind}.wav", 2.0).rename(data / kind / f"{kind}.wav")
    args = ["train", str(data), str(tmp_path / "m"), "--steps", "1", "--batch-size", "2", "--crop-frames", "64",
            "--quiet", "--val", str(data / "music")]
    assert main([*args, "--kind-weights", "music=0.25,speech=0.75", "--clean-fraction", "0.5"]) == 0
    cfg = json.loads((tmp_path / "m" / "training.json").read_text())["config"]
    assert cfg["kind_weights"] == {"music": 0.25, "speech": 0.75} and cfg["clean_fraction"] == 0.5
    for bad in (["--kind-weights", "music:1"], ["--kind-weights", "music=0"], ["--clean-fraction", "1.5"]):
        assert main([*args, *bad]) == 2
        err = capsys.readouterr().err
        assert "Usage: alat train" in err and err.strip().splitlines()[-1].startswith("alat: error: ")


def test_narrowband_files_from_the_manifest_are_drawn_less(tmp_path) -> None:
    import numpy as np

    from latentcodec.training.vae import CropSampler, narrowband_files

    (tmp_path / "speech").mkdir()
    (tmp_path / "MANIFEST.tsv").write_text("file\tkind\tband\nspeech/a.flac\tspeech\tnarrow\n"
                                           "speech/b.flac\tspeech\twide\n")
    assert narrowband_files(tmp_path) == {tmp_path / "speech" / "a.flac"}
    narrow, wide = np.zeros((100, 64), np.float16), np.ones((100, 64), np.float16)
    sampler = CropSampler({"speech": [narrow, wide]}, {}, 50, seed=0, file_weights={"speech": [0.25, 1.0]})
    share = np.mean([sampler.pick() is narrow for _ in range(4000)])
    assert abs(share - 0.2) < 0.03  # 0.25 / (0.25 + 1) of equal-length files


def test_silent_fraction_draws_floor_crops_and_zero_keeps_the_crops() -> None:
    import numpy as np

    from latentcodec.constants import LOG_FLOOR
    from latentcodec.training.vae import CropSampler

    rng = np.random.default_rng(1)
    groups = {"music": [rng.normal(size=(300, 64)).astype(np.float16) for _ in range(3)]}
    plain = CropSampler(groups, {}, 50, seed=0).batch(64)
    assert torch.equal(CropSampler(groups, {}, 50, seed=0, silent_fraction=0.0).batch(64), plain)
    crops = CropSampler(groups, {}, 50, seed=0, silent_fraction=0.25).batch(400)
    silent = (crops == np.float32(np.log(LOG_FLOOR))).flatten(1).all(dim=1)
    assert 0.18 < silent.float().mean() < 0.32
    assert not (plain == np.float32(np.log(LOG_FLOOR))).flatten(1).all(dim=1).any()


class _Stop(Exception):
    pass


def test_resume_at_a_checkpoint_gives_the_uninterrupted_loss_curve(tmp_path, make_wav, monkeypatch) -> None:
    """Stopped right after the step-3 checkpoint (safetensors + JSON state) and resumed: every step's loss of
    steps 1-6 and the final weights are those of the run that never stopped."""
    data = tmp_path / "data"
    data.mkdir()
    make_wav("a.wav", 3.0).rename(data / "a.wav")
    cfg = TrainConfig(steps=6, batch_size=2, crop_frames=64, warmup=2, val_every=3, checkpoint_every=3,
                      vae_config={**SMALL_VAE_CONFIG, "block_out_channels": (16, 16, 16)})
    train(data, tmp_path / "whole", cfg, val=data, log=lambda s: None)
    save = latentcodec.training.vae.save_checkpoint

    def save_then_stop(*args) -> None:
        save(*args)
        raise _Stop

    monkeypatch.setattr(latentcodec.training.vae, "save_checkpoint", save_then_stop)
    with pytest.raises(_Stop):
        train(data, tmp_path / "cut", cfg, val=data, log=lambda s: None)
    monkeypatch.setattr(latentcodec.training.vae, "save_checkpoint", save)
    assert not (tmp_path / "cut" / "checkpoint.pt").exists() and (tmp_path / "cut" / CHECKPOINT).is_file()
    logged: list[str] = []
    train(data, tmp_path / "cut", cfg, val=data, resume=True, log=logged.append)
    assert "resumed at step 3" in logged
    whole, cut = (_curve(tmp_path / n) for n in ("whole", "cut"))
    assert [s for s, _ in cut] == [1, 2, 3, 4, 5, 6] and cut == whole
    w1, w2 = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def _curve(folder) -> list[tuple[int, float]]:
    """(step, training L1 in dB) of each line of a run's steps.jsonl."""
    return [(e["step"], e["l1_db"]) for e in map(json.loads, (folder / "steps.jsonl").read_text().splitlines())]


@pytest.mark.parametrize("command,extra", [("train", "train"), ("train-vocoder", "train"), ("export", "export")])
def test_without_torch_a_command_says_what_to_install(tmp_path, command: str, extra: str) -> None:
    """The plain install has no torch: the command ends in one line naming the extra to install."""
    import subprocess
    import sys

    args = [command, str(tmp_path / "graphs")] if command == "export" else [command, str(tmp_path), str(tmp_path / "out")]
    code = f"import sys; sys.modules['torch'] = None; from latentcodec.cli import main; sys.exit(main({args!r}))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        f"alat: error: this command needs torch (not installed): pip install 'latentcodec[{extra}]'"], r.stderr


def test_training_inputs_a_user_can_get_wrong_end_in_one_line(tmp_path, make_wav, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in ("train", "train-vocoder"):
        assert main([command, str(empty), str(tmp_path / "m"), "--steps", "1"]) == 1
        assert capsys.readouterr().err.strip().splitlines() == [f"alat: error: {empty}: no audio files to train on"]
    data = tmp_path / "data"
    data.mkdir()
    make_wav("a.wav", 1.0).rename(data / "a.wav")
    assert main(["train", str(data), str(tmp_path / "m"), "--steps", "1", "--val", str(empty), "-q"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"alat: error: --val: {empty}: no audio files to validate on"]
    assert main(["train", str(data), str(tmp_path / "m"), "--steps", "1", "-q"]) == 1  # its one file validates
    assert capsys.readouterr().err.strip().splitlines() == [
        f"alat: error: --val: {data}: its every 50th file of each kind validates, which leaves no file to train "
        f"on: give validation audio of its own"]
    for command in ("train", "train-vocoder"):
        for seed in ("-1", "1" * 20, "4294967296"):
            assert main([command, str(data), str(tmp_path / "m"), "--seed", seed]) == 2
            err = capsys.readouterr().err
            assert err.strip().splitlines()[-1] == (f"alat: error: Invalid value for '--seed': {seed} is not in the "
                                                    f"range 0<=x<=4294967295.") and "Traceback" not in err
    with pytest.raises(LatentCodecError, match="seed -1: give an integer from 0 to 4294967295") as e:
        train(data, tmp_path / "m", TrainConfig(seed=-1))
    assert e.value.param == "seed"
