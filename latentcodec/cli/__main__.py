"""`python -m latentcodec.cli`: the `alat` command."""

import sys

from latentcodec.cli import main

sys.exit(main())
