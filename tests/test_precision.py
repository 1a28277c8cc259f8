"""The encoder's arithmetic: bfloat16 reaches the model on the worker threads, its codes stay within one
quantizer step of float32's, and the choice is the user's."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from latentcodec.audio.mel import log_mel, normalization_stats
from latentcodec.cli import main
from latentcodec.codec import encode_mel_windows
from latentcodec.errors import LatentCodecError
from latentcodec.format.container import AlatReader
from latentcodec.runtime import precision
from latentcodec.models.loader import load_model
from tests.conftest import tone

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"


def test_auto_is_bfloat16_only_where_native(monkeypatch) -> None:
    cpu = torch.device("cpu")
    for native, want in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(precision, "native_bfloat16", lambda device, n=native: n)
        assert precision.resolve("auto", cpu) == want
    assert precision.resolve("bfloat16", cpu) == "bfloat16" and precision.resolve("float32", cpu) == "float32"
    with pytest.raises(LatentCodecError, match="unknown precision 'half'") as e:
        precision.resolve("half", cpu)
    assert e.value.param == "precision"


def test_bfloat16_reaches_every_worker_and_stays_close() -> None:
    """4 windows over torch's threads (run_parts): autocast is thread-local, so a context entered on the
    caller's thread alone would leave the latents bit-identical to float32's."""
    torch.manual_seed(0)
    model = load_model(runtime="torch")
    x = tone(12.0, 16000, 1)[:, 0]
    off, gain = normalization_stats(x)
    mel = log_mel((x - off) * gain)[:1128].reshape(4, 282, 64)
    exact = encode_mel_windows(model, mel, "float32")
    fast = encode_mel_windows(model, mel, "bfloat16")
    assert fast.dtype == exact.dtype == np.float32
    assert (fast[:2] != exact[:2]).any() and (fast[2:] != exact[2:]).any()  # one half per worker on 2 cores
    rel = float(np.sqrt(((fast - exact) ** 2).mean()) / exact.std())
    assert rel < 0.02, rel


def test_cli_encode_bfloat16_codes_within_a_step_of_float32(tmp_path, capsys) -> None:
    clip = tmp_path / "clip.wav"
    x, rate = sf.read(EXAMPLE, dtype="int16")
    sf.write(clip, x[: 4 * rate], rate)
    codes = {}
    for p in ("float32", "bfloat16"):
        assert main(["encode", str(clip), str(tmp_path / f"{p}.alat"), "--precision", p, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["precision"] == p
        with AlatReader(tmp_path / f"{p}.alat") as r:
            codes[p] = r.codes(0, 0)
    diff = np.abs(codes["bfloat16"] - codes["float32"])
    assert diff.max() <= 1 and (diff == 0).mean() > 0.95, ((diff == 0).mean(), diff.max())


def test_cli_rejects_an_unknown_precision(tmp_path, capsys) -> None:
    assert main(["encode", str(EXAMPLE), str(tmp_path / "x.alat"), "--precision", "half"]) == 2
    assert "'--precision': 'half' is not one of" in capsys.readouterr().err
    assert not (tmp_path / "x.alat").exists()
