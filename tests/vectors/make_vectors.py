"""Writes the format test vector of a version. Run only when a new format version is made:

    python -m tests.vectors.make_vectors VERSION

A format change without a version bump makes tests/test_container.py fail; a change with one needs a new
vector (keep the old ones: readers of older versions are tested against them too). Versions 2 and 3 also
pin the integer codes (vN_codes.npy), which any decoder must reproduce bit for bit; version 3's records have
two shapes, so its .npy files hold every record flattened in raster order, in file order, concatenated.
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
    lats = [lat for _, _, lat in r]
    codes = [r.codes(*divmod(i, h.channels)) for i in range(h.num_records)] if version >= 2 else []
    if version == 3:  # records of two shapes: each flattened (raster order), in file order, concatenated
        lats, codes = [np.concatenate([z.reshape(-1) for z in lats])], [np.concatenate([c.reshape(-1) for c in codes])]
    np.save(here / f"v{version}_expected.npy", np.stack(lats) if version < 3 else lats[0])
    if codes:
        np.save(here / f"v{version}_codes.npy", np.stack(codes) if version < 3 else codes[0])
print(path, len(data), "bytes")
