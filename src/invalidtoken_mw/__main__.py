"""``python -m invalidtoken_mw``: the same as the ``invalidtoken-mw`` command."""

import sys

from invalidtoken_mw.cli import main

sys.exit(main())
