"""``quaid misp-sync``: run quaid over MISP events and record the matches in MISP.

The work is done by the write-back library ``quaid_misp_sync`` (``misp_modules/writeback``),
which talks to quaid over HTTP and to MISP with PyMISP, so that it can also run on its own
next to a MISP instance. This module only mounts its options and entry point under
``quaid``. In a source checkout the library is found next to ``engine``; an installed quaid
needs ``quaid_misp_sync`` installed as a package (the command is left out otherwise).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

WRITEBACK = Path(__file__).resolve().parents[2] / "misp_modules" / "writeback"


def register(subparsers: argparse._SubParsersAction) -> None:
    cli = _writeback_cli()
    if cli is None:
        return
    parser = subparsers.add_parser(
        "misp-sync",
        help="send the pictures of MISP events to quaid and record the matches in MISP",
        description="For the picture attachments of the selected MISP events: register them in quaid, "
        "search them, and record accepted / to-review matches with pictures of other events as decision "
        "tags, image objects and 'similar' references, shared no wider than the narrower of the two events "
        "(default: your organisation only). Re-running changes nothing already recorded.",
    )
    cli.add_arguments(parser)
    parser.set_defaults(func=cli.run)


def _writeback_cli() -> ModuleType | None:
    try:
        return importlib.import_module("quaid_misp_sync.cli")
    except ImportError:
        if not (WRITEBACK / "quaid_misp_sync").is_dir():
            return None
        sys.path.insert(0, str(WRITEBACK))
        return importlib.import_module("quaid_misp_sync.cli")
