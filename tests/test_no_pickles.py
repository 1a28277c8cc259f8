"""No code from data: checkpoints and caches are safetensors, a pickle in a run folder never runs, and an
earlier release's plain checkpoint is read by torch's restricted unpickler only."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

import latentcodec.training.vae as vae_training
import latentcodec.training.vocoder as vocoder_training
from latentcodec.cli import main
from latentcodec.errors import ModelError
from latentcodec.models.loader import SMALL_VAE_CONFIG
from latentcodec.training.checkpoint import CHECKPOINT, LEGACY_CHECKPOINT, load_state, save_state
from latentcodec.training.vae import TrainConfig, train
from latentcodec.training.vocoder import VocoderTrainConfig, training_sampler

TINY = ["--channels", "16,16,16", "--batch-size", "2", "--crop-frames", "64", "--quiet"]


class Payload:
    """Unpickled, it makes the folder ``marker``: the proof that loading ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.fixture
def data(tmp_path: Path, make_wav) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    make_wav("a.wav", 3.0).rename(folder / "a.wav")
    return folder


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alat: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("command", ["train", "train-vocoder"])
def test_a_pickle_in_the_checkpoint_never_runs(tmp_path, data, capsys, command: str) -> None:
    out, marker = tmp_path / "out", tmp_path / "ran"
    out.mkdir()
    torch.save({"model": Payload(marker), "step": 1}, out / LEGACY_CHECKPOINT)
    args = [*TINY, "--val", str(data)] if command == "train" else ["--batch-size", "2", "--crop-frames", "20", "-q"]
    assert main([command, str(data), str(out), "--steps", "2", "--resume", *args]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "not loaded (a pickle can run code)" in line and not marker.exists()
    torch.load(out / LEGACY_CHECKPOINT, weights_only=False)  # the file is live: an unrestricted load runs it
    assert marker.is_dir()


@pytest.mark.slow
def test_an_earlier_releases_plain_checkpoint_resumes_exactly(tmp_path, data, monkeypatch) -> None:
    """A checkpoint.pt of tensors, containers and plain values (what releases before this one wrote) is read
    through weights_only=True and goes on as the uninterrupted run; the next checkpoint is safetensors."""
    cfg = TrainConfig(steps=4, batch_size=2, crop_frames=64, warmup=1, val_every=2, checkpoint_every=2,
                      vae_config={**SMALL_VAE_CONFIG, "block_out_channels": (16, 16, 16)})
    train(data, tmp_path / "whole", cfg, val=data, log=lambda s: None)
    save = vae_training.save_checkpoint

    def save_old_style(run, sampler, seconds, path) -> None:
        save(run, sampler, seconds, path)
        torch.save(load_state(path), path.with_name(LEGACY_CHECKPOINT))  # the pickle today's main writes
        path.unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(vae_training, "save_checkpoint", save_old_style)
    with pytest.raises(KeyboardInterrupt):
        train(data, tmp_path / "old", cfg, val=data, log=lambda s: None)
    monkeypatch.setattr(vae_training, "save_checkpoint", save)
    logged: list[str] = []
    train(data, tmp_path / "old", cfg, val=data, resume=True, log=logged.append)
    assert "resumed at step 2" in logged
    a, b = (load_state(tmp_path / n / CHECKPOINT)["model"] for n in ("whole", "old"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoints_that_are_not_one_end_in_one_line(tmp_path, data, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    bad = {b"not safetensors at all": "not a training checkpoint", None: "its state does not fit this run"}
    for content, says in bad.items():
        if content is None:
            model = AutoencoderKL(**{**SMALL_VAE_CONFIG, "block_out_channels": (16, 16, 16)}).state_dict()
            save_state({"model": model, "opt": {"state": "three"}, "step": 3, "history": []}, out / CHECKPOINT)
        else:
            (out / CHECKPOINT).write_bytes(content)
        assert main(["train", str(data), str(out), "--steps", "2", "--resume", "--val", str(data), *TINY]) == 1
        assert says in _one_error_line(capsys.readouterr().err)


def test_state_round_trips_exactly(tmp_path) -> None:
    rng = np.random.default_rng(5)
    rng.random()
    state = {"t": torch.arange(6).reshape(2, 3), "empty": torch.zeros(0), "scalar": torch.tensor(1.5),
             "opt": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"params": [0], "betas": (0.8, 0.9),
                                                                                  "foreach": None}]},
             "rng": rng.bit_generator.state, "history": [{"v": float("nan"), "name": "x"}], "flag": True}
    save_state(state, tmp_path / "s.safetensors")
    back = load_state(tmp_path / "s.safetensors")
    assert back["opt"]["param_groups"][0]["betas"] == (0.8, 0.9) and 0 in back["opt"]["state"]
    assert back["rng"] == state["rng"] and back["flag"] is True and np.isnan(back["history"][0]["v"])
    assert torch.equal(back["t"], state["t"]) and back["empty"].shape == (0,) and back["scalar"].item() == 1.5
    with pytest.raises(ModelError, match="not a training checkpoint"):
        load_state(tmp_path / "missing.safetensors")


def test_the_coded_mels_cache_is_safetensors_and_an_old_pickle_is_never_read(tmp_path, data, monkeypatch) -> None:
    out, marker = tmp_path / "out", tmp_path / "ran"
    out.mkdir()
    cache = out / "coded-m.safetensors"
    torch.save(Payload(marker), cache.with_suffix(".pt"))
    calls: list[int] = []

    def fake_pairs(groups, model, log):
        calls.append(1)
        return {k: [(w, np.zeros((len(w) // 160 + 1, 64), np.float16)) for w in v] for k, v in groups.items()}

    monkeypatch.setattr(vocoder_training, "coded_pairs", fake_pairs)
    cfg, logged = VocoderTrainConfig(coded_by="m", crop_frames=20), []
    training_sampler(data, cfg, logged.append, cache)
    assert not marker.exists() and any("not read (a pickle can run code)" in s for s in logged)
    sampler, _ = training_sampler(data, cfg, logged.append, cache)  # read back, not coded again
    assert calls == [1] and cache.is_file() and f"decoded mels read from {cache}" in logged
    assert sampler.batch(2)[1].shape == (2, 21, 64)
    monkeypatch.setattr(vocoder_training, "load_waves", lambda folder: {"all": [np.zeros(16000, np.float16)]})
    training_sampler(data, cfg, logged.append, cache)  # other data: coded again, not misread
    assert calls == [1, 1] and logged[-2].endswith("not of this data: coding again")


# ---- model folders: safetensors only, the config checked against the weights before anything is built ----

@pytest.fixture
def folder(tmp_path: Path, tiny_model: str) -> Path:
    """A copy of the tiny model (VAE in vae/, HiFi-GAN in vocoder/) to damage."""
    shutil.copytree(tiny_model, tmp_path / "model")
    return tmp_path / "model"


def _edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _encode(capsys, folder: Path, wav: Path, out: Path) -> tuple[int, str]:
    code = main(["encode", str(wav), str(out), "--model", str(folder), "-q", "-y"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("changes,says", [
    ({"layers_per_block": 5000}, "layers_per_block is 5000; a model of this kind needs an integer from 1 to 8"),
    ({"layers_per_block": 2}, "diffusion_pytorch_model.safetensors: 152 tensors where its config implies 200"),
    ({"block_out_channels": [8, 16, 10 ** 400]}, "block_out_channels[2] is 1000000000000000000000000000000000000..."),
    ({"latent_channels": 4},
     "tensor encoder.conv_out.weight is [16, 16, 3, 3], where its config implies [8, 16, 3, 3]"),
    ({"in_channels": 3}, "not a mel VAE: in_channels is 3, not 1"),
    ({"norm_num_groups": 3}, "its config does not describe a network (ValueError: num_channels (8) must be divisible"),
])
def test_a_config_that_does_not_fit_its_weights_ends_in_one_line_quickly(capsys, folder, make_wav, changes: dict,
                                                                          says: str) -> None:
    _edit_json(folder / "vae" / "config.json", **changes)
    t = time.perf_counter()
    code, err = _encode(capsys, folder, make_wav("a.wav", 1.0), folder.parent / "a.alat")
    assert code == 1 and says in _one_error_line(err) and time.perf_counter() - t < 10
    assert not (folder.parent / "a.alat").exists()


def test_a_pickled_bin_is_never_loaded(capsys, folder, make_wav) -> None:
    marker = folder.parent / "ran"
    (folder / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    torch.save({"encoder.conv_in.weight": Payload(marker)}, folder / "vae" / "diffusion_pytorch_model.bin")
    code, err = _encode(capsys, folder, make_wav("a.wav", 1.0), folder.parent / "a.alat")
    assert code == 1 and "only, never from a pickled .bin" in _one_error_line(err) and not marker.exists()


def test_a_vocoder_folder_is_checked_before_it_is_built(capsys, tmp_path) -> None:
    from latentcodec.vocoders.registry import load_vocoder, shipped_vocoders

    net = tmp_path / "net"
    shutil.copytree(shipped_vocoders()["latentcodec-maggl-v1"], net)
    _edit_json(net / "config.json", dim=10 ** 6)
    with pytest.raises(ModelError, match="dim is 1000000; a model of this kind needs an integer from 1 to 4096"):
        load_vocoder(str(net))
    _edit_json(net / "config.json", dim=256)
    with pytest.raises(ModelError, match="tensor embed.weight is"):
        load_vocoder(str(net))
    routed = tmp_path / "routed"
    shutil.copytree(shipped_vocoders()["latentcodec-maggl-routed-v3"], routed)
    _edit_json(routed / "config.json", speech=str(routed))  # a part naming its own folder
    with pytest.raises(ModelError, match="its part '.*' is not a magnitude network"):
        load_vocoder(str(routed))


def test_a_hifigan_config_beyond_its_weights_is_refused(folder) -> None:
    from latentcodec.models.loader import load_model
    from latentcodec.vocoders.registry import load_vocoder

    model = load_model(str(folder))
    _edit_json(folder / "vocoder" / "config.json", upsample_initial_channel=10 ** 5)
    with pytest.raises(ModelError, match="upsample_initial_channel is 100000"):
        load_vocoder("hifigan", model=model)
    _edit_json(folder / "vocoder" / "config.json", upsample_initial_channel=32)
    with pytest.raises(ModelError, match="where its config implies"):
        load_vocoder("hifigan", model=model)


# ---- coder.json: checked where it is used (encode); decode never reads it ----

DEEP = "[" * 100_000 + "]" * 100_000
TABLES = {
    b"not json": "not a readable coder table (JSONDecodeError",
    b"\xff\xfe{}": "not a readable coder table (UnicodeDecodeError",
    DEEP.encode(): "not a readable coder table (RecursionError",
    b'{"transform": [[1, 0], [0]]}': "needs a 'transform' of 8 rows of 8 numbers",
    b'{"transform": [["a"]]}': "needs a 'transform' of 8 rows of 8 numbers",
    b'{"model": "x"}': "needs a 'transform' of 8 rows of 8 numbers",
    b'[1, 2]': "needs a 'transform' of 8 rows of 8 numbers",
}


@pytest.mark.parametrize("bad", [*TABLES, "NaN", "1e300", "70000"])
def test_a_bad_coder_table_ends_encode_in_one_line_and_never_stops_decode(capsys, folder, make_wav, bad) -> None:
    wav, alat = make_wav("a.wav", 1.0), folder.parent / "a.alat"
    assert _encode(capsys, folder, wav, alat)[0] == 0
    if isinstance(bad, str):  # one entry of the identity replaced: NaN, beyond float64's square, beyond float16
        rows = np.eye(8).tolist()
        rows[3][3] = float(bad)
        content, says = json.dumps({"transform": rows}).encode(), "its transform is not orthonormal"
    else:
        content, says = bad, TABLES[bad]
    (folder / "vae" / "coder.json").write_bytes(content)
    code, err = _encode(capsys, folder, wav, folder.parent / "b.alat")
    assert code == 1 and says in _one_error_line(err) and f"{folder / 'vae' / 'coder.json'}: " in err
    assert main(["decode", str(alat), str(folder.parent / "a.wav.out.wav"), "--model", str(folder), "-q",
                 "--gl-iters", "2"]) == 0
    assert capsys.readouterr().err == ""


def test_a_good_coder_table_is_used(folder, make_wav) -> None:
    from latentcodec.models.loader import load_model

    k = np.linalg.qr(np.random.default_rng(0).standard_normal((8, 8)))[0]
    (folder / "vae" / "coder.json").write_text(json.dumps({"transform": k.tolist()}))
    model = load_model(str(folder))
    assert np.allclose(model.coder["transform"], k)


def test_an_old_checkpoint_needs_the_torch_whose_restricted_unpickler_is_safe(tmp_path, monkeypatch) -> None:
    from latentcodec.training.checkpoint import load_legacy_state

    torch.save({"step": 1}, tmp_path / LEGACY_CHECKPOINT)
    assert load_legacy_state(tmp_path / LEGACY_CHECKPOINT) == {"step": 1}
    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")  # CVE-2025-32434: weights_only=True could run code
    with pytest.raises(ModelError, match="read only with torch 2.6 or later"):
        load_legacy_state(tmp_path / LEGACY_CHECKPOINT)
