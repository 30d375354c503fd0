"""The feed registry: every feed module is listed, and no file is claimed by two feeds."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import patchpilot.knowledge.feeds as feeds_pkg
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.knowledge.feeds.registry import FEEDS, FEEDS_BY_NAME

# Modules of the package that are not feeds.
NOT_FEEDS = {"interface", "registry"}


def test_every_feed_module_is_registered() -> None:
    modules = {m.name for m in pkgutil.iter_modules(feeds_pkg.__path__)
               if not m.name.startswith("_")} - NOT_FEEDS
    registered = {type(f).__module__.rsplit(".", 1)[1] for f in FEEDS}
    assert registered == modules
    assert len(FEEDS_BY_NAME) == len(FEEDS)  # names are unique
    assert all(isinstance(f.kind, RecordKind) and isinstance(f.priority, int) for f in FEEDS)


def test_no_file_of_the_shared_data_is_claimed_by_two_feeds(shared_data: Path) -> None:
    # The loader gives a file to the first feed that claims it; two claimants would make
    # the registry's order decide silently what a file is.
    doubles = []
    claimed = 0
    for path in sorted(shared_data.rglob("*")):
        if not path.is_file() or path.suffix not in (".json", ".yaml", ".yml", ".csv", ".gz",
                                                      ".zip", ".xml"):
            continue
        with path.open("rb") as fh:
            head = fh.read(4096)
        claimants = [f.name for f in FEEDS if f.claims(path, head)]
        claimed += bool(claimants)
        if len(claimants) > 1:
            doubles.append((str(path.relative_to(shared_data)), claimants))
    assert doubles == []
    assert claimed > 12000  # the OSV, secdb, NVD, CVE 5, KEV and EPSS files
