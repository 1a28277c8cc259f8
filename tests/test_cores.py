"""The CPU's cores shared out: the parts give what one call gives, on any thread count, and a decode
whose VAE windows are split over two cores gives the samples of one on one core."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf
import torch

from latentcodec.audio.mel import log_mel
from latentcodec.metrics import log_mel_distance
from latentcodec.runtime import cores
from latentcodec.options import DecodeOptions, EncodeOptions


@pytest.fixture
def threads():
    """Run a test at a given torch thread count, restoring the count after it."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.mark.parametrize("n_threads,batch", [(1, 5), (2, 1), (2, 5), (3, 4)])
def test_parts_give_what_one_call_gives(threads, n_threads: int, batch: int) -> None:
    threads(n_threads)
    conv = torch.nn.Conv2d(1, 4, 3, padding=1).requires_grad_(False)
    x = torch.randn(batch, 1, 20, 16)
    seen: set[int] = set()

    parts = min(batch, n_threads)

    def fn(part: torch.Tensor) -> torch.Tensor:
        seen.add(threading.get_ident())
        assert torch.is_inference_mode_enabled() and torch.get_num_threads() == (1 if parts > 1 else n_threads)
        return conv(part)

    out = cores.run_parts(fn, x)
    assert torch.allclose(out, conv(x), atol=1e-6)
    assert (threading.get_ident() in seen) == (parts == 1)  # the caller's thread alone, or the pool's


def test_preparing_the_process_puts_blas_on_one_thread_once() -> None:
    from threadpoolctl import threadpool_info

    cores.prepare_process()
    cores.prepare_process()
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert blas and all(lib["num_threads"] == 1 for lib in blas)  # numpy's OpenBLAS at least
    assert np.zeros(10 << 20, np.uint8).sum() == 0  # allocation still works with freed memory kept


@pytest.mark.slow
def test_a_decode_split_over_cores_gives_the_samples_of_one_on_one_core(threads, tiny_model, tmp_path) -> None:
    """Seven chunks of 2 channels in batches of 4 windows: the decode on 2 threads gives the 1-thread
    decode's samples with a neural vocoder (float rounding of the split batches aside), and with
    Griffin-Lim, which amplifies that rounding in its iterations, the same log-mel."""
    from latentcodec.audio.io import Audio
    from latentcodec.codec import decode_file, encode_audio
    from tests.conftest import tone

    x = tone(13.0, 16000, 2).T.copy()
    threads(1)
    encode_audio(Audio(x, 16000, 2, x.shape[1], 0), tmp_path / "x.alat",
                 EncodeOptions(model=tiny_model, chunk_seconds=2.0))
    outs = {}
    for n in (1, 2):
        threads(n)
        for voc in ("griffinlim", "hifigan"):
            decode_file(tmp_path / "x.alat", tmp_path / f"{voc}{n}.wav", DecodeOptions(vocoder=voc, model=tiny_model))
            outs[voc, n] = sf.read(tmp_path / f"{voc}{n}.wav", dtype="int16")[0].astype(np.int32)
    assert outs["hifigan", 1].shape == outs["griffinlim", 2].shape == (x.shape[1], 2)
    assert np.abs(outs["hifigan", 1] - outs["hifigan", 2]).max() <= 4
    for c in range(2):
        mels = [log_mel(outs["griffinlim", n][:, c] / 32768.0) for n in (1, 2)]
        assert log_mel_distance(*mels)["log_mel_l1_db"] < 0.2
