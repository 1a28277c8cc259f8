"""`alat train` and `alat train-vocoder`."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

import click

from latentcodec.cli.group import cli
from latentcodec.cli.options import (
    DEVICE,
    POSITIVE,
    QUIET,
    Channels,
    Finite,
    KindWeights,
    check_folders,
    emit,
    log_to_stderr,
    set_threads,
)
from latentcodec.errors import LatentCodecError

SEED = click.IntRange(0, 2**32 - 1)  # what every generator a run seeds takes


def require(extra: str, *modules: str) -> None:
    """One line naming what to install when a command's packages are missing (the plain install has no torch)."""
    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        raise LatentCodecError(
            f"this command needs {', '.join(missing)} (not installed): pip install 'latentcodec[{extra}]'"
        )


@cli.command()
@click.argument("data")
@click.argument("output")
@click.option("--val", help="folder of validation audio (default: every 50th training file)")
@click.option("--steps", type=POSITIVE, default=1700, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=16, show_default=True)
@click.option("--crop-frames", type=POSITIVE, default=192, show_default=True)
@click.option(
    "--lr",
    type=Finite(0),
    default=1e-3,
    show_default=True,
    help="peak learning rate (after warm-up, before cosine decay)",
)
@click.option("--min-lr", type=Finite(0), default=2e-5, show_default=True, help="learning rate at the last step")
@click.option("--warmup", type=click.IntRange(0), default=200, show_default=True, help="steps of linear warm-up")
@click.option(
    "--kind-weights",
    type=KindWeights(),
    help="share of the crops drawn from each sub-folder (default: music=0.4,speech=0.4,effects=0.2)",
)
@click.option(
    "--clean-fraction",
    type=Finite(0, 1),
    default=0.0,
    show_default=True,
    help="share of each batch trained without quantizer noise (helps --bits 16 and high qualities)",
)
@click.option(
    "--silent-fraction",
    type=Finite(0, 1),
    default=0.0,
    show_default=True,
    help="share of the crops that are digital silence (the log floor throughout)",
)
@click.option(
    "--quant-step",
    type=Finite(0),
    default=0.0,
    show_default=True,
    help="train for the version-2 coder at this step (0.4 is --quality 4), not 4-bit version 1",
)
@click.option(
    "--rate-weight",
    type=Finite(0),
    default=0.0,
    show_default=True,
    help="loss per estimated kbps at --quant-step (rate-distortion training)",
)
@click.option(
    "--narrow-weight",
    type=Finite(0),
    default=1.0,
    show_default=True,
    help="draws per hour of narrowband files (MANIFEST.tsv band 'narrow') against wideband ones",
)
@click.option("--bf16", is_flag=True, help="bfloat16 autocast for the convolutions (about twice as fast on CPU)")
@click.option(
    "--gan-weight",
    type=Finite(0),
    default=0.0,
    show_default=True,
    help="patch-GAN + feature-matching loss on the log-mel, x the adaptive weight x this (0: off)",
)
@click.option(
    "--gan-start",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="step from which the GAN and feature-matching terms are in the VAE's loss",
)
@click.option(
    "--disc-warmup",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="steps before --gan-start in which the discriminator already learns",
)
@click.option(
    "--fm-weight",
    type=Finite(0),
    default=1.0,
    show_default=True,
    help="feature matching against the GAN loss, inside the adaptive weight",
)
@click.option(
    "--disc-lr", type=Finite(0), default=2e-4, show_default=True, help="the discriminator's learning rate (constant)"
)
@click.option(
    "--val-vocoder",
    default="latentcodec-maggl-routed-v1",
    show_default=True,
    help="vocodes the speech validation clips for PESQ-wb and STOI",
)
@click.option("--init", metavar="MODEL", help="start from this model's weights (fine-tuning), not random ones")
@click.option(
    "--freeze-encoder",
    is_flag=True,
    help="train the decoder alone, --init's encoder kept: the files that model wrote decode with the result",
)
@click.option("--channels", type=Channels(), help="the VAE's block widths, full resolution first (default 32,64,128)")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--val-every", type=POSITIVE, default=250, show_default=True, help="steps between validations")
@click.option("--checkpoint-every", type=POSITIVE, default=250, show_default=True, help="steps between checkpoints")
@click.option("--resume", is_flag=True, help="continue from OUTPUT's checkpoint")
@click.option("--threads", type=POSITIVE, help="CPU threads for torch (default: torch's choice)")
@DEVICE
@QUIET
def train(
    data: str,
    output: str,
    val: str | None,
    device: str,
    resume: bool,
    quiet: bool,
    threads: int | None,
    kind_weights: dict[str, float] | None,
    channels: tuple[int, ...] | None,
    **opts: Any,
) -> None:
    """Train a mel VAE on folder DATA (sub-folders music/, speech/, effects/ are sampled by kind) into OUTPUT."""
    require("train", "torch", "diffusers")
    from latentcodec.models.loader import SMALL_VAE_CONFIG, pick_device
    from latentcodec.training.vae import TrainConfig
    from latentcodec.training.vae import train as train_vae

    check_folders(data, val)
    set_threads(threads)
    shape: dict[str, Any] = {"vae_config": {**SMALL_VAE_CONFIG, "block_out_channels": channels}} if channels else {}
    weighted: dict[str, Any] = {"kind_weights": kind_weights} if kind_weights else {}
    cfg = TrainConfig(**opts, **shape, **weighted)
    info = train_vae(
        Path(data),
        Path(output),
        cfg,
        val=Path(val) if val else None,
        device=pick_device(device),
        resume=resume,
        log=log_to_stderr(quiet),
    )
    last = info["history"][-1] if info["history"] else {}
    emit(
        False,
        {},
        f"{output}: trained {cfg.steps} steps on {info['data_hours']:.2f} h in "
        f"{info['train_minutes']:.1f} min; validation log-mel L1 "
        f"{last.get('val_l1_db', float('nan')):.3f} dB, through the quantizer "
        f"{last.get('val_coded_l1_db', float('nan')):.3f} dB",
        quiet=quiet,
    )


@cli.command(name="train-vocoder")
@click.argument("data")
@click.argument("output")
@click.option("--val", help="folder of validation clips (speech_*, music_*, ...): log-mel L1 and PESQ-wb")
@click.option(
    "--architecture",
    type=click.Choice(["vocos", "magnitude-gl"]),
    help="vocos: makes the waveform; magnitude-gl: makes the STFT magnitude, Griffin-Lim the phase",
)
@click.option("--coded-by", metavar="MODEL", help="train on the mels this VAE decodes from its default-setting files")
@click.option("--steps", type=POSITIVE)
@click.option("--batch-size", type=POSITIVE)
@click.option("--crop-frames", type=POSITIVE, help="mel frames (of 10 ms) per training crop")
@click.option("--lr", type=Finite(0), help="peak learning rate (cosine decay to --min-lr)")
@click.option("--min-lr", type=Finite(0))
@click.option("--gan-start", type=click.IntRange(0), help="steps of reconstruction losses alone before the GAN losses")
@click.option(
    "--consistency-weight",
    type=Finite(0),
    help="magnitude-gl: weight of its losses on the magnitude Griffin-Lim's resynthesis makes of it",
)
@click.option("--kind-weights", type=KindWeights())
@click.option("--init", metavar="VOCODER", help="start from this vocoder's generator (name or folder)")
@click.option("--seed", type=SEED)
@click.option("--val-every", type=POSITIVE)
@click.option("--checkpoint-every", type=POSITIVE)
@click.option("--resume", is_flag=True, help="continue from OUTPUT's checkpoint")
@click.option("--threads", type=POSITIVE, help="CPU threads for torch (default: torch's choice)")
@QUIET
def train_vocoder(
    data: str, output: str, val: str | None, resume: bool, threads: int | None, quiet: bool, **opts: Any
) -> None:
    """Train the neural vocoder on folder DATA; OUTPUT is usable as --vocoder OUTPUT.

    Options left out keep the library's defaults (VocoderTrainConfig), so they live in one place."""
    require("train", "torch", "diffusers")
    from latentcodec.training.vocoder import VocoderTrainConfig
    from latentcodec.training.vocoder import train_vocoder as run

    check_folders(data, val)
    set_threads(threads)
    cfg = VocoderTrainConfig(**{k: v for k, v in opts.items() if v is not None})
    info = run(Path(data), Path(output), cfg, val=Path(val) if val else None, resume=resume, log=log_to_stderr(quiet))
    val_line = ""
    if info["history"] and "val" in info["history"][-1]:
        v = info["history"][-1]["val"]
        speech = {k: "none" if v.get(k) is None else f"{v[k]:.3f}" for k in ("pesq_wb_speech", "stoi_speech")}
        val_line = (
            f"; validation log-mel L1 {v['log_mel_l1_db']:.3f} dB, speech PESQ-wb {speech['pesq_wb_speech']}, "
            f"STOI {speech['stoi_speech']}"
        )
    emit(
        False,
        {},
        f"{output}: trained {info['steps_done']} steps on {sum(info['data_hours'].values()):.2f} h "
        f"in {info['train_hours']:.2f} h{val_line}",
        quiet=quiet,
    )


@cli.command()
@click.argument("model_dir")
@click.argument("data")
@click.option("--files", type=POSITIVE, default=30, show_default=True, help="audio files to fit on")
@click.option("--seconds", type=Finite(1, 600), default=30.0, show_default=True, help="from the middle of each file")
@click.option(
    "--min-seconds", type=Finite(0, 600), default=10.0, show_default=True, help="only files at least this long"
)
@click.option("-y", "--overwrite", is_flag=True, help="replace the folder's coder.json")
@QUIET
def calibrate(
    model_dir: str, data: str, files: int, seconds: float, min_seconds: float, overwrite: bool, quiet: bool
) -> None:
    """Write the coder table (coder.json) of the diffusers VAE in folder MODEL_DIR from the audio under DATA.

    Optional: without it the encoder fits the table on each file's first 10 s, within about 1 % of the
    bytes; with it a long file that opens untypically codes as well as the rest."""
    from latentcodec.models.loader import load_model, vae_dir
    from latentcodec.training.calibrate import calibrate as fit

    check_folders(model_dir, data)
    folder = vae_dir(Path(model_dir))
    if folder is None:
        raise click.UsageError(f"{model_dir}: no config.json at its root or in vae/: not a diffusers model folder")
    model = load_model(model_dir)
    table = fit(model, folder, Path(data), files, seconds, min_seconds, overwrite)
    variances = ", ".join(f"{v:.3g}" for v in table["component_variance"])
    emit(
        False,
        {},
        f"{folder / 'coder.json'}: fitted on {len(table['calibration']['files'])} files; component "
        f"variances {variances}",
        quiet=quiet,
    )


@cli.command(name="export")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@QUIET
def export(dest: Path, quiet: bool) -> None:
    """Write the ONNX graphs of the shipped models and magnitude networks (what the onnx and openvino runtimes
    run) into DEST/graphs/LAYOUT/: encoder.onnx, decoder.onnx and decoder-openvino.onnx (the decoder in the
    form OpenVINO runs fastest), magnitude.onnx, once for all the models whose
    safetensors weights have one layout (LAYOUT: its hash). A graph reads the weights from the model's own
    folder when it runs, so nothing else is written (alat export latentcodec/weights, in a source checkout,
    remakes the shipped graphs in place); needs pip install 'latentcodec[export]'."""
    require("export", "torch", "diffusers", "onnx", "onnxscript")
    from latentcodec.export import export_magnitude_nets, export_vaes

    paths = export_vaes(dest) + export_magnitude_nets(dest)
    emit(False, {}, "\n".join(f"{p}: {p.stat().st_size:,} bytes" for p in paths), quiet=quiet)
