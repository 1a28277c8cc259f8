"""The models the package ships, by name, without importing torch: ``weights/NAME/``, a VAE's or a
vocoder's, told apart by their config.json (a diffusers ``AutoencoderKL``'s, or a vocoder's
``architecture``), so that a vocoder's name is never taken for a model. Names are versions: weights once
shipped under a name never change and never leave, so every file that names them keeps decoding."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

SHIPPED_DIR = Path(str(files("latentcodec"))) / "weights"
DEFAULT_MODEL = "latentcodec-small-v4"


def shipped_folders(root: Path) -> dict[str, Path]:
    """The folders under ``root`` that hold a config.json, by name."""
    return {p.name: p for p in sorted(root.iterdir()) if (p / "config.json").is_file()} if root.is_dir() else {}


@lru_cache(maxsize=2)
def _shipped(kind: str) -> dict[str, Path]:
    """The shipped folders of ``kind`` ('vae' or 'vocoder'), read once: the package's files do not change."""

    def kind_of(folder: Path) -> str | None:
        cfg = json.loads((folder / "config.json").read_text())
        return "vae" if cfg.get("_class_name") == "AutoencoderKL" else "vocoder" if "architecture" in cfg else None

    return {name: p for name, p in shipped_folders(SHIPPED_DIR).items() if kind_of(p) == kind}


def shipped_models() -> dict[str, Path]:
    """Names of the VAE models inside the package, and where their weights lie."""
    return dict(_shipped("vae"))


def shipped_vocoder_folders() -> dict[str, Path]:
    """Names of the neural vocoders inside the package, and where their weights lie."""
    return dict(_shipped("vocoder"))


def summary(folder: Path) -> str:
    """The first sentence of a shipped folder's MODEL.md after its heading."""
    card = folder / "MODEL.md"
    if not card.is_file():
        return ""
    text = card.read_text().split("\n\n")
    first = next((p for p in text if p.strip() and not p.startswith("#")), "")
    return " ".join(first.split()).split(". ")[0].rstrip(".") + "."
