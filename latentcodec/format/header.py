"""The .alat header (spec/alat-format.md, "Header"): its fields, their checks, and their bytes. Plain numpy
and bytes; every problem is an :class:`AlatFormatError` naming what is wrong and where."""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import asdict, dataclass, field, replace
from typing import BinaryIO

import numpy as np

from latentcodec.audio.mel import AUDIOLDM_MEL, MelConfig
from latentcodec.errors import AlatFormatError
from latentcodec.format.quantize import BITS, payload_size, stats_size
from latentcodec.format.transform_coder import PARAM_BYTES

MAGIC = b"\x89ALAT\r\n\x1a"
FORMAT_VERSION = 3  # the newest; a writer writes version 1 for --bits, version 3 for the entropy coder
VERSIONS = (1, 2, 3)
QUANT_FLOAT16, QUANT_MINMAX, QUANT_TRANSFORM = 0, 1, 2
MAX_STEP = 65504.0  # the float16 range: a larger step could not code any latent value but 0
RECORD_MAGIC = b"ALCK"
INDEX_MAGIC = b"ALIX"
END_MAGIC = b"ALND"

_PREAMBLE = struct.Struct("<8sHI")  # magic, version, header body length
_FIXED = struct.Struct("<IIHHQQQIIHHHHfffBBHHHBBbBI")
RECORD = struct.Struct("<4sIHBBI")  # magic, chunk, channel, flags, reserved, payload length
TRAILER = struct.Struct("<QI4s")  # index offset, its CRC32, end magic
CRC = struct.Struct("<I")
MAX_HEADER = 1 << 16
MAX_CHANNELS = 64
MAX_LATENT_CHANNELS = 64
OLD_CONTEXT = 32  # the context latentcodec 0.2.0 and earlier wrote whatever the chunk: decoders use min(X, F)
MAX_CHUNK_FRAMES = 60000  # 600 s at hop 160: the encoder's longest chunk
MAX_MEL_BANDS = 256
MAX_VALUES = 1 << 21  # latent values a record may hold: 8 x 15000 x 16 (a 600 s chunk) fits
FLAG_ZSTD = 1
FLAG_MONO_DOWNMIX = 1


def stored_mel(m: MelConfig) -> MelConfig:
    """``m`` as a header stores it: its frequencies and floor rounded to float32."""
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    return replace(m, fmin=f32(m.fmin), fmax=f32(m.fmax), log_floor=f32(m.log_floor))


@dataclass
class Header:
    """Everything decoding needs, as stored in the header (spec: "Header")."""

    channels: int
    num_samples: int
    original_rate: int
    original_channels: int
    original_frames: int
    input_size: int
    model_name: str
    model_fingerprint: bytes
    offsets: list[float]
    gains: list[float]
    bits: int = 4
    zstd_level: int = 0
    mono_downmix: bool = False
    chunk_frames: int = 500
    context_frames: int = 32
    mel: MelConfig = AUDIOLDM_MEL
    latent_channels: int = 8
    tool_version: str = field(default_factory=lambda: _tool_version())
    steps: list[float] | None = None  # version 2: quantizer step per transform component (bits is then 0)
    transform: list[list[float]] | None = None  # version 2: L x L matrix K, component = K @ latent channels
    coder_version: int = FORMAT_VERSION  # with ``steps``: 2 (every record a whole chunk) or 3 (the last one short)

    def __post_init__(self) -> None:
        """Hold float fields as the float32 values the file stores, so a header equals its reading."""
        f32 = lambda v: float(np.float32(v))  # noqa: E731
        self.mel = stored_mel(self.mel)
        self.offsets, self.gains = [f32(v) for v in self.offsets], [f32(v) for v in self.gains]
        if self.steps is not None:
            self.bits = 0
            self.steps = [f32(v) for v in self.steps]
            k = np.eye(self.latent_channels) if self.transform is None else np.asarray(self.transform)
            self.transform = k.astype(np.float16).astype(np.float64).tolist()

    def problem(self) -> str | None:
        """The first rule of spec/alat-format.md's header that these fields break, or None; in that order
        so that no check divides by or allocates from a field an earlier one has not bounded."""
        return _shape_problem(self) or _signal_problem(self) or _coder_problem(self)

    @property
    def version(self) -> int:
        """1: min/max quantizer (``bits``), optional zstd; 2 and 3: transform coder with ANS (``steps``), in 3
        the last chunk's records holding only the latent frames that cover audio."""
        return 1 if self.steps is None else self.coder_version

    def record_shape(self, chunk: int) -> tuple[int, int, int]:
        """(channels, time, mel) of chunk ``chunk``'s records: the chunk's latent shape, except in version 3
        for the last chunk, ceil(R / 4) frames for the R mel frames of the file that fall in it."""
        lc, lt, lm = self.latent_shape
        if self.version < 3 or chunk != self.num_chunks - 1:
            return lc, lt, lm
        rest = self.num_samples // self.mel.hop + 1 - chunk * self.chunk_frames
        return lc, min(lt, -(-rest // 4)), lm

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(channels, time, mel) of one chunk's latent."""
        return self.latent_channels, self.chunk_frames // 4, self.mel.n_mels // 4

    @property
    def num_chunks(self) -> int:
        return max(1, math.ceil(self.num_samples / (self.chunk_frames * self.mel.hop)))

    @property
    def num_records(self) -> int:
        return self.num_chunks * self.channels

    @property
    def values(self) -> int:
        """Latent values per record, V."""
        return int(np.prod(self.latent_shape))

    @property
    def raw_payload_size(self) -> int:
        """Version 1: the payload's size before zstd."""
        return payload_size(self.values, self.bits)

    @property
    def max_payload_size(self) -> int:
        """Version 2: the most bytes a record's ANS words can take (56 bits a value, two words of state)."""
        return 4 * (-(-7 * self.values // 4) + 2)

    @property
    def stats_size(self) -> int:
        return stats_size(self.latent_channels, self.bits) if self.version == 1 else PARAM_BYTES * self.latent_channels

    @property
    def duration(self) -> float:
        return self.num_samples / self.mel.sample_rate

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model_fingerprint"] = self.model_fingerprint.hex()
        d.update(
            format_version=self.version,
            num_chunks=self.num_chunks,
            latent_shape=list(self.latent_shape),
            last_chunk_frames=self.record_shape(self.num_chunks - 1)[1],
            latent_axes="channels,time,mel",
            duration_s=self.duration,
        )
        return d

    @property
    def quantizer(self) -> int:
        if self.version >= 2:
            return QUANT_TRANSFORM
        return QUANT_FLOAT16 if self.bits == 16 else QUANT_MINMAX

    def encode(self) -> bytes:
        """The header's bytes: preamble, body and CRC32."""
        name, tool = self.model_name.encode(), self.tool_version.encode()
        if len(self.model_fingerprint) != 32:
            raise ValueError("model fingerprint must be 32 bytes")
        lc, lt, lm = self.latent_shape
        m = self.mel
        body = _FIXED.pack(
            m.sample_rate,
            self.original_rate,
            self.channels,
            self.original_channels,
            self.num_samples,
            self.original_frames,
            self.input_size,
            self.chunk_frames,
            self.context_frames,
            m.n_fft,
            m.hop,
            m.win,
            m.n_mels,
            m.fmin,
            m.fmax,
            m.log_floor,
            0,
            0,
            lc,
            lt,
            lm,
            self.bits,
            self.quantizer,
            self.zstd_level,
            FLAG_MONO_DOWNMIX if self.mono_downmix else 0,
            self.num_chunks,
        )
        body += b"".join(struct.pack("<ff", o, g) for o, g in zip(self.offsets, self.gains))
        body += self.model_fingerprint + struct.pack("<H", len(name)) + name + struct.pack("<H", len(tool)) + tool
        if self.version >= 2:
            body += np.asarray(self.steps, "<f4").tobytes() + np.asarray(self.transform, "<f2").tobytes()
        head = _PREAMBLE.pack(MAGIC, self.version, len(body)) + body
        return head + CRC.pack(zlib.crc32(head))


def _tool_version() -> str:
    from latentcodec import __version__

    return f"latentcodec {__version__}"


MIN_HEADER = _FIXED.size  # H: the fixed fields; the per-channel numbers and the strings come after them


def parse_header(f: BinaryIO, file_size: int, where: str) -> tuple[Header, int]:
    """Read and check the header at the start of ``f``; returns it and the offset after it. The order is the
    spec's ("Header checks"): nothing is read from the body before H is known to hold the fixed fields and
    to lie within the file, and the CRC holds."""
    pre = f.read(_PREAMBLE.size)
    if len(pre) < 8 or pre[:8] != MAGIC:
        if len(pre) < 8 and MAGIC.startswith(pre):
            raise AlatFormatError(f"{where}: truncated: the file ends inside the magic bytes ({file_size} bytes)")
        raise AlatFormatError(f"{where}: not a .alat file (bad magic bytes at offset 0)")
    if len(pre) < _PREAMBLE.size:
        raise AlatFormatError(f"{where}: truncated: the file ends inside the header (at byte {file_size})")
    _, version, body_len = _PREAMBLE.unpack(pre)
    if version not in VERSIONS:
        raise AlatFormatError(
            f"{where}: .alat format version {version} is not supported (this reader knows versions "
            f"{', '.join(map(str, VERSIONS))}); use a latentcodec that reads it"
        )
    end = _PREAMBLE.size + body_len + CRC.size
    if body_len < MIN_HEADER or body_len > MAX_HEADER:
        raise AlatFormatError(
            f"{where}: header length {body_len} at offset 10 is impossible ({MIN_HEADER} to {MAX_HEADER})"
        )
    if end > file_size:
        raise AlatFormatError(f"{where}: truncated: the header needs {end} bytes, the file has {file_size}")
    body = f.read(body_len)
    (crc,) = CRC.unpack(f.read(CRC.size))
    if zlib.crc32(pre + body) != crc:
        raise AlatFormatError(f"{where}: header CRC mismatch (bytes 0..{end - 1}): the header is damaged")
    try:
        return _header_fields(body, version), end
    except _FieldError as e:
        raise AlatFormatError(f"{where}: {e}") from None


class _FieldError(ValueError):
    """A header field that breaks its rule; the message names the field."""


def _string(body: bytes, pos: int, what: str) -> tuple[str, int]:
    """The u16-length-prefixed UTF-8 string at ``pos`` (both inside the body), and the offset after it."""
    if pos + 2 > len(body):
        raise _FieldError(f"malformed header fields: the {what} length at body offset {pos} lies past the body")
    (n,) = struct.unpack_from("<H", body, pos)
    if pos + 2 + n > len(body):
        raise _FieldError(f"malformed header fields: the {what} ({n} bytes) runs past the body")
    try:
        return body[pos + 2 : pos + 2 + n].decode(), pos + 2 + n
    except UnicodeDecodeError:
        raise _FieldError(f"malformed header fields: the {what} is not UTF-8") from None


def _coder_block(body: bytes, pos: int, lc: int) -> tuple[list[float], list[list[float]], int]:
    """Version 2's steps (L x f32) and transform (L x L f16, row-major) at ``pos``; and the end."""
    if not 1 <= lc <= MAX_LATENT_CHANNELS:
        raise _FieldError(f"header is inconsistent: {lc} latent channels (1..{MAX_LATENT_CHANNELS})")
    end = pos + 4 * lc + 2 * lc * lc
    if end > len(body):
        raise _FieldError("header length does not match its fields: the coder block runs past the body")
    steps = np.frombuffer(body, "<f4", lc, pos).astype(np.float64)
    k = np.frombuffer(body, "<f2", lc * lc, pos + 4 * lc).astype(np.float64).reshape(lc, lc)
    return steps.tolist(), k.tolist(), end


_FIXED_FIELDS = (
    "sr orig_sr ch orig_ch n orig_n in_size chunk ctx n_fft hop win n_mels fmin fmax floor mel_kind axes lc lt lm "
    "bits quant zlevel flags n_chunks"
).split()  # _FIXED's fields, in order


def _header_fields(body: bytes, version: int) -> Header:
    """The header of a body whose length H >= MIN_HEADER and CRC are checked: the layout (C, the strings, L
    and the coder block, each inside H, then H equal to their end), then every field rule in the spec's order."""
    f = dict(zip(_FIXED_FIELDS, _FIXED.unpack_from(body)))
    ch, lc = f["ch"], f["lc"]
    if not 1 <= ch <= MAX_CHANNELS:
        raise _FieldError(f"header is inconsistent: {ch} channels (1..{MAX_CHANNELS} allowed)")
    pos = _FIXED.size + 8 * ch + 32
    if pos > len(body):
        raise _FieldError(
            f"header length does not match its fields: {ch} channels' numbers and the fingerprint run past the body"
        )
    norm = [struct.unpack_from("<ff", body, _FIXED.size + 8 * i) for i in range(ch)]
    fp = body[pos - 32 : pos]
    name, pos = _string(body, pos, "model name")
    tool, pos = _string(body, pos, "tool version")
    steps, transform, pos = _coder_block(body, pos, lc) if version >= 2 else (None, None, pos)
    if pos != len(body):
        raise _FieldError(f"header length does not match its fields: they end at {pos}, the body at {len(body)}")
    problem = _stored_problem(f, version)
    if problem is None:
        h = Header(
            channels=ch,
            num_samples=f["n"],
            original_rate=f["orig_sr"],
            original_channels=f["orig_ch"],
            original_frames=f["orig_n"],
            input_size=f["in_size"],
            model_name=name,
            model_fingerprint=fp,
            offsets=[o for o, _ in norm],
            gains=[g for _, g in norm],
            bits=f["bits"],
            zstd_level=f["zlevel"],
            mono_downmix=bool(f["flags"] & FLAG_MONO_DOWNMIX),
            chunk_frames=f["chunk"],
            context_frames=f["ctx"],
            latent_channels=lc,
            tool_version=tool,
            mel=MelConfig(*(f[k] for k in ("sr", "n_fft", "hop", "win", "n_mels", "fmin", "fmax", "floor"))),
            steps=steps,
            transform=transform,
            coder_version=version if version >= 2 else FORMAT_VERSION,
        )
        problem = h.problem() or _count_problem(h, f, version)
    if problem:
        raise _FieldError(f"header is inconsistent: {problem}")
    return h


def _stored_problem(f: dict, version: int) -> str | None:
    """The first stored field (fixed by the format, not free) that ``f`` breaks."""
    lc, lt, lm, chunk, n_mels = f["lc"], f["lt"], f["lm"], f["chunk"], f["n_mels"]
    stored = [
        ((lt, lm) != (chunk // 4, n_mels // 4), f"latent shape {lc}x{lt}x{lm} for {chunk} x {n_mels} mel"),
        (f["mel_kind"] != 0, f"mel kind {f['mel_kind']}"),
        (f["axes"] != 0, f"latent axis order {f['axes']}"),
        (version >= 2 and f["bits"] != 0, f"bits per value {f['bits']} (versions 2 and 3 store 0)"),
        (f["flags"] & ~FLAG_MONO_DOWNMIX, f"flags {f['flags']:#x}"),
    ]
    return next((what for bad, what in stored if bad), None)


def _count_problem(h: Header, f: dict, version: int) -> str | None:
    """The quantizer id and the chunk count, each as the other fields imply it."""
    if f["quant"] != h.quantizer:
        return f"quantizer {f['quant']} (version {version} at {f['bits']} bits stores {h.quantizer})"
    if f["n_chunks"] != h.num_chunks:
        return f"chunk count {f['n_chunks']}, not the {h.num_chunks} that cover {f['n']} samples"
    return None


def _shape_problem(h: Header) -> str | None:
    """The first rule of the latent's shape and the chunking that ``h`` breaks (spec: "Bounds")."""
    m, f, x, lc = h.mel, h.chunk_frames, h.context_frames, h.latent_channels
    if h.num_samples < 1:
        return f"sample count {h.num_samples}"
    if not 4 <= f <= MAX_CHUNK_FRAMES or f % 4:
        return f"chunk length {f} frames (a multiple of 4 from 4 to {MAX_CHUNK_FRAMES})"
    if x % 4 or x > max(f, OLD_CONTEXT):
        return f"context {x} frames for chunks of {f} (a multiple of 4, at most the chunk length or {OLD_CONTEXT})"
    if not 4 <= m.n_mels <= MAX_MEL_BANDS or m.n_mels % 4:
        return f"{m.n_mels} mel bands (a multiple of 4 from 4 to {MAX_MEL_BANDS})"
    if not 1 <= lc <= MAX_LATENT_CHANNELS or h.values > MAX_VALUES:
        return (
            f"latent shape {lc}x{f // 4}x{m.n_mels // 4} (1..{MAX_LATENT_CHANNELS} channels, "
            f"at most {MAX_VALUES} values)"
        )
    return None


def _signal_problem(h: Header) -> str | None:
    """The first rule of the signal and mel numbers that ``h`` breaks."""
    m = h.mel
    if m.sample_rate < 1 or h.original_rate < 1:
        return f"sample rate {m.sample_rate} / original rate {h.original_rate}"
    if m.win != m.n_fft or m.n_fft % 2 or not 2 <= m.n_fft or not 1 <= m.hop <= m.n_fft:
        return f"window {m.win}, n_fft {m.n_fft}, hop {m.hop} (window = n_fft, even; 1 <= hop <= n_fft)"
    for c, (o, g) in enumerate(zip(h.offsets, h.gains)):
        if not (math.isfinite(o) and math.isfinite(g) and g > 0):
            return f"channel {c}'s offset {o:g} / gain {g:g} (finite, gain > 0)"
    if not np.isfinite([m.fmin, m.fmax, m.log_floor]).all():
        return f"mel range {m.fmin:g}..{m.fmax:g} Hz, log floor {m.log_floor:g} (finite)"
    if not 0 <= m.fmin < m.fmax <= m.sample_rate / 2 or not 0 < m.log_floor < 1:
        return f"mel range {m.fmin:g}..{m.fmax:g} Hz at {m.sample_rate} Hz, log floor {m.log_floor:g}"
    return None


def _coder_problem(h: Header) -> str | None:
    """The first rule of the quantizer settings that ``h`` breaks, naming the field."""
    if h.version == 1 and h.bits not in BITS:
        return f"bits per value {h.bits} (one of {', '.join(map(str, sorted(BITS)))})"
    if not 0 <= h.zstd_level <= (22 if h.version == 1 else 0):
        return f"zstd level {h.zstd_level} ({'0 to 22' if h.version == 1 else 'versions 2 and 3 store 0'})"
    if h.version >= 2:
        assert h.steps is not None and h.transform is not None, "version 2 and 3 hold steps (and __post_init__ a K)"
        bad = [c for c, v in enumerate(h.steps) if not 0 < v <= MAX_STEP]
        if bad:
            return f"step {h.steps[bad[0]]:g} of component {bad[0]} (finite, 0 < step <= {MAX_STEP:g})"
        if not np.isfinite(h.transform).all():
            row, i = np.argwhere(~np.isfinite(h.transform))[0]
            return f"transform entry KLT[{row}][{i}] is not finite"
    if h.mono_downmix and h.channels != 1:
        return f"mono downmix flag with {h.channels} channels"
    return None


def writable_problem(h: Header) -> str | None:
    """Why the reader would refuse ``h`` as written, or None: its bytes run through the reader's own checks
    and read back to the same bytes, so a writer never writes a header its reader refuses."""
    try:
        data = h.encode()
        back, _ = parse_header(io.BytesIO(data), len(data), "header")
    except (struct.error, ValueError, UnicodeEncodeError) as e:  # a field its bytes cannot hold
        return f"a field does not fit the header ({e})"
    except AlatFormatError as e:
        return str(e).removeprefix("header: ")
    if h.context_frames > h.chunk_frames:  # read for files of 0.2.0 and earlier; written no more
        return f"header is inconsistent: context {h.context_frames} frames for chunks of {h.chunk_frames}"
    return None if back.encode() == data else "its fields do not read back as written"


def fixed_size(h: Header) -> int:
    """Bytes of a file that do not depend on the payloads: header, record framing and stats, index, end marker."""
    return (
        len(h.encode())
        + h.num_records * (RECORD.size + h.stats_size + CRC.size)
        + 8
        + 8 * h.num_records
        + CRC.size
        + TRAILER.size
    )
