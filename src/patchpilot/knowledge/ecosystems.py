"""Ecosystem names: normalising what feeds and hosts say into one spelling.

OSV spells a distribution release several ways (``Alpine:v3.18``, ``Ubuntu:22.04:LTS``,
``Debian:12``); hosts say ``ID=debian VERSION_ID=12`` in /etc/os-release.  Everything is
normalised to ``<Distribution>:<major release>`` so advisories for one release never judge
a host on another.  See https://ossf.github.io/osv-schema/#affectedpackage-field
"""

from __future__ import annotations

import re

from patchpilot.models import Ecosystem, OsRelease

# Debian and Ubuntu releases by codename: the tracker speaks in codenames.
DEBIAN_CODENAMES: dict[str, str] = {
    "buzz": "1.1", "rex": "1.2", "bo": "1.3", "hamm": "2.0", "slink": "2.1", "potato": "2.2",
    "woody": "3.0", "sarge": "3.1", "etch": "4", "lenny": "5", "squeeze": "6", "wheezy": "7",
    "jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11", "bookworm": "12",
    "trixie": "13", "forky": "14", "duke": "15", "sid": "unstable",
}
UBUNTU_CODENAMES: dict[str, str] = {
    "trusty": "14.04", "xenial": "16.04", "bionic": "18.04", "focal": "20.04",
    "jammy": "22.04", "mantic": "23.10", "noble": "24.04", "oracular": "24.10",
    "plucky": "25.04", "questing": "25.10",
}

# Version scheme of each ecosystem family (see knowledge.versions).
_SCHEMES: dict[str, str] = {
    "Debian": "dpkg", "Ubuntu": "dpkg",
    "Alpine": "apk", "Wolfi": "apk", "Chainguard": "apk",
    "AlmaLinux": "rpm", "Rocky Linux": "rpm", "Red Hat": "rpm", "Oracle Linux": "rpm",
    "openSUSE": "rpm", "SUSE": "rpm", "Fedora": "rpm", "Amazon Linux": "rpm",
    "Mageia": "rpm", "Photon OS": "rpm", "Azure Linux": "rpm", "CentOS": "rpm",
    "PyPI": "pep440", "npm": "semver", "crates.io": "semver", "Go": "go", "Maven": "maven",
    "NuGet": "nuget", "RubyGems": "gem", "Packagist": "composer", "Hex": "semver",
    "Pub": "semver", "Hackage": "generic", "SwiftURL": "semver", "GitHub Actions": "semver",
    "CRAN": "generic", "Bioconductor": "generic", "Julia": "semver",
    # Devices' firmware and programs named by CPE (knowledge.cpe_names.CPE).
    "CPE": "firmware",
}

# /etc/os-release ID -> the distribution name OSV uses.
_OS_IDS: dict[str, str] = {
    "debian": "Debian", "ubuntu": "Ubuntu", "alpine": "Alpine", "almalinux": "AlmaLinux",
    "rocky": "Rocky Linux", "rhel": "Red Hat", "centos": "CentOS", "ol": "Oracle Linux",
    "fedora": "Fedora", "amzn": "Amazon Linux", "opensuse-leap": "openSUSE",
    "sles": "SUSE", "wolfi": "Wolfi", "chainguard": "Chainguard", "mageia": "Mageia",
    "photon": "Photon OS", "azurelinux": "Azure Linux", "mariner": "Azure Linux",
}

# Distributions whose ecosystem carries only the major release ("AlmaLinux:9").
_MAJOR_ONLY = {"AlmaLinux", "Rocky Linux", "Red Hat", "CentOS", "Oracle Linux",
               "Fedora", "Amazon Linux", "Debian"}


def _release(distro: str, release: str) -> str:
    release = release.strip()
    if distro == "Alpine":
        release = release.lstrip("v")
        parts = release.split(".")
        return ".".join(parts[:2])
    if distro in _MAJOR_ONLY:
        if distro == "Debian" and release in DEBIAN_CODENAMES:
            return DEBIAN_CODENAMES[release]
        return release.split(".")[0]
    if distro == "Ubuntu":
        return UBUNTU_CODENAMES.get(release, release)
    return release


def normalize_ecosystem(raw: str) -> Ecosystem:
    """Normalise an ecosystem string from a feed.

    >>> normalize_ecosystem("Alpine:v3.18"), normalize_ecosystem("Ubuntu:22.04:LTS")
    ('Alpine:3.18', 'Ubuntu:22.04')
    """
    raw = raw.strip()
    if ":" not in raw:
        return Ecosystem(raw)
    distro, _, rest = raw.partition(":")
    if distro == "Ubuntu":
        # Ubuntu:22.04:LTS, Ubuntu:Pro:18.04:LTS, Ubuntu:Pro:FIPS:20.04:LTS -> the release.
        found = re.search(r"\d{2}\.\d{2}", rest)
        return Ecosystem(f"Ubuntu:{found.group(0)}" if found else f"Ubuntu:{rest}")
    if distro == "Red Hat":
        # "Red Hat:enterprise_linux:9::appstream" -> Red Hat:9
        found = re.search(r"(?:^|:)(\d+)(?::|$|\.)", rest)
        return Ecosystem(f"Red Hat:{found.group(1)}" if found else raw)
    if distro == "Rocky Linux" or distro == "AlmaLinux":
        return Ecosystem(f"{distro}:{_release(distro, rest.split(':')[0])}")
    if distro == "Debian":
        return Ecosystem(f"Debian:{_release(distro, rest.split(':')[0])}")
    if distro == "Alpine":
        return Ecosystem(f"Alpine:{_release(distro, rest)}")
    if distro in _SCHEMES and distro not in ("Alpine",):
        # Language ecosystems never carry a release; distributions keep theirs.
        return Ecosystem(f"{distro}:{_release(distro, rest)}") if _SCHEMES[distro] in (
            "rpm", "apk", "dpkg") else Ecosystem(distro)
    return Ecosystem(raw)


def distro_of(ecosystem: str) -> str:
    """The ecosystem without its release: ``Debian:12`` -> ``Debian``."""
    return ecosystem.split(":", 1)[0]


def scheme_of(ecosystem: str) -> str:
    """The version scheme an ecosystem's versions follow (``dpkg``, ``rpm``, ``pep440``, …)."""
    return _SCHEMES.get(distro_of(ecosystem), "generic")


def is_distribution(ecosystem: str) -> bool:
    """True for an operating-system distribution (versions judged per release)."""
    return scheme_of(ecosystem) in ("dpkg", "rpm", "apk")


def ecosystem_for_os(os: OsRelease) -> Ecosystem | None:
    """The ecosystem of a host's OS packages, or None for an OS no feed covers."""
    distro = _OS_IDS.get(os.id)
    if distro is None:
        for like in os.id_like:
            if like in ("rhel", "centos", "fedora") and os.version_id:
                distro = "Red Hat"
                break
    if distro is None:
        return None
    release = os.version_id or ""
    if not release and os.codename:
        release = os.codename
    if distro == "Debian" and not os.version_id and os.codename:
        release = DEBIAN_CODENAMES.get(os.codename, os.codename)
    if not release:
        return Ecosystem(distro)
    return Ecosystem(f"{distro}:{_release(distro, release)}")
