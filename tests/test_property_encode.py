"""The writer never writes what its reader refuses (issue 40): over every encode option (coder, bit depth,
quality or rate, chunk length, mono, input rate, channels, durations from one sample to a few chunks),
``encode`` either refuses before any work, naming the argument, and writes nothing, or writes a file that
the reader reads whole, `alat info` shows and ``decode`` decodes to the input's length."""
from __future__ import annotations

import pytest
import math
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import latentcodec
from latentcodec.cli import main
from latentcodec.constants import BITS
from latentcodec.errors import LatentCodecError
from latentcodec.format.container import AlatReader
from tests.conftest import tone

pytestmark = pytest.mark.slow  # out of the quick loop: pytest -m "not slow"

# what a refusal may name: the argument to change (each the CLI maps to its flag)
PARAMS = {"bits", "zstd_level", "quality", "kbps", "chunk_seconds", "mono"}
RATES = [1, 8000, 11025, 16000, 22050, 44100, 48000, 96000, 192000, 384000]
CHUNKS = [0.0, 0.02, 0.04, 0.08, 0.16, 0.3, 0.32, 0.5, 1.0, 5.0, 600.0, 600.5, math.nan, math.inf, -1.0]


@st.composite
def options(draw: st.DrawFn) -> dict:
    """One encode call's options, some outside their ranges; durations in chunks, capped at a few seconds."""
    coder = draw(st.sampled_from(["quality", "kbps", "bits", "default", "bits+quality"]))
    opts: dict = {}
    if coder.startswith("bits"):
        opts["bits"] = draw(st.sampled_from(list(BITS) + [0, 1, 7, 9, 17]))
        opts["zstd_level"] = draw(st.sampled_from([None, 0, 3, 22, 23, -1]))
    if coder.endswith("quality"):
        opts["quality"] = draw(st.sampled_from([0.0, 1.0, 4.0, 7.5, 10.0, -1.0, 11.0, math.nan]))
    if coder == "kbps":
        opts["kbps"] = draw(st.sampled_from([0.1, 0.5, 3.0, 10.0, 64.0, 1000.0, 0.0, math.nan]))
    chunk = draw(st.sampled_from(CHUNKS) | st.floats(0.04, 3.0, allow_subnormal=False))
    opts["chunk_seconds"] = chunk
    rate = draw(st.sampled_from(RATES))
    span = chunk if 0 < chunk <= 3.0 else 1.0
    seconds = draw(st.sampled_from([0.0, 0.5, 1.0, 2.5]) | st.floats(0.0, 3.0, allow_subnormal=False)) * span
    frames = max(1, min(int(seconds * rate), 4 * rate, 200_000))
    return dict(opts, rate=rate, frames=frames, channels=draw(st.sampled_from([1, 2, 3])), mono=draw(st.booleans()))


def _check(case: dict, model: str, folder: Path) -> None:
    out = folder / "x.alat"
    x = tone(case["frames"] / case["rate"] + 1e-9, case["rate"], case["channels"])[:case["frames"]]
    opts = {k: v for k, v in case.items() if k not in ("rate", "frames", "channels")}
    try:
        latentcodec.encode(x, case["rate"], out, model=model, **opts)
    except LatentCodecError as e:  # refused: before any work, naming the argument, nothing written
        assert e.param in PARAMS, (case, e, e.param)
        assert "--" not in str(e), (case, e)  # the library names values, the CLI its own flags
        assert not out.exists()
        return
    with AlatReader(out) as r:
        h = r.header
        assert sum(1 for _ in r) == h.num_records
    assert h.channels == (1 if case["mono"] else case["channels"])
    assert main(["info", str(out)]) == 0
    y, rate = latentcodec.decode(out, model=model, vocoder="griffinlim", gl_iters=1, always_2d=True)
    assert rate == 16000 and y.shape == (h.num_samples, h.channels) and np.isfinite(y).all()


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(case=options())
def test_every_option_combination_is_refused_or_decodes(case: dict, tiny_model: str) -> None:
    with TemporaryDirectory() as folder:
        _check(case, tiny_model, Path(folder))
