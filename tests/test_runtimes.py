"""The two runtimes (models/loader.choose_runtime): the rule, the shipped graphs against the torch models they
were made from, the vocoder's numpy and onnxruntime parts against torch's, and the plain path that runs
with torch unimportable."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latentcodec.errors import LatentCodecError, ModelError
from latentcodec.runtime.onnx_vae import has_graphs, onnxruntime_installed, weights_fingerprint
from latentcodec.models.loader import VAE_WEIGHTS, choose_runtime, torch_installed
from latentcodec.models.registry import DEFAULT_MODEL, shipped_models

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"
needs_ort = pytest.mark.skipif(not onnxruntime_installed(), reason="onnxruntime is not installed")
needs_both = pytest.mark.skipif(not (onnxruntime_installed() and torch_installed()), reason="needs both runtimes")


def test_every_shipped_model_has_its_graphs() -> None:
    assert all(has_graphs(folder) for folder in shipped_models().values())


@pytest.mark.slow
def test_folder_workers_take_torch_where_it_is_faster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    """Folder workers, where torch is installed and the runtime auto: torch to decode, and to encode on a CPU
    with native bfloat16 (auto precision); the asked runtime otherwise; the folder's --json says which."""
    import soundfile as sf

    from latentcodec.cli import main
    from latentcodec.models import loader

    torch_or_auto = "torch" if torch_installed() else "auto"
    monkeypatch.setattr(loader, "cpu_bfloat16", lambda: True)
    assert loader.folder_runtime("encode", "auto") == torch_or_auto == loader.folder_runtime("decode", "auto")
    assert loader.folder_runtime("encode", "onnx") == "onnx" == loader.folder_runtime("decode", "onnx")
    assert loader.folder_runtime("encode", "auto", "float32") == "auto"
    monkeypatch.setattr(loader, "cpu_bfloat16", lambda: False)
    assert loader.folder_runtime("encode", "auto") == "auto"
    assert loader.folder_runtime("decode", "auto") == torch_or_auto
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", np.zeros(8000), 16000)
    assert main(["encode", str(tmp_path / "in"), str(tmp_path / "out"), "--json", "--jobs", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["runtime"] == choose_runtime("auto", DEFAULT_MODEL)
    assert main(["decode", str(tmp_path / "out"), str(tmp_path / "back"), "--json", "--jobs", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["runtime"] == choose_runtime(torch_or_auto, DEFAULT_MODEL)


@needs_ort
def test_rule_onnx_for_shipped_models_on_the_cpu_else_torch(tmp_path: Path) -> None:
    folder = str(tmp_path)  # a model folder: the rule looks at names only, loads nothing
    assert choose_runtime("auto", DEFAULT_MODEL) == "onnx" == choose_runtime("auto", DEFAULT_MODEL, "auto")
    if torch_installed():
        assert choose_runtime("auto", DEFAULT_MODEL, "cuda") == "torch"
        assert choose_runtime("auto", DEFAULT_MODEL, precision="bfloat16") == "torch"
        assert choose_runtime("auto", folder) == "torch" == choose_runtime("torch", DEFAULT_MODEL)
    else:
        with pytest.raises(ModelError, match=r"pip install 'latentcodec\[torch\]'"):
            choose_runtime("auto", folder)
    with pytest.raises(ModelError, match="no ONNX graphs"):
        choose_runtime("onnx", folder)
    with pytest.raises(LatentCodecError, match="CPU in float32"):
        choose_runtime("onnx", DEFAULT_MODEL, "cuda")
    with pytest.raises(LatentCodecError, match="unknown runtime"):
        choose_runtime("tensorflow", DEFAULT_MODEL)


@needs_both
@pytest.mark.parametrize("name", list(shipped_models()))
def test_graphs_compute_what_the_torch_model_does(name: str) -> None:
    """Same fingerprint without torch; latents and decoded mels to float rounding (1e-4 of a natural-log
    mel whose quantizer step is 0.4)."""
    from latentcodec.codec import encode_mel_windows
    from latentcodec.models.loader import load_model

    t, o = load_model(name, runtime="torch"), load_model(name, runtime="onnx")
    assert (t.runtime, o.runtime) == ("torch", "onnx")
    assert o.fingerprint == t.fingerprint == weights_fingerprint(shipped_models()[name] / VAE_WEIGHTS)
    mels = np.random.default_rng(0).normal(-6, 2, (3, 4 * 35, 64)).astype(np.float32)
    z = encode_mel_windows(t, mels)
    np.testing.assert_allclose(encode_mel_windows(o, mels), z, rtol=0, atol=1e-4)
    np.testing.assert_allclose(o.runner.decode(z), t.runner.decode(z), rtol=0, atol=1e-3)


def test_random_phase_is_torchs() -> None:
    torch = pytest.importorskip("torch")
    from latentcodec.vocoders.griffinlim import random_phase

    want = 2 * torch.pi * torch.rand((513, 37), generator=torch.Generator().manual_seed(3))
    np.testing.assert_allclose(random_phase((513, 37), 3), want.numpy(), rtol=1e-6, atol=0)


@needs_both
def test_vocoder_parts_agree_with_torchs() -> None:
    """The routed default's detector weights, magnitudes and Griffin-Lim's samples of 2 s of the example."""
    import torch

    from latentcodec.audio.io import read_audio
    from latentcodec.audio.mel import log_mel
    from latentcodec.vocoders.registry import load_vocoder

    mel = log_mel(read_audio(str(EXAMPLE)).samples[0][:32000])
    t, o = (load_vocoder("latentcodec-maggl-routed-v1", runtime=r) for r in ("torch", "onnx"))
    mt, mo = t.magnitude(torch.from_numpy(mel)).numpy(), o.magnitude(mel)
    assert np.abs(np.log(mo + 1e-5) - np.log(mt + 1e-5)).max() < 1e-2
    yt, yo = t(mel, None), o(mel, None)
    l1 = np.abs(log_mel(yt) - log_mel(yo)).mean() * 20 / np.log(10)
    assert l1 < 0.05, l1


@needs_ort
def test_plain_path_runs_without_torch(tmp_path: Path) -> None:
    """alat encode and decode of the example with torch and diffusers unimportable: the onnx runtime."""
    code = ("import sys; sys.modules.update(torch=None, diffusers=None); from latentcodec.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    outs = []
    for argv in (["encode", str(EXAMPLE), str(tmp_path / "x.alat")], ["decode", str(tmp_path / "x.alat"),
                                                                       str(tmp_path / "x.wav")]):
        r = subprocess.run([sys.executable, "-c", code, *argv, "--json"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs.append(json.loads(r.stdout))
    assert [o["runtime"] for o in outs] == ["onnx", "onnx"] and outs[1]["frames"] == 160000
    assert outs[0]["precision"] == "float32"
    r = subprocess.run([sys.executable, "-c", code, "encode", str(EXAMPLE), str(tmp_path / "y.alat"), "--runtime",
                        "torch"], capture_output=True, text=True)
    assert r.returncode == 1 and "pip install 'latentcodec[torch]'" in r.stderr
