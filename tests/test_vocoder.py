import numpy as np
import pytest
import torch

from latentcodec.audio.mel import log_mel
from latentcodec.metrics import log_mel_distance
from latentcodec.vocoders.griffinlim import GriffinLimVocoder
from latentcodec.vocoders.windows import Tiling, vocode_stream


def _ramp_vocoder(mel: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """A stand-in vocoder whose sample i is the absolute sample index that mel[:, 0] encodes."""
    start = mel[0, 0] * 160
    return (start + np.arange((len(mel) - 1) * 160)).astype(np.float64)


@pytest.mark.parametrize("frames,samples", [(5, 500), (100, 15000), (131, 20800), (264, 41000), (500, 79000)])
def test_windows_are_aligned_and_cross_faded_exactly(frames: int, samples: int) -> None:
    """Windows of 64 frames overlapping by 16, fed in blocks of 7: the output is the one signal."""
    mel = np.repeat(np.arange(frames, dtype=np.float64)[:, None], 4, axis=1)
    blocks = (mel[i:i + 7] for i in range(0, frames, 7))
    out = np.concatenate(list(vocode_stream(blocks, frames, samples, _ramp_vocoder, floor=-11.5,
                                            tiling=Tiling(window=64, overlap=16))))
    assert len(out) == samples
    assert np.allclose(out, np.arange(samples), atol=1e-6)


def test_griffin_lim_reaches_the_mel() -> None:
    torch.manual_seed(0)
    t = np.arange(32000) / 16000
    x = (0.4 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
    mel = log_mel(x)
    y = np.concatenate(list(vocode_stream(iter([mel]), len(mel), len(x), GriffinLimVocoder(32), float(np.log(1e-5)),
                                          Tiling(window=80, overlap=16))))
    assert len(y) == len(x)
    assert log_mel_distance(mel, log_mel(y.astype(np.float32)))["log_mel_l1_db"] < 3.0


@pytest.mark.parametrize("frames", [5, 7, 64, 1001])
def test_griffin_lims_own_stft_pair_is_torchs(frames: int) -> None:
    """The in-place STFT and its inverse give torch.stft's and torch.istft's values, ends included
    (from 5 frames: fewer do not cover the n_fft/2 samples that the reflect padding takes)."""
    from latentcodec.audio.mel import AUDIOLDM_MEL as C
    from latentcodec.vocoders.griffinlim import _StftPair

    gen = torch.Generator().manual_seed(frames)
    spec = torch.randn(frames, C.n_fft // 2 + 1, dtype=torch.complex64, generator=gen)
    spec[:, 0], spec[:, -1] = spec[:, 0].real.clone(), spec[:, -1].real.clone()  # a real signal's DC, Nyquist
    win = torch.hann_window(C.win)
    pair = _StftPair(frames, C, torch.device("cpu"))
    wave = torch.istft(spec.T, C.n_fft, C.hop, C.win, win, center=True, length=(frames - 1) * C.hop)
    assert torch.allclose(pair.inverse(spec), wave, atol=1e-6)
    rebuilt = torch.stft(wave, C.n_fft, C.hop, C.win, win, center=True, return_complex=True).T
    assert torch.allclose(pair.forward(), rebuilt, atol=1e-5)
