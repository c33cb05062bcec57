"""``python -m quaid_misp_sync``: see :mod:`quaid_misp_sync.cli`."""

import sys

from quaid_misp_sync.cli import main

sys.exit(main())
