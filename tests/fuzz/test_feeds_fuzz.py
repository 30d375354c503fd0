"""Fuzz every feed of the registry: a broken feed file only ever raises FeedError.

Feeds arrive over the network and from ``--from DIR`` copies: truncated downloads, a
mirror's HTML error page saved as JSON, a schema change upstream.  ``Feed.read`` must turn
every one of them into a ``FeedError`` naming the file, so ``db update`` reports the feed
and goes on with the others instead of dying on a ``TypeError``.

``read`` takes a path (it dispatches on the name: ``.json``, ``.yaml``, ``.csv``, ``.gz``,
``.zip``), so each mutated input is written to a file named like its real seed.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchpilot.errors import FeedError
from patchpilot.knowledge.feeds.interface import Feed
from patchpilot.knowledge.feeds.registry import FEEDS, FEEDS_BY_NAME
from tests.fuzz.conftest import FUZZ, load_seeds, mutated, random_input

# The real files each feed reads (globs under ../shared/data), as its own tests use them.
SEEDS: dict[str, tuple[str, ...]] = {
    "debian-tracker": ("distro/vunnel-fixtures/debian/input/debian.json",),
    "alpine-secdb": ("distro/vunnel-fixtures/alpine/input/secdb/v3.15/*.yaml",
                     "osv/alpine-secdb/v3.10/community.yaml"),
    "cve5": ("nvd/cve5-osvdev/cve5__CVE-2024-*.json", "nvd/cve5-osvdev/cvelistV5__*2021*.json",
             "nvd/cve5-critical-cvelist/CVE-2014-6271.json"),
    "nvd": ("nvd/nvd-api2-dependencytrack/*.json", "nvd/nvd-api2-osvdev/nvdcve-2.0__*.json",
            "nvd/nvd-api2-osvdev/nvdcve-1.1-test-data.json"),
    "kev": ("kev/known_exploited_vulnerabilities.json", "kev/known_exploited_vulnerabilities.csv",
            "distro/vunnel-fixtures/kev/single-entry/example1.json"),
    "epss": ("epss/CVE_2021_EPSS.csv", "distro/vunnel-fixtures/epss/*.csv"),
    "osv": ("osv/fixtures-dependencytrack/*.json", "osv/go/GO-2024-320*.json",
            "osv/pypi/jw.util/*.yaml", "osv/pypi/apache-skywalking/*.yaml",
            "osv/almalinux/almalinux9/ALSA-2023:01*.json"),
    "msrc": ("msrc/cvrfDocument-2026-Feb.xml",),
    # The well-formed JVN XML of each kind (VULDEF detail, JVNDB RSS, MyJVN alerts); the
    # captured RSS data feed is not well-formed and is refused (tests/knowledge).
    "jvn": ("jvn/hnd/dataFeed_jvndb_detail_hnd.xml", "jvn/hnd/getVulnOverviewList_hnd.xml",
            "jvn/hnd/getAlertList_hnd.xml"),
}

# XML cannot be cut at a byte count and stay a document: MSRC's CVRF month is cut after
# its product tree and first vulnerabilities, and closed.
CVRF_END = b"</vuln:Vulnerability>"


def cvrf_seed(path: Path, vulnerabilities: int = 3) -> bytes:
    """The CVRF document at ``path`` with its first ``vulnerabilities`` only."""
    data = path.read_bytes()
    end = 0
    for _ in range(vulnerabilities):
        end = data.index(CVRF_END, end) + len(CVRF_END)
    return data[:end] + b"\n</cvrf:cvrfdoc>\n"

# Containers the feeds also read, built from the same real files: a gzipped download
# (NVD 1.1, the Debian tracker, the EPSS daily file) and release zips (OSV's all.zip,
# cvelistV5's).
GZIPPED = {"debian-tracker": "debian.json.gz", "nvd": "nvdcve-1.1-recent.json.gz",
           "epss": "epss_scores-current.csv.gz"}
ZIPPED = {"osv": ("all.zip", ""), "cve5": ("cves.zip", "cves/2024/3xxx/")}

_seed_cache: dict[str, list[tuple[str, bytes]]] = {}


def seeds_of(name: str, shared_data: Path) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the seed files of feed ``name``: real, gzipped, zipped."""
    if name not in _seed_cache:
        if name == "msrc":
            found = [(p.name, cvrf_seed(p)) for pattern in SEEDS[name]
                     for p in sorted(shared_data.glob(pattern))]
        else:
            found = load_seeds(shared_data, SEEDS[name])
        if name in GZIPPED and found:
            found.append((GZIPPED[name], gzip.compress(found[0][1], mtime=0)))
        if name in ZIPPED and found:
            archive_name, folder = ZIPPED[name]
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for member, data in found[:3]:
                    # Members are named as upstream names them: cves/…/CVE-2024-3094.json.
                    archive.writestr(folder + member.rsplit("__", 1)[-1], data)
            found.append((archive_name, buffer.getvalue()))
        _seed_cache[name] = found
    return _seed_cache[name]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the mutated files are written to (one per example, overwritten)."""
    return tmp_path_factory.mktemp("feed-fuzz")


def read_or_feed_error(feed: Feed, folder: Path, name: str, data: bytes) -> None:
    """Read ``data`` as a file called ``name``; a FeedError naming it is the one allowed error."""
    path = folder / name
    path.write_bytes(data)
    try:
        for _ in feed.read(path):  # a generator raises while it is consumed
            pass
    except FeedError as exc:
        assert Path(exc.path).name == name or name in str(exc), exc  # names its file
    finally:
        path.unlink()


def test_every_feed_has_seeds(shared_data: Path) -> None:
    # A feed added to the registry is fuzzed automatically; it must name its real files.
    assert set(SEEDS) == set(FEEDS_BY_NAME)
    for name in SEEDS:
        assert seeds_of(name, shared_data), f"no real seed file for feed {name}"


def test_seeds_are_read_whole(shared_data: Path, tmp_path: Path) -> None:
    # The unmutated seeds (cut down where large) are valid inputs: the fuzz starts from
    # files the feed reads, so its mutations reach past the first check.
    for feed in FEEDS:
        for name, data in seeds_of(feed.name, shared_data):
            if "invalid" in name or "missing" in name:
                continue  # the real fixtures of a broken file
            path = tmp_path / name
            path.write_bytes(data)
            assert list(feed.read(path)), (feed.name, name)


@pytest.mark.parametrize("feed", FEEDS, ids=lambda f: f.name)
@FUZZ
@given(draw=st.data())
def test_random_input_raises_only_feed_errors(feed: Feed, shared_data: Path, scratch: Path,
                                              draw: st.DataObject) -> None:
    names = sorted({name for name, _ in seeds_of(feed.name, shared_data)})
    name = draw.draw(st.sampled_from(names), label="file name")
    read_or_feed_error(feed, scratch, name, draw.draw(random_input(), label="data"))


@pytest.mark.parametrize("feed", FEEDS, ids=lambda f: f.name)
@FUZZ
@given(draw=st.data())
def test_mutated_real_input_raises_only_feed_errors(feed: Feed, shared_data: Path,
                                                    scratch: Path,
                                                    draw: st.DataObject) -> None:
    name, seed = draw.draw(st.sampled_from(seeds_of(feed.name, shared_data)), label="seed")
    read_or_feed_error(feed, scratch, name, draw.draw(mutated(seed), label="mutated"))

