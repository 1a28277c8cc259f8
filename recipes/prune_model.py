"""Start a narrower VAE from a trained one: keep some of the full-resolution channels and every weight
that reads or writes them, so that ``alat train --init OUT --channels ...`` fine-tunes a network that
already works instead of training one from scratch.

    python recipes/prune_model.py latentcodec-small-v2 /data/model-v3-init-d --channels 16,64,128 \
        --data /data/alat-train-all --distill-steps 600 --distill-crops 1024

Why: the full-resolution block holds a small share of the parameters but most of the FLOPs (issue 11:
16-64-128 encodes 131x / decodes 31x real time against 98x / 25x for 32-64-128). Copying only the tensors
whose shapes match was tried and gave 29.9 dB after 250 steps: random layers at the input and output cut
every path through the trained ones. Here every tensor comes from the trained model.

Then every layer whose shape changed is refitted, in the order the network runs, to give the wide
layer's output (its kept channels) from the inputs the narrow network now gives it, on crops of training
audio: a convolution by ridge least squares, a GroupNorm's scale and shift channel by channel. Why: a
GroupNorm of 16 groups over 16 channels normalises each channel alone where it had normalised pairs, and
a consumer misses the dropped channels' share; sliced weights alone decode at 54 dB log-mel L1.

Which channels: a channel's importance is the summed squared norm of every weight slice that touches it
(each tensor's share taken relative to its own size, so that no one layer decides), and the most important
ones are kept, in their original order. Encoder and decoder choose their own channels; every pruned axis
of a half uses that half's choice, so the residual stream and the layers around it stay aligned.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from latentcodec.audio.io import AUDIO_SUFFIXES, read_audio
from latentcodec.audio.mel import log_mel, normalization_stats
from latentcodec.constants import DB_PER_NEPER
from latentcodec.models.loader import load_model

RIDGE = 1e-4  # of the mean diagonal of the normal equations: keeps a rarely excited input from blowing up


def pruned_axes(wide: dict[str, torch.Tensor], narrow: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    """For each tensor, the axes on which the narrow model is smaller."""
    return {k: [d for d, (a, b) in enumerate(zip(wide[k].shape, narrow[k].shape)) if a != b] for k in narrow}


def importance(wide: dict[str, torch.Tensor], axes: dict[str, list[int]], half: str, width: int) -> torch.Tensor:
    """(width,) summed relative squared norms of the weight slices on each pruned channel of ``half``."""
    score = torch.zeros(width, dtype=torch.float64)
    for k, dims in axes.items():
        if not k.startswith(half) or not dims:
            continue
        w = wide[k].double()
        for d in dims:
            per = w.pow(2).sum(dim=[i for i in range(w.dim()) if i != d])
            score += per / per.sum().clamp_min(1e-12)
    return score


def prune(wide_vae: AutoencoderKL, channels: list[int]) -> tuple[AutoencoderKL, dict[str, list[int]]]:
    """A VAE of ``wide_vae``'s config with ``block_out_channels = channels``, every tensor sliced from it;
    returns it and the kept channels of each half."""
    wide = wide_vae.state_dict()
    config = {**{k: v for k, v in wide_vae.config.items() if not k.startswith("_")}, "block_out_channels": channels}
    vae = AutoencoderKL(**config)
    narrow = vae.state_dict()
    axes = pruned_axes(wide, narrow)
    kept: dict[str, list[int]] = {}
    for half in ("encoder.", "decoder."):
        sizes = {(wide[k].shape[d], narrow[k].shape[d]) for k, dims in axes.items() if k.startswith(half) for d in dims}
        if len(sizes) > 1:
            raise SystemExit(f"{half[:-1]}: more than one width changes ({sorted(sizes)}); prune one at a time")
        if sizes:
            (w, n), = sizes
            kept[half[:-1]] = sorted(importance(wide, axes, half, w).topk(n).indices.tolist())
    out = {}
    for k, t in wide.items():
        for d in axes[k]:
            t = t.index_select(d, torch.tensor(kept[k.split(".")[0]]))
        out[k] = t
    vae.load_state_dict(out)
    return vae, kept


def calibration_crops(folder: Path, n: int, frames: int) -> torch.Tensor:
    """(n, 1, frames, 64) log-mel crops, one from each of ``n`` files spread evenly over ``folder``'s
    sorted audio files, from the middle of the file, normalised as the codec does."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    crops = []
    for path in files[:: max(1, len(files) // n)][:n]:
        audio = read_audio(path, mono=True).samples[0]
        off, gain = normalization_stats(audio)
        mel = log_mel((audio - off) * gain)
        mel = np.pad(mel, ((0, max(0, frames - len(mel))), (0, 0)), constant_values=mel.min())
        s = (len(mel) - frames) // 2
        crops.append(mel[s:s + frames])
    return torch.from_numpy(np.stack(crops))[:, None].float()


def io_of(model: torch.nn.Module, names: list[str], run: Callable[[torch.nn.Module], object]
          ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(input, output) of the modules ``names`` during ``run(model)``."""
    got: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    mods = dict(model.named_modules())
    hooks = [mods[n].register_forward_hook(lambda m, i, o, n=n: got.__setitem__(n, (i[0], o))) for n in names]
    with torch.no_grad():
        run(model)
    for h in hooks:
        h.remove()
    return got


def fit_conv(conv: torch.nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> None:
    """Set ``conv``'s weight and bias to the ridge least-squares map from input ``x`` to output ``y``."""
    u = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
    u = u.transpose(1, 2).reshape(-1, conv.weight[0].numel())  # (pixels, Ci kh kw)
    u = torch.cat([u, torch.ones(len(u), 1)], 1).double()
    t = y.permute(0, 2, 3, 1).reshape(-1, y.shape[1]).double()
    a = u.T @ u
    a += RIDGE * a.diagonal().mean() * torch.eye(len(a), dtype=a.dtype)
    w = torch.linalg.solve(a, u.T @ t).T.float()
    conv.weight.copy_(w[:, :-1].reshape(conv.weight.shape))
    conv.bias.copy_(w[:, -1])


def fit_norm(norm: torch.nn.GroupNorm, x: torch.Tensor, y: torch.Tensor) -> None:
    """Set ``norm``'s per-channel scale and shift to the least-squares map from its normalised input to ``y``."""
    z = F.group_norm(x, norm.num_groups, eps=norm.eps).transpose(0, 1).reshape(x.shape[1], -1)
    t = y.transpose(0, 1).reshape(y.shape[1], -1)
    zc, tc = z - z.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    gain = (zc * tc).mean(1) / zc.pow(2).mean(1).clamp_min(1e-12)
    norm.weight.copy_(gain)
    norm.bias.copy_(t.mean(1) - gain * z.mean(1))


def stream_basis(stream: torch.Tensor, n: int) -> torch.Tensor:
    """(n, C) the top principal directions (uncentred) of the (N, C, H, W) activations' channel vectors."""
    v = stream.transpose(0, 1).reshape(stream.shape[1], -1).double()
    _, vecs = torch.linalg.eigh(v @ v.T)
    return vecs[:, -n:].flip(1).T.float()


def is_stream(name: str) -> bool:
    """Whether a pruned layer writes the residual stream of its block (or is a norm that reads it)."""
    return name.rsplit(".", 1)[-1] in ("conv_in", "conv2", "conv_shortcut", "norm1", "conv_norm_out")


def refit(wide: AutoencoderKL, narrow: AutoencoderKL, kept: dict[str, list[int]], x: torch.Tensor) -> None:
    """Refit each changed layer of ``narrow`` in running order (encoder on crops ``x``, decoder on the wide
    encoder's latents of them) to the wide layer's output: on the kept channels for a layer inside a
    residual block, on the block's residual stream's top principal directions for a layer that writes or
    normalises that stream (the dropped channels' content then lives on in the kept ones)."""
    wide_shapes = {k: v.shape for k, v in wide.state_dict().items()}
    modules = dict(narrow.named_modules())
    changed = changed_layers(wide, narrow)
    with torch.no_grad():
        z = wide.encode(x).latent_dist.mode()
    for half, run in (("encoder", lambda m: m.encode(x)), ("decoder", lambda m: m.decode(z))):
        names = [n for n in changed if n.startswith(half)]
        blocks = [n for n, m in modules.items() if n.startswith(half) and type(m).__name__ == "ResnetBlock2D"
                  and any(c.startswith(f"{n}.conv2") for c in names)]
        order: list[str] = []
        hooks = [modules[n].register_forward_hook(lambda *_, n=n: order.append(n)) for n in names + blocks]
        with torch.no_grad():
            run(narrow)
        for h in hooks:
            h.remove()
        targets = io_of(wide, names + blocks, run)
        basis = stream_basis(targets[[n for n in order if n in blocks][-1]][1], len(kept[half]))
        for name in dict.fromkeys(n for n in order if n in names):
            module = modules[name]
            y = targets[name][1]
            if module.weight.shape[0] != wide_shapes[f"{name}.weight"][0]:
                y = torch.einsum("kc,nchw->nkhw", basis, y) if is_stream(name) else y[:, kept[half]]
            x_in = io_of(narrow, [name], run)[name][0]
            with torch.no_grad():
                (fit_conv if isinstance(module, torch.nn.Conv2d) else fit_norm)(module, x_in, y)


def changed_layers(wide: AutoencoderKL, narrow: AutoencoderKL) -> list[str]:
    """Names of the convolutions and norms of ``narrow`` whose weights differ in shape from ``wide``'s."""
    wide_shapes = {k: v.shape for k, v in wide.state_dict().items()}
    return [n for n, m in narrow.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.GroupNorm))
            and m.weight.shape != wide_shapes[f"{n}.weight"]]


def distill(wide: AutoencoderKL, narrow: AutoencoderKL, crops: torch.Tensor, steps: int, batch: int = 16,
            lr: float = 1e-3, log: Callable[[str], None] = print) -> list[dict]:
    """Train only the changed layers of ``narrow`` to give the wide model's outputs: its encoder's posterior
    means of ``crops`` (N, 1, frames, 64) and its decoder's log-mel from those latents (L1 of each).
    Why before any full training: a loss on the whole VAE sends the new layers' large early errors back
    into every trained layer (a full-recipe run from the refit start stood at 9.9 dB after 250 steps)."""
    with torch.no_grad():
        z = torch.cat([wide.encode(crops[i:i + 16]).latent_dist.mode() for i in range(0, len(crops), 16)])
        mel = torch.cat([wide.decode(z[i:i + 16]).sample for i in range(0, len(z), 16)])
    names = changed_layers(wide, narrow)
    modules = dict(narrow.named_modules())
    narrow.requires_grad_(False)
    params = [p for n in names for p in modules[n].parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr / 50)
    gen, history = torch.Generator().manual_seed(0), []
    narrow.train()
    for step in range(1, steps + 1):
        i = torch.randint(len(crops), (batch,), generator=gen)
        enc = (narrow.encode(crops[i]).latent_dist.mode() - z[i]).abs().mean()
        dec = (narrow.decode(z[i]).sample - mel[i]).abs().mean()
        opt.zero_grad(set_to_none=True)
        (enc + dec).backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps:
            history.append({"step": step, "latent_l1": enc.item(), "mel_l1_db": dec.item() * DB_PER_NEPER})
            log(f"distill step {step}: latent L1 {enc.item():.4f}, log-mel L1 to the wide model "
                f"{dec.item() * DB_PER_NEPER:.3f} dB")
    narrow.eval().requires_grad_(False)
    return history


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="shipped model name or folder to start from")
    ap.add_argument("out", type=Path)
    ap.add_argument("--channels", required=True, help="the narrow model's block_out_channels, e.g. 16,64,128")
    ap.add_argument("--data", type=Path, required=True, help="training audio for the refit (never the dev clips)")
    ap.add_argument("--crops", type=int, default=24, help="files to take one 192-frame crop from for the refit")
    ap.add_argument("--distill-steps", type=int, default=0, help="then train the changed layers on the wide outputs")
    ap.add_argument("--distill-crops", type=int, default=1024, help="files to take one 192-frame crop from for it")
    args = ap.parse_args()
    base = load_model(args.model, runtime="torch")
    channels = [int(c) for c in args.channels.split(",")]
    wide = base.module.to(memory_format=torch.contiguous_format)
    vae, kept = prune(wide, channels)
    refit(wide, vae.eval(), kept, calibration_crops(args.data, args.crops, 192))
    history = distill(wide, vae, calibration_crops(args.data, args.distill_crops, 192), args.distill_steps) \
        if args.distill_steps else []
    vae.save_pretrained(str(args.out), safe_serialization=True)
    record = {"config": {"init": args.model}, "init_fingerprint": base.fingerprint.hex(), "pruned_to": channels,
              "kept_channels": kept, "refit_crops": args.crops, "distill_crops": args.distill_crops,
              "distill_history": history}  # read by ship_model.py as the start of the training record
    (args.out / "training.json").write_text(json.dumps(record, indent=1))
    print(f"{args.out}: kept {kept}")


if __name__ == "__main__":
    main()
