"""The version-2 latent coder: decorrelate, quantize uniformly, entropy-code. Plain numpy and bytes.

One chunk's latent (L channels x T frames x M mel bins) goes through
1. a fixed L x L orthonormal transform across latent channels (the KLT of the model's latents: the
   channels of an AudioLDM-style VAE are strongly correlated, three components hold 98 % of the
   variance), ``y = K x``;
2. an orthonormal 2-D DCT-II over (time, mel) of each component, which packs a smooth latent's energy
   into few coefficients;
3. a uniform quantizer, ``code = round(coefficient / step[l])``, the step being the rate knob;
4. a Laplace model whose scale falls with the coefficient's frequency: per component three small
   integers (A, B, C; the spec's α, β, γ) stored in the record give each coefficient a table index
   ``A + floor((B U[kt] + C U[km] + 16) / 32)`` with ``U[k] = round(16 log2(1 + k))``;
5. :mod:`entropy` codes the codes with those tables.

Both transforms are orthonormal, so the latent's squared error is the coefficients' squared error.
spec/alat-format.md ("Version 2") is normative.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from latentcodec.format.entropy import N_SCALES, bit_costs, decode_codes, encode_codes

PARAM_BYTES = 3  # per component, interleaved: u8 A, i8 B, i8 C (the spec's α, β, γ)
LAPLACE_LOG2_BIAS = 0.8327  # E[log2 |x|] = log2(b) - 0.8327 for a Laplace variable of scale b (Euler's gamma / ln 2)


@lru_cache(maxsize=8)
def octave_index(n: int) -> np.ndarray:
    """U[k] = round(16 log2(1 + k)) for k < n, int64 (no k < 65536 lies within 1e-6 of a tie)."""
    return np.floor(16 * np.log2(1 + np.arange(n, dtype=np.float64)) + 0.5).astype(np.int64)


def scale_indices(params: np.ndarray, t: int, m: int) -> np.ndarray:
    """(L, 3) int params -> (L, t, m) uint8 table index of each coefficient."""
    a, b, c = (params[:, i, None, None].astype(np.int64) for i in range(3))
    ut, um = octave_index(t)[None, :, None], octave_index(m)[None, None, :]
    return np.clip(a + np.floor_divide(b * ut + c * um + 16, 32), 0, N_SCALES - 1).astype(np.uint8)


@lru_cache(maxsize=8)
def _fit_matrix(t: int, m: int) -> np.ndarray:
    """Least-squares solver (3, t*m) for the table index as A + B U[kt] / 32 + C U[km] / 32."""
    ut, um = np.meshgrid(octave_index(t) / 32, octave_index(m) / 32, indexing="ij")
    return np.linalg.pinv(np.stack([np.ones(t * m), ut.ravel(), um.ravel()], axis=1))


def fit_params(codes: np.ndarray, coefs: np.ndarray) -> np.ndarray:
    """Encoder's choice of (A, B, C) per component for (L, t, m) coefficients in step units.

    Slopes by least squares on the log magnitudes; then A, the level, is the one of five around the
    fit that codes ``codes`` in the fewest bits. Any params decode: this only sets the rate.
    """
    n_comp, t, m = coefs.shape
    target = 4 * (np.log2(np.abs(coefs.reshape(n_comp, -1)) + 2.0**-6) + LAPLACE_LOG2_BIAS) + 20
    fit = target @ _fit_matrix(t, m).T  # (L, 3)
    params = np.empty((n_comp, 3), np.int64)
    params[:, 1:] = np.clip(np.rint(fit[:, 1:] * 1.0), -128, 127)
    mags = np.minimum(np.abs(codes), bit_costs().shape[1] - 1).reshape(n_comp, -1)
    best = np.full(n_comp, np.inf)
    for delta in range(-2, 3):
        params_try = params.copy()
        params_try[:, 0] = np.clip(np.rint(fit[:, 0]) + delta, 0, 255)
        sc = scale_indices(params_try, t, m).reshape(n_comp, -1)
        bits = bit_costs()[sc, mags].sum(axis=1)
        better = bits < best
        params[better, 0], best[better] = params_try[better, 0], bits[better]
    return params


def fit_transform(latents: list[np.ndarray]) -> np.ndarray:
    """The KLT of (L, T, M) latents across their L channels: (L, L) orthonormal rows of falling variance,
    each row's largest entry positive (so the same latents always give the same matrix)."""
    z = np.concatenate([np.asarray(x, np.float64).reshape(len(x), -1) for x in latents], axis=1)
    z -= z.mean(axis=1, keepdims=True)
    var, vec = np.linalg.eigh(z @ z.T / max(1, z.shape[1]))
    k = vec[:, np.argsort(var)[::-1]].T
    return k * np.sign(k[np.arange(len(k)), np.abs(k).argmax(axis=1)])[:, None]


DCT_MATRIX_MAX = 128  # longest side done by a matrix product: every mel side (W <= 64) and 5 s chunks (T = 125)


@lru_cache(maxsize=16)
def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II as an (n, n) float64 matrix (scipy's ``dct(norm="ortho")``), for n <= 128: why
    a matrix, not scipy.fft: short sides take microseconds either way, scipy is 113 MB of install, and the
    files written so far (pinned in tests/vectors) decode to the same bits as they always have."""
    k, t = np.arange(n)[:, None], np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * t + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d


def _dct_fft(x: np.ndarray, axis: int, inverse: bool) -> np.ndarray:
    """The orthonormal DCT-II (or its inverse, the DCT-III) along ``axis`` through a real FFT of length 2n:
    O(n log n) time and O(n) memory per line, where a matrix would take n^2 (3.5 GB at n = 15,000)."""
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    n = x.shape[-1]
    k = np.arange(n)
    scale, twiddle = np.where(k == 0, np.sqrt(1.0 / n), np.sqrt(2.0 / n)), np.exp(-0.5j * np.pi * k / n)
    if inverse:  # sum over k of s(k) X[k] cos(pi k (2t + 1) / 2n), as the real part of a length-2n sum
        z = np.zeros(x.shape[:-1] + (n + 1,), np.complex128)
        z[..., :n] = x * scale * twiddle.conj()
        out = n * np.fft.irfft(z, 2 * n, axis=-1)[..., :n] + 0.5 * scale[0] * x[..., :1]
    else:  # the even extension's spectrum, turned by half a sample
        spec = np.fft.rfft(np.concatenate([x, x[..., ::-1]], axis=-1), axis=-1)[..., :n]
        out = 0.5 * scale * (spec * twiddle).real
    return np.moveaxis(out, -1, axis)


def _along_time(x: np.ndarray, inverse: bool) -> np.ndarray:
    """The orthonormal DCT-II (or DCT-III) of (L, T, M) planes along T: a matrix up to DCT_MATRIX_MAX."""
    if x.shape[1] > DCT_MATRIX_MAX:
        return _dct_fft(x, 1, inverse)
    d = dct_matrix(x.shape[1])
    return (d.T if inverse else d) @ x


def dct2(x: np.ndarray) -> np.ndarray:
    """(L, T, M) -> the orthonormal 2-D DCT-II over (T, M) of each of the L planes, float64."""
    return _along_time(np.asarray(x, np.float64), False) @ dct_matrix(x.shape[2]).T


def idct2(c: np.ndarray) -> np.ndarray:
    """The inverse of :func:`dct2` (the matrices are orthonormal: their transposes)."""
    return _along_time(np.asarray(c, np.float64), True) @ dct_matrix(c.shape[2])


def encode_latent(latent: np.ndarray, steps: np.ndarray, transform: np.ndarray) -> tuple[bytes, bytes]:
    """(L, T, M) latent -> (params bytes, ANS payload bytes) of one record."""
    x = np.asarray(latent, np.float64)
    coefs = dct2(np.einsum("ij,jtm->itm", transform, x))
    coefs /= np.asarray(steps, np.float64)[:, None, None]
    codes = np.rint(coefs).astype(np.int64)
    params = fit_params(codes, coefs)
    payload = encode_codes(codes, scale_indices(params, *x.shape[1:]))
    raw = np.empty((len(params), PARAM_BYTES), np.uint8)
    raw[:, 0], raw[:, 1:] = params[:, 0], params[:, 1:].astype(np.int8).view(np.uint8)
    return raw.tobytes(), payload


def decode_codes_of(stats: bytes, payload: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """The integer codes (L, T, M) of one record; raises entropy.EntropyError on a bad stream."""
    raw = np.frombuffer(stats, np.uint8).reshape(shape[0], PARAM_BYTES)
    params = np.stack([raw[:, 0].astype(np.int64), raw[:, 1].view(np.int8), raw[:, 2].view(np.int8)], axis=1)
    return decode_codes(payload, scale_indices(params, shape[1], shape[2]))


def dequantize_codes(codes: np.ndarray, steps: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Codes (L, T, M) -> float32 latent: inverse DCT of code x step, then K^T, in float64."""
    coefs = codes.astype(np.float64) * np.asarray(steps, np.float64)[:, None, None]
    return np.einsum("ij,itm->jtm", np.asarray(transform, np.float64), idct2(coefs)).astype(np.float32)
