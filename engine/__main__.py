"""``python -m engine`` runs the ``quaid`` command line."""

import sys

from engine.cli import main

sys.exit(main())
