"""What the container and image scanners' readers share: the package a finding is on (by
purl when the report gives one, else by its type word), the fixed version among a list of
branch fixes, and an image's name from its registry, repository and tag.

Not a format (the leading ``_`` keeps it out of the registry's completeness test).
"""

from __future__ import annotations

import re

from patchpilot.importers.model import ecosystem_for, text_or_none
from patchpilot.inventory.sources.purl_map import map_purl
from patchpilot.models import Ecosystem

# Trivy and Trivy Operator write the image's OS after its name: "nginx:1.25 (debian 12.4)".
_OS_SUFFIX = re.compile(r"^(?P<name>.+?)\s+\((?P<family>[\w.-]+)\s+(?P<release>[^)]+)\)\s*$")


def split_os_suffix(text: str) -> tuple[str, str | None, str | None]:
    """(name, OS family, OS release) of ``"nginx:1.25 (debian 12.4)"``; the text itself and
    None, None when it has no such suffix."""
    found = _OS_SUFFIX.match(text)
    if found is None:
        return text.strip(), None, None
    return found.group("name").strip(), found.group("family"), found.group("release").strip()


def ecosystem_of(purl: str | None, kind: str | None, distro: str | None,
                 location: str | None = None) -> str | None:
    """The item's ecosystem: the purl's (with ``distro``, the image's OS as PatchPilot
    spells it, for OS purls without a ``distro`` qualifier), else the type word's
    (``ecosystem_for``), else the type word as the report wrote it.

    A purl wins over the type word: Trivy labels a CycloneDX input's Debian packages
    ``pip`` when it read them from a ``requirements.txt`` result.
    """
    if purl:
        package = map_purl(purl, location, Ecosystem(distro) if distro else None)
        if not isinstance(package, str):
            return str(package.ecosystem)
    if kind and kind.strip().lower() in _OS_KINDS and distro:
        return distro
    return ecosystem_for(kind) or text_or_none(kind)


# Package type words that mean "the image's OS package manager".
_OS_KINDS = {"deb", "rpm", "apk", "dpkg", "os", "debian", "ubuntu", "alpine", "redhat", "centos",
             "rocky", "alma", "almalinux", "amazon", "oracle", "photon", "suse", "opensuse",
             "wolfi", "chainguard", "fedora", "mariner", "azurelinux", "cbl-mariner"}


def pick_fix(text: str | None, installed: str | None) -> str | None:
    """The fixed version for ``installed`` among a comma-separated list of branch fixes
    (``"11.0.14, 10.1.49, 9.0.112"`` for ``9.0.109`` -> ``9.0.112``): the one sharing the
    most leading version components with it, the first on a tie; None for none."""
    candidates = [c.strip() for c in (text or "").split(",") if c.strip()]
    if not candidates:
        return None
    if len(candidates) == 1 or not installed:
        return candidates[0]
    mine = re.split(r"[.\-+:]", installed)

    def shared(candidate: str) -> int:
        count = 0
        for a, b in zip(mine, re.split(r"[.\-+:]", candidate), strict=False):
            if a != b:
                break
            count += 1
        return count

    return max(candidates, key=lambda c: (shared(c), -candidates.index(c)))


def image_name(server: str | None, repository: str | None, tag: str | None,
               digest: str | None = None) -> str | None:
    """``server/repository:tag`` (``@digest`` without a tag); None without a repository."""
    repository, server = text_or_none(repository), text_or_none(server)
    tag, digest = text_or_none(tag), text_or_none(digest)
    if repository is None:
        return None
    name = f"{server}/{repository}" if server else repository
    if tag:
        return f"{name}:{tag}"
    if digest:
        return f"{name}@{digest}"
    return name


def references(urls: object) -> tuple[str, ...]:
    """The URLs of a list (a trailing remark after a space dropped), once each."""
    if not isinstance(urls, list):
        return ()
    found: dict[str, None] = {}
    for url in urls:
        text = text_or_none(url)
        if text and "://" in text:
            found[text.split()[0]] = None
    return tuple(found)


def same_epoch(fixed: str | None, installed: str | None) -> str | None:
    """``fixed`` without a ``0:`` epoch when ``installed`` is written without one (rpm
    fixes often say ``0:0.7-21.el8``, the installed version ``0.7-20.el8``): the two then
    read alike."""
    if fixed and fixed.startswith("0:") and ":" not in (installed or ""):
        return fixed[2:]
    return fixed
