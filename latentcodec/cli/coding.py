"""`alat encode`, `decode`, `info`, `models` and `eval`: files, pipes and folders."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

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
    coder_opts,
    emit,
    progress_bar,
    set_threads,
    shown,
    speed_text,
    stdout_guard,
    stream_of,
    wall_seconds,
)


@cli.command()
@click.argument("input", type=Name())
@click.argument("output", type=Name())
@ENCODE
@click.option("--shard-size", type=ByteSize(), help="folder mode: pack the outputs into OUTPUT/NNNNNN.tar shards "
              "of at most SIZE (e.g. 1GB), WebDataset's layout: member KEY.alat, KEY the input's path below INPUT "
              "without its suffix")
@OVERWRITE
@JOBS
@THREADS
@RUNTIME
@COMMON
@JSON
def encode(input: str, output: str, model: str | None, device: str, batch_size: int, shard_size: int | None,
           overwrite: bool, jobs: int, ray: str | None, threads: int | None, runtime: str, quiet: bool,
           as_json: bool, **coder: Any) -> int | None:
    """Audio file INPUT -> .alat file OUTPUT; '-' reads stdin or writes stdout. A folder INPUT: every audio
    file under it -> OUTPUT folder, same tree, NAME.alat for each NAME.* (complete outputs are kept, so a
    rerun resumes; any other file in the way is kept unless -y), or tar shards of them (--shard-size;
    a rerun resumes too). Two inputs that differ only in their suffix (a.wav, a.flac) would share an
    output: the run refuses them before any work."""
    if _folder_input(input, ray, jobs):
        return _folder("encode", input, output, jobs, ray, threads, quiet, as_json, shard_size=shard_size,
                       model=model, device=device, batch_size=batch_size, overwrite=overwrite, runtime=runtime,
                       **coder_opts(coder))
    if shard_size:
        raise click.UsageError(f"--shard-size is for folder mode: {input} is not a folder")
    from latentcodec.codec import encode_file
    from latentcodec.info import coder_summary, coder_text, rate_figures

    set_threads(threads)
    _remove_stale(output)

    t = time.perf_counter()
    with stdout_guard(output), progress_bar(quiet or as_json, "encode") as update:
        res = encode_file(stream_of(input, "r"), stream_of(output, "w"), model=model, device=device,
                          batch_size=batch_size, overwrite=overwrite, progress=update, runtime=runtime,
                          **coder_opts(coder))
    secs, wall = time.perf_counter() - t, wall_seconds()
    h = res.header
    figs = rate_figures(res.file_size, h)
    data = {"output": output, "duration_s": h.duration, "channels": h.channels, "chunks": h.num_chunks,
            **coder_summary(h), "model": h.model_name, "runtime": res.runtime, "precision": res.precision, **figs,
            "seconds": secs, "wall_seconds": wall, "x_realtime": h.duration / secs, "timings_s": res.timings.seconds}
    emit(as_json, data, f"{shown(output)}: {h.duration:.2f} s x {h.channels} ch -> {res.file_size:,} bytes, "
                          f"{figs['kbps']:.2f} kbps, {figs['ratio_vs_pcm16_16k']:.1f}x smaller than 16 kHz PCM "
                          f"({coder_text(h)}); {wall:.2f} s, {speed_text(h.duration / wall)} real time", output == "-",
         quiet)


@cli.command()
@click.argument("input", type=Name())
@click.argument("output", type=Name())
@DECODE
@click.option("--sample-rate", type=SampleRate(), help="'original', or a rate in Hz (default 16000)")
@click.option("--force", is_flag=True, help="decode with other weights than the file names")
@click.option("--salvage", is_flag=True, help="skip damaged chunks (silence) instead of stopping")
@click.option("--start", type=Finite(min=0), default=0.0, metavar="SECONDS",
              help="decode from here (only the chunks needed are decoded)")
@click.option("--duration", type=Finite(min=0, min_open=True), metavar="SECONDS",
              help="decode this long (default: to the end)")
@click.option("--format", "suffix", metavar="SUFFIX", help="folder mode: the outputs' format, by suffix: wav "
              "(default), flac, ogg, ... (a file OUTPUT's own suffix names its format)")
@OVERWRITE
@JOBS
@THREADS
@RUNTIME
@COMMON
@JSON
def decode(input: str, output: str, device: str, quiet: bool, as_json: bool, jobs: int, ray: str | None,
           threads: int | None, suffix: str | None, **opts: Any) -> int | None:
    """.alat file INPUT -> audio file OUTPUT, in the format its suffix names (.wav, .flac, .ogg, ...);
    '-' reads stdin or writes a WAV to stdout. A folder INPUT: every .alat under it -> OUTPUT folder of .wav
    (or --format) files, same tree (complete outputs are kept, so a rerun resumes; any other file in the
    way is kept unless -y)."""
    if _folder_input(input, ray, jobs):
        start, duration = opts.pop("start"), opts.pop("duration")
        if start or duration is not None:
            raise click.UsageError("--start and --duration are for one file: a folder run decodes whole files")
        return _folder("decode", input, output, jobs, ray, threads, quiet, as_json,
                       suffix=suffix or ".wav", device=device, **opts)
    if suffix:
        raise click.UsageError(f"--format is for folder mode: the suffix of {output} names its format")
    from latentcodec.codec import decode_file

    set_threads(threads)
    _remove_stale(output)

    t = time.perf_counter()
    with stdout_guard(output), progress_bar(quiet or as_json, "decode") as update:
        res = decode_file(stream_of(input, "r"), stream_of(output, "w"), device=device, progress=update, **opts)
    secs, wall = time.perf_counter() - t, wall_seconds()
    h = res.header
    for k, c in res.lost:
        span = h.chunk_frames * h.mel.hop / h.mel.sample_rate
        click.echo(f"alat: warning: chunk {k} channel {c} ({k * span:.2f}-{(k + 1) * span:.2f} s) "
                   f"was damaged: decoded as silence", err=True)
    seconds = res.frames / res.sample_rate  # the span decoded (the whole file unless --start/--duration)
    data = {"output": output, "sample_rate": res.sample_rate, "frames": res.frames, "channels": h.channels,
            "duration_s": seconds, "lost_chunks": [list(x) for x in res.lost], "runtime": res.runtime, "seconds": secs,
            "wall_seconds": wall, "x_realtime": seconds / secs, "timings_s": res.timings.seconds}
    emit(as_json, data, f"{shown(output)}: {seconds:.2f} s x {h.channels} ch at {res.sample_rate} Hz "
                          f"({res.frames} frames); {wall:.2f} s, {speed_text(seconds / wall)} real time", output == "-",
         quiet)


def _remove_stale(output: str) -> None:
    """What a killed run of the same command left (its temporary output): folder runs do the same."""
    from latentcodec.fs import remove_stale_temporaries

    if output != "-":
        remove_stale_temporaries(output)


def _folder_input(input: str, ray: str | None, jobs: int) -> bool:
    """Whether INPUT is a folder (folder mode); --ray is for folders only."""
    from latentcodec.fs import is_folder

    if is_folder(input):
        check_jobs(jobs, ray)
        return True
    if ray:
        raise click.UsageError(f"--ray runs folder mode: {input} is not a folder")
    return False


def _folder_runtime(kind: str, opts: dict[str, Any]) -> str:
    """What runs the workers' model (decode: the one asked for, else the default), by the rule they load it
    with (refused here, before any work)."""
    from latentcodec.models.loader import choose_runtime, folder_runtime
    from latentcodec.models.registry import DEFAULT_MODEL

    precision = opts.get("precision", "auto")
    return choose_runtime(folder_runtime(kind, opts.get("runtime", "auto"), precision),
                          opts.get("model") or DEFAULT_MODEL, opts.get("device", "auto"), precision)


def _folder(kind: str, input: str, output: str, jobs: int, ray: str | None, threads: int | None, quiet: bool,
            as_json: bool, suffix: str = ".wav", shard_size: int | None = None, **opts: Any) -> int:
    """Folder mode: plan, skip complete outputs, run the rest on ``jobs`` workers (Ray actors with ``ray``),
    pack shards as files finish (``shard_size``), list the failures. Interrupted, it says what is done and
    that the same command resumes."""
    from latentcodec.jobs.folders import prepare, run_batch
    from latentcodec.jobs.packing import prepare_shards

    runtime = _folder_runtime(kind, opts)
    packer = None
    if shard_size:
        todo, held, packer = prepare_shards(Path(input), Path(output), opts, shard_size)
        skipped: list[Any] = [None] * held
    else:
        todo, skipped = prepare(Path(input), Path(output), kind, opts, suffix)
    t = time.perf_counter()
    bar = None
    if not (quiet or as_json) and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=kind, unit="file", file=sys.stderr)
    done: list[Any] = []

    def step(outcome: Any) -> None:
        done.append(outcome)
        if packer is not None:
            packer.add(outcome)
        if bar is not None:
            bar.set_postfix_str(f"{sum(o.seconds for o in done) / 3600:.2f} h of audio")
            bar.update()

    try:
        run_batch(todo, kind, opts, jobs, step, ray, threads)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        written = sum(o.error is None for o in done)
        click.echo(f"alat: interrupted: {written + len(skipped)} of {len(todo) + len(skipped)} outputs complete; "
                   f"the same command resumes", err=True)
        return 130
    if packer is not None:
        packer.finish()
    if bar is not None:
        bar.close()
    failed = [o for o in done if o.error]
    hours = sum(o.seconds for o in done) / 3600
    data = {"written": len(done) - len(failed), "skipped": len(skipped), "failed": len(failed),
            "hours_of_audio": hours, "seconds": time.perf_counter() - t, "runtime": runtime,
            "failures": [{"input": o.job.name, "error": o.error} for o in failed]}
    shards = ""
    if packer is not None:
        data["shards_written"] = [str(p) for p in packer.written]
        shards = f", {len(packer.written)} shards written"
    emit(as_json, data, f"{shown(output)}: {data['written']} written, {len(skipped)} already complete, {len(failed)} "
                        f"failed{shards}; {hours:.3f} h of audio in {data['seconds']:.1f} s", quiet=quiet)
    for o in failed:
        click.echo(f"alat: failed: {shown(o.error)}", err=True)
    return 1 if failed else 0


@cli.command()
@click.argument("input", type=Name())
@JSON
def info(input: str, as_json: bool) -> int:
    """Header, chunks, real bytes, kbps and ratios of a .alat file; totals of a folder of .alat files and
    tar shards, or of one shard (.tar), listing the files that do not read."""
    from latentcodec.info import collection_info, collection_text, file_info, info_text
    from latentcodec.fs import is_folder

    path = Path(input)
    if not (is_folder(path) or path.suffix.lower() == ".tar"):
        data = file_info(input)
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
    from latentcodec.models.loader import load_model
    from latentcodec.models.registry import DEFAULT_MODEL, shipped_models, summary
    from latentcodec.vocoders.registry import BUILTIN_VOCODERS, default_vocoder, shipped_vocoders, vocoder_names

    vaes = [{"name": n, "default": n == DEFAULT_MODEL, "vocoder": default_vocoder(n),
             "fingerprint": load_model(n).fingerprint.hex(),
             "bytes": sum(p.stat().st_size for p in folder.iterdir()), "summary": summary(folder)}
            for n, folder in shipped_models().items()]
    shipped = shipped_vocoders()
    vocoders = [{"name": n, "summary": BUILTIN_VOCODERS[n] if n in BUILTIN_VOCODERS else summary(shipped[n])}
                for n in vocoder_names()]
    lines = ["models:"] + [f"  {v['name']}{' (default)' if v['default'] else ''}  fingerprint {v['fingerprint'][:16]}"
                           f"  {v['bytes'] / 2**20:.1f} MiB  vocoder {v['vocoder']}  {v['summary']}" for v in shown(vaes)]
    lines += ["vocoders:"] + [f"  {v['name']}  {v['summary']}".rstrip() for v in shown(vocoders)]
    emit(as_json, {"models": vaes, "vocoders": vocoders}, "\n".join(lines))


@cli.command(name="eval")
@click.argument("input", type=Name())
@ENCODE
@DECODE
@COMMON
@JSON
@click.option("--csv", "as_csv", is_flag=True, help="folder INPUT: the per-file rows, then the folder means, as CSV")
@click.option("--kind", type=click.Choice(["auto", "speech", "audio"]), default="auto", show_default=True,
              help="speech: PESQ-wb, STOI and ViSQOL's speech mode (where installed); auto: speech when the "
                   "file's name or a folder above it starts with 'speech'")
def eval_(input: str, model: str | None, device: str, batch_size: int, quiet: bool, as_json: bool, as_csv: bool,
          vocoder: str | None, gl_iters: int | None, kind: str, **coder: Any) -> int:
    """Encode + decode + quality metrics of an audio file in one go; of a folder: a row per file and the
    means per sub-folder. ViSQOL, PESQ-wb and STOI are added when their packages are installed
    (pip install 'latentcodec[bench]')."""
    from latentcodec.evaluate import eval_text, evaluate, evaluate_folder
    from latentcodec.fs import is_folder
    from latentcodec.models.loader import load_model, pick_device
    from latentcodec.models.registry import DEFAULT_MODEL

    dev = pick_device(device)
    opts = dict(device=dev, batch_size=batch_size, vocoder=vocoder, gl_iters=gl_iters, kind=kind, **coder_opts(coder))
    m = load_model(model or DEFAULT_MODEL, dev)
    if not is_folder(input):
        r = evaluate(input, m, **opts)
        emit(as_json, r, eval_text(shown(r)), quiet=quiet)
        return 0
    res = evaluate_folder(Path(input), m, **opts)
    if as_json:
        click.echo(json.dumps(res, indent=1))
    elif not quiet:
        _table(shown(res["rows"]), shown(res["folder_means"]), as_csv)
    for f in res["failures"]:
        click.echo(f"alat: failed: {shown(f['error'])}", err=True)
    return 1 if res["failures"] else 0


def _table(rows: list[dict[str, Any]], means: list[dict[str, Any]], as_csv: bool) -> None:
    """Per-file rows then per-folder means, rounded: as CSV (a ``file`` column for the files, ``folder`` and
    ``files`` for the means), or as aligned text columns with the means under a rule."""
    from latentcodec.evaluate import rounded, row_keys

    keys = row_keys()
    if as_csv:
        import csv

        w = csv.DictWriter(sys.stdout, ["file", "folder", "files", *keys], extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rounded(r) for r in [*rows, *means])
        return
    cells = [["file", *keys]] + [[r["file"], *(str(rounded(r).get(k, "")) for k in keys)] for r in rows]
    mean_cells = [[f"{g['folder']}/ (mean of {g['files']})", *(str(rounded(g).get(k, "")) for k in keys)]
                  for g in means]
    widths = [max(len(c[i]) for c in cells + mean_cells) for i in range(len(keys) + 1)]
    for c in cells + [["-" * w for w in widths]] + mean_cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())
