"""latentcodec: audio stored as quantized VAE latents in chunked .alat files.

The Python API (``encode``, ``decode``, ``open``; ``LatentCrops``, a torch Dataset of stored latents) is
imported on first use, so that ``import latentcodec`` (and the ``alat`` command's start-up) stays light.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"
__all__ = ["encode", "decode", "open", "LatentCrops", "AlatReader"]
_WHERE = {"encode": "api", "decode": "api", "open": "api", "LatentCrops": "dataset", "AlatReader": "container"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'latentcodec' has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
