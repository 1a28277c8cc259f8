"""The vocoder registry: which vocoders there are, which one decodes each model's files, and the one place
a vocoder's name is resolved into a vocoder (:func:`load_vocoder`), a routed one's two parts included.

Each kind of vocoder is a module beneath this one that never imports it, holding its numpy/onnxruntime form
beside its torch form where both runtimes run it: ``griffinlim`` (and the mel's inverse), ``magnitude_net``
(a network giving Griffin-Lim its magnitude), ``routed`` (``speech_detector`` choosing between two of
those per frame), ``vocos`` (a Vocos-style generator, torch only) and ``hifigan`` (a hub model's own, torch
only); ``nets`` holds our networks on torch, ``windows`` runs any vocoder over a long mel. Importing this
module costs no torch, nor does loading a shipped vocoder on the onnx runtime.

Neural vocoders ship under ``weights/NAME/`` beside the VAEs, told apart by their config
(``models.registry``), so that a vocoder's name is never taken for a model. Names are versions: weights once
shipped never change under their name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentcodec.audio.mel import AUDIOLDM_MEL, MelConfig
from latentcodec.constants import DEFAULT_GL_ITERS, GRAPH_RUNTIMES, OWN_DECODER
from latentcodec.errors import ModelError
from latentcodec.models.checked import read_config
from latentcodec.models.registry import shipped_vocoder_folders
from latentcodec.vocoders.griffinlim import (
    GriffinLimVocoder,
    Magnitude,
    NumpyGriffinLimVocoder,
    mel_to_linear,
    mel_to_linear_np,
)
from latentcodec.vocoders.magnitude_net import graph_magnitude, has_graph, magnitude_of
from latentcodec.vocoders.routed import is_routed_folder, read_router, routed_magnitude

if TYPE_CHECKING:
    from latentcodec.models.loader import Model
    from latentcodec.vocoders.nets import MelConvNeXt
    from latentcodec.vocoders.windows import Vocoder

EitherMagnitude = Callable[[Any], Any]  # griffinlim.Magnitude (numpy) or TorchMagnitude, as the runtime is

BUILTIN_VOCODERS = {
    "griffinlim": "Momentum Griffin-Lim on the pseudo-inverted mel.",
    "hifigan": "The HiFi-GAN in a hub model's vocoder/ folder (AudioLDM2's: not shipped).",
}


@dataclass(frozen=True)
class Pairing:
    """How a model's files decode unless told otherwise: the vocoder, the VAE decoder's arithmetic (float32;
    auto: bfloat16 where the runtime running it computes bfloat16 natively, else float32), and the VAE decoder
    itself: the model's own, or a shipped model of its latent space (``loader.shipped_decoders``) whose decoder
    was trained for its latents."""

    vocoder: str
    precision: str = "float32"
    decoder: str = OWN_DECODER


# A file records its model, not how it decodes, so a model's pairing may improve in a later release; models
# not listed decode with Griffin-Lim in float32, as in 0.1.0. A pairing's vocoder must beat Griffin-Lim end
# to end on the dev clips on every kind (ViSQOL per kind, PESQ-wb and STOI on speech):
# latentcodec-maggl-routed-v1 does for latentcodec-small-v2, -v2 for latentcodec-small-v3 and -v3 for
# latentcodec-small-v4, each with its second stage fitted to its model's decoded mels (their MODEL.md).
# latentcodec-small-v4's decoder runs in bfloat16 where it can: 1.46x its float32 speed on OpenVINO with
# every score within Griffin-Lim's seed spread (docs/performance.md); --decoder-precision float32 decodes its files
# as the releases before this pairing did.
PAIRINGS: dict[str, Pairing] = {
    "latentcodec-small-v2": Pairing("latentcodec-maggl-routed-v1"),
    "latentcodec-small-v3": Pairing("latentcodec-maggl-routed-v2"),
    "latentcodec-small-v4": Pairing("latentcodec-maggl-routed-v3", "auto"),
}


def pairing(model: str) -> Pairing:
    """How ``model``'s files decode unless told otherwise."""
    return PAIRINGS.get(model, Pairing("griffinlim"))


def decoder_for(model: str, asked: Model | str | None) -> Model | str | None:
    """What decodes ``model``'s latents: ``asked`` (a loaded model, a shipped name or a folder; 'own' or
    ``model`` itself: its own decoder), else the pairing's decoder; None for the model's own."""
    chosen = asked if asked is not None else pairing(model).decoder
    return None if chosen in (OWN_DECODER, model) else chosen


def decoder_name(model: str, asked: Model | str | None) -> str | None:
    """The name of what :func:`decoder_for` picks (a loaded model's own name); None for the model's own."""
    chosen = decoder_for(model, asked)
    return chosen if chosen is None or isinstance(chosen, str) else chosen.name


def default_vocoder(model: str) -> str:
    """The vocoder that decodes ``model``'s files unless another is named."""
    return pairing(model).vocoder


def decode_precision(model: str, vocoder: object, asked: str | None) -> str:
    """The VAE decoder's arithmetic as asked for ``model``'s files: ``asked``; else the pairing's where its
    vocoder decodes (``vocoder`` None or its name); else float32, as every file decoded before pairings."""
    if asked is not None:
        return asked
    paired = pairing(model)
    return paired.precision if vocoder in (None, paired.vocoder) else "float32"


def shipped_vocoders() -> dict[str, Path]:
    """Names of the neural vocoders inside the package, and where their weights lie."""
    return shipped_vocoder_folders()


def vocoder_parts() -> set[str]:
    """Shipped vocoders that are parts of a routed one: loadable by name, not listed for a user to choose."""
    parts: set[str] = set()
    for folder in shipped_vocoders().values():
        cfg = json.loads((folder / "config.json").read_text())
        parts |= {cfg[role] for role in ("speech", "other") if role in cfg}
    return parts


def vocoder_names() -> list[str]:
    """The vocoders a user chooses from: built-in, then shipped (parts of a routed vocoder left out)."""
    parts = vocoder_parts()
    return [*BUILTIN_VOCODERS, *(n for n in shipped_vocoders() if n not in parts)]


def neural_vocoder_folder(name: str) -> Path:
    """The folder of a shipped neural vocoder's name, or ``name`` itself when it is such a folder."""
    shipped = shipped_vocoders()
    if name in shipped:
        return shipped[name]
    from latentcodec.vocoders.nets import is_net_folder

    if is_net_folder(Path(name)) or is_routed_folder(Path(name)):
        return Path(name)
    raise ModelError(
        f"vocoder '{name}' not found: use one of {', '.join(vocoder_names())}, "
        f"or a folder written by alat train-vocoder or recipes/train_speech_detector.py",
        "vocoder",
    )


def load_vocoder(
    name: str,
    mel: MelConfig = AUDIOLDM_MEL,
    model: Model | None = None,
    device: str = "cpu",
    gl_iters: int | None = None,
    runtime: str = "torch",
) -> Vocoder:
    """The vocoder called ``name`` (built-in, shipped, or a folder), for mels of ``mel``; 'hifigan' is the
    ``model``'s own. ``gl_iters`` None: Griffin-Lim's own default, or the one a magnitude network or router
    was shipped with. ``runtime`` openvino or onnx: on numpy and onnxruntime where every network it needs has its
    graph (torch otherwise: a folder without graphs, Vocos, HiFi-GAN)."""
    from latentcodec.models.loader import torch_installed

    if name not in ("griffinlim", *shipped_vocoders()) and not torch_installed():
        raise ModelError(
            f"vocoder '{name}' needs the torch runtime, not installed: pip install 'latentcodec[torch]' "
            f"(without it: {', '.join(n for n in vocoder_names() if n != 'hifigan')})",
            "vocoder",
        )
    if name == "hifigan":
        from latentcodec.vocoders.hifigan import HifiGanVocoder, load_hifigan

        if model is None:
            raise ModelError("the hifigan vocoder needs the model whose HiFi-GAN it is", "vocoder")
        return HifiGanVocoder(load_hifigan(model, device), device, mel.hop)
    onnx = runtime in GRAPH_RUNTIMES  # numpy and onnxruntime's magnitude graphs, no torch
    if name == "griffinlim":
        return _griffin_lim(gl_iters or DEFAULT_GL_ITERS, mel, device, None, onnx)
    folder = neural_vocoder_folder(name)
    if is_routed_folder(folder):
        return _routed(folder, mel, device, gl_iters, onnx)
    if onnx and has_graph(folder):
        magnitude, shipped_iters = _graph_magnitude(folder, name, mel)
        return _griffin_lim(gl_iters or shipped_iters, mel, device, magnitude, True)
    from latentcodec.vocoders.nets import load_net

    return vocoder_of(load_net(folder, device), mel, device, gl_iters, name)


def _griffin_lim(n_iter: int, mel: MelConfig, device: str, magnitude: EitherMagnitude | None, onnx: bool) -> Vocoder:
    """Griffin-Lim over ``magnitude`` (None: the mel's inverse), on numpy (``onnx``) or on torch."""
    if onnx:
        return NumpyGriffinLimVocoder(n_iter, mel, magnitude)
    return GriffinLimVocoder(n_iter, device, mel, magnitude)


def _graph_magnitude(folder: Path, name: str, mel: MelConfig) -> tuple[Magnitude, int]:
    """A magnitude network's onnx form and the Griffin-Lim iterations it was shipped with."""
    cfg = read_config(folder / "config.json")
    _check_fits(cfg, mel, name)
    return graph_magnitude(folder, cfg["nnls_iters"], mel), cfg.get("gl_iters", DEFAULT_GL_ITERS)


def _routed(folder: Path, mel: MelConfig, device: str, gl_iters: int | None, onnx: bool) -> Vocoder:
    """The router in ``folder``, its two parts resolved here in the same pass: each the mel's inverse
    ('griffinlim') or a magnitude network, never a router (one naming itself would never end); on numpy and
    onnxruntime when ``onnx`` and every network part has its graph."""
    router = read_router(folder, mel.n_mels)
    names = (router.speech, router.other)
    parts = [None if n == "griffinlim" else neural_vocoder_folder(n) for n in names]
    for n, p in zip(names, parts):
        if p is not None and is_routed_folder(p):
            raise _not_a_magnitude_part(folder, n)
    onnx = onnx and all(p is None or has_graph(p) for p in parts)
    speech, other = (_part_magnitude(folder, n, p, mel, device, onnx) for n, p in zip(names, parts))
    return _griffin_lim(
        gl_iters or router.gl_iters, mel, device, routed_magnitude(router.detector, speech, other), onnx
    )


def _part_magnitude(
    router: Path, name: str, part: Path | None, mel: MelConfig, device: str, onnx: bool
) -> EitherMagnitude:
    """A router's part ``name`` (its folder ``part``; None: 'griffinlim') as a magnitude source."""
    if part is None:
        return partial(mel_to_linear_np if onnx else mel_to_linear, cfg=mel)
    if onnx:
        return _graph_magnitude(part, name, mel)[0]
    from latentcodec.vocoders.nets import MagnitudeNet, load_net

    net = load_net(part, device)
    if not isinstance(net, MagnitudeNet):
        raise _not_a_magnitude_part(router, name)
    _check_fits(asdict(net.cfg), mel, name)
    return magnitude_of(net, mel)


def _not_a_magnitude_part(router: Path, name: str) -> ModelError:
    """The one refusal of a router's part: whatever else it is (a router, a Vocos), it is not a magnitude source."""
    return ModelError(f"{router}: its part '{name}' is not a magnitude network", "vocoder")


def vocoder_of(
    net: MelConvNeXt, mel: MelConfig = AUDIOLDM_MEL, device: str = "cpu", gl_iters: int | None = None, name: str = ""
) -> Vocoder:
    """One of our vocoder networks as a vocoder for mels of ``mel``, which it must have been trained for."""
    from latentcodec.vocoders.nets import MagnitudeNet, VocosGenerator

    c = net.cfg
    _check_fits(asdict(c), mel, name, isinstance(net, MagnitudeNet))
    if isinstance(net, MagnitudeNet):
        return GriffinLimVocoder(gl_iters or c.gl_iters, device, mel, magnitude_of(net, mel))
    from latentcodec.vocoders.vocos import NeuralVocoder

    assert isinstance(net, VocosGenerator), f"a vocoder network is a MagnitudeNet or a VocosGenerator: {type(net)}"
    return NeuralVocoder(net, device)


def _check_fits(c: dict, mel: MelConfig, name: str, magnitude: bool = True) -> None:
    """Refuse a vocoder network (its config's entries) trained for other mels than ``mel``."""
    fits = (c["n_mels"], c["hop"], mel.sample_rate) == (mel.n_mels, mel.hop, AUDIOLDM_MEL.sample_rate) and math.isclose(
        c["log_floor"], mel.log_floor, rel_tol=1e-6
    )  # headers store the floor as float32
    if not fits:
        raise ModelError(
            f"vocoder '{name}' takes {c['n_mels']} mel bands at hop {c['hop']}, floor "
            f"{c['log_floor']:g}, {AUDIOLDM_MEL.sample_rate} Hz; this mel has {mel.n_mels} at hop "
            f"{mel.hop}, floor {mel.log_floor:g}, {mel.sample_rate} Hz"
        )
    if magnitude and c["n_fft"] != mel.n_fft:
        raise ModelError(f"vocoder '{name}' gives an STFT of {c['n_fft']} points; this mel's has {mel.n_fft}")
