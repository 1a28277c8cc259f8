"""Writes the format test vector. Run only when the format version changes:

    python -m tests.vectors.make_vectors

A format change without a version bump makes tests/test_vector.py fail; a change with one needs a new
vector (keep the old ones: readers of older versions are tested against them too).
"""
from pathlib import Path

import numpy as np

from latentcodec.container import FORMAT_VERSION, AlatReader, write_bytes
from tests.vectors.vector_spec import vector_header, vector_latents

here = Path(__file__).parent
h = vector_header()
data = write_bytes(h, vector_latents(h))
path = here / f"v{FORMAT_VERSION}.alat"
path.write_bytes(data)
with AlatReader(path) as r:
    np.save(here / f"v{FORMAT_VERSION}_expected.npy", np.stack([lat for _, _, lat in r]))
print(path, len(data), "bytes")
