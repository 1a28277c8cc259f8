"""Momentum Griffin-Lim on a linear magnitude, and the mel's inverse that gives it one, in two forms side by
side: on numpy (the onnx runtime's: no torch imported) and on torch (any device; training's consistency
loss runs it too). The numpy form is the torch one's float32 arithmetic, and its random start phase is drawn
from the same Mersenne Twister stream as torch's ``manual_seed`` (:func:`random_phase`), so both runtimes
start from one phase and decode to the same audio to float rounding (tests/test_runtimes.py). Torch is
imported inside the functions that run on it.

Griffin-Lim needs a linear magnitude: the mel filterbank is inverted once per window with its
pseudo-inverse followed by a few multiplicative non-negative least-squares updates (all matrix
products, no solver per frame). Each window starts from the phase of the previous window's output
where they overlap, so the cross-fade joins two signals of the same phase.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

import numpy as np

from latentcodec.audio.mel import AUDIOLDM_MEL, MelConfig, hann, mel_basis, windowed_rfft
from latentcodec.constants import DEFAULT_GL_ITERS
from latentcodec.runtime.cores import map_rows

if TYPE_CHECKING:
    import torch

Magnitude = Callable[[np.ndarray], np.ndarray]  # (frames, n_mels) log-mel -> (bins, frames) magnitude, numpy
TorchMagnitude = Callable[["torch.Tensor"], "torch.Tensor"]  # the same on torch


def _overlap_add(frames: Any, hop: int) -> Any:
    """(frames, n) numpy or torch -> ((frames + ceil(n / hop) - 1) * hop,): row i added in from sample i * hop,
    as shifted adds of whole (frames, hop) slabs (far faster on a CPU than torch.istft's col2im for one signal)."""
    f, n = frames.shape
    whole, rest = divmod(n, hop)
    shape = (f + -(-n // hop) - 1, hop)
    out = frames.new_zeros(shape) if hasattr(frames, "new_zeros") else np.zeros(shape, frames.dtype)
    for i in range(whole):
        out[i : i + f] += frames[:, i * hop : (i + 1) * hop]
    if rest:
        out[whole : whole + f, :rest] += frames[:, whole * hop :]
    return out.reshape(-1)


# ---- numpy: the onnx runtime's form ----


@lru_cache(maxsize=4)
def _mel_inverse_np(cfg: MelConfig) -> tuple[np.ndarray, np.ndarray]:
    """The filterbank's (bins, n_mels) pseudo-inverse and the (n_mels, bins) filterbank, float32."""
    m = mel_basis(cfg)
    return np.linalg.pinv(m.astype(np.float64)).astype(np.float32), m


def mel_to_linear_np(
    log_mel: np.ndarray, cfg: MelConfig = AUDIOLDM_MEL, nnls_iters: int = 10, init: np.ndarray | None = None
) -> np.ndarray:
    """:func:`mel_to_linear` on numpy: (frames, n_mels) natural-log mel -> (bins, frames) magnitude."""
    pinv, m = _mel_inverse_np(cfg)
    target = np.exp(log_mel.astype(np.float32)).T
    s = np.maximum(pinv @ target if init is None else init, np.float32(1e-8))
    projected = m.T @ target
    for _ in range(nnls_iters):
        s *= projected / (m.T @ (m @ s) + np.float32(1e-10))
    return s


@lru_cache(maxsize=8)
def _inverse_envelope(frames: int, cfg: MelConfig) -> np.ndarray:
    """1 / the overlap-added squared window over the (frames - 1) * hop samples ``frames`` centred frames cover."""
    win = hann(cfg.win)
    envelope = _overlap_add(np.broadcast_to(win * win, (frames, cfg.win)), cfg.hop)
    return 1 / envelope[cfg.n_fft // 2 : cfg.n_fft // 2 + (frames - 1) * cfg.hop]


def _istft_np(spec: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """(frames, bins) complex -> the (frames - 1) * hop samples of the windowed overlap-add."""
    half, length, win = cfg.n_fft // 2, (len(spec) - 1) * cfg.hop, hann(cfg.win)
    frames = map_rows(lambda part: np.fft.irfft(part, n=cfg.n_fft, axis=1) * win, spec)
    return _overlap_add(frames, cfg.hop)[half : half + length] * _inverse_envelope(len(spec), cfg)


def _stft_np(wave: np.ndarray, cfg: MelConfig) -> np.ndarray:
    """(frames, bins) centred STFT of ``wave``, its ends reflect-padded (torch.stft's center=True)."""
    padded = np.pad(wave, cfg.n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft)[:: cfg.hop]
    return map_rows(lambda part: windowed_rfft(part, cfg), frames)


def random_phase(shape: tuple[int, int], seed: int) -> np.ndarray:
    """2 pi x torch.rand(shape) after torch.manual_seed(seed): the low 24 bits of each 32-bit draw of the
    Mersenne Twister seeded as torch seeds it, scaled to [0, 1), as float32."""
    draws = np.random.RandomState(seed).randint(0, 2**32, size=shape[0] * shape[1], dtype=np.uint32)
    u = ((draws & np.uint32((1 << 24) - 1)).astype(np.float64) * 2.0**-24).astype(np.float32)
    return (np.float32(2 * np.pi) * u).reshape(shape)


def griffin_lim_np(
    mag: np.ndarray,
    n_iter: int = DEFAULT_GL_ITERS,
    momentum: float = 0.99,
    init_phase: np.ndarray | None = None,
    cfg: MelConfig = AUDIOLDM_MEL,
    seed: int = 0,
) -> np.ndarray:
    """:func:`griffin_lim` on numpy: a (bins, frames) magnitude -> (frames - 1) * hop float32 samples."""
    theta = random_phase(mag.shape, seed)
    angles = (np.cos(theta) + 1j * np.sin(theta)).astype(np.complex64)
    if init_phase is not None:
        k = min(init_phase.shape[1], mag.shape[1])
        angles[:, :k] = init_phase[:, :k]
    mag_t = np.ascontiguousarray(mag.T, np.float32)
    spec = np.ascontiguousarray((mag * angles).T)
    prev, keep = np.zeros_like(spec), np.float32(-momentum / (1 + momentum))
    for _ in range(n_iter):  # in place where it can be: each pass over the spectrum is a tenth of the time
        rebuilt = _stft_np(_istft_np(spec, cfg), cfg).astype(np.complex64, copy=False)
        np.multiply(prev, keep, out=spec)
        spec += rebuilt
        prev = rebuilt
        scale = np.abs(spec)
        np.maximum(scale, np.float32(1e-16), out=scale)  # the torch loop's sqrt(|s|^2 + 1e-32), near enough
        spec *= np.divide(mag_t, scale, out=scale)
    return _istft_np(spec, cfg).astype(np.float32)


def phase_of_np(wave: np.ndarray, cfg: MelConfig = AUDIOLDM_MEL) -> np.ndarray:
    """Unit-magnitude (bins, frames) STFT phase of a waveform, frames centred on multiples of hop."""
    spec = _stft_np(wave.astype(np.float32), cfg).T
    return (spec / (np.abs(spec) + np.float32(1e-16))).astype(np.complex64)


class NumpyGriffinLimVocoder:
    """:class:`GriffinLimVocoder` on numpy: log-mel window -> samples, warm-started from the previous window's.
    ``magnitude``: the mel's inverse by default, or a network's graph (``magnitude_net.graph_magnitude``)."""

    def __init__(
        self,
        n_iter: int = DEFAULT_GL_ITERS,
        cfg: MelConfig = AUDIOLDM_MEL,
        magnitude: Magnitude | None = None,
        seed: int = 0,
    ):
        self.n_iter, self.cfg, self.seed = n_iter, cfg, seed
        self.magnitude = magnitude or partial(mel_to_linear_np, cfg=cfg)

    def __call__(self, log_mel: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        return self.phase(self.magnitude(np.asarray(log_mel, np.float32)), previous)

    def phase(self, magnitude: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Griffin-Lim over a (bins, frames) magnitude, warm-started from the previous window's samples:
        ``windows.StagedVocoder``'s second stage (the first: ``magnitude``)."""
        init = None
        if previous is not None and len(previous) > self.cfg.n_fft:
            init = phase_of_np(previous, self.cfg)[:, : -(self.cfg.n_fft // self.cfg.hop)]
        return griffin_lim_np(magnitude, self.n_iter, init_phase=init, cfg=self.cfg, seed=self.seed)


# ---- torch: the torch runtime's form (any device) ----


@lru_cache(maxsize=4)
def _mel_inverse(cfg: MelConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The filterbank's (bins, n_mels) pseudo-inverse, and the filterbank and its transpose as sparse
    CSR matrices: each bin lies under at most two filters (997 of 32,832 entries are non-zero at 64 x
    513), so the NNLS steps' products take a quarter of their dense time."""
    import torch

    m = torch.from_numpy(mel_basis(cfg)).double()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": products of CSR by dense are what we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.linalg.pinv(m).float(), m.float().to_sparse_csr(), m.T.float().to_sparse_csr()


def mel_to_linear(
    log_mel: torch.Tensor, cfg: MelConfig = AUDIOLDM_MEL, nnls_iters: int = 10, init: torch.Tensor | None = None
) -> torch.Tensor:
    """(frames, n_mels) natural-log mel -> (n_fft//2+1, frames) non-negative linear magnitude: ``nnls_iters``
    multiplicative least-squares steps towards the mel from ``init`` (default: the pseudo-inverse)."""
    import torch

    pinv, m_csr, m_t_csr = _mel_inverse(cfg)
    target = torch.exp(log_mel.float()).T
    s = torch.clamp(pinv @ target if init is None else init, min=1e-8)
    projected = m_t_csr @ target
    for _ in range(nnls_iters):  # in place: a third less time than fresh (bins, frames) tensors each step
        denominator = (m_t_csr @ (m_csr @ s)).add_(1e-10)
        s.mul_(projected).div_(denominator)
    return s


@lru_cache(maxsize=8)
def _frame_tables(frames: int, cfg: MelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The Hann window and 1 / its overlap-added square over the ``(frames - 1) * hop`` samples that
    ``frames`` centred frames cover: what ``torch.istft`` recomputes on every call."""
    import torch

    win = torch.hann_window(cfg.win)
    envelope = _overlap_add((win**2).expand(frames, -1), cfg.hop)
    return win, 1 / envelope[cfg.n_fft // 2 : cfg.n_fft // 2 + (frames - 1) * cfg.hop]


class _StftPair:
    """The centred STFT and its inverse for one frame count, on buffers kept across Griffin-Lim's
    iterations. Why not ``torch.stft``/``istft``: for one long signal on a CPU their col2im overlap-add,
    per-call window envelope and complex arithmetic cost more than the FFTs (measured on a 10 s window,
    16 iterations, one thread: 0.45 s against 0.15 s here, the same samples to 1e-6)."""

    def __init__(self, frames: int, cfg: MelConfig, device: torch.device):
        import torch

        self.cfg = cfg
        self.half, self.length = cfg.n_fft // 2, (frames - 1) * cfg.hop
        self.win, self.inv_envelope = (t.to(device) for t in _frame_tables(frames, cfg))
        self.padded = torch.zeros(self.length + cfg.n_fft, device=device)  # the signal, reflect-padded
        self.wave = self.padded[self.half : self.half + self.length]

    def inverse(self, spec: torch.Tensor) -> torch.Tensor:
        """(frames, bins) complex -> the windowed overlap-add signal, into ``self.wave`` (a view: copy to keep)."""
        import torch

        frames = torch.fft.irfft(spec, n=self.cfg.n_fft, dim=1).mul_(self.win)
        signal = _overlap_add(frames, self.cfg.hop)[self.half : self.half + self.length]
        return torch.mul(signal, self.inv_envelope, out=self.wave)

    def forward(self) -> torch.Tensor:
        """The (frames, bins) STFT of ``self.wave``, its ends reflect-padded as torch.stft does."""
        import torch

        h, n, p = self.half, self.length, self.padded
        p[:h] = torch.flip(p[h + 1 : 2 * h + 1], (0,))
        p[h + n :] = torch.flip(p[n - 1 : n + h - 1], (0,))
        return torch.fft.rfft(p.unfold(0, self.cfg.n_fft, self.cfg.hop) * self.win, dim=1)


def griffin_lim(
    mag: torch.Tensor,
    n_iter: int = DEFAULT_GL_ITERS,
    momentum: float = 0.99,
    init_phase: torch.Tensor | None = None,
    cfg: MelConfig = AUDIOLDM_MEL,
    seed: int = 0,
) -> torch.Tensor:
    """Fast Griffin-Lim (Perraudin et al. 2013) on a (bins, frames) magnitude; centred frames.

    ``init_phase`` (unit complex, bins x k) seeds the first k frames; the rest start from a seeded
    random phase, so the output is deterministic. The loop works on (frames, bins), the FFT's layout.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    theta = (2 * torch.pi * torch.rand(mag.shape, generator=gen)).to(mag.device)
    angles = torch.polar(torch.ones_like(theta), theta)
    if init_phase is not None:
        k = min(init_phase.shape[1], mag.shape[1])
        angles[:, :k] = init_phase[:, :k]
    stft = _StftPair(mag.shape[1], cfg, mag.device)
    mag_t = mag.T.contiguous()
    spec = (mag * angles).T.contiguous()
    prev = torch.zeros_like(spec)
    for _ in range(n_iter):
        stft.inverse(spec)
        rebuilt = stft.forward()
        spec = torch.add(rebuilt, prev, alpha=-momentum / (1 + momentum))
        prev = rebuilt
        parts = torch.view_as_real(spec)  # spec *= mag / |spec|, without complex abs (slow on CPUs)
        scale = torch.addcmul(parts[..., 0] * parts[..., 0], parts[..., 1], parts[..., 1])
        spec.mul_(scale.add_(1e-32).rsqrt_().mul_(mag_t))
    return stft.inverse(spec).clone()


def phase_of(wave: torch.Tensor, cfg: MelConfig = AUDIOLDM_MEL) -> torch.Tensor:
    """Unit-magnitude STFT phase of a waveform, (bins, frames), frames centred on multiples of hop."""
    import torch

    spec = torch.stft(
        wave,
        cfg.n_fft,
        cfg.hop,
        cfg.win,
        torch.hann_window(cfg.win, device=wave.device),
        center=True,
        return_complex=True,
    )
    return spec / (spec.abs() + 1e-16)


class GriffinLimVocoder:
    """Log-mel window -> waveform, warm-started from the previous window's samples. The linear magnitude
    comes from ``magnitude`` ((frames, n_mels) log-mel -> (bins, frames)): the mel's inverse by default,
    or a trained network (``magnitude_net.magnitude_of``). ``seed``: of the random phase Griffin-Lim starts
    from (the codec's is 0; another shows how much a score moves with an equally good phase)."""

    def __init__(
        self,
        n_iter: int = DEFAULT_GL_ITERS,
        device: str = "cpu",
        cfg: MelConfig = AUDIOLDM_MEL,
        magnitude: TorchMagnitude | None = None,
        seed: int = 0,
    ):
        self.n_iter, self.device, self.cfg, self.seed = n_iter, device, cfg, seed
        self.magnitude = magnitude or partial(mel_to_linear, cfg=cfg)

    def __call__(self, log_mel: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        import torch

        mag = self.magnitude(torch.from_numpy(log_mel).to(self.device))
        init = None
        if previous is not None and len(previous) > self.cfg.n_fft:
            init = phase_of(torch.from_numpy(previous).to(self.device), self.cfg)[
                :, : -(self.cfg.n_fft // self.cfg.hop)
            ]
        return griffin_lim(mag, self.n_iter, init_phase=init, cfg=self.cfg, seed=self.seed).cpu().numpy()
