"""The training-time stand-in for the version-2 coder: exact transforms, the closed-form entropy of a
rounded Laplace variable, and a rate estimate that tracks the real coder's bytes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.fft import dctn

from latentcodec.format.transform_coder import dct_matrix, encode_latent
from latentcodec.training.rate_proxy import (
    batch_klt,
    estimated_bits,
    from_coefs,
    noisy_latent,
    rounded_laplace_bits,
    to_coefs,
)


def test_dct_matches_scipy_and_round_trips() -> None:
    z = torch.randn(2, 8, 12, 16, dtype=torch.float64)
    d12, d16 = torch.from_numpy(dct_matrix(12)), torch.from_numpy(dct_matrix(16))
    ours = d12 @ z @ d16.T
    assert np.allclose(ours.numpy(), dctn(z.numpy(), axes=(2, 3), norm="ortho"), atol=1e-5)
    klt = batch_klt(z.float())
    assert torch.allclose(klt @ klt.T, torch.eye(8), atol=1e-5)
    assert torch.allclose(from_coefs(to_coefs(z.float(), klt), klt), z.float(), atol=1e-4)


@pytest.mark.parametrize("scale", [0.02, 0.3, 1.0, 8.0])
def test_rounded_laplace_entropy_matches_the_sum(scale: float) -> None:
    step, k = 0.4, np.arange(-5000, 5001)
    r = step / scale
    p = np.where(k == 0, -np.expm1(-r / 2), 0.5 * np.exp(-(np.abs(k) - 0.5) * r) * -np.expm1(-r))
    p = p[p > 0]
    assert float(rounded_laplace_bits(torch.tensor(scale, dtype=torch.float64), step)) == \
        pytest.approx(-(p * np.log2(p)).sum(), rel=1e-6)


def test_estimate_tracks_the_real_coder() -> None:
    """Smooth random latents (energy falling with frequency, channels correlated): the estimate lies
    within 25 % of the coder's bytes at three steps, and falls as the step grows."""
    g = torch.Generator().manual_seed(0)
    t, m = 125, 16
    fall = 1 / (1 + torch.arange(t)[:, None] / 4) / (1 + torch.arange(m)[None, :] / 2)
    coefs = 20 * torch.randn(4, 8, t, m, generator=g) * fall * torch.tensor([3, 1, .5, .2, .1, .05, .05, .05])[:, None, None]
    mix = torch.linalg.qr(torch.randn(8, 8, generator=g))[0]
    z = from_coefs(coefs, mix)
    estimates = []
    for step in (0.1, 0.4, 1.6):
        klt = batch_klt(z)
        est = float(estimated_bits(to_coefs(z, klt), step).sum())
        real = sum(8 * sum(len(b) for b in encode_latent(zi.numpy(), np.full(8, step), klt.double().numpy()))
                   for zi in z)
        assert est == pytest.approx(real, rel=0.25)
        estimates.append(est)
    assert estimates[0] > estimates[1] > estimates[2]


def test_noise_has_the_rounding_error_power_and_gradients_reach_the_latent() -> None:
    z = (torch.randn(3, 8, 48, 16) * 2).requires_grad_()
    noisy, bits = noisy_latent(z, 0.4)
    assert float((noisy - z).detach().pow(2).mean()) == pytest.approx(0.4 ** 2 / 12, rel=0.05)
    bits.sum().backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0
