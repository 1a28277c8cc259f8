"""Writes the format test vector of a version. Run only when a new format version is made:

    python -m tests.vectors.make_vectors VERSION

A format change without a version bump makes tests/test_container.py fail; a change with one needs a new
vector (keep the old ones: readers of older versions are tested against them too). Version 2's vector
also pins the integer codes (v2_codes.npy), which any decoder must reproduce bit for bit.
"""
import sys
from pathlib import Path

import numpy as np

from latentcodec.format.container import AlatReader, write_bytes
from tests.vectors.vector_spec import vector_header, vector_latents

here = Path(__file__).parent
version = int(sys.argv[1])
h = vector_header(version)
data = write_bytes(h, vector_latents(h))
path = here / f"v{version}.alat"
path.write_bytes(data)
with AlatReader(path) as r:
    np.save(here / f"v{version}_expected.npy", np.stack([lat for _, _, lat in r]))
    if version == 2:
        np.save(here / "v2_codes.npy", np.stack([r.codes(*divmod(i, h.channels)) for i in range(h.num_records)]))
print(path, len(data), "bytes")
