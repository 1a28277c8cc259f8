"""From log-mel back to a waveform: momentum Griffin-Lim, a vocoder of our own (``vocos.py``,
``magnitude_net.py``, ``routed_vocoder.py``; shipped under ``weights/vocoders/``) or a model's HiFi-GAN,
chosen by name through one registry (``load_vocoder``) and run over a long mel in overlapping windows so
memory stays flat and no seam is heard.

Griffin-Lim needs a linear magnitude: the mel filterbank is inverted once per window with its
pseudo-inverse followed by a few multiplicative non-negative least-squares updates (all matrix
products, no solver per frame). Each window starts from the phase of the previous window's output
where they overlap, so the cross-fade joins two signals of the same phase.
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np
import torch

from .constants import DEFAULT_GL_ITERS
from .errors import ModelError
from .mel import AUDIOLDM_MEL, MelConfig, mel_basis
from .registry import shipped_vocoders, vocoder_names

if TYPE_CHECKING:
    from .models import Model
    from .vocos import MelConvNeXt

WINDOW_FRAMES = 1000  # 10 s of mel per vocoder window
OVERLAP_FRAMES = 32  # frames shared by neighbouring windows; the cross-fade takes the middle half


@lru_cache(maxsize=4)
def _mel_inverse(cfg: MelConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The filterbank's (n_mels, bins) pseudo-inverse, and the filterbank and its transpose as sparse
    CSR matrices: each bin lies under at most two filters (997 of 32,832 entries are non-zero at 64 x
    513), so the NNLS steps' products take a quarter of their dense time."""
    m = torch.from_numpy(mel_basis(cfg)).double()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": products of CSR by dense are what we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.linalg.pinv(m).float(), m.float().to_sparse_csr(), m.T.float().to_sparse_csr()


def mel_to_linear(log_mel: torch.Tensor, cfg: MelConfig = AUDIOLDM_MEL, nnls_iters: int = 10,
                  init: torch.Tensor | None = None) -> torch.Tensor:
    """(frames, n_mels) natural-log mel -> (n_fft//2+1, frames) non-negative linear magnitude: ``nnls_iters``
    multiplicative least-squares steps towards the mel from ``init`` (default: the pseudo-inverse)."""
    pinv, m_csr, m_t_csr = _mel_inverse(cfg)
    target = torch.exp(log_mel.float()).T
    s = torch.clamp(pinv @ target if init is None else init, min=1e-8)
    projected = m_t_csr @ target
    for _ in range(nnls_iters):  # in place: a third less time than fresh (bins, frames) tensors each step
        denominator = (m_t_csr @ (m_csr @ s)).add_(1e-10)
        s.mul_(projected).div_(denominator)
    return s


def _overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """(frames, n) -> ((frames + ceil(n / hop) - 1) * hop,): row i added in from sample i * hop, as shifted
    adds of whole (frames, hop) slabs (far faster on a CPU than torch.istft's col2im for one signal)."""
    f, n = frames.shape
    whole, rest = divmod(n, hop)
    out = torch.zeros(f + whole + (rest > 0) - 1, hop, dtype=frames.dtype, device=frames.device)
    for i in range(whole):
        out[i:i + f] += frames[:, i * hop:(i + 1) * hop]
    if rest:
        out[whole:whole + f, :rest] += frames[:, whole * hop:]
    return out.reshape(-1)


@lru_cache(maxsize=8)
def _frame_tables(frames: int, cfg: MelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The Hann window and 1 / its overlap-added square over the ``(frames - 1) * hop`` samples that
    ``frames`` centred frames cover: what ``torch.istft`` recomputes on every call."""
    win = torch.hann_window(cfg.win)
    envelope = _overlap_add((win ** 2).expand(frames, -1), cfg.hop)
    return win, 1 / envelope[cfg.n_fft // 2:cfg.n_fft // 2 + (frames - 1) * cfg.hop]


class _StftPair:
    """The centred STFT and its inverse for one frame count, on buffers kept across Griffin-Lim's
    iterations. Why not ``torch.stft``/``istft``: for one long signal on a CPU their col2im overlap-add,
    per-call window envelope and complex arithmetic cost more than the FFTs (measured on a 10 s window,
    16 iterations, one thread: 0.45 s against 0.15 s here, the same samples to 1e-6)."""

    def __init__(self, frames: int, cfg: MelConfig, device: torch.device):
        self.cfg = cfg
        self.half, self.length = cfg.n_fft // 2, (frames - 1) * cfg.hop
        self.win, self.inv_envelope = (t.to(device) for t in _frame_tables(frames, cfg))
        self.padded = torch.zeros(self.length + cfg.n_fft, device=device)  # the signal, reflect-padded
        self.wave = self.padded[self.half:self.half + self.length]

    def inverse(self, spec: torch.Tensor) -> torch.Tensor:
        """(frames, bins) complex -> the windowed overlap-add signal, into ``self.wave`` (a view: copy to keep)."""
        frames = torch.fft.irfft(spec, n=self.cfg.n_fft, dim=1).mul_(self.win)
        signal = _overlap_add(frames, self.cfg.hop)[self.half:self.half + self.length]
        return torch.mul(signal, self.inv_envelope, out=self.wave)

    def forward(self) -> torch.Tensor:
        """The (frames, bins) STFT of ``self.wave``, its ends reflect-padded as torch.stft does."""
        h, n, p = self.half, self.length, self.padded
        p[:h] = torch.flip(p[h + 1:2 * h + 1], (0,))
        p[h + n:] = torch.flip(p[n - 1:n + h - 1], (0,))
        return torch.fft.rfft(p.unfold(0, self.cfg.n_fft, self.cfg.hop) * self.win, dim=1)


def griffin_lim(mag: torch.Tensor, n_iter: int = DEFAULT_GL_ITERS, momentum: float = 0.99,
                init_phase: torch.Tensor | None = None, cfg: MelConfig = AUDIOLDM_MEL, seed: int = 0) -> torch.Tensor:
    """Fast Griffin-Lim (Perraudin et al. 2013) on a (bins, frames) magnitude; centred frames.

    ``init_phase`` (unit complex, bins x k) seeds the first k frames; the rest start from a seeded
    random phase, so the output is deterministic. The loop works on (frames, bins), the FFT's layout.
    """
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
    spec = torch.stft(wave, cfg.n_fft, cfg.hop, cfg.win, torch.hann_window(cfg.win, device=wave.device),
                      center=True, return_complex=True)
    return spec / (spec.abs() + 1e-16)


class GriffinLimVocoder:
    """Log-mel window -> waveform, warm-started from the previous window's samples. The linear magnitude
    comes from ``magnitude`` ((frames, n_mels) log-mel -> (bins, frames)): the mel's inverse by default,
    or a trained network (``magnitude_net``). ``seed``: of the random phase Griffin-Lim starts from (the
    codec's is 0; another shows how much a score moves with an equally good phase)."""

    def __init__(self, n_iter: int = DEFAULT_GL_ITERS, device: str = "cpu", cfg: MelConfig = AUDIOLDM_MEL,
                 magnitude: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0):
        self.n_iter, self.device, self.cfg, self.seed = n_iter, device, cfg, seed
        self.magnitude = magnitude or partial(mel_to_linear, cfg=cfg)

    def __call__(self, log_mel: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        mag = self.magnitude(torch.from_numpy(log_mel).to(self.device))
        init = None
        if previous is not None and len(previous) > self.cfg.n_fft:
            init = phase_of(torch.from_numpy(previous).to(self.device), self.cfg)[:, :-(self.cfg.n_fft // self.cfg.hop)]
        return griffin_lim(mag, self.n_iter, init_phase=init, cfg=self.cfg, seed=self.seed).cpu().numpy()


class HifiGanVocoder:
    """A SpeechT5HifiGan: (frames, 64) log-mel -> frames * hop samples (its extra samples cropped)."""

    def __init__(self, model: torch.nn.Module, device: str = "cpu", hop: int = 160):
        self.model, self.device, self.hop = model, device, hop

    @torch.inference_mode()
    def __call__(self, log_mel: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        x = torch.from_numpy(log_mel).float().to(self.device)[None]
        wave = self.model(x).reshape(-1).float().cpu().numpy()
        return wave[:(len(log_mel) - 1) * self.hop]


Vocoder = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]

# Neural vocoders shipped in the package: one folder each (config.json + model.safetensors, or a router's
# config.json + detector), apart from the VAEs in weights/ so that a vocoder's name is never taken for a --model.
def neural_vocoder_folder(name: str) -> Path:
    """The folder of a shipped neural vocoder's name, or ``name`` itself when it is such a folder."""
    from .routed_vocoder import is_routed_folder
    from .vocos import is_net_folder

    shipped = shipped_vocoders()
    if name in shipped:
        return shipped[name]
    if is_net_folder(Path(name)) or is_routed_folder(Path(name)):
        return Path(name)
    raise ModelError(f"vocoder '{name}' not found: use one of {', '.join(vocoder_names())}, "
                     f"or a folder written by alat train-vocoder or training/train_speech_detector.py", "vocoder")


def load_vocoder(name: str, mel: MelConfig = AUDIOLDM_MEL, model: "Model | None" = None, device: str = "cpu",
                 gl_iters: int | None = None) -> Vocoder:
    """The vocoder called ``name``, for mels of ``mel``; 'hifigan' is the ``model``'s own. ``gl_iters``
    None: Griffin-Lim's own default, or the one a magnitude network was shipped with."""
    if name == "griffinlim":
        return GriffinLimVocoder(gl_iters or DEFAULT_GL_ITERS, device, mel)
    if name == "hifigan":
        from .models import load_hifigan

        if model is None:
            raise ModelError("the hifigan vocoder needs the model whose HiFi-GAN it is", "vocoder")
        return HifiGanVocoder(load_hifigan(model, device), device, mel.hop)
    from .routed_vocoder import is_routed_folder, load_routed
    from .vocos import load_net

    folder = neural_vocoder_folder(name)
    if is_routed_folder(folder):
        return load_routed(folder, mel, device, gl_iters)
    return vocoder_of(load_net(folder, device), mel, device, gl_iters, name)


def vocoder_of(net: "MelConvNeXt", mel: MelConfig = AUDIOLDM_MEL, device: str = "cpu",
               gl_iters: int | None = None, name: str = "") -> Vocoder:
    """One of our vocoder networks as a vocoder for mels of ``mel``, which it must have been trained for."""
    from .magnitude_net import MagnitudeNet, magnitude_of
    from .vocos import NeuralVocoder

    c = net.cfg
    fits = (c.n_mels, c.hop, mel.sample_rate) == (mel.n_mels, mel.hop, AUDIOLDM_MEL.sample_rate) \
        and math.isclose(c.log_floor, mel.log_floor, rel_tol=1e-6)  # headers store the floor as float32
    if not fits:
        raise ModelError(f"vocoder '{name}' takes {c.n_mels} mel bands at hop {c.hop}, floor {c.log_floor:g}, "
                         f"{AUDIOLDM_MEL.sample_rate} Hz; this mel has {mel.n_mels} at hop {mel.hop}, floor "
                         f"{mel.log_floor:g}, {mel.sample_rate} Hz")
    if isinstance(net, MagnitudeNet):
        if c.n_fft != mel.n_fft:
            raise ModelError(f"vocoder '{name}' gives an STFT of {c.n_fft} points; this mel's has {mel.n_fft}")
        return GriffinLimVocoder(gl_iters or c.gl_iters, device, mel, magnitude_of(net, mel))
    return NeuralVocoder(net, device)


def window_count(total_frames: int, window: int = WINDOW_FRAMES, overlap: int = OVERLAP_FRAMES) -> int:
    """Vocoder windows over a mel of ``total_frames``: every window but the last is whole."""
    return max(1, (total_frames - overlap) // window + 1)


def window_span(first: int, end: int, total_frames: int, num_samples: int, hop: int = 160,
                window: int = WINDOW_FRAMES, overlap: int = OVERLAP_FRAMES) -> tuple[range, int, int]:
    """The windows a decode of samples [first, end) runs so that they come out as in the whole file's
    decode: (windows, first mel frame they read, first sample they emit).

    Window j emits samples up to (j+1)W*hop - O*hop/2; its first O*hop samples are cross-faded with the
    window before, which is therefore run too when ``first`` falls among them.
    """
    n_win = window_count(total_frames, window, overlap)
    fade_len = overlap * hop

    def stop(j: int) -> int:
        return num_samples if j == n_win - 1 else (j + 1) * window * hop - fade_len // 2

    j0 = next(j for j in range(n_win) if stop(j) > first)
    if j0 > 0 and first < stop(j0 - 1) + fade_len:
        j0 -= 1
    j1 = next(j for j in range(j0, n_win) if stop(j) >= end)
    return range(j0, j1 + 1), max(0, j0 * window - overlap), stop(j0 - 1) if j0 > 0 else 0


def vocode_stream(mel_blocks: Iterable[np.ndarray], total_frames: int, num_samples: int, vocoder: Vocoder,
                  floor: float, hop: int = 160, window: int = WINDOW_FRAMES, overlap: int = OVERLAP_FRAMES,
                  windows: range | None = None, first_frame: int = 0) -> Iterator[np.ndarray]:
    """Turn a stream of mel frame blocks (total ``total_frames``) into exactly ``num_samples`` samples.

    Window j covers frames [jW - O, (j+1)W + O), the last one up to the end; neighbouring outputs are
    cross-faded (raised cosine) over O*hop samples centred on the border (j+1)W*hop, inside both windows.
    A part of the file: ``windows`` (see :func:`window_span`), with ``mel_blocks`` starting at frame
    ``first_frame``; the samples then start where the first of those windows starts emitting.
    """
    n_win = window_count(total_frames, window, overlap)
    windows = windows if windows is not None else range(n_win)
    fade_len = overlap * hop
    fade = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade_len, endpoint=False))).astype(np.float32)
    tail_frames = -(-(num_samples + hop) // hop) + 8 - total_frames  # silence after the last frame
    buf = np.zeros((0, 0), np.float32)
    buf_start = first_frame
    blocks = iter(mel_blocks)
    emitted = windows.start * window * hop - fade_len // 2 if windows.start > 0 else 0
    prev_tail: np.ndarray | None = None
    prev_wave: np.ndarray | None = None  # the previous window's output, starting at sample prev_start
    prev_start = 0
    for j in windows:
        a, b = max(0, j * window - overlap), min(total_frames, (j + 1) * window + overlap)
        while buf_start + len(buf) < b:
            block = next(blocks)
            buf = block if buf.size == 0 else np.concatenate([buf, block])
        mel = buf[a - buf_start:b - buf_start]
        last = j == n_win - 1
        if last and tail_frames > 0:
            mel = np.concatenate([mel, np.full((tail_frames, mel.shape[1]), floor, np.float32)])
        init = prev_wave[(a * hop - prev_start):] if prev_wave is not None else None
        wave = vocoder(mel, init).astype(np.float32)
        prev_wave, prev_start = wave, a * hop
        buf, buf_start = buf[max(0, b - overlap * 2 - buf_start):], max(buf_start, b - overlap * 2)
        stop = num_samples if last else (j + 1) * window * hop - fade_len // 2
        seg = wave[emitted - a * hop:stop - a * hop]
        if prev_tail is not None:
            seg[:fade_len] = prev_tail * (1 - fade) + seg[:fade_len] * fade
        if len(seg) < stop - emitted:
            seg = np.concatenate([seg, np.zeros(stop - emitted - len(seg), np.float32)])
        yield seg
        emitted = stop
        if not last:
            prev_tail = wave[stop - a * hop:stop - a * hop + fade_len].copy()
