"""Every real inventory file of ../shared/data is told apart by name and content alone.

The copies there carry prefixed names (``osv-scalibr__…__two-packages.lock``), as saved or
exported files often do, so detection cannot rely on the canonical file name.
"""

from __future__ import annotations

from pathlib import Path

from patchpilot.inventory.transports.file import kind_of

# Folder -> the source every file in it must be detected as.
EXPECTED = {"apk-installed": "apk", "cyclonedx": "cyclonedx", "dpkg-status": "dpkg",
            "npm-package-lock": "npm", "pipfile-lock": "pipenv", "poetry-lock": "poetry",
            "spdx": "spdx", "syft-json": "syft", "uv-lock": "uv", "cargo-lock": "cargo",
            "go-mod": "gomod", "maven-pom": "maven", "pip-requirements": "pip",
            "pnpm-lock": "pnpm"}
# Undetectable on purpose: empty files (errors when read), a pnpm lock that is only a
# comment, and osv-scalibr's "this is not a go.mod file!".
UNDETECTED = {"poetry-lock/osv-scalibr__language__python__poetrylock__empty-file.lock",
              "uv-lock/osv-scalibr__language__python__uvlock__empty.lock",
              "go-mod/osv-scalibr__empty.mod", "go-mod/osv-scalibr__not-go-mod.mod",
              "pnpm-lock/osv-scalibr__empty.yaml"}


def test_every_real_file_is_detected(shared_data: Path) -> None:
    root = shared_data / "inventories"
    seen = 0
    for folder, kind in EXPECTED.items():
        for path in sorted((root / folder).iterdir()):
            rel = f"{folder}/{path.name}"
            got = kind_of(path.name, path.read_bytes()[:8192])
            assert got == (None if rel in UNDETECTED else kind), rel
            seen += 1
    assert seen == 151  # and debian12-dpkg-status below
    assert kind_of("debian12-dpkg-status", (root / "debian12-dpkg-status").read_bytes()[:8192]
                   ) == "dpkg"
    assert kind_of("requirements.txt", b"requests==2.31.0\n") == "pip"
