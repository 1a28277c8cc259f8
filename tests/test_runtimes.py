"""The runtimes (models/loader.choose_runtime): the rule, the shipped graphs on onnxruntime and OpenVINO against
the torch models they were made from, the vocoder's numpy and onnxruntime parts against torch's, and the plain
path that runs with torch unimportable."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latentcodec.errors import LatentCodecError, ModelError
from latentcodec.runtime.onnx_vae import has_graphs, onnxruntime_installed, weights_fingerprint
from latentcodec.runtime.openvino_vae import openvino_installed
from latentcodec.models.loader import VAE_WEIGHTS, choose_runtime, torch_installed
from latentcodec.models.registry import DEFAULT_MODEL, shipped_models

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"
needs_ort = pytest.mark.skipif(not onnxruntime_installed(), reason="onnxruntime is not installed")
needs_both = pytest.mark.skipif(not (onnxruntime_installed() and torch_installed()), reason="needs both runtimes")
needs_ov = pytest.mark.skipif(not openvino_installed(), reason="openvino is not installed")


def test_every_shipped_model_has_its_graphs() -> None:
    assert all(has_graphs(folder) for folder in shipped_models().values())


def _rule(monkeypatch: pytest.MonkeyPatch, native: bool, installed: str) -> None:
    """The rule's view of this machine: a CPU with (``native``) or without native bfloat16, and of the three
    runtimes only those named in ``installed``."""
    from latentcodec.models import loader

    monkeypatch.setattr(loader, "cpu_bfloat16", lambda: native)
    for rt, check in (("openvino", "openvino_installed"), ("onnx", "onnxruntime_installed"),
                      ("torch", "torch_installed")):
        monkeypatch.setattr(loader, check, lambda rt=rt: rt in installed)


def test_auto_takes_the_faster_runtime_for_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """Auto, for a shipped model on the CPU, by what is installed, the CPU, the job's kind and length (None:
    a folder's workers, which start once): the bfloat16 encoder, and the decoder where its pairing says auto,
    on OpenVINO from OPENVINO_SECONDS and in folders, torch installed or not; the float32 decoder on
    onnxruntime, torch's from TORCH_DECODE_SECONDS and in folders."""
    from latentcodec.models.loader import OPENVINO_SECONDS as OV, TORCH_DECODE_SECONDS as TD

    def pick(kind: str, seconds: float | None, precision: str = "auto") -> str:
        return choose_runtime("auto", DEFAULT_MODEL, "cpu", precision, kind, seconds)

    _rule(monkeypatch, True, "openvino onnx torch")
    assert [pick("encode", s) for s in (1, OV, 3600, None)] == ["onnx", "openvino", "openvino", "openvino"]
    assert pick("encode", 1, "bfloat16") == "openvino" and pick("encode", 3600, "float32") == "onnx"
    assert [pick("decode", s, "float32") for s in (1, TD - 1, TD, None)] == ["onnx", "onnx", "torch", "torch"]
    assert [pick("decode", s) for s in (1, OV, TD, None)] == ["onnx", "openvino", "openvino", "openvino"]
    _rule(monkeypatch, False, "openvino onnx torch")
    assert [pick("encode", s) for s in (1, 3600, None)] == ["onnx", "onnx", "onnx"]
    assert [pick("decode", s) for s in (1, TD, None)] == ["onnx", "torch", "torch"]  # auto is float32 here
    _rule(monkeypatch, True, "onnx torch")  # no OpenVINO: torch's bfloat16 encoder where it starts once
    assert [pick("encode", s) for s in (1, 3600, None)] == ["onnx", "onnx", "torch"]
    assert pick("encode", 1, "bfloat16") == "torch"
    _rule(monkeypatch, True, "openvino onnx")  # the plain install
    assert [pick("encode", s) for s in (1, 3600, None)] == ["onnx", "openvino", "openvino"]
    assert [pick("decode", s, "float32") for s in (1, 3600, None)] == ["onnx", "onnx", "onnx"]
    assert [pick("decode", s) for s in (1, 3600, None)] == ["onnx", "openvino", "openvino"]
    _rule(monkeypatch, True, "onnx torch")  # no OpenVINO: a decode in bfloat16 only where asked, on torch
    assert [pick("decode", s) for s in (1, 600)] == ["onnx", "onnx"] and pick("decode", 1, "bfloat16") == "torch"
    _rule(monkeypatch, True, "onnx")
    assert [pick("encode", s) for s in (1, 3600, None)] == ["onnx", "onnx", "onnx"]
    with pytest.raises(ModelError, match="openvino is not installed: pip install openvino"):
        choose_runtime("openvino", DEFAULT_MODEL)
    with pytest.raises(ModelError, match=r"pip install 'latentcodec\[torch\]'"):
        pick("encode", 1, "bfloat16")


@pytest.mark.slow
def test_a_folders_json_says_which_runtime_ran(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A folder's encode and decode say the runtime the rule gives workers (seconds None)."""
    import soundfile as sf

    from latentcodec.cli import main
    from latentcodec.vocoders.registry import pairing

    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "a.wav", np.zeros(8000), 16000)
    assert main(["encode", str(tmp_path / "in"), str(tmp_path / "out"), "--json", "--jobs", "1"]) == 0
    want = choose_runtime("auto", DEFAULT_MODEL, "cpu", "auto", "encode", None)
    assert json.loads(capsys.readouterr().out)["runtime"] == want
    assert main(["decode", str(tmp_path / "out"), str(tmp_path / "back"), "--json", "--jobs", "1"]) == 0
    want = choose_runtime("auto", DEFAULT_MODEL, "cpu", pairing(DEFAULT_MODEL).precision, "decode", None)
    assert json.loads(capsys.readouterr().out)["runtime"] == want


@needs_ort
def test_runtimes_asked_by_name_and_folders(tmp_path: Path) -> None:
    """A runtime asked for by name runs or is refused in one line; folders and GPUs go to torch."""
    folder = str(tmp_path)  # a model folder: the rule looks at names only, loads nothing
    assert choose_runtime("onnx", DEFAULT_MODEL) == "onnx"
    if torch_installed():
        assert choose_runtime("auto", DEFAULT_MODEL, "cuda") == "torch"
        assert choose_runtime("auto", folder) == "torch" == choose_runtime("torch", DEFAULT_MODEL)
    else:
        with pytest.raises(ModelError, match=r"pip install 'latentcodec\[torch\]'"):
            choose_runtime("auto", folder)
    with pytest.raises(ModelError, match="no ONNX graphs"):
        choose_runtime("onnx", folder)
    with pytest.raises(ModelError, match="no ONNX graphs"):
        choose_runtime("openvino", folder)
    with pytest.raises(LatentCodecError, match="onnx runtime runs on the CPU"):
        choose_runtime("onnx", DEFAULT_MODEL, "cuda")
    with pytest.raises(LatentCodecError, match="runs in float32: use the openvino or torch runtime"):
        choose_runtime("onnx", DEFAULT_MODEL, precision="bfloat16")
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


@needs_ov
@pytest.mark.parametrize("name", list(shipped_models()))
def test_openvino_computes_what_onnxruntime_does(name: str) -> None:
    """The same graphs on OpenVINO: in float32 the latents and mels of onnxruntime to float rounding (the
    decoder always); the encoder in bfloat16 (auto, where the CPU has it) within 1 % of the latents' RMS,
    within a tenth of the quantizer's 0.4 step on average."""
    from latentcodec.codec import encode_mel_windows
    from latentcodec.models.loader import load_model

    v, o = load_model(name, runtime="openvino"), load_model(name, runtime="onnx")
    assert (v.runtime, o.runtime) == ("openvino", "onnx") and v.fingerprint == o.fingerprint
    mels = np.random.default_rng(0).normal(-6, 2, (3, 4 * 35, 64)).astype(np.float32)
    z = encode_mel_windows(o, mels)
    np.testing.assert_allclose(v.runner.encode(mels, "float32"), z, rtol=0, atol=1e-4)
    zb = v.runner.encode(mels, "auto")
    assert np.sqrt(np.mean((zb - z) ** 2)) < 0.01 * np.sqrt(np.mean(z**2)) and np.abs(zb - z).mean() < 0.04
    np.testing.assert_allclose(v.runner.decode(z), o.runner.decode(z), rtol=0, atol=1e-3)


@needs_ov
def test_openvino_refuses_a_graph_of_another_layout(tmp_path: Path) -> None:
    """A graph whose folder names another weights layout is refused before OpenVINO reads it."""
    import shutil

    from latentcodec.runtime.onnx_vae import ENCODER, graph_folder
    from latentcodec.runtime.openvino_vae import read_graph

    weights = shipped_models()[DEFAULT_MODEL] / VAE_WEIGHTS
    other = tmp_path / "0123456789abcdef"
    other.mkdir()
    shutil.copyfile(graph_folder(weights) / ENCODER, other / ENCODER)
    with pytest.raises(ModelError, match="another layout"):
        read_graph(other / ENCODER, weights)
    assert read_graph(graph_folder(weights) / ENCODER, weights).inputs[0].get_any_name() == "mel"


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
    """alat encode and decode of the example with torch and diffusers unimportable: the graphs' runtime."""
    code = ("import sys; sys.modules.update(torch=None, diffusers=None); from latentcodec.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    outs = []
    for argv in (["encode", str(EXAMPLE), str(tmp_path / "x.alat")], ["decode", str(tmp_path / "x.alat"),
                                                                       str(tmp_path / "x.wav")]):
        r = subprocess.run([sys.executable, "-c", code, *argv, "--json"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs.append(json.loads(r.stdout))
    assert [o["runtime"] for o in outs] == ["onnx", "onnx"] and outs[1]["frames"] == 160000  # 10 s: short jobs
    assert outs[0]["precision"] == "float32"
    r = subprocess.run([sys.executable, "-c", code, "encode", str(EXAMPLE), str(tmp_path / "y.alat"), "--runtime",
                        "torch"], capture_output=True, text=True)
    assert r.returncode == 1 and "pip install 'latentcodec[torch]'" in r.stderr
