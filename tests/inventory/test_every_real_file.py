"""Every real file of ../shared/data/inventories, read as ``patchpilot scan file`` reads it
(no --type, no --distro): it parses -- its warnings saying what was skipped or inferred --
or it is refused with a reason that names the file (issue 12 §3).

Each file is listed here with what it must give: (packages, warnings) when it parses, the
start of the reason when it is refused.  The refused ones are, by kind:

* broken on purpose by the projects they come from: empty files, invalid XML, text that is
  not a go.mod, go.mod fragments without a module line (the go command refuses them too);
* genuinely without a package: lock files with no dependency, an SBOM with no package --
  an inventory without packages would close every finding of its asset, so it is refused;
* only code that is not a registry release (git, local folders, tarball URLs, generic or
  CPE-only SBOM entries): nothing advisories speak of, each entry named in the reason;
* package databases whose release neither --distro nor their own versions tell (the
  reason suggests what to pass, e.g. debian:10 from apt 1.8.2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.transports.file import UNKNOWN_CONTENT, read_inventory_file

NPM = "osv-scalibr__language__javascript__packagelockjson__"
PY = "osv-scalibr__language__python__"
BOM = "bom-examples__SBOM__"

# File -> (packages, warnings) of the inventory read from it.
PARSED: dict[str, tuple[int, int]] = {
    "cargo-lock/osv-scalibr__real-rust-project__Cargo.lock": (2, 0),
    "cargo-lock/osv-scanner__deprecated-vuln__Cargo.lock": (6, 0),
    "cargo-lock/syft__pkg-coverage__Cargo.lock": (3, 0),
    f"cyclonedx/{BOM}cern-lhc-vdm-editor-e564943__bom.json": (43, 0),
    f"cyclonedx/{BOM}dropwizard-1.3.15__bom.json": (167, 0),
    f"cyclonedx/{BOM}juice-shop__v11.1.2__bom.json": (840, 0),
    f"cyclonedx/{BOM}juice-shop__v11.1.2__bom.xml": (840, 0),
    f"cyclonedx/{BOM}juice-shop__via_npm__bare__bom.1.2.json": (978, 0),
    f"cyclonedx/{BOM}juice-shop__via_npm__bare__bom.1.3.json": (978, 0),
    f"cyclonedx/{BOM}juice-shop__via_npm__bare__bom.1.3.xml": (978, 0),
    f"cyclonedx/{BOM}keycloak-10.0.2__bom.json": (902, 0),
    f"cyclonedx/{BOM}laravel-7.12.0__bom.1.1.xml": (62, 0),
    f"cyclonedx/{BOM}laravel-7.12.0__bom.1.2.json": (62, 0),
    f"cyclonedx/{BOM}laravel-7.12.0__bom.1.4.json": (62, 0),
    f"cyclonedx/{BOM}laravel-7.12.0__bom.1.4.xml": (62, 0),
    f"cyclonedx/{BOM}proton-bridge__proton-bridge-v1.6.3.bom.xml": (201, 0),
    f"cyclonedx/{BOM}proton-bridge__proton-bridge-v1.8.0.bom.json": (201, 0),
    "cyclonedx/osv-scalibr__sbom__cdx__sbom-with-locations.cdx.json": (1, 0),
    "cyclonedx/osv-scanner__scan__source__sbom-insecure__alpine-zlib-16.cdx.json": (1, 0),
    "cyclonedx/osv-scanner__scan__source__sbom-insecure__alpine.cdx.xml": (14, 1),
    "debian12-dpkg-status": (710, 1),
    "dpkg-status/syft__debian__var__lib__dpkg__status.d__coreutils-relationships": (9, 1),
    "dpkg-status/syft__debian__var__lib__dpkg__status.d__deinstall": (1, 1),
    "go-mod/osv-scalibr__indirect-1.16.mod": (1, 0),
    "go-mod/osv-scalibr__indirect-1.23.mod": (2, 0),
    "go-mod/osv-scalibr__indirect-packages.mod": (5, 0),
    "go-mod/osv-scalibr__one-package.mod": (1, 0),
    "go-mod/osv-scalibr__toolchain-with-suffix.mod": (1, 0),
    "go-mod/osv-scalibr__toolchain.mod": (1, 0),
    "go-mod/osv-scalibr__two-packages.mod": (2, 0),
    "go-mod/syft__go__go.mod": (1, 0),
    "go-mod/syft__many-packages__go.mod": (7, 0),
    "go-mod/syft__one-package__go.mod": (1, 0),
    "maven-pom/osv-scalibr__ambiguous-interpolation.xml": (1, 0),
    "maven-pom/osv-scalibr__encoding.xml": (1, 0),
    "maven-pom/osv-scalibr__explicit-jar.xml": (2, 0),
    "maven-pom/osv-scalibr__interpolate-drop.xml": (1, 1),
    "maven-pom/osv-scalibr__interpolation.xml": (2, 1),
    "maven-pom/osv-scalibr__multi-version.xml": (2, 0),
    "maven-pom/osv-scalibr__one-package.xml": (1, 0),
    "maven-pom/osv-scalibr__parent_pom.xml": (1, 0),
    "maven-pom/osv-scalibr__plugin-dependency.xml": (1, 0),
    "maven-pom/osv-scalibr__profiles.xml": (1, 0),
    "maven-pom/osv-scalibr__transitive.xml": (3, 0),
    "maven-pom/osv-scalibr__two-packages.xml": (2, 0),
    "maven-pom/osv-scalibr__with-dependency-management.xml": (2, 0),
    "maven-pom/osv-scalibr__with-multiple-classifiers.xml": (1, 0),
    "maven-pom/osv-scalibr__with-parent.xml": (3, 1),
    "maven-pom/osv-scalibr__with-scope.xml": (2, 0),
    "maven-pom/osv-scalibr__with-type-classifier.xml": (1, 0),
    "maven-pom/syft__pkg-coverage__pom.xml": (2, 0),
    f"npm-package-lock/{NPM}alias.v1.json": (3, 0),
    f"npm-package-lock/{NPM}bundled-dependencies.v3.json": (3, 0),
    f"npm-package-lock/{NPM}commits.v2.json": (2, 12),
    f"npm-package-lock/{NPM}nested-dependencies-dup.v1.json": (39, 0),
    f"npm-package-lock/{NPM}nested-dependencies.v2.json": (5, 0),
    f"npm-package-lock/{NPM}one-package.v1.json": (1, 0),
    f"npm-package-lock/{NPM}one-package.v2.json": (1, 0),
    f"npm-package-lock/{NPM}optional-package.v1.json": (2, 0),
    f"npm-package-lock/{NPM}same-package-different-groups.v1.json": (3, 0),
    f"npm-package-lock/{NPM}two-packages.v1.json": (2, 0),
    f"npm-package-lock/{NPM}two-packages.v2.json": (2, 0),
    "npm-package-lock/osv-scanner__fix__in-place-npm__package-lock.json": (106, 0),
    "npm-package-lock/syft__image-pkg-coverage__pkgs__javascript__package-lock__"
    "package-lock.json": (1, 0),
    "npm-package-lock/syft__javascript__pkg-lock__package-lock.json": (12, 0),
    "npm-package-lock/syft__npm-lock__package-lock.json": (6, 0),
    f"pip-requirements/{PY}requirements__example.txt": (1, 12),
    f"pip-requirements/{PY}requirements__multiline_and_comments.txt": (2, 0),
    f"pip-requirements/{PY}requirements__with_versions.txt": (7, 4),
    "pip-requirements/syft__image-pkg-coverage__pkgs__python__requires__requirements.txt": (1, 0),
    f"pipfile-lock/{PY}pipfilelock__one-package-dev.json": (1, 0),
    f"pipfile-lock/{PY}pipfilelock__two-packages.json": (2, 0),
    "pipfile-lock/syft__python__pipfile-lock__Pipfile.lock": (6, 0),
    "pnpm-lock/osv-scalibr__exotic.yaml": (7, 2),
    "pnpm-lock/osv-scalibr__invalid-path.yaml": (1, 1),
    "pnpm-lock/osv-scalibr__invalid-paths.yaml": (1, 2),
    "pnpm-lock/osv-scalibr__mixed-groups.v53.yaml": (3, 0),
    "pnpm-lock/osv-scalibr__mixed-groups.v54.yaml": (3, 0),
    "pnpm-lock/osv-scalibr__mixed-groups.v6.yaml": (3, 0),
    "pnpm-lock/osv-scalibr__mixed-groups.v9.yaml": (3, 0),
    "pnpm-lock/osv-scalibr__multiple-packages.yaml": (14, 0),
    "pnpm-lock/osv-scalibr__multiple-versions.v9.yaml": (3, 0),
    "pnpm-lock/osv-scalibr__multiple-versions.yaml": (3, 0),
    "pnpm-lock/osv-scalibr__one-package-dev.v9.yaml": (1, 0),
    "pnpm-lock/osv-scalibr__one-package-dev.yaml": (1, 0),
    "pnpm-lock/osv-scalibr__one-package-v6-lockfile.yaml": (1, 0),
    "pnpm-lock/osv-scalibr__one-package.v9.yaml": (1, 0),
    "pnpm-lock/osv-scalibr__one-package.yaml": (1, 0),
    "pnpm-lock/osv-scalibr__peer-dependencies-advanced-rc-v6.yaml": (5, 0),
    "pnpm-lock/osv-scalibr__peer-dependencies-advanced-v6.yaml": (5, 0),
    "pnpm-lock/osv-scalibr__peer-dependencies-advanced.v9.yaml": (13, 0),
    "pnpm-lock/osv-scalibr__peer-dependencies-advanced.yaml": (9, 0),
    "pnpm-lock/osv-scalibr__peer-dependencies-v6.yaml": (5, 0),
    "pnpm-lock/osv-scalibr__peer-dependencies.v9.yaml": (2, 0),
    "pnpm-lock/osv-scalibr__peer-dependencies.yaml": (2, 0),
    "pnpm-lock/osv-scalibr__scoped-packages-v6-lockfile.yaml": (1, 0),
    "pnpm-lock/osv-scalibr__scoped-packages.v9.yaml": (1, 0),
    "pnpm-lock/osv-scalibr__scoped-packages.yaml": (1, 0),
    f"poetry-lock/{PY}poetrylock__one-package.lock": (1, 0),
    f"poetry-lock/{PY}poetrylock__source-legacy.lock": (1, 1),
    f"poetry-lock/{PY}poetrylock__two-packages.lock": (2, 0),
    "poetry-lock/syft__python__poetry__conflicting-with-extras__poetry.lock": (21, 0),
    "poetry-lock/syft__python__poetry__dev-deps__poetry.lock": (4, 0),
    "poetry-lock/syft__python__poetry__simple-deps__poetry.lock": (5, 0),
    "spdx/osv-scalibr__sbom__spdx__ancestor_of.spdx.json": (1, 1),
    "spdx/osv-scalibr__sbom__spdx__overlapping_refs.spdx.json": (1, 1),
    "spdx/osv-scanner__scan__source__sbom-insecure__only-unimportant.spdx.json": (1, 0),
    "spdx/syft__spdxjson__spdx__alpine-3.10.syft.spdx.json": (3, 0),
    "spdx/syft__spdxjson__spdx__alpine-3.10.vendor.spdx.json": (2, 1),
    "spdx/syft__spdxjson__spdx__example7-third-party-modules.spdx.json": (3, 1),
    "syft-json/syft__sbom__alpine__syft-json__sbom.syft.json": (14, 0),
    f"uv-lock/{PY}uvlock__two-packages.lock": (2, 0),
}

EMPTY = ("no package could be read from it; an inventory without packages would mark "
         "every finding of the asset fixed, so it is not used")
NOT_GO_MOD = "no module directive, not a go.mod file"
NONE_READ = "no package could be read from it ("
ALPINE = ("apk database: cannot tell the Alpine release: the database has no alpine-release "
          "or alpine-base ")
DPKG = ("dpkg status: cannot tell the distribution release from the packages' versions; "
        "pass --distro with the release in the host's /etc/os-release (ID:VERSION_ID, e.g. "
        "debian:12)")

# File -> (the start of the reason it is refused for, the line it names).
REFUSED: dict[str, tuple[str, int | None]] = {
    # Broken on purpose.
    "go-mod/osv-scalibr__empty.mod": ("empty file", None),
    f"poetry-lock/{PY}poetrylock__empty-file.lock": ("empty file", None),
    f"uv-lock/{PY}uvlock__empty.lock": ("empty file", None),
    "go-mod/osv-scalibr__not-go-mod.mod": (UNKNOWN_CONTENT, None),
    "pnpm-lock/osv-scalibr__empty.yaml": (UNKNOWN_CONTENT, None),  # a comment only
    "maven-pom/osv-scalibr__invalid-syntax.xml": (
        "invalid XML: not well-formed (invalid token)", 3),
    "go-mod/osv-scalibr__replace-different.mod": (NOT_GO_MOD, None),
    "go-mod/osv-scalibr__replace-local.mod": (NOT_GO_MOD, None),
    "go-mod/osv-scalibr__replace-mixed.mod": (NOT_GO_MOD, None),
    "go-mod/osv-scalibr__replace-no-version.mod": (NOT_GO_MOD, None),
    "go-mod/osv-scalibr__replace-not-required.mod": (NOT_GO_MOD, None),
    "go-mod/osv-scalibr__replace-one.mod": (NOT_GO_MOD, None),
    # Genuinely without a package.
    "cargo-lock/osv-scanner__rust-project__Cargo.lock": (EMPTY, None),  # the crate only
    "maven-pom/osv-scalibr__empty.xml": (EMPTY, None),
    f"npm-package-lock/{NPM}empty.v1.json": (EMPTY, None),
    f"pipfile-lock/{PY}pipfilelock__empty.json": (EMPTY, None),
    "pnpm-lock/osv-scalibr__missing-packages.yaml": (EMPTY, None),
    "pnpm-lock/osv-scalibr__no-packages.v9.yaml": (EMPTY, None),
    "pnpm-lock/osv-scalibr__no-packages.yaml": (EMPTY, None),
    f"uv-lock/{PY}uvlock__no-dependencies.lock": (EMPTY, None),
    "spdx/osv-scalibr__sbom__spdx__minimal.spdx.json": (
        f"{NONE_READ}SPDX document lists no packages)", None),
    # Only code that is not a registry release, each entry named.
    "pnpm-lock/osv-scalibr__commits.v9.yaml": (
        f"{NONE_READ}ansi-regex@6.0.1 comes from ansi-regex@https://codeload.github.com/", None),
    "pnpm-lock/osv-scalibr__commits.yaml": (
        f"{NONE_READ}my-bitbucket-package@1.0.0 comes from git@bitbucket.org", None),
    "pnpm-lock/osv-scalibr__files.yaml": (
        f"{NONE_READ}my-file-package@0.0.0 comes from file:projects/package-a.tgz", None),
    "pnpm-lock/osv-scalibr__tarball.yaml": (
        f"{NONE_READ}@my-org/my-package@3.2.3 comes from @gitlab.my-org.org/", None),
    f"poetry-lock/{PY}poetrylock__source-git.lock": (
        f"{NONE_READ}ike 0.2.0 comes from a git source (https://github.com/dzshn/ike)", None),
    f"uv-lock/{PY}uvlock__source-git.lock": (
        f"{NONE_READ}ruff comes from a git source (https://github.com/astral-sh/ruff#", None),
    "go-mod/syft__relative-replace__go.mod": (NONE_READ, None),  # a local folder
    "cyclonedx/osv-scalibr__sbom__cdx__sbom.bom.json": (
        f"{NONE_READ}1 component not matched (purl type 'generic' names no ecosystem "
        "advisories cover): openssl@1.1.1; 1 component not matched (no purl): "
        "Nginx@1.21.1)", None),
    "cyclonedx/osv-scalibr__sbom__cdx__sbom.bom.xml": (
        f"{NONE_READ}1 component not matched (purl type 'generic' names no ecosystem "
        "advisories cover): openssl@1.1.1; 1 component not matched (no purl): "
        "Nginx@1.21.1)", None),
    "spdx/osv-scalibr__sbom__spdx__external_refs.spdx.json": (
        f"{NONE_READ}2 packages not matched (undetermined: no purl, nor an ecosystem in "
        "its references or download location): flatbuffers, custom-pkg@1.0.0; ", None),
    "spdx/osv-scalibr__sbom__spdx__sbom.spdx": (
        f"{NONE_READ}1 package not matched (undetermined: no purl, nor an ecosystem in its "
        "references or download location (a CPE only)): Nginx; ", None),
    "spdx/osv-scalibr__sbom__spdx__sbom.spdx.json": (
        f"{NONE_READ}1 package not matched (undetermined: no purl, nor an ecosystem in its "
        "references or download location (a CPE only)): Nginx; ", None),
    # The release cannot be read from the file: --distro is needed, and suggested.
    "apk-installed/osv-scanner__scan__source__locks-many__installed": (
        f"{ALPINE}package (apk-tools 2.12.10-r1 do not name it); pass --distro alpine:X.Y",
        None),
    "apk-installed/syft__alpine__multiple-2__lib__apk__db__installed": (
        f"{ALPINE}package (alpine-baselayout 3.2.0-r22, apk-tools 2.12.9-r3, musl 1.2.3-r0 "
        "do not name it); pass --distro alpine:X.Y", None),
    "apk-installed/syft__image-pkg-coverage__lib__apk__db__installed": (
        f"{ALPINE}package; pass --distro alpine:X.Y", None),
    "dpkg-status/osv-scalibr__os__dpkg__dpkg__statusfield": (DPKG, None),  # versions "1.0"
    "dpkg-status/osv-scalibr__os__dpkg__dpkg__transitional_dummy": (DPKG, None),
    "dpkg-status/syft__debian__image-dpkg__var__lib__dpkg__status": (DPKG, None),
    "dpkg-status/syft__debian__var__lib__dpkg__status.d__single": (
        "dpkg status: cannot tell the distribution release from the packages' versions; "
        "apt 1.8.2 is the one of debian:10: pass --distro debian:10", None),
}


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_every_file_is_listed(inventories: Path) -> None:
    files = _files(inventories)
    assert len(files) == 152
    assert not PARSED.keys() & REFUSED.keys()
    assert sorted(PARSED.keys() | REFUSED.keys()) == files
    assert (len(PARSED), len(REFUSED)) == (112, 40)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_parses(inventories: Path, name: str) -> None:
    path = inventories / name
    inventory = read_inventory_file(path)
    assert (len(inventory.packages), len(inventory.warnings)) == PARSED[name]
    assert inventory.packages  # never an empty inventory
    for warning in inventory.warnings:
        assert warning.startswith(str(path)), warning  # each warning names the file


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_with_a_reason(inventories: Path, name: str) -> None:
    path = inventories / name
    with pytest.raises(InventoryFormatError) as refused:
        read_inventory_file(path)
    reason, line = REFUSED[name]
    assert refused.value.path == str(path)
    assert refused.value.detail.startswith(reason), refused.value.detail
    assert refused.value.line == line
    where = f"{path}:{line}" if line else str(path)
    assert str(refused.value).startswith(f"{where}: {reason}")
