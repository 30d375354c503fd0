"""Package URLs (purl) for the packages the sources find.

Spec: https://github.com/package-url/purl-spec/blob/main/PURL-TYPES.rst -- ``deb``,
``rpm``, ``apk`` and ``pypi``.  The distribution release goes in the ``distro`` qualifier
(``debian-12``, ``almalinux-9``, ``alpine-3.18``), as syft and osv-scalibr write it.
"""

from __future__ import annotations

from functools import lru_cache

from packageurl import PackageURL

from patchpilot.knowledge.ecosystems import distro_of, scheme_of

# OSV distribution name -> purl namespace (the vendor, lower case, as syft writes it).
_NAMESPACES: dict[str, str] = {
    "Debian": "debian", "Ubuntu": "ubuntu", "Alpine": "alpine", "Wolfi": "wolfi",
    "Chainguard": "chainguard", "AlmaLinux": "almalinux", "Rocky Linux": "rocky",
    "Red Hat": "redhat", "CentOS": "centos", "Oracle Linux": "oracle", "Fedora": "fedora",
    "Amazon Linux": "amazon", "openSUSE": "opensuse", "SUSE": "suse", "Mageia": "mageia",
    "Photon OS": "photon", "Azure Linux": "azurelinux",
}

# Version scheme -> purl type.
_TYPES = {"dpkg": "deb", "rpm": "rpm", "apk": "apk"}


def _namespace(distro: str) -> str:
    return _NAMESPACES.get(distro, distro.lower().replace(" ", ""))


# An estate repeats the same (ecosystem, name, version, arch) on host after host, and
# packageurl's normalising costs ~0.3 ms a purl: an SSH scan of 50 like hosts spent most
# of its client time here.  Pure function of strings, so a bounded cache is safe.
@lru_cache(maxsize=65536)
def purl_for(
    ecosystem: str,
    name: str,
    version: str,
    *,
    arch: str | None = None,
    source_name: str | None = None,
) -> str | None:
    """The purl of one installed package, or None for an ecosystem without a purl type here.

    >>> purl_for("Debian:12", "libssl3", "3.0.11-1~deb12u2", arch="amd64",
    ...          source_name="openssl")
    'pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl'
    >>> purl_for("AlmaLinux:9", "bash", "1:5.1.8-6.el9", arch="x86_64")
    'pkg:rpm/almalinux/bash@5.1.8-6.el9?arch=x86_64&distro=almalinux-9&epoch=1'
    """
    if ecosystem == "PyPI":
        return PackageURL(type="pypi", name=name, version=version).to_string()
    purl_type = _TYPES.get(scheme_of(ecosystem))
    if purl_type is None:
        return None
    distro = distro_of(ecosystem)
    namespace = _namespace(distro)
    qualifiers: dict[str, str] = {}
    if arch:
        qualifiers["arch"] = arch
    _, _, release = ecosystem.partition(":")
    if release:
        qualifiers["distro"] = f"{namespace}-{release}"
    if purl_type == "rpm":
        # The rpm purl keeps the epoch out of the version, in its own qualifier.
        epoch, sep, rest = version.partition(":")
        if sep and epoch.isdigit():
            version = rest
            if epoch != "0":
                qualifiers["epoch"] = epoch
    if source_name and source_name != name:
        # syft's spelling; lets an SBOM consumer reach the source package advisories name.
        qualifiers["upstream"] = source_name
    return PackageURL(
        type=purl_type, namespace=namespace, name=name, version=version, qualifiers=qualifiers
    ).to_string()
