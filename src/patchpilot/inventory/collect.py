"""One collection routine for every host: ``collect(host, options) -> Inventory``.

What is collected -- OS release, identity, the OS package database (dpkg, rpm, apk), the
Python distributions of the interpreters on the host, pending security updates (apt, dnf),
kernels and whether a reboot is needed, and the warnings -- is written here once; a
transport only implements :class:`Host`: read a file, run a command.  So ``scan local``,
the agent and ``scan ssh`` cannot drift apart again (before, the SSH copy had never learnt
pending updates nor reboot-required).  As in osv-scalibr and Vuls, fetching is kept apart
from parsing: this module asks the host for text (the paths and commands are in
``inventory.host.commands``) and hands it to the pure parsers of ``inventory.host`` and
``inventory.sources``.

Why the protocol is async: SSH is async (asyncssh) and round trips dominate it, so
independent reads are awaited together -- the package database, /boot, the apt lists,
the addresses and the Python folders -- and overlap on one connection's channels; the
local host runs the same awaits in threads (``asyncio.to_thread``).  A routine written
as a generator of requests would have needed its own scheduler to express that
concurrency, and its error handling would have been harder to follow; with ``async def``
it reads as straight-line code.

Round trips: the first step asks for everything that depends on nothing -- the small
files and the dpkg/apk databases in one ``read_files``, the folders (/boot, the apt lists,
…) in one ``list_dirs``, the Python folders in one script -- at once; the second reads the
apt security lists and the METADATA headers.  Over SSH that is six commands in three
rounds (the transport's probe first), as few as the old SSH collector ran one after the
other, each of which costs the target a login shell.  The batch methods have defaults
(local: one thread reads the files, ``os.listdir`` the folders); the SSH host overrides
``read_files`` with one remote command for the lot.

Collection sends no network traffic of its own: no DNS lookup (the FQDN comes from
/etc/hosts), no cloud metadata service, apt's and dnf's caches are read as they are
(never refreshed).  The one exception, only when asked (``fetch_changelogs``), is
``apt-get changelog`` for pending security updates, given up after the first failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.host import commands
from patchpilot.inventory.host.apt_lists import index_text
from patchpilot.inventory.host.files import new_mark, parse_marked
from patchpilot.inventory.host.identity import (
    cloud_instance_id,
    first_line,
    first_value,
    fqdn_from_hosts,
    parse_fib_trie,
    parse_if_inet6,
    parse_ip_addr,
)
from patchpilot.inventory.host.kernel import (
    REBOOT_REQUIRED_FLAG,
    installed_kernels,
    reboot_required,
)
from patchpilot.inventory.host.ownership import (
    debian_changelog_text,
    parse_apk_owners,
    parse_dpkg_owners,
    parse_rpm_changelog_cves,
    parse_rpm_owners,
)
from patchpilot.inventory.host.python import (
    DistEntry,
    PythonSites,
    packages_from_metadata,
    parse_python_sites,
)
from patchpilot.inventory.model import (
    AssetIdentity,
    Collector,
    Inventory,
    OsInfo,
    PendingUpdate,
)
from patchpilot.inventory.sources.apk import parse_apk_installed
from patchpilot.inventory.sources.apt_pending import (
    IndexEntry,
    changelog_command,
    merge_offers,
    parse_debian_changelog,
    parse_debian_changelog_fixed,
    parse_packages_index,
    pending_security_updates,
    security_list_files,
    with_cves,
)
from patchpilot.inventory.sources.dnf_updateinfo import (
    DNF_ADVISORIES_COMMAND,
    DNF_CVES_COMMAND,
    parse_updateinfo_list,
    pending_dnf_updates,
)
from patchpilot.inventory.sources.dpkg import parse_dpkg_status
from patchpilot.inventory.sources.os_release import parse_os_release
from patchpilot.inventory.sources.rpm import RPM_QA_COMMAND, parse_rpm_qa
from patchpilot.knowledge.ecosystems import ecosystem_for_os, scheme_of
from patchpilot.models import Ecosystem, OsRelease, Package, PackageOwner

# Seconds a command may take on the local host (the SSH host applies --command-timeout).
# apt-get changelog resolves and downloads; on a host without network it fails after ~7 s
# of retries, so it is cut short, and one failure stops the attempts for the other packages.
CHANGELOG_TIMEOUT = 5.0
DNF_TIMEOUT = 60.0
RPM_TIMEOUT = 60.0
APT_INDEX_TIMEOUT = 60.0
# The site-folder scripts only test paths (no interpreter is run): quick everywhere.
PYTHON_SITES_TIMEOUT = 30.0
SHORT_TIMEOUT = 5.0
# dpkg's grep over its file lists, rpm -qf, rpm -q --changelog: local reads, quick.
OWNERS_TIMEOUT = 30.0
OWNER_PATHS_PER_COMMAND = 1000
IP_TIMEOUT = 2.0

A = TypeVar("A")
B = TypeVar("B")


class Host(Protocol):
    """What collection needs of a host: read a file, run a command.

    Transports subclass it (``transports.local.LocalHost``, ``transports.ssh.SshHost``)
    to inherit the two batch/convenience methods' defaults, which they may override.
    A host runs only what it is given; every command is a fixed argv from
    ``inventory.host.commands`` and only reads.
    """

    async def read_file(self, path: str) -> bytes | None:
        """The file's bytes; None when it is absent, not a file or cannot be read."""
        ...

    async def run(self, argv: Sequence[str], timeout: float) -> str | None:
        """The standard output of ``argv``; None when the command is missing or fails.

        ``timeout`` is how long the local host lets it run (then None); a remote host may
        apply its own limit instead and end the whole scan when it is exceeded.
        """
        ...

    async def read_files(self, paths: Sequence[str], *,
                         headers_only: bool = False) -> list[bytes | None]:
        """Each file's bytes (None: unreadable), in order.  ``headers_only``: the caller
        needs only the lines before the first blank line (core metadata headers), so a
        host may leave the rest out -- and may answer None for an empty file."""
        return list(await asyncio.gather(*(self.read_file(p) for p in paths)))

    async def list_dirs(self, paths: Sequence[str]) -> list[list[str] | None]:
        """The names in each folder of ``paths`` (None: not a readable folder), in order;
        by default one command for them all."""
        mark = new_mark()
        out = await self.run(commands.list_dirs(paths, mark), SHORT_TIMEOUT)
        found = parse_marked((out or "").encode(), mark, paths, added_newline=False)
        return [data.decode().splitlines() if data is not None else None for data in found]


@dataclass(frozen=True, slots=True)
class CollectOptions:
    """What to collect beyond the OS, and how the inventory names its collector.

    ``python``: read the site-packages folders of every interpreter on the host's PATH
    (found from its prefix and version, never by running it) and the distribution's own;
    ``python_paths``: also these virtualenv roots or site-packages folders (an error when
    one is not a folder); ``fetch_changelogs``: run ``apt-get changelog`` for pending apt
    updates to learn their CVEs (the only step that uses the network, hence off unless
    asked).
    """

    python: bool = True
    python_paths: tuple[str, ...] = ()
    fetch_changelogs: bool = False
    collector: str = "local"


@dataclass(slots=True)
class _Found:
    """What one part of the collection found, with its own warnings (joined in order)."""

    packages: list[Package] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _text(data: bytes | None) -> str | None:
    return data.decode("utf-8", errors="replace") if data is not None else None


@contextlib.asynccontextmanager
async def _tasks() -> AsyncIterator[asyncio.TaskGroup]:
    """A TaskGroup whose first failure is raised as itself, not in an ExceptionGroup, so
    that callers catch InventoryFormatError (or a transport's own failure) as they would
    from a plain await; the other tasks are cancelled."""
    try:
        async with asyncio.TaskGroup() as group:
            yield group
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def _both(first: Coroutine[Any, Any, A], second: Coroutine[Any, Any, B]) -> tuple[A, B]:
    """Await two things at once (see ``_tasks``)."""
    async with _tasks() as group:
        a = group.create_task(first)
        b = group.create_task(second)
    return a.result(), b.result()


# --- identity ------------------------------------------------------------------------------

async def _identity(host: Host, facts: dict[str, str | None]) -> AssetIdentity:
    hostname = first_line(facts[commands.HOSTNAME])
    if hostname is None:  # not Linux: no /proc
        hostname = first_line(await host.run(commands.UNAME_N, SHORT_TIMEOUT))
    v4, v6 = facts[commands.FIB_TRIE], facts[commands.IF_INET6]
    if v4 is None and v6 is None:
        addresses = parse_ip_addr(await host.run(commands.IP_ADDR, IP_TIMEOUT) or "")
    else:
        addresses = parse_fib_trie(v4 or "") + parse_if_inet6(v6 or "")
    return AssetIdentity(
        hostname=hostname,
        fqdn=fqdn_from_hosts(facts[commands.HOSTS] or "", hostname) if hostname else None,
        machine_id=first_value(facts[p] for p in commands.MACHINE_ID_PATHS),
        ip_addresses=addresses,
        cloud_instance_id=cloud_instance_id(facts[commands.CLOUD_INSTANCE_ID],
                                            facts[commands.DMI_ASSET_TAG]),
    )


# --- operating system packages -------------------------------------------------------------

def _os_release(facts: dict[str, str | None]) -> OsRelease | None:
    for path in commands.OS_RELEASE_PATHS:
        text = facts[path]
        if text is not None:
            return parse_os_release(text, path)
    return None


@dataclass(frozen=True, slots=True)
class _First:
    """What the first round read: ``commands.FIRST_FILES`` (text, None: absent) and
    ``commands.FIRST_DIRS`` (names, None: not a folder)."""

    files: dict[str, str | None]
    dirs: dict[str, list[str] | None]
    dpkg_status: bytes | None


async def _dpkg_packages(host: Host, first: _First, ecosystem: str,
                         warnings: list[str]) -> list[Package] | None:
    """The dpkg database (and distroless status.d stanzas); None when there is none.
    A bad line or stanza is added to ``warnings`` and skipped."""
    status, names = first.dpkg_status, first.dirs[commands.DPKG_STATUS_D]
    if status is None and names is None:
        listing = await host.list_dirs([commands.DPKG_DIR])
        if "status" in (listing[0] or []):
            raise InventoryFormatError(commands.DPKG_STATUS, "cannot be read")
        return None
    packages: list[Package] = []
    if status is not None:
        packages += parse_dpkg_status(_text(status) or "", ecosystem, commands.DPKG_STATUS,
                                      warnings=warnings)
    if names:
        # Distroless images: one control stanza per package, maybe without Status.
        paths = [f"{commands.DPKG_STATUS_D}/{n}" for n in sorted(names)
                 if not n.endswith(".md5sums")]
        for path, data in zip(paths, await host.read_files(paths), strict=True):
            if data is not None:
                packages += parse_dpkg_status(_text(data) or "", ecosystem, path,
                                              assume_installed=True, warnings=warnings)
    return packages


async def _rpm_packages(host: Host, first: _First, ecosystem: str,
                        warnings: list[str]) -> list[Package] | None:
    """``rpm -qa`` when an rpm database exists; None when there is none or no rpm."""
    if all(first.dirs[d] is None for d in commands.RPM_DB_DIRS):
        return None
    text = await host.run(RPM_QA_COMMAND, RPM_TIMEOUT)
    if text is None:
        if "rpm" not in (await host.run(commands.which("rpm"), SHORT_TIMEOUT) or ""):
            return None
        raise InventoryFormatError("rpm -qa", "the rpm command failed")
    return parse_rpm_qa(text, ecosystem, "rpm -qa", warnings)


async def _os_packages(host: Host, first: _First, ecosystem: str) -> tuple[_Found, str | None]:
    """The package database matching the OS family (any present one when unknown), and
    which one it was (``dpkg``, ``rpm``, ``apk``; None: none found)."""
    scheme = scheme_of(ecosystem)
    warnings: list[str] = []
    if scheme in ("dpkg", "generic"):
        found = await _dpkg_packages(host, first, ecosystem, warnings)
        if found is not None:
            return _Found(found, warnings), "dpkg"
    if scheme in ("rpm", "generic"):
        found = await _rpm_packages(host, first, ecosystem, warnings)
        if found is not None:
            return _Found(found, warnings), "rpm"
    if scheme in ("apk", "generic"):
        text = first.files[commands.APK_INSTALLED]
        if text is not None:
            packages = parse_apk_installed(text, ecosystem, commands.APK_INSTALLED, warnings)
            return _Found(packages, warnings), "apk"
    return _Found(warnings=[f"no package database of {ecosystem} found"]), None


# --- pending security updates --------------------------------------------------------------

async def _apt_changelog_cves(host: Host, updates: list[PendingUpdate],
                              installed: dict[str, Package],
                              warnings: list[str]) -> list[PendingUpdate]:
    """The updates with the CVEs their candidates' changelogs name (one download per
    source package); unchanged, with one warning, when the changelog server is out of
    reach."""
    cves_by_source: dict[str, list[str]] = {}
    for update in updates:
        source = update.source_name or update.package
        if source in cves_by_source:
            continue
        package = installed[update.package]
        text = await host.run(changelog_command(update.package, update.candidate_version),
                              CHANGELOG_TIMEOUT)
        if text is None:
            warnings.append(
                f"apt-get changelog {update.package}={update.candidate_version} failed (no "
                "network?): pending security updates are listed without the CVEs they fix")
            break
        try:
            cves_by_source[source] = parse_debian_changelog(
                text, package.source_version or package.version,
                f"apt-get changelog {update.package}")
        except InventoryFormatError as exc:
            warnings.append(str(exc))
            cves_by_source[source] = []
    return [with_cves(u, cves_by_source[u.source_name or u.package])
            if cves_by_source.get(u.source_name or u.package) else u for u in updates]


async def _apt_pending(host: Host, names: list[str], codename: str | None,
                       packages: list[Package], warnings: list[str],
                       fetch_changelogs: bool) -> list[PendingUpdate]:
    """Installed packages with a newer version in ``<codename>-security`` (apt's cache);
    ``names``: the files in /var/lib/apt/lists."""
    files = security_list_files(names, codename) if codename else []
    if not files:
        warnings.append(f"no apt list of {codename or '(unknown codename)'}-security in "
                        f"{commands.APT_LISTS}: pending security updates not collected")
        return []
    paths = [f"{commands.APT_LISTS}/{name}" for name in files]
    outputs = await asyncio.gather(*(host.run(commands.apt_index(p), APT_INDEX_TIMEOUT)
                                     for p in paths))
    offered: dict[tuple[str, str | None], IndexEntry] = {}
    for path, output in zip(paths, outputs, strict=True):
        text = index_text(output) if output is not None else None
        if text is None:
            warnings.append(f"cannot decompress {path}: pending security updates incomplete")
            continue
        merge_offers(offered, parse_packages_index(text, path))
    updates = pending_security_updates(packages, offered, f"{codename}-security")
    if updates and fetch_changelogs:
        updates = await _apt_changelog_cves(host, updates, {p.name: p for p in packages},
                                            warnings)
    return updates


async def _dnf_pending(host: Host, packages: list[Package],
                       warnings: list[str]) -> list[PendingUpdate]:
    """What ``dnf updateinfo list --security`` lists, from dnf's cache (never refreshed)."""
    if "dnf" not in (await host.run(commands.which("dnf"), SHORT_TIMEOUT) or "").split():
        warnings.append("no dnf: pending security updates not collected")
        return []
    advisories, cves = await _both(host.run(DNF_ADVISORIES_COMMAND, DNF_TIMEOUT),
                                   host.run(DNF_CVES_COMMAND, DNF_TIMEOUT))
    if advisories is None or cves is None:
        warnings.append("dnf updateinfo failed (no metadata cache? run 'dnf makecache'): "
                        "pending security updates not collected")
        return []
    return pending_dnf_updates(
        parse_updateinfo_list(advisories, " ".join(DNF_ADVISORIES_COMMAND)),
        parse_updateinfo_list(cves, " ".join(DNF_CVES_COMMAND)), packages)


# --- the operating system as a whole -------------------------------------------------------

@dataclass(slots=True)
class _System(_Found):
    os: OsInfo | None = None
    pending: list[PendingUpdate] = field(default_factory=list)
    manager: str | None = None  # the package database read: dpkg, rpm, apk


async def _system(host: Host, release: OsRelease | None, first: _First,
                  fetch_changelogs: bool) -> _System:
    """OS packages, kernels, reboot-required and pending security updates."""
    if release is None:
        return _System(warnings=["no /etc/os-release: operating system packages not "
                                 "collected"])
    ecosystem = ecosystem_for_os(release) or Ecosystem(
        f"{release.id}:{release.version_id}" if release.version_id else release.id)
    scheme = scheme_of(ecosystem)
    found, manager = await _os_packages(host, first, ecosystem)
    running = first_line(first.files[commands.KERNEL_RELEASE]) or first_line(
        await host.run(commands.UNAME_R, SHORT_TIMEOUT))
    kernels = installed_kernels(first.dirs[commands.BOOT] or [], found.packages)
    system = _System(found.packages, found.warnings, os=OsInfo.from_os_release(
        release, kernel_running=running, kernels_installed=kernels,
        reboot_required=reboot_required(
            running, kernels, scheme,
            flag_file=first.files[REBOOT_REQUIRED_FLAG] is not None)), manager=manager)
    if scheme == "dpkg" and found.packages:
        system.pending = await _apt_pending(
            host, first.dirs[commands.APT_LISTS] or [], release.codename, found.packages,
            system.warnings, fetch_changelogs)
    elif scheme == "rpm" and found.packages:
        system.pending = await _dnf_pending(host, found.packages, system.warnings)
    return system


# --- Python distributions ------------------------------------------------------------------

def _sites_command(options: CollectOptions) -> tuple[str, ...] | None:
    if not options.python and not options.python_paths:
        return None
    return commands.python_sites(options.python, options.python_paths)


@dataclass(frozen=True, slots=True)
class _Metadata:
    """The dist-info / egg-info entries found and each one's metadata headers."""

    entries: list[DistEntry] = field(default_factory=list)
    texts: list[str | None] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def packages(self, owners: Mapping[str, PackageOwner] | None = None) -> _Found:
        """The distributions, with the OS package owning each where ``owners`` says."""
        warnings = list(self.warnings)
        return _Found(packages_from_metadata(self.entries, self.texts, warnings, owners),
                      warnings)


async def _python_metadata(host: Host, out: str | None) -> _Metadata:
    """The entries in the site folders ``commands.python_sites`` printed in ``out``
    (None: the script failed) and their metadata headers."""
    if out is None:
        return _Metadata(warnings=["the Python site-packages folders could not be listed"])
    sites: PythonSites = parse_python_sites(out)
    if sites.missing:
        raise InventoryFormatError(sites.missing[0],
                                   "not a virtualenv or site-packages directory")
    if not sites.entries:
        return _Metadata()
    contents = await host.read_files([e.metadata_path for e in sites.entries],
                                     headers_only=True)
    return _Metadata(sites.entries, [_text(c) for c in contents])


async def _python_from(host: Host, out: str | None) -> _Found:
    """The distributions in the site folders ``commands.python_sites`` printed in
    ``out``, their owners not asked."""
    return (await _python_metadata(host, out)).packages()


async def python_packages(host: Host, options: CollectOptions) -> _Found:
    """The PyPI distributions of the host's interpreters and of ``options.python_paths``,
    each (name, version, site folder) once.

    Raises InventoryFormatError when a path in ``options.python_paths`` is not a folder.
    """
    command = _sites_command(options)
    if command is None:
        return _Found()
    return await _python_from(host, await host.run(command, PYTHON_SITES_TIMEOUT))


async def _no_command() -> None:
    return None


# --- ownership: language packages that an OS package installed ------------------------------

async def _owners(host: Host, system: _System, first: _First,
                  paths: list[str]) -> dict[str, PackageOwner]:
    """The OS package owning each of ``paths`` (language packages' entries), asked of the
    package database the OS packages came from, for those paths only."""
    if not paths or system.manager is None:
        return {}
    if system.manager == "apk":
        return parse_apk_owners(first.files[commands.APK_INSTALLED] or "", set(paths))
    # The paths go on the command line: a host with thousands of entries is asked in
    # batches, so no argument list outgrows the host's limit.
    batches = [paths[i:i + OWNER_PATHS_PER_COMMAND]
               for i in range(0, len(paths), OWNER_PATHS_PER_COMMAND)]
    owners: dict[str, PackageOwner] = {}
    if system.manager == "dpkg":
        versions = {p.name: p.version for p in system.packages}
        for batch in batches:
            out = await host.run(commands.dpkg_owners(batch), OWNERS_TIMEOUT)
            owners.update((path, PackageOwner(name, versions[name]))
                          for path, name in parse_dpkg_owners(out or "").items()
                          if name in versions)
    elif system.manager == "rpm":
        for batch in batches:
            out = await host.run(commands.rpm_owners(batch), OWNERS_TIMEOUT)
            owners.update(parse_rpm_owners(out or "", set(batch)))
    return owners


async def _changelog_cves(host: Host, system: _System, owners: list[str],
                          warnings: list[str]) -> dict[str, list[str]]:
    """Per owning OS package, the CVE ids its installed changelog names as dealt with
    (dpkg: ``changelog.Debian.gz`` up to the installed source version; rpm: ``rpm -q
    --changelog``).  apk packages carry no changelog.  Packages whose changelog names no
    CVE are left out."""
    found: dict[str, list[str]] = {}
    if system.manager == "dpkg":
        installed = {p.name: p for p in system.packages}
        paths = [commands.debian_changelog(name) for name in owners]
        for name, path, data in zip(owners, paths, await host.read_files(paths), strict=True):
            if data is None:
                continue  # a package without doc files (path-excluded, or a symlinked doc)
            try:
                cves = parse_debian_changelog_fixed(
                    debian_changelog_text(data, path), installed[name].match_version, path)
            except InventoryFormatError as exc:
                warnings.append(str(exc))
                continue
            if cves:
                found[name] = cves
    elif system.manager == "rpm" and owners:
        mark = new_mark()
        out = await host.run(commands.rpm_changelogs(owners, mark), OWNERS_TIMEOUT)
        texts = parse_marked((out or "").encode(), mark, owners, added_newline=False)
        for name, text in zip(owners, texts, strict=True):
            cves = parse_rpm_changelog_cves(text.decode("utf-8", "replace")) if text else []
            if cves:
                found[name] = cves
    return found


# --- the whole inventory -------------------------------------------------------------------

async def collect(host: Host, options: CollectOptions | None = None) -> Inventory:
    """The Inventory of ``host``: identity, OS, kernels and reboot-required, OS and Python
    packages, and the security updates its package manager has pending.

    The OS packages are judged in ``ecosystem_for_os(os)``; an OS no feed covers keeps its
    packages under ``<os id>:<version id>`` so nothing is lost.  ``complete`` is False when
    the host has no os-release (no OS packages could be read).  Raises
    InventoryFormatError when a package database, an apt list or os-release exists but
    cannot be parsed, or a ``python_paths`` entry is not a folder.
    """
    options = options or CollectOptions()
    sites_command = _sites_command(options)
    # First round: everything that depends on nothing, at once.
    async with _tasks() as group:
        files = group.create_task(host.read_files(commands.FIRST_FILES))
        dirs = group.create_task(host.list_dirs(commands.FIRST_DIRS))
        sites = group.create_task(host.run(sites_command, PYTHON_SITES_TIMEOUT)
                                  if sites_command else _no_command())
    dpkg_status = files.result()[commands.FIRST_FILES.index(commands.DPKG_STATUS)]
    first = _First(
        files={path: _text(data) if path != commands.DPKG_STATUS else None
               for path, data in zip(commands.FIRST_FILES, files.result(), strict=True)},
        dirs=dict(zip(commands.FIRST_DIRS, dirs.result(), strict=True)),
        dpkg_status=dpkg_status)
    release = _os_release(first.files)
    # Second round: what the first one points to.
    async with _tasks() as group:
        identity = group.create_task(_identity(host, first.files))
        system = group.create_task(_system(host, release, first, options.fetch_changelogs))
        metadata = group.create_task(_python_metadata(host, sites.result()) if sites_command
                                     else _no_metadata())
    # Third round: which OS package owns each language package found, and what the
    # owners' own changelogs say they fixed (the backport evidence).
    os_found = system.result()
    owners = await _owners(host, os_found, first,
                           [entry.path for entry in metadata.result().entries])
    python = metadata.result().packages(owners)
    warnings = os_found.warnings + python.warnings
    changelogs = await _changelog_cves(
        host, os_found, sorted({o.name for o in owners.values()}), warnings)
    return Inventory.from_packages(
        os_found.packages + python.packages,
        asset=identity.result(),
        os=os_found.os,
        pending_updates=os_found.pending,
        changelog_cves=changelogs,
        collector=Collector(name=options.collector),
        complete=release is not None,
        warnings=warnings,
    )


async def _no_metadata() -> _Metadata:
    return _Metadata()


def run_collect(host: Host, options: CollectOptions | None = None) -> Inventory:
    """``collect`` for synchronous callers: runs its own event loop (in a helper thread
    when this thread already runs one)."""
    if _loop_running():
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, collect(host, options)).result()
    return asyncio.run(collect(host, options))


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

