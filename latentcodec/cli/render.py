"""What the commands print: the library returns data (dicts and result objects), these turn it into the
lines a person reads. Every name in them has gone through ``options.shown`` first."""

from __future__ import annotations

from typing import Any

LABELS = {"visqol": "ViSQOL", "pesq_wb": "PESQ-wb", "stoi": "STOI"}
DECIMALS = {
    "duration_s": 2,
    "channels": 0,
    "bytes": 0,
    "kbps": 3,
    "ratio_vs_pcm16_16k": 1,
    "snr_db": 2,
    "si_sdr_db": 2,
    "correlation": 4,
    "encode_x_realtime": 1,
    "decode_x_realtime": 1,
}  # the rest: 3


def coder_text(c: dict[str, Any]) -> str:
    """One phrase for ``info.coder_summary``'s dict, e.g. '4 bits, zstd 19' or 'entropy-coded, quality 4
    (step 0.4)'."""
    if c["format_version"] == 1:
        return f"{c['bits']} bits" + (f", zstd {c['zstd_level']}" if c["zstd_level"] else ", no zstd")
    return f"entropy-coded, quality {c['quality']:g} (step {c['step']:.4g})"


def _counts(d: dict) -> str:
    return ", ".join(f"{k} ({v})" for k, v in d.items()) or "none"


def collection_text(info: dict) -> str:
    """The lines `alat info` prints for ``info.collection_info``'s dict."""
    in_shards = f" in {info['shards']} shards" if info["shards"] else ""
    return "\n".join(
        [
            f"{info['path']}: {info['files']} .alat files{in_shards}, {info['hours_of_audio']:.3f} h of audio"
            + (f", {len(info['failures'])} unreadable" if info["failures"] else ""),
            f"  models    {_counts(info['models'])}",
            f"  versions  {_counts(info['format_versions'])}",
            f"  size      {info['alat_bytes']:,} bytes of .alat files, {info['kbps']:.2f} kbps; "
            f"{info['bytes_on_disk']:,} bytes on disk, {info['kbps_on_disk']:.2f} kbps",
        ]
    )


def _last_chunk_text(h: dict) -> str:
    """Version 3's short last chunk, in words; nothing when it holds a whole chunk."""
    frames = h["last_chunk_frames"]
    return "" if frames == h["latent_shape"][1] else f" (the last one {frames} frames, what covers the audio)"


def info_text(info: dict) -> str:
    """The lines `alat info` prints for ``info.file_info``'s dict."""
    h = info["header"]
    chunk_s = h["chunk_frames"] * h["mel"]["hop"] / h["mel"]["sample_rate"]
    return "\n".join(
        [
            f"{info['path']}: .alat version {h['format_version']}, written by {h['tool_version']}",
            f"  audio     {h['duration_s']:.3f} s, {h['channels']} ch coded at {h['mel']['sample_rate']} Hz "
            f"({h['num_samples']} samples); input {h['original_rate']} Hz, {h['original_channels']} ch"
            f"{', mixed to mono' if h['mono_downmix'] else ''}",
            f"  model     {h['model_name']} (fingerprint {h['model_fingerprint'][:16]}"
            f"{', shipped with this package' if info['model_shipped'] else ', not shipped: decode with --model DIR'})",
            f"  decodes   with {info['decodes_with']['vocoder']}, {_decoder_text(info['decodes_with'])}"
            + (
                "; in bfloat16 where native (--decoder-precision float32: as before)"
                if info["decodes_with"]["decoder_precision"] == "auto"
                else ""
            ),
            f"  latent    {'x'.join(map(str, h['latent_shape']))} ({h['latent_axes']}) per {chunk_s:g} s chunk, "
            f"{h['num_chunks']} chunks{_last_chunk_text(h)}; {info['coder_text']}",
            f"  size      {info['bytes']:,} bytes on disk ({info['payload_bytes']:,} payload, "
            f"{info['overhead_bytes']:,} header/stats/CRC/index), {info['kbps']:.2f} kbps",
            f"  ratios    {info['ratio_vs_pcm16_16k']:.1f}x vs 16-bit PCM at 16 kHz, "
            f"{info['ratio_vs_pcm16_original']:.1f}x vs 16-bit PCM at {h['original_rate']} Hz x "
            f"{h['original_channels']} ch, {info['ratio_vs_input_file']:.1f}x vs the input file",
            "  chunks    "
            + " ".join(str(r["bytes"]) for r in info["records"][:24])
            + (" ..." if len(info["records"]) > 24 else ""),
        ]
    )


def _decoder_text(paired: dict) -> str:
    """A pairing's VAE decoder and the others of its latent space (``info._pairing``), in words."""
    others = [n for n in paired["decoders"][1:] if n != paired["decoder"]]
    own = "its own" if paired["decoder"] == "own" else f"{paired['decoder']}'s (--decoder own: its own)"
    return f"decoder {own}" + (f"; also {', '.join(others)}'s" if others else "")


def models_text(data: dict) -> str:
    """The lines `alat models` prints for ``info.shipped_info``'s dict."""
    lines = ["models:"] + [
        f"  {v['name']}{' (default)' if v['default'] else ''}  fingerprint {v['fingerprint'][:16]}"
        f"  {v['bytes'] / 2**20:.1f} MiB  vocoder {v['vocoder']}, {_decoder_text(v)}"
        f"{' in bfloat16 where native' if v['decoder_precision'] == 'auto' else ''}  {v['summary']}"
        for v in data["models"]
    ]
    return "\n".join(lines + ["vocoders:"] + [f"  {v['name']}  {v['summary']}".rstrip() for v in data["vocoders"]])


def eval_text(r: dict) -> str:
    """The lines `alat eval` prints for one ``evaluate.evaluate`` result."""
    from latentcodec.evaluate import PERCEPTUAL

    stages = ", ".join(f"{k} {v:.3f}" for k, v in r["timings_s"].items())
    return "\n".join(
        [
            f"{r['input']}: {r['duration_s']:.2f} s x {r['channels']} ch, model {r['model']}, {r['coder_text']}, "
            f"{r['vocoder']}" + ("" if r["decoder"] == "own" else f", decoder {r['decoder']}"),
            f"  size      {r['bytes']:,} bytes, {r['kbps']:.2f} kbps; ratio {r['ratio_vs_pcm16_16k']:.1f}x vs 16 kHz "
            f"PCM, {r['ratio_vs_pcm16_original']:.1f}x vs original-rate PCM, {r['ratio_vs_input_file']:.1f}x vs "
            f"input file",
            f"  spectral  log-mel L1 {r['log_mel_l1_db']:.3f} dB, RMSE {r['log_mel_rmse_db']:.3f} dB; "
            f"MR-STFT {r['mrstft_db']:.3f} dB; VAE+quantizer alone (before vocoder): log-mel L1 "
            f"{r['latent_mel_l1_db']:.3f} dB",
            f"  waveform  SNR {r['snr_db']:.2f} dB, SI-SDR {r['si_sdr_db']:.2f} dB, correlation "
            f"{r['correlation']:.4f}, MSE {r['mse']:.3g}  (phase is invented by the vocoder: judge by the spectral "
            f"lines)",
            *(
                ["  heard     " + ", ".join(f"{LABELS[k]} {r[k]:.3f}" for k in PERCEPTUAL if k in r)]
                if any(k in r for k in PERCEPTUAL)
                else []
            ),
            f"  speed     encode {r['encode_x_realtime']:.1f}x, decode {r['decode_x_realtime']:.1f}x real time; "
            f"stages (s): {stages}",
        ]
    )


def rounded(row: dict[str, Any]) -> dict[str, Any]:
    """A row's figures at the decimals they are worth (a score to 3, bytes whole); a score a file has
    not got (PESQ-wb of music) stays empty."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, float):
            d = DECIMALS.get(k, 3)
            v = int(round(v)) if d == 0 else round(v, d)
        out[k] = v
    return out


def table_lines(rows: list[dict[str, Any]], means: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """Per-file rows then per-folder means, rounded, as aligned text columns with the means under a rule."""
    cells = [["file", *keys]] + [[r["file"], *(str(rounded(r).get(k, "")) for k in keys)] for r in rows]
    mean_cells = [
        [f"{g['folder']}/ (mean of {g['files']})", *(str(rounded(g).get(k, "")) for k in keys)] for g in means
    ]
    widths = [max(len(c[i]) for c in cells + mean_cells) for i in range(len(keys) + 1)]
    return [
        "  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip()
        for c in cells + [["-" * w for w in widths]] + mean_cells
    ]
