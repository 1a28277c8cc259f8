"""Finding, loading and fingerprinting the VAE (and the optional HiFi-GAN) a .alat file names.

``--model`` takes a name the package registers (its shipped weights), a local directory in
diffusers layout (the VAE at its root or in ``vae/``), or a Hugging Face repo id (VAE in ``vae/``,
HiFi-GAN in ``vocoder/``) such as ``cvssp/audioldm2-music``.

A model runs on one of three runtimes (:func:`choose_runtime`), behind ``runtime.base.VaeRunner``: the
shipped models' ONNX graphs on OpenVINO (``runtime/openvino_vae.py``: the CPU, the bfloat16 encoder) or on
onnxruntime (``runtime/onnx_vae.py``: the CPU, float32), no torch imported; or torch and diffusers
(``runtime/torch_vae.py``: any model, any device).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentcodec.constants import GRAPH_RUNTIMES, RUNTIMES
from latentcodec.errors import LatentCodecError, ModelError
from latentcodec.models.checked import check_vae_folder, hub_folder
from latentcodec.models.coder_table import read_coder_table
from latentcodec.models.registry import DEFAULT_MODEL, shipped_models
from latentcodec.runtime.base import VaeRunner, torch_installed
from latentcodec.runtime.onnx_vae import OnnxVae, has_graphs, onnxruntime_installed, weights_fingerprint
from latentcodec.runtime.openvino_vae import OpenVinoVae, openvino_installed

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
    decodes_for: str | None = None  # the model whose files it decodes, when it is another's decoder (a pairing's)

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


# The weights a latent depends on, before the sampling: a model's latent space. Two models that share them write
# the same latents, so each one's decoder decodes the other's files; ``alat train --freeze-encoder`` keeps them.
LATENT_SPACE_PARTS = ("encoder.", "quant_conv.")


def latent_space_print(folder: str | Path) -> bytes:
    """SHA-256 over the weights of a model folder's latent space (LATENT_SPACE_PARTS), as the fingerprint hashes
    them."""
    return _print_of(Path(folder) / VAE_WEIGHTS, LATENT_SPACE_PARTS)


def file_fingerprint(folder: str | Path) -> bytes:
    """A model folder's fingerprint from its weights file, without building the model."""
    return _print_of(Path(folder) / VAE_WEIGHTS, ())


def _print_of(path: Path, parts: tuple[str, ...]) -> bytes:
    """``weights_fingerprint`` of ``path``, once per file version: a folder's decoder checks it for every file."""
    try:
        st = path.stat()
    except OSError as e:
        raise ModelError(f"cannot read the weights {path}: {e.strerror or e}") from e
    return _cached_print(str(path), st.st_mtime_ns, st.st_size, parts)


@lru_cache(maxsize=32)
def _cached_print(path: str, mtime_ns: int, size: int, parts: tuple[str, ...]) -> bytes:
    return weights_fingerprint(Path(path), parts)


def shipped_decoders(model: str) -> list[str]:
    """The shipped models of ``model``'s latent space, itself first: each one's decoder decodes its files."""
    shipped = shipped_models()
    if model not in shipped:
        return []
    space = latent_space_print(shipped[model])
    return [model, *(n for n, f in shipped.items() if n != model and latent_space_print(f) == space)]


def vae_dir(root: Path) -> Path | None:
    for cand in (root / "vae", root):
        if (cand / "config.json").is_file():
            return cand
    return None


OPENVINO_SECONDS = 60.0  # a shorter encode starts faster on onnxruntime than it runs faster on OpenVINO
TORCH_DECODE_SECONDS = 1200.0  # a longer float32 decode runs faster on torch, where installed, than it starts slower


def choose_runtime(
    runtime: str,
    name: str,
    device: str = "cpu",
    precision: str = "auto",
    kind: str = "encode",
    seconds: float | None = None,
) -> str:
    """'openvino', 'onnx' or 'torch': what ``runtime`` (one of RUNTIMES) means for model ``name`` in a job of
    ``kind`` (encode or decode) over ``seconds`` of audio (None: a folder's worker, whose start-up is paid
    once for many files); ``precision``: the encoder's, or the decoder's, as asked. The rule for auto:
    :func:`_auto_graphs` for a shipped model with its graphs on the CPU (or auto); torch otherwise (hub models
    and folders, a GPU)."""
    if runtime not in RUNTIMES:
        raise LatentCodecError(f"unknown runtime '{runtime}': choose one of {', '.join(RUNTIMES)}", "runtime")
    shipped = shipped_models()
    graphs = name in shipped and has_graphs(shipped[name])
    cpu = device in ("cpu", "auto")
    if runtime in GRAPH_RUNTIMES:
        _check_graph_runtime(runtime, name, graphs, cpu, precision)
        return runtime
    pick = _auto_graphs(kind, precision, seconds) if runtime == "auto" and graphs and cpu else None
    if pick:
        return pick
    if not torch_installed():
        raise ModelError(
            f"model '{name}' needs the torch runtime"
            + ("" if runtime == "torch" else " (not shipped with graphs, or asked for a GPU or bfloat16)")
            + ": pip install 'latentcodec[torch]'",
            "runtime",
        )
    return "torch"


def _auto_graphs(kind: str, precision: str, seconds: float | None) -> str | None:
    """Auto's runtime for a shipped model's job on the CPU, None for torch; measured on the 2-core AMD EPYC
    with AVX512-BF16 (docs/performance.md). Either kind in bfloat16 (asked, or auto on a CPU that computes it
    natively; a decode's ``precision`` is its model's pairing's, ``vocoders.registry.Pairing``) on OpenVINO
    from OPENVINO_SECONDS and in folders, torch installed or not (the encoder 1.6-1.7x onnxruntime's float32
    beyond start-up; the decoder, with its vocoder in two stages, 1.03-1.05x torch's on 20 and 40 min files
    and 1.1-1.2x in a folder, where torch starts 4-5 s later); a float32 decode on torch where installed from
    TORCH_DECODE_SECONDS and in folders; an encode on torch where a folder's workers start it once and
    OpenVINO is absent; onnxruntime otherwise (float32)."""
    asked = precision == "bfloat16"
    bfloat16 = asked or precision == "auto" and cpu_bfloat16()
    if bfloat16 and openvino_installed() and (seconds is None or asked or seconds >= OPENVINO_SECONDS):
        return "openvino"
    if kind == "decode":
        if torch_installed() and (asked or seconds is None or seconds >= TORCH_DECODE_SECONDS):
            return None
        return "onnx" if onnxruntime_installed() else "openvino" if openvino_installed() else None
    if bfloat16 and (seconds is None or asked) and torch_installed():
        return None
    return "onnx" if onnxruntime_installed() and not asked else None


def _check_graph_runtime(runtime: str, name: str, graphs: bool, cpu: bool, precision: str) -> None:
    """Refuse what ``runtime`` (openvino or onnx, asked for by name) cannot run."""
    if not graphs:
        raise ModelError(
            f"model '{name}' has no ONNX graphs (only the shipped models do): use the torch runtime", "runtime"
        )
    if not cpu:
        raise LatentCodecError(f"the {runtime} runtime runs on the CPU: use the torch runtime for a GPU", "runtime")
    if runtime == "onnx" and precision == "bfloat16":
        raise LatentCodecError(
            "the onnx runtime runs in float32: use the openvino or torch runtime for bfloat16", "runtime"
        )
    package = {"openvino": "openvino", "onnx": "onnxruntime"}[runtime]
    if not (openvino_installed() if runtime == "openvino" else onnxruntime_installed()):
        raise ModelError(f"{package} is not installed: pip install {package}", "runtime")


def cpu_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16), read from /proc/cpuinfo's
    flags without importing torch (``precision.native_bfloat16`` asks torch); False where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def load_model(name: str = DEFAULT_MODEL, device: str = "cpu", runtime: str = "auto", precision: str = "auto") -> Model:
    """Load the VAE ``name`` (shipped name, local directory or hub id) in float32 on ``device``, on the
    runtime :func:`choose_runtime` picks (``precision``: what the encoder will be asked for)."""
    chosen = choose_runtime(runtime, name, device, precision)
    if chosen in GRAPH_RUNTIMES:
        folder = shipped_models()[name]
        print_ = file_fingerprint(folder)
        runner = OpenVinoVae(folder, print_) if chosen == "openvino" else OnnxVae(folder, print_)
        return Model(name=name, runner=runner, fingerprint=print_, location=str(folder), folder=str(folder))
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
    location, path = locate(name)
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


def locate(name: str) -> tuple[str, str]:
    """(location, folder of the weights) of model ``name``: a shipped name, a local diffusers directory or a hub
    repo id (fetched, or found in the hub's cache)."""
    shipped = shipped_models()
    if name in shipped:
        return str(shipped[name]), str(shipped[name])
    if Path(name).exists():
        if not name.encode("utf-8", "surrogateescape").decode("utf-8", "replace") == name:  # undecodable bytes
            raise ModelError(
                f"model {name!r}: the folder's name is not UTF-8, which the weights' reader and a .alat "
                f"header (naming its model) need: rename the folder"
            )
        folder = vae_dir(Path(name))
        if folder is None:
            raise ModelError(f"{name}: no config.json at its root or in vae/: not a diffusers model directory")
        return str(Path(name)), str(folder)
    if "/" in name and not name.startswith((".", "/")) and name.count("/") == 1:
        return name, str(hub_folder(name, "vae", ("config.json", VAE_WEIGHTS)))
    known = ", ".join(shipped) or "none"
    raise ModelError(
        f"model '{name}' not found: not a shipped model ({known}), a local directory or a Hugging Face repo id"
    )


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
