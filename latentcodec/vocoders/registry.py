"""The vocoder registry: which vocoders there are, which one decodes each model's files, and loading one by
name. Each kind of vocoder is a module beneath this one and never imports it: ``griffinlim`` (and the
mel's inverse), ``magnitude_net`` (a network giving Griffin-Lim its magnitude), ``routed`` (a speech
detector choosing between two of them per frame), ``vocos`` (a Vocos-style generator), ``hifigan`` (a hub
model's own); ``windows`` runs any of them over a long mel. Importing this module costs no torch.

Neural vocoders ship under ``weights/vocoders/NAME/``, apart from the VAEs so that a vocoder's name is never
taken for a ``--model``. Names are versions: weights once shipped never change under their name.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from latentcodec.audio.mel import AUDIOLDM_MEL, MelConfig
from latentcodec.constants import DEFAULT_GL_ITERS
from latentcodec.errors import ModelError
from latentcodec.models.checked import read_config
from latentcodec.models.registry import SHIPPED_DIR, shipped_folders

if TYPE_CHECKING:
    from latentcodec.models.loader import Model
    from latentcodec.vocoders.vocos import MelConvNeXt
    from latentcodec.vocoders.windows import Vocoder

SHIPPED_VOCODERS_DIR = SHIPPED_DIR / "vocoders"
BUILTIN_VOCODERS = {"griffinlim": "Momentum Griffin-Lim on the pseudo-inverted mel.",
                    "hifigan": "The HiFi-GAN in a hub model's vocoder/ folder (AudioLDM2's: not shipped)."}

# The vocoder a model's files decode with when none is named. A file records its model, not a vocoder, so
# a model's pairing may improve in a later release; models not listed decode with Griffin-Lim, as in 0.1.0.
# A pairing needs the vocoder to beat Griffin-Lim end to end on the dev clips on every kind (ViSQOL per
# kind, PESQ-wb and STOI on speech): latentcodec-maggl-routed-v1 does for latentcodec-small-v2, -v2 for
# latentcodec-small-v3 and -v3 for latentcodec-small-v4, each with its second stage fitted to its model's
# decoded mels (their MODEL.md).
DEFAULT_VOCODERS: dict[str, str] = {"latentcodec-small-v2": "latentcodec-maggl-routed-v1",
                                    "latentcodec-small-v3": "latentcodec-maggl-routed-v2",
                                    "latentcodec-small-v4": "latentcodec-maggl-routed-v3"}


def default_vocoder(model: str) -> str:
    """The vocoder that decodes ``model``'s files unless another is named."""
    return DEFAULT_VOCODERS.get(model, "griffinlim")


def shipped_vocoders() -> dict[str, Path]:
    """Names of the neural vocoders inside the package, and where their weights lie."""
    return shipped_folders(SHIPPED_VOCODERS_DIR)


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
    from latentcodec.vocoders.routed import is_routed_folder

    if is_net_folder(Path(name)) or is_routed_folder(Path(name)):
        return Path(name)
    raise ModelError(f"vocoder '{name}' not found: use one of {', '.join(vocoder_names())}, "
                     f"or a folder written by alat train-vocoder or recipes/train_speech_detector.py", "vocoder")


def load_vocoder(name: str, mel: MelConfig = AUDIOLDM_MEL, model: Model | None = None, device: str = "cpu",
                 gl_iters: int | None = None, runtime: str = "torch") -> "Vocoder":
    """The vocoder called ``name``, for mels of ``mel``; 'hifigan' is the ``model``'s own. ``gl_iters``
    None: Griffin-Lim's own default, or the one a magnitude network was shipped with. ``runtime`` 'onnx':
    on numpy and onnxruntime (``onnx_vocoder``) where every network it needs has its graph."""
    from latentcodec.models.loader import torch_installed

    if name not in ("griffinlim", *shipped_vocoders()) and not torch_installed():
        raise ModelError(f"vocoder '{name}' needs the torch runtime, not installed: pip install 'latentcodec[torch]' "
                         f"(without it: {', '.join(n for n in vocoder_names() if n != 'hifigan')})", "vocoder")
    if runtime == "onnx" and name != "hifigan" and (name == "griffinlim" or _has_graphs(neural_vocoder_folder(name))):
        return _onnx_vocoder(name, mel, gl_iters)
    from latentcodec.vocoders.griffinlim import GriffinLimVocoder

    if name == "griffinlim":
        return GriffinLimVocoder(gl_iters or DEFAULT_GL_ITERS, device, mel)
    if name == "hifigan":
        from latentcodec.vocoders.hifigan import HifiGanVocoder, load_hifigan

        if model is None:
            raise ModelError("the hifigan vocoder needs the model whose HiFi-GAN it is", "vocoder")
        return HifiGanVocoder(load_hifigan(model, device), device, mel.hop)
    from latentcodec.vocoders.nets import load_net
    from latentcodec.vocoders.routed import is_routed_folder, load_routed

    folder = neural_vocoder_folder(name)
    if is_routed_folder(folder):
        return load_routed(folder, lambda part: _magnitude_part(part, folder, mel, device), mel, device, gl_iters)
    return vocoder_of(load_net(folder, device), mel, device, gl_iters, name)


def _has_graphs(folder: Path) -> bool:
    """Whether a magnitude network's folder, or each part of a routed one, holds its graph."""
    from latentcodec.runtime.onnx_vae import MAGNITUDE

    cfg = read_config(folder / "config.json")
    parts = [cfg[role] for role in ("speech", "other") if role in cfg]
    if parts:
        return all(p in shipped_vocoders() and _has_graphs(shipped_vocoders()[p]) for p in parts)
    return (folder / MAGNITUDE).is_file()


def _onnx_vocoder(name: str, mel: MelConfig, gl_iters: int | None) -> "Vocoder":
    """Griffin-Lim, a magnitude network or a routed pair on numpy and onnxruntime."""
    from latentcodec.vocoders import onnx_vocoder as ov

    if name == "griffinlim":
        return ov.GriffinLimVocoder(gl_iters or DEFAULT_GL_ITERS, mel)
    folder = neural_vocoder_folder(name)
    cfg = read_config(folder / "config.json")
    if "speech" in cfg:
        return ov.routed(folder, lambda part: _onnx_vocoder(part, mel, None).magnitude, mel, gl_iters)
    _check_fits(cfg, mel, name)
    return ov.GriffinLimVocoder(gl_iters or cfg.get("gl_iters", DEFAULT_GL_ITERS), mel,
                                ov.net_magnitude(folder, cfg["nnls_iters"], mel))


def vocoder_of(net: MelConvNeXt, mel: MelConfig = AUDIOLDM_MEL, device: str = "cpu",
               gl_iters: int | None = None, name: str = "") -> "Vocoder":
    """One of our vocoder networks as a vocoder for mels of ``mel``, which it must have been trained for."""
    from latentcodec.vocoders.griffinlim import GriffinLimVocoder
    from latentcodec.vocoders.magnitude_net import MagnitudeNet, magnitude_of
    from latentcodec.vocoders.vocos import NeuralVocoder

    c = net.cfg
    _check_fits(asdict(c), mel, name, isinstance(net, MagnitudeNet))
    if isinstance(net, MagnitudeNet):
        return GriffinLimVocoder(gl_iters or c.gl_iters, device, mel, magnitude_of(net, mel))
    return NeuralVocoder(net, device)


def _check_fits(c: dict, mel: MelConfig, name: str, magnitude: bool = True) -> None:
    """Refuse a vocoder network (its config's entries) trained for other mels than ``mel``."""
    fits = (c["n_mels"], c["hop"], mel.sample_rate) == (mel.n_mels, mel.hop, AUDIOLDM_MEL.sample_rate) \
        and math.isclose(c["log_floor"], mel.log_floor, rel_tol=1e-6)  # headers store the floor as float32
    if not fits:
        raise ModelError(f"vocoder '{name}' takes {c['n_mels']} mel bands at hop {c['hop']}, floor "
                         f"{c['log_floor']:g}, {AUDIOLDM_MEL.sample_rate} Hz; this mel has {mel.n_mels} at hop "
                         f"{mel.hop}, floor {mel.log_floor:g}, {mel.sample_rate} Hz")
    if magnitude and c["n_fft"] != mel.n_fft:
        raise ModelError(f"vocoder '{name}' gives an STFT of {c['n_fft']} points; this mel's has {mel.n_fft}")


def _magnitude_part(name: str, folder: Path, mel: MelConfig, device: str) -> "Callable":
    """A routed vocoder's part: the magnitude source of the magnitude network called ``name``."""
    from latentcodec.vocoders.griffinlim import GriffinLimVocoder
    from latentcodec.vocoders.routed import is_routed_folder

    # A routed part would load its own parts, and a folder naming itself would never end.
    part = None if name != "griffinlim" and is_routed_folder(neural_vocoder_folder(name)) else \
        load_vocoder(name, mel, device=device)
    if not isinstance(part, GriffinLimVocoder):
        raise ModelError(f"{folder}: its part '{name}' is not a magnitude network", "vocoder")
    return part.magnitude
