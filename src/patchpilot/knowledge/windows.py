"""Matching a Windows host against Microsoft's security updates (the MSRC knowledge).

A host (family "Windows Server 2022", release, installation type, architecture, build and
UBR, installed KBs, server components) is mapped to the MSRC product ids that name it
("Windows Server 2022", "Windows Server 2022 (Server Core installation)", "Windows 11
Version 24H2 for x64-based Systems", "Microsoft SQL Server 2019 for x64-based Systems
(CU 32)"), and every CVE those products have a ``msrc_fixes`` row for is decided:

* **cumulative-update Windows** (NT 10.0: Windows 10, 11, Server 2016 and later): open
  when the host's build.UBR is below the remediation's fixed build **and** neither the
  fixing KB nor any KB that supersedes it (transitively, over every loaded month) is
  installed.  Without a UBR (``systeminfo`` and ``wmic qfe`` files lack it) the KBs alone
  decide.  Hotpatch and "Security Only" fixes are decided by their KB only: their fixed
  builds sit on another line than the monthly cumulative update's;
* **older Windows** (2008, 2012 R2 ESU): by KB and supersedence chains only;
* **SQL Server**: by the version of the instance, on its servicing branch (GDR or CU,
  told apart by the thousands of the build: 2019 GDR is 15.0.2xxx, CU 15.0.4xxx);
* when the host's KB list is known to be cut short (``kbs_complete`` false) a KB missing
  from it proves nothing: such CVEs are *undetermined* unless the build proves them open;
* a host whose product no loaded document names is *end of life* (Windows 7, Server 2003,
  Windows 10 1803): reported with the reason, never as "no findings".

The knowledge layer sits below the inventory, so the host comes as plain values
(:class:`WindowsHost`).  Everything read from the database is cached per knowledge-base
state (:class:`MsrcKnowledge`): the product list and the supersedence graph once, each
product's fix rows on first use, so a re-match of the estate or a second scan of the same
product costs one query (the state stamp).
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import feed_state, msrc_fixes, msrc_products, msrc_vulns

_MONTHS = {m: n for n, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    start=1)}
_BUILD = re.compile(r"\d+(?:\.\d+){1,3}")
_ARCH = {"x64": "x64", "amd64": "x64", "x86": "x86", "arm64": "ARM64", "ia64": "IA64"}
# The NT version of the builds before Windows 10 (6.3.9600 is Windows 8.1 / 2012 R2).
_NT_VERSIONS = {2600: "5.1", 3790: "5.2", 6000: "6.0", 6001: "6.0", 6002: "6.0", 6003: "6.0",
                7600: "6.1", 7601: "6.1", 9200: "6.2", 9600: "6.3"}
# Fixes judged by their KB only: their fixed builds are not on the cumulative line.
_KB_ONLY = ("hotpatch", "security only")
# SQL Server major version → the release year MSRC names it by.
SQL_SERVER_YEARS = {"11": "2012", "12": "2014", "13": "2016", "14": "2017", "15": "2019",
                    "16": "2022", "17": "2025"}
# Components the host reports that are not matched yet, and why (said in the result).
_UNMAPPED = {
    "exchange": "Exchange Server is listed by MSRC per cumulative update (CU 14, CU 15); "
                "the build-to-CU table is not built yet",
    "iis": "IIS is serviced by the Windows cumulative update (judged with the OS)",
    "dotnet-framework": ".NET Framework is listed by MSRC per Windows release and .NET "
                        "version; not matched yet",
}


def month_key(month: str) -> tuple[int, int]:
    """``"2026-Mar"`` → ``(2026, 3)`` (month ids do not sort as text)."""
    year, _, name = month.partition("-")
    return (int(year) if year.isdigit() else 0, _MONTHS.get(name[:3].title(), 0))


def month_number(month: str) -> str:
    """``"2026-Mar"`` → ``"2026-03"`` (how the fix command names the update)."""
    year, number = month_key(month)
    return f"{year:04d}-{number:02d}"


def build_tuple(text: str | None) -> tuple[int, ...] | None:
    """``"10.0.20348.4893"`` → ``(10, 0, 20348, 4893)``; None when not a build number."""
    match = _BUILD.search(text or "")
    return tuple(int(p) for p in match.group().split(".")) if match else None


# ---------------------------------------------------------------------------- the host


@dataclass(frozen=True, slots=True)
class WindowsHost:
    """What matching needs of a Windows host (the inventory's ``windows`` part)."""

    family: str | None  # "Windows Server 2022", "Windows 11", "Windows 7"
    release: str | None = None  # "21H2", "24H2", "1809"
    installation_type: str | None = None  # "Server Core", "Server", "Client"
    architecture: str | None = None  # "x64", "x86", "arm64"
    build: int | None = None
    ubr: int | None = None
    service_pack: int | None = None
    kbs: frozenset[str] = frozenset()
    kbs_complete: bool = True
    components: Mapping[str, str] = field(default_factory=dict)

    @property
    def installed(self) -> str:
        """``10.0.20348.3270`` (build.UBR), ``10.0.20348`` without UBR, ``""`` without a
        build."""
        if self.build is None:
            return ""
        base = f"{_NT_VERSIONS.get(self.build, '10.0')}.{self.build}"
        return f"{base}.{self.ubr}" if self.ubr is not None else base

    @property
    def cumulative(self) -> bool:
        """Windows 10, 11, Server 2016 and later (NT 10.0, build 10240 on): one cumulative
        update a month, whose fixed build the UBR can be compared with."""
        if self.build is not None:
            return self.build >= 10240
        return bool(re.match(r"Windows (?:1\d|Server 20(?:1[69]|2\d))\b", self.family or ""))


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class WindowsMatch:
    """One CVE open on one product of the host, with what decided it."""

    cve: str
    product_id: str
    product_name: str  # "Windows Server 2022 (Server Core installation)"
    package: str  # the product as findings name it: "Windows Server 2022"
    installed: str  # "10.0.20348.3270", "10.0.20348", "15.0.4415.2"
    kb: str  # the KB that fixes it ("KB5078766")
    fixed_build: str | None  # "10.0.20348.4893"
    # The fixing KB and every KB that supersedes it (nearest first), with whether the
    # host has it (an open match has none of them installed).
    chain: tuple[str, ...]
    install_kb: str  # the newest loaded update of the product that contains the fix
    install_month: str  # its document ("2026-Mar")
    restart: bool | None
    url: str | None
    month: str  # the document of the fix ("2026-Mar")
    subtype: str | None  # "Security Update", "Monthly Rollup"
    cvss_score: float | None
    cvss_vector: str | None
    severity: str | None  # MSRC rating for the product
    impact: str | None  # "Remote Code Execution", …
    decided_by: str  # "build" (UBR below the fixed build) or "kb" (no KB of the chain)

    @property
    def affected_range(self) -> str:
        """``< 10.0.20348.4893``, or ``KB5078766 not installed`` without a fixed build."""
        return f"< {self.fixed_build}" if self.fixed_build else f"{self.kb} not installed"


@dataclass(frozen=True, slots=True)
class WindowsUndetermined:
    """A CVE of the host's product that could not be decided, and why."""

    cve: str
    product_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProductRef:
    """A product the host was mapped to."""

    product_id: str
    name: str
    package: str
    last_month: str  # the newest document naming it


@dataclass(frozen=True, slots=True)
class WindowsMatchResult:
    """What matching one Windows host gave."""

    products: tuple[ProductRef, ...]
    matches: tuple[WindowsMatch, ...]
    undetermined: tuple[WindowsUndetermined, ...]
    # Why the host (or one of its products) gets no more updates: no loaded document
    # names it, or the newest one no longer does.  Empty when supported.
    end_of_life: tuple[str, ...]
    # Components and facts that could not be matched, and why.
    notes: tuple[str, ...]
    seconds: float = 0.0


# ------------------------------------------------------------------- cached knowledge


@dataclass(frozen=True, slots=True)
class _Product:
    product_id: str
    name: str
    family: str
    version: str | None
    edition: str | None
    arch: str | None
    month: str


@dataclass(frozen=True, slots=True)
class _Fix:
    month: str
    cve: str
    kb: str | None
    fixed_build: str | None
    restart: bool | None
    url: str | None
    subtype: str | None
    cvss_score: float | None
    cvss_vector: str | None
    severity: str | None
    impact: str | None

    @property
    def by_build(self) -> bool:
        """Whether the fixed build may decide (the monthly cumulative line)."""
        return not any(word in (self.subtype or "").lower() for word in _KB_ONLY)


class MsrcKnowledge:
    """The MSRC tables as matching reads them, cached until the feed changes.

    ``stamp`` (the MSRC sources' count and newest update time) is read once per match;
    when it differs from the cached one everything is dropped and read again.
    """

    def __init__(self) -> None:
        self.stamp: tuple[object, ...] | None = None
        self.products: list[_Product] = []
        self.latest_month = ""
        # Every KB a fix row names: the only installed KBs any decision looks at.
        self.known_kbs: frozenset[str] = frozenset()
        self.superseded_by: dict[str, set[str]] = {}
        self._fixes: dict[str, list[_Fix]] = {}
        self._chains: dict[str, tuple[str, ...]] = {}
        self._rules: dict[str, list[_CveRules]] = {}
        # Host product key -> (its products, why none) (windows_products).
        self.mapped: dict[tuple[object, ...], tuple[list[_Product], str | None]] = {}
        self._lock = threading.Lock()

    def refresh(self, conn: Connection) -> None:
        """Reload when the MSRC sources changed since the cache was filled."""
        stamp = tuple(conn.execute(
            select(func.count(), func.max(feed_state.c.updated_at))
            .where(feed_state.c.feed == "msrc")).one())
        if stamp == self.stamp:
            return
        with self._lock:
            self._load(conn)
            self.stamp = stamp

    def _load(self, conn: Connection) -> None:
        p = msrc_products.c
        self.products = [_Product(*row) for row in conn.execute(
            select(p.product_id, p.name, p.family, p.version, p.edition, p.arch, p.month))]
        months = conn.execute(select(msrc_vulns.c.month).distinct()).scalars().all()
        self.latest_month = max(months, key=month_key, default="")
        self.known_kbs = frozenset(conn.execute(
            select(msrc_fixes.c.kb).distinct().where(msrc_fixes.c.kb.is_not(None))).scalars())
        graph: dict[str, set[str]] = defaultdict(set)
        for kb, supersedes in conn.execute(
                select(msrc_fixes.c.kb, msrc_fixes.c.supersedes).distinct()
                .where(msrc_fixes.c.kb.is_not(None), msrc_fixes.c.supersedes.is_not(None))):
            for old in supersedes.split():
                if old != kb:
                    graph[old].add(kb)
        self.superseded_by = dict(graph)
        self._fixes = {}
        self._chains = {}
        self._rules = {}
        self.mapped = {}

    def chain(self, kb: str) -> tuple[str, ...]:
        """``kb`` and every KB that supersedes it, transitively, nearest first."""
        known = self._chains.get(kb)
        if known is not None:
            return known
        seen = {kb: None}
        todo = deque([kb])
        while todo:
            for newer in sorted(self.superseded_by.get(todo.popleft(), ())):
                if newer not in seen:
                    seen[newer] = None
                    todo.append(newer)
        chain = self._chains[kb] = tuple(seen)
        return chain

    def rules(self, product_id: str, rows: list[_Fix]) -> list[_CveRules]:
        """Per CVE of the product, what judging a host needs (worked out once)."""
        known = self._rules.get(product_id)
        if known is None:
            known = self._rules[product_id] = _product_rules(self, rows)
        return known

    def fixes(self, conn: Connection, product_ids: Iterable[str]) -> dict[str, list[_Fix]]:
        """Per product id, its fix rows (one query for the products not cached yet)."""
        wanted = sorted(set(product_ids))
        missing = [pid for pid in wanted if pid not in self._fixes]
        if missing:
            f = msrc_fixes.c
            loaded: dict[str, list[_Fix]] = {pid: [] for pid in missing}
            for row in conn.execute(
                    select(f.product_id, f.month, f.cve, f.kb, f.fixed_build, f.restart,
                           f.url, f.subtype, f.cvss_score, f.cvss_vector, f.severity,
                           f.impact).where(f.product_id.in_(missing))):
                loaded[row[0]].append(_Fix(*row[1:]))  # type: ignore[arg-type,call-arg]
            self._fixes.update(loaded)
        return {pid: self._fixes[pid] for pid in wanted}


_CACHES: dict[str, MsrcKnowledge] = {}
_CACHES_LOCK = threading.Lock()


def knowledge_for(conn: Connection) -> MsrcKnowledge:
    """The process's cache for the database ``conn`` is on, brought up to date."""
    key = conn.engine.url.render_as_string(hide_password=True)
    with _CACHES_LOCK:
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = MsrcKnowledge()
    cache.refresh(conn)
    return cache


# -------------------------------------------------------------------- product mapping


def _package_of(product: _Product) -> str:
    """The product as a finding names it ("Windows Server 2022", "Windows 11 Version
    24H2", "Microsoft SQL Server 2019")."""
    if product.family == "Windows Server":
        return f"Windows Server {product.version}"
    if product.family.startswith("Windows 1") and product.version:
        return (product.family if product.version == "1507"
                else f"{product.family} Version {product.version}")
    if product.family == "SQL Server":
        return f"Microsoft SQL Server {product.version}"
    return product.family


def _service_pack(edition: str | None) -> int:
    match = re.search(r"\bSP(\d+)", edition or "")
    return int(match.group(1)) if match else 0


def windows_products(knowledge: MsrcKnowledge, host: WindowsHost
                     ) -> tuple[list[_Product], str | None]:
    """The MSRC products naming the host's Windows, or ([], why none does) (kept per
    product key with the cached knowledge: an estate has few distinct ones)."""
    key = (host.family, host.release, host.installation_type, host.architecture,
           host.service_pack, host.build == 10240)
    known = knowledge.mapped.get(key)
    if known is None:
        known = knowledge.mapped[key] = _windows_products(knowledge, host)
    return known


def _windows_products(knowledge: MsrcKnowledge, host: WindowsHost
                      ) -> tuple[list[_Product], str | None]:
    family = " ".join((host.family or "").split())
    if not family:
        return [], "the host's Windows product is not known (a KB list alone names none)"
    server = re.fullmatch(r"Windows Server (\d{4}(?: R2)?)", family)
    core = (host.installation_type or "").lower().replace(" ", "") == "servercore"
    arch = _ARCH.get((host.architecture or "").lower())
    if server:
        # An annual-channel server ("Windows Server, version 23H2") is named by release.
        versions = [v for v in (host.release, server.group(1)) if v]
        wanted_family = "Windows Server"
    else:
        versions = [host.release] if host.release else []
        if family == "Windows 10" and not versions:
            versions = ["1507"] if host.build == 10240 else []
        wanted_family = family
    by_version = [p for p in knowledge.products if p.family == wanted_family]
    chosen: list[_Product] = []
    for version in versions:
        chosen = [p for p in by_version if p.version == version]
        if chosen:
            break
    what = " ".join(x for x in (family, host.release if not server else None) if x)
    span = (f"{min((p.month for p in knowledge.products), key=month_key, default='?')}"
            f" to {knowledge.latest_month}")
    if not chosen:
        return [], (f"{what}: no loaded Microsoft security update document ({span}) names "
                    "it: end of life, Microsoft publishes no security updates for it")
    sp = host.service_pack or 0
    fitting = [p for p in chosen
               if ("Server Core" in (p.edition or "")) == core
               and _service_pack(p.edition) == sp
               and (p.arch is None or arch is None or p.arch == arch)]
    if not fitting:
        offered = ", ".join(sorted({p.name for p in chosen}))
        return [], (f"{what}{f' Service Pack {sp}' if sp else ''} ({arch or '?'}): the "
                    f"loaded documents ({span}) name only {offered}: end of life for this "
                    "service pack or architecture")
    return fitting, None


def _sql_products(knowledge: MsrcKnowledge, conn: Connection, version: str
                  ) -> tuple[list[_Product], str | None]:
    """The SQL Server products on the instance's servicing branch, or ([], why none)."""
    parts = build_tuple(version)
    year = SQL_SERVER_YEARS.get(version.split(".")[0])
    if parts is None or len(parts) < 3 or year is None:
        return [], f"sql-server {version}: not a SQL Server version MSRC lists"
    candidates = [p for p in knowledge.products
                  if p.family == "SQL Server" and p.version == year]
    if not candidates:
        return [], (f"sql-server {version} (SQL Server {year}): no loaded document names "
                    "it: end of life, or no update for it in the loaded months")
    fixes = knowledge.fixes(conn, [p.product_id for p in candidates])
    branch = parts[2] // 1000
    on_branch = []
    for p in candidates:
        builds = {b[2] // 1000 for f in fixes[p.product_id]
                  if (b := build_tuple(f.fixed_build)) and len(b) >= 3}
        if branch in builds:
            on_branch.append(p)
    if not on_branch:
        return [], (f"sql-server {version}: build {parts[2]} is on no servicing branch the "
                    f"loaded documents list for SQL Server {year}")
    return on_branch, None


# ----------------------------------------------------------------------------- deciding


def _comparable(built: tuple[int, ...] | None, version: tuple[int, ...] | None) -> bool:
    """Whether a fixed build and an installed version are on one line: Windows 10.0.20348.x
    with 10.0.20348.y; SQL Server 15.0.4xxx.x with 15.0.4yyy.y (the same servicing branch,
    told by the thousands of the build)."""
    if built is None or version is None or len(built) != len(version) or len(built) < 3:
        return False
    if built[0] == 10 and built[1] == 0:  # Windows: the same OS build
        return built[:3] == version[:3]
    return built[:2] == version[:2] and built[2] // 1000 == version[2] // 1000


@dataclass(frozen=True, slots=True)
class _Rule:
    """One fix row of a CVE with a KB, as a host is judged against it."""

    row: _Fix
    kbs: frozenset[str]  # its KB chain: any of them installed closes the CVE
    built: tuple[int, ...] | None  # its fixed build


@dataclass(frozen=True, slots=True)
class _CveRules:
    """Everything about one CVE of one product that does not depend on the host (worked
    out once per product and kept with the cached knowledge)."""

    cve: str
    rules: tuple[_Rule, ...]  # empty: MSRC lists it affected with no KB to install
    primary: _Fix | None  # the fix a finding names
    built: tuple[int, ...] | None  # the primary's fixed build
    fixed_build: str | None
    chain: tuple[str, ...]  # the primary's KB chain, nearest first
    newest: _Fix | None  # the newest loaded update of the product containing the fix


def _product_rules(knowledge: MsrcKnowledge, rows: list[_Fix]) -> list[_CveRules]:
    """The per-CVE rules of one product's fix rows (host-independent)."""
    per_cve: dict[str, list[_Fix]] = defaultdict(list)
    for row in rows:
        per_cve[row.cve].append(row)
    # The product's own monthly updates (not hotpatches), per kind, oldest first: a
    # later one of the same kind contains the earlier ones (cumulative updates, monthly
    # rollups), even where MSRC's supersedence list is empty (Feb 2026 for 1607, 1809).
    own: dict[str, _Fix] = {}
    for row in rows:
        if row.kb and row.by_build:
            seen = own.get(row.kb)
            if seen is None or month_key(row.month) > month_key(seen.month):
                own[row.kb] = row
    lines: dict[str | None, list[tuple[tuple[int, int], tuple[int, ...], str]]] = \
        defaultdict(list)
    for kb, row in own.items():
        lines[row.subtype].append((month_key(row.month), build_tuple(row.fixed_build) or (),
                                   kb))
    for line in lines.values():
        line.sort()

    # Some rows of a KB lack its fixed build that other rows of the same KB give.
    kb_build = {row.kb: row.fixed_build for row in rows if row.kb and row.fixed_build}

    def build_of(r: _Fix) -> str | None:
        return r.fixed_build or kb_build.get(r.kb or "")

    def chain_of(r: _Fix) -> tuple[str, ...]:
        chain = knowledge.chain(r.kb)  # type: ignore[arg-type]
        if not r.by_build:
            return chain
        here = (month_key(r.month), build_tuple(r.fixed_build) or ())
        later = [kb for mk, b, kb in lines.get(r.subtype, ()) if (mk, b) > here]
        return tuple(dict.fromkeys((*chain, *later)))

    out = []
    for cve, cve_rows in per_cve.items():
        with_kb = [r for r in cve_rows if r.kb]
        if not with_kb:
            out.append(_CveRules(cve, (), None, None, None, (), None))
            continue
        rules = tuple(_Rule(r, frozenset(chain_of(r)), build_tuple(build_of(r)))
                      for r in with_kb)
        primary = max(with_kb, key=lambda r: (r.by_build, month_key(r.month),
                                              build_tuple(r.fixed_build) or ()))
        chain = chain_of(primary)
        newest = max((own[kb] for kb in chain if kb in own),
                     key=lambda r: (month_key(r.month), build_tuple(r.fixed_build) or ()),
                     default=primary)
        out.append(_CveRules(cve, rules, primary, build_tuple(build_of(primary)),
                             build_of(primary), chain, newest))
    return out


def _decide(knowledge: MsrcKnowledge, host: WindowsHost, product: _Product,
            package: str, rows: list[_Fix], installed: str,
            version: tuple[int, ...] | None, by_build: bool,
            matches: list[WindowsMatch], undetermined: list[WindowsUndetermined]) -> None:
    """Decide every CVE of one product; add the open ones to ``matches``."""
    kbs = host.kbs
    for c in knowledge.rules(product.product_id, rows):
        primary, newest = c.primary, c.newest
        if primary is None or newest is None:
            undetermined.append(WindowsUndetermined(
                c.cve, product.product_id, f"{product.name}: MSRC lists it affected with "
                "no KB to install"))
            continue
        fixed = False
        for rule in c.rules:
            if not kbs.isdisjoint(rule.kbs):
                fixed = True
                break
            built = rule.built
            if (by_build and rule.row.by_build and _comparable(built, version)
                    and version >= built):  # type: ignore[operator]
                fixed = True
                break
        if fixed:
            continue
        proven = by_build and primary.by_build and _comparable(c.built, version)
        if not proven and not host.kbs_complete:
            undetermined.append(WindowsUndetermined(
                c.cve, product.product_id,
                f"{product.name}: none of {', '.join(c.chain)} is in the host's KB list, "
                "but that list is cut short (no proof it is missing)"))
            continue
        matches.append(WindowsMatch(
            cve=c.cve, product_id=product.product_id, product_name=product.name,
            package=package, installed=installed, kb=primary.kb or "",
            fixed_build=c.fixed_build, chain=c.chain,
            install_kb=newest.kb or primary.kb or "", install_month=newest.month,
            restart=newest.restart if newest.kb != primary.kb else primary.restart,
            url=newest.url if newest.kb != primary.kb else primary.url,
            month=primary.month, subtype=primary.subtype, cvss_score=primary.cvss_score,
            cvss_vector=primary.cvss_vector, severity=primary.severity,
            impact=primary.impact, decided_by="build" if proven else "kb"))


def decision_key(knowledge: MsrcKnowledge, host: WindowsHost) -> tuple[object, ...]:
    """What :func:`match_windows` decides a host by: its product facts, build, UBR,
    components and the installed KBs that any fix row names (every other KB -- drivers,
    .NET, Defender -- changes nothing).  Hosts with equal keys get equal results, so a
    re-match of a fleet built from the same images judges each key once."""
    return (host.family, host.release, host.installation_type, host.architecture,
            host.service_pack, host.build, host.ubr, host.kbs_complete,
            tuple(sorted(host.components.items())), host.kbs & knowledge.known_kbs)


def match_windows(conn: Connection, host: WindowsHost,
                  knowledge: MsrcKnowledge | None = None) -> WindowsMatchResult:
    """Every CVE the loaded MSRC documents say is open on ``host`` (see the module
    docstring for the rules), with what is undetermined and why, and end-of-life reasons.

    A handful of queries: the cache's stamp, and the fix rows of products not cached yet.
    """
    started = time.perf_counter()
    if knowledge is None:
        knowledge = knowledge_for(conn)
    else:
        knowledge.refresh(conn)
    matches: list[WindowsMatch] = []
    undetermined: list[WindowsUndetermined] = []
    end_of_life: list[str] = []
    notes: list[str] = []
    refs: list[ProductRef] = []
    if not knowledge.products:
        notes.append("no MSRC document is loaded: Windows updates cannot be judged "
                     "(patchpilot db update --from DIR with the CVRF months)")
        return WindowsMatchResult((), (), (), (), tuple(notes),
                                  time.perf_counter() - started)
    os_products, why = windows_products(knowledge, host)
    if why:
        (end_of_life if host.family else notes).append(why)
    os_version = build_tuple(host.installed) if host.ubr is not None else None
    todo: list[tuple[_Product, str, tuple[int, ...] | None, bool]] = [
        (p, host.installed, os_version, host.cumulative) for p in os_products]
    for component, component_version in sorted(host.components.items()):
        if component == "sql-server":
            sql, why = _sql_products(knowledge, conn, component_version)
            if why:
                notes.append(why)
            todo.extend((p, component_version, build_tuple(component_version), True)
                        for p in sql)
        else:
            notes.append(f"{component} {component_version}: "
                         f"{_UNMAPPED.get(component, 'not matched (no MSRC mapping)')}")
    fixes = knowledge.fixes(conn, [p.product_id for p, *_ in todo])
    for product, shown, version, by_build in todo:
        package = _package_of(product)
        refs.append(ProductRef(product.product_id, product.name, package, product.month))
        if month_key(product.month) < month_key(knowledge.latest_month):
            end_of_life.append(
                f"{product.name}: last named in the {product.month} document, not in "
                f"{knowledge.latest_month}: end of life, later vulnerabilities are not "
                "published for it")
        _decide(knowledge, host, product, package, fixes[product.product_id], shown,
                version, by_build, matches, undetermined)
    matches.sort(key=lambda m: (m.package, m.cve))
    undetermined.sort(key=lambda u: (u.product_id, u.cve))
    return WindowsMatchResult(tuple(refs), tuple(matches), tuple(undetermined),
                              tuple(end_of_life), tuple(notes),
                              time.perf_counter() - started)


def products_fixing(conn: Connection, cves: Iterable[str]) -> dict[str, set[str]]:
    """Per CVE, the MSRC product ids that have a fix row for it (for sweeps)."""
    wanted = sorted(set(cves))
    out: dict[str, set[str]] = defaultdict(set)
    if wanted:
        for cve, product_id in conn.execute(
                select(msrc_fixes.c.cve, msrc_fixes.c.product_id).distinct()
                .where(msrc_fixes.c.cve.in_(wanted))):
            out[cve].add(product_id)
    return dict(out)
