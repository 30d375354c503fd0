"""Snyk CLI JSON (``snyk test --json``, ``--all-projects``, ``snyk container test --json``).

One project object, or a list of them (``--all-projects``).  Snyk lists a vulnerability
once per dependency path: each (issue, package, version) is one item -- the Snyk id
(``SNYK-JAVA-…``) as the scanner id, the CVE/GHSA/CWE identifiers, the package (for an
operating-system package the binary package, ``gcc-10/libgcc-s1`` -> ``libgcc-s1``), the
nearest of ``fixedIn`` above the installed version, the manifest as location.  License
issues are skipped ("license finding").  The target is the project's name; a container
test's is the image (``name:tag``), which also holds the applications found in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from patchpilot.importers.formats._advisories import advisory_ids, nearest_fixed, split_ids
from patchpilot.importers.model import (
    Format,
    ReportError,
    ReportItem,
    Skipped,
    Sniff,
    Target,
    band,
    cwe_ids,
    ecosystem_for,
    json_items,
    read_json,
    text_or_none,
)

# Snyk's exploit maturity: which words mean a public exploit exists.
_EXPLOIT = {"mature": True, "proof of concept": True, "functional": True, "high": True,
            "unproven": False, "no known exploit": False}


def detect(sniff: Sniff) -> int:
    keys = sniff.json_keys
    if "vulnerabilities" in keys and ("uniqueCount" in keys or {"ok", "dependencyCount"}
                                      <= keys):
        return 100
    if sniff.json_list and '"uniqueCount"' in sniff.text and '"packageManager"' in sniff.text:
        return 100
    return 0


def _ecosystem(manager: str | None) -> str | None:
    """``debian:11`` -> ``Debian:11``, ``pip`` -> ``PyPI``; else the word as Snyk wrote it."""
    word, _, release = (manager or "").partition(":")
    return ecosystem_for(word, release or None) or text_or_none(manager)


def _image(project: dict[str, Any]) -> str:
    """``docker-image|name`` with the tag the dependency paths name (``name@tag``)."""
    name = str(project.get("projectName") or "").split("|", 1)[-1]
    for vuln in project.get("vulnerabilities") or []:
        root = str((vuln.get("from") or [""])[0]).split("|", 1)[-1]
        image, _, tag = root.rpartition("@")
        if image == name and tag:
            return f"{name}:{tag}"
    return name


def _target(project: dict[str, Any]) -> Target:
    name = text_or_none(project.get("projectName"))
    if name and name.startswith("docker-image|"):
        return Target(artifact=_image(project))
    return Target(artifact=name) if name else Target()


def _items(target: Target, project: dict[str, Any]) -> Iterator[ReportItem | Skipped]:
    location = text_or_none(project.get("displayTargetFile") or project.get("targetFile"))
    seen: set[tuple[str, str, str]] = set()
    for vuln in project.get("vulnerabilities") or []:
        key = (str(vuln.get("id")), str(vuln.get("name")), str(vuln.get("version")))
        if key in seen:  # the same issue on another dependency path
            continue
        seen.add(key)
        if vuln.get("type") == "license":
            yield Skipped("license finding")
            continue
        identifiers = vuln.get("identifiers") or {}
        ids = advisory_ids(*(str(i) for kind, values in identifiers.items()
                             if kind != "CWE" for i in values or []))
        cves, others = split_ids(ids)
        ecosystem = _ecosystem(vuln.get("packageManager") or project.get("packageManager"))
        name = str(vuln.get("name") or vuln.get("packageName") or "")
        if vuln.get("language") == "linux" and "/" in name:
            name = name.split("/", 1)[1]  # "source/binary": the installed binary package
        version = text_or_none(vuln.get("version"))
        exploit = _EXPLOIT.get(str(vuln.get("exploit") or "").lower())
        score = vuln.get("cvssScore")
        yield ReportItem(
            target=target,
            scanner_id=str(vuln.get("id")),
            cves=cves,
            aliases=others,
            title=text_or_none(vuln.get("title")),
            description=text_or_none(vuln.get("description")),
            ecosystem=ecosystem,
            package=name or None,
            installed_version=version,
            fixed_version=nearest_fixed(ecosystem, version, vuln.get("fixedIn") or []),
            location=location,
            severity=band(vuln.get("severityWithCritical") or vuln.get("severity")),
            cvss_vector=text_or_none(vuln.get("CVSSv3")),
            cvss_score=float(score) if isinstance(score, (int, float)) else None,
            exploit_available=exploit,
            references=tuple(dict.fromkeys(str(r["url"]) for r in vuln.get("references") or []
                                           if r.get("url"))),
            cwes=cwe_ids(identifiers.get("CWE") or []),
        )


def _projects(stream: IO[bytes], source: str) -> Iterator[dict[str, Any]]:
    head = stream.read(64)
    stream.seek(0)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        yield from json_items(stream, source, "item")  # --all-projects, streamed
        return
    report = read_json(stream, source)
    if not isinstance(report, dict):
        raise ReportError(source, "not a Snyk report: neither a project nor a list")
    if report.get("error") and "vulnerabilities" not in report:
        raise ReportError(source, f"a Snyk error, not a report: {report['error']}")
    yield report


def parse(stream: IO[bytes], source: str) -> Iterator[ReportItem | Target | Skipped]:
    seen: set[Target] = set()
    for project in _projects(stream, source):
        target = _target(project)
        if target not in seen:
            seen.add(target)
            yield target
        yield from _items(target, project)
        # A container test lists the applications found in the image with their own
        # manifests: their packages are in the same image.
        for application in project.get("applications") or []:
            yield from _items(target, application)


FORMAT = Format(
    name="snyk", producer="snyk", title="Snyk CLI JSON (open source and container)",
    detect=detect, parse=parse, extensions=(".json",),
    notes="Every issue once per package and version (not per dependency path), container "
          "images with their applications; license issues are skipped, patches left out.")
