from functools import partial

import librosa
import numpy as np
import torch

from latentcodec.audio.mel import (
    AUDIOLDM_MEL,
    log_mel,
    log_mel_frames,
    mel_basis,
    normalization_stats,
    num_frames,
)
from latentcodec.models.loader import load_model


def _librosa_log_mel(x: np.ndarray) -> np.ndarray:
    """AudioLDM's front end written independently with librosa."""
    spec = np.abs(librosa.stft(x, n_fft=1024, hop_length=160, win_length=1024, window="hann", center=True,
                               pad_mode="reflect"))
    fb = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=64, fmin=0.0, fmax=8000.0, htk=False, norm="slaney")
    return np.log(np.maximum(fb @ spec, 1e-5)).T


def test_filterbank_matches_librosa() -> None:
    ref = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=64, fmin=0.0, fmax=8000.0, htk=False, norm="slaney")
    assert np.allclose(mel_basis(AUDIOLDM_MEL), ref, atol=1e-7)


def test_log_mel_matches_librosa() -> None:
    rng = np.random.default_rng(0)
    x = (0.2 * rng.standard_normal(16000 * 2 + 123)).astype(np.float32)
    ours = log_mel(x)
    assert ours.shape == (len(x) // 160 + 1, 64) == (num_frames(len(x)), 64)
    assert np.allclose(ours, _librosa_log_mel(x), atol=1e-4)


def test_frame_ranges_equal_slices_of_the_whole() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(16000 * 3).astype(np.float32)
    whole = log_mel(x)
    # Equal to float32 rounding: BLAS may take another kernel for a matrix of a few frames (it does on
    # AMD EPYC), which changes the last bits; a wrong frame or a wrong mirror is off by far more.
    same = partial(np.testing.assert_allclose, rtol=0, atol=1e-5)
    same(log_mel_frames(x, 100, 250), whole[100:250])
    edge = log_mel_frames(x, -32, 40)
    same(edge[32:], whole[:40])
    same(edge[:32], whole[32:0:-1])  # mirrored about frame 0
    tail = log_mel_frames(x, len(whole) - 3, len(whole) + 2)
    same(tail, whole[[-3, -2, -1, -2, -3]])
    same(log_mel_frames(x[:1], -2, 3), np.repeat(log_mel(x[:1]), 5, axis=0))
    off, gain = normalization_stats(x + 0.1)
    assert np.allclose(log_mel_frames(x + 0.1, 10, 20, offset=off, gain=gain),
                       log_mel(((x + 0.1 - off) * gain).astype(np.float32))[10:20], atol=1e-5)


def test_normalization_peak_half_and_silence() -> None:
    x = np.array([0.1, 0.3, -0.5, 0.1], np.float32)
    off, gain = normalization_stats(x)
    assert np.isclose(np.max(np.abs((x - off) * gain)), 0.5)
    assert normalization_stats(np.zeros(10, np.float32)) == (0.0, 1.0)


def test_vae_layout_time_is_height(tiny_model: str) -> None:
    """(B, 1, time, mel) in, (B, 8, time/4, mel/4) out: a 5 s window gives 8 x 125 x 16."""
    m = load_model(tiny_model)
    z = m.module.encode(torch.zeros(2, 1, 500, 64)).latent_dist.mode()
    assert tuple(z.shape) == (2, 8, 125, 16)
    assert tuple(m.module.decode(z).sample.shape) == (2, 1, 500, 64)
