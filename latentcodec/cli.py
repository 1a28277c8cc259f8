"""The `alat` command line: parses, calls the library, prints. Errors a user can cause end in one
line on stderr and exit status 1 (2 for bad usage)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .errors import LatentCodecError
from .quantize import BITS, DEFAULT_ZSTD
from .rate import DEFAULT_QUALITY, QUALITY_RANGE
from .vocoder import DEFAULT_GL_ITERS


def _progress(args: argparse.Namespace, what: str) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A tqdm bar on a terminal; nothing when quiet, scripted (--json) or not a terminal."""
    if args.quiet or getattr(args, "json", False) or not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(desc=what, unit="chunk", leave=False, file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar.close


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _kind_weights(text: str) -> dict[str, float]:
    try:
        weights = {k.strip(): float(w) for k, w in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not of the form music=0.4,speech=0.4,...") from None
    if any(w < 0 for w in weights.values()) or not sum(weights.values()) > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: weights must be >= 0 and not all 0")
    return weights


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="shipped model name, local diffusers folder, or Hugging Face repo id")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--batch-size", type=_positive, default=4, help="chunks per VAE call (default 4)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_encode_opts(p: argparse.ArgumentParser) -> None:
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=float, metavar="Q",
                      help=f"entropy coder at constant quality Q, {QUALITY_RANGE[0]:g} to {QUALITY_RANGE[1]:g}, "
                           f"higher is better (default {DEFAULT_QUALITY:g})")
    rate.add_argument("--kbps", type=float, metavar="K", help="entropy coder at the quality that gives about K kbps "
                                                              "on typical audio")
    rate.add_argument("--bits", type=int, choices=BITS,
                      help="version-1 files: min/max quantizer with this many bits per latent value, and zstd")
    p.add_argument("--zstd", type=int, metavar="LEVEL",
                   help=f"with --bits: zstd level per chunk payload, 0 = off (default {DEFAULT_ZSTD})")
    p.add_argument("--chunk-seconds", type=float, default=5.0, help="chunk length (default 5)")
    p.add_argument("--mono", action="store_true", help="average the channels and code one")


def _add_decode_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vocoder", default="griffinlim", choices=["griffinlim", "hifigan"])
    p.add_argument("--gl-iters", type=_positive, default=DEFAULT_GL_ITERS,
                   help=f"Griffin-Lim iterations (default {DEFAULT_GL_ITERS})")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="alat", description="Audio as quantized VAE latents in .alat files.")
    ap.add_argument("--version", action="version", version=f"latentcodec {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("encode", help="audio file -> .alat")
    p.add_argument("input")
    p.add_argument("output")
    _add_encode_opts(p)
    _add_common(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p = sub.add_parser("decode", help=".alat -> wav")
    p.add_argument("input")
    p.add_argument("output")
    _add_decode_opts(p)
    p.add_argument("--sample-rate", default="16000", help="'original', or a rate in Hz (default 16000)")
    p.add_argument("--force", action="store_true", help="decode with other weights than the file names")
    p.add_argument("--salvage", action="store_true", help="skip damaged chunks (silence) instead of stopping")
    _add_common(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p = sub.add_parser("info", help="header, chunks, real bytes, kbps and ratios of a .alat file")
    p.add_argument("input")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("eval", help="encode + decode + quality metrics in one go")
    p.add_argument("input")
    _add_encode_opts(p)
    _add_decode_opts(p)
    _add_common(p)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("train", help="train a mel VAE on a folder of audio")
    p.add_argument("data", help="folder of audio (sub-folders music/, speech/, effects/ are sampled by kind)")
    p.add_argument("output", help="model folder to write (loadable with --model)")
    p.add_argument("--val", help="folder of validation audio (default: every 50th training file)")
    p.add_argument("--steps", type=_positive, default=1700)
    p.add_argument("--batch-size", type=_positive, default=16)
    p.add_argument("--crop-frames", type=_positive, default=192)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (after warm-up, before cosine decay)")
    p.add_argument("--min-lr", type=float, default=2e-5, help="learning rate at the last step")
    p.add_argument("--warmup", type=int, default=200, help="steps of linear warm-up")
    p.add_argument("--kind-weights", type=_kind_weights, metavar="KIND=W,...",
                   help="share of the crops drawn from each sub-folder (default: music=0.4,speech=0.4,effects=0.2)")
    p.add_argument("--clean-fraction", type=_fraction, default=0.0,
                   help="share of each batch trained without 4-bit quantizer noise (helps --bits 16)")
    p.add_argument("--init", metavar="MODEL", help="start from this model's weights (fine-tuning), not random ones")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.pt")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--quiet", action="store_true")
    _add_train_vocoder(sub)
    return ap


def _add_train_vocoder(sub: Any) -> None:
    """Options left out keep the library's defaults (``VocoderTrainConfig``), so they live in one place."""
    p = sub.add_parser("train-vocoder", help="train the neural vocoder on a folder of audio",
                       argument_default=argparse.SUPPRESS)
    p.add_argument("data", help="folder of audio (sub-folders music/, speech/, effects/ are sampled by kind)")
    p.add_argument("output", help="folder for checkpoints and the generator (usable as --vocoder OUTPUT)")
    p.add_argument("--val", help="folder of validation clips (speech_*, music_*, ...): log-mel L1 and PESQ-wb")
    p.add_argument("--steps", type=_positive)
    p.add_argument("--batch-size", type=_positive)
    p.add_argument("--crop-frames", type=_positive, help="mel frames (of 10 ms) per training crop")
    p.add_argument("--lr", type=float, help="peak learning rate (cosine decay to --min-lr)")
    p.add_argument("--min-lr", type=float)
    p.add_argument("--gan-start", type=int, help="steps of reconstruction losses alone before the GAN losses")
    p.add_argument("--kind-weights", type=_kind_weights, metavar="KIND=W,...")
    p.add_argument("--init", metavar="VOCODER", help="start from this vocoder's generator (name or folder)")
    p.add_argument("--seed", type=int)
    p.add_argument("--val-every", type=_positive)
    p.add_argument("--checkpoint-every", type=_positive)
    p.add_argument("--resume", action="store_true", default=False, help="continue from OUTPUT/checkpoint.pt")
    p.add_argument("--threads", type=_positive, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", default=False)


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=1) if args.json else text)


def cmd_encode(args: argparse.Namespace) -> None:
    from .codec import encode_file
    from .fileinfo import coder_summary, coder_text, rate_figures
    from .models import pick_device

    update, close = _progress(args, "encode")
    t = time.perf_counter()
    try:
        res = encode_file(args.input, args.output, model=args.model, bits=args.bits, zstd_level=args.zstd,
                          quality=args.quality, kbps=args.kbps, chunk_seconds=args.chunk_seconds, mono=args.mono,
                          device=pick_device(args.device),
                          batch_size=args.batch_size, progress=update)
    finally:
        close()
    secs = time.perf_counter() - t
    h = res.header
    figs = rate_figures(res.file_size, h)
    data = {"output": args.output, "duration_s": h.duration, "channels": h.channels, "chunks": h.num_chunks,
            **coder_summary(h), "model": h.model_name, **figs, "seconds": secs,
            "x_realtime": h.duration / secs, "timings_s": res.timings.seconds}
    _print(args, data, f"{args.output}: {h.duration:.2f} s x {h.channels} ch -> {res.file_size:,} bytes, "
                       f"{figs['kbps']:.2f} kbps, {figs['ratio_vs_pcm16_16k']:.1f}x smaller than 16 kHz PCM "
                       f"({coder_text(h)}); "
                       f"{secs:.2f} s, {h.duration / secs:.0f}x real time")


def cmd_decode(args: argparse.Namespace) -> None:
    from .codec import decode_file
    from .models import pick_device

    update, close = _progress(args, "decode")
    t = time.perf_counter()
    try:
        res = decode_file(args.input, args.output, model=args.model, vocoder=args.vocoder, gl_iters=args.gl_iters,
                          sample_rate=args.sample_rate, force=args.force, salvage=args.salvage,
                          device=pick_device(args.device), batch_size=args.batch_size, progress=update)
    finally:
        close()
    secs = time.perf_counter() - t
    h = res.header
    for k, c in res.lost:
        span = h.chunk_frames * h.mel.hop / h.mel.sample_rate
        print(f"alat: warning: chunk {k} channel {c} ({k * span:.2f}-{(k + 1) * span:.2f} s) "
              f"was damaged: decoded as silence", file=sys.stderr)
    data = {"output": args.output, "sample_rate": res.sample_rate, "frames": res.frames, "channels": h.channels,
            "duration_s": h.duration, "lost_chunks": [list(x) for x in res.lost], "seconds": secs,
            "x_realtime": h.duration / secs, "timings_s": res.timings.seconds}
    _print(args, data, f"{args.output}: {h.duration:.2f} s x {h.channels} ch at {res.sample_rate} Hz "
                       f"({res.frames} frames); {secs:.2f} s, {h.duration / secs:.0f}x real time")


def cmd_info(args: argparse.Namespace) -> None:
    from .fileinfo import file_info

    info = file_info(args.input)
    h = info["header"]
    lines = [f"{args.input}: .alat version {h['format_version']}, written by {h['tool_version']}",
             f"  audio     {h['duration_s']:.3f} s, {h['channels']} ch coded at {h['mel']['sample_rate']} Hz "
             f"({h['num_samples']} samples); input {h['original_rate']} Hz, {h['original_channels']} ch"
             f"{', mixed to mono' if h['mono_downmix'] else ''}",
             f"  model     {h['model_name']} (fingerprint {h['model_fingerprint'][:16]})",
             f"  latent    {'x'.join(map(str, h['latent_shape']))} ({h['latent_axes']}) per "
             f"{h['chunk_frames'] * h['mel']['hop'] / h['mel']['sample_rate']:g} s chunk, {h['num_chunks']} chunks; "
             f"{info['coder_text']}",
             f"  size      {info['bytes']:,} bytes on disk ({info['payload_bytes']:,} payload, "
             f"{info['overhead_bytes']:,} header/stats/CRC/index), {info['kbps']:.2f} kbps",
             f"  ratios    {info['ratio_vs_pcm16_16k']:.1f}x vs 16-bit PCM at 16 kHz, "
             f"{info['ratio_vs_pcm16_original']:.1f}x vs 16-bit PCM at {h['original_rate']} Hz x "
             f"{h['original_channels']} ch, {info['ratio_vs_input_file']:.1f}x vs the input file",
             "  chunks    " + " ".join(str(r["bytes"]) for r in info["records"][:24])
             + (" ..." if len(info["records"]) > 24 else "")]
    _print(args, info, "\n".join(lines))


def cmd_eval(args: argparse.Namespace) -> None:
    from .evaluate import evaluate
    from .models import DEFAULT_MODEL, load_model, pick_device

    device = pick_device(args.device)
    model = load_model(args.model or DEFAULT_MODEL, device)
    r = evaluate(args.input, model, bits=args.bits, zstd_level=args.zstd, quality=args.quality, kbps=args.kbps,
                 chunk_seconds=args.chunk_seconds,
                 mono=args.mono, device=device, batch_size=args.batch_size, vocoder=args.vocoder,
                 gl_iters=args.gl_iters)
    stages = ", ".join(f"{k} {v:.3f}" for k, v in r["timings_s"].items())
    text = "\n".join([
        f"{args.input}: {r['duration_s']:.2f} s x {r['channels']} ch, model {r['model']}, {r['coder_text']}, "
        f"{r['vocoder']}",
        f"  size      {r['bytes']:,} bytes, {r['kbps']:.2f} kbps; ratio {r['ratio_vs_pcm16_16k']:.1f}x vs 16 kHz PCM, "
        f"{r['ratio_vs_pcm16_original']:.1f}x vs original-rate PCM, {r['ratio_vs_input_file']:.1f}x vs input file",
        f"  spectral  log-mel L1 {r['log_mel_l1_db']:.3f} dB, RMSE {r['log_mel_rmse_db']:.3f} dB; "
        f"MR-STFT {r['mrstft_db']:.3f} dB; VAE+quantizer alone (before vocoder): log-mel L1 "
        f"{r['latent_mel_l1_db']:.3f} dB",
        f"  waveform  SNR {r['snr_db']:.2f} dB, SI-SDR {r['si_sdr_db']:.2f} dB, correlation {r['correlation']:.4f}, "
        f"MSE {r['mse']:.3g}  (phase is invented by the vocoder: judge by the spectral lines)",
        f"  speed     encode {r['encode_x_realtime']:.1f}x, decode {r['decode_x_realtime']:.1f}x real time; "
        f"stages (s): {stages}"])
    _print(args, r, text)


def cmd_train(args: argparse.Namespace) -> None:
    from .models import pick_device
    from .train import TrainConfig, train

    for folder in [args.data] + ([args.val] if args.val else []):
        if not Path(folder).is_dir():
            raise LatentCodecError(f"{folder}: no such folder")
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, crop_frames=args.crop_frames, lr=args.lr,
                      min_lr=args.min_lr, warmup=args.warmup, seed=args.seed, init=args.init,
                      clean_fraction=args.clean_fraction,
                      **({"kind_weights": args.kind_weights} if args.kind_weights else {}))
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    info = train(Path(args.data), Path(args.output), cfg, val=Path(args.val) if args.val else None,
                 device=pick_device(args.device), resume=args.resume, log=log)
    last = info["history"][-1] if info["history"] else {}
    print(f"{args.output}: trained {cfg.steps} steps on {info['data_hours']:.2f} h in {info['train_minutes']:.1f} min; "
          f"validation log-mel L1 {last.get('val_l1_db', float('nan')):.3f} dB")


def cmd_train_vocoder(args: argparse.Namespace) -> None:
    import torch

    from .train_vocoder import VocoderTrainConfig, train_vocoder

    opts = vars(args)
    data, out, val = Path(opts.pop("data")), Path(opts.pop("output")), opts.pop("val", None)
    for folder in [data] + ([val] if val else []):
        if not Path(folder).is_dir():
            raise LatentCodecError(f"{folder}: no such folder")
    if "threads" in opts:
        torch.set_num_threads(opts.pop("threads"))
    resume, quiet = opts.pop("resume"), opts.pop("quiet")
    opts.pop("cmd")
    cfg = VocoderTrainConfig(**opts)
    log = (lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    info = train_vocoder(data, out, cfg, val=Path(val) if val else None, resume=resume, log=log)
    val_line = ""
    if info["history"] and "val" in info["history"][-1]:
        v = info["history"][-1]["val"]
        val_line = f"; validation log-mel L1 {v['log_mel_l1_db']:.3f} dB, PESQ-wb speech {v['pesq_wb_speech']}"
    print(f"{out}: trained {info['steps_done']} steps on {sum(info['data_hours'].values()):.2f} h "
          f"in {info['train_hours']:.2f} h{val_line}")


COMMANDS = {"encode": cmd_encode, "decode": cmd_decode, "info": cmd_info, "eval": cmd_eval, "train": cmd_train,
            "train-vocoder": cmd_train_vocoder}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.cmd](args)
    except LatentCodecError as e:
        print(f"alat: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("alat: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
