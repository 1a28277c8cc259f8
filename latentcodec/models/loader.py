"""Finding, loading and fingerprinting the VAE (and the optional HiFi-GAN) a .alat file names.

``--model`` takes a name the package registers (its shipped weights), a local directory in
diffusers layout (the VAE at its root or in ``vae/``), or a Hugging Face repo id (VAE in ``vae/``,
HiFi-GAN in ``vocoder/``) such as ``cvssp/audioldm2-music``.

A model runs on one of two runtimes (:func:`choose_runtime`), behind ``runtime.base.VaeRunner``:
onnxruntime (``runtime/onnx_vae.py``, the shipped models only, on the CPU, float32; no torch imported) or
torch and diffusers (``runtime/torch_vae.py``: any model, any device, the bfloat16 encoder).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentcodec.constants import RUNTIMES
from latentcodec.errors import LatentCodecError, ModelError
from latentcodec.models.checked import check_vae_folder, hub_folder
from latentcodec.models.coder_table import read_coder_table
from latentcodec.models.registry import DEFAULT_MODEL, shipped_models
from latentcodec.runtime.base import VaeRunner, torch_installed
from latentcodec.runtime.onnx_vae import OnnxVae, has_graphs, onnxruntime_installed, weights_fingerprint

if TYPE_CHECKING:
    import torch

VAE_WEIGHTS = "diffusion_pytorch_model.safetensors"  # a shipped model's weights, in diffusers' name

# The shipped model's architecture: AudioLDM2's VAE layout (1 -> 8 channels, three blocks, 4x down
# on time and mel) scaled down for CPU speed; no mid-block attention, so a window's output depends on
# its neighbours only through convolutions and GroupNorm statistics.
SMALL_VAE_CONFIG: dict[str, Any] = dict(
    in_channels=1,
    out_channels=1,
    latent_channels=8,
    block_out_channels=(32, 64, 128),
    layers_per_block=1,
    norm_num_groups=16,
    down_block_types=("DownEncoderBlock2D",) * 3,
    up_block_types=("UpDecoderBlock2D",) * 3,
    mid_block_add_attention=False,
    sample_size=256,
)


@dataclass
class Model:
    """A loaded VAE with the identity the .alat header records."""

    name: str
    runner: VaeRunner  # what encodes and decodes windows, on its runtime
    fingerprint: bytes
    location: str  # local directory or hub id, where a ``vocoder/`` may be found
    folder: str | None = None  # the local folder of its weights, where its coder.json may lie

    @property
    def runtime(self) -> str:
        return self.runner.runtime

    @property
    def device(self) -> str:
        return self.runner.device

    @property
    def latent_channels(self) -> int:
        return int(self.runner.config.latent_channels)

    @property
    def module(self) -> Any:
        """The diffusers ``AutoencoderKL`` of a model on the torch runtime (training, export, HiFi-GAN)."""
        module = getattr(self.runner, "module", None)
        if module is None:
            raise ModelError(
                f"model '{self.name}' runs on onnxruntime: its torch module needs the torch runtime", "runtime"
            )
        return module

    @cached_property
    def coder(self) -> dict | None:
        """coder.json beside the weights (version 2's transform and rate calibration), checked; read on first
        use, by the encoder, so that a decode never depends on it."""
        return read_coder_table(self.folder, self.latent_channels)


def fingerprint(vae: torch.nn.Module) -> bytes:
    """SHA-256 over parameter names, dtypes, shapes and bytes: the same weights give the same print,
    whatever file format or folder they were loaded from (``graphs.weights_fingerprint`` without torch)."""
    import torch

    h = hashlib.sha256()
    for key, t in sorted(vae.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.digest()


def vae_dir(root: Path) -> Path | None:
    for cand in (root / "vae", root):
        if (cand / "config.json").is_file():
            return cand
    return None


def choose_runtime(runtime: str, name: str, device: str = "cpu", precision: str = "auto") -> str:
    """'onnx' or 'torch': what ``runtime`` (auto, onnx or torch) means for model ``name``. The rule for
    auto: onnxruntime when the model is shipped with its graphs, the device is the CPU (or auto), the
    encoder is not asked for bfloat16 (a torch path: 1.6x on CPUs that have it) and onnxruntime is
    installed; torch otherwise (hub models and folders, --device cuda, bfloat16)."""
    if runtime not in RUNTIMES:
        raise LatentCodecError(f"unknown runtime '{runtime}': choose one of {', '.join(RUNTIMES)}", "runtime")
    shipped = shipped_models()
    graphs = name in shipped and has_graphs(shipped[name])
    onnx_fits = graphs and device in ("cpu", "auto") and precision != "bfloat16"
    if runtime == "onnx":
        if not graphs:
            raise ModelError(
                f"model '{name}' has no ONNX graphs (only the shipped models do): use the torch runtime", "runtime"
            )
        if not onnx_fits:
            raise LatentCodecError(
                "the onnx runtime runs on the CPU in float32: use the torch runtime for a GPU or bfloat16", "runtime"
            )
    if runtime == "onnx" or (runtime == "auto" and onnx_fits and onnxruntime_installed()):
        if not onnxruntime_installed():
            raise ModelError("onnxruntime is not installed: pip install onnxruntime", "runtime")
        return "onnx"
    if not torch_installed():
        raise ModelError(
            f"model '{name}' needs the torch runtime"
            + ("" if runtime == "torch" else " (not shipped with graphs, or asked for a GPU or bfloat16)")
            + ": pip install 'latentcodec[torch]'",
            "runtime",
        )
    return "torch"


def cpu_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16), read from /proc/cpuinfo's
    flags without importing torch (``precision.native_bfloat16`` asks torch); False where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def folder_runtime(kind: str, runtime: str, precision: str = "auto") -> str:
    """The runtime of a folder's ``kind`` (encode or decode) workers, which pay a runtime's start-up once:
    where ``runtime`` is auto and torch is installed, torch to decode (its Griffin-Lim's FFTs on MKL: 1.2x
    the onnx runtime's decode beyond start-up, docs/performance.md) and to encode on a CPU with native
    bfloat16 and ``precision`` auto (its bfloat16 encoder, 1.6-2.1x the float32 one, ``precision.py``);
    ``runtime`` as given otherwise (then :func:`choose_runtime`'s rule)."""
    if runtime != "auto" or not torch_installed():
        return runtime
    if kind == "decode" or (precision == "auto" and cpu_bfloat16()):
        return "torch"
    return runtime


def load_model(name: str = DEFAULT_MODEL, device: str = "cpu", runtime: str = "auto", precision: str = "auto") -> Model:
    """Load the VAE ``name`` (shipped name, local directory or hub id) in float32 on ``device``, on the
    runtime :func:`choose_runtime` picks (``precision``: what the encoder will be asked for)."""
    if choose_runtime(runtime, name, device, precision) == "onnx":
        folder = shipped_models()[name]
        print_ = weights_fingerprint(folder / VAE_WEIGHTS)
        return Model(
            name=name, runner=OnnxVae(folder, print_), fingerprint=print_, location=str(folder), folder=str(folder)
        )
    return _load_torch(name, pick_device(device))


def _load_torch(name: str, device: str) -> Model:
    import torch
    from diffusers import AutoencoderKL
    from diffusers.utils import logging as diffusers_logging

    from latentcodec.runtime.cores import threads_asked

    diffusers_logging.set_verbosity_error()
    threads = threads_asked()
    if threads:
        torch.set_num_threads(threads)
    shipped = shipped_models()
    if name in shipped:
        location = path = str(shipped[name])
    elif Path(name).exists():
        if not name.encode("utf-8", "surrogateescape").decode("utf-8", "replace") == name:  # undecodable bytes
            raise ModelError(
                f"model {name!r}: the folder's name is not UTF-8, which the weights' reader and a .alat "
                f"header (naming its model) need: rename the folder"
            )
        folder = vae_dir(Path(name))
        if folder is None:
            raise ModelError(f"{name}: no config.json at its root or in vae/: not a diffusers model directory")
        location, path = str(Path(name)), str(folder)
    elif "/" in name and not name.startswith((".", "/")) and name.count("/") == 1:
        location, path = name, str(hub_folder(name, "vae", ("config.json", VAE_WEIGHTS)))
    else:
        known = ", ".join(shipped) or "none"
        raise ModelError(
            f"model '{name}' not found: not a shipped model ({known}), a local directory or a Hugging Face repo id"
        )
    check_vae_folder(Path(path), VAE_WEIGHTS)  # before anything is built: a folder is data
    try:
        with warnings.catch_warnings():  # diffusers/hub deprecation chatter is not the user's business
            warnings.simplefilter("ignore")
            vae = AutoencoderKL.from_pretrained(
                path, torch_dtype=torch.float32, low_cpu_mem_usage=False, use_safetensors=True
            )
    except Exception as e:  # diffusers raises many types (OSError, JSON, safetensors)
        raise ModelError(f"cannot load model '{name}': {type(e).__name__}: {str(e).splitlines()[0][:200]}") from e
    vae = vae.to(device).eval().requires_grad_(False)
    from latentcodec.runtime.torch_vae import TorchVae

    model = Model(name=name, runner=TorchVae(vae), fingerprint=fingerprint(vae), location=location, folder=path)
    # Channels-last convolutions: oneDNN's fastest layout on a CPU (the small model, one core, 2 windows:
    # encoder 140 -> 125 ms, decoder 404 -> 328 ms; latents the same to 2e-5). After the fingerprint, which
    # reads the weights in plain layout: a channels-last weight with a size-1 axis passes as contiguous
    # but has no byte view (tried: loading then fails), and the print stays as it was.
    from latentcodec.runtime.upsample import use_subpixel_upsamplers

    vae.to(memory_format=torch.channels_last)
    use_subpixel_upsamplers(vae)  # the same function, 2.25x fewer multiply-adds (upsample.py)
    return model


def pick_device(device: str) -> str:
    """'auto' takes a GPU when there is one (without torch: the CPU, and torch is not imported)."""
    if device == "cpu" or (device == "auto" and not torch_installed()):
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("no CUDA GPU is available here", "device")
    return device
