"""The neural vocoder shipped in the package loads by name and is trained: from the exact mel of the
example clip, untrained weights of its shape (10.9 dB log-mel L1, PESQ-wb 1.38) fail the bounds that the
shipped weights pass (step 3250: 1.84 dB, 2.05; Griffin-Lim 1.29 dB, 2.42)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pesq import pesq

from latentcodec.audio_io import read_audio
from latentcodec.mel import log_mel, normalization_stats
from latentcodec.metrics import log_mel_distance
from latentcodec.vocoder import load_vocoder, shipped_vocoders, vocode_stream
from latentcodec.vocos import NeuralVocoder, VocosGenerator

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"
SHIPPED = "latentcodec-vocos-v1"


def _scores(vocoder) -> tuple[float, float]:
    x = read_audio(EXAMPLE, mono=True).samples[0]
    offset, gain = normalization_stats(x)
    x = (x - offset) * gain
    mel = log_mel(x)
    y = np.concatenate(list(vocode_stream(iter([mel]), len(mel), len(x), vocoder, float(np.log(1e-5)))))
    return log_mel_distance(mel, log_mel(y))["log_mel_l1_db"], pesq(16000, x.astype(np.float64), y.astype(np.float64), "wb")


def test_shipped_vocoder_is_named_and_small() -> None:
    folder = shipped_vocoders()[SHIPPED]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 10e6
    assert (folder / "MODEL.md").is_file() and (folder / "training.json").is_file()


@pytest.mark.parametrize("trained", [True, False])
def test_shipped_vocoder_is_trained(trained: bool) -> None:
    torch.manual_seed(0)
    voc = load_vocoder(SHIPPED) if trained else NeuralVocoder(VocosGenerator(load_vocoder(SHIPPED).generator.cfg))
    l1_db, pesq_wb = _scores(voc)
    assert (l1_db < 3.0 and pesq_wb > 1.7) == trained
