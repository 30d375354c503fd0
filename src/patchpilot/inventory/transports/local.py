"""Collect the inventory of the machine PatchPilot runs on (``patchpilot scan local``).

This module only fetches text -- files, and the output of ``rpm``, ``ip``, ``dnf`` and
each Python interpreter -- and hands it to the pure parsers in ``inventory.sources``.  It
sends no network traffic of its own: no DNS lookup for the FQDN (read from /etc/hosts), no
cloud metadata service (the instance id comes from cloud-init's cache or the DMI asset
tag), apt's and dnf's caches are read as they are (never refreshed).  The one exception,
only when asked (``fetch_changelogs``), is ``apt-get changelog`` for pending security
updates, which asks the Debian/Ubuntu changelog server and is given up after one failure.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.kernel import (
    REBOOT_REQUIRED_FLAG,
    reboot_required,
    rpm_kernel_releases,
)
from patchpilot.inventory.model import (
    AssetIdentity,
    Collector,
    Inventory,
    OsInfo,
    PendingUpdate,
)
from patchpilot.inventory.purls import purl_for
from patchpilot.inventory.sources.apk import parse_apk_installed
from patchpilot.inventory.sources.apt_pending import (
    IndexEntry,
    changelog_command,
    merge_offers,
    parse_debian_changelog,
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
from patchpilot.inventory.sources.python import ECOSYSTEM as PYPI
from patchpilot.inventory.sources.python import parse_dist_dir_name, parse_metadata
from patchpilot.inventory.sources.rpm import RPM_QA_COMMAND, parse_rpm_qa
from patchpilot.knowledge.ecosystems import ecosystem_for_os, scheme_of
from patchpilot.models import Ecosystem, OsRelease, Package

OS_RELEASE_PATHS = (Path("/etc/os-release"), Path("/usr/lib/os-release"))
DPKG_STATUS = Path("/var/lib/dpkg/status")
DPKG_STATUS_D = Path("/var/lib/dpkg/status.d")
RPM_DB_DIRS = (Path("/var/lib/rpm"), Path("/usr/lib/sysimage/rpm"))
APK_INSTALLED = Path("/lib/apk/db/installed")
MACHINE_ID_PATHS = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
APT_LISTS = Path("/var/lib/apt/lists")
APT_HELPER = Path("/usr/lib/apt/apt-helper")
# apt-get changelog resolves and downloads; on a host without network it fails after ~7 s
# of retries, so it is cut short, and one failure stops the attempts for the other packages.
CHANGELOG_TIMEOUT = 5.0
DNF_TIMEOUT = 60.0

# Interpreters worth asking for their site-packages: python, python3, python3.11, python3.7m.
# Not python3-config (a shell script) nor python-argcomplete-* (entry points).
_PYTHON_NAME = re.compile(r"^python(3(\.\d+m?)?)?$")
_SITE_SCRIPT = (
    "import json,site,sys;"
    "g=getattr(site,'getsitepackages',None);"  # missing in old virtualenv's site.py
    "print(json.dumps((g() if g else [])+[site.getusersitepackages()]))"
)
PYTHON_TIMEOUT = 5.0
_KERNEL_PACKAGE = re.compile(r"^linux-image-(\d[\w.+~-]*)$")
_METADATA_CAP = 1 << 20  # headers longer than 1 MiB are not core metadata


def _read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist or cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError):
        return None


def _run(argv: Sequence[str], timeout: float = PYTHON_TIMEOUT) -> str | None:
    """A command's standard output, or None when it fails, is missing or times out."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False,
            cwd="/",  # so "-c" never imports a module from the user's current directory
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


# --- identity ------------------------------------------------------------------------------

def fqdn_from_hosts(hosts_text: str, hostname: str) -> str | None:
    """The FQDN /etc/hosts gives ``hostname``, or None (pure; no resolver, no DNS).

    A hosts line is ``address canonical_name [aliases…]``; the first dotted name on a line
    that names the host is its FQDN.
    """
    short = hostname.split(".", 1)[0]
    for raw in hosts_text.splitlines():
        names = raw.split("#", 1)[0].split()[1:]
        if hostname in names or short in names:
            for name in names:
                if "." in name and name.split(".", 1)[0] == short:
                    return name
    return hostname if "." in hostname else None


def parse_ip_addr(text: str) -> list[str]:
    """Non-loopback, non-link-local addresses from ``ip -o addr show`` output (pure)."""
    found: list[str] = []
    for line in text.splitlines():
        words = line.split()
        for key, value in zip(words, words[1:], strict=False):
            if key not in ("inet", "inet6"):
                continue
            try:
                address = ipaddress.ip_interface(value).ip
            except ValueError:
                continue
            if not (address.is_loopback or address.is_link_local):
                found.append(str(address))
    return list(dict.fromkeys(found))


def _machine_id() -> str | None:
    for path in MACHINE_ID_PATHS:
        text = _read_text(path)
        if text and text.strip():
            return text.strip()
    return None


def _cloud_instance_id() -> str | None:
    """cloud-init's cached instance id, else an EC2 id in the DMI asset tag (Nitro)."""
    text = _read_text(Path("/var/lib/cloud/data/instance-id"))
    if text and text.strip() and text.strip() != "iid-datasource-none":
        return text.strip()
    tag = (_read_text(Path("/sys/class/dmi/id/board_asset_tag")) or "").strip()
    return tag if tag.startswith("i-") else None


def _asset_identity() -> AssetIdentity:
    hostname = socket.gethostname()
    ip_text = _run(("ip", "-o", "addr", "show"), timeout=2.0) if shutil.which("ip") else None
    return AssetIdentity(
        hostname=hostname,
        fqdn=fqdn_from_hosts(_read_text(Path("/etc/hosts")) or "", hostname),
        machine_id=_machine_id(),
        ip_addresses=parse_ip_addr(ip_text or ""),
        cloud_instance_id=_cloud_instance_id(),
    )


# --- operating system packages -------------------------------------------------------------

def _os_release() -> OsRelease | None:
    for path in OS_RELEASE_PATHS:
        text = _read_text(path)
        if text is not None:
            return parse_os_release(text, str(path))
    return None


def _dpkg_packages(ecosystem: str) -> list[Package]:
    packages: list[Package] = []
    text = _read_text(DPKG_STATUS)
    if text is not None:
        packages += parse_dpkg_status(text, ecosystem, str(DPKG_STATUS))
    if DPKG_STATUS_D.is_dir():
        # Distroless images: one control stanza per package, maybe without Status.
        for path in sorted(DPKG_STATUS_D.iterdir()):
            if path.suffix == ".md5sums" or not path.is_file():
                continue
            packages += parse_dpkg_status(path.read_text(encoding="utf-8", errors="replace"),
                                          ecosystem, str(path), assume_installed=True)
    return packages


def _rpm_packages(ecosystem: str) -> list[Package] | None:
    if not any(d.is_dir() for d in RPM_DB_DIRS) or shutil.which("rpm") is None:
        return None
    text = _run(RPM_QA_COMMAND, timeout=60.0)
    if text is None:
        raise InventoryFormatError("rpm -qa", "the rpm command failed")
    return parse_rpm_qa(text, ecosystem, "rpm -qa")


def _os_packages(ecosystem: str) -> list[Package]:
    """The package database matching the OS family (any present one when unknown)."""
    scheme = scheme_of(ecosystem)
    if scheme in ("dpkg", "generic") and (DPKG_STATUS.exists() or DPKG_STATUS_D.is_dir()):
        return _dpkg_packages(ecosystem)
    if scheme in ("rpm", "generic"):
        found = _rpm_packages(ecosystem)
        if found is not None:
            return found
    if scheme in ("apk", "generic"):
        text = _read_text(APK_INSTALLED)
        if text is not None:
            return parse_apk_installed(text, ecosystem, str(APK_INSTALLED))
    return []


def installed_kernels(boot_names: Iterable[str], packages: Iterable[Package]) -> list[str]:
    """Kernel releases from /boot/vmlinuz-<release> names, linux-image-<release> packages
    and (Red Hat family) kernel-core rpms."""
    packages = list(packages)
    # vmlinuz-0-rescue-<machine id>: the Red Hat family's rescue image, not a release.
    kernels = {name.removeprefix("vmlinuz-") for name in boot_names
               if name.startswith("vmlinuz-") and "-rescue-" not in name}
    for package in packages:
        found = _KERNEL_PACKAGE.match(package.name)
        if found:
            kernels.add(found.group(1))
    kernels.update(rpm_kernel_releases(packages))
    return sorted(kernels)


# --- pending security updates --------------------------------------------------------------

def _decompressed(path: Path) -> str | None:
    """An apt list file's text, whatever apt compressed it with; None when unreadable.

    apt's own ``apt-helper cat-file`` knows every compressor apt is configured with (lz4,
    zstd, …), which Python's standard library does not all read.
    """
    if path.suffix in ("", ".Packages") or path.name.endswith("_Packages"):
        return _read_text(path)
    if APT_HELPER.exists():
        return _run((str(APT_HELPER), "cat-file", str(path)), timeout=60.0)
    tool = {".lz4": "lz4", ".zst": "zstd", ".gz": "gzip", ".xz": "xz", ".bz2": "bzip2",
            ".lzma": "xz"}.get(path.suffix)
    if tool and shutil.which(tool):
        return _run((tool, "-dc", str(path)), timeout=60.0)
    return None


def _apt_changelog_cves(updates: list[PendingUpdate], installed: dict[str, Package],
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
        text = _run(changelog_command(update.package, update.candidate_version),
                    timeout=CHANGELOG_TIMEOUT)
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


def _apt_pending(codename: str | None, packages: list[Package], warnings: list[str],
                 fetch_changelogs: bool) -> list[PendingUpdate]:
    """Installed packages with a newer version in ``<codename>-security`` (apt's cache)."""
    try:
        names = os.listdir(APT_LISTS)
    except OSError:
        names = []
    files = security_list_files(names, codename) if codename else []
    if not files:
        warnings.append(f"no apt list of {codename or '(unknown codename)'}-security in "
                        f"{APT_LISTS}: pending security updates not collected")
        return []
    offered: dict[tuple[str, str | None], IndexEntry] = {}
    for name in files:
        path = APT_LISTS / name
        text = _decompressed(path)
        if text is None:
            warnings.append(f"cannot decompress {path}: pending security updates incomplete")
            continue
        merge_offers(offered, parse_packages_index(text, str(path)))
    updates = pending_security_updates(packages, offered, f"{codename}-security")
    if updates and fetch_changelogs:
        updates = _apt_changelog_cves(updates, {p.name: p for p in packages}, warnings)
    return updates


def _dnf_pending(packages: list[Package], warnings: list[str]) -> list[PendingUpdate]:
    """What ``dnf updateinfo list --security`` lists, from dnf's cache (never refreshed)."""
    if shutil.which("dnf") is None:
        warnings.append("no dnf: pending security updates not collected")
        return []
    advisories = _run(DNF_ADVISORIES_COMMAND, timeout=DNF_TIMEOUT)
    cves = _run(DNF_CVES_COMMAND, timeout=DNF_TIMEOUT)
    if advisories is None or cves is None:
        warnings.append("dnf updateinfo failed (no metadata cache? run 'dnf makecache'): "
                        "pending security updates not collected")
        return []
    return pending_dnf_updates(
        parse_updateinfo_list(advisories, " ".join(DNF_ADVISORIES_COMMAND)),
        parse_updateinfo_list(cves, " ".join(DNF_CVES_COMMAND)), packages)


def _pending_updates(release: OsRelease, ecosystem: str, packages: list[Package],
                     warnings: list[str], fetch_changelogs: bool) -> list[PendingUpdate]:
    """The host package manager's pending security updates, by OS family."""
    scheme = scheme_of(ecosystem)
    if scheme == "dpkg" and packages:
        return _apt_pending(release.codename, packages, warnings, fetch_changelogs)
    if scheme == "rpm" and packages:
        return _dnf_pending(packages, warnings)
    return []


# --- Python distributions ------------------------------------------------------------------

def _pyenv_root(directory: Path) -> Path | None:
    """``$PYENV_ROOT`` when ``directory`` is its ``shims`` dir, else None."""
    if directory.name == "shims" and (directory.parent / "versions").is_dir():
        return directory.parent
    return None


def python_interpreters(path_env: str | None = None) -> list[Path]:
    """Every python/python3/python3.N on PATH, symlinks resolved, each real file once.

    A pyenv ``shims`` dir is replaced by the interpreters of *every* version under
    ``$PYENV_ROOT/versions``: the shims run only the selected version (the others exit
    127 after ~0.1 s of bash each), yet every installed version's packages are on disk.
    """
    seen: dict[Path, None] = {}
    directories = [Path(d) for d in (path_env if path_env is not None
                                     else os.environ.get("PATH", "")).split(os.pathsep) if d]
    for directory in directories:
        pyenv = _pyenv_root(directory)
        if pyenv is not None:
            candidates = sorted(pyenv.glob("versions/*/bin/python*"))
        else:
            try:
                candidates = sorted(Path(e.path) for e in os.scandir(directory))
            except OSError:
                continue
        for candidate in candidates:
            if _PYTHON_NAME.match(candidate.name) and os.access(candidate, os.X_OK):
                real = candidate.resolve()
                if real.is_file():
                    seen.setdefault(real, None)
    return list(seen)


def _site_dirs_of(interpreter: Path) -> list[Path]:
    """The site-packages dirs an interpreter reports; [] when it cannot run."""
    # -E -s: ignore PYTHON* variables; the answer is about the installation, not this shell.
    out = _run((str(interpreter), "-E", "-s", "-c", _SITE_SCRIPT))
    if out is None:
        return []
    try:
        dirs = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return []
    return [Path(d) for d in dirs if isinstance(d, str)]


def _venv_site_dirs(root: Path) -> list[Path]:
    """A virtualenv root's lib/python*/site-packages, or the path itself as a site dir."""
    if not root.is_dir():
        raise InventoryFormatError(root, "not a virtualenv or site-packages directory")
    found = sorted(root.glob("lib/python*/site-packages")) + sorted(
        root.glob("lib64/python*/site-packages"))
    return found or [root]


def _read_headers(path: Path) -> str:
    """The core-metadata headers: the file up to its first blank line."""
    chunks: list[bytes] = []
    size = 0
    with path.open("rb") as handle:
        while size < _METADATA_CAP:
            chunk = handle.read(8192)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if b"\n\n" in chunk or b"\r\n\r\n" in chunk:
                break
    # A header block split across two chunks only costs reading the next chunk.
    return b"".join(chunks).decode("utf-8", errors="replace")


def python_packages_in(site_dir: Path, warnings: list[str]) -> list[Package]:
    """The distributions installed in one site-packages directory."""
    packages: list[Package] = []
    try:
        entries = sorted(os.scandir(site_dir), key=lambda e: e.name)
    except OSError:
        return packages
    location = str(site_dir)
    for entry in entries:
        if entry.name.endswith(".dist-info"):
            metadata = Path(entry.path, "METADATA")
        elif entry.name.endswith(".egg-info"):
            # distutils writes a single PKG-INFO file named *.egg-info, setuptools a dir.
            metadata = Path(entry.path, "PKG-INFO") if entry.is_dir() else Path(entry.path)
        else:
            continue
        if entry.name.startswith("~"):
            continue  # pip's temporary rename during an uninstall, not an installation
        try:
            name, version = parse_metadata(_read_headers(metadata), str(metadata))
        except (OSError, InventoryFormatError) as exc:
            fallback = parse_dist_dir_name(entry.name)
            if fallback is None:
                warnings.append(f"skipped {entry.path}: {exc}")
                continue
            name, version = fallback
        packages.append(Package(
            ecosystem=Ecosystem(PYPI), name=name, version=version,
            purl=purl_for(PYPI, name, version), location=location,
        ))
    return packages


def collect_python_packages(
    python_paths: Sequence[Path | str] = (),
    include_path_pythons: bool = True,
    warnings: list[str] | None = None,
) -> list[Package]:
    """PyPI distributions of every interpreter on PATH and of each given venv/site dir.

    Interpreters run in parallel (each once, 5 s timeout, skipped when it fails: a pyenv
    shim for a version not selected exits 127).  Deduplicated by (name, version, dir).
    """
    warnings = warnings if warnings is not None else []
    site_dirs: list[Path] = []
    if include_path_pythons:
        interpreters = python_interpreters()
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(interpreters)))) as pool:
            for dirs in pool.map(_site_dirs_of, interpreters):
                site_dirs += dirs
    for given in python_paths:
        site_dirs += _venv_site_dirs(Path(given))
    unique: dict[Path, None] = {}
    for directory in site_dirs:
        if directory.is_dir():
            unique.setdefault(directory.resolve(), None)
    packages: dict[tuple[str, str, str | None], Package] = {}
    for directory in unique:
        for package in python_packages_in(directory, warnings):
            packages.setdefault((package.name, package.version, package.location), package)
    return list(packages.values())


# --- the whole inventory -------------------------------------------------------------------

def collect_local(
    python_paths: Sequence[Path | str] = (),
    include_path_pythons: bool = True,
    fetch_changelogs: bool = False,
) -> Inventory:
    """The Inventory of this machine: identity, OS, kernels, OS and Python packages, and
    the security updates the package manager has pending.

    ``python_paths`` adds virtualenv roots or site-packages dirs to what the interpreters
    on PATH report (``include_path_pythons=False`` asks none of them).  The OS packages
    are judged in ``ecosystem_for_os(os)``; an OS no feed covers keeps its packages under
    ``<os id>:<version id>`` so nothing is lost.  ``fetch_changelogs=True`` also runs
    ``apt-get changelog`` for pending apt updates to learn their CVEs: the only step that
    uses the network, so it is off unless asked (``--changelogs``); without it, pending
    updates are still reported, by package.  Raises
    InventoryFormatError when a package database or apt list exists but cannot be parsed.
    """
    warnings: list[str] = []
    release = _os_release()
    os_packages: list[Package] = []
    os_info: OsInfo | None = None
    pending: list[PendingUpdate] = []
    if release is not None:
        ecosystem = ecosystem_for_os(release) or Ecosystem(
            f"{release.id}:{release.version_id}" if release.version_id else release.id)
        os_packages = _os_packages(ecosystem)
        try:
            boot_names = os.listdir("/boot")
        except OSError:
            boot_names = []
        kernels = installed_kernels(boot_names, os_packages)
        running = os.uname().release
        os_info = OsInfo.from_os_release(
            release, kernel_running=running, kernels_installed=kernels,
            reboot_required=reboot_required(
                running, kernels, scheme_of(ecosystem),
                flag_file=Path(REBOOT_REQUIRED_FLAG).exists()))
        pending = _pending_updates(release, ecosystem, os_packages, warnings,
                                   fetch_changelogs)
    else:
        warnings.append("no /etc/os-release: operating system packages not collected")
    python = collect_python_packages(python_paths, include_path_pythons, warnings)
    return Inventory.from_packages(
        os_packages + python,
        asset=_asset_identity(),
        os=os_info,
        pending_updates=pending,
        collector=Collector(name="local"),
        complete=release is not None,
        warnings=warnings,
    )
