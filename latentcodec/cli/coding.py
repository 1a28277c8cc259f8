"""The `alat` command line (click): parses, calls the library, prints. Errors a user can cause end in one
line on stderr, ``alat: error: ...``, and exit status 1 (2 for bad usage, 130 when interrupted).

Only click and the standard library are imported at start-up; each command imports what it needs, so
``alat --help`` and ``alat info`` never load torch. Shell completion: ``eval "$(_ALAT_COMPLETE=bash_source alat)"``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Any, BinaryIO, Callable, Iterator

import click

from latentcodec import __version__
from latentcodec.constants import (BITS, DEFAULT_GL_ITERS, DEFAULT_QUALITY, DEFAULT_ZSTD, PRECISIONS,
                                   QUALITY_RANGE)
from latentcodec.errors import LatentCodecError

# How the CLI names the library argument an error is about: as the option to change, or as what to do.
FLAGS = {"chunk_seconds": "--chunk-seconds", "sample_rate": "--sample-rate", "quality": "--quality", "kbps": "--kbps",
         "bits": "--bits", "zstd_level": "--zstd", "vocoder": "--vocoder", "device": "--device", "start": "--start",
         "duration": "--duration", "ray": "--ray", "format": "--format",
         "precision": "--precision"}
REMEDIES = {"force": "use --force to decode anyway", "mono": "use --mono to code one mixed channel",
            "model": "pass its folder with --model", "overwrite": "use --overwrite (-y) to replace it"}


def error_text(e: LatentCodecError) -> str:
    """The library's message with the CLI's option for ``e.param``."""
    if e.param in REMEDIES:
        return f"{e}; {REMEDIES[e.param]}"
    if e.param in FLAGS:
        return f"{FLAGS[e.param]}: {e}"
    return str(e)


class SampleRate(click.ParamType):
    """'original' or a rate in Hz."""

    name = "original|HZ"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if isinstance(value, int) or value == "original":
            return value
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r}: give 'original' or a rate in Hz", param, ctx)


class KindWeights(click.ParamType):
    """music=0.4,speech=0.4,...: the share of crops drawn from each sub-folder."""

    name = "KIND=W,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, float]:
        if isinstance(value, dict):
            return value
        try:
            weights = {k.strip(): float(w) for k, w in (item.split("=") for item in value.split(","))}
        except ValueError:
            self.fail(f"{value!r} is not of the form music=0.4,speech=0.4,...", param, ctx)
        if any(w < 0 for w in weights.values()) or not sum(weights.values()) > 0:
            self.fail(f"{value!r}: weights must be >= 0 and not all 0", param, ctx)
        return weights


class Channels(click.ParamType):
    """16,64,128: the VAE's three block widths, each a multiple of its 16 norm groups."""

    name = "C1,C2,C3"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            widths = tuple(int(c) for c in value.split(","))
        except ValueError:
            self.fail(f"{value!r} is not of the form 16,64,128", param, ctx)
        if len(widths) != 3 or any(c <= 0 or c % 16 for c in widths):
            self.fail(f"{value!r}: give three widths, each a positive multiple of 16", param, ctx)
        return widths


def _complete_vocoders(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from latentcodec.vocoders import vocoder_names

    return [n for n in vocoder_names() if n.startswith(incomplete)]


def _options(*decorators: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f
    return apply


POSITIVE = click.IntRange(min=1)
JOBS = _options(
    click.option("--jobs", "-j", type=POSITIVE, default=1, show_default=True,
                 help="folder mode: worker processes (Ray actors with --ray), each loading the model once"),
    click.option("--ray", metavar="local|auto|ADDRESS",
                 help="folder mode on Ray: 'local' starts Ray on this machine, 'auto' or HOST:PORT joins "
                      "a cluster; every node must see both folders at the same paths"))
THREADS = click.option("--threads", type=POSITIVE, help="torch's CPU threads (per worker or Ray actor in folder "
                       "mode; default: torch's, shared out between --jobs workers, 1 per actor); outputs are "
                       "byte-identical only between runs with the same count")
OVERWRITE = click.option("-y", "--overwrite", is_flag=True, help="replace an existing output (never the input)")
DEVICE = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
QUIET = click.option("--quiet", is_flag=True, help="no progress bar")
JSON = click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
COMMON = _options(
    click.option("--model", help="shipped model name, local diffusers folder, or Hugging Face repo id"),
    DEVICE, click.option("--batch-size", type=POSITIVE, default=4, show_default=True, help="chunks per VAE call"),
    QUIET)
ENCODE = _options(
    click.option("--quality", type=click.FloatRange(*QUALITY_RANGE), metavar="Q",
                 help=f"entropy coder at constant quality Q, higher is better (default {DEFAULT_QUALITY:g})"),
    click.option("--kbps", type=float, metavar="K", help="entropy coder at the quality that gives about K kbps"),
    click.option("--bits", type=click.Choice([str(b) for b in BITS]),
                 help="version-1 files: min/max quantizer with this many bits per latent value, and zstd"),
    click.option("--zstd", "zstd_level", type=click.IntRange(0, 22), metavar="LEVEL",
                 help=f"with --bits: zstd level per chunk payload, 0 = off (default {DEFAULT_ZSTD})"),
    click.option("--chunk-seconds", type=float, default=5.0, show_default=True, help="chunk length"),
    click.option("--mono", is_flag=True, help="average the channels and code one"),
    click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
                 help="the encoder's arithmetic: auto is bfloat16 on a CPU that has it natively (about 2x "
                      "faster, latents within the quantizer's rounding), else float32"))
DECODE = _options(
    click.option("--vocoder", shell_complete=_complete_vocoders,
                 help="griffinlim, hifigan (the model's), a shipped neural vocoder, or a train-vocoder folder "
                      "[default: the one paired with the file's model, see alat models]"),
    click.option("--gl-iters", type=POSITIVE,
                 help=f"Griffin-Lim iterations [default: {DEFAULT_GL_ITERS} for griffinlim; a magnitude vocoder's own]"))


@contextmanager
def _progress(quiet: bool, what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A tqdm bar on a terminal; nothing when quiet, scripted (--json) or not a terminal."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(desc=what, unit="chunk", leave=False, file=sys.stderr) as bar:
        def update(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        yield update


def _print(as_json: bool, data: dict[str, Any], text: str, err: bool = False) -> None:
    """The result on stdout, or on stderr when stdout carries the output file."""
    click.echo(json.dumps(data, indent=1) if as_json else text, err=err)


@contextmanager
def _stdout_guard(output: str) -> Iterator[None]:
    """When stdout carries the output and writing it fails, point stdout at /dev/null, so that Python's
    flush at exit adds no second error to the one line."""
    try:
        yield
    except (LatentCodecError, BrokenPipeError):
        if output == "-":
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise


def _stream(name: str, mode: str) -> str | BinaryIO:
    """``-`` is stdin (mode 'r') or stdout ('w'); binary output onto a terminal is refused."""
    if name != "-":
        return name
    if mode == "r":
        return sys.stdin.buffer
    if sys.stdout.isatty():
        raise LatentCodecError("refusing to write binary data to a terminal: redirect or pipe stdout")
    return sys.stdout.buffer


def _coder_opts(o: dict[str, Any]) -> dict[str, Any]:
    """The encoder's options (coder, chunks, channels, arithmetic) as the library takes them."""
    return dict(bits=int(o["bits"]) if o["bits"] else None, zstd_level=o["zstd_level"], quality=o["quality"],
                kbps=o["kbps"], chunk_seconds=o["chunk_seconds"], mono=o["mono"], precision=o["precision"])


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="latentcodec", message="%(prog)s %(version)s")
def cli() -> None:
    """Audio as quantized VAE latents in .alat files."""


@cli.command()
@click.argument("input")
@click.argument("output")
@ENCODE
@OVERWRITE
@JOBS
@THREADS
@COMMON
@JSON
def encode(input: str, output: str, model: str | None, device: str, batch_size: int, overwrite: bool, jobs: int,
           ray: str | None, threads: int | None, quiet: bool, as_json: bool, **coder: Any) -> int | None:
    """Audio file INPUT -> .alat file OUTPUT; '-' reads stdin or writes stdout. A folder INPUT: every audio
    file under it -> OUTPUT folder, same tree (complete outputs are kept, so a rerun resumes)."""
    if _folder_input(input, ray):
        return _folder("encode", input, output, jobs, ray, threads, quiet or as_json, as_json, model=model,
                       device=device, batch_size=batch_size, **_coder_opts(coder))
    from latentcodec.codec import encode_file
    from latentcodec.fileinfo import coder_summary, coder_text, rate_figures
    from latentcodec.models.loader import pick_device

    _set_threads(threads)

    t = time.perf_counter()
    with _stdout_guard(output), _progress(quiet or as_json, "encode") as update:
        res = encode_file(_stream(input, "r"), _stream(output, "w"), model=model, device=pick_device(device),
                          batch_size=batch_size, overwrite=overwrite, progress=update, **_coder_opts(coder))
    secs = time.perf_counter() - t
    h = res.header
    figs = rate_figures(res.file_size, h)
    data = {"output": output, "duration_s": h.duration, "channels": h.channels, "chunks": h.num_chunks,
            **coder_summary(h), "model": h.model_name, "precision": res.precision, **figs, "seconds": secs,
            "x_realtime": h.duration / secs, "timings_s": res.timings.seconds}
    _print(as_json, data, f"{output}: {h.duration:.2f} s x {h.channels} ch -> {res.file_size:,} bytes, "
                          f"{figs['kbps']:.2f} kbps, {figs['ratio_vs_pcm16_16k']:.1f}x smaller than 16 kHz PCM "
                          f"({coder_text(h)}); {secs:.2f} s, {_speed(h.duration / secs)} real time", output == "-")


@cli.command()
@click.argument("input")
@click.argument("output")
@DECODE
@click.option("--sample-rate", type=SampleRate(), help="'original', or a rate in Hz (default 16000)")
@click.option("--force", is_flag=True, help="decode with other weights than the file names")
@click.option("--salvage", is_flag=True, help="skip damaged chunks (silence) instead of stopping")
@click.option("--start", type=click.FloatRange(min=0), default=0.0, metavar="SECONDS",
              help="decode from here (only the chunks needed are decoded)")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="decode this long (default: to the end)")
@click.option("--format", "suffix", metavar="SUFFIX", help="folder mode: the outputs' format, by suffix: wav "
              "(default), flac, ogg, ... (a file OUTPUT's own suffix names its format)")
@OVERWRITE
@JOBS
@THREADS
@COMMON
@JSON
def decode(input: str, output: str, device: str, quiet: bool, as_json: bool, jobs: int, ray: str | None,
           threads: int | None, suffix: str | None, **opts: Any) -> int | None:
    """.alat file INPUT -> audio file OUTPUT, in the format its suffix names (.wav, .flac, .ogg, ...);
    '-' reads stdin or writes a WAV to stdout. A folder INPUT: every .alat under it -> OUTPUT folder of .wav
    (or --format) files, same tree (complete outputs are kept, so a rerun resumes)."""
    if _folder_input(input, ray):
        opts = {k: v for k, v in opts.items() if k not in ("overwrite", "start", "duration")}
        return _folder("decode", input, output, jobs, ray, threads, quiet or as_json, as_json,
                       suffix=suffix or ".wav", device=device, **opts)
    if suffix:
        raise click.UsageError(f"--format is for folder mode: the suffix of {output} names its format")
    from latentcodec.codec import decode_file
    from latentcodec.models.loader import pick_device

    _set_threads(threads)

    t = time.perf_counter()
    with _stdout_guard(output), _progress(quiet or as_json, "decode") as update:
        res = decode_file(_stream(input, "r"), _stream(output, "w"), device=pick_device(device), progress=update,
                          **opts)
    secs = time.perf_counter() - t
    h = res.header
    for k, c in res.lost:
        span = h.chunk_frames * h.mel.hop / h.mel.sample_rate
        click.echo(f"alat: warning: chunk {k} channel {c} ({k * span:.2f}-{(k + 1) * span:.2f} s) "
                   f"was damaged: decoded as silence", err=True)
    seconds = res.frames / res.sample_rate  # the span decoded (the whole file unless --start/--duration)
    data = {"output": output, "sample_rate": res.sample_rate, "frames": res.frames, "channels": h.channels,
            "duration_s": seconds, "lost_chunks": [list(x) for x in res.lost], "seconds": secs,
            "x_realtime": seconds / secs, "timings_s": res.timings.seconds}
    _print(as_json, data, f"{output}: {seconds:.2f} s x {h.channels} ch at {res.sample_rate} Hz "
                          f"({res.frames} frames); {secs:.2f} s, {_speed(seconds / secs)} real time", output == "-")


def _folder_input(input: str, ray: str | None) -> bool:
    """Whether INPUT is a folder (folder mode); --ray is for folders only."""
    if Path(input).is_dir():
        return True
    if ray:
        raise click.UsageError(f"--ray runs folder mode: {input} is not a folder")
    return False


def _speed(x_real_time: float) -> str:
    """'0.3x', '4.2x', '47x': a slow run (start-up included) still says how slow."""
    return f"{x_real_time:.1f}x" if x_real_time < 10 else f"{x_real_time:.0f}x"


def _set_threads(threads: int | None) -> None:
    """torch's intra-op threads in this process, when given."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def _folder(kind: str, input: str, output: str, jobs: int, ray: str | None, threads: int | None, quiet: bool,
            as_json: bool, suffix: str = ".wav", **opts: Any) -> int:
    """Folder mode: plan, skip complete outputs, run the rest on ``jobs`` workers (Ray actors with ``ray``),
    list the failures."""
    from latentcodec.jobs.folders import is_complete, plan, run_batch

    todo = plan(Path(input), Path(output), kind, suffix)
    skipped = [j for j in todo if is_complete(j, kind)]
    todo = [j for j in todo if j not in skipped]
    t = time.perf_counter()
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=kind, unit="file", file=sys.stderr)
    hours = 0.0

    def step(outcome: Any) -> None:
        nonlocal hours
        hours += outcome.seconds / 3600
        if bar is not None:
            bar.set_postfix_str(f"{hours:.2f} h of audio")
            bar.update()

    outcomes = run_batch(todo, kind, opts, jobs, step, ray, threads)
    if bar is not None:
        bar.close()
    failed = [o for o in outcomes if o.error]
    data = {"written": len(outcomes) - len(failed), "skipped": len(skipped), "failed": len(failed),
            "hours_of_audio": hours, "seconds": time.perf_counter() - t,
            "failures": [{"input": str(o.job.source), "error": o.error} for o in failed]}
    _print(as_json, data, f"{output}: {data['written']} written, {len(skipped)} already complete, {len(failed)} "
                          f"failed; {hours:.3f} h of audio in {data['seconds']:.1f} s")
    for o in failed:
        click.echo(f"alat: failed: {o.error}", err=True)
    return 1 if failed else 0


@cli.command()
@click.argument("input")
@JSON
def info(input: str, as_json: bool) -> None:
    """Header, chunks, real bytes, kbps and ratios of a .alat file."""
    from latentcodec.fileinfo import file_info, info_text

    data = file_info(input)
    _print(as_json, data, info_text(data))


@cli.command()
@JSON
def models(as_json: bool) -> None:
    """The VAE models and vocoders this package ships, by name (a file names the model that decodes it)."""
    from latentcodec.models.loader import load_model
    from latentcodec.models.registry import DEFAULT_MODEL, shipped_models, summary
    from latentcodec.vocoders import BUILTIN_VOCODERS, default_vocoder, shipped_vocoders

    vaes = [{"name": n, "default": n == DEFAULT_MODEL, "vocoder": default_vocoder(n),
             "fingerprint": load_model(n).fingerprint.hex(),
             "bytes": sum(p.stat().st_size for p in folder.iterdir()), "summary": summary(folder)}
            for n, folder in shipped_models().items()]
    vocoders = [{"name": n, "summary": text} for n, text in BUILTIN_VOCODERS.items()] + \
        [{"name": n, "summary": summary(folder)} for n, folder in shipped_vocoders().items()]
    lines = ["models:"] + [f"  {v['name']}{' (default)' if v['default'] else ''}  fingerprint {v['fingerprint'][:16]}"
                           f"  {v['bytes'] / 2**20:.1f} MiB  vocoder {v['vocoder']}  {v['summary']}" for v in vaes]
    lines += ["vocoders:"] + [f"  {v['name']}  {v['summary']}".rstrip() for v in vocoders]
    _print(as_json, {"models": vaes, "vocoders": vocoders}, "\n".join(lines))


@cli.command(name="eval")
@click.argument("input")
@ENCODE
@DECODE
@COMMON
@JSON
@click.option("--csv", "as_csv", is_flag=True, help="folder INPUT: the per-file rows and folder means as CSV")
def eval_(input: str, model: str | None, device: str, batch_size: int, quiet: bool, as_json: bool, as_csv: bool,
          vocoder: str | None, gl_iters: int | None, **coder: Any) -> int:
    """Encode + decode + quality metrics of an audio file in one go; of a folder: a row per file and the
    means per sub-folder."""
    from latentcodec.evaluate import eval_text, evaluate, evaluate_folder
    from latentcodec.models.registry import DEFAULT_MODEL
    from latentcodec.models.loader import load_model, pick_device

    dev = pick_device(device)
    opts = dict(device=dev, batch_size=batch_size, vocoder=vocoder, gl_iters=gl_iters, **_coder_opts(coder))
    m = load_model(model or DEFAULT_MODEL, dev)
    if not Path(input).is_dir():
        r = evaluate(input, m, **opts)
        _print(as_json, r, eval_text(r))
        return 0
    res = evaluate_folder(Path(input), m, **opts)
    table = res["rows"] + [{"file": f"{g['folder']}/ (mean of {g['files']})", **g} for g in res["folder_means"]]
    if as_json:
        click.echo(json.dumps(res, indent=1))
    else:
        _table(table, as_csv)
    for f in res["failures"]:
        click.echo(f"alat: failed: {f['error']}", err=True)
    return 1 if res["failures"] else 0


def _table(rows: list[dict[str, Any]], as_csv: bool) -> None:
    """Rows of figures as CSV, or as aligned text columns."""
    from latentcodec.evaluate import ROW_KEYS

    keys = ["file", *ROW_KEYS]
    if as_csv:
        import csv

        w = csv.DictWriter(sys.stdout, keys, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return
    cells = [keys] + [[r["file"]] + [f"{r[k]:.4g}" for k in ROW_KEYS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(keys))]
    for c in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())


def _check_folders(*folders: str | None) -> None:
    for folder in folders:
        if folder is not None and not Path(folder).is_dir():
            raise LatentCodecError(f"{folder}: no such folder")


def _log(quiet: bool) -> Callable[[str], None]:
    return (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))


@cli.command()
@click.argument("data")
@click.argument("output")
@click.option("--val", help="folder of validation audio (default: every 50th training file)")
@click.option("--steps", type=POSITIVE, default=1700, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=16, show_default=True)
@click.option("--crop-frames", type=POSITIVE, default=192, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True,
              help="peak learning rate (after warm-up, before cosine decay)")
@click.option("--min-lr", type=float, default=2e-5, show_default=True, help="learning rate at the last step")
@click.option("--warmup", type=int, default=200, show_default=True, help="steps of linear warm-up")
@click.option("--kind-weights", type=KindWeights(),
              help="share of the crops drawn from each sub-folder (default: music=0.4,speech=0.4,effects=0.2)")
@click.option("--clean-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="share of each batch trained without quantizer noise (helps --bits 16 and high qualities)")
@click.option("--silent-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="share of the crops that are digital silence (the log floor throughout)")
@click.option("--quant-step", type=click.FloatRange(0), default=0.0, show_default=True,
              help="train for the version-2 coder at this step (0.4 is --quality 4), not 4-bit version 1")
@click.option("--rate-weight", type=click.FloatRange(0), default=0.0, show_default=True,
              help="loss per estimated kbps at --quant-step (rate-distortion training)")
@click.option("--narrow-weight", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="draws per hour of narrowband files (MANIFEST.tsv band 'narrow') against wideband ones")
@click.option("--bf16", is_flag=True, help="bfloat16 autocast for the convolutions (about twice as fast on CPU)")
@click.option("--init", metavar="MODEL", help="start from this model's weights (fine-tuning), not random ones")
@click.option("--channels", type=Channels(), help="the VAE's block widths, full resolution first (default 32,64,128)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--val-every", type=POSITIVE, default=250, show_default=True, help="steps between validations")
@click.option("--checkpoint-every", type=POSITIVE, default=250, show_default=True, help="steps between checkpoints")
@click.option("--resume", is_flag=True, help="continue from OUTPUT/checkpoint.pt")
@DEVICE
@QUIET
def train(data: str, output: str, val: str | None, device: str, resume: bool, quiet: bool,
          kind_weights: dict[str, float] | None, channels: tuple[int, ...] | None, **opts: Any) -> None:
    """Train a mel VAE on folder DATA (sub-folders music/, speech/, effects/ are sampled by kind) into OUTPUT."""
    from latentcodec.models.loader import SMALL_VAE_CONFIG, pick_device
    from latentcodec.training.vae import TrainConfig
    from latentcodec.training.vae import train as train_vae

    _check_folders(data, val)
    shape = {"vae_config": {**SMALL_VAE_CONFIG, "block_out_channels": channels}} if channels else {}
    cfg = TrainConfig(**opts, **shape, **({"kind_weights": kind_weights} if kind_weights else {}))
    info = train_vae(Path(data), Path(output), cfg, val=Path(val) if val else None, device=pick_device(device),
                     resume=resume, log=_log(quiet))
    last = info["history"][-1] if info["history"] else {}
    click.echo(f"{output}: trained {cfg.steps} steps on {info['data_hours']:.2f} h in {info['train_minutes']:.1f} "
               f"min; validation log-mel L1 {last.get('val_l1_db', float('nan')):.3f} dB, through the quantizer "
               f"{last.get('val_coded_l1_db', float('nan')):.3f} dB")


@cli.command(name="train-vocoder")
@click.argument("data")
@click.argument("output")
@click.option("--val", help="folder of validation clips (speech_*, music_*, ...): log-mel L1 and PESQ-wb")
@click.option("--architecture", type=click.Choice(["vocos", "magnitude-gl"]),
              help="vocos: makes the waveform; magnitude-gl: makes the STFT magnitude, Griffin-Lim the phase")
@click.option("--coded-by", metavar="MODEL", help="train on the mels this VAE decodes from its default-setting files")
@click.option("--steps", type=POSITIVE)
@click.option("--batch-size", type=POSITIVE)
@click.option("--crop-frames", type=POSITIVE, help="mel frames (of 10 ms) per training crop")
@click.option("--lr", type=float, help="peak learning rate (cosine decay to --min-lr)")
@click.option("--min-lr", type=float)
@click.option("--gan-start", type=int, help="steps of reconstruction losses alone before the GAN losses")
@click.option("--consistency-weight", type=float,
              help="magnitude-gl: weight of its losses on the magnitude Griffin-Lim's resynthesis makes of it")
@click.option("--kind-weights", type=KindWeights())
@click.option("--init", metavar="VOCODER", help="start from this vocoder's generator (name or folder)")
@click.option("--seed", type=int)
@click.option("--val-every", type=POSITIVE)
@click.option("--checkpoint-every", type=POSITIVE)
@click.option("--resume", is_flag=True, help="continue from OUTPUT/checkpoint.pt")
@click.option("--threads", type=POSITIVE, help="CPU threads for torch (default: torch's choice)")
@QUIET
def train_vocoder(data: str, output: str, val: str | None, resume: bool, threads: int | None, quiet: bool,
                  **opts: Any) -> None:
    """Train the neural vocoder on folder DATA; OUTPUT is usable as --vocoder OUTPUT.

    Options left out keep the library's defaults (VocoderTrainConfig), so they live in one place."""
    from latentcodec.training.vocoder import VocoderTrainConfig
    from latentcodec.training.vocoder import train_vocoder as run

    _check_folders(data, val)
    _set_threads(threads)
    cfg = VocoderTrainConfig(**{k: v for k, v in opts.items() if v is not None})
    info = run(Path(data), Path(output), cfg, val=Path(val) if val else None, resume=resume, log=_log(quiet))
    val_line = ""
    if info["history"] and "val" in info["history"][-1]:
        v = info["history"][-1]["val"]
        speech = {k: "none" if v.get(k) is None else f"{v[k]:.3f}" for k in ("pesq_wb_speech", "stoi_speech")}
        val_line = (f"; validation log-mel L1 {v['log_mel_l1_db']:.3f} dB, speech PESQ-wb {speech['pesq_wb_speech']}, "
                    f"STOI {speech['stoi_speech']}")
    click.echo(f"{output}: trained {info['steps_done']} steps on {sum(info['data_hours'].values()):.2f} h "
               f"in {info['train_hours']:.2f} h{val_line}")


def main(argv: list[str] | None = None) -> int:
    """Run `alat` with ``argv`` (default: the process's arguments); returns the exit status."""
    try:
        rv = cli.main(args=argv, prog_name="alat", standalone_mode=False)
    except click.UsageError as e:
        if e.ctx is not None:
            click.echo(e.ctx.get_usage(), err=True)
        click.echo(f"alat: error: {e.format_message()}", err=True)
        return 2
    except LatentCodecError as e:
        click.echo(f"alat: error: {error_text(e)}", err=True)
        return 1
    except click.Abort:
        click.echo("alat: interrupted", err=True)
        return 130
    except BrokenPipeError:  # the reader of stdout went away
        click.echo("alat: error: the output pipe was closed before the end", err=True)
        return 1
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
