"""Training our vocoders (``alat train-vocoder``): the Vocos-style generator as the field trains vocoders
(Vocos, HiFi-GAN), or the magnitude network that Griffin-Lim completes (``magnitude_net.py``).

Data: the folders ``alat train`` reads (music/, speech/, effects/ of 16 kHz audio), normalised as the
codec normalises (mean removed, peak 0.5 per file), crops drawn by kind with the weights given. Each
crop keeps n_fft/2 samples of real context on both sides, so its input mel frames are exactly the
frames the codec computes for those samples; a file shorter than a crop sits in silence. With
``coded_by`` (second stage) the input is instead the mel a VAE decodes from each file's .alat at the
default setting, computed once before training, and the target is still the original audio.
Vocos loss: L1 on the AudioLDM log-mel x45 and a multi-resolution STFT loss (spectral convergence + L1 of
log magnitudes floored at 1e-5, so noise in near-silent bins costs as much as a missing partial); after
``gan_start`` steps also hinge GAN losses of multi-period and multi-resolution discriminators with
feature matching. Magnitude-network loss: see :class:`MagnitudeTrainer`.
Validation vocodes each validation clip's mel (exact, or decoded by ``coded_by``) through the codec's
windowing (``vocode_stream``) and reports the log-mel L1 in dB against the exact mel (all clips, and per
kind from the file name's prefix), PESQ-wb and STOI on the speech clips, beside Griffin-Lim's figures
from the same mels.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from latentcodec.audio.mel import AUDIOLDM_MEL, log_mel, mel_basis
from latentcodec.constants import DB_PER_NEPER, DEFAULT_GL_ITERS, LOG_FLOOR
from latentcodec.errors import LatentCodecError, ModelError
from latentcodec.options import DecodeOptions, EncodeOptions
from latentcodec.training.checkpoint import CHECKPOINT, read_checkpoint, restoring, save_state
from latentcodec.training.discriminators import (
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    multi_period,
    multi_resolution,
)
from latentcodec.training.evaluation import evaluate_vocoder
from latentcodec.training.vae import FileSampler, check_seed, lr_at, normalized_audio
from latentcodec.vocoders.griffinlim import GriffinLimVocoder, griffin_lim, phase_of
from latentcodec.vocoders.nets import MagnitudeNet, NetConfig, VocosGenerator, load_net, save_net
from latentcodec.vocoders.registry import neural_vocoder_folder, vocoder_of

MRSTFT_SIZES = (256, 512, 1024)


@dataclass
class VocoderTrainConfig:
    """Everything that decides the trained weights; saved in training.json beside them."""

    architecture: str = "vocos"  # or "magnitude-gl": a mel -> |STFT| network (magnitude_net.py) + Griffin-Lim
    coded_by: str | None = None  # a VAE: train on the mels it decodes from files of its default setting
    steps: int = 6000
    batch_size: int = 16
    crop_frames: int = 100  # samples per crop: crop_frames * hop (1 s); the generator sees crop_frames + 1 frames
    lr: float = 5e-4
    min_lr: float = 1e-5
    warmup: int = 0
    gan_start: int = 200  # reconstruction losses alone before this step
    mel_weight: float = 45.0
    mrstft_weight: float = 5.0
    magnitude_mel_weight: float = 1.0  # magnitude-gl: L1 of the log-mel of its magnitude (what the codec measures)
    consistency_weight: float = 0.0  # magnitude-gl: x the same losses on what Griffin-Lim's overlap-add makes of it
    mrd_weight: float = 1.0  # Vocos' author: MRD at 1.0 from the start "is key for reducing the buzzing"
    kind_weights: dict[str, float] = field(default_factory=lambda: {"music": 0.4, "speech": 0.4, "effects": 0.2})
    seed: int = 0
    init: str | None = None  # vocoder (shipped name or folder) to start from; None: random weights from ``seed``
    val_every: int = 500
    checkpoint_every: int = 250
    generator: dict | None = None  # NetConfig fields; None: the architecture's defaults

    def net_config(self) -> NetConfig:
        """The network's shape: Vocos' own STFT, or the mel's STFT for the magnitude network, which on a
        VAE's decoded mels is not pulled back to that mel (no NNLS steps): it has learnt the levels that
        the decoded mel lacks (end to end on the dev clips 0 steps gave log-mel L1 2.48 dB, PESQ-wb 1.39,
        STOI 0.857 against 2.51, 1.30, 0.824 with 10)."""
        default = (
            NetConfig()
            if self.architecture == "vocos"
            else NetConfig(n_fft=AUDIOLDM_MEL.n_fft, nnls_iters=0 if self.coded_by else NetConfig.nnls_iters)
        )
        return NetConfig(**{**asdict(default), **(self.generator or {})})


class WaveCropSampler(FileSampler):
    """Seeded crops of ``crop`` samples from 1-D waveforms, by kind, then file (by length), then position."""

    def batch(self, n: int) -> tuple[torch.Tensor, None]:
        """(n, crop) samples, and no mel: the trainer computes it (``PairCropSampler`` gives one)."""
        out = np.zeros((n, self.crop), np.float32)
        for i in range(n):
            w = self.pick()
            if len(w) >= self.crop:
                s = int(self.rng.integers(0, len(w) - self.crop + 1))
                out[i] = w[s : s + self.crop]
            else:
                s = int(self.rng.integers(0, self.crop - len(w) + 1))
                out[i, s : s + len(w)] = w
        return torch.from_numpy(out), None


class PairCropSampler(FileSampler):
    """Seeded crops of ``frames`` decoded mel frames with the samples under them (n_fft/2 more on each side,
    mirrored at a file's ends as the mel front end mirrors them), for training on a VAE's decoded mels."""

    def __init__(
        self, pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]], weights: dict[str, float], frames: int, seed: int
    ):
        kept = {k: [(w, m) for w, m in v if len(m) >= 8] for k, v in pairs.items()}  # as FileSampler keeps
        super().__init__({k: [m for _, m in v] for k, v in kept.items()}, weights, frames, seed)
        half = AUDIOLDM_MEL.n_fft // 2
        self.waves = {k: [np.pad(w, half, mode="reflect") for w, _ in v] for k, v in kept.items()}

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """((n, (frames - 1) * hop + n_fft) samples, (n, frames, n_mels) mels); short files padded."""
        c = AUDIOLDM_MEL
        segs = np.zeros((n, (self.crop - 1) * c.hop + c.n_fft), np.float32)
        mels = np.full((n, self.crop, c.n_mels), math.log(c.log_floor), np.float32)
        for i in range(n):
            k, j = self.pick_index()
            m, w = self.groups[k][j], self.waves[k][j]
            s = int(self.rng.integers(0, max(1, len(m) - self.crop + 1)))
            mel, wave = m[s : s + self.crop], w[s * c.hop : s * c.hop + segs.shape[1]]
            mels[i, : len(mel)], segs[i, : len(wave)] = mel, wave
        return torch.from_numpy(segs), torch.from_numpy(mels)


def coded_pairs(
    groups: dict[str, list[np.ndarray]], model: str, log: Callable[[str], None]
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Each waveform, at the level the codec normalises it to, with the mel that ``model`` decodes from
    its .alat at the default setting (float16 both): the input a vocoder really gets."""
    from latentcodec.audio.io import Audio
    from latentcodec.codec import decoded_mel, encode_audio
    from latentcodec.format.container import AlatReader
    from latentcodec.models.loader import load_model

    vae, t0 = load_model(model, runtime="torch"), time.time()
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for kind, waves in groups.items():
        for i, w in enumerate(waves):
            x = w.astype(np.float32)
            buf = io.BytesIO()
            encode_audio(Audio(x[None], AUDIOLDM_MEL.sample_rate, 1, len(x), 0), buf, EncodeOptions(model=vae))
            buf.seek(0)
            with AlatReader(buf) as r:
                mel, h = decoded_mel(r, DecodeOptions(model=vae))[0], r.header
            pairs.setdefault(kind, []).append(
                (((x - h.offsets[0]) * h.gains[0]).astype(np.float16), mel.astype(np.float16))
            )
            if (i + 1) % 500 == 0:
                log(f"coded {kind}: {i + 1}/{len(waves)} files ({time.time() - t0:.0f} s)")
    return pairs


def write_coded_cache(pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]], cache: Path) -> None:
    """The (wave, mel) pairs as safetensors (data, never a pickle): per kind all waves end to end, all mels
    end to end, and the length of each; written whole or not at all."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for kind, items in pairs.items():
        for i, part in enumerate(("wave", "mel")):
            arrays = [item[i] for item in items]
            tensors[f"{kind}/{part}"] = torch.from_numpy(np.concatenate(arrays))
            tensors[f"{kind}/{part}_lengths"] = torch.tensor([len(a) for a in arrays], dtype=torch.int64)
    tmp = cache.with_name(cache.name + ".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(cache)


def read_coded_cache(
    cache: Path, groups: dict[str, list[np.ndarray]], log: Callable[[str], None]
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]] | None:
    """The pairs :func:`write_coded_cache` wrote, when they are of exactly these waveforms (kinds, counts
    and lengths, float16 (frames, n_mels) mels); None, to code again, when they are not or it is damaged."""
    from safetensors import SafetensorError, safe_open

    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    try:
        with safe_open(str(cache), "np") as f:
            for kind, waves in groups.items():
                wave, mel = (
                    _split(f.get_tensor(f"{kind}/{p}"), f.get_tensor(f"{kind}/{p}_lengths")) for p in ("wave", "mel")
                )
                if (
                    [len(w) for w in wave] != [len(w) for w in waves]
                    or len(mel) != len(wave)
                    or any(m.ndim != 2 or m.shape[1] != AUDIOLDM_MEL.n_mels or m.dtype != np.float16 for m in mel)
                ):
                    raise ValueError("not of this data")
                pairs[kind] = list(zip(wave, mel))
    except (SafetensorError, OSError, ValueError, TypeError, IndexError) as e:
        log(f"{cache}: {str(e)[:120]}: coding again")
        return None
    log(f"decoded mels read from {cache}")
    return pairs


def _split(joined: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """``joined`` cut into pieces of ``lengths`` (1-D integers), which must add up to it exactly."""
    if lengths.ndim != 1 or (lengths < 0).any() or lengths.sum() != len(joined):
        raise ValueError("lengths that do not add up")
    return np.split(joined, np.cumsum(lengths)[:-1])


def load_waves(folder: Path) -> dict[str, list[np.ndarray]]:
    """Every file under ``folder`` normalised as the codec does, float16 (half the memory), by kind."""
    groups: dict[str, list[np.ndarray]] = {}
    for kind, _, audio in normalized_audio(folder):
        groups.setdefault(kind, []).append(audio.astype(np.float16))
    return groups


def batch_log_mel(wave: torch.Tensor, center: bool) -> torch.Tensor:
    """(batch, samples) -> (batch, frames, 64) AudioLDM log-mel, differentiable. ``center=False`` takes
    the frames whose whole window lies in ``wave`` (the codec's frames, given n_fft/2 of context)."""
    c = AUDIOLDM_MEL
    spec = torch.stft(
        wave,
        c.n_fft,
        c.hop,
        c.win,
        torch.hann_window(c.win, device=wave.device),
        center=center,
        pad_mode="reflect",
        return_complex=True,
    ).abs()
    mel = torch.from_numpy(mel_basis(c)).to(wave.device) @ spec
    return torch.log(torch.clamp(mel, min=c.log_floor)).transpose(1, 2)


def mrstft_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over STFT sizes (hop size/4) of spectral convergence + L1 of floored natural-log magnitudes."""
    total: torch.Tensor | float = 0.0
    for n in MRSTFT_SIZES:
        win = torch.hann_window(n, device=pred.device)
        p, t = (torch.stft(x, n, n // 4, n, win, center=True, return_complex=True).abs() for x in (pred, target))
        sc = torch.linalg.norm(t - p, dim=(1, 2)) / (torch.linalg.norm(t, dim=(1, 2)) + 1e-7)
        total = total + sc.mean() + F.l1_loss(torch.log(p.clamp(min=LOG_FLOOR)), torch.log(t.clamp(min=LOG_FLOOR)))
    assert isinstance(total, torch.Tensor), "MRSTFT_SIZES is not empty"
    return total / len(MRSTFT_SIZES)


def dev_clips(folder: Path, coded_by: str | None = None) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(name, kind, normalised audio, its log-mel) of each validation file; the kind is the name's prefix
    (speech_...). The mel is the exact one, or the one ``coded_by`` decodes from the audio's .alat."""
    clips = [(path.stem, path.stem.split("_")[0], audio) for _, path, audio in normalized_audio(folder)]
    if coded_by is None:
        return [(name, kind, x, log_mel(x)) for name, kind, x in clips]
    pairs = coded_pairs({"val": [x for _, _, x in clips]}, coded_by, lambda _: None)["val"]
    return [(name, kind, x.astype(np.float32), m.astype(np.float32)) for (name, kind, _), (x, m) in zip(clips, pairs)]


class Trainer:
    """Generator, discriminators, optimisers and the step; one ``step()`` is one update of each."""

    def __init__(self, cfg: VocoderTrainConfig, device: str = "cpu"):
        self.cfg, self.device = cfg, device
        torch.manual_seed(cfg.seed)
        self.gen = VocosGenerator(cfg.net_config()).to(device).train()
        self.mpd, self.mrd = multi_period().to(device), multi_resolution().to(device)
        betas = (0.8, 0.9)
        self.opt_g = torch.optim.AdamW(self.gen.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.AdamW([*self.mpd.parameters(), *self.mrd.parameters()], lr=cfg.lr, betas=betas)
        self.step = 0

    def state(self) -> dict:
        return {
            "gen": self.gen.state_dict(),
            "mpd": self.mpd.state_dict(),
            "mrd": self.mrd.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "step": self.step,
        }

    def load(self, state: dict) -> None:
        for name in ("gen", "mpd", "mrd", "opt_g", "opt_d"):
            getattr(self, name).load_state_dict(state[name])
        self.step = state["step"]

    def train_step(self, seg: torch.Tensor, mel: torch.Tensor | None = None) -> dict[str, float]:
        """One update from (batch, crop_frames * hop + n_fft) samples: the target is their middle, the input
        their mel frames or ``mel`` (batch, crop_frames + 1, n_mels) when given (a VAE's decoded mel)."""
        cfg, half = self.cfg, AUDIOLDM_MEL.n_fft // 2
        _set_lr((self.opt_g, self.opt_d), lr_at(self.step, cfg))
        seg = seg.to(self.device)
        target = seg[:, half : seg.shape[1] - half]
        fake = self.gen(batch_log_mel(seg, center=False) if mel is None else mel.to(self.device))
        out: dict[str, float] = {}
        gan = self.step >= cfg.gan_start
        if gan:
            d_loss = discriminator_loss(
                self.mpd(target), self.mpd(fake.detach())
            ) + cfg.mrd_weight * discriminator_loss(self.mrd(target), self.mrd(fake.detach()))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            out["d"] = d_loss.item()
        mel_l1 = F.l1_loss(batch_log_mel(fake, center=True), batch_log_mel(target, center=True))
        mrstft = mrstft_loss(fake, target)
        loss = cfg.mel_weight * mel_l1 + cfg.mrstft_weight * mrstft
        if gan:
            with torch.no_grad():
                real_p, real_r = self.mpd(target), self.mrd(target)
            fake_p, fake_r = self.mpd(fake), self.mrd(fake)
            adv = generator_loss(fake_p) + cfg.mrd_weight * generator_loss(fake_r)
            fm = feature_matching_loss(real_p, fake_p) + cfg.mrd_weight * feature_matching_loss(real_r, fake_r)
            loss = loss + adv + fm
            out.update(g_adv=adv.item(), fm=fm.item())
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.step += 1
        out.update(mel_l1_db=mel_l1.item() * DB_PER_NEPER, mrstft=mrstft.item(), g_total=loss.item())
        return out


class MagnitudeTrainer:
    """The magnitude network and its optimiser. A regression, so no discriminators: at the mel's STFT, L1 of
    floored log magnitudes (near-silent bins count) + spectral convergence (the loud partials count) +
    ``magnitude_mel_weight`` x L1 of the prediction's log-mel (each band's level, what the codec measures).

    What is heard is not that magnitude but Griffin-Lim's overlap-add of it, which averages a magnitude no
    signal has over the ~6 frames each sample lies in. With ``consistency_weight`` > 0 the same losses also
    score that: the phase Griffin-Lim finds (no gradient), then |STFT(iSTFT(prediction x phase))|, so the
    network learns magnitudes whose fine structure survives the resynthesis."""

    def __init__(self, cfg: VocoderTrainConfig, device: str = "cpu"):
        self.cfg, self.device = cfg, device
        torch.manual_seed(cfg.seed)
        self.gen = MagnitudeNet(cfg.net_config()).to(device).train()
        self.opt_g = torch.optim.AdamW(self.gen.parameters(), lr=cfg.lr, betas=(0.8, 0.99))
        self.step = 0

    def state(self) -> dict:
        return {"gen": self.gen.state_dict(), "opt_g": self.opt_g.state_dict(), "step": self.step}

    def load(self, state: dict) -> None:
        self.gen.load_state_dict(state["gen"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.step = state["step"]

    def train_step(self, seg: torch.Tensor, mel: torch.Tensor | None = None) -> dict[str, float]:
        """One update: the target is the |STFT| of the frames whose windows lie in ``seg`` (batch,
        crop_frames * hop + n_fft), the input their mel or ``mel`` as in :meth:`Trainer.train_step`."""
        c = AUDIOLDM_MEL
        _set_lr((self.opt_g,), lr_at(self.step, self.cfg))
        seg = seg.to(self.device)
        target = torch.stft(
            seg, c.n_fft, c.hop, c.win, torch.hann_window(c.win, device=seg.device), center=False, return_complex=True
        ).abs()
        pred = self.gen(batch_log_mel(seg, center=False) if mel is None else mel.to(self.device))
        losses = _magnitude_losses(pred, target, self.cfg.magnitude_mel_weight)
        loss = losses["total"]
        out = {
            "log_mag_l1_db": losses["log_l1"].item() * DB_PER_NEPER,
            "sc": losses["sc"].item(),
            "mel_l1_db": losses["mel_l1"].item() * DB_PER_NEPER,
        }
        if self.cfg.consistency_weight > 0:
            edge = c.n_fft // (2 * c.hop) + 1  # frames that lack a neighbour's overlap
            heard = _magnitude_losses(
                _resynthesised(pred)[..., edge:-edge], target[..., edge:-edge], self.cfg.magnitude_mel_weight
            )
            loss = loss + self.cfg.consistency_weight * heard["total"]
            out.update(
                heard_log_mag_l1_db=heard["log_l1"].item() * DB_PER_NEPER,
                heard_mel_l1_db=heard["mel_l1"].item() * DB_PER_NEPER,
            )
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.step += 1
        return {**out, "g_total": loss.item()}


def _magnitude_losses(pred: torch.Tensor, target: torch.Tensor, mel_weight: float) -> dict[str, torch.Tensor]:
    """L1 of floored log magnitudes, spectral convergence, L1 of log-mels, and their sum with the log-mel
    term weighted by ``mel_weight``; ``pred`` and ``target`` (batch, bins, frames)."""
    c = AUDIOLDM_MEL
    basis = torch.from_numpy(mel_basis(c)).to(pred.device)
    log_l1 = F.l1_loss(torch.log(pred.clamp(min=LOG_FLOOR)), torch.log(target.clamp(min=LOG_FLOOR)))
    sc = (torch.linalg.norm(target - pred, dim=(1, 2)) / (torch.linalg.norm(target, dim=(1, 2)) + 1e-7)).mean()
    mel_l1 = F.l1_loss(
        torch.log((basis @ pred).clamp(min=c.log_floor)), torch.log((basis @ target).clamp(min=c.log_floor))
    )
    return {"log_l1": log_l1, "sc": sc, "mel_l1": mel_l1, "total": log_l1 + sc + mel_weight * mel_l1}


def _resynthesised(mag: torch.Tensor) -> torch.Tensor:
    """|STFT| of the overlap-add of ``mag`` (batch, bins, frames) with the phase Griffin-Lim gives it (its
    iterations as the codec runs them, frames centred), differentiable in ``mag`` only."""
    c = AUDIOLDM_MEL
    with torch.no_grad():
        phase = torch.stack([phase_of(griffin_lim(m)) for m in mag.detach()])
    window = torch.hann_window(c.win, device=mag.device)
    wave = torch.istft(mag * phase, c.n_fft, c.hop, c.win, window, center=True, length=(mag.shape[-1] - 1) * c.hop)
    return torch.stft(wave, c.n_fft, c.hop, c.win, window, center=True, return_complex=True).abs()


def _set_lr(optimizers: tuple[torch.optim.Optimizer, ...], lr: float) -> None:
    for opt in optimizers:
        for g in opt.param_groups:
            g["lr"] = lr


TRAINERS: dict[str, type[Trainer] | type[MagnitudeTrainer]] = {"vocos": Trainer, "magnitude-gl": MagnitudeTrainer}


def training_sampler(
    data: Path, cfg: VocoderTrainConfig, log: Callable[[str], None], cache: Path
) -> tuple[WaveCropSampler | PairCropSampler, dict[str, float]]:
    """The crop sampler over ``data`` (with each file's decoded mel when ``cfg.coded_by``) and hours by kind.
    The decoded mels are kept in ``cache`` (tens of minutes to make; a resumed run reads them back)."""
    t0 = time.time()
    groups = load_waves(data)
    if not groups:
        raise LatentCodecError(f"{data}: no audio files to train on", "data")
    hours = {k: sum(len(w) for w in v) / AUDIOLDM_MEL.sample_rate / 3600 for k, v in groups.items()}
    log(
        f"training data: {sum(len(v) for v in groups.values())} files, {sum(hours.values()):.2f} h "
        f"({', '.join(f'{k} {h:.2f} h' for k, h in hours.items())}), read in {time.time() - t0:.0f} s"
    )
    if cfg.coded_by:
        if cache.with_suffix(".pt").exists() and not cache.exists():
            log(f"{cache.with_suffix('.pt')}: a pickled cache of an earlier release, not read (a pickle can run code)")
        pairs = read_coded_cache(cache, groups, log) if cache.exists() else None
        if pairs is None:
            log(f"coding the training audio with {cfg.coded_by} at its default setting")
            pairs = coded_pairs(groups, cfg.coded_by, log)
            write_coded_cache(pairs, cache)
        return PairCropSampler(pairs, cfg.kind_weights, cfg.crop_frames + 1, cfg.seed), hours
    crop = cfg.crop_frames * AUDIOLDM_MEL.hop + AUDIOLDM_MEL.n_fft
    return WaveCropSampler(groups, cfg.kind_weights, crop, cfg.seed), hours


def resume_trainer(
    trainer: Trainer | MagnitudeTrainer, state: dict, sampler: FileSampler
) -> tuple[list[dict], float, dict | None]:
    """Put a checkpoint's ``state`` back into the trainer, the sampler and torch's generator; returns the
    run's history, its seconds of training so far and Griffin-Lim's validation figures."""
    trainer.load(state)
    if (
        not isinstance(trainer.step, int)
        or trainer.step < 0
        or not isinstance(state["history"], list)
        or not isinstance(state["griffinlim"], (dict, type(None)))
    ):
        raise ValueError("its step, history or baseline is not of a checkpoint")
    sampler.rng.bit_generator.state = state["sampler_rng"]
    torch.set_rng_state(state["torch_rng"])
    return state["history"], float(state["seconds"]), state["griffinlim"]


def start_trainer(
    out: Path, cfg: VocoderTrainConfig, device: str, resume: bool, sampler: FileSampler, log: Callable[[str], None]
) -> tuple[Trainer | MagnitudeTrainer, list[dict], float, dict | None]:
    """The trainer with the run's history, seconds of training so far and Griffin-Lim's validation figures:
    from the checkpoint (``resume``), else from the generator of ``cfg.init``, else new (random weights)."""
    trainer = TRAINERS[cfg.architecture](cfg, device)
    history: list[dict] = []
    seconds_before, baseline = 0.0, None
    found = read_checkpoint(out) if resume else None
    if found is not None:
        with restoring(found[0]):
            history, seconds_before, baseline = resume_trainer(trainer, found[1], sampler)
        log(f"resumed at step {trainer.step}")
    elif cfg.init:
        start = load_net(neural_vocoder_folder(cfg.init), device)
        if type(start) is not type(trainer.gen):
            raise ModelError(
                f"vocoder '{cfg.init}' is a {start.architecture}, not a {trainer.gen.architecture}", "init"
            )
        trainer.gen.load_state_dict(start.state_dict())
        log(f"starting from the generator of {cfg.init}")
    return trainer, history, seconds_before, baseline


def write_checkpoint(
    trainer: Trainer | MagnitudeTrainer, sampler: FileSampler, out: Path, run_state: dict, record: Callable[[], dict]
) -> None:
    """The checkpoint (the trainer's state, the random states and ``run_state``), the generator's folder and
    ``training.json`` (``record()``, taken after the rest is written), so a killed run can go on from here."""
    state = {
        **trainer.state(),
        "sampler_rng": sampler.rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        **run_state,
    }
    save_state(state, out / CHECKPOINT)
    save_net(trainer.gen, out)
    (out / "training.json").write_text(json.dumps(record(), indent=1))
    trainer.gen.train()


def train_vocoder(
    data: Path,
    out: Path,
    cfg: VocoderTrainConfig,
    val: Path | None = None,
    device: str = "cpu",
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Train, checkpointing to ``out/checkpoint.safetensors`` (all state, RNG included) and writing the generator
    (``out/config.json``, ``out/model.safetensors``, loadable with ``--vocoder OUT``) and ``out/training.json``
    at every checkpoint, so a killed run loses at most ``checkpoint_every`` steps."""
    torch.set_flush_denormal(True)  # tiny gradients as denormals slow CPU kernels many times over
    check_run(cfg, val)
    out.mkdir(parents=True, exist_ok=True)
    sampler, hours = training_sampler(data, cfg, log, out / f"coded-{Path(cfg.coded_by or '').name}.safetensors")
    trainer, history, seconds_before, baseline = start_trainer(out, cfg, device, resume, sampler, log)
    clips = dev_clips(val, cfg.coded_by) if val is not None else []
    if clips and baseline is None:
        baseline = evaluate_vocoder(GriffinLimVocoder(DEFAULT_GL_ITERS), clips)
        log(f"Griffin-Lim ({DEFAULT_GL_ITERS} iterations) on the validation mels: {_fmt(baseline)}")
    t_start, first = time.time(), trainer.step
    running: dict[str, float] = {}
    n_running = 0

    def record() -> dict:
        return {
            "config": asdict(cfg),
            "data_hours": hours,
            "griffinlim": baseline,
            "history": history,
            "steps_done": trainer.step,
            "train_hours": (seconds_before + time.time() - t_start) / 3600,
        }

    while trainer.step < cfg.steps:
        for k, v in trainer.train_step(*sampler.batch(cfg.batch_size)).items():
            running[k] = running.get(k, 0.0) + v
        n_running += 1
        step = trainer.step
        if step % 50 == 0:
            log(
                f"step {step}: {(time.time() - t_start) / (step - first):.2f} s/step, "
                + ", ".join(f"{k} {v / n_running:.3f}" for k, v in running.items())
            )
        if step % cfg.val_every == 0 or step == cfg.steps:
            train = {k: v / n_running for k, v in running.items()}
            entry = {"step": step, "hours": record()["train_hours"], "lr": lr_at(step, cfg), "train": train}
            history.append(validated(entry, trainer, clips, baseline, log))
            running, n_running = {}, 0
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            write_checkpoint(
                trainer,
                sampler,
                out,
                {"history": history, "griffinlim": baseline, "seconds": seconds_before + time.time() - t_start},
                record,
            )
            log(f"step {step}: checkpoint written")
    return record()


def check_run(cfg: VocoderTrainConfig, val: Path | None) -> None:
    """Refuse, before any work, a seed out of range, an architecture there is no trainer for, or validation
    without its scorers."""
    check_seed(cfg.seed)
    if cfg.architecture not in TRAINERS:
        raise LatentCodecError(
            f"no vocoder architecture '{cfg.architecture}': use {' or '.join(TRAINERS)}", "architecture"
        )
    if val is not None and not all(importlib.util.find_spec(m) for m in ("pesq", "pystoi")):
        raise LatentCodecError("validation needs pesq and pystoi: pip install 'latentcodec[train]'", "val")


def validated(
    entry: dict, trainer: Trainer | MagnitudeTrainer, clips: list, baseline: dict | None, log: Callable[[str], None]
) -> dict:
    """``entry`` with the generator's scores on the validation ``clips`` (when there are any), logged beside
    Griffin-Lim's ``baseline``."""
    if clips:
        assert baseline is not None, "measured before training whenever there are clips"
        entry["val"] = evaluate_vocoder(vocoder_of(trainer.gen, device=trainer.device), clips)
        trainer.gen.train()
        log(f"step {entry['step']} validation: {_fmt(entry['val'])} (Griffin-Lim {_fmt(baseline)})")
    return entry


def _fmt(m: dict) -> str:
    pesq = f", speech PESQ-wb {m['pesq_wb_speech']:.3f}" if m.get("pesq_wb_speech") is not None else ""
    pesq += f", STOI {m['stoi_speech']:.3f}" if m.get("stoi_speech") is not None else ""
    kinds = ", ".join(f"{k} {v:.2f}" for k, v in m["log_mel_l1_db_by_kind"].items())
    return f"log-mel L1 {m['log_mel_l1_db']:.3f} dB ({kinds}){pesq}"
