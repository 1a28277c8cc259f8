"""A differentiable stand-in for the version-2 coder, for training a VAE for the coder it will meet.

The deployed coder (:mod:`transform_coder`) maps a latent through a KLT across channels and an
orthonormal 2-D DCT, rounds with one step, and codes with Laplace tables whose scale falls with the
coefficient's frequency. Training cannot round or count ANS bits, so it uses the usual proxies
(Balle et al. 2017): uniform noise of one step on the coefficients instead of rounding, and as the rate
the entropy of a rounded Laplace variable whose scale is the maximum-likelihood one (mean |y|) of each
(item, component, octave band in time, octave band in mel) group. Both transforms are orthonormal, so
the noise's power in the latent equals the rounding error's.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from latentcodec.format.transform_coder import dct_matrix


def _dct(n: int, like: torch.Tensor) -> torch.Tensor:
    """The deployed coder's (n, n) orthonormal DCT-II matrix (``transform_coder.dct_matrix``) as ``like``'s."""
    return torch.from_numpy(dct_matrix(n)).to(like)


def batch_klt(z: torch.Tensor) -> torch.Tensor:
    """(L, L) orthonormal KLT of the channels of (B, L, T, M) latents, rows by falling variance; no gradient
    (the deployed coder's transform is fixed, fitted after training)."""
    x = z.detach().transpose(0, 1).flatten(1).double()
    x = x - x.mean(dim=1, keepdim=True)
    _, vecs = torch.linalg.eigh(x @ x.T / x.shape[1])
    return vecs.flip(1).T.float()


def to_coefs(z: torch.Tensor, klt: torch.Tensor) -> torch.Tensor:
    """(B, L, T, M) latent -> (B, L, T, M) coefficients: KLT across channels, then DCT over (T, M)."""
    dt, dm = _dct(z.shape[2], z), _dct(z.shape[3], z)
    return dt @ torch.einsum("ij,bjtm->bitm", klt.to(z), z) @ dm.T


def from_coefs(c: torch.Tensor, klt: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_coefs`."""
    dt, dm = _dct(c.shape[2], c), _dct(c.shape[3], c)
    return torch.einsum("ij,bitm->bjtm", klt.to(c), dt.T @ c @ dm)


@lru_cache(maxsize=8)
def octave_groups(t: int, m: int) -> torch.Tensor:
    """(t * m, G) one-hot of each coefficient's (octave of kt, octave of km) group, octave = floor(log2(1 + k))."""
    bt = torch.floor(torch.log2(1 + torch.arange(t, dtype=torch.float64))).long()
    bm = torch.floor(torch.log2(1 + torch.arange(m, dtype=torch.float64))).long()
    g = (bt[:, None] * (int(bm.max()) + 1) + bm[None, :]).flatten()
    return torch.nn.functional.one_hot(g).float()[:, torch.bincount(g) > 0]


def rounded_laplace_bits(scale: torch.Tensor, step: float) -> torch.Tensor:
    """Entropy in bits of ``round(y / step)`` for y ~ Laplace(0, scale): closed form, differentiable.

    With r = step / scale, theta = e^-r, q = e^(-r/2) (the chance of a non-zero code):
    H = -(1 - q) ln(1 - q) - q ln((1 - theta) / 2) + r q (1 / (1 - theta) - 1/2) nats.
    """
    r = step / scale.clamp_min(1e-6 * step)
    q = torch.exp(-r / 2)
    p0 = -torch.expm1(-r / 2)
    one_m_theta = -torch.expm1(-r)
    nats = -p0 * torch.log(p0) - q * torch.log(one_m_theta / 2) + r * q * (1 / one_m_theta - 0.5)
    return nats / math.log(2)


def estimated_bits(coefs: torch.Tensor, step: float) -> torch.Tensor:
    """(B,) estimated bits of each item's (L, T, M) coefficients at ``step``."""
    b, n_comp, t, m = coefs.shape
    groups = octave_groups(t, m).to(coefs)  # (t*m, G)
    counts = groups.sum(0)
    scales = coefs.abs().flatten(2) @ groups / counts  # (B, L, G) maximum-likelihood Laplace scales
    return (rounded_laplace_bits(scales, step) * counts).sum(dim=(1, 2))


def noisy_latent(z: torch.Tensor, step: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(latent with uniform noise of one step on its coefficients, (B,) estimated bits of the latent)."""
    klt = batch_klt(z)
    coefs = to_coefs(z, klt)
    bits = estimated_bits(coefs, step)
    return from_coefs(coefs + (torch.rand_like(coefs) - 0.5) * step, klt), bits
