"""The VAE of a running `alat train` as a model folder, from its checkpoint, for evaluating a milestone
while the run goes on (the run writes its own folder only at the end):

    python recipes/checkpoint_model.py /data/model-v3-gan /data/v3-step500 --config latentcodec-small-v2

``--config`` names the model whose architecture the run trains (its ``--init``, or a folder); the folder
gets that ``config.json`` and the checkpoint's weights in float32, and no ``coder.json`` (the encoder then
fits its transform to each file). Prints the checkpoint's step. ``--float16``: the weights in float16 and the
run's validation history as ``training.json``, to commit a milestone (``recipes/runs/``) that a later run
starts from with ``--init``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latentcodec.errors import ModelError  # noqa: E402
from latentcodec.models.loader import vae_dir  # noqa: E402
from latentcodec.models.registry import shipped_models  # noqa: E402
from latentcodec.training.checkpoint import CHECKPOINT, LEGACY_CHECKPOINT, read_checkpoint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--config", required=True, help="a shipped model's name or a model folder")
    ap.add_argument("--float16", action="store_true", help="float16 weights and training.json (a milestone)")
    args = ap.parse_args()
    try:
        found = read_checkpoint(args.run)
    except ModelError as e:
        sys.exit(str(e))
    if found is None:
        sys.exit(f"{args.run}: no checkpoint ({CHECKPOINT} or {LEGACY_CHECKPOINT})")
    state = found[1]
    config = vae_dir(shipped_models().get(args.config, Path(args.config)))
    if config is None:
        sys.exit(f"{args.config}: not a shipped model's name nor a diffusers model folder")
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(config)))
    vae.load_state_dict(state["model"])
    if args.float16:
        vae = vae.to(torch.float16)
    vae.save_pretrained(str(args.out), safe_serialization=True)
    if args.float16:
        record = {"step": state["step"], "hours": state["seconds"] / 3600, "init_fingerprint":
                  state["init_fingerprint"].hex() if isinstance(state["init_fingerprint"], bytes)
                  else state["init_fingerprint"], "history": state["history"]}
        (args.out / "training.json").write_text(json.dumps(record, indent=1))
    print(f"{args.out}: step {state['step']}, {state['seconds'] / 3600:.2f} h of training")


if __name__ == "__main__":
    main()
