"""Seam handling: decoding chunk by chunk with latent context matches decoding the whole latent at
once at the chunk borders; without context it does not."""
from __future__ import annotations

import numpy as np
import torch

from latentcodec.audio.mel import log_mel, normalization_stats
from latentcodec.codec import encode_mel_windows, latent_window
from latentcodec.metrics import DB_PER_NEPER
from latentcodec.models.loader import load_model
from tests.conftest import tone


def _chunked(model, chunks: list[np.ndarray], ctx: int) -> np.ndarray:
    get = lambda j: chunks[j] if 0 <= j < len(chunks) else None  # noqa: E731
    frames = chunks[0].shape[1] * 4
    return np.concatenate([model.runner.decode(latent_window(get, k, ctx)[None])[0]
                           [4 * ctx:4 * ctx + frames] for k in range(len(chunks))])


def test_context_removes_seams() -> None:
    """On the shipped model (GroupNorm, no attention: a window's output depends on its neighbours only
    through convolutions and normalisation statistics)."""
    torch.manual_seed(0)
    model = load_model()
    x = tone(15.0, 16000, 1)[:, 0]
    off, gain = normalization_stats(x)
    mel = log_mel((x - off) * gain)[:1500]
    z = encode_mel_windows(model, mel[None])[0]
    whole = model.runner.decode(z[None])[0]
    chunks = [z[:, i * 125:(i + 1) * 125] for i in range(3)]
    border = np.r_[490:510, 990:1010]  # 10 frames (0.1 s) either side of each seam
    with_ctx = np.abs(_chunked(model, chunks, 8) - whole)[border] * DB_PER_NEPER
    without = np.abs(_chunked(model, chunks, 0) - whole)[border] * DB_PER_NEPER
    assert with_ctx.max() < 0.25, with_ctx.max()  # dB, worst mel bin at the borders
    assert without.max() > 4.0, without.max()
