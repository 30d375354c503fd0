"""``composer audit --format=json``: Packagist security advisories against
``composer.lock``.

One item per advisory (``advisories`` is keyed by package, each a list): Packagist's
advisory id (``PKSA-…``) is the scanner id, its ``cve`` the CVE and the GitHub ids among
its ``sources`` the aliases.  Composer does not print the installed version, so the
fixed version is known only when ``affectedVersions`` has a single upper bound
(``<1.2.3``).  Abandoned packages are counted as skipped (no vulnerability).  The report
names no project: an empty :class:`Target`, once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._audit import fix_past
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cve_ids,
    read_json,
    text_or_none,
)

_GHSA = re.compile(r"GHSA(?:-[0-9a-z]{4}){3}", re.IGNORECASE)


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    if "advisories" not in keys or "actions" in keys or "muted" in keys:  # npm audit v6
        return 0
    # Composer 2.4 printed the advisories alone; "abandoned" came with 2.7.
    return 100 if "abandoned" in keys else 60


def _item(target: Target, advisory: dict[str, Any], package: str) -> ReportItem:
    remote = [str(s.get("remoteId") or "") for s in advisory.get("sources") or ()]
    link = text_or_none(advisory.get("link"))
    advisory_id = text_or_none(advisory.get("advisoryId"))
    cves = cve_ids(advisory.get("cve"))
    return ReportItem(
        target=target,
        scanner_id=advisory_id or (cves[0] if cves else f"composer:{package}"),
        cves=cves,
        aliases=tuple(dict.fromkeys(m for r in remote for m in _GHSA.findall(r))),
        title=text_or_none(advisory.get("title")),
        ecosystem="Packagist",
        package=text_or_none(advisory.get("packageName")) or package,
        fixed_version=fix_past(text_or_none(advisory.get("affectedVersions"))),
        severity=band(advisory.get("severity")),
        references=(link,) if link else (),
        output=f"affected versions: {advisory.get('affectedVersions')}"
        if advisory.get("affectedVersions") else None,
    )


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    data = read_json(stream, source)
    advisories = data.get("advisories") if isinstance(data, dict) else None
    # PHP encodes an empty map as an empty list.
    if not isinstance(advisories, (dict, list)) or (isinstance(advisories, list) and advisories):
        raise ReportError(source, "not a composer audit report: no 'advisories' object")
    target = Target()
    yield target
    for package, entries in (advisories.items() if isinstance(advisories, dict) else ()):
        for advisory in entries.values() if isinstance(entries, dict) else entries:
            yield _item(target, advisory, package)
    for _package in data.get("abandoned") or ():
        yield Skipped("abandoned package")


FORMAT = Format(
    name="composer-audit", producer="composer-audit", title="composer audit --format=json",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every advisory (no installed version: Composer does not print it); abandoned "
          "packages are counted as skipped, and the report names no project.")
