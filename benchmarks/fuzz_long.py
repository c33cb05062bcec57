"""The fuzz tests, run long: many more examples and a fresh random seed each run.

CI runs ``tests/test_fuzz_decode.py`` and ``tests/test_fuzz_connectors.py`` with a few dozen
derandomized examples per test; this runs the same properties with ``--examples`` each (default
2000) from a new seed, so each run explores inputs CI never saw. A failure prints the falsifying
example and the seed to replay it (``QUAID_FUZZ_SEED`` is only a switch to randomness; Hypothesis
prints ``@reproduce_failure`` for the exact case).

    .venv/bin/python benchmarks/fuzz_long.py [--examples 2000] [-k decode]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ["tests/test_fuzz_decode.py", "tests/test_fuzz_connectors.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="examples per property (2000)")
    parser.add_argument("-k", dest="select", default=None, help="pytest -k expression")
    args = parser.parse_args()
    env = {**os.environ, "QUAID_FUZZ_EXAMPLES": str(args.examples), "QUAID_FUZZ_SEED": "random"}
    command = [sys.executable, "-m", "pytest", *FILES, "-v", "-p", "no:cacheprovider",
               "--hypothesis-show-statistics", "--hypothesis-seed", str(int.from_bytes(os.urandom(4), "big"))]
    if args.select:
        command += ["-k", args.select]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
