"""``quaid-ail-start``: start the QuaidImages module in AIL's running ``Script_AIL`` screen session.

Why not a line in AIL's ``bin/LAUNCH.sh``: that file is tracked by AIL's git, and AIL's
``bin/Update.py`` refuses to update while a tracked file outside ``configs/`` is modified.
AIL has no list of extra modules to start, so this command opens the module's window the way
``LAUNCH.sh`` opens every module's (``screen -S Script_AIL -X screen -t <name> bash -c
"cd $AIL_BIN/modules; <AIL's python> <module>; read x"``). The window belongs to AIL's
session: ``LAUNCH.sh -k`` stops it with the other modules; after ``LAUNCH.sh -l`` run this
command again.

Run it with AIL's virtualenv active (``. $AIL_HOME/AILENV/bin/activate``), which sets
``AIL_HOME`` and ``AIL_BIN``; the module runs with the interpreter that runs this command.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Sequence

SESSION = "Script_AIL"  # LAUNCH.sh's screen session for modules
WINDOW = "QuaidImages"
MODULE = "ail_connector.ail_module.QuaidImages"


def window_command(ail_bin: str, python: str) -> list[str]:
    """The screen command that opens the module's window, as LAUNCH.sh opens CodeReader's."""
    script = "cd {}; {} -m {}; read x".format(
        shlex.quote(os.path.join(ail_bin, "modules")), shlex.quote(python), MODULE)
    return ["screen", "-S", SESSION, "-X", "screen", "-t", WINDOW, "bash", "-c", script]


def session_running() -> bool:
    """Whether AIL's module session exists (``screen -ls`` lists ``<pid>.Script_AIL``)."""
    try:
        listing = subprocess.run(["screen", "-ls"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    names = [line.split()[0] for line in listing.splitlines() if line.strip()[:1].isdigit()]
    return any(name.endswith("." + SESSION) for name in names)


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    if not env.get("AIL_HOME") or not env.get("AIL_BIN"):
        print("quaid-ail-start: AIL_HOME and AIL_BIN are not set: activate AIL's virtualenv first "
              "(. $AIL_HOME/AILENV/bin/activate)", file=sys.stderr)
        return 2
    if not session_running():
        print(f"quaid-ail-start: AIL's modules are not running (no screen session {SESSION}): start AIL with "
              "$AIL_BIN/LAUNCH.sh -l, then run this again", file=sys.stderr)
        return 1
    done = subprocess.run(window_command(env["AIL_BIN"], sys.executable))
    if done.returncode != 0:
        print(f"quaid-ail-start: screen could not open the {WINDOW} window (exit {done.returncode})",
              file=sys.stderr)
        return 1
    print(f"quaid-ail-start: {WINDOW} started in screen session {SESSION} (screen -r {SESSION} to watch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
