"""Every file ever written keeps decoding: files of each default model, each the first 3.5 s of the
shipped example, decode through today's CLI to the samples their own release decoded, whatever model is
the default now:
- latentcodec 0.1.0 (commit 1d44e95): latentcodec-small, version 1, 4 bits, Griffin-Lim;
- commit 3384d7f: latentcodec-small-v2, version 2 at quality 4, latentcodec-maggl-routed-v1."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from latentcodec.cli import main
from latentcodec.format.container import AlatReader

VECTORS = Path(__file__).resolve().parent / "vectors"


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnx", "torch"])
@pytest.mark.parametrize("stem, model, version, tool", [("v0.1.0_small", "latentcodec-small", 1, "0.1.0"),
                                                         ("small_v2", "latentcodec-small-v2", 2, "0.1.0"),
                                                         ("small_v3", "latentcodec-small-v2", 3, "0.2.0")])
def test_file_of_an_earlier_default_decodes_as_it_did(tmp_path, stem: str, model: str, version: int,
                                                      tool: str, runtime: str) -> None:
    source = VECTORS / f"{stem}.alat"
    with AlatReader(source) as r:
        assert (r.header.model_name, r.header.version, r.header.tool_version) == \
            (model, version, f"latentcodec {tool}")
    pytest.importorskip("onnxruntime" if runtime == "onnx" else "torch")
    assert main(["decode", str(source), str(tmp_path / "now.wav"), "--quiet", "--runtime", runtime]) == 0
    now, rate = sf.read(tmp_path / "now.wav", dtype="int16")
    then, rate_then = sf.read(VECTORS / f"{stem}_decoded.flac", dtype="int16")
    assert rate == rate_then and now.shape == then.shape == (56000,)
    # To float rounding, which Griffin-Lim's 16 iterations amplify: since its in-place rewrite (issue 12)
    # at most 3 LSB here, on average 0.5 (the int16 rounding); BLAS and FFT rounding may differ elsewhere.
    # The onnx runtime's Griffin-Lim runs numpy's FFT (pocketfft), not torch's (MKL here): small_v3, the
    # routed vocoder, 6 LSB at most, on average 0.54 (2026-12-03; torch's 1 and 0.50).
    diff = np.abs(now.astype(np.int32) - then)
    assert diff.max() <= (4 if runtime == "torch" else 8) and diff.mean() <= 0.75


def test_models_lists_every_shipped_name_and_info_says_which_decodes(capsys) -> None:
    import json

    from latentcodec.models.loader import load_model
    from latentcodec.models.registry import DEFAULT_MODEL, shipped_models
    from latentcodec.vocoders.registry import vocoder_names

    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    names = [m["name"] for m in listed["models"]]
    assert names == list(shipped_models()) and "latentcodec-small" in names
    assert [m["name"] for m in listed["models"] if m["default"]] == [DEFAULT_MODEL]
    small = next(m for m in listed["models"] if m["name"] == "latentcodec-small")
    assert small["fingerprint"] == load_model("latentcodec-small").fingerprint.hex()
    assert [v["name"] for v in listed["vocoders"]] == vocoder_names()
    # each shipped model decodes with its own decoder, and none shares another's latent space (each was trained whole)
    assert all(m["decoder"] == "own" and m["decoders"] == [m["name"]] for m in listed["models"])
    # what a user chooses from: griffinlim, hifigan, the default pairings (the pairings' parts are not listed)
    assert vocoder_names() == ["griffinlim", "hifigan", "latentcodec-maggl-routed-v1", "latentcodec-maggl-routed-v2",
                               "latentcodec-maggl-routed-v3"]
    assert main(["info", str(VECTORS / "v0.1.0_small.alat")]) == 0
    text = capsys.readouterr().out
    assert "latentcodec-small (fingerprint 64706e0827a356d7, shipped with this package)" in text
    assert "decodes   with griffinlim, decoder its own" in text


def test_file_of_the_default_names_and_decodes_with_the_default_model(tmp_path) -> None:
    from latentcodec.models.loader import load_model
    from latentcodec.models.registry import DEFAULT_MODEL

    example = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"
    clip = tmp_path / "clip.wav"
    x, rate = sf.read(example, dtype="int16")
    sf.write(clip, x[: 3 * rate], rate)
    assert main(["encode", str(clip), str(tmp_path / "x.alat"), "--quiet"]) == 0
    with AlatReader(tmp_path / "x.alat") as r:
        assert r.header.model_name == DEFAULT_MODEL
        assert r.header.model_fingerprint == load_model(DEFAULT_MODEL).fingerprint
    assert main(["decode", str(tmp_path / "x.alat"), str(tmp_path / "y.wav"), "--quiet"]) == 0
    assert sf.info(tmp_path / "y.wav").frames == 3 * rate


def test_pairing_names_the_decoders_arithmetic() -> None:
    """A pairing's precision applies where its vocoder decodes; asked for, any precision; another vocoder:
    float32, as every file decoded before pairings named one."""
    from latentcodec.vocoders.registry import decode_precision, pairing

    assert pairing("latentcodec-small-v4").precision == "auto" and pairing("latentcodec-small-v2").precision == "float32"
    assert pairing("latentcodec-small") == pairing("no-such-model") and pairing("latentcodec-small").vocoder == "griffinlim"
    v4 = pairing("latentcodec-small-v4").vocoder
    assert decode_precision("latentcodec-small-v4", None, None) == decode_precision("latentcodec-small-v4", v4, None)
    assert decode_precision("latentcodec-small-v4", None, None) == "auto"
    assert decode_precision("latentcodec-small-v4", "griffinlim", None) == "float32"
    assert decode_precision("latentcodec-small-v2", None, "bfloat16") == "bfloat16"


@pytest.mark.slow
def test_v4_file_decodes_in_its_pairings_precision_or_as_before_on_request(tmp_path, capsys) -> None:
    """On OpenVINO the v4 pairing's decoder runs in bfloat16 where the CPU has it; --decoder-precision float32 gives
    the samples of the float32 decoder (onnxruntime's, to float rounding), as before the pairing."""
    import json

    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    from latentcodec.runtime.openvino_vae import native_bfloat16

    example = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"
    x, rate = sf.read(example, dtype="int16")
    sf.write(tmp_path / "clip.wav", x[: 3 * rate], rate)
    assert main(["encode", str(tmp_path / "clip.wav"), str(tmp_path / "x.alat"), "--quiet", "--model",
                 "latentcodec-small-v4"]) == 0
    out = {}
    for name, args in (("paired", ["--runtime", "openvino"]), ("f32", ["--runtime", "openvino", "--decoder-precision", "float32"]),
                       ("onnx", ["--runtime", "onnx"])):
        assert main(["decode", str(tmp_path / "x.alat"), str(tmp_path / f"{name}.wav"), "--json", *args]) == 0
        out[name] = (json.loads(capsys.readouterr().out)["precision"],
                     sf.read(tmp_path / f"{name}.wav", dtype="int16")[0].astype(np.int32))
    assert out["paired"][0] == ("bfloat16" if native_bfloat16() else "float32")
    assert out["f32"][0] == out["onnx"][0] == "float32"
    assert np.abs(out["f32"][1] - out["onnx"][1]).mean() <= 0.75  # the pinned files' bound
    if native_bfloat16():  # the bfloat16 decoder moves the samples (90-280 LSB on average), within the seed spread
        assert np.abs(out["paired"][1] - out["onnx"][1]).mean() > 0.75
