"""What ``inventory.collect`` reads and runs on a host: file paths and read-only commands.

Kept apart from parsing (as Vuls keeps its command strings apart from its parsers): this
module only says *what* is read or run; the host (local or SSH) fetches it and the pure
parsers of ``inventory.host`` and ``inventory.sources`` read the text.  Every command only
reads: no package-manager refresh, no write, no network (``apt-get changelog`` is the one
exception, run only when asked).  Commands are argv tuples; the shell scripts take the
paths they work on as arguments (``sh -c SCRIPT sh ARG…``), so nothing a host or a user
supplies is ever spliced into script text.

Each script's first line is a ``#`` comment naming it: a transport shows that name in a
message (``python site-packages took longer than …``) instead of the whole script.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from patchpilot.inventory.host.apt_lists import INDEX_END, INDEX_FAILED
from patchpilot.inventory.host.kernel import REBOOT_REQUIRED_FLAG
from patchpilot.inventory.sources.dnf_updateinfo import DNF_ADVISORIES_COMMAND, DNF_CVES_COMMAND
from patchpilot.inventory.sources.rpm import RPM_QA_COMMAND

__all__ = ["DNF_ADVISORIES_COMMAND", "DNF_CVES_COMMAND", "RPM_QA_COMMAND"]

# --- files ---------------------------------------------------------------------------------

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
MACHINE_ID_PATHS = ("/etc/machine-id", "/var/lib/dbus/machine-id")
HOSTS = "/etc/hosts"
# The kernel's own answers to `uname -n` and `uname -r` (Linux), read as files so that
# they join the one batch read of small files instead of costing a command each.
HOSTNAME = "/proc/sys/kernel/hostname"
KERNEL_RELEASE = "/proc/sys/kernel/osrelease"
CLOUD_INSTANCE_ID = "/var/lib/cloud/data/instance-id"
DMI_ASSET_TAG = "/sys/class/dmi/id/board_asset_tag"
# The host's addresses as the kernel lists them (what `ip addr` prints, without iproute2).
FIB_TRIE = "/proc/net/fib_trie"
IF_INET6 = "/proc/net/if_inet6"

DPKG_DIR = "/var/lib/dpkg"
DPKG_STATUS = "/var/lib/dpkg/status"
DPKG_STATUS_D = "/var/lib/dpkg/status.d"  # distroless images: one file per package
RPM_DB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
APK_INSTALLED = "/lib/apk/db/installed"
BOOT = "/boot"
APT_LISTS = "/var/lib/apt/lists"

FIRST_FILES = (*OS_RELEASE_PATHS, *MACHINE_ID_PATHS, HOSTS, HOSTNAME, KERNEL_RELEASE,
               CLOUD_INSTANCE_ID, DMI_ASSET_TAG, REBOOT_REQUIRED_FLAG, FIB_TRIE, IF_INET6,
               DPKG_STATUS, APK_INSTALLED)
"""The files every collection reads first, in one batch: the small facts and the dpkg and
apk databases (absent on other families, so they cost nothing there)."""

FIRST_DIRS = (BOOT, APT_LISTS, DPKG_STATUS_D, *RPM_DB_DIRS)
"""The folders every collection lists first, in one batch."""

# --- commands ------------------------------------------------------------------------------

UNAME_N = ("uname", "-n")
UNAME_R = ("uname", "-r")
IP_ADDR = ("ip", "-o", "addr", "show")  # where /proc/net is missing

_COMMAND_V = (
    "# which commands exist\n"
    'for t; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; true'
)


def which(*tools: str) -> tuple[str, ...]:
    """Prints each of ``tools`` found on the host's PATH, one a line."""
    return ("sh", "-c", _COMMAND_V, "sh", *tools)


def read_files(paths: Sequence[str], mark: str, *, headers_only: bool) -> str:
    """One shell command printing, for each readable regular file of ``paths``, a line
    ``MARK PATH`` and then the file: whole, followed by one newline of its own, or
    (``headers_only``) only its lines before the first blank one (see
    ``host.files.parse_marked``).

    The headers are cut by one awk for every file (no process per file); an empty file
    then prints nothing.  Paths are quoted into the command: it is sent as one string.
    """
    quoted = " ".join(shlex.quote(p) for p in paths)
    if headers_only:
        return (
            f"for f in {quoted}; do "
            '[ -f "$f" ] && [ -r "$f" ] && set -- "$@" "$f"; done; '
            f"[ $# -eq 0 ] || awk -v m={shlex.quote(mark)} "
            "'FNR == 1 { print m \" \" FILENAME; h = 1 } "
            "h && /^[ \\t\\r]*$/ { h = 0 } h { print }' \"$@\"; true")
    return (
        f"for f in {quoted}; do "
        'if [ -f "$f" ] && [ -r "$f" ]; then '
        f"printf '%s %s\\n' {shlex.quote(mark)} \"$f\"; cat \"$f\"; echo; fi; done; true")


_LIST_DIRS = (
    "# list folders\n"
    'm=$1; shift\n'
    'for d; do ( cd "$d" 2>/dev/null && printf "%s %s\\n" "$m" "$d" && ls -1A ); done; true'
)


def list_dirs(paths: Sequence[str], mark: str) -> tuple[str, ...]:
    """Prints ``MARK PATH`` and then the names in each folder of ``paths`` that can be
    read, one a line (see ``host.files.parse_marked``)."""
    return ("sh", "-c", _LIST_DIRS, "sh", mark, *paths)


_APT_INDEX = (
    "# read an apt list\n"
    'f=$1\n'
    "{\n"
    '  case $f in\n'
    '    *_Packages) cat "$f" ;;\n'
    # apt's own helper knows every compressor apt is configured with (lz4, zstd, ...);
    # without it, the usual tool for the suffix.
    '    *) if [ -x /usr/lib/apt/apt-helper ]; then /usr/lib/apt/apt-helper cat-file "$f"\n'
    '       else case $f in\n'
    '         *.lz4) lz4 -dc < "$f" ;; *.zst) zstd -dc < "$f" ;; *.gz) gzip -dc < "$f" ;;\n'
    '         *.xz|*.lzma) xz -dc < "$f" ;; *.bz2) bzip2 -dc < "$f" ;; *) false ;;\n'
    '       esac; fi ;;\n'
    "  esac || echo '" + INDEX_FAILED + "'\n"
    "  echo '" + INDEX_END + "'\n"
    "} | grep -E '^(Package|Version|Architecture|Source):|^$|^@@patchpilot index '"
)


def apt_index(path: str) -> tuple[str, ...]:
    """Prints the Packages index at ``path`` (decompressed), only the lines the index
    parser reads, then ``apt_lists.INDEX_END`` (see ``host.apt_lists.index_text``)."""
    return ("sh", "-c", _APT_INDEX, "sh", path)


# Where a distribution's own Python keeps its distributions (Debian's dist-packages, the
# others' site-packages), also when its interpreter is not on PATH (RHEL 8's
# platform-python).  Virtualenvs are not searched: finding them means walking disks.
_SYSTEM_SITE_GLOBS = (
    "/usr/lib/python3/dist-packages",
    "/usr/lib/python3*/site-packages",
    "/usr/lib64/python3*/site-packages",
    "/usr/local/lib/python3*/dist-packages",
    "/usr/local/lib/python3*/site-packages",
)

# The folders an interpreter's site.getsitepackages() and getusersitepackages() name, from
# its install prefix (<prefix>/bin/pythonX.Y) and version: CPython's own layout, Debian's
# dist-packages (/usr/lib/python3/dist-packages, /usr/local/lib/python3.11/dist-packages)
# and Fedora's lib64.  Derived, not asked: the scan never runs the host's interpreters,
# whose .pth files may run code -- it only reads, as `scan ssh` promises.
_INTERPRETER_SITES = (
    '"$p"/lib/python$v/site-packages "$p"/lib64/python$v/site-packages '
    '"$p"/lib/python$v/dist-packages "$p"/lib/python${v%%.*}/dist-packages '
    '"$p"/local/lib/python$v/dist-packages "$p"/local/lib/python$v/site-packages '
    '"$p"/local/lib64/python$v/site-packages "$HOME"/.local/lib/python$v/site-packages'
)

_PYTHON_SITES = (
    "# python site-packages\n"
    'ask=$1; shift\n'
    "dirs='|'\n"
    # Print a folder (resolved) as KIND, and once its dist-info / egg-info entries.
    'emit() {\n'
    '  r=$(cd "$2" 2>/dev/null && pwd -P) || return 0\n'
    '  printf "%s\\t%s\\n" "$1" "$r"\n'
    '  case $dirs in *"|$r|"*) return 0 ;; esac\n'
    '  dirs="$dirs$r|"\n'
    '  for e in "$r"/*.dist-info "$r"/*.egg-info; do\n'
    '    if [ -d "$e" ]; then printf "d\\t%s\\n" "$e"; elif [ -e "$e" ]; then\n'
    '      printf "f\\t%s\\n" "$e"; fi\n'
    '  done\n'
    '}\n'
    # The user's virtualenv roots or site-packages folders.
    'for a; do\n'
    '  if [ -d "$a" ]; then\n'
    '    n=0\n'
    '    for s in "$a"/lib/python*/site-packages "$a"/lib64/python*/site-packages; do\n'
    '      [ -d "$s" ] && { emit path "$s"; n=1; }\n'
    '    done\n'
    '    [ $n = 1 ] || emit path "$a"\n'
    '  else printf "missing\\t%s\\n" "$a"; fi\n'
    'done\n'
    '[ "$ask" = 1 ] || exit 0\n'
    "seen='|'; oldifs=$IFS\n"
    'set -f; IFS=:; set -- $PATH; IFS=$oldifs; set +f\n'
    'for d; do\n'
    '  [ -n "$d" ] || continue\n'
    # A pyenv shims folder runs only the selected version (the other shims exit 127), yet
    # every installed version's packages are on disk: take each version's interpreters.
    '  if [ "${d##*/}" = shims ] && [ -d "${d%/*}/versions" ]; then\n'
    '    g="${d%/*}/versions/*/bin/python*"; else g="$d/python*"; fi\n'
    # No field splitting from here on (paths may hold spaces); globs still expand.
    '  IFS=\n'
    '  for f in $g; do\n'
    # python, python3, python3.11, python3.7m; not python3-config nor python-argcomplete-*.
    '    case ${f##*/} in\n'
    '      python|python3|python3.[0-9]|python3.[0-9][0-9]|python3.[0-9]m|python3.[0-9][0-9]m) ;;\n'
    '      *) continue ;;\n'
    '    esac\n'
    '    [ -x "$f" ] || continue\n'
    '    r=$(readlink -f "$f" 2>/dev/null) || continue\n'
    '    [ -f "$r" ] || continue\n'
    '    case $seen in *"|$r|"*) continue ;; esac\n'
    '    seen="$seen$r|"\n'
    # python3.11 -> 3.11 (python3.7m -> 3.7); a bare python3 -> any 3.x.
    '    v=${r##*/}; v=${v#python}; v=${v%m}\n'
    '    case $v in *.*) ;; *) v="$v.*" ;; esac\n'
    '    p=${r%/*}; p=${p%/*}\n'
    '    printf "interp\\t%s\\n" "$r"\n'
    "    for s in " + _INTERPRETER_SITES + "; do\n"
    '      [ -d "$s" ] && emit dir "$s"\n'
    '    done\n'
    '  done\n'
    '  IFS=$oldifs\n'
    'done\n'
    "for s in " + " ".join(_SYSTEM_SITE_GLOBS) + "; do\n"
    '  [ -d "$s" ] && emit site "$s"\n'
    'done\n'
    'true'
)


def python_sites(interpreters: bool, paths: Sequence[str] = ()) -> tuple[str, ...]:
    """Prints the site-packages folders -- those of every Python interpreter on PATH and
    the distribution's own (when ``interpreters``; no interpreter is run), and those of
    each virtualenv root or site-packages folder in ``paths`` -- each followed by its
    dist-info and egg-info entries (see ``host.python.parse_python_sites``)."""
    return ("sh", "-c", _PYTHON_SITES, "sh", "1" if interpreters else "0", *paths)


# --- who owns a language package's files ---------------------------------------------------

DPKG_INFO = "/var/lib/dpkg/info"

_DPKG_OWNERS = (
    "# dpkg file owners\n"
    'cd /var/lib/dpkg/info 2>/dev/null || exit 0\n'
    # Each path becomes one exact-line pattern: only the asked entries are printed, as
    # ``NAME[:ARCH].list:PATH``, whatever the size of the packages' file lists.
    'n=$#\n'
    'for p; do set -- "$@" -e "$p"; done\n'
    'shift "$n"\n'
    'grep -F -x -H "$@" -- *.list 2>/dev/null; true'
)


def dpkg_owners(paths: Sequence[str]) -> tuple[str, ...]:
    """Prints ``NAME[:ARCH].list:PATH`` for each of ``paths`` a dpkg file list names (see
    ``host.ownership.parse_dpkg_owners``)."""
    return ("sh", "-c", _DPKG_OWNERS, "sh", *paths)


RPM_OWNERS_QUERYFORMAT = (
    "[%{FILENAMES}\\t%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\n]")
"""Every file of the owning package with the package's name and version (rpm expands the
escapes; ``[...]`` repeats the line per file)."""

_RPM_OWNERS = (
    "# rpm file owners\n"
    'f=$1; shift\n'
    'rpm -qf --queryformat "$f" "$@" 2>/dev/null; true'
)


def rpm_owners(paths: Sequence[str]) -> tuple[str, ...]:
    """Prints the file lists of the rpm packages owning ``paths`` (see
    ``host.ownership.parse_rpm_owners``); rpm's own complaint about an unowned path is
    skipped by the parser."""
    return ("sh", "-c", _RPM_OWNERS, "sh", RPM_OWNERS_QUERYFORMAT, *paths)


_RPM_CHANGELOGS = (
    "# rpm changelogs\n"
    'm=$1; shift\n'
    'for p; do printf "%s %s\\n" "$m" "$p"; rpm -q --changelog "$p" 2>/dev/null; done; true'
)


def rpm_changelogs(names: Sequence[str], mark: str) -> tuple[str, ...]:
    """Prints ``MARK NAME`` and then ``rpm -q --changelog NAME`` for each of ``names``
    (see ``host.files.parse_marked``)."""
    return ("sh", "-c", _RPM_CHANGELOGS, "sh", mark, *names)


def debian_changelog(package: str) -> str:
    """Where a Debian binary package keeps its (gzip-compressed) changelog."""
    return f"/usr/share/doc/{package}/changelog.Debian.gz"


def script_name(argv: Sequence[str]) -> str:
    """A short name of a command for messages: a script's ``#`` first line, else the
    command line itself (cut at 60 characters)."""
    if len(argv) > 2 and argv[0] == "sh" and argv[1] == "-c" and argv[2].startswith("# "):
        return argv[2].splitlines()[0][2:]
    text = " ".join(argv)
    return text if len(text) <= 60 else text[:57] + "..."
