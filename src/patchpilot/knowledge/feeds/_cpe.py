"""What NVD configurations and CVE JSON 5 ``affected`` entries say about CPE-named products.

Both become :class:`~patchpilot.models.AffectedPackage` rows of ecosystem ``CPE`` named
``vendor:product`` as the NVD CPE dictionary spells it (``fortinet:fortios``), with ranges
in the knowledge base's usual form, so the matcher judges a device's firmware like any
package (version scheme ``firmware``, knowledge.versions).

**NVD** (API 2.0 ``configurations[].nodes[].cpeMatch[]``; 1.1 ``configurations.nodes[]``
with ``children`` and ``cpe_match[]``).  Every ``vulnerable`` match criterion of part
``o`` (operating system, firmware) or ``a`` (application) is a product at fault:

* version ``*`` with ``versionStart/End(In|Ex)cluding`` bounds is a range
  (StartIncluding -> introduced, StartExcluding -> introduced excluded, EndExcluding ->
  fixed, EndIncluding -> last affected); ``*`` without bounds is every version;
* an exact version (``cpe:2.3:o:cisco:ios:15.2\\(4\\)m7``) is a listed version, with the
  CPE ``update`` field appended (``junos:21.4:r3-s5`` -> ``21.4-r3-s5``; separators do
  not count in firmware order); ``-`` (not applicable) says nothing about versions;
* ``h`` (hardware) criteria describe the device model, not software, and are skipped.

*AND configurations* ("FortiOS running on FortiGate 60F", "app X with platform Y"): only
the ``vulnerable`` matches are taken, and the non-vulnerable platform matches they are
combined with are not checked -- a device's firmware is judged on its own CPE.  For
firmware that is right (the platform is the device itself, or a hardware model family);
for an application it can over-report on a platform not in use, never under-report.
Negated nodes are skipped.

**CVE JSON 5** ``affected`` entries: the product is the vendor:product of the entry's
``cpes`` (parts ``o``/``a``) when it has them, else what
:func:`~patchpilot.knowledge.cpe_names.identify` makes of ``vendor`` and ``product``
(exact names only; an unknown product gives no row).  ``versions`` with status
*affected*: ``version`` + ``lessThan`` is a range with a fix, + ``lessThanOrEqual`` a
range up to a last affected version, alone an exact version (``version`` ``0`` is the
beginning); a ``changes`` entry turning *unaffected* gives the fix when ``lessThan`` is
missing.  A bound no firmware rule reads (``21.1*``, ``22.3R2-S2, 22.3R3-S1``, free text
such as ``6.2.0 to 6.2.3``) is dropped with its range: no guess.  Without any readable
version entry, ``defaultStatus: affected`` means every version; otherwise the exact
versions of ``cpes`` are listed.

The CNA container speaks for the products it names; an ADP container (CISA's
Vulnrichment) adds only products the CNA does not name -- except that where the CNA gives
a range only up to its last affected version and an ADP range from the same first version
gives the fixed one, that fix completes the CNA's range (Fortinet publishes "7.2.0 through
7.2.6", CISA "7.2.0 before 7.2.7"), provided no other range of the CNA starts between the
two bounds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from patchpilot.errors import VersionError
from patchpilot.knowledge.cpe_names import CPE, identify
from patchpilot.knowledge.versions import comparable, version_key
from patchpilot.models import AffectedPackage, AffectedRange

_PARTS = frozenset({"o", "a"})  # h: hardware, the device model itself


_ESCAPED = re.compile(r"\\(.)")


def _unescape(text: str) -> str:
    """A CPE 2.3 formatted-string field without its backslash escapes (``15.2\\(4\\)m7``)."""
    return _ESCAPED.sub(r"\1", text) if "\\" in text else text


def _fields(cpe: str) -> list[str] | None:
    """The fields after ``cpe:2.3:`` (unescaped) or ``cpe:/``; None when it is neither."""
    text = cpe.strip()
    if text.startswith("cpe:/"):
        return text[5:].split(":")
    if not text.startswith("cpe:2.3:"):
        return None
    # Split on the ':' not escaped by a backslash, then drop the escapes.
    fields: list[str] = []
    current: list[str] = []
    escaped = False
    for c in text[8:]:
        if escaped:
            current.append("\\" + c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(c)
    fields.append("".join(current))
    return [_unescape(f) for f in fields]


def split_cpe(cpe: str) -> tuple[str, str, str, str | None] | None:
    """(part, vendor, product, version or None) of a CPE 2.3 string or 2.2 URI, the
    version with its ``update`` field appended; None when it is neither."""
    fields = _fields(cpe)
    if fields is None or len(fields) < 3 or not all(fields[:3]):
        return None
    part, vendor, product = fields[0].lower(), fields[1].lower(), fields[2].lower()
    version = fields[3] if len(fields) > 3 and fields[3] not in ("", "*", "-") else None
    if version is not None and len(fields) > 4 and fields[4] not in ("", "*", "-"):
        version = f"{version}-{fields[4]}"
    return part, vendor, product, version


def _readable(version: str | None) -> bool:
    if not version:
        return False
    try:
        version_key(CPE, version)
    except VersionError:
        return False
    return True


class _Product:
    """The ranges and listed versions gathered for one vendor:product."""

    __slots__ = ("ranges", "versions")

    def __init__(self) -> None:
        self.ranges: dict[AffectedRange, None] = {}
        self.versions: dict[str, None] = {}

    def package(self, name: str) -> AffectedPackage:
        return AffectedPackage(ecosystem=CPE, name=name, ranges=tuple(self.ranges),
                               versions=tuple(self.versions))


def _packages(products: dict[str, _Product]) -> tuple[AffectedPackage, ...]:
    return tuple(p.package(name) for name, p in sorted(products.items())
                 if p.ranges or p.versions)


# --------------------------------------------------------------------------------- NVD


def _nvd_match(products: dict[str, _Product], match: dict[str, Any]) -> None:
    """One vulnerable cpeMatch (API 2.0) or cpe_match (1.1) into ``products``."""
    criteria = match.get("criteria") or match.get("cpe23Uri")
    if not isinstance(criteria, str):
        return
    parsed = split_cpe(criteria)
    if parsed is None or parsed[0] not in _PARTS:
        return
    _, vendor, product, version = parsed
    bounds = {k: match.get(k) for k in ("versionStartIncluding", "versionStartExcluding",
                                         "versionEndIncluding", "versionEndExcluding")}
    if any(isinstance(v, str) and v for v in bounds.values()):
        start = bounds["versionStartIncluding"] or bounds["versionStartExcluding"]
        end_excl, end_incl = bounds["versionEndExcluding"], bounds["versionEndIncluding"]
        # A bound no firmware rule reads would make the range wider than NVD says.
        if not all(_readable(b) for b in (start, end_excl, end_incl) if b):
            return
        rng = AffectedRange(introduced=start, fixed=end_excl or None,
                            last_affected=None if end_excl else end_incl,
                            introduced_excluded=bool(bounds["versionStartExcluding"]
                                                     and not bounds["versionStartIncluding"]))
        products.setdefault(f"{vendor}:{product}", _Product()).ranges[rng] = None
    elif version is not None:
        if _readable(version):
            products.setdefault(f"{vendor}:{product}", _Product()).versions[version] = None
    elif (_fields(criteria) or [])[3:4] == ["-"]:
        return  # version "-": not applicable, says nothing about versions
    else:
        products.setdefault(f"{vendor}:{product}", _Product()).ranges[AffectedRange()] = None


def _nvd_node(products: dict[str, _Product], node: Any) -> None:
    if not isinstance(node, dict) or node.get("negate"):
        return
    for match in node.get("cpeMatch") or node.get("cpe_match") or ():
        if isinstance(match, dict) and match.get("vulnerable") is True:
            _nvd_match(products, match)
    for child in node.get("children") or ():  # NVD 1.1 nests AND configurations
        _nvd_node(products, child)


def nvd_affected(configurations: Any) -> tuple[AffectedPackage, ...]:
    """The CPE packages of an NVD record's configurations: API 2.0 ``configurations``
    (a list of ``{operator, nodes}``) or 1.1 ``configurations`` (``{nodes}``)."""
    products: dict[str, _Product] = {}
    configs = configurations if isinstance(configurations, list) else [configurations]
    for config in configs:
        if not isinstance(config, dict):
            continue
        for node in config.get("nodes") or ():
            _nvd_node(products, node)
    return _packages(products)


# --------------------------------------------------------------------------------- CVE 5


def _names(entry: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The vendor:product names of one ``affected`` entry, and the exact versions its
    ``cpes`` list (both empty when the product is not known exactly)."""
    names: dict[str, None] = {}
    exact: dict[str, None] = {}
    for cpe in entry.get("cpes") or ():
        parsed = split_cpe(cpe) if isinstance(cpe, str) else None
        if parsed is None or parsed[0] not in _PARTS:
            continue
        names[f"{parsed[1]}:{parsed[2]}"] = None
        if parsed[3] is not None and _readable(parsed[3]):
            exact[parsed[3]] = None
    if not names and not entry.get("cpes"):
        vendor, product = entry.get("vendor"), entry.get("product")
        found = identify(vendor if isinstance(vendor, str) else None,
                         product if isinstance(product, str) else None)
        if found is not None:
            names[found] = None
    return list(names), list(exact)


def _cve5_versions(entry: dict[str, Any], exact: list[str]) -> _Product:
    """The affected ranges and versions of one entry."""
    out = _Product()
    for v in entry.get("versions") or ():
        if not isinstance(v, dict) or v.get("status") != "affected":
            continue
        if v.get("versionType") == "git":
            continue  # commit hashes, not versions
        start = v.get("version")
        start = None if start in ("0", "*", "") else start
        less, upto = v.get("lessThan"), v.get("lessThanOrEqual")
        if less is None and upto is None:
            changed = [c.get("at") for c in v.get("changes") or ()
                       if isinstance(c, dict) and c.get("status") == "unaffected"]
            less = changed[0] if changed else None
        if start is not None and not isinstance(start, str):
            continue
        if less is None and upto is None:
            if _readable(start):
                out.versions[start] = None  # type: ignore[index]
            continue
        if not all(_readable(b) for b in (start, less, upto) if b is not None):
            continue  # "21.1*", "22.3R2-S2, 22.3R3-S1", "23,2": never guessed
        out.ranges[AffectedRange(introduced=start, fixed=less or None,
                                 last_affected=None if less else upto)] = None
    if not out.ranges and not out.versions:
        if entry.get("defaultStatus") == "affected" and not entry.get("versions"):
            out.ranges[AffectedRange()] = None
        else:
            out.versions.update(dict.fromkeys(exact))
    return out


def _complete(cna: _Product, adp: _Product) -> None:
    """Give the CNA's "up to and including" ranges the fix an ADP range from the same first
    version names (see the module docstring)."""
    starts = [version_key(CPE, r.introduced) for r in cna.ranges if r.introduced]
    fixes = {r.introduced: r.fixed for r in adp.ranges if r.introduced and r.fixed}
    done: dict[AffectedRange, None] = {}
    for r in cna.ranges:
        fix = fixes.get(r.introduced) if r.introduced and r.last_affected else None
        if fix is not None:
            last, fixed = version_key(CPE, r.last_affected or ""), version_key(CPE, fix)
            between = any(comparable(s, last) and comparable(s, fixed) and last < s < fixed
                          for s in starts)
            if comparable(last, fixed) and last < fixed and not between:
                r = AffectedRange(introduced=r.introduced, fixed=fix)
        done[r] = None
    cna.ranges = done


def cve5_affected(cna: Iterable[Any], adps: Iterable[Iterable[Any]]
                  ) -> tuple[AffectedPackage, ...]:
    """The CPE packages of a CVE 5 record: the CNA's ``affected`` entries, then each ADP
    container's (``adps``) for products the CNA does not name."""
    own: dict[str, _Product] = {}
    for entry in cna:
        if not isinstance(entry, dict):
            continue
        names, exact = _names(entry)
        for name in names:
            found = _cve5_versions(entry, exact)
            product = own.setdefault(name, _Product())
            product.ranges.update(found.ranges)
            product.versions.update(found.versions)
    added: dict[str, _Product] = {}
    for container in adps:
        for entry in container:
            if not isinstance(entry, dict):
                continue
            names, exact = _names(entry)
            for name in names:
                found = _cve5_versions(entry, exact)
                if name in own and (own[name].ranges or own[name].versions):
                    _complete(own[name], found)
                    continue
                product = added.setdefault(name, _Product())
                product.ranges.update(found.ranges)
                product.versions.update(found.versions)
    return _packages({**added, **own})
