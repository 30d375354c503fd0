"""purl -> Package: exact mappings for every purl type the SBOM sources read."""

from __future__ import annotations

import pytest

from patchpilot.inventory.sources.purl_map import (
    SbomPackages,
    map_purl,
    package_from_purl,
)
from patchpilot.models import Ecosystem, Package

LOC = "sbom.json"


@pytest.mark.parametrize(("purl", "ecosystem", "name", "version"), [
    ("pkg:pypi/django@4.2.1", "PyPI", "django", "4.2.1"),
    ("pkg:npm/lodash@4.17.21", "npm", "lodash", "4.17.21"),
    ("pkg:npm/%40angular/core@9.1.0", "npm", "@angular/core", "9.1.0"),
    # osv-scalibr percent-encodes the slash of a scoped name into the name itself.
    ("pkg:npm/%40gar%2Fpromisify@1.1.3", "npm", "@gar/promisify", "1.1.3"),
    ("pkg:golang/github.com/gorilla/context@v1.1.1", "Go", "github.com/gorilla/context",
     "v1.1.1"),
    ("pkg:golang/google.golang.org/genproto@v0.0.0-2020#googleapis/api", "Go",
     "google.golang.org/genproto", "v0.0.0-2020"),
    ("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar", "Maven",
     "org.apache.logging.log4j:log4j-core", "2.14.1"),
    ("pkg:cargo/serde@1.0.0", "crates.io", "serde", "1.0.0"),
    ("pkg:gem/rails@7.0.4", "RubyGems", "rails", "7.0.4"),
    ("pkg:nuget/Newtonsoft.Json@13.0.1", "NuGet", "Newtonsoft.Json", "13.0.1"),
    ("pkg:composer/laravel/framework@7.12.0", "Packagist", "laravel/framework", "7.12.0"),
])
def test_language_purls(purl: str, ecosystem: str, name: str, version: str) -> None:
    assert package_from_purl(purl, LOC, None) == Package(
        ecosystem=Ecosystem(ecosystem), name=name, version=version, purl=purl, location=LOC)


@pytest.mark.parametrize(("purl", "expected"), [
    # syft: release in distro=<id>-<version>, source package in upstream (name@version).
    ("pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64&upstream=glibc%402.36-9&distro=debian-12",
     ("Debian:12", "libc6", "2.36-9+deb12u4", "amd64", "glibc", "2.36-9")),
    ("pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.15?arch=amd64&upstream=openssl&distro=ubuntu-22.04",
     ("Ubuntu:22.04", "libssl3", "3.0.2-0ubuntu1.15", "amd64", "openssl", "3.0.2-0ubuntu1.15")),
    # A codename as the release; the binary package is its own source.
    ("pkg:deb/debian/bash@5.2.15-2+b2?distro=bookworm",
     ("Debian:12", "bash", "5.2.15-2+b2", None, "bash", "5.2.15-2+b2")),
    # osv-scalibr: distro=<codename>, source=, the epoch inside the version.
    ("pkg:deb/ubuntu/pcre3@2%3A8.39-12ubuntu0.1?arch=amd64&distro=focal&source=pcre3",
     ("Ubuntu:20.04", "pcre3", "2:8.39-12ubuntu0.1", "amd64", "pcre3", "2:8.39-12ubuntu0.1")),
    # rpm: the epoch qualifier joins the version; upstream is the source rpm's file name.
    ("pkg:rpm/rocky/openssl@3.0.7-24.el9?arch=x86_64&distro=rocky-9.3&epoch=1"
     "&upstream=openssl-3.0.7-24.el9.src.rpm",
     ("Rocky Linux:9", "openssl", "1:3.0.7-24.el9", "x86_64", "openssl", "1:3.0.7-24.el9")),
    ("pkg:rpm/almalinux/bash@5.1.8-6.el9?arch=x86_64&distro=almalinux-9.3&epoch=0",
     ("AlmaLinux:9", "bash", "5.1.8-6.el9", "x86_64", None, None)),
    ("pkg:rpm/redhat/curl@7.76.1-26.el9?distro=rhel-9.3",
     ("Red Hat:9", "curl", "7.76.1-26.el9", None, None, None)),
    ("pkg:rpm/opensuse/bash@4.4-9.10.1?distro=opensuse-leap-15.5",
     ("openSUSE:15.5", "bash", "4.4-9.10.1", None, None, None)),
    ("pkg:apk/alpine/ssl_client@1.36.1-r27?arch=x86_64&upstream=busybox&distro=alpine-3.18.4",
     ("Alpine:3.18", "ssl_client", "1.36.1-r27", "x86_64", "busybox", "1.36.1-r27")),
    # osv-scalibr: a bare release and origin= for the aport.
    ("pkg:apk/alpine/zlib@1.2.12-r1?arch=x86_64&distro=3.22.0&origin=zlib",
     ("Alpine:3.22", "zlib", "1.2.12-r1", "x86_64", "zlib", "1.2.12-r1")),
])
def test_os_purls(purl: str, expected: tuple[str, str, str, str | None, str | None, str | None]
                  ) -> None:
    ecosystem, name, version, arch, source_name, source_version = expected
    assert package_from_purl(purl, LOC, None) == Package(
        ecosystem=Ecosystem(ecosystem), name=name, version=version, arch=arch,
        source_name=source_name, source_version=source_version, purl=purl, location=LOC)


def test_os_purl_release_from_the_caller() -> None:
    purl = "pkg:deb/debian/openssl@3.0.11-1~deb12u2"
    assert map_purl(purl, LOC, None) == (
        "deb purl without a distribution release (no distro qualifier); "
        "pass --distro (e.g. debian:12, alpine:3.18)")
    package = package_from_purl(purl, LOC, Ecosystem("Debian:12"))
    assert package is not None and package.ecosystem == "Debian:12"
    # The qualifier wins over the caller; a distro of another family is not used.
    assert package_from_purl(purl + "?distro=debian-11", LOC, Ecosystem("Debian:12")
                             ).ecosystem == "Debian:11"  # type: ignore[union-attr]
    assert package_from_purl(purl, LOC, Ecosystem("Alpine:3.18")) is None
    assert map_purl("pkg:apk/alpine/musl@1.2.4-r2?distro=alpine", LOC, None) == (
        "apk purl without a distribution release (distro='alpine'); "
        "pass --distro (e.g. debian:12, alpine:3.18)")


@pytest.mark.parametrize(("purl", "reason"), [
    ("pkg:generic/openssl@1.1.1", "purl type 'generic' names no ecosystem advisories cover"),
    ("pkg:github/actions/checkout@v4", "purl type 'github' names no ecosystem advisories cover"),
    ("pkg:npm/left-pad", "purl without a version"),
    ("pkg:maven/log4j-core@2.14.1", "maven purl without a namespace (group)"),
    ("not a purl", "invalid purl: purl is missing the required \"pkg\" scheme component: "
                   "'not a purl'."),
])
def test_unmapped(purl: str, reason: str) -> None:
    assert map_purl(purl, LOC, None) == reason
    assert package_from_purl(purl, LOC, None) is None


def test_sbom_packages_dedup_and_warnings() -> None:
    found = SbomPackages(LOC, None, "component")
    found.add("pkg:maven/org.x/a@1?type=jar", "a@1")
    found.add("pkg:maven/org.x/a@1?type=jar", "a@1")  # the same purl twice
    found.add("pkg:maven/org.x/a@1?classifier=tests&type=test-jar", "a@1")  # same package
    found.add(None, "nginx@1.21.1")
    for index in range(12):
        found.add(f"pkg:generic/thing{index}@1", f"thing{index}@1")
    assert [p.name for p in found.packages] == ["org.x:a"]
    assert found.warnings() == (
        "sbom.json: 1 component not matched (no purl): nginx@1.21.1",
        "sbom.json: 12 components not matched (purl type 'generic' names no ecosystem "
        "advisories cover): thing0@1, thing1@1, thing2@1, thing3@1, thing4@1, thing5@1, "
        "thing6@1, thing7@1, thing8@1, thing9@1 and 2 more",
    )
