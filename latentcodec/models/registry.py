"""The VAE models the package ships, by name, without importing torch: ``weights/NAME/``. Names are
versions: weights once shipped under a name never change and never leave, so every file that names them
keeps decoding."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SHIPPED_DIR = Path(str(files("latentcodec"))) / "weights"
DEFAULT_MODEL = "latentcodec-small-v4"


def shipped_folders(root: Path) -> dict[str, Path]:
    """The folders under ``root`` that hold a config.json, by name."""
    return {p.name: p for p in sorted(root.iterdir()) if (p / "config.json").is_file()} if root.is_dir() else {}


def shipped_models() -> dict[str, Path]:
    """Names of the VAE models inside the package, and where their weights lie."""
    return shipped_folders(SHIPPED_DIR)


def summary(folder: Path) -> str:
    """The first sentence of a shipped folder's MODEL.md after its heading."""
    card = folder / "MODEL.md"
    if not card.is_file():
        return ""
    text = card.read_text().split("\n\n")
    first = next((p for p in text if p.strip() and not p.startswith("#")), "")
    return " ".join(first.split()).split(". ")[0].rstrip(".") + "."
