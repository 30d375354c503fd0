"""Is a reboot needed?  The running kernel against the newest installed one.

A kernel security update only protects the host after a reboot into it, so the inventory
records whether the newest installed kernel is newer than the one running.  Kernel
releases are spelled as ``uname -r`` prints them:

* Debian/Ubuntu: ``6.1.0-18-amd64`` (ABI ``6.1.0-18``, flavour ``amd64``), from
  ``linux-image-<release>`` package names and /boot/vmlinuz-<release>;
* Red Hat family: ``5.14.0-362.8.1.el9_3.x86_64`` (``+debug`` for the debug flavour),
  from the ``kernel-core`` package's version-release.arch;
* Alpine: ``6.6.14-0-lts`` (package ``linux-lts`` 6.6.14-r0).

Only kernels of the running flavour are compared: a ``cloud-amd64`` host with an older
``amd64`` kernel installed beside it does not boot into the latter.  Pure functions;
``inventory.collect`` gathers the names (/boot, the packages) and the
/var/run/reboot-required flag from the host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from patchpilot.errors import VersionError
from patchpilot.knowledge.versions import VersionKey, version_key
from patchpilot.models import Package

# Debian's update-notifier-common / unattended-upgrades (and every Ubuntu) touch this file
# when an upgraded package (a kernel, libc, …) wants a reboot.
REBOOT_REQUIRED_FLAG = "/var/run/reboot-required"

# An ecosystem of each scheme, only to pick version_key's ordering.
_ORDERING = {"dpkg": "Debian", "rpm": "Red Hat", "apk": "Alpine"}
_DPKG_RELEASE = re.compile(r"^(\d+\.\d+(?:\.\d+)?-\d+(?:\.\d+)*)-(.+)$")
_APK_RELEASE = re.compile(r"^(\d[\w.]*)-(\d+)-(.+)$")
_RPM_ARCH = re.compile(r"\.(x86_64|aarch64|ppc64le|s390x|i686|noarch)$")
_RPM_KERNELS = frozenset({"kernel", "kernel-core"})
# Debian/Ubuntu kernel images: linux-image-6.1.0-18-amd64 (not the linux-image-amd64
# metapackage, whose name carries no release).
_KERNEL_PACKAGE = re.compile(r"^linux-image-(\d[\w.+~-]*)$")


def _split(release: str, scheme: str) -> tuple[str, str]:
    """(a version string in the scheme's syntax, the flavour) of a kernel release."""
    if scheme == "dpkg":
        found = _DPKG_RELEASE.match(release)
        return (found.group(1), found.group(2)) if found else (release, "")
    if scheme == "apk":
        found = _APK_RELEASE.match(release)
        if found:
            return f"{found.group(1)}-r{found.group(2)}", found.group(3)
        return release, ""
    if scheme == "rpm":
        base, plus, variant = release.partition("+")
        return _RPM_ARCH.sub("", base), plus + variant
    return release, ""


def _key(release: str, scheme: str) -> tuple[VersionKey, str]:
    version, flavour = _split(release, scheme)
    return version_key(_ORDERING.get(scheme, "generic"), version), flavour


def reboot_required(running: str | None, installed: Iterable[str], scheme: str,
                    *, flag_file: bool = False) -> bool | None:
    """Whether the host must reboot to run its newest kernel; None when it cannot be told.

    True when ``flag_file`` (the distribution's /var/run/reboot-required exists) or when
    an installed kernel of the running flavour is newer than ``running`` in the scheme's
    version ordering (``dpkg``, ``rpm``, ``apk``).  None when ``running`` is unknown, no
    installed kernel has the running flavour (a container, which runs its host's kernel),
    or a release cannot be ordered; False otherwise.
    """
    if flag_file:
        return True
    if not running:
        return None
    try:
        running_key, flavour = _key(running, scheme)
        same_flavour = [key for key, fl in (_key(r, scheme) for r in installed)
                        if fl == flavour]
    except VersionError:
        return None
    if not same_flavour:
        return None
    return max(same_flavour) > running_key


def rpm_kernel_releases(packages: Iterable[Package]) -> list[str]:
    """``uname -r`` spellings of installed Red Hat family kernels (``kernel-core`` rpms).

    rpm's version here is ``[epoch:]version-release``; a kernel has no epoch, and
    ``uname -r`` is ``version-release.arch``.
    """
    releases = {f"{p.version.rpartition(':')[2]}.{p.arch}"
                for p in packages if p.name in _RPM_KERNELS and p.arch}
    return sorted(releases)


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
