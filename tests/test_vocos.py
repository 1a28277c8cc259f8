"""The neural vocoder: chosen by name, exact output length through the codec's windowing, no seam between
windows, and stored weights (float16) that load back."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from latentcodec.audio.mel import log_mel
from latentcodec.errors import ModelError
from latentcodec.vocoders.registry import load_vocoder, vocoder_names
from latentcodec.vocoders.griffinlim import GriffinLimVocoder
from latentcodec.vocoders.nets import NetConfig, VocosGenerator, load_net, save_net
from latentcodec.vocoders.vocos import NeuralVocoder
from latentcodec.vocoders.windows import OVERLAP_FRAMES, Tiling, vocode_stream

FLOOR = float(np.log(1e-5))
TINY = NetConfig(dim=16, intermediate=32)  # the shipped layout (kernels, depth, n_fft), narrow


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vocos")
    save_net(VocosGenerator(TINY), folder, torch.float16)
    return folder


def _mel(frames: int, seed: int = 0) -> np.ndarray:
    t = np.arange((frames - 1) * 160) / 16000
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * 300 * t * (1 + t)) + 0.05 * rng.standard_normal(len(t))
    x[len(x) // 3:len(x) // 2] = 0.0  # digital silence: the mel's floor
    return log_mel(x.astype(np.float32))


def test_registry_names_and_unknown_name() -> None:
    assert vocoder_names()[:2] == ["griffinlim", "hifigan"]
    assert isinstance(load_vocoder("griffinlim"), GriffinLimVocoder)
    with pytest.raises(ModelError, match="griffinlim, hifigan"):
        load_vocoder("no-such-vocoder")
    with pytest.raises(ModelError, match="needs the model"):
        load_vocoder("hifigan")


@pytest.mark.parametrize("frames,samples", [(3, 300), (101, 16000), (131, 20800), (700, 111840)])
def test_untrained_vocoder_by_name_gives_exact_length(tiny_folder, frames: int, samples: int) -> None:
    """Through the registry (a folder name) and the codec's windowing, fed in blocks of 37 frames."""
    voc = load_vocoder(str(tiny_folder))
    assert isinstance(voc, NeuralVocoder)
    mel = _mel(frames)
    blocks = (mel[i:i + 37] for i in range(0, frames, 37))
    out = np.concatenate(list(vocode_stream(blocks, frames, samples, voc, FLOOR, Tiling(window=64))))
    assert out.dtype == np.float32 and len(out) == samples and np.isfinite(out).all()


def test_no_seam_between_windows(tiny_folder) -> None:
    """With the receptive field inside half the overlap, windowed output equals the whole mel vocoded at once."""
    assert NetConfig().reach_frames <= OVERLAP_FRAMES // 2
    voc = load_vocoder(str(tiny_folder))
    mel = _mel(400, seed=1)
    samples = (len(mel) - 1) * 160
    whole = np.concatenate(list(vocode_stream(iter([mel]), len(mel), samples, voc, FLOOR, Tiling(window=10_000))))
    parts = np.concatenate(list(vocode_stream(iter([mel]), len(mel), samples, voc, FLOOR,
                                              Tiling(window=64, overlap=OVERLAP_FRAMES))))
    assert np.abs(parts - whole).max() <= 1e-5 * np.abs(whole).max()


def test_float16_weights_load_as_float32(tiny_folder) -> None:
    gen = load_net(tiny_folder)
    assert gen.cfg == TINY and all(p.dtype == torch.float32 for p in gen.parameters())
    y = gen(torch.from_numpy(_mel(11))[None])
    assert y.shape == (1, 1600)


def test_vocoder_refuses_another_mel(tiny_folder) -> None:
    """A float32 floor (as .alat headers store it) is the same mel; another hop is not."""
    from latentcodec.audio.mel import MelConfig

    assert isinstance(load_vocoder(str(tiny_folder), MelConfig(log_floor=float(np.float32(1e-5)))), NeuralVocoder)
    with pytest.raises(ModelError, match="at hop 160"):
        load_vocoder(str(tiny_folder), MelConfig(hop=256))
