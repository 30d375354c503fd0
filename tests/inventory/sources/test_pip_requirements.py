"""requirements.txt: pinned requirements become packages, everything else a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchpilot.inventory.sources.pip_requirements import SOURCE
from patchpilot.models import Package
from tests.inventory.sources.helpers import format_error, parse_file

DIR = "pip-requirements"


def test_example_only_docopt_is_pinned(inventories: Path) -> None:
    path = inventories / DIR / "osv-scalibr__language__python__requirements__example.txt"
    parsed = parse_file(SOURCE, path)
    assert parsed.packages == [Package(
        ecosystem="PyPI", name="docopt", version="0.6.1", purl="pkg:pypi/docopt@0.6.1",
        location=str(path))]
    where = str(path)
    assert parsed.warnings == (
        f"{where}:3: pytest is not pinned; not checked",
        f"{where}:4: pytest-cov is not pinned; not checked",
        f"{where}:5: beautifulsoup4 is not pinned; not checked",
        f"{where}:9: requests is not pinned (>= 2.8.1, == 2.8.*); not checked",
        f"{where}:10: urllib3 is a direct URL reference; not checked",
        f"{where}:13: keyring is not pinned (>= 4.1.1); not checked",
        f"{where}:15: coverage is not pinned (!= 3.5); not checked",
        f"{where}:17: Mopidy-Dirble is not pinned (~= 1.1); not checked",
        f"{where}:21: included file 'other-requirements.txt' not read; scan it too",
        f"{where}:22: included file 'constraints.txt' not read; scan it too",
        f"{where}:25: './downloads/numpy-1.9.2-cp34-none-win32.whl' is a path or URL, "
        "no pinned version; not checked",
        f"{where}:28: 'http://wxpython.org/Phoenix/snapshot-builds/wxPython_Phoenix-3.0.3."
        "dev1820+49a8884-cp34-none-win_amd64.whl' is a path or URL, no pinned version; "
        "not checked",
    )


def test_with_versions(inventories: Path) -> None:
    path = inventories / DIR / "osv-scalibr__language__python__requirements__with_versions.txt"
    parsed = parse_file(SOURCE, path)
    # "qwerty \\\n  == 0.1" is one requirement continued on the next line; "===" pins too.
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("nltk", "3.2.2"), ("tabulate", "0.7.7"), ("qwerty", "0.1"), ("hy-phen", "1.2"),
        ("under_score", "1.3"), ("pkg.dot.name", "5.0.0"), ("yolo", "1.0")]
    assert parsed.packages[4].purl == "pkg:pypi/under-score@1.3"  # purl spec: PEP 503 name
    assert [w.split(": ", 1)[1] for w in parsed.warnings] == [
        "newspaper3k is not pinned (>=0.2.2); not checked",
        "asdf is not pinned (==0.7.*); not checked",
        "combination-._-.also_-._valid is not pinned (>=3.5); not checked",
        "pkg is not pinned (<=1.2.3); not checked",
    ]


def test_hash_continuations_and_comments(inventories: Path) -> None:
    path = (inventories / DIR
            / "osv-scalibr__language__python__requirements__multiline_and_comments.txt")
    parsed = parse_file(SOURCE, path)
    assert [(p.name, p.version) for p in parsed.packages] == [("pkgA", "1.0"), ("pkgB", "2.0")]
    assert parsed.warnings == ()


def test_syft_one_package(inventories: Path) -> None:
    path = inventories / DIR / "syft__image-pkg-coverage__pkgs__python__requires__requirements.txt"
    assert [(p.name, p.version) for p in parse_file(SOURCE, path).packages] == [
        ("flask", "4.0.0")]


def test_extras_markers_options_editable() -> None:
    text = (b"--index-url https://pypi.org/simple\n"
            b"requests[security,socks]==2.31.0 ; python_version >= '3.8' \\\n"
            b"    --hash=sha256:aa --hash=sha256:bb\n"
            b"-e git+https://github.com/org/pkg.git#egg=pkg\n"
            b"--requirement=base.txt\n"
            b"Django==4.2.7  # pinned for the LTS\n"
            b"django==4.2.7\n")
    parsed = SOURCE.parse(text, "requirements.txt", None)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("requests", "2.31.0"), ("Django", "4.2.7"), ("django", "4.2.7")]
    assert parsed.warnings == (
        "requirements.txt:4: editable requirement 'git+https://github.com/org/pkg.git#egg=pkg'"
        " has no pinned version; not checked",
        "requirements.txt:5: included file 'base.txt' not read; scan it too",
    )


def test_only_comments_is_genuinely_empty() -> None:
    parsed = SOURCE.parse(b"# nothing yet\n\n--index-url https://pypi.org/simple\n",
                          "requirements.txt", None)
    assert (parsed.packages, parsed.warnings) == ([], ())


@pytest.mark.parametrize(("data", "detail", "line"), [
    (b"", "empty pip requirements file", None),
    (b"  \n\n", "empty pip requirements file", None),
    (b"\x7fELF\x02\x01\x01\x00\x00", "binary data, not a pip requirements file", None),
    # No line readable at all: not a requirements file.
    (b"<html><body>404</body></html>\n",
     "not a requirement, path or option: '<html><body>404</body></html>'", 1),
    (b"\xff\xfe\x00f", "binary data, not a pip requirements file", None),
    (b"caf\xe9==1\n", "not UTF-8 text (byte 3), not a pip requirements file", None),
])
def test_invalid(data: bytes, detail: str, line: int | None) -> None:
    error = format_error(SOURCE, data, "requirements.txt")
    assert (error.detail, error.line) == (detail, line)


@pytest.mark.parametrize(("data", "names", "warnings"), [
    (b"flask==2.0\n<html><body>404</body></html>\n", ["flask"],
     ["base.txt:2: not a requirement, path or option: '<html><body>404</body></html>'; "
      "skipped"]),
    (b"flask==2.0\nrequests==\n", ["flask"],
     ["base.txt:2: not a requirement, path or option: 'requests=='; skipped"]),
    # The two cases: a version alone on a line, an unknown option after a pin.
    (b"==2.3.4\nflask==2.0\nrequests==2.31.0 --frobnicate\n", ["flask", "requests"],
     ["base.txt:1: not a requirement, path or option: '==2.3.4'; skipped",
      "base.txt:3: unknown pip option --frobnicate after requests; ignored"]),
    (b"--frobnicate\nflask==2.0 --hash=sha256:ab\n", ["flask"],
     ["base.txt:1: unknown pip option '--frobnicate'; ignored"]),
])
def test_a_bad_line_is_a_warning(data: bytes, names: list[str], warnings: list[str]) -> None:
    parsed = SOURCE.parse(data, "base.txt", None)
    assert [p.name for p in parsed.packages] == names
    assert list(parsed.warnings) == warnings


@pytest.mark.parametrize("name", ["base.txt", "prod-reqs.txt", "saved-copy"])
def test_recognised_by_content(inventories: Path, name: str) -> None:
    head = (inventories / DIR / "osv-scalibr__language__python__requirements__with_versions.txt"
            ).read_bytes()
    assert SOURCE.detect(name, head)
