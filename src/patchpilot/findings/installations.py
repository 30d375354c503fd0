"""A finding's installations: every affected copy of its package on the asset.

The matcher judges each distinct (ecosystem, name, version) once, so one vulnerability of
pip on a host with ten Pythons comes back as one match per pip *version*, each naming the
packages (site-packages folders) behind it.  A finding is keyed by (asset, vulnerability,
package), so those matches become one finding listing every installation -- location,
installed version, the fix it needs and the command that installs it there -- and the
finding stays open while any installation is affected (``findings.lifecycle``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from patchpilot.errors import VersionError
from patchpilot.findings.commands import upgrade_command
from patchpilot.findings.model import Finding, Fix, Installation
from patchpilot.knowledge.ecosystems import is_distribution
from patchpilot.knowledge.versions import VersionKey, version_key
from patchpilot.models import Package

Key = tuple[str, str, str]


def installations_of(ecosystem: str, version: str, fixed: str | None,
                     packages: Sequence[Package]) -> tuple[Installation, ...]:
    """The installations behind one match: ``packages`` (all at ``version``) per location.

    An OS package is one installation whatever file it was read from (the system's package
    database; its binaries upgrade together), so its location is None.  A language package
    is one installation per folder or lock file it was found in.
    """
    if is_distribution(ecosystem) or not packages:
        return (Installation(None, version, fixed,
                             upgrade_command(ecosystem, packages, fixed)),)
    by_location: dict[str | None, list[Package]] = {}
    for p in packages:
        by_location.setdefault(p.location or None, []).append(p)
    return tuple(Installation(loc, version, fixed,
                              upgrade_command(ecosystem, pkgs, fixed, loc))
                 for loc, pkgs in sorted(by_location.items(), key=lambda kv: kv[0] or ""))


def _key(ecosystem: str, version: str) -> tuple[int, VersionKey | str]:
    # A version no rule reads sorts after every readable one, by its text.
    try:
        return (0, version_key(ecosystem, version))
    except VersionError:
        return (1, version)


def sort_version(ecosystem: str, version: str) -> tuple[int, VersionKey | str]:
    """A sort key for versions of ``ecosystem``: readable ones in order, then the others
    by their text."""
    return _key(ecosystem, version)


def highest_fix(ecosystem: str, fixes: Iterable[str | None]) -> str | None:
    """The highest of the fixed versions given (None ignored; None when none is given)."""
    known = {f for f in fixes if f}
    return max(known, key=lambda v: _key(ecosystem, v)) if known else None


def sort_installations(ecosystem: str, items: Iterable[Installation]
                       ) -> tuple[Installation, ...]:
    """Each (location, version) once (the highest fix kept), oldest version first."""
    seen: dict[tuple[str | None, str], Installation] = {}
    for i in items:
        key = (i.location, i.installed_version)
        had = seen.get(key)
        if had is None or highest_fix(ecosystem, (had.fixed_version, i.fixed_version)) \
                != had.fixed_version:
            seen[key] = i
    return tuple(sorted(seen.values(), key=lambda i: (
        _key(ecosystem, i.installed_version), i.location or "")))


def merge(found: Sequence[Finding]) -> Finding:
    """One finding of the same key from several (one per installed version): every
    installation; the evidence of the oldest version (its affected range and advisory);
    the highest fix any installation needs; every installation's command, one a line;
    the OS packages owning any of the copies."""
    if len(found) == 1:
        return found[0]
    ecosystem = found[0].ecosystem
    installations = sort_installations(
        ecosystem, (i for f in found for i in f.installations))
    oldest = installations[0].installed_version if installations else None
    base = next((f for f in found if f.evidence.installed_version == oldest), found[0])
    fixed = highest_fix(ecosystem, (i.fixed_version for i in installations)) \
        or highest_fix(ecosystem, (f.fix.fixed_version for f in found))
    commands = [c for c in dict.fromkeys(i.command for i in installations) if c]
    packages = tuple(sorted({p for f in found for p in f.evidence.packages}))
    owners = tuple(sorted({o for f in found for o in f.evidence.owners}))
    return replace(base, installations=installations,
                   fix=Fix(fixed, "\n".join(commands) or base.fix.command),
                   evidence=replace(base.evidence, packages=packages, owners=owners))


def merge_findings(found: Iterable[Finding]) -> list[Finding]:
    """``found`` with the findings of one key merged into one (:func:`merge`), in the
    order each key first appears."""
    groups: dict[Key, list[Finding]] = {}
    for f in found:
        groups.setdefault((f.vuln_id, f.ecosystem, f.package), []).append(f)
    return [merge(g) for g in groups.values()]
