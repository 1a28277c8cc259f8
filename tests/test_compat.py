"""Every file ever written keeps decoding: a file written by latentcodec 0.1.0 (commit 1d44e95, model
latentcodec-small, version 1, 4 bits, the first 3.5 s of the shipped example) decodes through today's CLI
to the samples 0.1.0 itself decoded, whatever model is the default now."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from latentcodec.cli import main
from latentcodec.container import AlatReader

VECTORS = Path(__file__).resolve().parent / "vectors"


def test_file_of_0_1_0_decodes_as_it_did(tmp_path) -> None:
    source = VECTORS / "v0.1.0_small.alat"
    with AlatReader(source) as r:
        assert (r.header.model_name, r.header.version, r.header.tool_version) == \
            ("latentcodec-small", 1, "latentcodec 0.1.0")
    assert main(["decode", str(source), str(tmp_path / "now.wav"), "--quiet"]) == 0
    now, rate = sf.read(tmp_path / "now.wav", dtype="int16")
    then, rate_then = sf.read(VECTORS / "v0.1.0_small_decoded.flac", dtype="int16")
    assert rate == rate_then and now.shape == then.shape == (56000,)
    assert np.abs(now.astype(np.int32) - then).max() <= 2  # bit-exact here; BLAS rounding may differ elsewhere
