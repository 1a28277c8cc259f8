"""latentcodec: audio stored as quantized VAE latents in chunked .alat files.

The Python API (``encode``, ``decode``, ``open``; their options ``EncodeOptions`` and ``DecodeOptions``;
``LatentCrops`` and ``LatentStream``, torch datasets of stored latents) is imported on first use, so that
``import latentcodec`` (and the ``alat`` command's start-up) stays light.
"""

import importlib as _importlib

__version__ = "0.2.0"
__all__ = ["encode", "decode", "open", "EncodeOptions", "DecodeOptions", "LatentCrops", "LatentStream", "AlatReader"]
_WHERE = {
    "encode": "api",
    "decode": "api",
    "open": "api",
    "EncodeOptions": "options",
    "DecodeOptions": "options",
    "LatentCrops": "dataset",
    "LatentStream": "dataset",
    "AlatReader": "format.container",
}


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module 'latentcodec' has no attribute {name!r}")
    return getattr(_importlib.import_module(f".{_WHERE[name]}", __name__), name)


def __dir__() -> list[str]:
    """The public names (and the subpackages already imported), as ``dir()`` shows them."""
    return sorted({*__all__, "__version__", *(k for k in globals() if not k.startswith("_"))})
