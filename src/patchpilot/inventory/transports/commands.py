"""The SSH transport's own commands: the probe, the sudo check and the gentle wrapper.

What is collected is named in ``inventory.host.commands`` (shared with the local host);
this module only says how the SSH host runs it.  Every command only reads: no write, no
network.  Paths are quoted with ``shlex.quote``; nothing else is built from input.
"""

from __future__ import annotations

import shlex

PROBE = (
    # One round trip tells whether the gentle wrappers exist, so that only commands that
    # can succeed are run.  It runs as is (not under sudo, nice or ionice).
    "command -v nice >/dev/null 2>&1 && echo nice=yes; "
    "command -v ionice >/dev/null 2>&1 && echo ionice=yes; "
    "true"
)
"""Prints ``nice=yes`` / ``ionice=yes`` for the wrappers found."""

SUDO_CHECK = "sudo -n true"
"""Whether sudo runs without a password (``-n``: fail instead of prompting)."""

# Only when the probe fails (a POSIX shell always runs it to exit status 0): is this
# Windows?  ``uname`` failing and ``cmd /c ver`` answering "Microsoft Windows [Version
# 10.0.20348.3270]" says so, whichever shell (cmd.exe, PowerShell) OpenSSH starts.
UNAME = "uname"
WINDOWS_VER = "cmd /c ver"

# A batch is one command line; sshd hands it to the login shell as one argument, which
# Linux caps at 128 KiB (MAX_ARG_STRLEN).  Paths beyond this many bytes go in another batch.
BATCH_BYTES = 60_000


def wrap(command: str, *, nice: bool, ionice: bool, sudo: bool) -> str:
    """``command`` as run on the target: at the lowest CPU and I/O priority, maybe via sudo.

    ``nice -n 19`` and ``ionice -c3`` (idle class) keep a scan from slowing a production
    server; each is used only when the probe found it.  ``sudo -n`` never prompts.
    """
    argv: list[str] = []
    if sudo:
        argv += ["sudo", "-n"]
    if nice:
        argv += ["nice", "-n", "19"]
    if ionice:
        argv += ["ionice", "-c3"]
    if not argv:
        return command
    return " ".join(argv) + " sh -c " + shlex.quote(command)
