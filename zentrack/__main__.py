"""``python -m zentrack``: the same command line as ``zentrack``."""

import sys

from zentrack.cli import main

sys.exit(main())
