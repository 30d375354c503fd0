"""The Debian security tracker's JSON export, and its DSA list, into the internal schema.

The export (https://security-tracker.debian.org/tracker/data/json) is keyed by source
package, then by issue::

    {"openssl": {"CVE-2023-0286": {"description": …, "scope": …, "debianbug": …,
                 "releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.8-1",
                                           "urgency": "high", "repositories": {…}}}}}}

It is the distribution's own verdict per release, so it outranks OSV-derived Debian data.
Field meanings: https://security-team.debian.org/security_tracker.html .
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from patchpilot.errors import FeedError
from patchpilot.knowledge.ecosystems import DEBIAN_CODENAMES
from patchpilot.knowledge.feeds._common import download_if_changed
from patchpilot.knowledge.feeds.interface import RecordKind
from patchpilot.knowledge.names import normalize_name
from patchpilot.models import (
    Advisory,
    AdvisoryId,
    AffectedPackage,
    AffectedRange,
    AffectedStatus,
    Ecosystem,
)

TRACKER_URL = "https://security-tracker.debian.org/tracker/data/json"
DSA_LIST_URL = "https://salsa.debian.org/security-tracker-team/security-tracker/-/raw/master/data/DSA/list"

# codename -> "Debian:<release>"; the tracker only speaks in codenames.
_ECOSYSTEMS: dict[str, Ecosystem] = {
    code: Ecosystem(f"Debian:{release}") for code, release in DEBIAN_CODENAMES.items()
}

_UNFIXED = (AffectedRange(),)  # status "open": every version, no fix yet

# The head of a tracker export: a package key whose value is an object keyed by issue ids.
_HEAD = re.compile(rb'^\s*\{\s*"[^"]+"\s*:\s*\{\s*"(?:CVE|TEMP)-')


class DebianTrackerFeed:
    """Debian's per-release verdicts for every CVE (and TEMP- issue) the tracker knows."""

    name = "debian-tracker"
    kind = RecordKind.ADVISORY
    priority = 100  # the distribution's own data beats derived OSV data

    def claims(self, path: Path, head: bytes) -> bool:
        """A ``.json`` (or ``.json.gz``) tracker export: package → issue → ``releases``."""
        name = path.name.lower()
        if name.endswith(".json.gz"):
            head = _partial_gunzip(head)
        elif not name.endswith(".json"):
            return False
        return _HEAD.match(head) is not None and b'"releases"' in head

    def read(self, path: Path) -> Iterator[Advisory]:
        """One Advisory per issue, with an AffectedPackage per (source package, release)."""
        try:
            data = path.read_bytes()
            if path.name.lower().endswith(".gz"):
                data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            # zlib.error: a corrupt deflate stream inside a valid gzip header.
            raise FeedError(path, f"cannot read file: {exc}") from exc
        try:
            tracker = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FeedError(path, f"invalid JSON: {exc}") from exc
        if type(tracker) is not dict:
            raise FeedError(path, "the tracker export is a JSON object keyed by source package")
        yield from _advisories(path, tracker)

    def fetch(self, client: httpx.Client, dest: Path, since: str | None) -> list[Path]:
        """Download the tracker export to ``dest/debian-tracker.json`` (conditional GET).

        The DSA list is fetched alongside (``dest/DSA-list``) for :func:`read_dsa_list`; it
        is not returned because ``read`` does not take it.
        """
        target = dest / "debian-tracker.json"
        changed = download_if_changed(client, TRACKER_URL, target)
        download_if_changed(client, DSA_LIST_URL, dest / "DSA-list")
        return [target] if changed or since is None else []


FEED = DebianTrackerFeed()


def _partial_gunzip(head: bytes) -> bytes:
    """Whatever a truncated gzip prefix decompresses to (b"" when it is not gzip)."""
    try:
        return zlib.decompressobj(wbits=31).decompress(head)
    except zlib.error:
        return b""


def _advisories(path: Path, tracker: dict[str, Any]) -> Iterator[Advisory]:
    # The export is per package; an advisory is per issue, so group first.  Insertion
    # order keeps the output in file order, which keeps loads reproducible.
    details: dict[str, str | None] = {}
    affected: dict[str, list[AffectedPackage]] = {}
    bodies: dict[str, dict[str, Any]] = {}  # issue -> {package: the tracker's entry}
    for package, issues in tracker.items():
        if type(issues) is not dict:
            raise FeedError(path, f"package {package!r}: value must be an object of issues")
        name = normalize_name("Debian", package)
        for issue, body in issues.items():
            if type(body) is not dict:
                raise FeedError(path, f"{package}/{issue}: issue must be an object")
            packages = affected.get(issue)
            if packages is None:
                packages = affected[issue] = []
                desc = body.get("description")
                details[issue] = desc if type(desc) is str else None
                bodies[issue] = {}
            bodies[issue][package] = body
            releases = body.get("releases")
            if not releases:
                continue  # "releases": [] — the tracker has nothing per release yet
            if type(releases) is not dict:
                raise FeedError(path, f"{package}/{issue}: 'releases' must be an object")
            for codename, verdict in releases.items():
                eco = _ECOSYSTEMS.get(codename)
                if eco is None:
                    continue  # a codename newer than DEBIAN_CODENAMES cannot be matched
                if type(verdict) is not dict:
                    raise FeedError(path, f"{package}/{issue}/{codename}: must be an object")
                packages.append(_verdict(path, package, issue, codename, name, eco, verdict))
    for issue, packages in affected.items():
        yield Advisory(
            id=AdvisoryId(issue),  # TEMP-… ids (no CVE assigned yet) are kept as they are
            source="debian-tracker",
            modified=None,  # the export carries no per-issue timestamp
            details=details[issue],
            affected=tuple(packages),
            # The tracker's own entries for this issue, keyed by package as in the export.
            raw=orjson.dumps(bodies[issue]),
        )


def _verdict(path: Path, package: str, issue: str, codename: str, name: str,
             eco: Ecosystem, verdict: dict[str, Any]) -> AffectedPackage:
    status = verdict.get("status")
    fixed = verdict.get("fixed_version")
    urgency = verdict.get("urgency")
    # "high**": asterisks mark an urgency derived from NVD rather than set by the team.
    severity = urgency.rstrip("*") if type(urgency) is str else None
    if status == "resolved":
        if type(fixed) is not str or not fixed:
            raise FeedError(path, f"{package}/{issue}/{codename}: resolved without a "
                                  "string 'fixed_version'")
        if fixed == "0":
            # fixed_version "0": the release never shipped a vulnerable version.
            return AffectedPackage(ecosystem=eco, name=name, status=AffectedStatus.NOT_AFFECTED,
                                   severity=severity)
        return AffectedPackage(ecosystem=eco, name=name, severity=severity,
                               ranges=(AffectedRange(fixed=fixed),))
    if status == "open":
        return AffectedPackage(ecosystem=eco, name=name, ranges=_UNFIXED, severity=severity)
    if status == "undetermined":
        return AffectedPackage(ecosystem=eco, name=name, status=AffectedStatus.UNDETERMINED,
                               severity=severity)
    raise FeedError(path, f"{package}/{issue}/{codename}: unknown 'status' {status!r}")


# --- the DSA list ----------------------------------------------------------------------

# data/DSA/list in the tracker's repository: a header line per advisory, then indented
# lines; the CVEs it fixes are in a "{CVE-… CVE-…}" line.
# https://salsa.debian.org/security-tracker-team/security-tracker/-/blob/master/data/DSA/list
_DSA_HEADER = re.compile(r"^\[[^\]]+\]\s+(DSA-\d+(?:-\d+)?)\s")
_DSA_IDS = re.compile(r"^\s+\{([^}]*)\}")


def read_dsa_list(path: Path) -> dict[str, tuple[str, ...]]:
    """Map each DSA id in a tracker ``data/DSA/list`` file to the CVE ids it fixes.

    Used to add DSA ids as aliases of the CVEs.  Advisories without CVEs (key changes,
    end-of-life notices) map to ``()``.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise FeedError(path, f"cannot read file: {exc.strerror or exc}") from exc
    out: dict[str, tuple[str, ...]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line[0] == "[":
            header = _DSA_HEADER.match(line)
            if header is None:
                raise FeedError(path, "DSA header must read '[date] DSA-n package - text'",
                                line=number)
            current = header.group(1)
            out.setdefault(current, ())
            continue
        if not line[0].isspace():
            raise FeedError(path, "expected a '[date] DSA-…' header or an indented line",
                            line=number)
        ids = _DSA_IDS.match(line)
        if ids is not None:
            if current is None:
                raise FeedError(path, "CVE list before the first DSA header", line=number)
            out[current] = (*out[current], *ids.group(1).split())
    return out
