"""The one table of feeds.  Adding a feed is one module and one line here."""

from __future__ import annotations

from patchpilot.knowledge.feeds import (
    alpine_secdb,
    cve5,
    debian_tracker,
    epss,
    jvn,
    kev,
    msrc,
    nvd,
    osv,
)
from patchpilot.knowledge.feeds.interface import Feed

# Order matters for format detection: the first feed that claims a file reads it, so the
# narrow formats (tracker, secdb, CVE records) come before OSV's generic "id + affected".
FEEDS: tuple[Feed, ...] = (
    debian_tracker.FEED,
    alpine_secdb.FEED,
    cve5.FEED,
    nvd.FEED,
    kev.FEED,
    epss.FEED,
    msrc.FEED,
    jvn.FEED,
    osv.FEED,
)

FEEDS_BY_NAME: dict[str, Feed] = {feed.name: feed for feed in FEEDS}


def feed_named(name: str) -> Feed:
    """The feed called ``name``; KeyError lists the known ones."""
    try:
        return FEEDS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown feed {name!r}; known: {', '.join(FEEDS_BY_NAME)}") from None
