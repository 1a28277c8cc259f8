"""The codec pipeline: audio -> log-mel -> VAE latents -> .alat, and back.

Seams: each chunk is encoded from a window of mel frames with ``context`` frames of its neighbours on
either side, keeping only its own latent frames; it is decoded from a window of latent frames with its
neighbours' latents around it, keeping only its own mel frames. Every window has the same length, so
GroupNorm statistics and padding are the same for all chunks. Past the ends of the file the context is
the chunk's own frames mirrored (in mel for the encoder, in latent space for the decoder). The vocoder
then runs over the joined mel in long overlapping windows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import partial
from itertools import chain
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soxr

from latentcodec.audio.io import (
    WRITE_FORMATS,
    Audio,
    check_rate,
    output_format,
    read_audio,
    write_audio,
    write_wav_stream,
)
from latentcodec.audio.mel import AUDIOLDM_MEL, log_mel_frames, normalization_stats, reflect_index
from latentcodec.constants import GRAPH_RUNTIMES, OUTPUT_RATES, OWN_DECODER
from latentcodec.errors import AlatFormatError, LatentCodecError, ModelError
from latentcodec.format.container import AlatReader, AlatWriter
from latentcodec.format.header import MAX_CHANNELS, Header, stored_mel, writable_problem
from latentcodec.format.quantize import BITS, DEFAULT_ZSTD
from latentcodec.format.rate import (
    DEFAULT_QUALITY,
    MAX_KBPS,
    MIN_KBPS,
    step_for_quality,
    step_for_rate,
    transform_of,
)
from latentcodec.format.transform_coder import fit_transform
from latentcodec.fs import atomic_output, check_output, stream_output
from latentcodec.models.loader import (
    Model,
    choose_runtime,
    file_fingerprint,
    latent_space_print,
    load_model,
    locate,
)
from latentcodec.models.registry import DEFAULT_MODEL, shipped_models
from latentcodec.options import DecodeOptions, EncodeOptions, RunOptions
from latentcodec.runtime.cores import prepare_process, process_thread
from latentcodec.timings import Timings
from latentcodec.vocoders.registry import decode_precision, decoder_for, default_vocoder, load_vocoder
from latentcodec.vocoders.windows import OVERLAP_FRAMES, WINDOW_FRAMES, Tiling, vocode_stream, window_span

CONTEXT_FRAMES = 32  # mel frames of context each side, or the chunk's own length when shorter (the spec's X <= F)
MAX_WRITE_FRAMES = 2000  # mel frames: the longest chunk written (20 s) and the longest VAE window decoded whole
Progress = Callable[[int, int], None]  # (done, total)
MelSink = Callable[[int, int, np.ndarray], None]  # (chunk, channel, its decoded (frames, n_mels) log-mel)


@dataclass
class EncodeResult:
    header: Header
    file_size: int
    timings: Timings
    precision: str  # the encoder's arithmetic as run: float32 or bfloat16
    runtime: str  # what ran the model: onnx or torch


@dataclass
class DecodeResult:
    header: Header
    sample_rate: int
    frames: int
    lost: list[tuple[int, int]]
    timings: Timings
    runtime: str  # what ran the model and the vocoder's networks: openvino, onnx or torch
    precision: str = "float32"  # the VAE decoder's arithmetic as run: float32 or bfloat16
    decoder: str = OWN_DECODER  # the VAE decoder that ran: the writer's own, or the name of another


def chunk_frames_for(seconds: float) -> int:
    """Mel frames per chunk: a multiple of 4 (the VAE halves time twice), at most MAX_WRITE_FRAMES, so that
    the VAE's window, and the memory of encoding and decoding, stay bounded whatever the option."""
    frames = seconds * AUDIOLDM_MEL.sample_rate / AUDIOLDM_MEL.hop / 4
    frames = int(round(frames)) * 4 if 0 < frames < MAX_WRITE_FRAMES else frames * 4
    if not 4 <= frames <= MAX_WRITE_FRAMES:
        per_frame = AUDIOLDM_MEL.hop / AUDIOLDM_MEL.sample_rate
        lo, hi = 4 * per_frame, MAX_WRITE_FRAMES * per_frame
        raise LatentCodecError(f"chunks of {seconds:g} s: a chunk must be {lo:g} to {hi:g} s", "chunk_seconds")
    return int(frames)


def resolve_model(
    options: RunOptions,
    name: str | None = None,
    precision: str = "auto",
    kind: str = "encode",
    seconds: float | None = 0.0,
) -> Model:
    """The options' model, loaded (``name`` or the default where they give none) on their runtime, auto's
    chosen for a job of ``kind`` over ``seconds`` of audio (``loader.choose_runtime``)."""
    if isinstance(options.model, Model):
        return options.model
    ref = options.model or name or DEFAULT_MODEL
    runtime = choose_runtime(options.runtime, ref, options.device, precision, kind, seconds)
    return load_model(ref, options.device, runtime, precision)


def encode_mel_windows(model: Model, mels: np.ndarray, precision: str = "float32") -> np.ndarray:
    """(B, frames, n_mels) log-mel windows -> (B, C, frames/4, n_mels/4) posterior means (float32),
    computed in ``precision`` (see runtime/precision.py; float32 on the onnx runtime)."""
    z = model.runner.encode(mels, precision)
    if not np.isfinite(z).all():
        raise ModelError(f"model '{model.name}' produced non-finite latents")
    return z


@dataclass
class CoderChoice:
    """How latents become bytes: version 1 (``bits``, zstd) or version 2 (one step per component, ANS)."""

    bits: int = 0
    zstd_level: int = 0
    steps: list[float] | None = None
    transform: list[list[float]] | None = None
    kbps: float | None = None  # the rate asked for: the step is then chosen on the file's latents


def choose_coder(model: Model, options: EncodeOptions) -> CoderChoice:
    """Version 1 when ``bits`` is given, else the entropy coder at ``kbps`` or ``quality`` (default quality)."""
    bits, zstd_level, quality, kbps = options.bits, options.zstd_level, options.quality, options.kbps
    if bits is not None:
        if quality is not None or kbps is not None:
            raise LatentCodecError(
                "bits per value select the version-1 quantizer: give no quality or rate with them", "bits"
            )
        if bits not in BITS:
            raise LatentCodecError(f"{bits} bits per value: use one of {', '.join(map(str, BITS))}", "bits")
        level = DEFAULT_ZSTD if zstd_level is None else zstd_level
        if not 0 <= level <= 22:
            raise LatentCodecError(f"zstd level {level}: use 0 (off) to 22", "zstd_level")
        return CoderChoice(bits=bits, zstd_level=level)
    if zstd_level:
        raise LatentCodecError(
            "zstd applies to the version-1 quantizer only: give bits per value with it", "zstd_level"
        )
    if quality is not None and kbps is not None:
        raise LatentCodecError("give a quality or a rate, not both", "kbps")
    if kbps is not None and not MIN_KBPS <= kbps <= MAX_KBPS:
        raise LatentCodecError(f"a rate of {kbps:g} kbps is out of range ({MIN_KBPS:g} to {MAX_KBPS:g})", "kbps")
    step = step_for_quality(DEFAULT_QUALITY if quality is None else quality)
    n = model.latent_channels
    k = transform_of(model.coder, n)
    return CoderChoice(steps=[step] * n, transform=None if k is None else k.tolist(), kbps=kbps)


def encode_audio(
    audio: Audio,
    out_path: str | Path | BinaryIO,
    options: EncodeOptions = EncodeOptions(),
    *,
    overwrite: bool = True,
    progress: Progress | None = None,
    timings: Timings | None = None,
) -> EncodeResult:
    """Encode 16 kHz channels to a .alat file at ``out_path`` (written whole or not at all; an existing
    file is replaced only with ``overwrite``), or onto a binary stream (stdout: the writer never seeks).

    The coder: see :func:`choose_coder` (the entropy coder at the default quality unless told otherwise);
    the encoder's arithmetic: ``options.precision`` (bfloat16 where the CPU has it natively).
    """
    timings = timings or Timings()
    if isinstance(out_path, (str, Path)):
        check_output(out_path, overwrite)
    prepare_process()
    seconds = audio.samples.shape[-1] / AUDIOLDM_MEL.sample_rate
    model = resolve_model(options, precision=options.precision, seconds=seconds)
    precision = model.runner.precision(options.precision)
    coder = choose_coder(model, options)
    header = _header(audio, model, coder, options)
    records: Iterable[tuple[int, int, np.ndarray]] = _latent_records(
        model, audio.samples, header, options.batch_size, precision, timings, progress
    )
    if header.version >= 2 and coder.transform is None:
        records, header = _fit_transform(records, header)
    if coder.kbps is not None:  # the whole file's latents first: the step is chosen on them
        records = list(records)
        with timings.stage("rate_search"):
            step = step_for_rate([z for _, _, z in records], coder.kbps, header)
        header.steps = [step] * header.latent_channels
    if isinstance(out_path, (str, Path)):
        with atomic_output(out_path, overwrite) as tmp, open(tmp, "wb") as f:
            size = _write_records(f, header, records, timings)
    else:
        with stream_output(getattr(out_path, "name", "<stream>")):
            size = _write_records(out_path, header, records, timings)
    return EncodeResult(header, size, timings, precision, model.runtime)


def _header(audio: Audio, model: Model, coder: CoderChoice, options: EncodeOptions) -> Header:
    """The file's header before its latents exist (its transform may be fitted on them later)."""
    x = audio.samples
    chans, n = x.shape
    if chans > MAX_CHANNELS:
        raise LatentCodecError(f"{chans} channels: at most {MAX_CHANNELS} are supported", "mono")
    stats = [normalization_stats(ch) for ch in x]
    frames = chunk_frames_for(options.chunk_seconds)
    ctx = min(CONTEXT_FRAMES, frames)
    header = Header(
        channels=chans,
        num_samples=n,
        original_rate=audio.original_rate,
        original_channels=audio.original_channels,
        original_frames=audio.original_frames,
        input_size=audio.file_size,
        model_name=model.name,
        model_fingerprint=model.fingerprint,
        offsets=[o for o, _ in stats],
        gains=[g for _, g in stats],
        bits=coder.bits,
        zstd_level=coder.zstd_level,
        steps=coder.steps,
        transform=coder.transform,
        mono_downmix=options.mono and audio.original_channels > 1,
        chunk_frames=frames,
        context_frames=ctx,
        latent_channels=model.latent_channels,
    )
    problem = writable_problem(header)
    if problem:  # a bug rather than an option: every option is checked above, but no file its reader refuses
        raise LatentCodecError(f"the options make a header the reader refuses: {problem}")
    return header


FIT_CHUNKS = 2  # a model without a table: the transform is fitted on the latents of the file's first chunks


def _fit_transform(
    records: Iterable[tuple[int, int, np.ndarray]], header: Header
) -> tuple[Iterable[tuple[int, int, np.ndarray]], Header]:
    """The decorrelating transform fitted on the first ``FIT_CHUNKS`` chunks of every channel (the whole
    file when shorter), held back so that a stream is still written in one pass; the records, unchanged."""
    records = iter(records)
    head = [r for _, r in zip(range(FIT_CHUNKS * header.channels), records)]
    k = fit_transform([z for _, _, z in head])
    return chain(head, records), replace(header, transform=k.tolist())


def _write_records(
    f: BinaryIO, header: Header, records: Iterable[tuple[int, int, np.ndarray]], timings: Timings
) -> int:
    """The whole .alat stream onto ``f``, each record as soon as it exists; returns its size in bytes."""
    writer = AlatWriter(f, header)
    for k, c, z in records:
        with timings.stage("quantize_write"):
            writer.write(k, c, z)
    size = writer.close()
    f.flush()
    return size


def _latent_records(
    model: Model,
    x: np.ndarray,
    header: Header,
    batch_size: int,
    precision: str,
    timings: Timings,
    progress: Progress | None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """(chunk, channel, float16 latent) in file order, the VAE run on ``batch_size`` windows at a time."""
    frames, ctx = header.chunk_frames, header.context_frames
    stats = list(zip(header.offsets, header.gains))
    jobs = [divmod(i, header.channels) for i in range(header.num_records)]
    keep = slice(ctx // 4, ctx // 4 + frames // 4)
    for b in range(0, len(jobs), batch_size):
        batch = jobs[b : b + batch_size]
        with timings.stage("mel"):
            mels = np.stack(
                [
                    log_mel_frames(x[c], k * frames - ctx, (k + 1) * frames + ctx, AUDIOLDM_MEL, *stats[c])
                    for k, c in batch
                ]
            )
        with timings.stage("vae_encode"):
            z = encode_mel_windows(model, mels, precision)
            if z.shape[2:] != (mels.shape[1] // 4, header.latent_shape[2]):
                raise ModelError(
                    f"model '{model.name}' maps {mels.shape[1]} x {mels.shape[2]} mel frames to "
                    f"{tuple(z.shape[2:])} latents, not 4x smaller on both axes"
                )
            z = z[:, :, keep].astype(np.float16)
        if not np.isfinite(z).all():
            raise ModelError(f"model '{model.name}' produced latents beyond the float16 range")
        yield from ((k, c, zi[:, : header.record_shape(k)[1]]) for (k, c), zi in zip(batch, z))
        if progress:
            progress(b + len(batch), len(jobs))


def encode_file(
    in_path: str | Path | BinaryIO,
    out_path: str | Path | BinaryIO,
    options: EncodeOptions = EncodeOptions(),
    *,
    overwrite: bool = True,
    progress: Progress | None = None,
    timings: Timings | None = None,
) -> EncodeResult:
    """Read any audio file (or stream) and encode it (see :func:`encode_audio`)."""
    if isinstance(out_path, (str, Path)):
        check_output(out_path, overwrite, in_path if isinstance(in_path, (str, Path)) else None)
    timings = timings or Timings()
    with timings.stage("load_resample"):
        audio = read_audio(in_path, mono=options.mono)
    return encode_audio(audio, out_path, options, overwrite=overwrite, progress=progress, timings=timings)


def model_for_file(header: Header, options: RunOptions, force: bool = False) -> Model:
    """What decodes the file: the writer (the options' model, or else the shipped model the file names; other
    weights only with ``force``) or, where asked or paired, a decoder of the writer's latent space. A file never
    chooses code or weights: a name that is not shipped (a folder, a hub id) is refused before anything is
    loaded, so no file's contents reach the disk or the network."""
    if options.model is None and header.model_name not in shipped_models():
        raise ModelError(
            f"file names model '{header.model_name}', which is not shipped with latentcodec: the "
            f"model itself must be given to decode it",
            "model",
        )
    precision, seconds = _asked_precision(header.model_name, options), header.duration
    decoder = decoder_for(header.model_name, options.decoder) if isinstance(options, DecodeOptions) else None
    if decoder is None:
        m = resolve_model(options, header.model_name, precision, "decode", seconds)
        _check_writer(m.fingerprint, m.name, header, force)
    else:
        m = _load_decoder(decoder, options, precision, seconds)
        writer = _writer_folder(header, options)
        _check_writer(file_fingerprint(writer), str(options.model or header.model_name), header, force)
        if not force and (m.folder is None or latent_space_print(m.folder) != latent_space_print(writer)):
            raise ModelError(
                f"decoder '{m.name}' was not made for the latents of model '{header.model_name}' (its encoder's "
                f"weights are others)",
                "decoder",
            )
        m = replace(m, decodes_for=header.model_name)
    if m.latent_channels != header.latent_channels:
        raise ModelError(
            f"model '{m.name}' has {m.latent_channels} latent channels, the file has {header.latent_channels}"
        )
    return m


def _load_decoder(decoder: Model | str, options: RunOptions, precision: str, seconds: float) -> Model:
    """The decoder asked for or paired, loaded on the options' runtime; what cannot load is the decoder's fault."""
    try:
        return resolve_model(replace(options, model=decoder), None, precision, "decode", seconds)
    except ModelError as e:
        if e.param is not None:
            raise
        raise ModelError(str(e), "decoder") from e


def with_model(options: DecodeOptions, m: Model) -> DecodeOptions:
    """``options`` with the model :func:`model_for_file` loaded in its place, so that a later call loads nothing:
    the writer as the model, or a paired decoder as the decoder (the writer stays what it was)."""
    return replace(options, decoder=m) if m.decodes_for else replace(options, model=m)


def _check_writer(print_: bytes, name: str, header: Header, force: bool) -> None:
    """Refuse, unless ``force``, a writer ``name`` whose weights' fingerprint is not the one the file records."""
    if print_ != header.model_fingerprint and not force:
        raise ModelError(
            f"model '{name}' has other weights than the ones that made this file "
            f"('{header.model_name}', fingerprint {header.model_fingerprint.hex()[:12]})",
            "force",
        )


def _writer_folder(header: Header, options: RunOptions) -> str:
    """The folder of the weights that wrote the file (the options' model, else the shipped one it names), whose
    latent space a decoder must share."""
    model = options.model
    if isinstance(model, Model):
        if model.folder is None:
            raise ModelError(f"model '{model.name}' has no weights folder to check a decoder against", "decoder")
        return model.folder
    return locate(model or header.model_name)[1]


def _asked_precision(model: str, options: RunOptions) -> str:
    """The VAE decoder's arithmetic asked for ``model``'s files: the options' or the model's pairing's."""
    if isinstance(options, DecodeOptions):
        return decode_precision(model, options.vocoder, options.decoder_precision)
    return "float32"


def _decoder_precision(m: Model, h: Header, options: RunOptions) -> str:
    """The decoder's arithmetic for the file with header ``h`` as ``m``'s runtime runs it: float32 or bfloat16."""
    return m.runner.precision(_asked_precision(h.model_name, options))


def check_decodable(header: Header, where: str) -> None:
    """Refuse, before any model is loaded, a header this decoder cannot honour: its mel front end must be
    the one the VAEs and vocoders were made for (the encoder writes no other), and its input frame count
    must agree with its samples (it sizes the output at the original rate)."""
    own, m = stored_mel(AUDIOLDM_MEL), header.mel
    if m != own:
        raise AlatFormatError(
            f"{where}: the header's mel front end ({m.sample_rate} Hz, n_fft {m.n_fft}, hop {m.hop}, "
            f"window {m.win}, {m.n_mels} bands, {m.fmin:g}-{m.fmax:g} Hz, floor {m.log_floor:g}) "
            f"is not the one latentcodec decodes ({own.sample_rate} Hz, n_fft {own.n_fft}, hop "
            f"{own.hop}, window {own.win}, {own.n_mels} bands, {own.fmin:g}-{own.fmax:g} Hz, "
            f"floor {own.log_floor:g})"
        )
    expect = max(1, round(header.original_frames * m.sample_rate / header.original_rate))  # the encoder's N
    if abs(header.num_samples - expect) > 2 + expect / 1000:  # in 16 kHz samples: a short input at 384 kHz passes
        raise AlatFormatError(
            f"{where}: the header's {header.original_frames} input frames at "
            f"{header.original_rate} Hz do not match its {header.num_samples} samples"
        )


def latent_window(latent: Callable[[int], np.ndarray | None], k: int, ctx: int) -> np.ndarray:
    """Chunk k's latent with ``ctx`` frames of its neighbours on each side; where a neighbour does not
    exist (file ends) or was lost, chunk k's own frames mirrored, as the encoder mirrored the mel."""
    own = latent(k)
    if own is None:
        raise ValueError(f"chunk {k} has no latent")
    if ctx == 0:
        return own
    n = own.shape[1]
    prev, nxt = latent(k - 1), latent(k + 1)
    left = prev[:, -ctx:] if prev is not None else own[:, reflect_index(np.arange(-ctx, 0), n)]
    right = nxt[:, :ctx] if nxt is not None else own[:, reflect_index(np.arange(n, n + ctx), n)]
    return np.concatenate([left, own, right], axis=1)


def window_pieces(window: np.ndarray, ctx: int, needed: int) -> list[tuple[int, np.ndarray]]:
    """(first latent frame covered, piece) of a chunk's latent window (``ctx`` frames of context each side):
    the window itself up to MAX_WRITE_FRAMES / 4 frames of its own; a longer chunk (a file written before
    that bound, or forged) in pieces of that many frames, each with ``ctx`` frames of context, the last one
    ending at the chunk's end, and only those that start within the ``needed`` frames that cover audio, so
    that the VAE's memory and time follow the audio, whatever the header's chunk length."""
    size, own = MAX_WRITE_FRAMES // 4, window.shape[1] - 2 * ctx
    if own <= size:
        return [(0, window)]
    starts = [a for a in [*range(0, own - size, size), own - size] if a < max(1, needed)]
    return [(a, window[:, a : a + size + 2 * ctx]) for a in starts]


class _MelSource:
    """Decodes chunk windows in batches (all channels) and hands each channel its mel blocks in order,
    for the chunks in ``chunks`` (a seek decodes only those; their neighbours' latents are read as context)."""

    def __init__(
        self,
        reader: AlatReader,
        model: Model,
        batch_size: int,
        timings: Timings,
        progress: Progress | None,
        mel_sink: MelSink | None,
        chunks: range | None = None,
        precision: str = "float32",
    ):
        self.r, self.model, self.batch, self.t = reader, model, batch_size, timings
        self.precision = precision  # the decoder's arithmetic, resolved on the model's runtime
        self.progress, self.sink = progress, mel_sink
        h = reader.header
        self.h, self.ctx = h, min(h.context_frames, h.chunk_frames) // 4  # an older file's X may exceed F
        self.chunks = chunks if chunks is not None else range(h.num_chunks)
        self.queues: list[deque[np.ndarray]] = [deque() for _ in range(h.channels)]
        self.next_chunk = self.chunks.start
        self.cache: dict[tuple[int, int], np.ndarray | None] = {}
        self.ahead: Future[None] | None = None  # the next batch, decoding beside the vocoder

    def _latent(self, k: int, c: int) -> np.ndarray | None:
        """Chunk k's whole latent; a short last chunk (version 3) mirrored about its last frame to the
        chunk's length, as the encoder mirrored the mel past the file's end."""
        if not 0 <= k < self.h.num_chunks:
            return None
        if (k, c) not in self.cache:
            with self.t.stage("read_dequantize"):
                z = self.r.read(k, c)
            frames = self.h.chunk_frames // 4
            if z is not None and z.shape[1] < frames:
                z = z[:, reflect_index(np.arange(frames), z.shape[1])]
            self.cache[(k, c)] = z
        return self.cache[(k, c)]

    def _decode_batch(self) -> None:
        h, ctx = self.h, self.ctx
        ks = range(self.next_chunk, min(self.next_chunk + max(1, self.batch // h.channels), self.chunks.stop))
        jobs = [(k, c) for k in ks for c in range(h.channels)]
        present = [(k, c) for k, c in jobs if self._latent(k, c) is not None]
        mels: dict[tuple[int, int], np.ndarray] = {}
        floor = np.float32(np.log(h.mel.log_floor))  # past the audio in a chunk decoded in pieces; a lost chunk
        if present:
            windows = np.stack([latent_window(partial(self._latent, c=c), k, ctx) for k, c in present])
            audio = h.num_samples // h.mel.hop + 1  # mel frames that cover audio
            pieces = [
                (key, a, piece)
                for key, w in zip(present, windows)
                for a, piece in window_pieces(w, ctx, -(-(audio - key[0] * h.chunk_frames) // 4))
            ]
            with self.t.stage("vae_decode"):
                for i in range(0, len(pieces), self.batch):
                    batch = np.stack([piece for _, _, piece in pieces[i : i + self.batch]])
                    out = self.model.runner.decode(batch, self.precision)
                    for ((k, c), a, piece), m in zip(pieces[i : i + self.batch], out):
                        n = 4 * (piece.shape[1] - 2 * ctx)
                        mel = mels.setdefault((k, c), np.full((h.chunk_frames, h.mel.n_mels), floor, np.float32))
                        mel[4 * a : 4 * a + n] = m[4 * ctx : 4 * ctx + n]
                        if not np.isfinite(mel[4 * a : 4 * a + n]).all():
                            raise AlatFormatError(
                                f"{self.r.where}: chunk {k} channel {c}: its latents decode to "
                                f"non-finite mel values (far outside the model's range)"
                            )
        for k, c in jobs:
            lost = np.full((h.chunk_frames, h.mel.n_mels), floor, np.float32)  # lost in salvage: silence
            mel = mels.get((k, c), lost)
            if self.sink:
                self.sink(k, c, mel)
            self.queues[c].append(mel)
        self.next_chunk = ks[-1] + 1
        for key in [key for key in self.cache if key[0] < self.next_chunk - 1]:
            del self.cache[key]
        if self.progress:
            self.progress(self.next_chunk - self.chunks.start, len(self.chunks))

    def _next_batch(self) -> bool:
        """Queue the next batch's mel blocks: the batch decoding beside the vocoder (its error raised here),
        else one decoded now; then, on the graph runtimes, start the one after it on this process's VAE
        thread. Why: the numpy vocoder leaves a core idle between its FFTs, and the VAE fills it (600 s on the
        2-core AMD EPYC: 19.5-20.5 s -> 16.9-17.6 s, the same samples); on torch, whose VAE and vocoder both
        run on its intra-op threads, the same decode took 32.5 s against 21.6-23.4 s. False when none is left."""
        if self.ahead is not None:
            with self.t.stage("vae_wait"):
                self.ahead.result()
            self.ahead = None
        elif self.next_chunk < self.chunks.stop:
            self._decode_batch()
        else:
            return False
        if self.next_chunk < self.chunks.stop and self.model.runtime in GRAPH_RUNTIMES:
            self.ahead = process_thread("latentcodec-vae").submit(self._decode_batch)
        return True

    def blocks(self, c: int) -> Iterator[np.ndarray]:
        while self.queues[c] or self._next_batch():
            if self.queues[c]:  # empty when the batch waited for had been queued and consumed already
                yield self.queues[c].popleft()


def decoded_mel(reader: AlatReader, options: DecodeOptions = DecodeOptions()) -> np.ndarray:
    """The log-mel the VAE decodes from an open file, before any vocoder, in the file's normalised level:
    (channels, num_samples // hop + 1, n_mels), frame t centred on sample t * hop."""
    h = reader.header
    check_decodable(h, reader.where)
    model = model_for_file(h, options, options.force)
    source = _MelSource(
        reader, model, options.batch_size, Timings(), None, None, None, _decoder_precision(model, h, options)
    )
    frames = h.num_samples // h.mel.hop + 1
    return np.stack([np.concatenate(list(source.blocks(c)))[:frames] for c in range(h.channels)])


def output_rate(header: Header, sample_rate: int | str | None) -> int:
    """16 kHz by default (None); 'original' gives the input's rate; else a rate in Hz."""
    if sample_rate is None:
        return header.mel.sample_rate
    lo, hi = OUTPUT_RATES
    if sample_rate == "original":
        if not lo <= header.original_rate <= hi:
            raise LatentCodecError(
                f"the file's original rate of {header.original_rate} Hz is outside what the "
                f"decoder resamples to ({lo} to {hi} Hz): give a rate",
                "sample_rate",
            )
        return header.original_rate
    if not isinstance(sample_rate, int) or not lo <= sample_rate <= hi:
        raise LatentCodecError(f"a sample rate of {sample_rate} Hz: use {lo} to {hi} Hz, or 'original'", "sample_rate")
    return sample_rate


def decode_file(
    alat_path: str | Path | BinaryIO,
    out_path: str | Path | BinaryIO,
    options: DecodeOptions = DecodeOptions(),
    *,
    overwrite: bool = True,
    progress: Progress | None = None,
    timings: Timings | None = None,
    mel_sink: MelSink | None = None,
) -> DecodeResult:
    """Decode a .alat file to audio of the input's duration, in the format ``out_path``'s suffix names
    (written whole or not at all; an existing file is replaced only with ``overwrite``), or as a WAV onto
    a binary stream (stdout). ``alat_path`` may be a stream too. See :func:`decode_blocks`."""
    timings = timings or Timings()
    fmt = WRITE_FORMATS[".wav"]  # onto a stream
    if isinstance(out_path, (str, Path)):
        fmt = output_format(out_path)
        check_output(out_path, overwrite, alat_path if isinstance(alat_path, (str, Path)) else None)
    with AlatReader(alat_path, salvage=options.salvage) as reader:
        h = reader.header
        check_decodable(h, reader.where)  # before any model is loaded
        m = model_for_file(h, options, options.force)
        blocks, rate, frames_out = decode_blocks(
            reader, with_model(options, m), progress=progress, mel_sink=mel_sink, timings=timings
        )
        named = isinstance(out_path, (str, Path))
        check_rate(fmt, rate, str(out_path) if named else "<stdout>")
        blocks = _timed(blocks, timings, "write")
        if isinstance(out_path, (str, Path)):
            with atomic_output(out_path, overwrite) as tmp:
                written = write_audio(tmp, blocks, rate, h.channels, fmt, str(out_path))
        else:
            with stream_output(getattr(out_path, "name", "<stream>")):
                written = write_wav_stream(out_path, blocks, rate, h.channels, frames_out)
        precision = _decoder_precision(m, h, options)
        decoder = m.name if m.decodes_for else OWN_DECODER
        return DecodeResult(h, rate, written, list(reader.lost), timings, m.runtime, precision, decoder)


def decode_blocks(
    reader: AlatReader,
    options: DecodeOptions = DecodeOptions(),
    *,
    progress: Progress | None = None,
    mel_sink: MelSink | None = None,
    timings: Timings | None = None,
) -> tuple[Iterator[np.ndarray], int, int]:
    """The decoded audio of an open file as (frames, channels) float32 blocks in [-1, 1]; returns
    (blocks, sample rate, frames in all). 16 kHz unless ``options.sample_rate`` ('original' or Hz);
    ``options.vocoder``: a name (None: the one the registry pairs with the file's model) or a
    :data:`vocoders.windows.Vocoder` itself.

    ``start`` and ``duration`` (seconds) decode a part: only its chunks and their neighbours are read and
    decoded, and the vocoder runs only the windows that cover it, so the samples are those of the same
    span of a whole decode (to float rounding with a neural vocoder; Griffin-Lim starts its phase afresh).
    """
    timings = timings or Timings()
    h = reader.header
    check_decodable(h, reader.where)
    rate = output_rate(h, options.sample_rate)
    prepare_process()
    m = model_for_file(h, options, options.force)
    voc = (
        options.vocoder
        if callable(options.vocoder)
        else load_vocoder(
            options.vocoder or default_vocoder(m.decodes_for or m.name), h.mel, m, m.device, options.gl_iters, m.runtime
        )
    )
    span = sample_span(h, options.start, options.duration)
    total = h.num_chunks * h.chunk_frames
    tiling = Tiling(hop=h.mel.hop)
    windows, first_frame, first_sample = window_span(*span, total, h.num_samples, tiling)
    last_frame = min(total, windows.stop * WINDOW_FRAMES + OVERLAP_FRAMES)
    chunks = range(first_frame // h.chunk_frames, -(-last_frame // h.chunk_frames))
    precision = _decoder_precision(m, h, options)
    source = _MelSource(reader, m, options.batch_size, timings, progress, mel_sink, chunks, precision)
    frames_out = (
        output_frames(h, rate)
        if span == (0, h.num_samples)
        else int(round((span[1] - span[0]) * rate / h.mel.sample_rate))
    )
    streams = [
        vocode_stream(
            source.blocks(c),
            total,
            h.num_samples,
            voc,
            float(np.log(h.mel.log_floor)),
            tiling,
            windows=windows,
            first_frame=chunks.start * h.chunk_frames,
        )
        for c in range(h.channels)
    ]
    blocks = _output_blocks(streams, h, span[0] - first_sample, span[1] - span[0], rate, frames_out, timings)
    return blocks, rate, frames_out


def output_frames(h: Header, rate: int) -> int:
    """Frames of the decoded file at ``rate``: the input's own count at its own rate."""
    if rate == h.mel.sample_rate:
        return h.num_samples
    if rate == h.original_rate:
        return h.original_frames
    return int(round(h.num_samples * rate / h.mel.sample_rate))


def sample_span(h: Header, start: float, duration: float | None) -> tuple[int, int]:
    """[first, end) in 16 kHz samples of ``duration`` seconds from ``start`` (to the end when None)."""
    first = _samples(start, h.mel.sample_rate, h.num_samples)
    if not 0 <= first < h.num_samples:
        raise LatentCodecError(f"a start at {start:g} s is outside the file (0 to {h.duration:.3f} s)", "start")
    if duration is None:
        return first, h.num_samples
    if not duration > 0:
        raise LatentCodecError(f"a duration of {duration:g} s: give more than 0", "duration")
    return first, first + max(1, _samples(duration, h.mel.sample_rate, h.num_samples - first))


def _samples(seconds: float, rate: int, limit: int) -> int:
    """round(seconds x rate), held to [-1, limit]: a float beyond (1e308 s, inf, nan) never becomes an int."""
    x = seconds * rate
    return int(round(x)) if -1 <= x <= limit else limit if x > limit else -1


def _output_blocks(
    streams: list[Iterator[np.ndarray]], h: Header, skip: int, length: int, rate: int, frames_out: int, timings: Timings
) -> Iterator[np.ndarray]:
    """(frames, channels) float32 blocks in [-1, 1] at ``rate``: ``length`` samples of the vocoded
    channels after the first ``skip``, de-normalized, resampled, and cut or padded to ``frames_out``."""
    resampler = (
        soxr.ResampleStream(h.mel.sample_rate, rate, h.channels, dtype="float32", quality="HQ")
        if rate != h.mel.sample_rate
        else None
    )
    pos, written = -skip, 0  # pos: the stream's position relative to the first sample wanted
    while written < frames_out:
        last, segs = pos >= length, []
        if not last:
            with timings.stage("vocoder"):  # the channels' streams end together
                segs = [seg for s in streams if (seg := next(s, None)) is not None]
            last = not segs
        y = np.zeros((0, h.channels), np.float32)
        if not last:
            with np.errstate(over="ignore"):  # a forged tiny gain: inf, clipped to full scale below
                y = np.stack([s / g + o for s, g, o in zip(segs, h.gains, h.offsets)], axis=1).astype(np.float32)
            if np.isnan(y).any():  # inf clips to full scale below; NaN has no level to give
                raise AlatFormatError("the file's latents decode to NaN samples (far outside the model's range)")
            pos += len(y)
            y = y[max(0, len(y) - pos) : max(0, len(y) - max(0, pos - length))]
        if resampler is not None:
            y = resampler.resample_chunk(y, last=last)
        if last and len(y) < frames_out - written:
            y = np.concatenate([y, np.zeros((frames_out - written - len(y), h.channels), np.float32)])
        y = y[: frames_out - written]
        written += len(y)
        yield np.clip(y, -1.0, 1.0)


def _timed(blocks: Iterator[np.ndarray], timings: Timings, stage: str) -> Iterator[np.ndarray]:
    """``blocks``, with the time the consumer spends on each one counted as ``stage``."""
    for y in blocks:
        with timings.stage(stage):
            yield y
