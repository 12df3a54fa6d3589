"""``python -m finews.cli``: the ``finews`` command, for where the console
script is not on the PATH (the ``--every`` loop starts each run this way)."""

import sys

from finews.cli import main

sys.exit(main())
