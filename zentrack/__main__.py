"""``python -m zentrack``: the same command line as ``zentrack``.

``python -m`` puts the current folder first on ``sys.path``: it is moved to
the end before anything else is imported, so a file there (``json.py``,
``sqlite3.py``) cannot shadow a module zentrack imports (see
:func:`zentrack.cli.use_current_folder`).
"""

import os
import sys

_here = os.getcwd()
sys.path[:] = [p for p in sys.path if p not in ("", _here)] + [_here]

from zentrack.cli import main  # noqa: E402  (after the path fix, on purpose)

sys.exit(main())
