"""Training a mel VAE for reconstruction (``alat train``): the shipped models are made this way.

Data: every audio file under a folder, on the codec's own front end (16 kHz, per-file AudioLDM
normalisation, log-mel). When the folder has sub-folders (music/, speech/, effects/) crops are drawn
by kind with the weights given, not by file, so the hours of music do not drown the speech; files a
``MANIFEST.tsv`` marks as narrowband (sources at 8 kHz or less) are drawn ``narrow_weight`` times as
often per hour, so the model does not learn to drop the top octave.
Loss: L1 on the log-mel plus L1 at coarser time-frequency scales and a small KL term, on a latent that
carries the noise of the quantizer it will meet on all but ``clean_fraction`` of each batch: version 1's
min/max quantizer at ``quant_bits``, or (``quant_step`` > 0) the version-2 coder's step, with
``rate_weight`` x the estimated kbps of the latent added (:mod:`rate_proxy`). With ``gan_weight`` > 0, from
step ``gan_start`` also a hinge GAN loss of a patch discriminator on the decoded log-mel and L1 feature
matching against its features of the real mel, scaled by the adaptive weight of taming-transformers (the
ratio of the reconstruction's and their gradient norms at the decoder's last layer) x ``gan_weight``; the
discriminator trains from ``disc_warmup`` steps before that. Validation: log-mel L1, and PESQ-wb and STOI
of the first speech clips decoded through the coder and vocoded (:func:`evaluate_vocoder`).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from latentcodec.audio.io import AUDIO_SUFFIXES, read_audio
from latentcodec.audio.mel import AUDIOLDM_MEL, log_mel, normalization_stats
from latentcodec.constants import DB_PER_NEPER, LOG_FLOOR
from latentcodec.errors import LatentCodecError, ModelError
from latentcodec.format.quantize import dequantize, quantize
from latentcodec.format.transform_coder import decode_codes_of, dequantize_codes, encode_latent
from latentcodec.models.loader import SMALL_VAE_CONFIG, load_model
from latentcodec.training.checkpoint import CHECKPOINT, read_checkpoint, restoring, save_state
from latentcodec.training.discriminators import (
    MelPatchDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    real_fake_accuracy,
)
from latentcodec.training.evaluation import evaluate_vocoder
from latentcodec.training.rate_proxy import batch_klt, noisy_latent
from latentcodec.vocoders.registry import load_vocoder
from latentcodec.vocoders.windows import Vocoder

FRAMES_PER_SECOND = AUDIOLDM_MEL.sample_rate / AUDIOLDM_MEL.hop
VAL_WINDOW = 500  # frames: validation runs on the codec's default 5 s chunks
VAL_SPEECH_CLIPS, VAL_SPEECH_SECONDS = 4, 10.0  # PESQ-wb and STOI on this many speech clips, cut to this length


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
    quant_step: float = 0.0  # > 0: noise of the version-2 coder at this step instead of quant_bits'
    rate_weight: float = 0.0  # loss per estimated kbps at quant_step (rate-distortion training)
    clean_fraction: float = 0.0  # share of each batch decoded from the exact latent, without quantizer noise
    silent_fraction: float = 0.0  # share of the crops that are all log floor (digital silence)
    narrow_weight: float = 1.0  # draws per hour of a narrowband file against a wideband one
    bf16: bool = False  # bfloat16 autocast for the VAE's convolutions
    multiscale: tuple[int, ...] = (2, 4, 8)
    kind_weights: dict[str, float] = field(default_factory=lambda: {"music": 0.4, "speech": 0.4, "effects": 0.2})
    seed: int = 0
    init: str | None = None  # model to start from (fine-tuning); None: random weights from ``seed``
    freeze_encoder: bool = False  # train the decoder alone: init's encoder (its latent space) kept as it is
    gan_weight: float = 0.0  # > 0: patch-GAN + feature matching, x the adaptive weight x this; 0: off
    gan_start: int = 0  # step from which the GAN and feature-matching terms are in the VAE's loss
    disc_warmup: int = 0  # steps before gan_start in which the discriminator learns (the VAE trains as without it)
    fm_weight: float = 1.0  # feature matching against the GAN loss, inside the adaptive weight
    disc_lr: float = 2e-4  # the discriminator's AdamW, constant, betas (0.5, 0.9)
    val_vocoder: str = "latentcodec-maggl-routed-v1"  # vocodes the speech validation clips (v2's pairing)
    val_every: int = 250
    checkpoint_every: int = 250
    vae_config: dict = field(default_factory=lambda: dict(SMALL_VAE_CONFIG))


@dataclass
class Run:
    """The state a checkpoint holds."""

    vae: Any  # diffusers AutoencoderKL
    opt: torch.optim.Optimizer
    step: int = 0
    history: list[dict] = field(default_factory=list)
    init_fingerprint: str | None = None
    disc: MelPatchDiscriminator | None = None  # with its optimiser, only when the GAN is on
    disc_opt: torch.optim.Optimizer | None = None
    seconds: float = 0.0  # of training before this session, for the learning curve's hours

    def gan(self) -> tuple[MelPatchDiscriminator, torch.optim.Optimizer]:
        """The discriminator and its optimiser, of a run with the GAN on."""
        assert self.disc is not None and self.disc_opt is not None, "the GAN is off: the run has no discriminator"
        return self.disc, self.disc_opt


def check_seed(seed: int) -> None:
    """A seed every generator a run seeds takes (torch's up to 2^64 - 1 after the steps are added to it)."""
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise LatentCodecError(f"seed {str(seed)[:24]}: give an integer from 0 to {2**32 - 1}", "seed")


def normalized_audio(folder: Path) -> Iterator[tuple[str, Path, np.ndarray]]:
    """(kind, path, mono 16 kHz samples as the codec normalises them) of every audio file under
    ``folder``, in sorted order; the kind is the first sub-folder ("all" for files at the top)."""
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        audio = read_audio(path, mono=True).samples[0]
        off, gain = normalization_stats(audio)
        rel = path.relative_to(folder).parts
        yield (rel[0] if len(rel) > 1 else "all"), path, (audio - off) * gain


def narrowband_files(folder: Path) -> set[Path]:
    """Files that ``folder/MANIFEST.tsv`` (recipes/build_dataset.py) marks as band ``narrow``."""
    manifest = folder / "MANIFEST.tsv"
    if not manifest.exists():
        return set()
    with manifest.open(newline="") as f:
        return {folder / row["file"] for row in csv.DictReader(f, delimiter="\t") if row.get("band") == "narrow"}


def load_mels(folder: Path, narrow_weight: float = 1.0) -> tuple[dict[str, list[np.ndarray]], dict[str, list[float]]]:
    """Log-mel (float16, (frames, 64)) of every audio file under ``folder`` grouped by its first
    sub-folder, and each file's draw weight per hour (``narrow_weight`` for narrowband files, else 1)."""
    narrow = narrowband_files(folder)
    groups: dict[str, list[np.ndarray]] = {}
    weights: dict[str, list[float]] = {}
    for kind, path, audio in normalized_audio(folder):
        groups.setdefault(kind, []).append(log_mel(audio).astype(np.float16))
        weights.setdefault(kind, []).append(narrow_weight if path in narrow else 1.0)
    return groups, weights


def quant_noise(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Uniform noise of one quantizer step, the step of a min/max quantizer per item and channel."""
    flat = z.flatten(2)
    step = (flat.amax(-1) - flat.amin(-1)) / (2**bits - 1)
    return z + (torch.rand_like(z) - 0.5) * step[..., None, None]


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, scales: tuple[int, ...]) -> torch.Tensor:
    loss = F.l1_loss(pred, target)
    for s in scales:
        loss = loss + F.l1_loss(F.avg_pool2d(pred, s), F.avg_pool2d(target, s))
    return loss


class FileSampler:
    """Seeded draws of a file, by kind then by file (weighted by length x its weight): what every crop sampler
    shares (each gives its own ``batch``)."""

    def __init__(
        self,
        groups: dict[str, list[np.ndarray]],
        weights: dict[str, float],
        crop: int,
        seed: int,
        file_weights: dict[str, list[float]] | None = None,
        silent_fraction: float = 0.0,
    ):
        self.crop, self.silent_fraction = crop, silent_fraction
        self.kinds = [k for k in sorted(groups) if any(len(m) >= 8 for m in groups[k])]  # a kind with no crop to give
        w = np.array([weights.get(k, 1.0) for k in self.kinds], dtype=np.float64)
        if not w.sum() > 0:
            raise LatentCodecError(
                "no training audio to draw crops from: no file of at least 8 mel frames (80 ms) "
                "of a kind whose weight is above 0",
                "data",
            )
        self.kind_p = w / w.sum()
        self.groups, self.file_p = {}, {}
        for k in self.kinds:
            fw = file_weights[k] if file_weights else [1.0] * len(groups[k])
            kept = [(m, f) for m, f in zip(groups[k], fw) if len(m) >= 8]
            self.groups[k] = [m for m, _ in kept]
            p = np.array([len(m) * f for m, f in kept], np.float64)
            self.file_p[k] = p / p.sum()
        self.rng = np.random.default_rng(seed)

    def pick_index(self) -> tuple[str, int]:
        """A kind by its weight, then the index of a file of that kind by its length and weight."""
        k = self.kinds[self.rng.choice(len(self.kinds), p=self.kind_p)]
        return k, int(self.rng.choice(len(self.groups[k]), p=self.file_p[k]))

    def pick(self) -> np.ndarray:
        """One file's array, drawn by :meth:`pick_index`."""
        k, i = self.pick_index()
        return self.groups[k][i]


class CropSampler(FileSampler):
    """Random crops, by kind then by file (weighted by length x its weight) then by position; seeded."""

    def batch(self, n: int) -> torch.Tensor:
        out = np.empty((n, 1, self.crop, self.groups[self.kinds[0]][0].shape[1]), np.float32)
        for i in range(n):
            # Digital silence: a window the files rarely hold for a whole crop, which a narrow block's
            # per-channel norms map to one fixed pattern that must be learned (recipes/README.md).
            # The draw is skipped when the share is 0, so that runs without it keep their crops.
            if self.silent_fraction and self.rng.random() < self.silent_fraction:
                out[i, 0] = np.log(LOG_FLOOR)
                continue
            m = self.pick()
            if len(m) >= self.crop:
                s = int(self.rng.integers(0, len(m) - self.crop + 1))
                out[i, 0] = m[s : s + self.crop]
            else:
                out[i, 0] = np.log(LOG_FLOOR)
                out[i, 0, : len(m)] = m
        return torch.from_numpy(out)


@dataclass
class Validation:
    """The validation windows (N, 1, 500, 64), each one's kind, and the speech clips PESQ-wb and STOI are
    measured on: (name, index of its first window, its normalised audio cut to ``VAL_SPEECH_SECONDS``)."""

    crops: torch.Tensor
    kinds: list[str]
    speech: list[tuple[str, int, np.ndarray]] = field(default_factory=list)


def validation_crops(named: list[tuple[str, np.ndarray]]) -> tuple[torch.Tensor, list[str], list[int]]:
    """Each (kind, log-mel) cut into the codec's 5 s windows, the last padded with silence:
    ((N, 1, 500, 64) windows, N kinds, the index of each item's first window)."""
    crops: list[np.ndarray] = []
    kinds: list[str] = []
    firsts: list[int] = []
    for kind, m in named:
        firsts.append(len(crops))
        for s in range(0, len(m), VAL_WINDOW):
            c = np.full((VAL_WINDOW, m.shape[1]), np.log(LOG_FLOOR), np.float32)
            c[: len(m[s : s + VAL_WINDOW])] = m[s : s + VAL_WINDOW]
            crops.append(c)
            kinds.append(kind)
    return torch.from_numpy(np.stack(crops))[:, None], kinds, firsts


def prepare_data(
    data: Path, val: Path | None, cfg: TrainConfig, log: Callable[[str], None]
) -> tuple[CropSampler, Validation, dict[str, float]]:
    """The training sampler, the validation set (of ``val``, else every 50th training file, then without
    speech clips to listen to) and the training hours by kind. Validation files at the top of ``val`` take
    their kind from the name (``speech_x.wav``), as the dev clips are named."""
    t0 = time.time()
    groups, weights = load_mels(data, cfg.narrow_weight)
    if not groups:
        raise LatentCodecError(f"{data}: no audio files to train on", "data")
    hours = {k: sum(len(m) for m in v) / FRAMES_PER_SECOND / 3600 for k, v in groups.items()}
    log(
        f"training data: {sum(len(v) for v in groups.values())} files, {sum(hours.values()):.2f} h "
        f"({', '.join(f'{k} {h:.2f} h' for k, h in hours.items())}), read in {time.time() - t0:.0f} s"
    )
    clips: list[tuple[str, str, np.ndarray]] = []
    if val is not None:
        clips = [
            (kind if kind != "all" else path.stem.split("_")[0], path.stem, audio)
            for kind, path, audio in normalized_audio(val)
        ]
        named = [(kind, log_mel(audio)) for kind, _, audio in clips]
    else:
        named = [(k, m) for k, v in groups.items() for m in v[::50]]
        keep = {k: [i % 50 != 0 for i in range(len(v))] for k, v in groups.items()}
        groups = {k: [m for m, kept in zip(v, keep[k]) if kept] for k, v in groups.items()}
        weights = {k: [w for w, kept in zip(v, keep[k]) if kept] for k, v in weights.items()}
        if not any(groups.values()):
            raise LatentCodecError(
                f"{data}: its every 50th file of each kind validates, which leaves no file to "
                f"train on: give validation audio of its own",
                "val",
            )
    sampler = CropSampler(groups, cfg.kind_weights, cfg.crop_frames, cfg.seed, weights, cfg.silent_fraction)
    if not named:
        raise LatentCodecError(f"{val}: no audio files to validate on", "val")
    crops, kinds, firsts = validation_crops(named)
    cut = int(VAL_SPEECH_SECONDS * AUDIOLDM_MEL.sample_rate)
    speech = [(name, first, audio[:cut]) for (kind, name, audio), first in zip(clips, firsts) if kind == "speech"]
    return sampler, Validation(crops, kinds, speech[:VAL_SPEECH_CLIPS]), hours


def start_run(
    out: Path, cfg: TrainConfig, device: str, resume: bool, sampler: CropSampler, log: Callable[[str], None]
) -> Run:
    """The model, optimiser and random states: from the checkpoint (``resume``), else from ``cfg.init``, else
    random (the sampler's state then follows the seed)."""
    from diffusers import AutoencoderKL

    # diffusers' __init__ names its torch-less dummy AutoencoderKL first under TYPE_CHECKING, so mypy sees that
    vae = AutoencoderKL(**cfg.vae_config).to(device).train()  # type: ignore[attr-defined]
    run = Run(vae, torch.optim.AdamW(trained_parameters(vae, cfg), lr=cfg.lr, weight_decay=1e-4))
    if cfg.gan_weight > 0:  # built only then: its random init would move the seeded noise of a run without it
        run.disc = MelPatchDiscriminator().to(device).train()
        run.disc_opt = torch.optim.AdamW(run.disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.9), weight_decay=1e-4)
    found = read_checkpoint(out) if resume else None
    if found is not None:
        with restoring(found[0]):
            resume_run(run, *found, sampler, cfg)
        log(f"resumed at step {run.step}")
    elif cfg.init:
        base = load_model(cfg.init, device, runtime="torch")
        try:
            vae.load_state_dict(base.module.state_dict())
        except RuntimeError as e:
            raise ModelError(
                f"model '{cfg.init}' has another architecture than the one trained here: cannot start from it", "init"
            ) from e
        run.init_fingerprint = base.fingerprint.hex()
        log(f"starting from the weights of {cfg.init} ({run.init_fingerprint[:16]})")
    return run


def trained_parameters(vae: Any, cfg: TrainConfig) -> list[torch.nn.Parameter]:
    """What the optimiser moves: every weight, or with ``freeze_encoder`` the decoder's alone (post_quant_conv
    and decoder), so that every file the encoder wrote keeps its meaning for the trained decoder."""
    if not cfg.freeze_encoder:
        return list(vae.parameters())
    if cfg.init is None:
        raise LatentCodecError("a frozen encoder is the one of the model the run starts from: name that model", "init")
    for part in (vae.encoder, vae.quant_conv):
        part.requires_grad_(False)
    return [*vae.post_quant_conv.parameters(), *vae.decoder.parameters()]


def resume_run(run: Run, ckpt: Path, state: dict, sampler: CropSampler, cfg: TrainConfig) -> None:
    """Put a checkpoint's ``state`` back into ``run``, the sampler and torch's generator. Checkpoints before
    the GAN held no random state: then both are reseeded by the step."""
    try:
        run.vae.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ModelError(
            f"{ckpt} holds a VAE of another shape: resume with the block widths it was trained with", "vae_config"
        ) from e
    run.opt.load_state_dict(state["opt"])
    run.step, run.history, run.init_fingerprint = state["step"], state["history"], state.get("init_fingerprint")
    if not isinstance(run.step, int) or run.step < 0 or not isinstance(run.history, list):
        raise ValueError("its step or history is not of a checkpoint")
    load_disc(run, state, ckpt)
    run.seconds = float(state.get("seconds", 0.0))
    if "sampler_rng" in state:
        sampler.rng.bit_generator.state = state["sampler_rng"]
    else:
        sampler.rng = np.random.default_rng([cfg.seed, run.step])
    if "torch_rng" in state:
        torch.set_rng_state(state["torch_rng"])
    else:
        torch.manual_seed(cfg.seed + run.step)


def load_disc(run: Run, state: dict, ckpt: Path) -> None:
    """The discriminator and its optimiser from a checkpoint's ``state``, when the run has one."""
    if run.disc is None:
        return
    if "disc" not in state:
        raise ModelError(
            f"{ckpt} was written without the GAN: resume it with the GAN's weight at 0, or start "
            f"a new run from its model",
            "gan_weight",
        )
    disc, disc_opt = run.gan()
    disc.load_state_dict(state["disc"])
    disc_opt.load_state_dict(state["disc_opt"])


def adaptive_weight(rec_loss: torch.Tensor, adv_loss: torch.Tensor, last_layer: torch.Tensor) -> torch.Tensor:
    """||d rec_loss / dW|| / (||d adv_loss / dW|| + 1e-4) at the decoder's last layer W, in [0, 1e4], no
    gradient (Esser et al. 2021): the adversarial gradient there is then as large as the reconstruction's,
    whatever the scales of the two losses and as they drift."""
    (g_rec,) = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)
    (g_adv,) = torch.autograd.grad(adv_loss, last_layer, retain_graph=True)
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0, 1e4).detach()


def adversarial_loss(
    run: Run, rec: torch.Tensor, x: torch.Tensor, rec_loss: torch.Tensor, cfg: TrainConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """gan_weight x adaptive weight x (hinge GAN + fm_weight x feature matching) of the decoded (B, 1, T, 64)
    mels ``rec`` against the crops ``x``; the discriminator is held fixed (its gradients are not computed)."""
    disc = run.disc
    assert disc is not None, "the GAN is off: the run has no discriminator"
    disc.requires_grad_(False)
    fake = disc(rec)
    with torch.no_grad():
        real = disc(x)
    disc.requires_grad_(True)
    gan, fm = generator_loss(fake), feature_matching_loss(real, fake)
    adv = gan + cfg.fm_weight * fm
    weight = adaptive_weight(rec_loss, adv, run.vae.decoder.conv_out.weight)
    return cfg.gan_weight * weight * adv, {"gan": gan.item(), "fm": fm.item(), "adaptive_weight": weight.item()}


def disc_step(run: Run, fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """One update of the discriminator, hinge loss, on detached decoded mels against the crops (B, 1, T, 64);
    its loss and the shares of real and fake patches it calls right."""
    disc, disc_opt = run.gan()
    r, f = disc(real), disc(fake)
    loss = discriminator_loss(r, f)
    disc_opt.zero_grad(set_to_none=True)
    loss.backward()
    disc_opt.step()
    acc_real, acc_fake = real_fake_accuracy(r, f)
    return {"disc": loss.item(), "disc_acc_real": acc_real, "disc_acc_fake": acc_fake}


def train_step(run: Run, x: torch.Tensor, cfg: TrainConfig) -> dict[str, float]:
    """One optimiser step on (B, 1, frames, 64) log-mel crops (and one of the discriminator, when it trains);
    returns the step's L1 (dB), estimated kbps and the GAN's figures."""
    for g in run.opt.param_groups:
        g["lr"] = lr_at(run.step, cfg)
    autocast = torch.autocast(x.device.type, dtype=torch.bfloat16) if cfg.bf16 else nullcontext()
    with autocast, torch.no_grad() if cfg.freeze_encoder else nullcontext():
        post = run.vae.encode(x).latent_dist
    z = post.mode().float()
    n_clean = round(cfg.clean_fraction * len(z))  # crops are random: the first ones are as good as any
    kbps = torch.zeros(())
    if cfg.quant_step > 0:
        noisy, bits = noisy_latent(z[n_clean:], cfg.quant_step)
        kbps = bits.mean() / (x.shape[2] / FRAMES_PER_SECOND) / 1000
        z = torch.cat([z[:n_clean], noisy])
    elif cfg.quant_bits:
        z = torch.cat([z[:n_clean], quant_noise(z[n_clean:], cfg.quant_bits)])
    with autocast:
        rec = run.vae.decode(z).sample.float()
    rec_loss = reconstruction_loss(rec, x, cfg.multiscale)
    loss = rec_loss + cfg.kl_weight * post.kl().mean() + cfg.rate_weight * kbps
    gan: dict[str, float] = {}
    if run.disc is not None and run.step >= cfg.gan_start:
        adv, gan = adversarial_loss(run, rec, x, rec_loss, cfg)
        loss = loss + adv
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.vae.parameters(), 1.0)
    run.opt.step()
    if run.disc is not None and run.step >= cfg.gan_start - cfg.disc_warmup:
        gan |= disc_step(run, rec.detach(), x)
    run.step += 1
    return {"l1_db": F.l1_loss(rec.detach(), x).item() * DB_PER_NEPER, "kbps": kbps.detach().item(), **gan}


@torch.no_grad()
def latents_of(vae: Any, crops: torch.Tensor) -> torch.Tensor:
    """Float16-rounded posterior means (N, L, T, M) of the windows, as the encoder stores them."""
    return torch.cat([vae.encode(crops[i : i + 8]).latent_dist.mode().half().float() for i in range(0, len(crops), 8)])


@torch.no_grad()
def window_l1_db(vae: Any, crops: torch.Tensor, z: torch.Tensor) -> np.ndarray:
    """(N,) log-mel L1 in dB of each window decoded from the latents ``z``."""
    return (
        np.concatenate(
            [
                (vae.decode(z[i : i + 8]).sample - crops[i : i + 8]).abs().mean(dim=(1, 2, 3)).numpy()
                for i in range(0, len(crops), 8)
            ]
        )
        * DB_PER_NEPER
    )


def coded(z: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, float]:
    """The latents as the deployed quantizer gives them back, and the version-2 coder's kbps (records'
    params and payload, over 5 s windows; NaN for version 1). Version 2 uses the KLT of these latents."""
    if cfg.quant_step <= 0:
        return torch.stack(
            [
                torch.from_numpy(dequantize(*quantize(zi.numpy(), cfg.quant_bits), cfg.quant_bits, tuple(zi.shape)))
                for zi in z
            ]
        ), float("nan")
    klt = batch_klt(z).double().numpy()
    steps = np.full(len(klt), cfg.quant_step)
    out, size = [], 0
    for zi in z.numpy():
        params, payload = encode_latent(zi, steps, klt)
        size += len(params) + len(payload)
        out.append(dequantize_codes(decode_codes_of(params, payload, zi.shape), steps, klt))
    return torch.from_numpy(np.stack(out)), size * 8 / (len(z) * VAL_WINDOW / FRAMES_PER_SECOND) / 1000


@torch.no_grad()
def speech_scores(vae: Any, val: Validation, zq: torch.Tensor, vocoder: Vocoder) -> dict[str, float]:
    """PESQ-wb and STOI of the speech clips decoded from their coded latents ``zq`` (N, L, T, M) window by
    window, as :func:`validate` decodes, then vocoded; and the log-mel L1 (dB) of that audio."""
    clips = []
    for name, first, audio in val.speech:
        frames = len(log_mel(audio))
        windows = zq[first : first + -(-frames // VAL_WINDOW)].float()
        mel = vae.decode(windows).sample[:, 0].flatten(0, 1)[:frames]
        clips.append((name, "speech", audio, mel.numpy()))
    m = evaluate_vocoder(vocoder, clips)
    return {
        "val_pesq_wb_speech": m["pesq_wb_speech"],
        "val_stoi_speech": m["stoi_speech"],
        "val_vocoded_l1_db_speech": m["log_mel_l1_db"],
    }


def validate(vae: Any, val: Validation, cfg: TrainConfig, vocoder: Vocoder | None = None) -> dict[str, float]:
    """Log-mel L1 (dB) from the exact float16 latents and through the deployed quantizer, per kind for the
    latter, the coder's kbps, and with a ``vocoder`` the speech clips' :func:`speech_scores`."""
    crops, kinds = val.crops, val.kinds
    vae.eval()
    z = latents_of(vae, crops)
    zq, kbps = coded(z, cfg)
    exact, per_window = window_l1_db(vae, crops, z), window_l1_db(vae, crops, zq)
    heard = speech_scores(vae, val, zq, vocoder) if vocoder is not None and val.speech else {}
    vae.train()
    out = {"val_l1_db": float(exact.mean()), "val_coded_l1_db": float(per_window.mean()), "val_kbps": kbps, **heard}
    for kind in sorted(set(kinds)):
        out[f"val_coded_l1_db_{kind}"] = float(per_window[[k == kind for k in kinds]].mean())
    return out


def lr_at(step: int, cfg: Any) -> float:
    """Linear warm-up to ``cfg.lr``, then cosine decay to ``cfg.min_lr`` at ``cfg.steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(t, 1.0)))


def save_checkpoint(run: Run, sampler: CropSampler, seconds: float, path: Path) -> None:
    """Everything a ``--resume`` needs to go on as if never stopped (random states included, on the CPU),
    written whole or not at all."""
    gan: dict[str, Any] = {}
    if run.disc is not None:
        disc, disc_opt = run.gan()
        gan = {"disc": disc.state_dict(), "disc_opt": disc_opt.state_dict()}
    save_state(
        {
            "model": run.vae.state_dict(),
            "opt": run.opt.state_dict(),
            "step": run.step,
            "history": run.history,
            "init_fingerprint": run.init_fingerprint,
            "seconds": seconds,
            "torch_rng": torch.get_rng_state(),
            "sampler_rng": sampler.rng.bit_generator.state,
            **gan,
        },
        path,
    )


def train_means(steps: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's mean over the steps that have it (the GAN's only from when it trains), as train_*."""
    keys = dict.fromkeys(k for s in steps for k in s)
    names = {"kbps": "train_kbps_estimate"}
    return {names.get(k, f"train_{k}"): float(np.mean([s[k] for s in steps if k in s])) for k in keys}


def val_line(h: dict, cfg: TrainConfig) -> str:
    """One validation entry of the history, for the log."""
    heard = (
        f", speech PESQ-wb {h['val_pesq_wb_speech']:.3f} STOI {h['val_stoi_speech']:.3f}"
        if "val_pesq_wb_speech" in h
        else ""
    )
    return (
        f"step {h['step']}/{cfg.steps} lr {lr_at(h['step'], cfg):.2e} "
        f"train {h.get('train_l1_db', math.nan):.3f} dB "
        f"val {h['val_l1_db']:.3f} dB, coded {h['val_coded_l1_db']:.3f} dB at {h['val_kbps']:.2f} kbps ("
        + ", ".join(f"{k[16:]} {v:.3f}" for k, v in h.items() if k.startswith("val_coded_l1_db_"))
        + f"){heard} {h['minutes']:.1f} min"
    )


def listening_vocoder(val: Validation, cfg: TrainConfig, device: str, log: Callable[[str], None]) -> Vocoder | None:
    """``cfg.val_vocoder`` when there are speech clips to score and pesq and pystoi are installed."""
    if not val.speech:
        return None
    if not all(importlib.util.find_spec(m) for m in ("pesq", "pystoi")):
        log("validation without PESQ-wb and STOI: pip install 'latentcodec[train]' for them")
        return None
    with torch.random.fork_rng():  # building its networks draws from torch's RNG: the training noise must not move
        return load_vocoder(cfg.val_vocoder, device=device)


def train(
    data: Path,
    out: Path,
    cfg: TrainConfig,
    val: Path | None = None,
    device: str = "cpu",
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Train, checkpointing to ``out/checkpoint.safetensors``; write the model directory ``out`` at the end."""
    check_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_flush_denormal(True)  # tiny gradients as denormals slow CPU kernels many times over
    out.mkdir(parents=True, exist_ok=True)
    sampler, val_set, hours = prepare_data(data, val, cfg, log)
    run = start_run(out, cfg, device, resume, sampler, log)
    vocoder = listening_vocoder(val_set, cfg, device, log)
    t_train, first_step = time.time(), run.step
    since: list[dict[str, float]] = []

    def record(entry: dict[str, float]) -> None:
        run.history.append(
            {
                "step": run.step,
                **entry,
                **validate(run.vae, val_set, cfg, vocoder),
                "minutes": (time.time() - t_train) / 60,
                "hours": (run.seconds + time.time() - t_train) / 3600,
            }
        )
        log(val_line(run.history[-1], cfg))

    if run.step == 0:
        record({})  # the curve starts at the initial weights (those of --init)
    with (out / "steps.jsonl").open("a") as steps_log:
        while run.step < cfg.steps:
            t_step = time.time()
            since.append(
                {**train_step(run, sampler.batch(cfg.batch_size).to(device), cfg), "seconds": time.time() - t_step}
            )
            steps_log.write(json.dumps({"step": run.step, **since[-1]}) + "\n")
            if run.step % 50 == 0:
                recent = ", ".join(f"{k} {v:.3f}" for k, v in train_means(since[-50:]).items())
                log(f"step {run.step}: {(time.time() - t_train) / (run.step - first_step):.2f} s/step, {recent}")
            if run.step % cfg.val_every == 0 or run.step == cfg.steps:
                record(train_means(since))
                since = []
            if run.step % cfg.checkpoint_every == 0 or run.step == cfg.steps:
                steps_log.flush()
                save_checkpoint(run, sampler, run.seconds + time.time() - t_train, out / CHECKPOINT)
    return write_model(run, cfg, out, hours, (time.time() - t_train) / 60)


def write_model(run: Run, cfg: TrainConfig, out: Path, hours: dict[str, float], minutes: float) -> dict:
    """The trained model's folder ``out`` (diffusers layout) and its ``training.json``, returned."""
    run.vae.eval().save_pretrained(out, safe_serialization=True)
    info = {
        "config": asdict(cfg),
        "init_fingerprint": run.init_fingerprint,
        "data_hours": sum(hours.values()),
        "data_hours_by_kind": hours,
        "history": run.history,
        "train_minutes": minutes,
    }
    (out / "training.json").write_text(json.dumps(info, indent=1))
    return info
