"""The magnitude-network vocoder (``magnitude-gl``): loaded by name or folder as Griffin-Lim with a learned
magnitude, through the whole decode path; no seam between its windows; refuses a mel of another STFT;
and training on a VAE's decoded mels pairs each mel frame with the samples under it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from latentcodec.audio.mel import AUDIOLDM_MEL, log_mel
from latentcodec.cli import main
from latentcodec.errors import ModelError
from latentcodec.metrics import log_mel_distance
from latentcodec.models.registry import DEFAULT_MODEL
from latentcodec.training.vocoder import PairCropSampler, batch_log_mel
from latentcodec.vocoders.registry import default_vocoder, load_vocoder, shipped_vocoders
from latentcodec.vocoders.griffinlim import GriffinLimVocoder, mel_to_linear
from latentcodec.vocoders.nets import MagnitudeNet, NetConfig, VocosGenerator, load_net, save_net
from latentcodec.vocoders.routed import routed_magnitude
from latentcodec.vocoders.windows import Tiling, vocode_stream

FLOOR = float(np.log(1e-5))
TINY = NetConfig(dim=16, intermediate=32, n_fft=1024)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("maggl")
    save_net(MagnitudeNet(TINY), folder, torch.float16)
    return folder


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone with noise and a stretch of digital silence."""
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 140 * (1 + 0.2 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    x = sum(0.2 / k * np.sin(k * phase) for k in range(1, 8))
    x = x + 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    x[len(x) // 3:len(x) // 2] = 0.0
    return x.astype(np.float32)


def test_loads_as_griffin_lim_with_a_learned_magnitude(tiny_folder) -> None:
    net = load_net(tiny_folder)
    assert isinstance(net, MagnitudeNet) and net.cfg == TINY
    mel = torch.from_numpy(log_mel(_speechlike(0.5)))
    assert net(mel[None]).shape == (1, AUDIOLDM_MEL.n_fft // 2 + 1, len(mel))
    voc = load_vocoder(str(tiny_folder))
    assert isinstance(voc, GriffinLimVocoder)
    y = voc(mel.numpy(), None)
    assert y.shape == ((len(mel) - 1) * 160,) and np.isfinite(y).all()


def test_refuses_a_network_of_another_stft(tmp_path) -> None:
    save_net(MagnitudeNet(NetConfig(dim=16, intermediate=32, n_fft=640)), tmp_path)
    with pytest.raises(ModelError, match="STFT of 640 points"):
        load_vocoder(str(tmp_path))


def _routed(folder) -> GriffinLimVocoder:
    """The tiny network in the first half of every window, the mel's inverse in the second."""
    from .test_routed_vocoder import _half_detector

    return GriffinLimVocoder(8, magnitude=routed_magnitude(_half_detector(), load_vocoder(str(folder)).magnitude,
                                                           mel_to_linear))


@pytest.mark.slow
@pytest.mark.parametrize("make", [lambda folder: GriffinLimVocoder(8),
                                  lambda folder: load_vocoder(str(folder), gl_iters=8), _routed],
                         ids=["griffinlim", "magnitude-gl", "routed"])
def test_no_seam_between_griffin_lim_windows(tiny_folder, make) -> None:
    """Griffin-Lim is not local, so windows cannot give the whole mel's samples; what they must not do is
    make the frames around a window border any worse than the same frames vocoded in one piece."""
    x = _speechlike(4.0, seed=1)
    mel = log_mel(x)
    voc = make(tiny_folder)
    whole = np.concatenate(list(vocode_stream(iter([mel]), len(mel), len(x), voc, FLOOR, Tiling(window=10_000))))
    parts = np.concatenate(list(vocode_stream(iter([mel]), len(mel), len(x), voc, FLOOR, Tiling(window=100, overlap=32))))
    near = np.concatenate([np.arange(b - 6, b + 6) for b in (100, 200, 300)])

    def border_db(y: np.ndarray) -> float:
        return log_mel_distance(mel[near], log_mel(y)[near])["log_mel_l1_db"]

    assert border_db(parts) < border_db(whole) + 0.5


@pytest.mark.parametrize("frames", [40, 101], ids=["inside", "whole-file"])
def test_pair_crops_put_each_mel_frame_over_its_samples(frames: int) -> None:
    """With the exact mel standing for the decoded one, a crop's mel is the mel of the crop's samples:
    inside the file, and for a crop of the whole file (101 frames) at both mirrored ends."""
    x = _speechlike(1.0)
    sampler = PairCropSampler({"speech": [(x, log_mel(x))]}, {"speech": 1.0}, frames=frames, seed=0)
    segs, mels = sampler.batch(4)
    assert segs.shape == (4, (frames - 1) * 160 + 1024) and mels.shape == (4, frames, 64)
    assert np.allclose(batch_log_mel(segs, center=False).numpy(), mels.numpy(), atol=1e-3)


@pytest.mark.slow
def test_cli_trains_on_decoded_mels(tmp_path, make_wav, capsys) -> None:
    """--architecture magnitude-gl --coded-by MODEL: a run that validates on the decoded mels and whose
    folder decodes; --init from the other architecture is refused in one line."""
    data, val = tmp_path / "data" / "speech", tmp_path / "val"
    data.mkdir(parents=True)
    val.mkdir()
    make_wav("a.wav", 2.0).rename(data / "a.wav")
    make_wav("speech_b.wav", 1.0).rename(val / "speech_b.wav")
    out = tmp_path / "v"
    common = ["--architecture", "magnitude-gl", "--steps", "2", "--batch-size", "2", "--crop-frames", "20",
              "--threads", "1", "--quiet"]
    assert main(["train-vocoder", str(tmp_path / "data"), str(out), "--val", str(val), "--coded-by",
                 "latentcodec-small-v2", "--val-every", "2", *common[:-1]]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    assert isinstance(load_vocoder(str(out)), GriffinLimVocoder)
    assert (out / "coded-latentcodec-small-v2.safetensors").is_file()  # a resumed or longer run does not code again
    assert main(["train-vocoder", str(tmp_path / "data"), str(out), "--coded-by", "latentcodec-small-v2", "--resume",
                 *common[:-1], "--steps", "3"]) == 0
    assert "decoded mels read from" in capsys.readouterr().err
    save_net(VocosGenerator(NetConfig(dim=16, intermediate=32)), tmp_path / "vocos")
    assert main(["train-vocoder", str(tmp_path / "data"), str(tmp_path / "w"), "--init", str(tmp_path / "vocos"), *common]) == 1
    assert "is a latentcodec-vocos, not a latentcodec-magnitude-gl" in capsys.readouterr().err


def test_old_models_keep_griffin_lim_and_the_default_pairs_with_a_shipped_vocoder() -> None:
    """Files of 0.1.0's model decode as they did (tests/test_compat.py pins the samples); the default
    model's files decode with a vocoder the package ships."""
    assert default_vocoder("latentcodec-small") == "griffinlim"
    assert default_vocoder(DEFAULT_MODEL) in shipped_vocoders()


def test_griffin_lim_iterations_default_per_vocoder(tmp_path) -> None:
    """A magnitude network ships with its own iteration count; a decode that asks overrides it."""
    save_net(MagnitudeNet(NetConfig(dim=16, intermediate=32, n_fft=1024, gl_iters=3)), tmp_path)
    assert load_vocoder(str(tmp_path)).n_iter == 3
    assert load_vocoder(str(tmp_path), gl_iters=5).n_iter == 5
    assert load_vocoder("griffinlim").n_iter == 16


def test_second_stage_is_not_pulled_back_to_the_decoded_mel() -> None:
    from latentcodec.training.vocoder import VocoderTrainConfig

    assert VocoderTrainConfig(architecture="magnitude-gl").net_config().nnls_iters == 10
    assert VocoderTrainConfig(architecture="magnitude-gl", coded_by="latentcodec-small-v2").net_config().nnls_iters == 0
    assert VocoderTrainConfig(architecture="magnitude-gl", coded_by="m", generator={"nnls_iters": 2}).net_config().nnls_iters == 2


def test_untrained_magnitude_vocoder_through_the_whole_decode(tiny_folder, tmp_path) -> None:
    """alat encode, then alat decode --vocoder FOLDER: the input's length, finite samples."""
    example = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"
    x, rate = sf.read(example, dtype="int16", frames=2 * 16000)
    sf.write(tmp_path / "in.wav", x, rate)
    assert main(["encode", str(tmp_path / "in.wav"), str(tmp_path / "x.alat"), "--quiet"]) == 0
    assert main(["decode", str(tmp_path / "x.alat"), str(tmp_path / "y.wav"), "--vocoder", str(tiny_folder),
                 "--gl-iters", "2", "--quiet"]) == 0
    y, _ = sf.read(tmp_path / "y.wav", dtype="float32")
    assert y.shape == x.shape and np.isfinite(y).all()
