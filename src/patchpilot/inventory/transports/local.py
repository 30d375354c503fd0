"""Collect the inventory of the machine PatchPilot runs on (``patchpilot scan local``).

This module only fetches text -- files, and the output of ``rpm``, ``ip`` and each Python
interpreter -- and hands it to the pure parsers in ``inventory.sources``.  It sends no
network traffic: no DNS lookup for the FQDN (read from /etc/hosts), no cloud metadata
service (the instance id comes from cloud-init's cache or the DMI asset tag).
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
from patchpilot.inventory.model import AssetIdentity, Collector, Inventory, OsInfo
from patchpilot.inventory.purls import purl_for
from patchpilot.inventory.sources.apk import parse_apk_installed
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
    """Kernel releases from /boot/vmlinuz-<release> names and linux-image-<release> packages."""
    kernels = {name.removeprefix("vmlinuz-") for name in boot_names
               if name.startswith("vmlinuz-")}
    for package in packages:
        found = _KERNEL_PACKAGE.match(package.name)
        if found:
            kernels.add(found.group(1))
    return sorted(kernels)


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
) -> Inventory:
    """The Inventory of this machine: identity, OS, kernels, OS and Python packages.

    ``python_paths`` adds virtualenv roots or site-packages dirs to what the interpreters
    on PATH report (``include_path_pythons=False`` asks none of them).  The OS packages
    are judged in ``ecosystem_for_os(os)``; an OS no feed covers keeps its packages under
    ``<os id>:<version id>`` so nothing is lost.  Raises InventoryFormatError when a
    package database exists but cannot be parsed.
    """
    warnings: list[str] = []
    release = _os_release()
    os_packages: list[Package] = []
    os_info: OsInfo | None = None
    if release is not None:
        ecosystem = ecosystem_for_os(release) or Ecosystem(
            f"{release.id}:{release.version_id}" if release.version_id else release.id)
        os_packages = _os_packages(ecosystem)
        try:
            boot_names = os.listdir("/boot")
        except OSError:
            boot_names = []
        os_info = OsInfo.from_os_release(
            release, kernel_running=os.uname().release,
            kernels_installed=installed_kernels(boot_names, os_packages))
    else:
        warnings.append("no /etc/os-release: operating system packages not collected")
    python = collect_python_packages(python_paths, include_path_pythons, warnings)
    return Inventory.from_packages(
        os_packages + python,
        asset=_asset_identity(),
        os=os_info,
        collector=Collector(name="local"),
        complete=release is not None,
        warnings=warnings,
    )
