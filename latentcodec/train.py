"""Training a mel VAE for reconstruction (``alat train``): the shipped model is made this way.

Data: every audio file under a folder, on the codec's own front end (16 kHz, per-file AudioLDM
normalisation, log-mel). When the folder has sub-folders (music/, speech/, effects/) crops are drawn
by kind with the weights given, not by file, so the hours of music do not drown the speech.
Loss: L1 on the log-mel plus L1 at coarser time-frequency scales, a small KL term, and uniform noise of
one quantizer step (at ``quant_bits``) on the latent of all but ``clean_fraction`` of each batch, so the
decoder learns both the latents it gets at the default bit depth and the exact ones of ``--bits 16``.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .audio_io import AUDIO_SUFFIXES, read_audio
from .constants import DB_PER_NEPER, LOG_FLOOR
from .mel import log_mel, normalization_stats
from .errors import ModelError
from .models import SMALL_VAE_CONFIG, load_model
from .quantize import dequantize, quantize



@dataclass
class TrainConfig:
    """Everything that decides the trained weights; saved beside them."""

    steps: int = 1700
    batch_size: int = 16
    crop_frames: int = 192
    lr: float = 1e-3
    min_lr: float = 2e-5
    warmup: int = 200
    kl_weight: float = 1e-6
    quant_bits: int = 4
    clean_fraction: float = 0.0  # share of each batch decoded from the exact latent, without quantizer noise
    multiscale: tuple[int, ...] = (2, 4, 8)
    kind_weights: dict[str, float] = field(default_factory=lambda: {"music": 0.4, "speech": 0.4, "effects": 0.2})
    seed: int = 0
    init: str | None = None  # model to start from (fine-tuning); None: random weights from ``seed``
    val_every: int = 250
    checkpoint_every: int = 250
    vae_config: dict = field(default_factory=lambda: dict(SMALL_VAE_CONFIG))


def normalized_audio(folder: Path) -> Iterator[tuple[str, Path, np.ndarray]]:
    """(kind, path, mono 16 kHz samples as the codec normalises them) of every audio file under
    ``folder``, in sorted order; the kind is the first sub-folder ("all" for files at the top)."""
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        audio = read_audio(path, mono=True).samples[0]
        off, gain = normalization_stats(audio)
        rel = path.relative_to(folder).parts
        yield (rel[0] if len(rel) > 1 else "all"), path, (audio - off) * gain


def load_mels(folder: Path, on_file: Callable[[Path], None] | None = None) -> dict[str, list[np.ndarray]]:
    """Log-mel (float16) of every audio file under ``folder``, grouped by its first sub-folder."""
    groups: dict[str, list[np.ndarray]] = {}
    for kind, path, audio in normalized_audio(folder):
        groups.setdefault(kind, []).append(log_mel(audio).astype(np.float16))
        if on_file:
            on_file(path)
    return groups


def quant_noise(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Uniform noise of one quantizer step, the step of a min/max quantizer per item and channel."""
    flat = z.flatten(2)
    step = (flat.amax(-1) - flat.amin(-1)) / (2 ** bits - 1)
    return z + (torch.rand_like(z) - 0.5) * step[..., None, None]


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, scales: tuple[int, ...]) -> torch.Tensor:
    loss = F.l1_loss(pred, target)
    for s in scales:
        loss = loss + F.l1_loss(F.avg_pool2d(pred, s), F.avg_pool2d(target, s))
    return loss


class CropSampler:
    """Random crops, by kind then by file (weighted by length) then by position; seeded."""

    def __init__(self, groups: dict[str, list[np.ndarray]], weights: dict[str, float], crop: int, seed: int):
        self.crop = crop
        self.kinds = sorted(groups)
        w = np.array([weights.get(k, 1.0) for k in self.kinds], dtype=np.float64)
        self.kind_p = w / w.sum()
        self.groups = {k: [m for m in groups[k] if len(m) >= 8] for k in self.kinds}
        self.file_p = {k: np.array([len(m) for m in v], np.float64) / sum(len(m) for m in v)
                       for k, v in self.groups.items()}
        self.rng = np.random.default_rng(seed)

    def pick(self) -> np.ndarray:
        """One file's array: a kind by its weight, then a file of that kind by its length."""
        k = self.kinds[self.rng.choice(len(self.kinds), p=self.kind_p)]
        return self.groups[k][self.rng.choice(len(self.groups[k]), p=self.file_p[k])]

    def batch(self, n: int) -> torch.Tensor:
        out = np.empty((n, 1, self.crop, self.groups[self.kinds[0]][0].shape[1]), np.float32)
        for i in range(n):
            m = self.pick()
            if len(m) >= self.crop:
                s = int(self.rng.integers(0, len(m) - self.crop + 1))
                out[i, 0] = m[s:s + self.crop]
            else:
                out[i, 0] = np.log(LOG_FLOOR)
                out[i, 0, :len(m)] = m
        return torch.from_numpy(out)


def validation_crops(groups: dict[str, list[np.ndarray]], frames: int = 500) -> torch.Tensor:
    """Fixed 5 s windows of the validation audio, padded with silence to whole windows."""
    crops = []
    for mels in groups.values():
        for m in mels:
            for s in range(0, len(m), frames):
                c = np.full((frames, m.shape[1]), np.log(LOG_FLOOR), np.float32)
                c[:len(m[s:s + frames])] = m[s:s + frames]
                crops.append(c)
    return torch.from_numpy(np.stack(crops))[:, None]


@torch.no_grad()
def validate(vae: torch.nn.Module, crops: torch.Tensor, bits: int | None) -> float:
    """Mean log-mel L1 in dB of encode -> (quantize) -> decode on the validation windows."""
    vae.eval()
    total = 0.0
    for i in range(0, len(crops), 8):
        x = crops[i:i + 8].to(next(vae.parameters()).device)
        z = vae.encode(x).latent_dist.mode().half()
        if bits is not None:
            z = torch.stack([torch.from_numpy(dequantize(*quantize(zi.cpu().numpy(), bits), bits, tuple(zi.shape)))
                             for zi in z]).to(x.device)
        total += (vae.decode(z.float()).sample - x).abs().mean().item() * len(x)
    vae.train()
    return total / len(crops) * DB_PER_NEPER


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(t, 1.0)))


def train(data: Path, out: Path, cfg: TrainConfig, val: Path | None = None, device: str = "cpu",
          resume: bool = False, log: Callable[[str], None] = print) -> dict:
    """Train, checkpointing to ``out/checkpoint.pt``; write the model directory ``out`` at the end."""
    from diffusers import AutoencoderKL

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_flush_denormal(True)  # tiny gradients as denormals slow CPU kernels many times over
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    groups = load_mels(data)
    hours = sum(len(m) for v in groups.values() for m in v) / 100 / 3600
    log(f"training data: {sum(len(v) for v in groups.values())} files, {hours:.2f} h "
        f"({', '.join(f'{k} {sum(len(m) for m in v) / 360000:.2f} h' for k, v in groups.items())}), "
        f"read in {time.time() - t0:.0f} s")
    if val is not None:
        val_crops = validation_crops(load_mels(val))
    else:  # hold out every 50th file of each kind
        val_crops = validation_crops({k: v[::50] for k, v in groups.items()})
        groups = {k: [m for i, m in enumerate(v) if i % 50] for k, v in groups.items()}
    sampler = CropSampler(groups, cfg.kind_weights, cfg.crop_frames, cfg.seed)
    vae = AutoencoderKL(**cfg.vae_config).to(device).train()
    ckpt = out / "checkpoint.pt"
    init_fingerprint = None
    if cfg.init and not (resume and ckpt.exists()):
        base = load_model(cfg.init, device)
        try:
            vae.load_state_dict(base.vae.state_dict())
        except RuntimeError as e:
            raise ModelError(f"model '{cfg.init}' has another architecture than the one trained here: "
                             f"cannot start from it") from e
        init_fingerprint = base.fingerprint.hex()
        log(f"starting from the weights of {cfg.init} ({init_fingerprint[:16]})")
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=1e-4)
    step, history = 0, []
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        vae.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, history = state["step"], state["history"]
        init_fingerprint = state.get("init_fingerprint")
        sampler.rng = np.random.default_rng([cfg.seed, step])
        torch.manual_seed(cfg.seed + step)
        log(f"resumed at step {step}")
    t_train = time.time()
    first_step = step
    running = 0.0
    while step < cfg.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        x = sampler.batch(cfg.batch_size).to(device)
        post = vae.encode(x).latent_dist
        z = post.mode()
        if cfg.quant_bits:
            n_clean = round(cfg.clean_fraction * len(z))  # crops are random: the first ones are as good as any
            z = torch.cat([z[:n_clean], quant_noise(z[n_clean:], cfg.quant_bits)])
        rec = vae.decode(z).sample
        loss = reconstruction_loss(rec, x, cfg.multiscale) + cfg.kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        running += F.l1_loss(rec.detach(), x).item() * DB_PER_NEPER
        if step % 50 == 0:
            log(f"step {step}: {(time.time() - t_train) / max(1, step - first_step):.2f} s/step")
        if step % cfg.val_every == 0 or step == cfg.steps:
            v16, vq = validate(vae, val_crops, None), validate(vae, val_crops, cfg.quant_bits)
            history.append({"step": step, "train_l1_db": running / (step - (history[-1]["step"] if history else 0)),
                            "val_l1_db": v16, f"val_l1_db_{cfg.quant_bits}bit": vq,
                            "minutes": (time.time() - t_train) / 60})
            running = 0.0
            log(f"step {step}/{cfg.steps} lr {lr_at(step, cfg):.2e} train {history[-1]['train_l1_db']:.3f} dB "
                f"val {v16:.3f} dB (at {cfg.quant_bits} bits {vq:.3f} dB) {history[-1]['minutes']:.1f} min")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step, "history": history,
                        "init_fingerprint": init_fingerprint}, tmp)
            tmp.replace(ckpt)
    vae.eval().save_pretrained(out, safe_serialization=True)
    info = {"config": asdict(cfg), "init_fingerprint": init_fingerprint, "data_hours": hours, "history": history,
            "train_minutes": (time.time() - t_train) / 60}
    (out / "training.json").write_text(json.dumps(info, indent=1))
    return info
