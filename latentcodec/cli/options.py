"""What the `alat` commands share: option types and sets, the progress bar, printing results, stdin/stdout."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import click

from latentcodec.constants import (
    BITS,
    DEFAULT_GL_ITERS,
    DEFAULT_QUALITY,
    DEFAULT_ZSTD,
    MAX_KBPS,
    MIN_KBPS,
    OUTPUT_RATES,
    PRECISIONS,
    QUALITY_RANGE,
    RUNTIMES,
)
from latentcodec.errors import LatentCodecError
from latentcodec.options import DecodeOptions, EncodeOptions, option_names

_IMPORTED = time.perf_counter()


class Finite(click.FloatRange):
    """A float range that also refuses nan and inf, which FloatRange's comparisons let through."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return rv


class Name(click.ParamType):
    """A file or folder name (or '-'): an empty one is refused, as it names nothing (pathlib would take it
    for the current folder)."""

    name = "PATH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if value == "":
            self.fail("an empty name names nothing: give a file or folder ('.' for this folder)", param, ctx)
        return value


def shown(value: Any) -> Any:
    """``value`` (a name, a message, or a dict or list holding them, keys too) for a terminal: every
    character that is not printable escaped as Python's repr escapes it (a newline as \\n, ESC as \\x1b), so
    that no file or member name can forge a line or drive the terminal. Bytes of a name that are not UTF-8
    print as they are (stdout's surrogateescape), but for 0x80-0x9f (C1 controls: 0x9b is CSI): \\x9b.
    JSON needs none of this: it escapes them itself."""
    if isinstance(value, str):
        return "".join(_escaped(c) for c in value)
    if isinstance(value, dict):
        return {shown(k): shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(shown(v) for v in value)
    return value


def _escaped(c: str) -> str:
    if c.isprintable() or "\udca0" <= c <= "\udcff":
        return c
    if "\udc80" <= c < "\udca0":  # an undecodable byte 0x80-0x9f: a C1 control (0x9b is CSI) on some terminals
        return f"\\x{ord(c) - 0xDC00:02x}"
    return repr(c)[1:-1]


class SampleRate(click.ParamType):
    """'original' or a rate in Hz, 1000 to 384000."""

    name = "original|HZ"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if value == "original":
            return value
        try:
            rate = int(value)
        except ValueError:
            self.fail(f"{value!r}: give 'original' or a rate in Hz", param, ctx)
        if not OUTPUT_RATES[0] <= rate <= OUTPUT_RATES[1]:
            self.fail(f"{rate} Hz: give {OUTPUT_RATES[0]} to {OUTPUT_RATES[1]} Hz, or 'original'", param, ctx)
        return rate


class ByteSize(click.ParamType):
    """A size such as 1GB (10^9 bytes), 500MiB (2^20 each) or 65536 (bytes), 1 byte to 1 TiB."""

    name = "SIZE"
    UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*", str(value), re.IGNORECASE)
        if not m:
            self.fail(f"{value!r}: give a size such as 1GB, 500MB, 256MiB or a count of bytes", param, ctx)
        size = int(Fraction(m.group(1)) * self.UNITS[(m.group(2) or "").lower()])  # exact: 400 digits overflow a float
        if not 1 <= size <= 2**40:
            self.fail(f"{value!r}: give 1 byte to 1 TiB", param, ctx)
        return size


def check_jobs(jobs: int, ray: str | None) -> None:
    """--jobs within what this machine holds, as a usage error before anything is planned."""
    from latentcodec.jobs.folder_run import workers_problem

    problem = workers_problem(jobs, ray)
    if problem:
        raise click.BadParameter(problem, param_hint="'--jobs'")


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
    from latentcodec.vocoders.registry import vocoder_names

    return [n for n in vocoder_names() if n.startswith(incomplete)]


def options(*decorators: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


POSITIVE = click.IntRange(min=1)
JOBS = options(
    click.option(
        "--jobs",
        "-j",
        type=POSITIVE,
        default=1,
        show_default=True,
        help="folder mode: worker processes (Ray actors with --ray), each loading the model once",
    ),
    click.option(
        "--ray",
        metavar="local|auto|ADDRESS",
        help="folder mode on Ray: 'local' starts Ray on this machine, 'auto' or HOST:PORT joins "
        "a cluster; every node must see both folders at the same paths",
    ),
)
THREADS = click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    help="torch's CPU threads (per worker or Ray actor in folder "
    "mode; default: torch's, shared out between --jobs workers, 1 per actor); outputs are "
    "byte-identical only between runs with the same count",
)
OVERWRITE = click.option("-y", "--overwrite", is_flag=True, help="replace an existing output (never the input)")
RUNTIME = click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default=EncodeOptions.runtime,
    show_default=True,
    help="what runs the model: openvino (the shipped models, CPU, the bfloat16 encoder, no torch), onnx "
    "(the shipped models, CPU, float32, no torch), torch (any model, --device cuda); auto: the fastest "
    "installed for the job (README: Runtimes)",
)
DEVICE = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default=EncodeOptions.device, show_default=True
)
QUIET = click.option("-q", "--quiet", is_flag=True, help="print nothing but errors (and what --json asks for)")
JSON = click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
COMMON = options(
    click.option("--model", help="shipped model name, local diffusers folder, or Hugging Face repo id"),
    DEVICE,
    click.option(
        "--batch-size",
        type=click.IntRange(1, 256),
        default=EncodeOptions.batch_size,
        show_default=True,
        help="chunks per VAE call",
    ),
    QUIET,
)
ENCODE = options(
    click.option(
        "--quality",
        type=Finite(*QUALITY_RANGE),
        metavar="Q",
        help=f"entropy coder at constant quality Q, higher is better (default {DEFAULT_QUALITY:g})",
    ),
    click.option(
        "--kbps",
        "--bitrate",
        "kbps",
        type=Finite(MIN_KBPS, MAX_KBPS),
        metavar="K",
        help="entropy coder at the quality that gives about K kbps (--bitrate: the same)",
    ),
    click.option(
        "--bits",
        type=click.Choice([str(b) for b in BITS]),
        help="version-1 files: min/max quantizer with this many bits per latent value, and zstd",
    ),
    click.option(
        "--zstd",
        "zstd_level",
        type=click.IntRange(0, 22),
        metavar="LEVEL",
        help=f"with --bits: zstd level per chunk payload, 0 = off (default {DEFAULT_ZSTD})",
    ),
    # codec.chunk_frames_for's bound (MAX_WRITE_FRAMES), without importing the codec at start-up
    click.option(
        "--chunk-seconds",
        type=Finite(0.04, 20),
        default=EncodeOptions.chunk_seconds,
        show_default=True,
        help="chunk length",
    ),
    click.option("--mono", is_flag=True, help="average the channels and code one"),
    click.option(
        "--precision",
        type=click.Choice(PRECISIONS),
        default=EncodeOptions.precision,
        show_default=True,
        help="the encoder's arithmetic: auto is bfloat16 where the runtime runs it faster (a CPU that has "
        "it natively: OpenVINO, torch; latents within the quantizer's rounding), else float32",
    ),
)
DECODE = options(
    click.option(
        "--vocoder",
        shell_complete=_complete_vocoders,
        help="griffinlim, hifigan (the model's), a shipped neural vocoder, or a train-vocoder folder "
        "[default: the one paired with the file's model, see alat models]",
    ),
    click.option(
        "--gl-iters",
        type=click.IntRange(1, 1000),
        help=f"Griffin-Lim iterations [default: {DEFAULT_GL_ITERS} for griffinlim; a magnitude vocoder's own]",
    ),
    click.option(
        "--decoder",
        help="the VAE decoder: own (the one that came with the file's model, as it decoded when written), a "
        "shipped model of the same latent space, or a folder written by alat train --freeze-encoder "
        "[default: the one paired with the file's model, see alat models]",
    ),
    click.option(
        "--decoder-precision",
        type=click.Choice(PRECISIONS),
        help="the VAE decoder's arithmetic: auto is bfloat16 where the runtime runs it natively (OpenVINO, "
        "torch), else float32; float32 decodes as releases before the model's pairing did "
        "[default: the pairing's, see alat models]",
    ),
)


@contextmanager
def progress_bar(quiet: bool, what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A tqdm bar on a terminal; nothing when quiet, scripted (--json) or not a terminal. Until the first
    chunk is done it says that the model is loading (seconds, where the count would sit at 0)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(desc=f"{what}: loading model", unit="chunk", leave=False, file=sys.stderr) as bar:

        def update(done: int, total: int) -> None:
            if bar.desc != what:
                bar.set_description_str(what, refresh=False)
            bar.total = total
            bar.n = done
            bar.refresh()

        yield update


SIGPIPE_STATUS = 128 + 13  # a shell's status for a tool killed by SIGPIPE (13 on every Unix)


def mute_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit adds no second error (none when closed)."""
    if sys.stdout is not None:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def emit(as_json: bool, data: dict[str, Any], text: str, err: bool = False, quiet: bool = False) -> None:
    """The result on stdout, or on stderr when stdout carries the output file; nothing when ``quiet``
    unless it was asked for as JSON."""
    if quiet and not as_json:
        return
    try:
        click.echo(json.dumps(data, indent=1) if as_json else text, err=err)
    except BrokenPipeError:  # `alat info x.alat | head -1`: end as a Unix tool killed by SIGPIPE
        mute_stdout()
        raise click.exceptions.Exit(SIGPIPE_STATUS) from None
    except OSError as e:  # `> /dev/full`
        raise LatentCodecError(f"<std{'err' if err else 'out'}>: cannot write ({e.strerror or e})") from None


@contextmanager
def stdout_guard(output: str) -> Iterator[None]:
    """When stdout carries the output and writing it fails, mute stdout so that the error stays one line;
    a reader that went away (`| head`) ends the run quietly with SIGPIPE's status, as Unix tools end.
    (click would turn the BrokenPipeError into a silent exit status 1.)"""
    try:
        yield
    except BrokenPipeError:
        mute_stdout()
        raise click.exceptions.Exit(SIGPIPE_STATUS) from None
    except LatentCodecError:
        if output == "-":
            mute_stdout()
        raise


def stream_of(name: str, mode: str) -> str | BinaryIO:
    """``-`` is stdin (mode 'r') or stdout ('w'); binary output onto a terminal is refused."""
    if name != "-":
        return name
    stream = sys.stdin if mode == "r" else sys.stdout
    if stream is None:  # Python sets it to None when the descriptor was closed at start (`>&-`)
        raise LatentCodecError(f"<std{'in' if mode == 'r' else 'out'}>: is closed")
    if mode == "r":
        return stream.buffer
    if stream.isatty():
        raise LatentCodecError("refusing to write binary data to a terminal: redirect or pipe stdout")
    return sys.stdout.buffer


def encode_options(given: dict[str, Any]) -> EncodeOptions:
    """The library's encode options from a command's parameters (click's names are the fields' names)."""
    values = {k: given[k] for k in option_names(EncodeOptions) if k in given}
    if values.get("bits") is not None:
        values["bits"] = int(values["bits"])
    return EncodeOptions(**values)


def decode_options(given: dict[str, Any]) -> DecodeOptions:
    """The library's decode options from a command's parameters."""
    return DecodeOptions(**{k: given[k] for k in option_names(DecodeOptions) if k in given})


@contextmanager
def folder_bar(quiet: bool, options: Any) -> Iterator[Callable[[int, int, float], None] | None]:
    """A tqdm bar of files, with the hours of audio done, for a folder run on a terminal; else nothing."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    kind = "encode" if isinstance(options, EncodeOptions) else "decode"
    with tqdm(desc=kind, unit="file", file=sys.stderr) as bar:

        def update(done: int, total: int, hours: float) -> None:
            bar.total = total
            if done:
                bar.set_postfix_str(f"{hours:.2f} h of audio", refresh=False)
            bar.n = done
            bar.refresh()

        yield update


# How the CLI names the library argument an error is about: as the option to change, or as what to do.
FLAGS = {
    "chunk_seconds": "--chunk-seconds",
    "sample_rate": "--sample-rate",
    "quality": "--quality",
    "kbps": "--kbps",
    "bits": "--bits",
    "zstd_level": "--zstd",
    "vocoder": "--vocoder",
    "device": "--device",
    "start": "--start",
    "duration": "--duration",
    "ray": "--ray",
    "jobs": "--jobs",
    "format": "--format",
    "runtime": "--runtime",
    "precision": "--precision",
    "decoder_precision": "--decoder-precision",
    "decoder": "--decoder",
    "shard_size": "--shard-size",
    "architecture": "--architecture",
    "vae_config": "--channels",
    "gan_weight": "--gan-weight",
    "init": "--init",
    "seed": "--seed",
    "val": "--val",
}
REMEDIES = {
    "force": "use --force to decode anyway",
    "mono": "use --mono to code one mixed channel",
    "model": "pass it with --model",
    "overwrite": "use --overwrite (-y) to replace it",
}


def error_text(e: LatentCodecError) -> str:
    """The library's message with the CLI's option for ``e.param``."""
    return with_flag(str(e), e.param)


def with_flag(message: str, param: str | None) -> str:
    """``message`` with the option to change, or the remedy, for the library argument ``param``."""
    if param in REMEDIES:
        return f"{message}; {REMEDIES[param]}"
    if param in FLAGS:
        return f"{FLAGS[param]}: {message}"
    return message


def failure_text(outcome: Any) -> str:
    """A folder job's failure (``jobs.worker.Outcome``) as the CLI says its own errors."""
    return with_flag(outcome.error, outcome.param)


def wall_seconds() -> float:
    """Seconds since this process started: what the user waited, interpreter and imports included (Linux's
    /proc; elsewhere since the CLI was imported, which misses only the interpreter's own start)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return float(Path("/proc/uptime").read_text().split()[0]) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED


def speed_text(x_real_time: float) -> str:
    """'0.3x', '4.2x', '47x': a slow run (start-up included) still says how slow."""
    return f"{x_real_time:.1f}x" if x_real_time < 10 else f"{x_real_time:.0f}x"


def set_threads(threads: int | None) -> None:
    """The model runtime's intra-op threads in this process, when given."""
    if threads:
        from latentcodec.runtime.cores import set_threads as record

        record(threads)


def check_folders(*folders: str | None) -> None:
    from latentcodec.fs import is_folder

    for folder in folders:
        if folder == "":
            raise LatentCodecError("an empty name names no folder: give one ('.' for this folder)")
        if folder is not None and not is_folder(folder):
            raise LatentCodecError(f"{folder}: no such folder")


def log_to_stderr(quiet: bool) -> Callable[[str], None]:
    return (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))
