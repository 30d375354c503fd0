"""Every lock file is told by its real file name through the file transport's kind_of,
and every lock-file source is in the registry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from patchpilot.inventory.sources._lockfiles import language_purl
from patchpilot.inventory.sources.registry import SOURCES_BY_NAME
from patchpilot.inventory.transports.file import kind_of, read_path

LOCK_SOURCES = ("pip", "poetry", "pipenv", "uv", "npm", "yarn", "pnpm", "gomod", "maven",
                "cargo")


def test_all_registered() -> None:
    assert set(LOCK_SOURCES) <= SOURCES_BY_NAME.keys()


# (real file name, file whose content is used, expected source)
CASES = [
    ("requirements.txt", "pip-requirements/syft__image-pkg-coverage__pkgs__python__requires__"
                         "requirements.txt", "pip"),
    ("requirements-dev.txt", "pip-requirements/osv-scalibr__language__python__requirements__"
                             "with_versions.txt", "pip"),
    ("dev-requirements.txt", "pip-requirements/osv-scalibr__language__python__requirements__"
                             "example.txt", "pip"),
    ("poetry.lock", "poetry-lock/syft__python__poetry__simple-deps__poetry.lock", "poetry"),
    ("Pipfile.lock", "pipfile-lock/syft__python__pipfile-lock__Pipfile.lock", "pipenv"),
    ("uv.lock", "uv-lock/osv-scalibr__language__python__uvlock__two-packages.lock", "uv"),
    ("package-lock.json", "npm-package-lock/syft__npm-lock__package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm-package-lock/osv-scalibr__language__javascript__"
                            "packagelockjson__two-packages.v2.json", "npm"),
    ("pnpm-lock.yaml", "pnpm-lock/osv-scalibr__peer-dependencies-advanced.v9.yaml", "pnpm"),
    ("pnpm-lock.yaml", "pnpm-lock/osv-scalibr__peer-dependencies.yaml", "pnpm"),
    ("go.mod", "go-mod/syft__many-packages__go.mod", "gomod"),
    ("pom.xml", "maven-pom/osv-scalibr__two-packages.xml", "maven"),
    ("Cargo.lock", "cargo-lock/osv-scanner__deprecated-vuln__Cargo.lock", "cargo"),
]
# The shared data holds no yarn.lock: these two are tests/fixtures/yarn-lock/.
FIXTURE_CASES = [
    ("yarn.lock", "yarn-lock/classic_many_packages.lock", "yarn"),
    ("yarn.lock", "yarn-lock/berry_many_packages.lock", "yarn"),
]


@pytest.mark.parametrize(("name", "content", "expected"), CASES)
def test_kind_of_real_files(inventories: Path, name: str, content: str, expected: str) -> None:
    head = (inventories / content).read_bytes()[:8192]
    assert kind_of(name, head) == expected


@pytest.mark.parametrize(("name", "content", "expected"), FIXTURE_CASES)
def test_kind_of_fixtures(fixtures: Path, name: str, content: str, expected: str) -> None:
    head = (fixtures / content).read_bytes()[:8192]
    assert kind_of(name, head) == expected


def test_classic_yarn_by_header_and_not_by_other_names(fixtures: Path) -> None:
    head = (fixtures / "yarn-lock" / "classic_many_packages.lock").read_bytes()[:8192]
    assert kind_of("yarn-backup.lock", head) == "yarn"  # renamed, told by its header
    # A requirements file is told by content too (base.txt, a renamed copy), but a text
    # file of words, bare names or key=value lines is not claimed.
    assert kind_of("notes.txt", b"flask==2.0\n") == "pip"
    assert kind_of("notes.txt", b"remember to buy milk\n") is None
    assert kind_of("words.txt", b"pytest\nblack\n") is None
    assert kind_of("app.ini", b"[main]\nkey=value\n") is None


@pytest.mark.parametrize(("ecosystem", "name", "version", "purl"), [
    ("npm", "@types/node", "20.11.0", "pkg:npm/%40types/node@20.11.0"),
    ("Go", "golang.org/x/net", "v0.19.0", "pkg:golang/golang.org/x/net@v0.19.0"),
    ("Maven", "junit:junit", "4.12", "pkg:maven/junit/junit@4.12"),
    ("crates.io", "regex", "1.10.3", "pkg:cargo/regex@1.10.3"),
    ("PyPI", "Django", "4.2.7", "pkg:pypi/django@4.2.7"),
])
def test_language_purl(ecosystem: str, name: str, version: str, purl: str) -> None:
    assert language_purl(ecosystem, name, version) == purl


def test_folder_walk_finds_every_lock_file(inventories: Path, fixtures: Path,
                                           tmp_path: Path) -> None:
    # A project tree built in tmp_path from the real files (nothing copied into the repo).
    for name, content, _ in CASES[:1] + CASES[3:7]:
        (tmp_path / name).write_bytes((inventories / content).read_bytes())
    (tmp_path / "svc").mkdir()
    for name, content, _ in CASES[10:]:
        (tmp_path / "svc" / name).write_bytes((inventories / content).read_bytes())
    name, content, _ = FIXTURE_CASES[0]
    (tmp_path / "svc" / name).write_bytes((fixtures / content).read_bytes())
    # requirements/base.txt: found by its content; notes.txt is not a requirements file.
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "base.txt").write_bytes((inventories / CASES[1][1]).read_bytes())
    (tmp_path / "requirements" / "notes.txt").write_text("remember to pin everything\n")
    inventory = read_path(tmp_path)
    ecosystems = Counter(p.ecosystem for p in inventory.packages)
    # PyPI: 1 (requirements) + 5 (poetry) + 6 (Pipfile.lock) + 2 (uv) + 7 (base.txt); npm:
    # 6 (package-lock) + 11 (yarn); 7 Go; 2 Maven; 6 crates.io.
    assert dict(ecosystems) == {"PyPI": 21, "npm": 17, "Go": 7, "Maven": 2, "crates.io": 6}
    assert {p.location for p in inventory.packages if (p.location or "").endswith(".txt")} == {
        str(tmp_path / "requirements.txt"), str(tmp_path / "requirements" / "base.txt")}
