"""`alat encode`, `decode`, `info`, `models` and `eval`: files, pipes and folders."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from latentcodec.cli.group import cli
from latentcodec.cli.options import (
    COMMON,
    DECODE,
    ENCODE,
    JOBS,
    JSON,
    OVERWRITE,
    RUNTIME,
    THREADS,
    ByteSize,
    Finite,
    Name,
    SampleRate,
    check_jobs,
    decode_options,
    emit,
    encode_options,
    failure_text,
    folder_bar,
    progress_bar,
    set_threads,
    shown,
    speed_text,
    stdout_guard,
    stream_of,
    wall_seconds,
)
from latentcodec.cli.render import (
    coder_text,
    collection_text,
    eval_text,
    info_text,
    models_text,
    rounded,
    table_lines,
)
from latentcodec.options import DecodeOptions

if TYPE_CHECKING:
    from latentcodec.jobs.folder_run import FolderRun


@cli.command()
@click.argument("input", type=Name())
@click.argument("output", type=Name())
@ENCODE
@click.option(
    "--shard-size",
    type=ByteSize(),
    help="folder mode: pack the outputs into OUTPUT/NNNNNN.tar shards "
    "of at most SIZE (e.g. 1GB), WebDataset's layout: member KEY.alat, KEY the input's path below INPUT "
    "without its suffix",
)
@OVERWRITE
@JOBS
@THREADS
@RUNTIME
@COMMON
@JSON
# click passes argument INPUT as `input`; another name would rename INPUT in the usage, help and errors
def encode(
    input: str,  # noqa: A002
    output: str,
    shard_size: int | None,
    overwrite: bool,
    jobs: int,
    ray: str | None,
    threads: int | None,
    quiet: bool,
    as_json: bool,
    **opts: Any,
) -> int | None:
    """Audio file INPUT -> .alat file OUTPUT; '-' reads stdin or writes stdout. A folder INPUT: every audio
    file under it -> OUTPUT folder, same tree, NAME.alat for each NAME.* (complete outputs are kept, so a
    rerun resumes; any other file in the way is kept unless -y), or tar shards of them (--shard-size;
    a rerun resumes too). Two inputs that differ only in their suffix (a.wav, a.flac) would share an
    output: the run refuses them before any work."""
    options = encode_options(opts)
    if _folder_input(input, ray, jobs):
        from latentcodec.jobs.folder_run import FolderRun

        return _folder(
            FolderRun(
                input=Path(input),
                output=Path(output),
                options=options,
                overwrite=overwrite,
                workers=jobs,
                ray=ray,
                threads=threads,
                shard_size=shard_size,
            ),
            quiet,
            as_json,
        )
    if shard_size:
        raise click.UsageError(f"--shard-size is for folder mode: {input} is not a folder")
    from latentcodec.codec import encode_file

    set_threads(threads)
    _remove_stale(output)
    t = time.perf_counter()
    with stdout_guard(output), progress_bar(quiet or as_json, "encode") as update:
        res = encode_file(stream_of(input, "r"), stream_of(output, "w"), options, overwrite=overwrite, progress=update)
    secs, wall = time.perf_counter() - t, wall_seconds()
    emit(as_json, *_encoded(output, res, secs, wall), err=output == "-", quiet=quiet)
    return 0


def _encoded(output: str, res: Any, secs: float, wall: float) -> tuple[dict[str, Any], str]:
    """`alat encode`'s result of one file: its JSON and its line."""
    from latentcodec.info import coder_summary, rate_figures

    h = res.header
    figs = rate_figures(res.file_size, h)
    coder = coder_summary(h)
    data = {
        "output": output,
        "duration_s": h.duration,
        "channels": h.channels,
        "chunks": h.num_chunks,
        **coder,
        "model": h.model_name,
        "runtime": res.runtime,
        "precision": res.precision,
        **figs,
        "seconds": secs,
        "wall_seconds": wall,
        "x_realtime": h.duration / secs,
        "timings_s": res.timings.seconds,
    }
    return data, (
        f"{shown(output)}: {h.duration:.2f} s x {h.channels} ch -> {res.file_size:,} bytes, "
        f"{figs['kbps']:.2f} kbps, {figs['ratio_vs_pcm16_16k']:.1f}x smaller than 16 kHz PCM "
        f"({coder_text(coder)}); {wall:.2f} s, {speed_text(h.duration / wall)} real time"
    )


@cli.command()
@click.argument("input", type=Name())
@click.argument("output", type=Name())
@DECODE
@click.option("--sample-rate", type=SampleRate(), help="'original', or a rate in Hz (default 16000)")
@click.option("--force", is_flag=True, help="decode with other weights than the file names")
@click.option("--salvage", is_flag=True, help="skip damaged chunks (silence) instead of stopping")
@click.option(
    "--start",
    type=Finite(min=0),
    default=DecodeOptions.start,
    metavar="SECONDS",
    help="decode from here (only the chunks needed are decoded)",
)
@click.option(
    "--duration", type=Finite(min=0, min_open=True), metavar="SECONDS", help="decode this long (default: to the end)"
)
@click.option(
    "--format",
    "suffix",
    metavar="SUFFIX",
    help="folder mode: the outputs' format, by suffix: wav "
    "(default), flac, ogg, ... (a file OUTPUT's own suffix names its format)",
)
@OVERWRITE
@JOBS
@THREADS
@RUNTIME
@COMMON
@JSON
# click passes argument INPUT as `input`; another name would rename INPUT in the usage, help and errors
def decode(
    input: str,  # noqa: A002
    output: str,
    quiet: bool,
    as_json: bool,
    jobs: int,
    ray: str | None,
    threads: int | None,
    suffix: str | None,
    overwrite: bool,
    **opts: Any,
) -> int | None:
    """.alat file INPUT -> audio file OUTPUT, in the format its suffix names (.wav, .flac, .ogg, ...);
    '-' reads stdin or writes a WAV to stdout. A folder INPUT: every .alat under it -> OUTPUT folder of .wav
    (or --format) files, same tree (complete outputs are kept, so a rerun resumes; any other file in the
    way is kept unless -y)."""
    options = decode_options(opts)
    if _folder_input(input, ray, jobs):
        from latentcodec.jobs.folder_run import FolderRun

        if options.start or options.duration is not None:
            raise click.UsageError("--start and --duration are for one file: a folder run decodes whole files")
        return _folder(
            FolderRun(
                input=Path(input),
                output=Path(output),
                options=options,
                overwrite=overwrite,
                workers=jobs,
                ray=ray,
                threads=threads,
                suffix=suffix or ".wav",
            ),
            quiet,
            as_json,
        )
    if suffix:
        raise click.UsageError(f"--format is for folder mode: the suffix of {output} names its format")
    from latentcodec.codec import decode_file

    set_threads(threads)
    _remove_stale(output)
    t = time.perf_counter()
    with stdout_guard(output), progress_bar(quiet or as_json, "decode") as update:
        res = decode_file(stream_of(input, "r"), stream_of(output, "w"), options, overwrite=overwrite, progress=update)
    emit(as_json, *_decoded(output, res, time.perf_counter() - t, wall_seconds()), output == "-", quiet)
    return 0


def _decoded(output: str, res: Any, secs: float, wall: float) -> tuple[dict[str, Any], str]:
    """`alat decode`'s result of one file: a warning per damaged chunk, then its JSON and its line."""
    h = res.header
    for k, c in res.lost:
        span = h.chunk_frames * h.mel.hop / h.mel.sample_rate
        click.echo(
            f"alat: warning: chunk {k} channel {c} ({k * span:.2f}-{(k + 1) * span:.2f} s) "
            f"was damaged: decoded as silence",
            err=True,
        )
    seconds = res.frames / res.sample_rate  # the span decoded (the whole file unless --start/--duration)
    data = {
        "output": output,
        "sample_rate": res.sample_rate,
        "frames": res.frames,
        "channels": h.channels,
        "duration_s": seconds,
        "lost_chunks": [list(x) for x in res.lost],
        "runtime": res.runtime,
        "precision": res.precision,
        "decoder": res.decoder,
        "seconds": secs,
        "wall_seconds": wall,
        "x_realtime": seconds / secs,
        "timings_s": res.timings.seconds,
    }
    return data, (
        f"{shown(output)}: {seconds:.2f} s x {h.channels} ch at {res.sample_rate} Hz "
        f"({res.frames} frames); {wall:.2f} s, {speed_text(seconds / wall)} real time"
    )


def _remove_stale(output: str) -> None:
    """What a killed run of the same command left (its temporary output): folder runs do the same."""
    from latentcodec.fs import remove_stale_temporaries

    if output != "-":
        remove_stale_temporaries(output)


def _folder_input(source: str, ray: str | None, jobs: int) -> bool:
    """Whether INPUT (``source``) is a folder (folder mode); --ray is for folders only."""
    from latentcodec.fs import is_folder

    if is_folder(source):
        check_jobs(jobs, ray)
        return True
    if ray:
        raise click.UsageError(f"--ray runs folder mode: {source} is not a folder")
    return False


def _folder(run: FolderRun, quiet: bool, as_json: bool) -> int:
    """Folder mode: the library's run, drawn as a bar of files and hours on a terminal, then its summary
    and one line per failure; interrupted, it says what is done and that the same command resumes."""
    from latentcodec.jobs.folder_run import run_folder

    with folder_bar(quiet or as_json, run.options) as bar:
        res = run_folder(run, bar)
    if res.interrupted:
        click.echo(
            f"alat: interrupted: {res.written + res.reused} of {res.to_do + res.reused} outputs complete; "
            f"the same command resumes",
            err=True,
        )
        return 130
    data = {
        "written": res.written,
        "skipped": res.reused,
        "failed": len(res.failed),
        "hours_of_audio": res.hours_of_audio,
        "seconds": res.seconds,
        "runtime": res.runtime,
        "failures": [{"input": o.job.name, "error": o.error} for o in res.failed],
    }
    shards = ""
    if run.shard_size:
        data["shards_written"] = [str(p) for p in res.shards_written]
        shards = f", {len(res.shards_written)} shards written"
    emit(
        as_json,
        data,
        f"{shown(str(run.output))}: {res.written} written, {res.reused} already complete, "
        f"{len(res.failed)} failed{shards}; {res.hours_of_audio:.3f} h of audio in {res.seconds:.1f} s",
        quiet=quiet,
    )
    for o in res.failed:
        click.echo(f"alat: failed: {shown(failure_text(o))}", err=True)
    return 1 if res.failed else 0


@cli.command()
@click.argument("input", type=Name())
@JSON
# click passes argument INPUT as `input`; another name would rename INPUT in the usage, help and errors
def info(input: str, as_json: bool) -> int:  # noqa: A002
    """Header, chunks, real bytes, kbps and ratios of a .alat file; totals of a folder of .alat files and
    tar shards, or of one shard (.tar), listing the files that do not read."""
    from latentcodec.fs import is_folder
    from latentcodec.info import collection_info, file_info

    path = Path(input)
    if not (is_folder(path) or path.suffix.lower() == ".tar"):
        data = file_info(input)
        data = {**data, "coder_text": coder_text(data.pop("coder"))}
        emit(as_json, data, info_text(shown(data)))
        return 0
    data = collection_info(path)
    emit(as_json, data, collection_text(shown(data)))
    for f in data["failures"]:
        click.echo(f"alat: failed: {shown(f['error'])}", err=True)
    return 1 if data["failures"] else 0


@cli.command()
@JSON
def models(as_json: bool) -> None:
    """The VAE models and vocoders this package ships, by name (a file names the model that decodes it)."""
    from latentcodec.info import shipped_info

    data = shipped_info()
    emit(as_json, data, models_text(shown(data)))


@cli.command(name="eval")
@click.argument("input", type=Name())
@ENCODE
@DECODE
@RUNTIME
@COMMON
@JSON
@click.option("--csv", "as_csv", is_flag=True, help="folder INPUT: the per-file rows, then the folder means, as CSV")
@click.option(
    "--kind",
    type=click.Choice(["auto", "speech", "audio"]),
    default="auto",
    show_default=True,
    help="speech: PESQ-wb, STOI and ViSQOL's speech mode (where installed); auto: speech when the "
    "file's name or a folder above it starts with 'speech'",
)
# click passes argument INPUT as `input`; another name would rename INPUT in the usage, help and errors
def eval_(input: str, quiet: bool, as_json: bool, as_csv: bool, kind: str, **opts: Any) -> int:  # noqa: A002
    """Encode + decode + quality metrics of an audio file in one go; of a folder: a row per file and the
    means per sub-folder. ViSQOL, PESQ-wb and STOI are added when their packages are installed
    (pip install 'latentcodec[bench]')."""
    from latentcodec.evaluate import evaluate, evaluate_folder, row_keys
    from latentcodec.fs import is_folder

    encode, decode = encode_options(opts), decode_options(opts)
    if not is_folder(input):
        r = evaluate(input, encode, decode, kind)
        r = {**r, "coder_text": coder_text(r)}
        emit(as_json, r, eval_text(shown(r)), quiet=quiet)
        return 0
    res = evaluate_folder(Path(input), encode, decode, kind)
    if as_json:
        click.echo(json.dumps(res, indent=1))
    elif not quiet:
        _table(shown(res["rows"]), shown(res["folder_means"]), row_keys(), as_csv)
    for f in res["failures"]:
        click.echo(f"alat: failed: {shown(f['error'])}", err=True)
    return 1 if res["failures"] else 0


def _table(rows: list[dict[str, Any]], means: list[dict[str, Any]], keys: list[str], as_csv: bool) -> None:
    """Per-file rows then per-folder means: as CSV (a ``file`` column for the files, ``folder`` and
    ``files`` for the means), or as aligned text columns."""
    if as_csv:
        import csv

        w = csv.DictWriter(sys.stdout, ["file", "folder", "files", *keys], extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rounded(r) for r in [*rows, *means])
        return
    for line in table_lines(rows, means, keys):
        click.echo(line)
