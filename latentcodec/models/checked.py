"""A model folder's config checked against its weights before any network is built.

Why: a folder (a download, a colleague's run) is data. Its config.json decides how large a network is built
and its weights decide nothing until loaded, so a config that says ``layers_per_block: 5000`` beside 100 KB of
weights used to build for minutes and past 1.7 GB before anything compared the two. Here every size field
is bounded first, the network is then built on torch's ``meta`` device (shapes only, no memory), and its
tensors' names and shapes are compared with the safetensors header (read alone: nothing is loaded). Weights
are read from safetensors only, never from a pickled ``.bin``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentcodec.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

MAX_CONFIG_BYTES = 1 << 20  # a config.json is a few KB
MAX_HEADER_BYTES = 16 << 20  # a safetensors header: about 100 bytes per tensor
FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
# Attention weights under their names before diffusers 0.14, which its loader still renames on load.
OLD_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
VAE_BOUNDS = {"latent_channels": (1, 64), "layers_per_block": (1, 8), "norm_num_groups": (1, 256)}
MAX_BLOCKS, MAX_WIDTH, MAX_SAMPLE = 6, 2048, 1 << 16


def read_config(path: Path) -> dict:
    """A config.json as a dict, or a one-line ModelError for one that is missing, too large, not UTF-8 JSON
    or not an object."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"{path.stat().st_size:,} bytes, more than a config's {MAX_CONFIG_BYTES:,}")
        cfg = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise ModelError(f"{path}: not a readable config ({type(e).__name__}: {str(e)[:120]})") from e
    if not isinstance(cfg, dict):
        raise ModelError(f"{path}: not a config (a JSON {type(cfg).__name__}, not an object)")
    return cfg


def check_int(value: Any, name: str, lo: int, hi: int, where: Path) -> int:
    """``value`` (the config's ``name``), which must be an integer in [lo, hi]."""
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ModelError(f"{where}: {name} is {shown}; a model of this kind needs an integer from {lo} to {hi}")
    return value


def check_vae_config(cfg: dict, where: Path) -> None:
    """Bounds on every size field of a diffusers AutoencoderKL config: one mel channel in and out, at most
    MAX_BLOCKS blocks of MAX_WIDTH channels (AudioLDM2's VAE has 4 of up to 512), their types the ones that
    exist."""
    for key in ("in_channels", "out_channels"):
        if cfg.get(key) != 1:
            raise ModelError(f"{where}: not a mel VAE: {key} is {str(cfg.get(key))[:20]}, not 1")
    for key, (lo, hi) in VAE_BOUNDS.items():
        check_int(cfg.get(key), key, lo, hi, where)
    widths = cfg.get("block_out_channels")
    if not isinstance(widths, list) or not 1 <= len(widths) <= MAX_BLOCKS:
        raise ModelError(f"{where}: block_out_channels must list 1 to {MAX_BLOCKS} widths")
    for i, width in enumerate(widths):
        check_int(width, f"block_out_channels[{i}]", 1, MAX_WIDTH, where)
    for key, kind in (("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")):
        if cfg.get(key) != [kind] * len(widths):
            raise ModelError(f"{where}: {key} must be {len(widths)} x {kind}, one per width")
    sizes = cfg.get("sample_size", 1)
    for size in sizes if isinstance(sizes, list) and len(sizes) <= 2 else [sizes]:
        check_int(size, "sample_size", 1, MAX_SAMPLE, where)


def weight_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each tensor's (shape, dtype) from a safetensors file's header alone (its length bounded first)."""
    from safetensors import SafetensorError, safe_open

    try:
        with path.open("rb") as f:
            header = int.from_bytes(f.read(8), "little")
        if header > MAX_HEADER_BYTES:
            raise ValueError(f"a header of {header:,} bytes")
        with safe_open(str(path), "pt") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except (OSError, ValueError, SafetensorError) as e:
        raise ModelError(f"{path}: not readable safetensors weights ({type(e).__name__}: {str(e)[:120]})") from e


def meta_shapes(build: Callable[[], nn.Module], where: Path) -> dict[str, tuple[int, ...]]:
    """The names and shapes of the tensors the network ``build`` makes, built on the meta device."""
    import torch

    try:
        with torch.device("meta"):
            net = build()
    except Exception as e:  # any library's constructor, given a config it refuses, raises what it likes
        raise ModelError(
            f"{where}: its config does not describe a network ({type(e).__name__}: "
            f"{(str(e).splitlines() or [''])[0][:120]})"
        ) from e
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def check_weights(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[tuple[int, ...], str]], where: Path
) -> None:
    """The file's tensors are exactly the ones the config implies, of those shapes, in floating point."""
    odd = sorted(expected.keys() ^ found.keys())
    if odd:
        raise ModelError(
            f"{where}: {len(found)} tensors where its config implies {len(expected)} "
            f"({odd[0]} {'is missing' if odd[0] in expected else 'is not in that network'})"
        )
    for key, shape in expected.items():
        if found[key][0] != shape:
            raise ModelError(f"{where}: tensor {key} is {list(found[key][0])}, where its config implies {list(shape)}")
        if found[key][1] not in FLOAT_DTYPES:
            raise ModelError(f"{where}: tensor {key} is {found[key][1]}, not floating point")


def renamed_attention(shapes: dict[str, Any]) -> dict[str, Any]:
    """Attention tensors under their current diffusers names (``OLD_ATTENTION``), the rest as they are."""
    old = re.compile(r"(\.attentions\.\d+)\.(query|key|value|proj_attn)\.(weight|bias)$")
    return {old.sub(lambda m: f"{m[1]}.{OLD_ATTENTION[m[2]]}.{m[3]}", k): v for k, v in shapes.items()}


def check_vae_folder(folder: Path, weights_file: str) -> None:
    """A diffusers AutoencoderKL folder whose config is in bounds and matches its safetensors weights."""
    from diffusers import AutoencoderKL

    cfg = read_config(folder / "config.json")
    check_vae_config(cfg, folder / "config.json")
    weights = folder / weights_file
    if not weights.is_file():
        raise ModelError(
            f"{folder}: no {weights_file} (weights are read from safetensors only, never from a pickled .bin)"
        )
    expected = meta_shapes(lambda: AutoencoderKL.from_config(cfg), folder / "config.json")
    check_weights(expected, renamed_attention(weight_shapes(weights)), weights)


def hub_folder(repo: str, subfolder: str, files: tuple[str, ...]) -> Path:
    """``subfolder`` of a Hugging Face hub repo's snapshot holding only ``files`` (never a pickled .bin),
    downloaded or from the local cache."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, allow_patterns=[f"{subfolder}/{f}" for f in files])) / subfolder
    except Exception as e:  # the hub client raises many types (OSError, HTTP, offline, bad repo id)
        raise ModelError(
            f"cannot load model '{repo}' from the Hugging Face hub (offline, or not in the local "
            f"cache): download it where you can",
            "model",
        ) from e
