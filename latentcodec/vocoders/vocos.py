"""A Vocos-style neural vocoder (Siuzdak 2023) for the AudioLDM log-mel: it works at the frame rate and
lets an inverse STFT make the samples, so it is small and fast on a CPU. Its network is
``nets.VocosGenerator`` (layout and the one change to Vocos: ``nets``); it runs on torch only (no graph is
exported of it: no shipped vocoder is one).

Alignment: the mel frames are centred (frame t on sample t * hop) and so is the iSTFT, so F frames give
(F - 1) * hop samples, sample 0 at frame 0's centre: the contract of ``windows.vocode_stream``, as for
Griffin-Lim. The receptive field (``NetConfig.reach_frames``) is kept within what the codec's window overlap
leaves on each side of a cross-fade, so a mel vocoded in windows gives, in every sample it keeps, the
same samples as the whole mel vocoded at once (``tests/test_vocos.py``).
"""

from __future__ import annotations

import numpy as np
import torch

from latentcodec.vocoders.nets import VocosGenerator


class NeuralVocoder:
    """A generator as a ``vocode_stream`` vocoder: (frames, n_mels) log-mel -> (frames - 1) * hop samples."""

    def __init__(self, generator: VocosGenerator, device: str = "cpu"):
        self.generator, self.device = generator.to(device).eval(), device

    @torch.inference_mode()
    def __call__(self, log_mel: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(log_mel, dtype=np.float32)).to(self.device)[None]
        return self.generator(x)[0].cpu().numpy()
