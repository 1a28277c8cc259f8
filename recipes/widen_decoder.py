"""Does capacity at full resolution move issue 43's curve? `latentcodec-small-v4`'s decoder widened at full
resolution, 32 -> 64 channels (block widths 64, 64, 128), trained alone with v4's encoder frozen on run B's
recipe (`records/2026-12-07-small-v4-decoder-alone.md`) and validated as ``alat train`` validates, so its
curve stands beside runs B and C.

The widening starts exactly from v4 (Net2Net): new channel n is old channel n // 2, so each GroupNorm group
of 4 holds its old group's 2 channels twice (the same statistics), a layer reading twinned channels takes
half of each old weight, and the first full-resolution block keeps a 1x1 shortcut (diffusers' block has one
only where its widths differ). Noise of ``--noise`` times each widened tensor's deviation then breaks the
twins' symmetry. The result is not a layout the package loads (its encoder and decoder have other widths):
the history and the decoder's tensors are written to OUT, for the record.

    python recipes/widen_decoder.py /data/alat-train-all /data/dec-v4-wide --val ../shared/corpus/dev --minutes 60
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latentcodec.models.registry import shipped_models  # noqa: E402
from latentcodec.training.vae import (  # noqa: E402
    Run,
    TrainConfig,
    listening_vocoder,
    prepare_data,
    train_step,
    val_line,
    validate,
)

FULL = "up_blocks.2."  # the full-resolution block of the decoder
OUT_WIDENED = ("conv1", "conv2", "conv_shortcut", "norm2")  # in a full-resolution resnet: outputs widened
IN_WIDENED = ("conv2",)  # ... and inputs twinned (conv1 reads block 1's 64 channels, which stay as they are)


def widened(key: str) -> tuple[bool, bool]:
    """(outputs widened, inputs twinned) for a tensor of the decoder (its name without ``decoder.``)."""
    if key.startswith("conv_norm_out."):
        return True, False
    if key.startswith("conv_out."):
        return False, key.endswith("weight")
    if not key.startswith(FULL):
        return False, False
    part = key.split(".")[4]  # up_blocks.2.resnets.R.PART.weight
    first_norm = part == "norm1" and not key.startswith(FULL + "resnets.0.")
    first_conv1 = part == "conv1" and not key.startswith(FULL + "resnets.0.")
    return part in OUT_WIDENED or first_norm, part in IN_WIDENED or first_conv1


def wide_decoder(vae: torch.nn.Module, noise: float) -> torch.nn.Module:
    """v4's decoder at widths (64, 64, 128), the same function but for ``noise``."""
    from diffusers.models.autoencoders.vae import Decoder

    cfg = vae.config
    dec = Decoder(in_channels=cfg.latent_channels, out_channels=cfg.out_channels, up_block_types=cfg.up_block_types,
                  block_out_channels=(64, 64, 128), layers_per_block=cfg.layers_per_block,
                  norm_num_groups=cfg.norm_num_groups, act_fn=cfg.act_fn, mid_block_add_attention=False)
    first = dec.up_blocks[2].resnets[0]
    first.conv_shortcut, first.use_in_shortcut = torch.nn.Conv2d(64, 64, 1), True
    old = vae.decoder.state_dict()
    new = {}
    for key, t in dec.state_dict().items():
        w = old[key]
        out_wide, in_twin = widened(key)
        if out_wide:
            w = w.repeat_interleave(2, dim=0)
        if in_twin and w.ndim > 1:  # a weight's inputs; a bias has none
            w = w.repeat_interleave(2, dim=1) / 2
        assert w.shape == t.shape, (key, w.shape, t.shape)
        if (out_wide or in_twin) and noise > 0 and w.numel() > 1:
            w = w + noise * w.std() * torch.randn_like(w)
        new[key] = w
    dec.load_state_dict(new)
    return dec


def main() -> None:
    from diffusers import AutoencoderKL

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--val", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=60.0, help="stop at the first validation after this long")
    ap.add_argument("--noise", type=float, default=1e-2)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    cfg = TrainConfig(steps=2000, lr=3e-5, min_lr=5e-6, warmup=20, quant_step=0.4, clean_fraction=0.25,
                      narrow_weight=0.3, kind_weights={"music": 0.25, "speech": 0.6, "effects": 0.15},
                      val_vocoder="latentcodec-maggl-routed-v3", init="latentcodec-small-v4", freeze_encoder=True)
    args.out.mkdir(parents=True, exist_ok=True)
    sampler, val, _ = prepare_data(args.data, args.val, cfg, print)
    vae = AutoencoderKL.from_pretrained(shipped_models()["latentcodec-small-v4"], torch_dtype=torch.float32)
    z = torch.randn(2, 8, 40, 16)
    with torch.no_grad():
        before = vae.decode(z).sample
        exact = wide_decoder(vae, 0.0)
        print(f"widened exactly: max |difference| {(exact(vae.post_quant_conv(z)) - before).abs().max():.2e}")
        vae.decoder = wide_decoder(vae, args.noise)
        print(f"with noise {args.noise:g}: max |difference| {(vae.decode(z).sample - before).abs().max():.2e}")
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    params = [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]
    run = Run(vae.train(), torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4))
    vocoder = listening_vocoder(val, cfg, "cpu", print)
    t0 = time.time()

    def record() -> None:
        run.history.append({"step": run.step, **validate(vae, val, cfg, vocoder),
                            "minutes": (time.time() - t0) / 60, "hours": (time.time() - t0) / 3600})
        print(val_line(run.history[-1], cfg), flush=True)
        (args.out / "training.json").write_text(json.dumps({"config": vars(args) | {"data": str(args.data),
                                                            "out": str(args.out), "val": str(args.val)},
                                                            "history": run.history}, indent=1))

    record()
    while run.step < cfg.steps:
        train_step(run, sampler.batch(cfg.batch_size), cfg)
        if run.step % 50 == 0:
            print(f"step {run.step}: {(time.time() - t0) / run.step:.2f} s/step", flush=True)
        if run.step % 250 == 0:
            record()
            from safetensors.torch import save_file

            tensors = {k: v.contiguous() for k, v in vae.decoder.state_dict().items()}
            save_file(tensors, args.out / "decoder.safetensors")
            if time.time() - t0 > args.minutes * 60:
                break


if __name__ == "__main__":
    main()
