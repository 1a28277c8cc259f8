"""What capacity at full resolution costs a decode: the VAE decoder of ``SMALL_VAE_CONFIG`` and variants with
wider blocks (diffusers' layout, our sub-pixel upsamplers, channels-last, as ``models.loader`` runs it) timed
on one 5 s window with its context, float32, on torch, with the threads given; the best of ``--repeats`` runs
after a warm-up. Random weights: the time does not depend on them.

    python recipes/decoder_widths_cost.py --threads 1 --widths 32,64,128 48,64,128 64,64,128 64,128,256
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latentcodec.models.loader import SMALL_VAE_CONFIG  # noqa: E402
from latentcodec.runtime.upsample import use_subpixel_upsamplers  # noqa: E402


def main() -> None:
    import torch
    from diffusers import AutoencoderKL

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--widths", nargs="+", required=True, help="block_out_channels, e.g. 32,64,128 (the encoder's order)"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    z = torch.randn(1, 8, 125 + 2 * 8, 16)  # one 5 s chunk and its 8 latent frames of context each side
    base = None
    for w in args.widths:
        widths = tuple(int(c) for c in w.split(","))
        vae = AutoencoderKL(**{**SMALL_VAE_CONFIG, "block_out_channels": widths}).eval()
        use_subpixel_upsamplers(vae)
        vae.to(memory_format=torch.channels_last)
        params = sum(p.numel() for p in vae.decoder.parameters()) + sum(
            p.numel() for p in vae.post_quant_conv.parameters()
        )
        times = []
        with torch.inference_mode():
            vae.decode(z)
            for _ in range(args.repeats):
                t = time.perf_counter()
                vae.decode(z)
                times.append(time.perf_counter() - t)
        best = min(times) * 1000
        base = base or best
        print(f"widths {w}: decoder {params / 1e6:.2f} M parameters, {best:.1f} ms a window ({best / base:.2f}x)")


if __name__ == "__main__":
    main()
