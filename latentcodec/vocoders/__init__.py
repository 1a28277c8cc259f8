"""The vocoder registry: which vocoders there are, which one decodes each model's files, and loading one by
name. Each kind of vocoder is a module beneath this one and never imports it: ``griffinlim`` (and the
mel's inverse), ``magnitude_net`` (a network giving Griffin-Lim its magnitude), ``routed`` (a speech
detector choosing between two of them per frame), ``vocos`` (a Vocos-style generator), ``hifigan`` (a hub
model's own); ``windows`` runs any of them over a long mel. Importing this module costs no torch.

Neural vocoders ship under ``weights/vocoders/NAME/``, apart from the VAEs so that a vocoder's name is never
taken for a ``--model``. Names are versions: weights once shipped never change under their name.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from latentcodec.audio.mel import AUDIOLDM_MEL, MelConfig
from latentcodec.constants import DEFAULT_GL_ITERS
from latentcodec.errors import ModelError
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
# kind, PESQ-wb and STOI on speech): latentcodec-maggl-routed-v1 does for latentcodec-small-v2 (its MODEL.md).
DEFAULT_VOCODERS: dict[str, str] = {"latentcodec-small-v2": "latentcodec-maggl-routed-v1"}


def default_vocoder(model: str) -> str:
    """The vocoder that decodes ``model``'s files unless another is named."""
    return DEFAULT_VOCODERS.get(model, "griffinlim")


def shipped_vocoders() -> dict[str, Path]:
    """Names of the neural vocoders inside the package, and where their weights lie."""
    return shipped_folders(SHIPPED_VOCODERS_DIR)


def vocoder_parts() -> set[str]:
    """Shipped vocoders that are parts of a routed one: loadable by name, not listed for a user to choose."""
    import json

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
    from latentcodec.vocoders.nets import is_net_folder
    from latentcodec.vocoders.routed import is_routed_folder

    shipped = shipped_vocoders()
    if name in shipped:
        return shipped[name]
    if is_net_folder(Path(name)) or is_routed_folder(Path(name)):
        return Path(name)
    raise ModelError(f"vocoder '{name}' not found: use one of {', '.join(vocoder_names())}, "
                     f"or a folder written by alat train-vocoder or training/train_speech_detector.py", "vocoder")


def load_vocoder(name: str, mel: MelConfig = AUDIOLDM_MEL, model: Model | None = None, device: str = "cpu",
                 gl_iters: int | None = None) -> "Vocoder":
    """The vocoder called ``name``, for mels of ``mel``; 'hifigan' is the ``model``'s own. ``gl_iters``
    None: Griffin-Lim's own default, or the one a magnitude network was shipped with."""
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


def vocoder_of(net: MelConvNeXt, mel: MelConfig = AUDIOLDM_MEL, device: str = "cpu",
               gl_iters: int | None = None, name: str = "") -> "Vocoder":
    """One of our vocoder networks as a vocoder for mels of ``mel``, which it must have been trained for."""
    from latentcodec.vocoders.griffinlim import GriffinLimVocoder
    from latentcodec.vocoders.magnitude_net import MagnitudeNet, magnitude_of
    from latentcodec.vocoders.vocos import NeuralVocoder

    c = net.cfg
    fits = (c.n_mels, c.hop, mel.sample_rate) == (mel.n_mels, mel.hop, AUDIOLDM_MEL.sample_rate) \
        and math.isclose(c.log_floor, mel.log_floor, rel_tol=1e-6)  # headers store the floor as float32
    if not fits:
        raise ModelError(f"vocoder '{name}' takes {c.n_mels} mel bands at hop {c.hop}, floor {c.log_floor:g}, "
                         f"{AUDIOLDM_MEL.sample_rate} Hz; this mel has {mel.n_mels} at hop {mel.hop}, floor "
                         f"{mel.log_floor:g}, {mel.sample_rate} Hz")
    if isinstance(net, MagnitudeNet):
        if c.n_fft != mel.n_fft:
            raise ModelError(f"vocoder '{name}' gives an STFT of {c.n_fft} points; this mel's has {mel.n_fft}")
        return GriffinLimVocoder(gl_iters or c.gl_iters, device, mel, magnitude_of(net, mel))
    return NeuralVocoder(net, device)


def _magnitude_part(name: str, folder: Path, mel: MelConfig, device: str) -> "Callable":
    """A routed vocoder's part: the magnitude source of the magnitude network called ``name``."""
    from latentcodec.vocoders.griffinlim import GriffinLimVocoder

    part = load_vocoder(name, mel, device=device)
    if not isinstance(part, GriffinLimVocoder):
        raise ModelError(f"{folder}: its part '{name}' is not a magnitude network", "vocoder")
    return part.magnitude
