"""What the package ships, by name, without importing torch: VAE models under ``weights/NAME/`` and
neural vocoders under ``weights/vocoders/NAME/``. Names are versions: weights once shipped under a name
never change and never leave, so every file that names them keeps decoding."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SHIPPED_DIR = Path(str(files("latentcodec"))) / "weights"
SHIPPED_VOCODERS_DIR = SHIPPED_DIR / "vocoders"
DEFAULT_MODEL = "latentcodec-small-v2"
BUILTIN_VOCODERS = {"griffinlim": "Momentum Griffin-Lim on the pseudo-inverted mel.",
                    "hifigan": "The HiFi-GAN in a hub model's vocoder/ folder (AudioLDM2's: not shipped)."}


# The vocoder a model's files decode with when none is named. A file records its model, not a vocoder, so
# a model's pairing may improve in a later release; models not listed decode with Griffin-Lim, as in 0.1.0.
# A pairing needs the vocoder to beat Griffin-Lim end to end on the dev clips on every kind (ViSQOL per
# kind, PESQ-wb and STOI on speech). latentcodec-maggl-v1 did for latentcodec-small-v2; the second stages
# (latentcodec-maggl-small-v2, -v2b, -v2c), far better on speech, do not on music (v2c: ViSQOL 0.024-0.031 below
# over three Griffin-Lim seeds, bench/vocoder_seeds.py); latentcodec-maggl-routed-v1, v2c where the decoded
# mel is speech and latentcodec-maggl-v1 elsewhere, does (its MODEL.md).
DEFAULT_VOCODERS: dict[str, str] = {"latentcodec-small-v2": "latentcodec-maggl-routed-v1"}


def default_vocoder(model: str) -> str:
    """The vocoder that decodes ``model``'s files unless another is named."""
    return DEFAULT_VOCODERS.get(model, "griffinlim")


def _folders(root: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(root.iterdir()) if (p / "config.json").is_file()} if root.is_dir() else {}


def shipped_models() -> dict[str, Path]:
    """Names of the VAE models inside the package, and where their weights lie."""
    return _folders(SHIPPED_DIR)


def shipped_vocoders() -> dict[str, Path]:
    """Names of the neural vocoders inside the package, and where their weights lie."""
    return _folders(SHIPPED_VOCODERS_DIR)


def vocoder_names() -> list[str]:
    """Every name ``vocoder.load_vocoder`` takes besides a folder: built-in, then shipped."""
    return [*BUILTIN_VOCODERS, *shipped_vocoders()]


def summary(folder: Path) -> str:
    """The first sentence of a shipped folder's MODEL.md after its heading."""
    card = folder / "MODEL.md"
    if not card.is_file():
        return ""
    text = card.read_text().split("\n\n")
    first = next((p for p in text if p.strip() and not p.startswith("#")), "")
    return " ".join(first.split()).split(". ")[0].rstrip(".") + "."
