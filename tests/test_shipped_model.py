"""The weights shipped in the package load through the real loader, are the default, and are trained:
broken or untrained weights fail here."""
from __future__ import annotations

from pathlib import Path

from latentcodec.evaluate import evaluate
from latentcodec.models.loader import load_model
from latentcodec.models.registry import DEFAULT_MODEL, shipped_models
from latentcodec.options import DecodeOptions, EncodeOptions

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "speech_codec2_male.wav"


def test_default_model_is_shipped_and_small() -> None:
    folder = shipped_models()[DEFAULT_MODEL]
    sizes = [(p.suffix == ".onnx", p.stat().st_size) for p in folder.iterdir()]
    assert sum(s for graph, s in sizes if not graph) <= 10 * 2**20  # the weights and their cards
    assert sum(s for graph, s in sizes if graph) <= 8 * 2**20  # the graphs made from them (float16 weights)
    vae = load_model().runner
    assert (vae.config.in_channels, vae.config.latent_channels) == (1, 8)


def test_shipped_model_quality_on_a_dev_clip() -> None:
    """At release on this clip: VAE alone 2.49 dB, end to end 2.88 dB at 10.8 kbps. The model this one was
    fine-tuned from (2.85 / 3.21 dB) fails here, and so do weights after 250 training steps (6.1 dB)."""
    model = load_model()
    vae_alone = evaluate(EXAMPLE, EncodeOptions(model=model, bits=16), DecodeOptions(gl_iters=4))
    assert vae_alone["latent_mel_l1_db"] <= 2.75
    default = evaluate(EXAMPLE, EncodeOptions(model=model))
    assert default["log_mel_l1_db"] <= 3.3
    assert default["kbps"] <= 16.0
