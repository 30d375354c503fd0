"""Package URLs (purl) -> Package: the mapping every SBOM source shares.

An SBOM names each component by its purl (https://github.com/package-url/purl-spec,
types in PURL-TYPES.rst).  The purl *type* says the ecosystem; for operating-system
packages (``deb``, ``rpm``, ``apk``) the *namespace* names the distribution and the
``distro`` qualifier its release, spelled as the tools write it:

* syft: ``distro=debian-12``, ``distro=ubuntu-22.04``, ``distro=rocky-9.3``,
  ``distro=alpine-3.18.4``; the source package in ``upstream`` (``glibc`` or
  ``glibc@2.36-8`` for deb, ``openssl-3.0.7-24.el9.src.rpm`` for rpm);
* osv-scalibr: ``distro=focal`` (a codename) or ``distro=3.22.0`` (a bare release), the
  source in ``source`` / ``sourceversion`` (deb) or ``origin`` (apk);
* the ``epoch`` qualifier for rpm (the purl keeps the epoch out of the version).

Choices:

* A distribution package is only useful with its release (advisories are per release),
  so an OS purl whose release neither the qualifier nor the caller's ``distro`` tells
  is *not* mapped: ``map_purl`` says why, and the SBOM sources turn that into a warning.
  So is a purl of a type no advisory feed covers (``generic``, ``github``, ``docker``, …).
  Nothing is dropped silently: ``SbomPackages`` collects the reasons for the warnings.
* ``Package.purl`` keeps the purl as the SBOM wrote it, so a finding leads back to it.
* Versions are kept as written (a Go ``v1.2.3`` too: the version readers strip the ``v``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packageurl import PackageURL

from patchpilot.knowledge.ecosystems import (
    DEBIAN_CODENAMES,
    UBUNTU_CODENAMES,
    ecosystem_for_os,
    scheme_of,
)
from patchpilot.models import Ecosystem, OsRelease, Package

# Language purl types -> OSV ecosystem (https://ossf.github.io/osv-schema/#affectedpackage-field).
LANGUAGE_TYPES: dict[str, str] = {
    "pypi": "PyPI", "npm": "npm", "golang": "Go", "maven": "Maven", "cargo": "crates.io",
    "gem": "RubyGems", "nuget": "NuGet", "composer": "Packagist", "hex": "Hex", "pub": "Pub",
}

# Operating-system purl types -> the version scheme of the distributions they belong to.
OS_TYPES: dict[str, str] = {"deb": "dpkg", "rpm": "rpm", "apk": "apk"}

# purl namespace (the vendor, as syft and osv-scalibr write it) -> /etc/os-release ID, which
# knowledge.ecosystems.ecosystem_for_os turns into the OSV distribution name.
_NAMESPACE_OS_IDS: dict[str, str] = {
    "debian": "debian", "ubuntu": "ubuntu", "alpine": "alpine", "wolfi": "wolfi",
    "chainguard": "chainguard", "almalinux": "almalinux", "rocky": "rocky",
    "redhat": "rhel", "rhel": "rhel", "centos": "centos", "oracle": "ol", "ol": "ol",
    "fedora": "fedora", "amazon": "amzn", "amzn": "amzn", "opensuse": "opensuse-leap",
    "opensuse-leap": "opensuse-leap", "suse": "sles", "sles": "sles", "mageia": "mageia",
    "photon": "photon", "azurelinux": "azurelinux", "mariner": "mariner",
}

# "<os-release ID>-<release>": "debian-12", "opensuse-leap-15.5", "debian-bookworm".  The
# lazy ID with a release without "-" splits "opensuse-leap-15.5" after "leap".
_DISTRO_QUALIFIER = re.compile(r"^(?P<id>[a-z][a-z0-9_-]*?)-(?P<release>[0-9a-z][\w.]*)$")
_CODENAMES = {**DEBIAN_CODENAMES, **UBUNTU_CODENAMES}


def _is_release(value: str) -> bool:
    """A release number (``12``, ``3.18.4``) or a Debian/Ubuntu codename."""
    return value[:1].isdigit() or value in _CODENAMES


def _split_distro(value: str) -> tuple[str | None, str | None]:
    """(os-release ID or None, release or None) of a ``distro`` qualifier."""
    value = value.strip().lower()
    if not value:
        return None, None
    if _is_release(value):
        return None, value  # osv-scalibr: "focal", "3.22.0"
    found = _DISTRO_QUALIFIER.match(value)
    if found and _is_release(found.group("release")):
        return found.group("id"), found.group("release")
    return None, None


def _release_ecosystem(os_id: str, release: str) -> Ecosystem | None:
    """``Debian:12`` from ("debian", "12") or ("debian", "bookworm"); None if unknown."""
    if release[:1].isdigit():
        return ecosystem_for_os(OsRelease(id=os_id, version_id=release))
    return ecosystem_for_os(OsRelease(id=os_id, codename=release))


def _os_ecosystem(purl: PackageURL, distro: Ecosystem | None) -> tuple[Ecosystem | None, str]:
    """(the ecosystem with its release, "") of an OS purl, or (None, why it has none)."""
    namespace = (purl.namespace or "").lower()
    qualifier = str((purl.qualifiers or {}).get("distro", ""))
    q_id, q_release = _split_distro(qualifier)
    if q_release:
        # The qualifier's ID when it is one PatchPilot knows (a "redhat" namespace with
        # "rhel-9.3"); else the namespace's (osv-scalibr's bare "focal").
        for os_id in (q_id, _NAMESPACE_OS_IDS.get(namespace)):
            if os_id is None:
                continue
            ecosystem = _release_ecosystem(os_id, q_release)
            if ecosystem is not None and ":" in ecosystem:
                return ecosystem, ""
    scheme = OS_TYPES[purl.type]
    if distro and ":" in distro and scheme_of(distro) == scheme:
        return distro, ""
    what = f"distro={qualifier!r}" if qualifier else "no distro qualifier"
    return None, (f"{purl.type} purl without a distribution release ({what}); "
            "pass --distro (e.g. debian:12, alpine:3.18)")


def _source(purl: PackageURL, name: str, version: str) -> tuple[str | None, str | None]:
    """(source package, its version) from the qualifiers the SBOM tools write."""
    qualifiers: dict[str, str] = purl.qualifiers or {}
    if purl.type == "rpm":
        upstream = qualifiers.get("upstream", "")
        for suffix in (".src.rpm", ".nosrc.rpm"):
            if upstream.endswith(suffix):
                # openssl-3.0.7-24.el9.src.rpm: name-version-release.src.rpm (rpm(8)).
                parts = upstream[: -len(suffix)].rsplit("-", 2)
                upstream = parts[0] if len(parts) == 3 else ""
        # A source rpm is built once; its binaries share its epoch:version-release.
        return (upstream, version) if upstream else (None, None)
    raw = qualifiers.get("upstream") or qualifiers.get("source") or qualifiers.get("origin")
    if not raw:
        # dpkg and apk: a package without a separate source is its own source.
        return name, version
    source_name, _, source_version = raw.partition("@")  # syft: "glibc@2.36-8"
    source_version = source_version or qualifiers.get("sourceversion") or version
    return source_name or name, source_version


def _language_name(purl: PackageURL) -> str | None:
    """The package name as OSV spells it for a language ecosystem, or None if invalid."""
    namespace = purl.namespace or ""
    if purl.type == "maven":
        # Maven coordinates are "group:artifact" in OSV; a group is required.
        return f"{namespace}:{purl.name}" if namespace else None
    if purl.type == "npm" and namespace:
        return f"{namespace if namespace.startswith('@') else '@' + namespace}/{purl.name}"
    if purl.type in ("golang", "composer") and namespace:
        # A Go module path / a Composer "vendor/package"; a Go subpath names a package
        # inside the module, whose advisories are the module's.
        return f"{namespace}/{purl.name}"
    return purl.name


def map_purl(purl: str, location: str | None, distro: Ecosystem | None) -> Package | str:
    """The Package a purl names, or the reason (one line) it names none PatchPilot matches.

    ``distro`` is the release OS purls without a ``distro`` qualifier belong to (the
    caller's ``--distro``, or the OS the SBOM itself names).
    """
    try:
        parsed = PackageURL.from_string(purl.strip())
    except ValueError as exc:
        return f"invalid purl: {exc}"
    if not parsed.version:
        return "purl without a version"
    version = parsed.version
    qualifiers: dict[str, str] = parsed.qualifiers or {}
    if parsed.type in LANGUAGE_TYPES:
        name = _language_name(parsed)
        if name is None:
            return f"{parsed.type} purl without a namespace (group)"
        return Package(ecosystem=Ecosystem(LANGUAGE_TYPES[parsed.type]), name=name,
                       version=version, purl=purl, location=location)
    if parsed.type not in OS_TYPES:
        return f"purl type {parsed.type!r} names no ecosystem advisories cover"
    ecosystem, why = _os_ecosystem(parsed, distro)
    if ecosystem is None:
        return why
    if parsed.type == "rpm":
        epoch = qualifiers.get("epoch", "")
        if epoch.isdigit() and epoch != "0" and ":" not in version:
            # rpm and OSV compare epoch:version-release (rpm.py writes the same form).
            version = f"{epoch}:{version}"
    source_name, source_version = _source(parsed, parsed.name, version)
    return Package(
        ecosystem=Ecosystem(ecosystem),
        name=parsed.name,
        version=version,
        arch=qualifiers.get("arch") or None,
        source_name=source_name,
        source_version=source_version,
        purl=purl,
        location=location,
    )


def package_from_purl(purl: str, location: str, distro: Ecosystem | None) -> Package | None:
    """The Package a purl names, or None (``map_purl`` says why; record a warning)."""
    mapped = map_purl(purl, location, distro)
    return mapped if isinstance(mapped, Package) else None


# How many names one warning lists before "and N more".
_EXAMPLES = 10


@dataclass
class SbomPackages:
    """Packages gathered from an SBOM's components, deduplicated, with what was skipped.

    ``noun`` is the SBOM's word for an entry ("component", "package", "artifact").  Every
    entry that does not become a Package is counted under its reason, so ``warnings``
    says what was not matched -- one line per reason, naming the first entries.
    """

    location: str
    distro: Ecosystem | None
    noun: str = "component"
    packages: list[Package] = field(default_factory=list)
    _seen_purls: set[str] = field(default_factory=set)
    _seen: set[tuple[str, str, str, str | None]] = field(default_factory=set)
    _skipped: dict[str, list[str]] = field(default_factory=dict)

    def add(self, purl: str | None, label: str) -> None:
        """Map one entry; ``label`` names it in warnings (``name@version``)."""
        if not purl:
            self.skip("no purl", label)
            return
        if purl in self._seen_purls:
            return  # the same component listed twice (npm's nested node_modules, …)
        self._seen_purls.add(purl)
        mapped = map_purl(purl, self.location, self.distro)
        if isinstance(mapped, str):
            self.skip(mapped, label)
            return
        # Two purls differing only in qualifiers (maven type=jar / type=pom) are one package.
        key = (mapped.ecosystem, mapped.name, mapped.version, mapped.arch)
        if key not in self._seen:
            self._seen.add(key)
            self.packages.append(mapped)

    def skip(self, reason: str, label: str) -> None:
        """Record an entry that is not a package PatchPilot can match."""
        self._skipped.setdefault(reason, []).append(label)

    def warnings(self) -> tuple[str, ...]:
        """One warning per reason an entry was skipped."""
        lines = []
        for reason, labels in self._skipped.items():
            shown = ", ".join(labels[:_EXAMPLES])
            more = f" and {len(labels) - _EXAMPLES} more" if len(labels) > _EXAMPLES else ""
            plural = "" if len(labels) == 1 else "s"
            lines.append(f"{self.location}: {len(labels)} {self.noun}{plural} not matched "
                         f"({reason}): {shown}{more}")
        return tuple(lines)
