"""The routed vocoder: its detector tells a speech-like signal from a steady one after a fit, a window
that is all one kind runs that network alone, a mixed one blends the two magnitudes, and a router folder
decodes by path through load_vocoder and alat decode."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from latentcodec.audio.mel import log_mel
from latentcodec.cli import main
from latentcodec.vocoders.registry import load_vocoder
from latentcodec.vocoders.griffinlim import GriffinLimVocoder
from latentcodec.vocoders.nets import MagnitudeNet, NetConfig, save_net
from latentcodec.vocoders.routed import routed_magnitude, save_router
from latentcodec.vocoders.speech_detector import DetectorConfig, SpeechDetector, fit_detector, mel_features

from .test_magnitude_net import _speechlike

N_FEATURES = 3 * 64 + 1


def _steady(seconds: float, seed: int = 0) -> np.ndarray:
    """A sustained chord with a little noise: no gaps, no glide."""
    t = np.arange(int(seconds * 16000)) / 16000
    x = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0))
    return (x + 0.01 * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


def _constant(logit: float) -> SpeechDetector:
    """A detector that says ``logit`` of every frame."""
    return SpeechDetector({"mean": torch.zeros(N_FEATURES), "scale": torch.ones(N_FEATURES),
                           "weight": torch.zeros(N_FEATURES), "bias": torch.tensor(logit)})


def test_a_fitted_detector_tells_speech_from_a_steady_chord() -> None:
    """Fitted on two clips of each, it routes other clips of each the right way (an unfitted one cannot:
    its single constant answer is wrong for one of them)."""
    speech = [log_mel(_speechlike(3.0, seed=s)) for s in (0, 1)]
    steady = [log_mel(_steady(3.0, seed=s)) for s in (0, 1)]
    feats = torch.cat([mel_features(torch.from_numpy(m)) for m in speech + steady])
    labels = torch.cat([torch.full((len(m),), float(i < 2)) for i, m in enumerate(speech + steady)])
    det = fit_detector(feats, labels, torch.ones(len(labels)))
    assert float(det(torch.from_numpy(log_mel(_speechlike(3.0, seed=5)))).mean()) > 0.9
    assert float(det(torch.from_numpy(log_mel(_steady(3.0, seed=5)))).mean()) < 0.1


def test_a_pure_window_runs_one_network_and_a_mixed_one_blends_them() -> None:
    mel = torch.from_numpy(log_mel(_speechlike(1.0)))
    calls: list[str] = []

    def net(name: str, level: float):
        def magnitude(m: torch.Tensor) -> torch.Tensor:
            calls.append(name)
            return torch.full((513, len(m)), level)
        return magnitude

    speech, other = net("speech", 2.0), net("other", 1.0)
    assert torch.equal(routed_magnitude(_constant(20.0), speech, other)(mel), torch.full((513, len(mel)), 2.0))
    assert torch.equal(routed_magnitude(_constant(-20.0), speech, other)(mel), torch.full((513, len(mel)), 1.0))
    assert calls == ["speech", "other"]

    mixed = routed_magnitude(_half_detector(), speech, other)(mel)
    w = mixed[0] - 1.0
    assert w[0] == 1 and w[-1] == 0 and torch.all(w[1:] <= w[:-1]) and 0 < float(w[len(w) // 2]) < 1


def _half_detector() -> SpeechDetector:
    """Speech in the first half of every window's frames, decisions averaged over 5 frames each side."""
    det = _constant(0.0)
    det.cfg = DetectorConfig(smooth_frames=5)
    det.logits = lambda log_mel: torch.where(torch.arange(len(log_mel)) < len(log_mel) // 2, 1.0, -1.0)
    return det


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory):
    """A router folder over two tiny untrained magnitude networks, named by path."""
    root = tmp_path_factory.mktemp("routed")
    tiny = NetConfig(dim=16, intermediate=32, n_fft=1024)
    for seed, name in enumerate(("speech-net", "other-net")):
        torch.manual_seed(seed)
        save_net(MagnitudeNet(tiny), root / name, torch.float16)
    save_router(root / "router", str(root / "speech-net"), str(root / "other-net"), _constant(20.0), gl_iters=4)
    return root


def test_a_router_folder_loads_and_routes(router) -> None:
    voc = load_vocoder(str(router / "router"))
    assert isinstance(voc, GriffinLimVocoder) and voc.n_iter == 4
    mel = torch.from_numpy(log_mel(_speechlike(0.5)))
    speech = load_vocoder(str(router / "speech-net")).magnitude(mel)
    assert torch.equal(voc.magnitude(mel), speech)  # the detector says speech of every frame
    assert not torch.equal(load_vocoder(str(router / "other-net")).magnitude(mel), speech)


def test_a_router_through_the_whole_decode(router, tmp_path) -> None:
    """alat encode, then alat decode --vocoder ROUTER: the input's length, finite samples."""
    x = _speechlike(3.0)
    sf.write(tmp_path / "in.wav", x, 16000)
    assert main(["encode", "--quiet", str(tmp_path / "in.wav"), str(tmp_path / "a.alat")]) == 0
    assert main(["decode", "--quiet", "--vocoder", str(router / "router"), str(tmp_path / "a.alat"),
                 str(tmp_path / "out.wav")]) == 0
    y, sr = sf.read(tmp_path / "out.wav")
    assert sr == 16000 and len(y) == len(x) and np.isfinite(y).all()

