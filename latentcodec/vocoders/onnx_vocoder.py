"""The shipped vocoders on the onnx runtime, without torch: Griffin-Lim and the mel's inverse on numpy, the
magnitude networks' graphs (``magnitude.onnx``, ``export.py``) on onnxruntime, the speech detector's
statistics on numpy. Each step is the torch one's (``griffinlim``, ``magnitude_net``, ``speech_detector``,
``routed``) in the same float32 arithmetic, and Griffin-Lim's random start phase is drawn from the same
Mersenne Twister stream as torch's ``manual_seed`` (numpy's RandomState seeds it alike), so both runtimes
start from one phase and decode to the same audio to float rounding.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from latentcodec.audio.mel import AUDIOLDM_MEL, MelConfig, hann, mel_basis
from latentcodec.constants import DEFAULT_GL_ITERS
from latentcodec.runtime.cores import map_rows
from latentcodec.runtime.onnx_vae import MAGNITUDE, session, weights_fingerprint

Magnitude = Callable[[np.ndarray], np.ndarray]  # (frames, n_mels) log-mel -> (bins, frames) magnitude


@lru_cache(maxsize=4)
def _mel_inverse(cfg: MelConfig) -> tuple[np.ndarray, np.ndarray]:
    """The filterbank's (bins, n_mels) pseudo-inverse and the filterbank, float32."""
    m = mel_basis(cfg)
    return np.linalg.pinv(m.astype(np.float64)).astype(np.float32), m


def mel_to_linear(log_mel: np.ndarray, cfg: MelConfig = AUDIOLDM_MEL, nnls_iters: int = 10,
                  init: np.ndarray | None = None) -> np.ndarray:
    """(frames, n_mels) natural-log mel -> (bins, frames) magnitude: ``nnls_iters`` multiplicative
    least-squares steps towards the mel from ``init`` (default: the pseudo-inverse)."""
    pinv, m = _mel_inverse(cfg)
    target = np.exp(log_mel.astype(np.float32)).T
    s = np.maximum(pinv @ target if init is None else init, np.float32(1e-8))
    projected = m.T @ target
    for _ in range(nnls_iters):
        s *= projected / (m.T @ (m @ s) + np.float32(1e-10))
    return s


def overlap_add_slabs(frames: np.ndarray, hop: int) -> tuple[int, int]:
    """The (rows, hop) zeroed output that :func:`overlap_add_into` needs for (frames, n) ``frames``."""
    f, n = frames.shape
    return f + -(-n // hop) - 1, hop


def overlap_add_into(out: np.ndarray, frames: np.ndarray, hop: int) -> np.ndarray:
    """(frames, n) into the zeroed (rows, hop) ``out`` (numpy or torch: only slicing and +=): row i added
    in from sample i * hop, as shifted adds of whole (frames, hop) slabs; returns ``out`` flattened."""
    f, n = frames.shape
    whole, rest = divmod(n, hop)
    for i in range(whole):
        out[i:i + f] += frames[:, i * hop:(i + 1) * hop]
    if rest:
        out[whole:whole + f, :rest] += frames[:, whole * hop:]
    return out.reshape(-1)


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """(frames, n) -> ((frames + ceil(n / hop) - 1) * hop,): row i added in from sample i * hop."""
    return overlap_add_into(np.zeros(overlap_add_slabs(frames, hop), frames.dtype), frames, hop)


@lru_cache(maxsize=8)
def _inverse_envelope(frames: int, cfg: MelConfig) -> np.ndarray:
    """1 / the overlap-added squared window over the samples ``frames`` centred frames cover."""
    win = hann(cfg.win)
    envelope = _overlap_add(np.broadcast_to(win * win, (frames, cfg.win)), cfg.hop)
    return 1 / envelope[cfg.n_fft // 2:cfg.n_fft // 2 + (frames - 1) * cfg.hop]


def _istft(spec: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """(frames, bins) complex -> the (frames - 1) * hop samples of the windowed overlap-add."""
    half, length, win = cfg.n_fft // 2, (len(spec) - 1) * cfg.hop, hann(cfg.win)
    frames = map_rows(lambda part: np.fft.irfft(part, n=cfg.n_fft, axis=1) * win, spec)
    return _overlap_add(frames, cfg.hop)[half:half + length] * _inverse_envelope(len(spec), cfg)


def _stft(wave: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """(frames, bins) centred STFT of ``wave``, its ends reflect-padded (torch.stft's center=True)."""
    padded = np.pad(wave, cfg.n_fft // 2, mode="reflect")
    frames, win = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft)[::cfg.hop], hann(cfg.win)
    return map_rows(lambda part: np.fft.rfft(part * win, axis=1), frames)


def random_phase(shape: tuple[int, int], seed: int) -> np.ndarray:
    """2 pi x torch.rand(shape) after torch.manual_seed(seed): the low 24 bits of each 32-bit draw of the
    Mersenne Twister seeded as torch seeds it, scaled to [0, 1), as float32."""
    draws = np.random.RandomState(seed).randint(0, 2 ** 32, size=shape[0] * shape[1], dtype=np.uint32)
    u = ((draws & np.uint32((1 << 24) - 1)).astype(np.float64) * 2.0 ** -24).astype(np.float32)
    return (np.float32(2 * np.pi) * u).reshape(shape)


def griffin_lim(mag: np.ndarray, n_iter: int = DEFAULT_GL_ITERS, momentum: float = 0.99,
                init_phase: np.ndarray | None = None, cfg: MelConfig = AUDIOLDM_MEL, seed: int = 0) -> np.ndarray:
    """Fast Griffin-Lim on a (bins, frames) magnitude, as ``griffinlim.griffin_lim``; float32 samples."""
    theta = random_phase(mag.shape, seed)
    angles = (np.cos(theta) + 1j * np.sin(theta)).astype(np.complex64)
    if init_phase is not None:
        k = min(init_phase.shape[1], mag.shape[1])
        angles[:, :k] = init_phase[:, :k]
    mag_t = np.ascontiguousarray(mag.T, np.float32)
    spec = np.ascontiguousarray((mag * angles).T)
    prev, keep = np.zeros_like(spec), np.float32(-momentum / (1 + momentum))
    for _ in range(n_iter):  # in place where it can be: each pass over the spectrum is a tenth of the time
        rebuilt = _stft(_istft(spec, cfg), cfg).astype(np.complex64, copy=False)
        np.multiply(prev, keep, out=spec)
        spec += rebuilt
        prev = rebuilt
        scale = np.abs(spec)
        np.maximum(scale, np.float32(1e-16), out=scale)  # the torch loop's sqrt(|s|^2 + 1e-32), near enough
        spec *= np.divide(mag_t, scale, out=scale)
    return _istft(spec, cfg).astype(np.float32)


def phase_of(wave: np.ndarray, cfg: MelConfig = AUDIOLDM_MEL) -> np.ndarray:
    """Unit-magnitude (bins, frames) STFT phase of a waveform, frames centred on multiples of hop."""
    spec = _stft(wave.astype(np.float32), cfg).T
    return (spec / (np.abs(spec) + np.float32(1e-16))).astype(np.complex64)


class GriffinLimVocoder:
    """``griffinlim.GriffinLimVocoder`` on numpy: log-mel window -> samples, warm-started from the previous
    window's; ``magnitude``: the mel's inverse by default, or a network's (:func:`net_magnitude`)."""

    def __init__(self, n_iter: int = DEFAULT_GL_ITERS, cfg: MelConfig = AUDIOLDM_MEL,
                 magnitude: Magnitude | None = None, seed: int = 0):
        self.n_iter, self.cfg, self.seed = n_iter, cfg, seed
        self.magnitude = magnitude or (lambda log_mel: mel_to_linear(log_mel, cfg))

    def __call__(self, log_mel: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        mag = self.magnitude(np.asarray(log_mel, np.float32))
        init = None
        if previous is not None and len(previous) > self.cfg.n_fft:
            init = phase_of(previous, self.cfg)[:, :-(self.cfg.n_fft // self.cfg.hop)]
        return griffin_lim(mag, self.n_iter, init_phase=init, cfg=self.cfg, seed=self.seed)


def net_magnitude(folder: Path, nnls_iters: int, cfg: MelConfig = AUDIOLDM_MEL) -> Magnitude:
    """The magnitude network in ``folder`` from its graph, then ``nnls_iters`` steps towards the mel."""
    s = session(folder / MAGNITUDE, weights_fingerprint(folder / "model.safetensors"))

    def magnitude(log_mel: np.ndarray) -> np.ndarray:
        init = s.run(None, {"log_mel": np.ascontiguousarray(log_mel[None], np.float32)})[0][0]
        return mel_to_linear(log_mel, cfg, nnls_iters, init=init)

    return magnitude


def _box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """(frames, n): the mean over [t - radius, t + radius] of the frames that exist, from a float64 sum."""
    sums = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x.astype(np.float64), 0)])
    t = np.arange(len(x))
    lo, hi = np.maximum(t - radius, 0), np.minimum(t + radius + 1, len(x))
    return ((sums[hi] - sums[lo]) / (hi - lo)[:, None]).astype(x.dtype)


def speech_weight(folder: Path, context: int, smooth: int) -> Callable[[np.ndarray], np.ndarray]:
    """``speech_detector.SpeechDetector`` of ``folder`` on numpy: (frames, n_mels) -> (frames,) in [0, 1]."""
    from safetensors.numpy import load_file

    p = {k: v.astype(np.float32) for k, v in load_file(str(folder / "detector.safetensors")).items()}

    def weight(log_mel: np.ndarray) -> np.ndarray:
        x = log_mel.astype(np.float32)
        level = x.mean(1, keepdims=True)
        flux = np.concatenate([np.zeros_like(x[:1]), np.abs(x[1:] - x[:-1])])
        mean, mean_sq = _box_mean(x, context), _box_mean(x * x, context)
        level_mean, level_sq = _box_mean(level, context), _box_mean(level * level, context)
        std = np.sqrt(np.maximum(mean_sq - mean * mean, 0))
        level_std = np.sqrt(np.maximum(level_sq - level_mean * level_mean, 0))
        feats = np.concatenate([mean - level_mean, std, _box_mean(flux, context), level_std], 1)
        logits = ((feats - p["mean"]) / p["scale"]) @ p["weight"] + p["bias"]
        return _box_mean((logits > 0).astype(np.float32)[:, None], smooth)[:, 0]

    return weight


def routed(folder: Path, part: Callable[[str], Magnitude], cfg: MelConfig = AUDIOLDM_MEL,
           gl_iters: int | None = None) -> GriffinLimVocoder:
    """The routed vocoder in ``folder`` (``routed.load_routed``'s rule): the speech network's magnitude
    weighted by the detector, the other's by the rest; a window all one runs that network alone."""
    c = json.loads((folder / "config.json").read_text())
    weight, speech, other = speech_weight(folder, c["context_frames"], c["smooth_frames"]), part(c["speech"]), \
        part(c["other"])

    def magnitude(log_mel: np.ndarray) -> np.ndarray:
        w = weight(log_mel)
        if (w == 1).all():
            return speech(log_mel)
        if (w == 0).all():
            return other(log_mel)
        o = other(log_mel)
        return o + w[None] * (speech(log_mel) - o)

    return GriffinLimVocoder(gl_iters or c["gl_iters"], cfg, magnitude)
