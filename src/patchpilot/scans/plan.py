"""The patch plan: open findings grouped by the one change that removes them.

A plan item is one package upgraded to one fixed version on one OS release -- the key
``(ecosystem, package, target version)``, where the ecosystem carries the release
(``AlmaLinux:8``, ``Debian:12``) and, for distributions, the package is the *source*
package the advisory names; the binaries to upgrade are the ones each host has installed
from it (``asset_packages.installed``).  "openssl → 3.0.15-1~deb12u1 fixes 6 CVEs on 42
hosts, 3 of them P1".

Each *installation* (a finding's ``installations``: one copy of the package on a host, in
one site-packages folder or project) is upgraded once, to the highest fixed version any of
its open findings needs: cryptography 38.0.4 with CVEs fixed in 39.0.1 and in 41.0.6 is
one item "cryptography → 41.0.6 fixes 2 CVEs", never two; ten pips on one host, each
upgraded to what it needs, with the command that names its Python.  Installations of
many hosts needing the same target make one item, as hosts always have.

Items are ordered by the risk one change removes: the sum over its open findings of a
priority weight (P1 1000, P2 100, P3 10, P4 1) plus a KEV weight per known-exploited
finding, so one P1 outweighs any number of P4s a plan is likely to hold.  Each item says
which hosts, the upgrade command of the package manager, whether a reboot is needed
(kernel, C library or init upgrades; a reboot already pending on a host is shown per
host), and the next maintenance window of each host's groups.  Findings with no fixed
version are listed apart, with the workaround where the advisory publishes one.

Verification: findings fixed since ``since`` (by a later complete scan) stay in their
item, and a host all of whose findings of the item are fixed is *verified*; the others
are *pending*.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import and_, case, cast, func, literal, or_, select, tuple_
from sqlalchemy.engine import Connection

from patchpilot.assets.groups import group_asset_ids
from patchpilot.cells import csv_chunks
from patchpilot.clock import iso, now_utc
from patchpilot.db.tables import (
    asset_groups,
    asset_packages,
    assets,
    finding_priority,
    findings,
    inventories,
    msrc_fixes,
)
from patchpilot.findings.commands import upgrade_command
from patchpilot.findings.installations import highest_fix, sort_version
from patchpilot.findings.model import WINDOWS
from patchpilot.findings.phrases import NO_WORKAROUND
from patchpilot.knowledge.cpe_names import label
from patchpilot.knowledge.ecosystems import distro_of, scheme_of
from patchpilot.knowledge.matcher import gc_paused
from patchpilot.models import Ecosystem, Package
from patchpilot.scans.groups import all_group_periods
from patchpilot.scans.schedules import next_allowed

PRIORITY_WEIGHT = {1: 1000, 2: 100, 3: 10, 4: 1}
KEV_WEIGHT = 500
# A finding not yet prioritised (between its match and its prioritise step) counts as P3.
UNPRIORITISED = 3
# Upgrades of these packages (binary or source names) take effect only after a reboot:
# the running kernel, the C library every process maps, the init system.
REBOOT_PATTERNS = ("linux-image*", "linux-signed*", "linux", "kernel", "kernel-*", "glibc",
                   "glibc-*", "libc6", "libc6-*", "libc-bin", "systemd", "systemd-*",
                   "musl", "dbus", "dbus-*")
DEFAULT_VERIFY_DAYS = 30
# Windows work is not done by a package manager: the KBs come from Windows Update, WSUS or
# the Microsoft Update Catalog.
WINDOWS_UPDATE = "windows-update"
# The human step a Windows finding's fix names ("install KB5078766 (2026-03 cumulative
# update), restart required"), read when MSRC's own restart flag for the KB is not stored.
RESTART_REQUIRED = "restart required"
# Devices' firmware (ecosystem CPE) comes as the vendor's image, installed by a person or
# the vendor's manager (FortiManager, Panorama, DNA Center): never a package manager.
FIRMWARE = "firmware"
# What a plan item calls the devices running a product ("on 4 firewalls"); others are
# "devices".
_DEVICE_NOUNS: dict[str, tuple[str, str]] = {
    "fortinet:fortios": ("firewall", "firewalls"),
    "paloaltonetworks:pan-os": ("firewall", "firewalls"),
    "cisco:adaptive_security_appliance_software": ("firewall", "firewalls"),
}
_CHUNK = 5000


class _Row(NamedTuple):
    id: int
    asset_id: int
    vuln_id: str
    ecosystem: str
    package: str
    state: str
    installed_version: str | None
    fixed_version: str | None
    known_exploited: bool
    priority: int | None
    installed: str | None
    installations: str | None


def needs_reboot(names: Iterable[str]) -> bool:
    """Whether upgrading packages of these names needs a reboot."""
    return any(fnmatch.fnmatchcase(n.lower(), p) for n in names for p in REBOOT_PATTERNS)


def manager_of(ecosystem: str) -> str:
    """The package manager of an ecosystem: apt, dnf, zypper, apk, pip, npm, …,
    ``windows-update`` for Windows (a KB, never a package manager's command) and
    ``firmware`` for devices (ecosystem CPE: the vendor's image)."""
    scheme = scheme_of(ecosystem)
    family = distro_of(ecosystem)
    if family == WINDOWS:
        return WINDOWS_UPDATE
    if scheme == "firmware":
        return FIRMWARE
    if scheme == "dpkg":
        return "apt"
    if scheme == "rpm":
        return "zypper" if family in ("SUSE", "openSUSE") else "dnf"
    if scheme == "apk":
        return "apk"
    return {"PyPI": "pip", "npm": "npm", "Go": "go", "crates.io": "cargo",
            "RubyGems": "bundler", "Maven": "maven", "NuGet": "dotnet",
            "Packagist": "composer"}.get(family, family.lower())


@dataclass(frozen=True, slots=True)
class PlanInstallation:
    """One copy of the package on a host that the item upgrades, and how."""

    location: str | None  # site-packages folder, lock file; None: the OS package
    installed_version: str
    command: str | None  # the upgrade to the item's version there; None: the item's


@dataclass(frozen=True, slots=True)
class PlanHost:
    """One host of a plan item."""

    asset_id: int
    name: str
    status: str  # pending or verified
    installed_version: str | None  # the oldest of its installations
    binaries: tuple[str, ...]  # installed package names to upgrade
    best_priority: int | None  # of its open findings in this item
    groups: tuple[str, ...]
    next_window: str | None  # ISO start of the next maintenance window; None: any time
    reboot_pending: bool | None  # the host already waits for a reboot (from its inventory)
    installations: tuple[PlanInstallation, ...] = ()  # each copy upgraded (oldest first)
    # Its open findings in this item (a verified host: the ones fixed): the vulnerabilities,
    # how many per priority (P1..P4), how many known exploited, and the risk they weigh.
    vulns: tuple[str, ...] = ()
    by_priority: tuple[int, int, int, int] = (0, 0, 0, 0)
    known_exploited: int = 0
    risk: int = 0


def installed_span(ecosystem: str, versions: Iterable[str | None]) -> str:
    """The firmware a device item upgrades from: '7.2.4', or '7.2.2–7.2.4' (oldest and
    newest) when its devices run several."""
    known = sorted({v for v in versions if v}, key=lambda v: sort_version(ecosystem, v))
    if not known:
        return ""
    return known[0] if len(known) == 1 else f"{known[0]}–{known[-1]}"


def change_summary(package: str, fixed_version: str, n_vulns: int, n_hosts: int, p1: int,
                   verified: int, *, ecosystem: str = "", reboot: bool = False,
                   installed: str = "") -> str:
    """'openssl → 3.0.15-1~deb12u1 fixes 6 CVEs on 42 hosts, 3 of them P1' (``p1``: the
    pending hosts whose best priority is P1; ``verified``: hosts found fixed); a Windows
    item is named by its KB alone and says whether it restarts the host: 'KB5078766
    fixes 67 CVEs on 3 hosts; restart'; a device item by its product and firmware
    (``installed``, see :func:`installed_span`): 'FortiOS 7.2.4 → 7.2.7 fixes 2 CVEs on
    4 firewalls'."""
    windows = distro_of(ecosystem) == WINDOWS
    cves = f"{n_vulns} {'CVE' if n_vulns == 1 else 'CVEs'}"
    if scheme_of(ecosystem) == "firmware":
        one, many = _DEVICE_NOUNS.get(package, ("device", "devices"))
        start = f"{label(package)} {installed}".rstrip()
        noun = one if n_hosts == 1 else many
        text = f"{start} → {fixed_version} fixes {cves} on {n_hosts} {noun}"
        if p1:
            text += f", {p1} of them P1"
        if verified:
            text += f" ({verified} verified fixed)"
        return text
    text = (f"{fixed_version if windows else f'{package} → {fixed_version}'} fixes {cves} "
            f"on {n_hosts} {'host' if n_hosts == 1 else 'hosts'}")
    if p1:
        text += f", {p1} of them P1"
    if verified:
        text += f" ({verified} verified fixed)"
    if windows and reboot:
        text += "; restart"
    return text


@dataclass(slots=True)
class PlanItem:
    """One change: a package upgraded to one fixed version on one OS release."""

    ecosystem: str
    package: str
    fixed_version: str
    manager: str
    command: str | None
    reboot: bool
    vulns: list[str] = field(default_factory=list)
    by_priority: dict[str, int] = field(default_factory=dict)  # "P1" → open findings
    known_exploited: int = 0
    risk: int = 0
    hosts: list[PlanHost] = field(default_factory=list)
    # Some installation has a location (a language package in named folders or
    # projects): each copy is upgraded by its own command.
    located: bool = False

    @property
    def pending(self) -> list[PlanHost]:
        """Hosts still to patch."""
        return [h for h in self.hosts if h.status == "pending"]

    @property
    def verified(self) -> list[PlanHost]:
        """Hosts a later scan found fixed."""
        return [h for h in self.hosts if h.status == "verified"]

    @property
    def summary(self) -> str:
        """'openssl → 3.0.15-1~deb12u1 fixes 6 CVEs on 42 hosts, 3 of them P1'."""
        return change_summary(self.package, self.fixed_version, len(self.vulns),
                              len(self.pending),
                              sum(1 for h in self.pending if h.best_priority == 1),
                              len(self.verified), ecosystem=self.ecosystem,
                              reboot=self.reboot, installed=self.installed)

    @property
    def installed(self) -> str:
        """The firmware a device item upgrades from (its pending devices'; '' elsewhere)."""
        if self.manager != FIRMWARE:
            return ""
        return installed_span(self.ecosystem, (h.installed_version
                                               for h in self.pending or self.hosts))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        d = asdict(self)
        d["summary"] = self.summary
        d["pending"] = len(self.pending)
        d["verified"] = len(self.verified)
        return d


@dataclass(frozen=True, slots=True)
class UnfixedItem:
    """Findings no published fix removes yet, per package."""

    ecosystem: str
    package: str
    vulns: tuple[str, ...]
    hosts: tuple[str, ...]
    best_priority: int | None
    workaround: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PatchPlan:
    """The plan: items by risk removed, then what no fix removes yet."""

    generated_at: datetime
    since: datetime | None
    items: tuple[PlanItem, ...]
    unfixed: tuple[UnfixedItem, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the ``GET /api/plan`` shape)."""
        return {"generated_at": iso(self.generated_at), "since": iso(self.since),
                "items": [i.to_dict() for i in self.items],
                "unfixed": [u.to_dict() for u in self.unfixed]}


def in_ids(column: Any, ids: Sequence[int]) -> Any:
    """``column IN ids``: one IN list where it fits (the planner then uses the column's
    index; an ``OR`` around it hid the index from SQLite), several OR-ed past the
    parameters one statement may carry."""
    if len(ids) <= _CHUNK:
        return column.in_(ids)
    return or_(*(column.in_(ids[i:i + _CHUNK]) for i in range(0, len(ids), _CHUNK)))


def next_windows(conn: Connection, now: datetime) -> dict[str, datetime | None]:
    """Each group's next maintenance window start, skipping blackouts (None: no window,
    the group may be patched at any time; the open window's start while one is open) --
    every group's periods in one query."""
    periods = all_group_periods(conn)
    out: dict[str, datetime | None] = {}
    for gid, name in conn.execute(select(asset_groups.c.id, asset_groups.c.name)):
        windows, blackouts = periods.get(gid, ([], []))
        at = next_allowed(now, windows, blackouts) if windows else None
        if at is not None and at == now.astimezone(UTC):
            # A window is open now: its start, so that every reader of the plan in this
            # window names the same one (not the moment each happened to ask).
            opened = [p[0] for w in windows if (p := w.containing(now)) is not None]
            at = min(opened) if opened else at
        out[name] = at
    return out


def group_windows(conn: Connection, group: str | None, now: datetime
                  ) -> tuple[dict[int, list[str]], dict[str, datetime | None], set[int] | None]:
    """asset → its group names; group → next window start; the assets of ``group``."""
    member_of: dict[int, list[str]] = defaultdict(list)
    only: set[int] | None = None
    for gid, name in conn.execute(select(asset_groups.c.id, asset_groups.c.name)
                                  .order_by(asset_groups.c.name)):
        members = group_asset_ids(conn, gid)
        for a in members:
            member_of[a].append(name)
        if name == group:
            only = set(members)
    if group is not None and only is None:
        only = set()
    return member_of, next_windows(conn, now), only


def _reboot_pending(conn: Connection, asset_ids: list[int]) -> dict[int, bool | None]:
    """Each asset's ``os.reboot_required`` from its latest inventory, read inside the DB."""
    if conn.dialect.name == "postgresql":
        flag = cast(inventories.c.document, _json_type())["os"]["reboot_required"].astext
    else:
        flag = func.json_extract(inventories.c.document, "$.os.reboot_required")
    out: dict[int, bool | None] = {}
    for start in range(0, len(asset_ids), _CHUNK):
        chunk = asset_ids[start:start + _CHUNK]
        for a, value in conn.execute(
                select(assets.c.id, flag).join(inventories,
                                               inventories.c.id == assets.c.last_inventory_id)
                .where(assets.c.id.in_(chunk))):
            out[a] = None if value is None else value in (1, True, "true")
    return out


def _json_type() -> Any:
    from sqlalchemy.dialects.postgresql import JSONB

    return JSONB


def build_plan(conn: Connection, *, group: str | None = None, since: datetime | None = None,
               now: datetime | None = None, verify: bool = True,
               asset_ids: list[int] | None = None, top: int | None = None) -> PatchPlan:
    """The patch plan of every open finding (of ``group``'s hosts, of ``asset_ids``).

    With ``verify``, findings fixed since ``since`` (default: the last 30 days) stay in
    their item so that their hosts show as verified.  With ``top``, only the items that
    can rank among the first ``top`` are built (and no unfixed list): the executive
    report's few actions without reading every open finding of the estate into Python.
    """
    now = now or now_utc()
    if verify and since is None:
        since = now - timedelta(days=DEFAULT_VERIFY_DAYS)
    member_of, next_window, only = group_windows(conn, group, now)
    if asset_ids is not None:
        only = set(asset_ids) if only is None else only & set(asset_ids)
    f = findings
    wanted = f.c.state == "open"
    if verify and since is not None:
        wanted = or_(wanted, and_(f.c.state == "fixed", f.c.fixed_at >= since))
    if top is None:
        items, unfixed_groups, names = build_items(conn, wanted, only, member_of,
                                                    next_window)
        return PatchPlan(generated_at=now, since=since if verify else None,
                         items=tuple(items), unfixed=_unfixed(conn, unfixed_groups, names))
    # An item's risk is at most its package's (the item holds some of the package's
    # open findings), so the packages whose summed risk (in SQL) reaches that of the
    # ``4 × top``-th are built first; if the ``top``-th item built then ranks below that
    # floor, every package that could still hold a better item is built too.
    ranked = _ranked_packages(conn, only)
    floor = ranked[4 * top - 1][0] if len(ranked) > 4 * top else 0
    while True:
        chosen = [k for r, k in ranked if r >= floor] if floor else None
        items, _, _ = build_items(conn, wanted, only, member_of, next_window, chosen)
        reached = items[top - 1].risk if len(items) >= top else 0
        if not floor or reached >= floor:
            break
        floor = reached
    return PatchPlan(generated_at=now, since=since if verify else None,
                     items=tuple(items[:top]), unfixed=())


def _installations_of(r: _Row, cache: dict[Any, Any]
                      ) -> list[tuple[str | None, str, str | None]]:
    """The (location, installed version, fixed version) of each installation of a
    finding row; a row written before installations were stored is its one copy."""
    text = r.installations
    if text is None:
        return [(None, r.installed_version or "", r.fixed_version)]
    out = cache.get(text)
    if out is None:
        out = cache[text] = [(i[0], i[1] or "", i[2]) for i in orjson.loads(text)]
    return out  # type: ignore[no-any-return]


def rows_statement(wanted: Any, only: set[int] | None = None,
                   packages: list[tuple[str, str]] | None = None) -> Any:
    """The findings ``wanted`` (of the hosts ``only``, of the ``packages``) with what the
    grouping reads: their priority and the host's installed binaries of the package."""
    f = findings
    stmt = (select(f.c.id, f.c.asset_id, f.c.vuln_id, f.c.ecosystem, f.c.package, f.c.state,
                   f.c.installed_version, f.c.fixed_version, f.c.known_exploited,
                   finding_priority.c.priority, asset_packages.c.installed,
                   f.c.installations)
            .outerjoin(finding_priority, finding_priority.c.finding_id == f.c.id)
            .outerjoin(asset_packages, and_(asset_packages.c.asset_id == f.c.asset_id,
                                            asset_packages.c.ecosystem == f.c.ecosystem,
                                            asset_packages.c.name == f.c.package))
            .where(wanted))
    if only is not None:
        # A group's or a report's hosts: filtered in SQL, so that the rows of the rest of
        # the estate are never read (ix_findings_key leads with asset_id).
        stmt = stmt.where(in_ids(f.c.asset_id, sorted(only)))
    if packages is not None:
        key = tuple_(f.c.ecosystem, f.c.package)
        stmt = stmt.where(or_(*(key.in_(packages[i:i + _CHUNK])
                                for i in range(0, len(packages), _CHUNK))) if packages
                          else literal(False))
    return stmt


def build_items(conn: Connection, wanted: Any, only: set[int] | None,
                member_of: dict[int, list[str]], next_window: dict[str, datetime | None],
                packages: list[tuple[str, str]] | None = None
                ) -> tuple[list[PlanItem], dict[tuple[str, str], list[Any]], dict[int, str]]:
    """The items (ordered) of the findings ``wanted`` (of the ``packages`` given), the
    open findings no fix removes per package, and the hosts' names."""
    return group_rows(conn, conn.execute(rows_statement(wanted, only, packages)), member_of,
                      next_window)


def group_rows(conn: Connection, rows: Iterable[Any], member_of: dict[int, list[str]],
               next_window: dict[str, datetime | None]
               ) -> tuple[list[PlanItem], dict[tuple[str, str], list[Any]], dict[int, str]]:
    """The items (ordered) of ``rows`` (of :func:`rows_statement`; whole packages: an
    item never spans two), the open findings no fix removes per package, and the hosts'
    names (read on ``conn``)."""
    # Grouping 100,000s of rows allocates as many small tuples, none in a cycle: automatic
    # collections would cost the grouping five times its own time (as in the matcher).
    with gc_paused():
        return _grouped_items(conn, rows, member_of, next_window)


def _grouped_items(conn: Connection, result: Iterable[Any],
                   member_of: dict[int, list[str]], next_window: dict[str, datetime | None]
                   ) -> tuple[list[PlanItem], dict[tuple[str, str], list[Any]], dict[int, str]]:
    # Plain named tuples: the grouping below reads each field of 100,000s of rows, and a
    # NamedTuple's fields are read several times faster than a Row's.
    rows = [r if isinstance(r, _Row) else _Row._make(r) for r in result]

    # Each installation (asset, ecosystem, package, location, installed version) with the
    # rows of the findings that name it and the fix each needs there.
    cache: dict[Any, Any] = {}
    units: dict[tuple[int, str, str, str | None, str], list[tuple[_Row, str | None]]] = \
        defaultdict(list)
    seen: set[int] = set()
    for r in rows:
        # A package with several versions on a host joins several asset_packages rows:
        # each finding counts once (with the binaries of the first).
        if r.id in seen:
            continue
        seen.add(r.id)
        if r.installations is None:  # a row from before installations: its one copy
            units[(r.asset_id, r.ecosystem, r.package, None, r.installed_version or "")
                  ].append((r, r.fixed_version))
            continue
        for location, version, fixed in _installations_of(r, cache):
            units[(r.asset_id, r.ecosystem, r.package, location, version)].append((r, fixed))

    # (ecosystem, package, target) → asset → [(installation, its rows)]
    fixed_groups: dict[tuple[str, str, str], dict[int, list[Any]]] = defaultdict(
        lambda: defaultdict(list))
    unfixed_groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    updates: WindowsUpdates | None = None
    for (asset_id, ecosystem, package, location, version), hits in units.items():
        if ecosystem == WINDOWS:
            # A Windows host's work is per KB, never "the highest version".
            if updates is None:
                updates = cache["windows-updates"] = windows_updates(conn)
            for target, (kb_rows, unfixed) in _by_kb(hits, updates).items():
                if target is None:
                    unfixed_groups[(ecosystem, package)].extend(unfixed)
                else:
                    fixed_groups[(ecosystem, package, target)][asset_id].append(
                        ((location, version), kb_rows))
            continue
        if len(hits) == 1:  # the common case: one finding names the installation
            r, fx = hits[0]
            if fx:
                fixed_groups[(ecosystem, package, fx)][asset_id].append(
                    ((location, version), [r]))
            elif r.state == "open":
                unfixed_groups[(ecosystem, package)].append(r)
            continue
        open_hits = [(r, fx) for r, fx in hits if r.state == "open"]
        unfixed = [r for r, fx in open_hits if not fx]
        if unfixed:
            unfixed_groups[(ecosystem, package)].extend(unfixed)
        # Open: upgraded to the highest fix its open findings need; all fixed since
        # ``since``: shown verified, under the highest fix they needed.
        chosen = [(r, fx) for r, fx in (open_hits or hits) if fx]
        if not chosen:
            continue
        # (One fix, the common case, needs no version comparison.)
        target = chosen[0][1] if len(chosen) == 1 else highest_fix(
            ecosystem, {fx for _, fx in chosen})
        fixed_groups[(ecosystem, package, target)][asset_id].append(  # type: ignore[index]
            ((location, version), [r for r, _ in chosen]))
    asset_ids = sorted({r.asset_id for r in rows})
    names: dict[int, str] = {}
    for start in range(0, len(asset_ids), _CHUNK):
        names.update((int(a), str(n)) for a, n in conn.execute(
            select(assets.c.id, assets.c.name).where(
                assets.c.id.in_(asset_ids[start:start + _CHUNK]))))
    reboot_pending = _reboot_pending(conn, asset_ids)

    items = [_item(key, per_asset, names, member_of, next_window, reboot_pending, cache)
             for key, per_asset in fixed_groups.items()]
    # Most risk removed first; ties: more P1 hosts, more vulnerabilities, then by name.
    items.sort(key=lambda i: (-i.risk, -i.by_priority.get("P1", 0), -len(i.vulns),
                              i.package, i.ecosystem, i.fixed_version))
    return items, unfixed_groups, names


@dataclass(frozen=True, slots=True)
class WindowsUpdates:
    """What the MSRC documents stored say about each KB: the KBs it supersedes, directly
    or through others, and whether installing it restarts the host."""

    superseded: dict[str, frozenset[str]]
    restart: dict[str, bool]

    def newest(self, kb: str, among: Iterable[str]) -> str:
        """The KB of ``among`` that supersedes ``kb`` and is itself superseded by none of
        them (``kb`` itself when none does): the one update a host missing several
        cumulative updates installs."""
        others = set(among) - {kb}
        current = kb
        while True:
            later = [u for u in sorted(others) if current in self.superseded.get(u, ())]
            if not later:
                return current
            current = later[0]
            others.discard(current)


def windows_updates(conn: Connection) -> WindowsUpdates:
    """Every stored KB's supersedence (transitive) and restart flag (one small read of
    ``msrc_fixes``: a few hundred distinct KBs a month)."""
    direct: dict[str, set[str]] = defaultdict(set)
    restart: dict[str, bool] = {}
    for kb, supersedes, needs in conn.execute(
            select(msrc_fixes.c.kb, msrc_fixes.c.supersedes, msrc_fixes.c.restart).where(
                msrc_fixes.c.kb.is_not(None)).distinct()):
        direct[kb].update((supersedes or "").split())
        if needs is not None:
            restart[kb] = restart.get(kb, False) or bool(needs)
    closed: dict[str, frozenset[str]] = {}

    def close(kb: str, path: frozenset[str]) -> frozenset[str]:
        found = closed.get(kb)
        if found is None:
            out = set(direct.get(kb, ()))
            for older in direct.get(kb, ()):
                if older not in path:  # a cycle in the documents ends here
                    out |= close(older, path | {kb})
            found = closed[kb] = frozenset(out)
        return found

    for kb in list(direct):
        close(kb, frozenset())
    return WindowsUpdates(superseded=closed, restart=restart)


def _by_kb(hits: list[tuple[_Row, str | None]], updates: WindowsUpdates
           ) -> dict[str | None, tuple[list[_Row], list[_Row]]]:
    """One Windows installation's findings by the KB that removes them: a KB superseded by
    another KB the host also needs goes under that one (the March cumulative update fixes
    February's CVEs too); per KB its open findings, or when all are fixed since ``since``
    the fixed ones (the host is then verified for that KB).  Under None: open findings no
    KB fixes yet."""
    kbs = {fx for _, fx in hits if fx}
    per_kb: dict[str | None, list[_Row]] = defaultdict(list)
    unfixed: list[_Row] = []
    for r, fx in hits:
        if fx:
            per_kb[updates.newest(fx, kbs)].append(r)
        elif r.state == "open":
            unfixed.append(r)
    out: dict[str | None, tuple[list[_Row], list[_Row]]] = {
        kb: ([r for r in rows if r.state == "open"] or rows, [])
        for kb, rows in per_kb.items()}
    if unfixed:
        out[None] = ([], unfixed)
    return out


def _ranked_packages(conn: Connection, only: set[int] | None
                     ) -> list[tuple[int, tuple[str, str]]]:
    """Every (ecosystem, package) with open fixable findings and its summed risk, by the
    same weights as :func:`_item`, highest first.  The priority is read from findings' own
    copy (``priority_rank``, 5 until prioritised), so no join is needed."""
    f = findings
    weight = case(*((f.c.priority_rank == p, literal(w)) for p, w in PRIORITY_WEIGHT.items()),
                  else_=literal(PRIORITY_WEIGHT[UNPRIORITISED]))
    risk = func.sum(weight + case((f.c.known_exploited.is_(True), literal(KEV_WEIGHT)),
                                  else_=literal(0)))
    stmt = (select(f.c.ecosystem, f.c.package, risk.label("risk"))
            .where(f.c.state == "open", f.c.fixed_version.is_not(None))
            .group_by(f.c.ecosystem, f.c.package))
    if only is not None:
        stmt = stmt.where(in_ids(f.c.asset_id, sorted(only)))
    return sorted(((int(r.risk), (r.ecosystem, r.package)) for r in conn.execute(stmt)),
                  key=lambda x: -x[0])


def _item(key: tuple[str, str, str], per_asset: dict[int, list[Any]], names: dict[int, str],
          member_of: dict[int, list[str]], next_window: dict[str, datetime | None],
          reboot_pending: dict[int, bool | None],
          cache: dict[Any, Any]) -> PlanItem:
    ecosystem, package, fixed = key
    eco = Ecosystem(ecosystem)
    vulns: set[str] = set()
    by_priority: dict[str, int] = defaultdict(int)
    kev = risk = 0
    hosts = []
    binaries_all: set[str] = set()
    for asset_id, units in sorted(per_asset.items(), key=lambda kv: names.get(kv[0], "")):
        # The host's findings in this item, each once (two installations may share one;
        # one installation, the common case, names each once).
        frows = (units[0][1] if len(units) == 1
                 else list({r.id: r for _, rs in units for r in rs}.values()))
        open_rows = [r for r in frows if r.state == "open"]
        # Hosts of one release mostly carry the same binaries: decode each JSON text once.
        text = frows[0].installed or ""
        binaries = cache.get(text)
        if binaries is None:
            binaries = tuple(sorted({str(b[0]) for b in orjson.loads(text)})) if text else ()
            cache[text] = binaries
        binaries = binaries or (package,)
        binaries_all.update(binaries)
        best = None
        counts = [0, 0, 0, 0]
        host_kev = host_risk = 0
        for r in open_rows:
            p = r.priority or UNPRIORITISED
            best = p if best is None or p < best else best
            counts[p - 1] += 1
            host_kev += bool(r.known_exploited)
            host_risk += PRIORITY_WEIGHT[p] + (KEV_WEIGHT if r.known_exploited else 0)
        host_vulns = tuple(sorted({r.vuln_id for r in (open_rows or frows)}))
        vulns.update(host_vulns)
        for p, n in enumerate(counts, 1):
            if n:
                by_priority[f"P{p}"] += n
        kev += host_kev
        risk += host_risk
        groups = tuple(member_of.get(asset_id, ()))
        window = cache.get(groups, False)
        if window is False:
            starts = [s for g in groups if (s := next_window.get(g)) is not None]
            window = cache[groups] = iso(min(starts)) if starts else None
        installations = []
        copies = [units[0][0]] if len(units) == 1 else sorted(
            {u for u, _ in units}, key=lambda u: (u[1], u[0] or ""))
        for location, version in copies:
            # An OS package (no location) is upgraded by the item's command.
            command = None
            if location is not None:
                command_key = ("command", ecosystem, binaries, fixed, location)
                command = cache.get(command_key, False)
                if command is False:
                    command = cache[command_key] = upgrade_command(
                        eco, [Package(eco, b, "") for b in binaries], fixed, location)
            installations.append(PlanInstallation(location, version, command))
        hosts.append(PlanHost(
            asset_id=asset_id, name=names.get(asset_id, str(asset_id)),
            status="pending" if open_rows else "verified",
            installed_version=installations[0].installed_version if installations
            else frows[0].installed_version, binaries=binaries,
            best_priority=best, groups=groups, next_window=window,
            reboot_pending=reboot_pending.get(asset_id),
            installations=tuple(installations), vulns=host_vulns,
            by_priority=(counts[0], counts[1], counts[2], counts[3]),
            known_exploited=host_kev, risk=host_risk))
    if ecosystem == WINDOWS:
        command, reboot = _windows_step(fixed, per_asset, cache)
    else:
        command = upgrade_command(eco, [Package(eco, b, "") for b in sorted(binaries_all)],
                                  fixed)
        # A device restarts to run new firmware.
        reboot = scheme_of(ecosystem) == "firmware" or needs_reboot([package, *binaries_all])
    return PlanItem(ecosystem=ecosystem, package=package, fixed_version=fixed,
                    manager=manager_of(ecosystem), command=command,
                    reboot=reboot, vulns=sorted(vulns),
                    by_priority=dict(sorted(by_priority.items())), known_exploited=kev,
                    risk=risk, hosts=hosts,
                    located=any(i.location for h in hosts for i in h.installations))


def _windows_step(kb: str, per_asset: dict[int, list[Any]], cache: dict[Any, Any]
                  ) -> tuple[str | None, bool]:
    """A Windows item's human step -- the fix its findings name for ``kb``, "install
    KB5078766 (2026-03 cumulative update), restart required" -- and whether it restarts
    the host: MSRC's flag for the KB, else what that step says."""
    command = next((i[3] for units in per_asset.values() for _, rows in units for r in rows
                    for i in (orjson.loads(r.installations) if r.installations else ())
                    if i[2] == kb and len(i) > 3 and i[3]), None)
    updates: WindowsUpdates | None = cache.get("windows-updates")
    restart = updates.restart.get(kb) if updates is not None else None
    if restart is None:
        restart = RESTART_REQUIRED in (command or "")
    return command or f"install {kb}", restart


def workarounds(conn: Connection, groups: dict[tuple[str, str], list[Any]]) -> dict[str, str]:
    """The published workaround of each vulnerability of the unfixed findings ``groups``
    (from the finding's JSON, read for one finding per vulnerability)."""
    first: dict[str, int] = {}
    for rows in groups.values():
        for r in rows:
            first.setdefault(r.vuln_id, r.id)
    workaround: dict[str, str] = {}
    ids = sorted(first.values())
    for start in range(0, len(ids), _CHUNK):
        for vuln_id, data in conn.execute(select(findings.c.vuln_id, findings.c.data).where(
                findings.c.id.in_(ids[start:start + _CHUNK]))):
            text = (orjson.loads(data).get("workaround") or "").strip()
            if text and text != NO_WORKAROUND:  # "none published" is no workaround
                workaround[vuln_id] = text
    return workaround


def _unfixed(conn: Connection, groups: dict[tuple[str, str], list[Any]],
             names: dict[int, str]) -> tuple[UnfixedItem, ...]:
    workaround = workarounds(conn, groups)
    out = []
    for (ecosystem, package), rows in groups.items():
        vulns = tuple(sorted({r.vuln_id for r in rows}))
        notes = sorted({f"{v}: {workaround[v]}" for v in vulns if v in workaround})
        out.append(UnfixedItem(
            ecosystem=ecosystem, package=package, vulns=vulns,
            hosts=tuple(sorted({names.get(r.asset_id, str(r.asset_id)) for r in rows})),
            best_priority=min((r.priority or UNPRIORITISED for r in rows), default=None),
            workaround="\n".join(notes) or None))
    out.sort(key=lambda u: (u.best_priority or 9, -len(u.hosts), u.package))
    return tuple(out)


PLAN_COLUMNS = ("rank", "ecosystem", "package", "fixed_version", "vulns", "risk", "host",
                "status", "priority", "installed_version", "location", "binaries",
                "manager", "command", "reboot", "reboot_pending", "groups", "next_window")


def plan_rows(items: Iterable[PlanItem]) -> Iterator[dict[str, Any]]:
    """One row per (item, host, installation) of ``items`` in plan order, as
    :data:`PLAN_COLUMNS`: the CSV export.  ``location`` is the installation's
    site-packages folder or lock file (empty for an OS package) and ``command`` the
    upgrade in that environment."""
    no_installation = PlanInstallation(None, "", None)
    for rank, item in enumerate(items, 1):
        for h in item.hosts:
            for i in h.installations or (no_installation,):
                yield {
                    "rank": rank, "ecosystem": item.ecosystem, "package": item.package,
                    "fixed_version": item.fixed_version, "vulns": len(item.vulns),
                    "risk": item.risk, "host": h.name, "status": h.status,
                    "priority": f"P{h.best_priority}" if h.best_priority else "",
                    "installed_version": i.installed_version or h.installed_version or "",
                    "location": i.location or "", "binaries": " ".join(h.binaries),
                    "manager": item.manager, "command": i.command or item.command or "",
                    "reboot": "yes" if item.reboot else "no",
                    "reboot_pending": "" if h.reboot_pending is None else
                    ("yes" if h.reboot_pending else "no"),
                    "groups": " ".join(h.groups), "next_window": h.next_window or "any time"}


def plan_csv(plan: PatchPlan) -> str:
    """The plan as CSV (one row per host of each item)."""
    return b"".join(csv_chunks(([r[c] for c in PLAN_COLUMNS] for r in plan_rows(plan.items)),
                               PLAN_COLUMNS)).decode("utf-8")
