import threading

import numpy as np
import pytest
import torch

from latentcodec.audio.mel import log_mel
from latentcodec.metrics import log_mel_distance
from latentcodec.vocoders.griffinlim import GriffinLimVocoder, NumpyGriffinLimVocoder, mel_to_linear_np
from latentcodec.vocoders.windows import StagedVocoder, Tiling, vocode_stream


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


class _StagedRamp:
    """The ramp vocoder in two stages, recording where each stage ran and what the second was given."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.previous: list[np.ndarray | None] = []

    def magnitude(self, log_mel: np.ndarray) -> np.ndarray:
        self.threads.append(threading.current_thread().name)
        return log_mel

    def phase(self, magnitude: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        self.previous.append(previous)
        return _ramp_vocoder(magnitude, previous)


@pytest.mark.parametrize("frames,samples", [(5, 500), (264, 41000)])
def test_a_staged_vocoder_gets_the_windows_a_plain_one_does(frames: int, samples: int) -> None:
    """The first stage runs a window ahead on another thread; the samples, and the previous window's samples
    each second stage is given, are a plain vocoder's."""
    mel = np.repeat(np.arange(frames, dtype=np.float64)[:, None], 4, axis=1)
    given: list[np.ndarray | None] = []

    def plain(m: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        given.append(previous)
        return _ramp_vocoder(m, previous)

    staged, tiling = _StagedRamp(), Tiling(window=64, overlap=16)
    assert isinstance(staged, StagedVocoder) and not isinstance(plain, StagedVocoder)
    want = np.concatenate(list(vocode_stream(iter([mel]), frames, samples, plain, -11.5, tiling)))
    got = np.concatenate(list(vocode_stream((mel[i:i + 7] for i in range(0, frames, 7)), frames, samples, staged,
                                            -11.5, tiling)))
    assert got.tobytes() == want.tobytes() and len(staged.previous) == len(given) > 0
    assert all((a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
               for a, b in zip(staged.previous, given))
    assert set(staged.threads) == {"latentcodec-magnitude_0"}


def test_numpy_griffin_lim_decodes_the_same_staged_or_not() -> None:
    """Windows warm-started from each other: the same samples, bit for bit, in two stages or called whole."""
    t = np.arange(48000) / 16000
    x = (0.4 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)
    mel, tiling = log_mel(x), Tiling(window=100, overlap=16)
    vocoder = NumpyGriffinLimVocoder(4, magnitude=lambda m: mel_to_linear_np(m, nnls_iters=2))
    want = np.concatenate(list(vocode_stream(iter([mel]), len(mel), len(x), vocoder.__call__, -11.5, tiling)))
    got = np.concatenate(list(vocode_stream(iter([mel]), len(mel), len(x), vocoder, -11.5, tiling)))
    assert got.tobytes() == want.tobytes()


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
