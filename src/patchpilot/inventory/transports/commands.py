"""The fixed, read-only commands the SSH transport runs on a target.

Kept apart from parsing (as Vuls keeps its command strings apart from its parsers): this
module only says *what* is run; ``transports.ssh`` runs it and hands the text to the pure
parsers of ``inventory.sources``.  Every command only reads: no package-manager refresh,
no write, no network.  Nothing here is built from user input, so nothing can be injected.
"""

from __future__ import annotations

import shlex

from patchpilot.inventory.sources.rpm import RPM_QUERYFORMAT

PROBE = (
    # One round trip tells which tools and databases exist, so that only the commands
    # that can succeed are run.  `hostname` is missing from some minimal images.
    'echo "hostname=$(hostname 2>/dev/null || uname -n)"; '
    'echo "kernel=$(uname -r)"; '
    "command -v nice >/dev/null 2>&1 && echo nice=yes; "
    "command -v ionice >/dev/null 2>&1 && echo ionice=yes; "
    "test -f /var/lib/dpkg/status && echo dpkg=yes; "
    "command -v rpm >/dev/null 2>&1 && { test -d /var/lib/rpm || "
    "test -d /usr/lib/sysimage/rpm; } && echo rpm=yes; "
    "test -f /lib/apk/db/installed && echo apk=yes; "
    "true"
)
"""Prints ``key=value`` lines: hostname, kernel, and ``<tool or database>=yes``."""

SUDO_CHECK = "sudo -n true"
"""Whether sudo runs without a password (``-n``: fail instead of prompting)."""

OS_RELEASE = "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release"
MACHINE_ID = "cat /etc/machine-id 2>/dev/null || cat /var/lib/dbus/machine-id"
DPKG_STATUS = "cat /var/lib/dpkg/status"
RPM_QA = "rpm -qa --queryformat " + shlex.quote(RPM_QUERYFORMAT)
APK_INSTALLED = "cat /lib/apk/db/installed"
BOOT_LIST = "ls -1 /boot"

# Where a distribution's own Python keeps its distributions (Debian's dist-packages, the
# others' site-packages).  Virtualenvs are not searched: finding them means walking disks.
_SITE_GLOBS = (
    "/usr/lib/python3/dist-packages",
    "/usr/lib/python3*/site-packages",
    "/usr/lib64/python3*/site-packages",
    "/usr/local/lib/python3*/dist-packages",
    "/usr/local/lib/python3*/site-packages",
)
METADATA_MARK = "==> "
"""Starts the line naming each METADATA file in ``PYTHON_METADATA``'s output."""

PYTHON_METADATA = (
    "for f in "
    + " ".join(f"{d}/*.dist-info/METADATA {d}/*.egg-info/PKG-INFO {d}/*.egg-info"
               for d in _SITE_GLOBS)
    # A glob that matches nothing stays literal and fails `test -f`; an egg-info that is a
    # directory fails it too (its PKG-INFO is listed on its own).  sed quits at the first
    # blank line, so only the headers are read, never a long description.
    + f"; do test -f \"$f\" || continue; echo \"{METADATA_MARK}$f\"; "
    "sed -n '/^[[:space:]]*$/q;p' \"$f\"; done; true"
)
"""Prints, for each system dist-info/egg-info, a ``==> PATH`` line and its headers."""


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
